"""The GPU benchmark script: span F1 equal to seqeval's default mode; a run without datasets or seqeval.

The GPU machines have torch, transformers and accelerate but neither ``datasets`` nor
``seqeval``; the smoke test runs the whole script (``--device cpu --tiny --quick``) in a fresh
interpreter where importing either fails, as it would there. No timing is asserted.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench.gpu_f1 import span_f1
from bench.gpu_predict import agreement, char_spans
from bench.gpu_sides import BucketCollator, bucket, budget_batches

ROOT = Path(__file__).resolve().parents[1]
TAGS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG")
BLOCKED = ("datasets", "seqeval", "evaluate")


def random_tags(rng: random.Random, n: int) -> list[list[str]]:
    return [[rng.choice(TAGS) for _ in range(rng.randint(1, 15))] for _ in range(n)]


@pytest.mark.parametrize("seed", range(5))
def test_span_f1_equals_seqeval_default_mode(seed: int) -> None:
    from seqeval.metrics import f1_score

    rng = random.Random(seed)
    gold = random_tags(rng, 300)  # orphan I- tags included: conlleval starts an entity there
    pred = [[tag if rng.random() < 0.7 else rng.choice(TAGS) for tag in sentence] for sentence in gold]
    assert span_f1(gold, pred) == pytest.approx(f1_score(gold, pred), abs=1e-12)


def test_span_f1_without_entities_is_zero_and_identical_tags_score_one() -> None:
    assert span_f1([["O", "O"]], [["O", "O"]]) == 0.0
    assert span_f1([["B-PER", "I-PER", "O"]], [["B-PER", "I-PER", "O"]]) == 1.0
    assert span_f1([["B-PER", "I-PER"]], [["B-PER", "O"]]) == 0.0


def test_char_spans_point_at_the_words_of_the_joined_text() -> None:
    tokens = ["Anton", "von", "Zuccalmaglio", "in", "Köln"]
    text = " ".join(tokens)
    spans = char_spans(tokens, ["B-PER", "I-PER", "I-PER", "O", "B-LOC"])
    assert [(text[s:e], label) for s, e, label in spans] == [
        ("Anton von Zuccalmaglio", "PER"),
        ("Köln", "LOC"),
    ]
    groups = [
        [{"start": 0, "end": 22, "entity_group": "PER"}, {"start": 26, "end": 30, "entity_group": "ORG"}]
    ]
    assert agreement(groups, [spans]) == pytest.approx(0.5)


def test_token_budget_batches_cover_every_sentence_once_within_the_budget() -> None:
    rng = random.Random(0)
    lengths = [rng.randint(3, 120) for _ in range(3000)]
    batches = budget_batches(lengths, 8192, seed=1)(0)
    assert sorted(i for batch in batches for i in batch) == list(range(3000))
    assert all(len(b) * bucket(max(lengths[i] for i in b)) <= 8192 for b in batches)
    assert budget_batches(lengths, 8192, seed=1)(0) == batches != budget_batches(lengths, 8192, seed=1)(1)


def test_bucket_collator_pads_to_a_multiple_of_16_with_neutral_values() -> None:
    from nertool.model.align import Feature

    features = [
        Feature(0, (0, 5, 6, 2), (-1, 0, 1, -1), 0, 2, (-100, 3, 4, -100)),
        Feature(1, (0, 7, 2), (-1, 0, -1), 0, 1, (-100, 1, -100)),
    ]
    batch = BucketCollator(pad_id=1)(features)
    assert {k: tuple(v.shape) for k, v in batch.items()} == {
        k: (2, 16) for k in ("input_ids", "attention_mask", "labels")
    }
    assert batch["attention_mask"].sum().item() == 7
    assert set(batch["input_ids"][:, 4:].unique().tolist()) == {1}
    assert set(batch["labels"][:, 4:].unique().tolist()) == {-100}


GUARD = textwrap.dedent(
    f"""
    import runpy, sys
    for name in {BLOCKED!r}:
        sys.modules[name] = None  # "import datasets" fails, find_spec says absent: as on the GPU machine
    sys.argv = ["bench.gpu_train", *sys.argv[1:]]
    runpy.run_module("bench.gpu_train", run_name="__main__")
    """
)


@pytest.mark.slow
def test_the_script_runs_end_to_end_on_cpu_without_datasets_or_seqeval(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    no_data = tmp_path / "no-shared-data"  # the bundled sample, wherever the tests run
    no_data.mkdir()
    args = ["--device", "cpu", "--tiny", "--quick", "--out", str(tmp_path), "--data-root", str(no_data)]
    done = subprocess.run(
        [sys.executable, "-c", GUARD, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((tmp_path / "gpu_cpu.json").read_text(encoding="utf-8"))
    for key in (
        "scenario",
        "machine",
        "baseline",
        "nertool",
        "ratio",
        "baseline_config",
        "repeats",
        "spread",
    ):
        assert key in record
    assert record["smoke_test_only"] is True
    assert "group_by_length" in record["baseline_config"] and "adamw_torch_fused" in record["baseline_config"]
    sides = record["sides"]
    assert set(sides) == {"trainer", "shipped_loop", "eager", "graphs", "budget_1024", "budget_2048"}
    for name, side in sides.items():
        assert side["sentences_per_s"] > 0 and side["ms_per_step"] > 0, name
        assert name == "shipped_loop" or 0.0 <= side["dev_f1"] <= 1.0
    assert sides["graphs"]["graphs_captured"] == 0  # no CUDA: every step eager
    assert record["ratio"] == pytest.approx(
        sides["graphs"]["sentences_per_s"] / sides["trainer"]["sentences_per_s"], rel=1e-3
    )
    assert set(record["predict"]) == {"precision", "batch_8", "batch_32"}
    assert all(0.0 <= record["predict"][b]["entity_agreement_f1"] <= 1.0 for b in ("batch_8", "batch_32"))
    assert {"graphs", "eager_vs_shipped_loop", "budget_1024", "budget_2048", "predict_batch_32"} <= set(
        record["targets"]
    )
