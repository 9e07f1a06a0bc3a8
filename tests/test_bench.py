"""The benchmark harness: every quick scenario writes a complete record with numeric ratios.

Runs ``python -m bench.run --quick`` in a subprocess (the GPU script's smoke run is
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

ROOT = Path(__file__).resolve().parents[1]
CPU_SCENARIOS = ("training", "preprocessing", "inference", "memory")
REQUIRED = ("scenario", "machine", "unit", "baseline", "nertool", "ratio", "quality", "rows")
MACHINE_KEYS = ("cpu", "cores", "torch", "transformers", "device")

pytestmark = pytest.mark.slow


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


@pytest.mark.parametrize("scenario", CPU_SCENARIOS)
def test_record_has_required_keys_and_numeric_ratio(results: Path, scenario: str) -> None:
    record = load(results, scenario)
    assert all(key in record for key in REQUIRED)
    assert record["scenario"] == scenario and record["quick"] is True
    assert all(key in record["machine"] for key in MACHINE_KEYS)
    assert is_number(record["baseline"]) and is_number(record["nertool"]) and is_number(record["ratio"])
    assert record["ratio"] == pytest.approx(record["nertool"] / record["baseline"], rel=1e-3)
    assert record["baseline"] > 0 and record["nertool"] > 0


@pytest.mark.parametrize("scenario", CPU_SCENARIOS)
def test_every_row_names_its_direction(results: Path, scenario: str) -> None:
    for row in load(results, scenario)["rows"]:
        assert row["better"] in ("higher", "lower")
        assert set(row) >= {"metric", "unit", "baseline", "nertool", "ratio"}


def test_preprocessing_labels_agree_on_every_single_window_sentence(results: Path) -> None:
    quality = load(results, "preprocessing")["quality"]
    assert quality["compared_single_window"] > 0
    assert quality["identical_ids_and_labels"] == quality["compared_single_window"]


def test_training_starts_both_sides_from_the_same_weights_and_steps(results: Path) -> None:
    record = load(results, "training")
    quality = record["quality"]
    assert quality["identical_initial_weights"] is True
    assert quality["steps"]["baseline"] == quality["steps"]["nertool"] == record["settings"]["steps"]
    assert set(quality["dev_f1"]) == {"baseline", "nertool"}


def test_inference_reports_tag_agreement_and_the_quantized_variant(results: Path) -> None:
    quality = load(results, "inference")["quality"]
    comparison = quality["pipeline_vs_nertool"]
    assert comparison["words"] > 0 and 0.0 <= comparison["word_disagreement"] <= 1.0
    assert is_number(quality["quantized_ratio_vs_pipeline"])
    assert set(quality["test_f1"]) == {"baseline", "nertool", "quantized"}


def test_memory_compares_a_large_file_with_a_small_one(results: Path) -> None:
    record = load(results, "memory")
    assert record["settings"]["large_mb"] > record["settings"]["small_mb"]
    assert record["quality"]["lines"]["large"] > record["quality"]["lines"]["small"]


def test_pretrain_transfer_records_both_encoders_at_every_learning_rate(tmp_path: Path) -> None:
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
        ("pretrained", 5e-4), ("pretrained", 1e-3), ("random", 5e-4), ("random", 1e-3)
    ]  # fmt: skip
    assert [row["metric"] for row in record["rows"]] == [
        "zero-shot mean F1", "de test F1 (in-language)", "fr test F1 (zero-shot)", "en test F1 (zero-shot)"
    ]  # fmt: skip
    for encoder, side in (("random", "baseline"), ("pretrained", "nertool")):
        best = max((r for r in runs if r["encoder"] == encoder), key=lambda r: r["dev_f1"])
        assert record["quality"]["chosen_learning_rate"][encoder] == best["learning_rate"]
        assert record["rows"][1][side] == pytest.approx(best["test_f1"]["de"], abs=1e-4)
    assert record["baseline_name"] == "random weights (scratch:tiny)"
