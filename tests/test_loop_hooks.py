"""The loop's construction-time hooks, its evaluation schedules, the time predicate and the one
recipe → ``LoopSettings`` mapping shared by ``train`` and ``pretrain``."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
from tiny_models import QuadraticModel

from nertool.config import build_recipe
from nertool.model.align import Feature
from nertool.train.loop import Loop, LoopHooks, evals_per_epoch, every_n_batches
from nertool.train.runtime import time_is_up
from nertool.train.settings import LoopSettings, loop_settings
from nertool.workflows.pretrain import pretrain_settings


def _features(n: int) -> list[Feature]:
    return [Feature(i, (0, 5, 2), (-1, 0, -1), 0, 1, (-100, 1, -100)) for i in range(n)]


def test_hooks_are_given_at_construction_and_called(tmp_path: Path) -> None:
    epochs, scored, kept = [], [], []

    def score(model):
        scored.append(float(model.weight.detach().sum()))
        return -scored[-1], {"weight_sum": scored[-1]}

    hooks = LoopHooks(score=score, on_best=kept.append, on_epoch_start=epochs.append)
    settings = LoopSettings(epochs=2, batch_size=4, learning_rate=0.1, warmup_ratio=0.0, evals_per_epoch=2)
    loop = Loop(QuadraticModel(), _features(16), settings, tmp_path / "checkpoint", hooks=hooks)
    state = loop.run()
    assert epochs == [0, 1]
    assert len(scored) == 4 and [r["step"] for r in state.history] == [2, 4, 6, 8]
    assert len(kept) == 4, "the weights shrink, so every evaluation is a new best"
    assert state.best_step == 8
    assert (tmp_path / "checkpoint" / "manifest.json").is_file()


def test_without_a_score_the_last_model_is_kept(tmp_path: Path) -> None:
    kept = []
    settings = LoopSettings(epochs=1, batch_size=4, learning_rate=0.1)
    Loop(QuadraticModel(), _features(8), settings, tmp_path, hooks=LoopHooks(on_best=kept.append)).run()
    assert len(kept) == 1


def test_a_custom_schedule_replaces_evals_per_epoch(tmp_path: Path) -> None:
    seen = []

    def last_batch(epoch: int, n: int) -> set[int]:
        seen.append((epoch, n))
        return {n - 1}

    hooks = LoopHooks(score=lambda model: (0.0, {}), eval_schedule=last_batch)
    settings = LoopSettings(epochs=3, batch_size=4, learning_rate=0.1, evals_per_epoch=5)
    state = Loop(QuadraticModel(), _features(8), settings, tmp_path, hooks=hooks).run()
    assert seen == [(0, 2), (1, 2), (2, 2)]
    assert [r["step"] for r in state.history] == [2, 4, 6]


def test_hooks_cannot_be_patched_later() -> None:
    with pytest.raises(AttributeError):
        LoopHooks().score = None  # type: ignore[misc]


@pytest.mark.parametrize("n,per", [(1, 1), (7, 1), (7, 3), (10, 4), (3, 5)])
def test_evals_per_epoch_spreads_evaluations_and_ends_the_epoch(n: int, per: int) -> None:
    points = evals_per_epoch(per)(0, n)
    assert n - 1 in points and all(0 <= p < n for p in points)
    assert points == {max(1, round(n * (k + 1) / per)) - 1 for k in range(per)}


def test_every_n_batches_counts_across_epochs() -> None:
    schedule = every_n_batches(3)
    run = [epoch * 4 + batch + 1 for epoch in range(3) for batch in sorted(schedule(epoch, 4))]
    assert run == [3, 6, 9, 12]


def test_time_is_up_is_a_pure_predicate() -> None:
    assert not time_is_up(10.0, 1e9, None)
    assert not time_is_up(10.0, 15.0, 5.0)
    assert time_is_up(10.0, 15.5, 5.0)


def test_one_mapping_from_train_keys_for_both_jobs() -> None:
    recipe = build_recipe(
        {
            "seed": 11,
            "train": {"batch_size": 3, "learning_rate": 1e-3, "log_every": 2, "max_nonfinite_steps": 4},
            "pretrain": {"steps": 7, "max_minutes": 2},
        }
    )
    train, pretrain = loop_settings(recipe), pretrain_settings(recipe, 10)
    shared = {f.name for f in fields(LoopSettings)} & set(type(recipe.train).model_fields)
    for name in shared - {"epochs"}:
        assert getattr(train, name) == getattr(recipe.train, name), name
        assert getattr(pretrain, name) == getattr(train, name), name
    assert train.seed == pretrain.seed == 11 and loop_settings(recipe, 5).seed == 5
    assert (pretrain.max_steps, pretrain.max_seconds, train.max_steps) == (7, 120.0, None)
