"""The benchmark harness: its alternation and statistics, and every quick scenario's record.

The harness tests use fake sides and a fake clock (nothing is timed). The slow tests run
``python -m bench.run --quick`` in a subprocess (the GPU script's smoke run is
``tests/test_gpu_bench.py``), against the bundled sample (``--data-root`` points at an empty folder), with a
throw-away model cache. No timing is asserted: these numbers depend on the machine; what is
checked is that each scenario ran both sides and recorded them in the agreed shape.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.run import CPU_SCENARIOS  # every scenario make bench runs on a CPU

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = (
    "scenario", "machine", "unit", "baseline", "nertool", "ratio", "quality", "rows",
    "baseline_config", "repeats", "spread",
)  # fmt: skip
MACHINE_KEYS = ("cpu", "cores", "torch", "transformers", "device")

slow = pytest.mark.slow


def run_module(args: list[str], cwd: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Quick records of every scenario, written to a temporary folder."""
    tmp = tmp_path_factory.mktemp("bench")
    out, cache, no_data = tmp / "results", tmp / "cache", tmp / "no-shared-data"
    no_data.mkdir()
    common = ["--quick", "--out", str(out), "--data-root", str(no_data)]
    scenarios = [arg for name in CPU_SCENARIOS for arg in ("--scenario", name)]
    run_module(["bench.run", *common, "--cache", str(cache), *scenarios], ROOT)
    return out


def load(results: Path, scenario: str) -> dict[str, Any]:
    return json.loads((results / f"{scenario}.json").read_text(encoding="utf-8"))


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@slow
@pytest.mark.parametrize("scenario", CPU_SCENARIOS)
def test_record_has_required_keys_and_numeric_ratio(results: Path, scenario: str) -> None:
    record = load(results, scenario)
    assert all(key in record for key in REQUIRED)
    assert record["scenario"].replace(" ", "_") == scenario and record["quick"] is True
    assert all(key in record["machine"] for key in MACHINE_KEYS)
    assert is_number(record["baseline"]) and is_number(record["nertool"]) and is_number(record["ratio"])
    assert record["ratio"] == pytest.approx(record["nertool"] / record["baseline"], rel=1e-3)
    assert record["baseline"] > 0 and record["nertool"] > 0


@slow
@pytest.mark.parametrize("scenario", CPU_SCENARIOS)
def test_every_row_names_its_direction(results: Path, scenario: str) -> None:
    for row in load(results, scenario)["rows"]:
        assert row["better"] in ("higher", "lower")
        assert set(row) >= {"metric", "unit", "baseline", "nertool", "ratio"}


@slow
def test_preprocessing_labels_agree_on_every_single_window_sentence(results: Path) -> None:
    quality = load(results, "preprocessing")["quality"]
    assert quality["compared_single_window"] > 0
    assert quality["identical_ids_and_labels"] == quality["compared_single_window"]


@slow
def test_training_starts_both_sides_from_the_same_weights_and_steps(results: Path) -> None:
    record = load(results, "training")
    quality = record["quality"]
    assert quality["identical_initial_weights"] is True
    assert quality["steps"]["baseline"] == quality["steps"]["nertool"] == record["settings"]["steps"]
    assert set(quality["dev_f1"]) == {"baseline", "nertool", "baseline_eager"}
    assert record["spread"]["baseline_eager"]["values"]  # the Trainer with eager attention beside it


@slow
def test_training_bf16_runs_both_sides_in_bf16_beside_the_loop_in_fp32(results: Path) -> None:
    record = load(results, "training_bf16")
    quality, native = record["quality"], record["settings"]["native_bf16"]
    assert record["baseline_config"]["precision"].startswith("bf16=True")
    assert quality["identical_initial_weights"] is True
    loop = "bf16" if native else "no"  # without the instructions the loop says fp32 and runs it
    runs = {"baseline": "bf16", "nertool": loop, "nertool_fp32": "no", "baseline_eager": "bf16"}
    assert quality["precision_run"] == runs
    assert set(quality["dev_f1"]) == set(runs)
    rows = record["rows"]
    reference = next(row for row in rows if row["metric"].startswith("loop throughput, fp32 -> bf16"))
    assert is_number(reference["ratio"]) and record["spread"]["fp32_to_bf16"]["values"]


@slow
def test_inference_reports_tag_agreement_and_the_quantized_variant(results: Path) -> None:
    record = load(results, "inference")
    quality = record["quality"]
    comparison = quality["pipeline_vs_nertool"]
    assert comparison["words"] > 0 and 0.0 <= comparison["word_disagreement"] <= 1.0
    assert set(quality["test_f1"]) == {"baseline", "nertool", "quantized"}
    int8 = next(row for row in record["rows"] if row["metric"].startswith("throughput int8 vs int8"))
    assert is_number(int8["ratio"]) and record["spread"]["int8"]["ratio"]["values"]
    assert "fastest of" in record["baseline_config"]["batch_size"]


