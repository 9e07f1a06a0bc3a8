"""Batches: seeded length grouping, token budgets, and padding in collate."""

from __future__ import annotations

import random

import pytest
import torch

from nertool.model.align import IGNORE_INDEX, SPECIAL, Feature
from nertool.model.batching import (
    FeatureCollator,
    collate,
    length_grouped_batches,
    padded_inputs,
    token_budget_batches,
)


def random_lengths(n: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(3, 80) for _ in range(n)]


def flat(batches: list[list[int]]) -> list[int]:
    return [i for batch in batches for i in batch]


# ---------------------------------------------------------------- length_grouped_batches


@pytest.mark.parametrize(("n", "batch_size"), [(0, 4), (1, 4), (7, 3), (100, 8), (1000, 16), (2001, 32)])
@pytest.mark.parametrize("group", [True, False])
@pytest.mark.parametrize("pool", [1, 50, 4096])  # smaller than a batch, a few batches, every row
def test_length_grouped_batches_cover_every_index_once(
    n: int, batch_size: int, group: bool, pool: int
) -> None:
    batches = length_grouped_batches(random_lengths(n), batch_size, seed=1, epoch=0, group=group, pool=pool)
    assert sorted(flat(batches)) == list(range(n))
    assert all(1 <= len(batch) <= batch_size for batch in batches)
    assert sum(len(batch) < batch_size for batch in batches) <= 1


@pytest.mark.parametrize("group", [True, False])
def test_length_grouped_batches_are_deterministic_per_seed_and_epoch(group: bool) -> None:
    lengths = random_lengths(500)
    first = length_grouped_batches(lengths, 16, seed=3, epoch=2, group=group)
    assert first == length_grouped_batches(lengths, 16, seed=3, epoch=2, group=group)
    assert first != length_grouped_batches(lengths, 16, seed=3, epoch=3, group=group)
    assert first != length_grouped_batches(lengths, 16, seed=4, epoch=2, group=group)


def test_length_grouped_batches_do_not_touch_global_random_state() -> None:
    random.seed(123)
    expected = random.random()
    random.seed(123)
    length_grouped_batches(random_lengths(100), 8, seed=0, epoch=0)
    assert random.random() == expected


def test_grouping_reduces_padding() -> None:
    lengths = random_lengths(3200, seed=5)

    def padded(batches: list[list[int]]) -> int:
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    grouped = padded(length_grouped_batches(lengths, 32, seed=0, epoch=0, group=True))
    shuffled = padded(length_grouped_batches(lengths, 32, seed=0, epoch=0, group=False))
    assert sum(lengths) <= grouped < shuffled
    assert grouped < 1.1 * sum(lengths)


def test_a_larger_length_pool_pads_less_and_still_shuffles() -> None:
    """PAN-X-like lengths (short sentences dominate): the Trainer's 50-batch pool against 4,096 rows."""
    rng = random.Random(7)
    lengths = [min(80, 3 + int(rng.expovariate(1 / 15))) for _ in range(8000)]

    def padding(pool: int, epoch: int = 0) -> float:
        batches = length_grouped_batches(lengths, 32, seed=0, epoch=epoch, pool=pool)
        return 1 - sum(lengths) / sum(len(b) * max(lengths[i] for i in b) for b in batches)

    assert padding(4096) < 0.8 * padding(50 * 32)
    wide = length_grouped_batches(lengths, 32, seed=0, epoch=0, pool=4096)
    assert wide != length_grouped_batches(lengths, 32, seed=0, epoch=1, pool=4096)
    first_lengths = [max(lengths[i] for i in b) for b in wide[:20]]
    assert first_lengths != sorted(first_lengths)  # batch order is shuffled, not by length


def test_length_pool_reaches_the_loop_settings_and_defaults_to_the_batching_constant() -> None:
    from nertool.config import TrainConfig, build_recipe
    from nertool.model.batching import LENGTH_POOL
    from nertool.train.settings import loop_settings

    assert TrainConfig().length_pool == LENGTH_POOL
    assert loop_settings(build_recipe({"train": {"length_pool": 1600}})).length_pool == 1600


# ---------------------------------------------------------------- token_budget_batches


