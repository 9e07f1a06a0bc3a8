"""The transfer workflow on the bundled sample: table files, selection strategies, resume, curve, CLI.

One small transfer (scratch:tiny, 64 German sentences, 2 epochs) is trained once per module; the other
tests read it, copy it, or plan without training.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nertool.cli.commands import app
from nertool.config import build_recipe, dump_recipe, load_recipe
from nertool.data.sources import load_corpus
from nertool.errors import ConfigError
from nertool.transfer import plan as transfer_plan
from nertool.transfer.curve import crossover
from nertool.transfer.plan import PlannedRun, plan_curve, plan_runs, run_recipe
from nertool.transfer.table import expand_sources
from nertool.workflows import transfer as transfer_run
from nertool.workflows.training_data import SAMPLE_DIR, load_training_data
from nertool.workflows.transfer import (
    RunEvent,
    read_eval_history,
    run_status,
    run_transfer,
    source_dev_record,
)

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = {
    "seed": 7,
    "model": {"name": "scratch:tiny", "max_length": 64},
    "data": {"source": "sample", "eval_languages": ["de", "fr"], "max_train_samples": 64},
    "train": {"epochs": 2, "batch_size": 8, "learning_rate": 5e-3, "warmup_ratio": 0.0},
    "transfer": {"sources": [["de"], "each"], "sample_sizes": [16, 32], "target_language": "fr"},
}
TINY_TOML = """seed = 7
[model]
name = "scratch:tiny"
max_length = 64
[data]
source = "sample"
eval_languages = ["de", "fr"]
max_train_samples = 64
[train]
epochs = 2
batch_size = 8
learning_rate = 5e-3
warmup_ratio = 0.0
[transfer]
sources = [["de"], "each"]
sample_sizes = [16, 32]
target_language = "fr"
"""


def tiny(**transfer):
    return build_recipe({**TINY, "transfer": {**TINY["transfer"], **transfer}})


class Recorder:
    """A progress hook that remembers every event and shows no bars."""

    def __init__(self):
        self.events: list[RunEvent] = []

    def __call__(self, event):
        self.events.append(event)


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    out = tmp_path_factory.mktemp("transfer")
    recorder = Recorder()
    result = run_transfer(tiny(), out, recorder)
    return out, result, recorder.events


def metrics_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


# ------------------------------------------------------------------ the matrix


@pytest.mark.slow
def test_matrix_writes_every_file_and_trains_each_language_set_once(done):
    out, _, events = done
    for name in ("transfer.json", "transfer.md", "transfer.csv", "transfer.png", "curve.json", "curve.png"):
        assert (out / name).is_file(), name
    assert (out / "transfer.png").read_bytes()[:8] == PNG_MAGIC
    assert [(e.name, e.status) for e in events] == [
        ("de", "train"),
        ("fr", "train"),
        ("fr-16", "train"),
        ("fr-32", "train"),
    ]
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["de", "fr"]
    assert not (out / "runs" / "de" / "checkpoint").exists()
    document = json.loads((out / "transfer.json").read_text())
    assert [row["name"] for row in document["rows"]] == ["de", "each"]
    assert document["runs"]["de"]["settings"] == ["de", "each:de"]
    assert set(document["by_selection"]) == {"source_dev", "target_dev", "last"}
    assert set(document["per_type"]) == {"de", "each:de", "each:fr"}
    assert set(document["per_type"]["de"]["fr"]) <= {"PER", "ORG", "LOC"}
    markdown = (out / "transfer.md").read_text()
    assert "| de |" in markdown and "| train \\ selection | source_dev | target_dev | last |" in markdown
    assert (out / "transfer.csv").read_text().splitlines()[0].startswith("setting,de,fr,mean,zero_shot_mean")


@pytest.mark.slow
def test_source_dev_headline_equals_each_runs_metrics_json(done):
    out, result, _ = done
    de, fr = metrics_of(out / "runs" / "de"), metrics_of(out / "runs" / "fr")
    assert result.table.selection == "source_dev"
    assert result.table.row("de").scores == (
        de["languages"]["de"]["test"]["f1"],
        de["languages"]["fr"]["test"]["f1"],
    )
    assert result.table.row("each").scores == (
        de["languages"]["de"]["test"]["f1"],
        fr["languages"]["fr"]["test"]["f1"],
    )
    assert any(score > 0 for score in result.table.row("de").scores)


@pytest.mark.slow
@pytest.mark.parametrize("run", ["de", "fr"])
def test_history_picks_the_checkpoint_that_was_kept(done, run):
    """The eval with the best source-dev score is the saved model: same step, same test F1."""
    out, _, _ = done
    metrics = metrics_of(out / "runs" / run)
    record = source_dev_record(read_eval_history(out / "runs" / run / "train_log.jsonl"))
    assert record is not None and record["step"] == metrics["best_step"]
    for lang in ("de", "fr"):
        assert record["eval"]["test_f1"][lang] == pytest.approx(
            metrics["languages"][lang]["test"]["f1"], abs=1e-9
        )


@pytest.mark.slow
def test_target_dev_and_last_come_from_the_eval_history(done):
    out, result, _ = done
    history = [
        json.loads(line) for line in (out / "runs" / "de" / "train_log.jsonl").read_text().splitlines()
    ]
    evals = [r["eval"] for r in history if "eval" in r]
    best_fr = max(evals, key=lambda e: e["dev_f1"]["fr"])  # first maximum, as the workflow reads it
    assert result.tables["target_dev"].row("de").scores[1] == best_fr["test_f1"]["fr"]
    assert result.tables["last"].row("de").scores == (evals[-1]["test_f1"]["de"], evals[-1]["test_f1"]["fr"])
    document = json.loads((out / "transfer.json").read_text())
    last_rows = {row["name"]: row["scores"] for row in document["by_selection"]["last"]["rows"]}
    assert last_rows["de"] == {"de": evals[-1]["test_f1"]["de"], "fr": evals[-1]["test_f1"]["fr"]}


@pytest.mark.slow
def test_run_folders_carry_their_recipe_and_sampled_indices(done):
    out, _, _ = done
    manifest = json.loads((out / "runs" / "de" / "data_manifest.json").read_text())
    assert len(manifest["train_indices"]["de"]) == 64
    recipe = load_recipe(out / "runs" / "fr" / "config.toml")
    assert recipe.data.train_languages == ["fr"] and recipe.train.select_on == "source_dev"
    assert load_recipe(out / "config.toml") == tiny()


# ------------------------------------------------------------------ the curve


@pytest.mark.slow
def test_curve_points_zero_shot_line_and_crossover(done):
    out, result, _ = done
    curve = json.loads((out / "curve.json").read_text())
    points = [(p["train_sentences"], p["f1"]) for p in curve["points"]]
    assert [n for n, _ in points] == [16, 32]
    for n, f1 in points:
        assert f1 == metrics_of(out / "curve" / f"fr-{n}")["languages"]["fr"]["test"]["f1"]
    assert curve["source"] == "de" and curve["target_language"] == "fr"
    assert curve["zero_shot_f1"] == result.table.row("de").scores[1]
    assert curve["crossover"] == crossover([16, 32], [f for _, f in points], curve["zero_shot_f1"])
    assert (out / "curve.png").read_bytes()[:8] == PNG_MAGIC


# ------------------------------------------------------------------ resuming


@pytest.mark.slow
def test_a_cut_transfer_retrains_only_the_unfinished_run(done, tmp_path, monkeypatch):
    out, first, _ = done
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    (copy / "runs" / "fr" / "metrics.json").unlink()
    calls: list[Path] = []
    real = transfer_run.train_run

    def counting(recipe, run_dir, *args, **kwargs):
        calls.append(run_dir)
        return real(recipe, run_dir, *args, **kwargs)

    monkeypatch.setattr(transfer_run, "train_run", counting)
    recorder = Recorder()
    again = run_transfer(tiny(), copy, recorder)
    assert calls == [copy / "runs" / "fr"]
    assert again.trained == ("fr",)
    assert [e.status for e in recorder.events] == ["reuse", "train", "reuse", "reuse"]
    assert again.table.row("de").scores == first.table.row("de").scores


@pytest.mark.slow
def test_changing_the_headline_selection_reuses_every_run(done, tmp_path):
    """Runs do not depend on the [transfer] section, so a new headline needs no training."""
    out, first, _ = done
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    again = run_transfer(tiny(selection="target_dev"), copy)
    assert again.trained == ()
    assert again.table == first.tables["target_dev"]
    assert json.loads((copy / "transfer.json").read_text())["selection"] == "target_dev"
    assert again.curve is not None and again.curve.zero_shot == first.tables["target_dev"].row("de").scores[1]


def _planned(tmp_path: Path) -> PlannedRun:
    recipe = run_recipe(tiny(), ["de"], ["de", "fr"])
    return PlannedRun("de", ("de",), ("de",), recipe, tmp_path / "de")


@pytest.mark.parametrize(
    ("files", "status"),
    [
        ({}, "train"),
        ({"config.toml": "same"}, "train"),
        ({"config.toml": "same", "checkpoint/loop_state.json": "{}"}, "resume"),
        ({"config.toml": "same", "metrics.json": "{}"}, "reuse"),
        ({"config.toml": "seed = 1\n", "metrics.json": "{}"}, "train"),
        ({"config.toml": "seed = 1\n", "checkpoint/loop_state.json": "{}"}, "train"),
    ],
)
def test_run_status(tmp_path, files, status):
    run = _planned(tmp_path)
    for name, text in files.items():
        path = run.run_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump_recipe(run.recipe) if text == "same" else text)
    assert run_status(run) == status


# ------------------------------------------------------------------ planning (no training)


def test_run_recipe_pins_selection_and_adds_training_languages_to_evaluation():
    recipe = build_recipe(
        {
            **TINY,
            "data": {**TINY["data"], "fractions": {"de": 0.5, "fr": 0.25, "it": 0.1}},
            "train": {**TINY["train"], "select_on": "all_dev"},
        }
    )
    run = run_recipe(recipe, ["it", "de"], ["de", "fr"])
    assert run.data.train_languages == ["it", "de"]
    assert run.data.eval_languages == ["de", "fr", "it"]
    assert run.data.fractions == {"it": 0.1, "de": 0.5}
    assert run.train.select_on == "source_dev"
    assert run.transfer == build_recipe({}).transfer


def test_plan_runs_names_folders_by_language_set(tmp_path):
    recipe = tiny(sources=[["fr", "de"], "each", "all"], sample_sizes=[])
    runs = plan_runs(recipe, expand_sources(recipe.transfer.sources, ["de", "fr"]), tmp_path)
    assert [(r.name, r.settings) for r in runs] == [
        ("de+fr", ("fr+de", "all")),
        ("de", ("each:de",)),
        ("fr", ("each:fr",)),
    ]
    assert runs[0].recipe.data.train_languages == ["fr", "de"]


def test_curve_runs_train_on_n_target_sentences_without_mixing(tmp_path):
    recipe = build_recipe(
        {**TINY, "data": {**TINY["data"], "fractions": {"fr": 0.5}, "sampling_temperature": 2.0}}
    )
    runs = plan_curve(recipe, tmp_path)
    assert [r.name for r in runs] == ["fr-16", "fr-32"]
    data = runs[1].recipe.data
    assert (data.train_languages, data.eval_languages, data.max_train_samples) == (["fr"], ["fr"], 32)
    assert data.fractions is None and data.sampling_temperature is None


@pytest.mark.parametrize(
    ("transfer", "data", "needle"),
    [
        ({"target_language": None}, {}, "needs transfer.target_language"),
        ({"target_language": "it"}, {}, "not in data.eval_languages"),
        ({"sample_sizes": [32, 16]}, {}, "increasing"),
        ({"sources": ["all"]}, {}, "zero-shot"),
        ({"sources": ["every"]}, {}, "unknown keyword"),
        ({"sources": [["de", "fr"]], "sample_sizes": []}, {"fractions": {"de": 0.5}}, "no fraction for fr"),
    ],
)
def test_bad_transfer_recipes_fail_before_any_training(tmp_path, monkeypatch, transfer, data, needle):
    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking the recipe")

    monkeypatch.setattr(transfer_run, "train_run", no_training)
    recipe = build_recipe(
        {**TINY, "data": {**TINY["data"], **data}, "transfer": {**TINY["transfer"], **transfer}}
    )
    with pytest.raises(ConfigError, match=needle):
        run_transfer(recipe, tmp_path)


@pytest.mark.parametrize(
    ("name", "runs", "curve"),
    [("panx-transfer.toml", 6, 5), ("transfer-local.toml", 5, 4), ("xtreme-en.toml", 1, 0)],
)
def test_shipped_transfer_recipes_plan(tmp_path, name, runs, curve):
    recipe = load_recipe(RECIPES / name)
    settings = transfer_plan.expand_settings(recipe)
    assert len(plan_runs(recipe, settings, tmp_path)) == runs
    assert len(plan_curve(recipe, tmp_path) if recipe.transfer.sample_sizes else []) == curve


def test_swiss_mix_recipe_runs_offline_with_overrides():
    overrides = ["model.name=scratch:tiny", "data.source=sample", "train.epochs=1"]
    recipe = load_recipe(RECIPES / "panx-swiss.toml", overrides)
    data = load_training_data(recipe)
    corpus = load_corpus(str(SAMPLE_DIR), recipe.data.train_languages, ["train"])
    available = {lang: len(corpus.get(lang, "train") or []) for lang in recipe.data.train_languages}
    assert data.manifest["sampling"] == "fractions"
    for lang, fraction in recipe.data.fractions.items():
        assert len(data.manifest["train_indices"][lang]) == int(fraction * available[lang])
    single = run_recipe(recipe, ["de"], recipe.eval_languages)
    assert single.data.fractions == {"de": 0.629}


# ------------------------------------------------------------------ CLI


@pytest.mark.slow
def test_cli_transfer_reuses_finished_runs_and_prints_the_table(done, tmp_path):
    out, _, _ = done
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_TOML)
    result = CliRunner().invoke(app, ["transfer", str(recipe), "-o", str(copy)])
    assert result.exit_code == 0, result.output
    assert "each" in result.output and "zero-shot" in result.output
    assert "none (all reused)" in result.output


def test_cli_transfer_error_is_one_line(tmp_path):
    recipe = tmp_path / "bad.toml"
    recipe.write_text('[transfer]\nsources = ["every"]\n')
    result = CliRunner().invoke(app, ["transfer", str(recipe), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "unknown keyword" in result.output and "Traceback" not in result.output