@slow
def test_predict_whole_process_tags_every_sentence_on_every_side(results: Path) -> None:
    record = load(results, "predict_whole_process")
    quality, settings = record["quality"], record["settings"]
    assert set(quality["records_out"].values()) == {quality["sentences_in"]} and settings["sentences"] > 0
    check = quality["first_subword_check"]
    assert check["same_input_ids"] > 0 and check["same_first_subword_label"] == check["words"] > 0
    assert settings["best_backend"] in ("nertool", "onnx") and record["nertool_name"].endswith(
        "onnx" if settings["best_backend"] == "onnx" else "torch"
    )
    assert all(is_number(v) and v > 0 for v in settings["startup_s"].values())
    assert "fastest of" in record["baseline_config"]["batch_size"]


@slow
def test_training_memory_reports_gb_per_million_sentences_of_identical_windows(results: Path) -> None:
    record = load(results, "training_memory")
    assert "training memory" in record["scenario"]
    assert record["gb_per_million_sentences"] > 0
    assert (
        record["quality"]["same_windows"] and record["quality"]["windows"] >= record["settings"]["sentences"]
    )


@slow
def test_training_baseline_is_the_grouped_fused_trainer(results: Path) -> None:
    record = load(results, "training")
    assert record["baseline_config"]["train_sampling_strategy"] == "group_by_length"
    assert "fused" in record["baseline_config"]["optim"]
    assert record["spread"]["ratio"]["values"]


@slow
def test_memory_compares_a_large_file_with_a_small_one(results: Path) -> None:
    record = load(results, "memory")
    assert record["settings"]["large_mb"] > record["settings"]["small_mb"]
    assert record["quality"]["lines"]["large"] > record["quality"]["lines"]["small"]


@slow
def test_pretrain_transfer_records_all_three_encoders_at_every_learning_rate(tmp_path: Path) -> None:
    """Toy sizes on the bundled sample: pre-train 3 steps, fine-tune 1 epoch at two learning rates."""
    sample = ROOT / "nertool" / "resources" / "sample"
    languages = '["de","fr","en"]'
    run_module(
        [
            "bench.pretrain_transfer",
            "--pretrain-recipe", str(ROOT / "recipes" / "pretrain-wikiann-cpu.toml"),
            "--data", str(sample),
            "--pretrain-set", f"pretrain.languages={languages}",
            "--pretrain-set", "pretrain.steps=3",
            "--pretrain-set", "pretrain.eval_every=3",
            "--pretrain-set", "model.vocab_size=600",
            "--finetune-set", f"data.eval_languages={languages}",
            "--finetune-set", "train.epochs=1",
            "--lr", "1e-3", "--lr", "5e-4",
            "--train-sentences", "120", "--eval-sentences", "40",
            "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--name", "pt",
        ],
        ROOT,
    )  # fmt: skip
    record = json.loads((tmp_path / "out" / "pt.json").read_text(encoding="utf-8"))
    pretraining, runs = record["settings"]["pretraining"], record["settings"]["fine_tuning"]
    assert pretraining["steps"] == 3 and [e["step"] for e in pretraining["heldout"]] == [3]
    assert sorted((r["encoder"], r["learning_rate"]) for r in runs) == [
        ("control", 5e-4), ("control", 1e-3), ("pretrained", 5e-4), ("pretrained", 1e-3),
        ("random", 5e-4), ("random", 1e-3),
    ]  # fmt: skip
    assert [row["metric"] for row in record["rows"]] == [
        "zero-shot mean F1", "de test F1 (in-language)", "fr test F1 (zero-shot)", "en test F1 (zero-shot)",
        "control: zero-shot mean F1", "control: de test F1", "control: fr test F1", "control: en test F1",
    ]  # fmt: skip
    for encoder, side in (("random", "baseline"), ("pretrained", "nertool")):
        best = max((r for r in runs if r["encoder"] == encoder), key=lambda r: r["dev_f1"])
        assert record["quality"]["chosen_learning_rate"][encoder] == best["learning_rate"]
        assert record["rows"][1][side] == pytest.approx(best["test_f1"]["de"], abs=1e-4)
    control = max((r for r in runs if r["encoder"] == "control"), key=lambda r: r["dev_f1"])
    assert record["rows"][5]["baseline"] == pytest.approx(control["test_f1"]["de"], abs=1e-4)
    # the control encoder has the pre-trained encoder's tokenizer, not one trained on German
    control_dir = tmp_path / "work" / "control-encoder"
    encoder_dir = tmp_path / "work" / "pretrain" / "model"
    assert (control_dir / "tokenizer.json").read_bytes() == (encoder_dir / "tokenizer.json").read_bytes()
    assert record["baseline_name"] == "random weights (scratch:tiny)"


# ---------------------------------------------------------------- harness logic (fake sides, fake clock)


