"""``train.report_to``: every train_log record's numbers reach Accelerate's trackers, with its step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import pytest

from nertool.config import Tracker, build_recipe
from nertool.errors import ConfigError
from nertool.train.reporters import SilentReporter
from nertool.train.trackers import TrackerReporter, check_trackers, tracker_config, tracker_values


def test_the_recipe_knows_the_trackers_accelerate_knows():
    from accelerate.utils import LoggerType

    assert set(get_args(Tracker)) == {str(t) for t in LoggerType} - {"all"}


def test_an_unknown_tracker_names_the_key():
    with pytest.raises(ConfigError, match=r"train\.report_to\[0\].*tensorboard"):
        build_recipe({"train": {"report_to": ["tensorbord"]}})


def test_a_missing_tracker_package_is_one_line(monkeypatch):
    import accelerate.tracking

    monkeypatch.setattr(accelerate.tracking, "_available_trackers", [])
    with pytest.raises(ConfigError, match=r"train\.report_to: wandb is not installed; pip install wandb"):
        check_trackers(["wandb"])
    with pytest.raises(ConfigError, match=r"nertool\[trackers\]"):
        check_trackers(["tensorboard"])
    check_trackers([])  # nothing asked, nothing checked


def test_numeric_fields_are_flattened_and_text_is_left_out():
    train = {"step": 4, "epoch": 0.5, "loss": 1.25, "lr": 1e-3, "tokens_per_s": 10.0}
    assert tracker_values(train) == {"epoch": 0.5, "loss": 1.25, "lr": 1e-3, "tokens_per_s": 10.0}
    evaluation = {"step": 8, "epoch": 1, "score": 0.5, "eval": {"dev_f1": {"de": 0.5, "fr": 0.25}}}
    assert tracker_values(evaluation) == {
        "epoch": 1,
        "score": 0.5,
        "eval/dev_f1/de": 0.5,
        "eval/dev_f1/fr": 0.25,
    }
    assert tracker_values({"step": 3, "warning": "non-finite loss; step skipped", "flag": True}) == {}


def test_the_recipe_is_stored_as_flat_scalars():
    flat = tracker_config(build_recipe({"train": {"report_to": ["tensorboard"]}}).model_dump())
    assert flat["seed"] == 42 and flat["train.learning_rate"] == 5e-5
    assert flat["train.report_to"] == '["tensorboard"]' and "model.revision" not in flat
    assert all(isinstance(v, (str, int, float, bool)) for v in flat.values())


class StubAccelerator:
    def __init__(self):
        self.inits: list[tuple[str, dict]] = []
        self.logged: list[tuple[dict, int]] = []
        self.trackers = [StubTracker()]

    def init_trackers(self, project: str, config: dict) -> None:
        self.inits.append((project, config))

    def log(self, values: dict, step: int) -> None:
        self.logged.append((values, step))


class StubTracker:
    finished = 0

    def finish(self) -> None:
        self.finished += 1


def test_the_reporter_starts_logs_and_finishes_the_trackers():
    accelerator = StubAccelerator()
    reporter = TrackerReporter(SilentReporter(), accelerator, config={"seed": 1})
    reporter.start(10, 0)
    reporter.start(10, 0)  # a second start (resume in one process) does not start them again
    reporter.log({"step": 2, "loss": 0.5})
    reporter.log({"step": 2, "warning": "skipped"})
    reporter.finish()
    assert accelerator.inits == [("nertool", {"seed": 1})]
    assert accelerator.logged == [({"loss": 0.5}, 2)]
    assert accelerator.trackers[0].finished == 1


# ------------------------------------------------------------------ a real run


def log_records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_pretrain_records_reach_accelerate_log_with_their_step(tmp_path, monkeypatch):
    """A stub tracker in Accelerate's registry sees what train_log.jsonl holds, step for step."""
    import accelerate.tracking
    from accelerate.tracking import GeneralTracker
    from accelerate.utils import LoggerType

    seen: dict[str, list] = {"log": [], "config": [], "finish": []}

    class Recorder(GeneralTracker):
        name, requires_logging_directory = "tensorboard", True

        def __init__(self, run_name: str, logging_dir: str, **kwargs: Any):
            super().__init__()
            seen["dir"] = [Path(logging_dir), run_name]

        @property
        def tracker(self) -> Any:
            return None

        def store_init_configuration(self, values: dict) -> None:
            seen["config"].append(values)

        def log(self, values: dict, step: int | None = None, **kwargs: Any) -> None:
            seen["log"].append((values, step))

        def finish(self) -> None:
            seen["finish"].append(True)

    monkeypatch.setitem(accelerate.tracking.LOGGER_TYPE_TO_CLASS, "tensorboard", Recorder)
    monkeypatch.setattr(accelerate.tracking, "_available_trackers", [LoggerType.TENSORBOARD])
    from nertool.workflows.pretrain import pretrain_run

    recipe = build_recipe(
        {
            "seed": 5,
            "model": {"name": "scratch:tiny", "vocab_size": 600, "max_length": 64},
            "train": {"batch_size": 8, "learning_rate": 2e-3, "log_every": 1, "report_to": ["tensorboard"]},
            "pretrain": {
                "text": ["sample"],
                "steps": 4,
                "block_size": 64,
                "heldout_fraction": 0.1,
                "eval_every": 2,
            },
        }
    )
    run_dir = tmp_path / "mlm"
    pretrain_run(recipe, run_dir)
    expected = [(tracker_values(r), r["step"]) for r in log_records(run_dir) if tracker_values(r)]
    assert seen["log"] == expected and any("eval/heldout_loss" in values for values, _ in expected)
    assert seen["dir"] == [run_dir / "trackers", "nertool"]
    assert seen["config"][0]["pretrain.steps"] == 4 and seen["finish"] == [True]


@pytest.mark.slow
def test_tensorboard_writes_event_files_under_the_run(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from nertool.workflows.train import train_run

    recipe = build_recipe(
        {
            "seed": 7,
            "model": {"name": "scratch:tiny", "max_length": 64, "vocab_size": 600},
            "data": {
                "source": "sample",
                "train_languages": ["de"],
                "max_train_samples": 32,
                "max_eval_samples": 16,
            },
            "train": {"epochs": 1, "batch_size": 8, "log_every": 1, "report_to": ["tensorboard"]},
        }
    )
    run_dir = tmp_path / "run"
    train_run(recipe, run_dir)
    events = run_dir / "trackers" / "nertool"
    assert list(events.glob("events.out.tfevents.*"))
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    losses = [(e.step, e.value) for e in accumulator.Scalars("loss")]
    logged = [(r["step"], r["loss"]) for r in log_records(run_dir) if "loss" in r]
    assert [s for s, _ in losses] == [s for s, _ in logged]
    assert [v for _, v in losses] == pytest.approx([v for _, v in logged], rel=1e-6)
    assert [e.step for e in accumulator.Scalars("eval/dev_f1/de")] == [
        r["step"] for r in log_records(run_dir) if "eval" in r
    ]
