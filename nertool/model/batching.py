"""Batches of variable-length features: length grouping, token budgets, dynamic padding.

Padding is the main waste in NER training and inference (PAN-X sentences are 5–60 subwords):
grouping similar lengths into one batch and padding only to the batch's longest row keeps
nearly every computed position a real token. Batch order stays seeded and reproducible, so a
resumed run sees exactly the batches an uninterrupted run would have.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nertool.model.align import IGNORE_INDEX, Feature

if TYPE_CHECKING:  # torch is imported where a torch batch is made: the ONNX path never loads it
    import torch

Inputs = dict[str, np.ndarray]
"""A padded batch as int64 arrays (batch, seq): ``input_ids``, ``attention_mask`` and, when every
feature has them, ``labels``. Torch batches (``collate``) share this memory."""

LENGTH_POOL = 4096  # rows sorted together by ``length_grouped_batches`` (``train.length_pool``)


def length_grouped_batches(
    lengths: Sequence[int],
    batch_size: int,
    seed: int,
    *,
    epoch: int,
    group: bool = True,
    pool: int = LENGTH_POOL,
) -> list[list[int]]:
    """Shuffled batches of indices; with ``group``, rows of similar length share a batch.

    Indices are shuffled, cut into pools of ``pool`` rows (at least one batch), each pool sorted
    by length and cut into batches; the batches are shuffled again so lengths do not follow a
    pattern. The Trainer's ``group_by_length`` sorts pools of 50 batches (1,600 rows at batch 32);
    at PAN-X lengths (5-60 subwords, most under 20) a one-subword spread inside a batch is already
    5-10 % padding, so a larger pool pads less: on 3,840 German sentences at batch 32, 7.8 % of
    the positions are padding with 1,600-row pools and 3.3 % with 4,096 (README, "The training
    loop", for the F1 measured with each). Ties are broken by the shuffle, so equal-length
    batches still differ from epoch to epoch.
    """
    rng = random.Random(seed * 100_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if group:
        mega = max(batch_size, pool)
        order = [
            i
            for start in range(0, len(order), mega)
            for i in sorted(order[start : start + mega], key=lengths.__getitem__)
        ]
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    if group:
        rng.shuffle(batches)
    return batches


def padded_width(length: int, multiple: int = 1) -> int:
    """``length`` rounded up to a multiple of ``multiple``: the width a batch is padded to."""
    return -(-length // multiple) * multiple


def token_budget_batches(
    lengths: Sequence[int], max_tokens: int, max_batch: int, *, multiple: int = 1
) -> list[list[int]]:
    """Batches by length, each at most ``max_tokens`` padded positions (widths rounded up to
    ``multiple``); a single row longer than the budget is a batch of its own.

    Sorting by length (longest first, so memory peaks early) means padding is nearly zero;
    callers restore input order from the indices.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        width = padded_width(lengths[current[0]] if current else lengths[index], multiple)
        if current and ((len(current) + 1) * width > max_tokens or len(current) >= max_batch):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def token_budget_training_batches(
    lengths: Sequence[int], max_tokens: int, seed: int, *, epoch: int, multiple: int = 1, mega: int = 4096
) -> list[list[int]]:
    """Shuffled training batches of at most ``max_tokens`` padded positions each.

    As ``length_grouped_batches`` but cut by tokens: the shuffled indices are split into
    mega-batches of ``mega`` rows, each is cut by ``token_budget_batches`` (length-sorted, so
    padding is nearly zero), and the batches are shuffled again. Every row is in exactly one
    batch per epoch, and the order is a pure function of (seed, epoch).
    """
    rng = random.Random(seed * 100_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    for start in range(0, len(order), mega):
        chunk = order[start : start + mega]
        cut = token_budget_batches([lengths[i] for i in chunk], max_tokens, max_tokens, multiple=multiple)
        batches += [[chunk[i] for i in batch] for batch in cut]
    rng.shuffle(batches)
    return batches


def padded_inputs(features: Sequence[Feature], pad_id: int, *, multiple: int = 1) -> Inputs:
    """Pad a list of features to the longest one, rounded up to ``multiple`` (so that batch
    shapes repeat: kernels and CUDA graphs are reused); labels only when every feature has them."""
    width = padded_width(max(len(f) for f in features), multiple)
    input_ids = np.full((len(features), width), pad_id, dtype=np.int64)  # (batch, seq)
    attention = np.zeros((len(features), width), dtype=np.int64)  # (batch, seq)
    for row, feature in enumerate(features):
        input_ids[row, : len(feature)] = feature.input_ids
        attention[row, : len(feature)] = 1
    batch = {"input_ids": input_ids, "attention_mask": attention}
    if all(f.labels is not None for f in features):
        labels = np.full((len(features), width), IGNORE_INDEX, dtype=np.int64)  # (batch, seq)
        for row, feature in enumerate(features):
            labels[row, : len(feature)] = feature.labels  # type: ignore[assignment]
        batch["labels"] = labels
    return batch


def collate(features: Sequence[Feature], pad_id: int, *, multiple: int = 1) -> dict[str, torch.Tensor]:
    """``padded_inputs`` as torch tensors (the same memory): what the training loop and losses take."""
    import torch

    return {
        key: torch.from_numpy(array)
        for key, array in padded_inputs(features, pad_id, multiple=multiple).items()
    }


class FeatureCollator:
    """Picklable collate function for ``DataLoader`` workers; widths rounded up to ``multiple``."""

    def __init__(self, pad_id: int, multiple: int = 1):
        self.pad_id = pad_id
        self.multiple = multiple

    def __call__(self, features: Sequence[Feature]) -> dict[str, Any]:
        return collate(features, self.pad_id, multiple=self.multiple)