class FakeClock:
    """A clock that only moves when a fake side says how long it "took"."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fake_side(name: str, costs: list[float], clock: FakeClock, calls: list[str]) -> Any:
    """A side that logs its call, advances the clock by its next cost and returns its run number."""
    runs = iter(costs)

    def side() -> tuple[str, int]:
        calls.append(name)
        clock.now += next(runs)
        return name, calls.count(name)

    return side


def test_sides_alternate_and_each_run_is_timed_on_its_own() -> None:
    from bench.harness import measure_alternating

    clock, calls = FakeClock(), []
    sides = [
        ("baseline", fake_side("baseline", [4.0, 6.0, 5.0], clock, calls)),
        ("nertool", fake_side("nertool", [2.0, 1.0, 3.0], clock, calls)),
    ]
    runs = measure_alternating(sides, repeats=3, clock=clock)
    assert calls == ["baseline", "nertool"] * 3
    assert runs["baseline"].seconds == (4.0, 6.0, 5.0)
    assert runs["nertool"].seconds == (2.0, 1.0, 3.0)
    assert runs["nertool"].results == (("nertool", 1), ("nertool", 2), ("nertool", 3))
    assert runs["baseline"].median_seconds == 5.0 and runs["nertool"].median_seconds == 2.0


def test_more_than_two_sides_keep_their_order_within_each_repeat() -> None:
    from bench.harness import measure_alternating

    clock, calls = FakeClock(), []
    sides = [(n, fake_side(n, [1.0, 1.0], clock, calls)) for n in ("a", "b", "c")]
    measure_alternating(sides, repeats=2, clock=clock)
    assert calls == ["a", "b", "c", "a", "b", "c"]


@pytest.mark.parametrize("repeats", [0, -1])
def test_alternating_needs_a_repeat(repeats: int) -> None:
    from bench.harness import measure_alternating

    with pytest.raises(ValueError):
        measure_alternating([("a", lambda: None)], repeats=repeats)


def test_rates_and_spread_of_repeats() -> None:
    from bench.harness import Repeats, Spread

    runs = Repeats("nertool", (2.0, 4.0, 1.0, 5.0), (0.0,) * 4, (None,) * 4)
    assert runs.rates(100) == (50.0, 25.0, 100.0, 20.0)
    assert runs.rates([10, 20, 30, 40]) == (5.0, 5.0, 30.0, 8.0)
    spread = Spread.of(runs.rates(100))
    assert (spread.median, spread.min, spread.max) == (37.5, 20.0, 100.0)
    assert (spread.q1, spread.q3) == (23.75, 62.5)  # inclusive quartiles of 20, 25, 50, 100
    assert spread.values == (50.0, 25.0, 100.0, 20.0)  # run order kept
    one = Spread.of([3.0])
    assert (one.median, one.min, one.max, one.q1, one.q3) == (3.0,) * 5


def test_headline_spread_pairs_each_repeat() -> None:
    from bench.harness import headline_spread, paired_ratios

    assert paired_ratios([10.0, 20.0, 40.0], [20.0, 20.0, 60.0]) == (2.0, 1.0, 1.5)
    block = headline_spread([10.0, 20.0, 40.0], [20.0, 20.0, 60.0], "sentences/s")
    assert block["unit"] == "sentences/s"
    assert block["baseline"]["median"] == 20.0 and block["nertool"]["max"] == 60.0
    assert block["ratio"] == {
        "median": 1.5, "min": 1.0, "max": 2.0, "iqr": [1.25, 1.75], "values": [2.0, 1.0, 1.5]
    }  # fmt: skip


def test_record_carries_baseline_config_repeats_and_spread(tmp_path: Path) -> None:
    from bench.harness import Options, Row, headline_spread, make_record, write_record

    spread = headline_spread([10.0, 12.0, 11.0], [22.0, 20.0, 21.0], "sentences/s")
    rows = [Row("throughput", "sentences/s", 11.0, 21.0), Row("wall time", "s", 3.0, 1.5, "lower")]
    record = make_record(
        "fake",
        Options(quick=True),
        rows,
        {"check": True},
        {"size": 1},
        ("base", "ours"),
        baseline_config={"train_sampling_strategy": "group_by_length"},
        repeats=3,
        spread=spread,
    )
    written = json.loads(write_record(record, tmp_path).read_text(encoding="utf-8"))
    assert all(key in written for key in REQUIRED)
    assert written["scenario"] == "fake" and written["repeats"] == 3
    assert written["ratio"] == pytest.approx(21.0 / 11.0, abs=1e-4)
    assert written["baseline_config"] == {"train_sampling_strategy": "group_by_length"}
    assert written["spread"]["ratio"]["values"] == pytest.approx([2.2, 20 / 12, 21 / 11], abs=1e-4)
    assert [row["better"] for row in written["rows"]] == ["higher", "lower"]