@pytest.mark.parametrize(("max_tokens", "max_batch"), [(64, 4), (256, 32), (1000, 8), (50, 100), (10_000, 3)])
def test_token_budget_batches_respect_budget_and_cover_all(max_tokens: int, max_batch: int) -> None:
    lengths = [*random_lengths(300, seed=2), 200, 120]  # two rows longer than some budgets
    batches = token_budget_batches(lengths, max_tokens, max_batch)
    assert sorted(flat(batches)) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= max_batch
        padded = len(batch) * max(lengths[i] for i in batch)
        assert padded <= max_tokens or len(batch) == 1


def test_token_budget_batches_over_long_rows_go_alone() -> None:
    batches = token_budget_batches([5, 500, 5, 400], max_tokens=100, max_batch=8)
    assert batches[:2] == [[1], [3]]
    assert sorted(flat(batches[2:])) == [0, 2]


def test_token_budget_batches_longest_first() -> None:
    lengths = random_lengths(200, seed=4)
    widths = [max(lengths[i] for i in b) for b in token_budget_batches(lengths, 256, 16)]
    assert widths == sorted(widths, reverse=True)


def test_token_budget_batches_empty() -> None:
    assert token_budget_batches([], 100, 8) == []


# ---------------------------------------------------------------- collate


def feature(ids: list[int], labels: list[int] | None) -> Feature:
    words = [SPECIAL, *range(len(ids) - 2), SPECIAL]
    return Feature(0, tuple(ids), tuple(words), 0, len(ids) - 2, None if labels is None else tuple(labels))


def test_collate_pads_to_the_longest_row() -> None:
    features = [
        feature([0, 10, 11, 2], [IGNORE_INDEX, 3, 4, IGNORE_INDEX]),
        feature([0, 12, 2], [IGNORE_INDEX, 0, IGNORE_INDEX]),
        feature([0, 13, 14, 15, 16, 2], [IGNORE_INDEX, 1, 2, 0, 0, IGNORE_INDEX]),
    ]
    batch = collate(features, pad_id=1)
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    for tensor in batch.values():
        assert tensor.shape == (3, 6)
        assert tensor.dtype == torch.long
    assert batch["input_ids"].tolist() == [[0, 10, 11, 2, 1, 1], [0, 12, 2, 1, 1, 1], [0, 13, 14, 15, 16, 2]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0], [1] * 6]
    x = IGNORE_INDEX
    assert batch["labels"][1].tolist() == [x, 0, x, x, x, x]
    assert batch["labels"][2].tolist() == [x, 1, 2, 0, 0, x]


def test_collate_without_labels_when_any_row_lacks_them() -> None:
    features = [feature([0, 10, 2], [IGNORE_INDEX, 3, IGNORE_INDEX]), feature([0, 11, 12, 2], None)]
    batch = collate(features, pad_id=1)
    assert set(batch) == {"input_ids", "attention_mask"}
    assert batch["input_ids"].shape == (2, 4)


def test_feature_collator_matches_collate() -> None:
    features = [feature([0, 10, 2], None), feature([0, 11, 12, 2], None)]
    expected = collate(features, pad_id=7)
    got = FeatureCollator(7)(features)
    assert all(torch.equal(got[key], expected[key]) for key in expected)


def test_padded_inputs_are_the_torch_batch_as_int64_arrays() -> None:
    """The ONNX backend feeds ``padded_inputs``; torch batches hold the same values."""
    features = [
        feature([0, 10, 2], [IGNORE_INDEX, 1, IGNORE_INDEX]),
        feature([0, 11, 12, 2], [IGNORE_INDEX, 3, 4, IGNORE_INDEX]),
    ]
    arrays = padded_inputs(features, pad_id=7, multiple=8)
    assert {key: array.dtype.name for key, array in arrays.items()} == dict.fromkeys(
        ("input_ids", "attention_mask", "labels"), "int64"
    )
    assert arrays["input_ids"].tolist() == [[0, 10, 2] + [7] * 5, [0, 11, 12, 2] + [7] * 4]
    assert arrays["attention_mask"].sum(axis=1).tolist() == [3, 4]
    assert arrays["labels"][0].tolist() == [IGNORE_INDEX, 1] + [IGNORE_INDEX] * 6
    tensors = collate(features, pad_id=7, multiple=8)
    assert all(tensors[key].tolist() == arrays[key].tolist() for key in arrays)
