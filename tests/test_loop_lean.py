"""The lean step: token-budget batches, bucketed widths, device-side skips and tallies, the
CUDA-graph seam on a CPU. The reference is the plain path (no buckets, foreach AdamW with the
skip decided on the host): the lean path must reach the same losses and weights."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import pytest
import torch
from tiny_models import QuadraticModel, tiny_token_classifier

from nertool.model.align import Feature
from nertool.model.batching import FeatureCollator, padded_width, token_budget_training_batches
from nertool.train import runtime
from nertool.train.loop import JsonlLogReporter, Loop, LoopSettings, SilentReporter


def random_lengths(n: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(3, 60) for _ in range(n)]


@pytest.mark.parametrize(("budget", "multiple"), [(64, 1), (256, 16), (1000, 8), (60, 1)])
def test_token_budget_batches_cover_every_sentence_once_within_the_budget(budget: int, multiple: int) -> None:
    lengths = random_lengths(700, seed=budget)
    for epoch in range(3):
        batches = token_budget_training_batches(lengths, budget, seed=5, epoch=epoch, multiple=multiple)
        assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
        for batch in batches:
            assert len(batch) * padded_width(max(lengths[i] for i in batch), multiple) <= budget


def test_token_budget_batches_are_a_function_of_seed_and_epoch() -> None:
    lengths = random_lengths(300)
    first = token_budget_training_batches(lengths, 200, seed=1, epoch=0)
    assert first == token_budget_training_batches(lengths, 200, seed=1, epoch=0)
    assert first != token_budget_training_batches(lengths, 200, seed=1, epoch=1)


def test_widths_are_padded_to_the_bucket() -> None:
    features = [Feature(0, (0, 5, 6, 2), (-1, 0, 1, -1), 0, 2, (-100, 1, 1, -100))]
    batch = FeatureCollator(pad_id=1, multiple=16)(features)
    assert batch["input_ids"].shape == (1, 16)
    assert batch["attention_mask"].sum() == 4 and (batch["labels"][0, 4:] == -100).all()


class CountingCollator(FeatureCollator):
    def __init__(self, multiple: int):
        super().__init__(0, multiple)
        self.seen: list[int] = []
        self.positions: list[int] = []

    def __call__(self, features):
        self.seen += [f.sentence for f in features]
        batch = super().__call__(features)
        self.positions.append(batch["input_ids"].numel())
        return batch


def features_of(lengths: list[int]) -> list[Feature]:
    return [
        Feature(i, tuple([0] + [5] * (n - 2) + [2]), tuple(range(-1, n - 1)), 0, n - 2, tuple([1] * n))
        for i, n in enumerate(lengths)
    ]


def test_a_token_budget_run_trains_every_sentence_once_per_epoch(tmp_path: Path) -> None:
    features = features_of(random_lengths(90, seed=2))
    settings = LoopSettings(
        epochs=2, batch_size=8, learning_rate=0.01, max_tokens_per_batch=128, pad_to_multiple_of=8
    )
    collator = CountingCollator(multiple=8)
    loop = Loop(QuadraticModel(by_mask=True), features, settings, tmp_path, collator=collator)
    loop.run()
    assert sorted(collator.seen) == sorted(list(range(90)) * 2)
    assert max(collator.positions) <= 128
    assert loop.state.step == loop.total == len(collator.positions)


def test_a_non_finite_step_is_skipped_on_the_device_and_logged(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NERTOOL_TEST_NAN_RANK", "0")
    monkeypatch.setenv("NERTOOL_TEST_NAN_STEP", "2")
    log_path = tmp_path / "log.jsonl"
    settings = LoopSettings(epochs=1, batch_size=2, learning_rate=0.01, log_every=3, warmup_ratio=0.0)
    reporter = JsonlLogReporter(log_path, SilentReporter())
    model = QuadraticModel(by_mask=True)
    loop = Loop(model, features_of([5] * 12), settings, tmp_path / "ck", reporter=reporter)
    state = loop.run()
    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [r["step"] for r in records if "warning" in r] == [2]
    assert state.nonfinite_steps == 1 and state.step == 6
    optimizer_state = loop._raw_optimizer.state[loop.accelerator.unwrap_model(loop.model).weight]
    assert int(optimizer_state["step"]) == 5, "the skipped step did not update"
    assert torch.isfinite(loop.model.weight).all()


def labelled_features(n: int) -> list[Feature]:
    rng = random.Random(3)
    features = []
    for i in range(n):
        words = rng.randint(2, 20)
        ids = tuple([0] + [rng.randint(5, 59) for _ in range(words)] + [2])
        labels = tuple([-100] + [rng.randint(0, 2) for _ in range(words)] + [-100])
        features.append(Feature(i, ids, tuple([-1, *range(words), -1]), 0, words, labels))
    return features


class LossReporter(SilentReporter):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def step(self, step: int, loss: float) -> None:
        self.losses.append(loss)


def train_tiny(tmp_path: Path, *, multiple: int) -> tuple[list[float], dict[str, torch.Tensor]]:
    settings = LoopSettings(
        epochs=2, batch_size=6, learning_rate=3e-3, pad_to_multiple_of=multiple, seed=4, log_every=5
    )
    reporter = LossReporter()
    model = tiny_token_classifier(vocab_size=60, hidden_size=16, num_labels=3)
    loop = Loop(model, labelled_features(48), settings, tmp_path, reporter=reporter)
    loop.run()
    return reporter.losses, loop.accelerator.unwrap_model(loop.model).state_dict()


@pytest.mark.slow  # trains two small models
def test_the_bucketed_device_side_run_matches_the_plain_loop(tmp_path: Path, monkeypatch) -> None:
    lean_losses, lean_weights = train_tiny(tmp_path / "lean", multiple=16)

    def plain_optimizer(groups, learning_rate):  # foreach AdamW, the skip decided on the host
        return torch.optim.AdamW(groups, lr=learning_rate, foreach=True), False

    monkeypatch.setattr("nertool.train.loop.make_optimizer", plain_optimizer)
    plain_losses, plain_weights = train_tiny(tmp_path / "plain", multiple=1)
    assert len(lean_losses) == len(plain_losses) == 16
    assert lean_losses == pytest.approx(plain_losses, rel=1e-4, abs=1e-5)
    for name, tensor in plain_weights.items():
        torch.testing.assert_close(lean_weights[name], tensor, rtol=1e-4, atol=1e-5, msg=name)


def test_cuda_graphs_on_a_cpu_warn_once_and_run_eager(tmp_path: Path, caplog) -> None:
    settings = LoopSettings(epochs=1, batch_size=4, learning_rate=0.01, cuda_graphs=True)
    with caplog.at_level(logging.WARNING, logger="nertool"):
        state = Loop(QuadraticModel(by_mask=True), features_of([4] * 8), settings, tmp_path).run()
    warnings = [r.message for r in caplog.records if "cuda_graphs" in r.getMessage()]
    assert len(warnings) == 1 and state.step == 2


def test_fused_adamw_where_the_device_has_it() -> None:
    groups = [{"params": [torch.nn.Parameter(torch.ones(2))]}]
    optimizer, skips_on_device = runtime.make_optimizer(groups, 0.1)
    assert skips_on_device and optimizer.defaults["fused"]
