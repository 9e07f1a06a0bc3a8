"""Batches of variable-length features: length grouping, token budgets, dynamic padding.

Padding is the main waste in NER training and inference (PAN-X sentences are 5–60 subwords):
grouping similar lengths into one batch and padding only to the batch's longest row keeps
nearly every computed position a real token. Batch order stays seeded and reproducible, so a
resumed run sees exactly the batches an uninterrupted run would have.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import torch

from nertool.model.align import IGNORE_INDEX, SPECIAL, Feature


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, seed: int, *, epoch: int, group: bool = True
) -> list[list[int]]:
    """Shuffled batches of indices; with ``group``, rows of similar length share a batch.

    Indices are shuffled, cut into mega-batches of 50 batches, each sorted by length and cut
    into batches; the batches are shuffled again so lengths do not follow a pattern.
    """
    rng = random.Random(seed * 100_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if group:
        mega = batch_size * 50
        order = [
            i
            for start in range(0, len(order), mega)
            for i in sorted(order[start : start + mega], key=lengths.__getitem__)
        ]
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    if group:
        rng.shuffle(batches)
    return batches


def token_budget_batches(lengths: Sequence[int], max_tokens: int, max_batch: int) -> list[list[int]]:
    """Inference batches by length, each at most ``max_tokens`` padded positions.

    Sorting by length (longest first, so memory peaks early) means padding is nearly zero;
    callers restore input order from the indices.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        width = lengths[current[0]] if current else lengths[index]
        if current and ((len(current) + 1) * width > max_tokens or len(current) >= max_batch):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def collate(features: Sequence[Feature], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad a list of features to the longest one; labels only when every feature has them."""
    width = max(len(f) for f in features)
    input_ids = torch.full((len(features), width), pad_id, dtype=torch.long)  # (batch, seq)
    attention = torch.zeros((len(features), width), dtype=torch.long)  # (batch, seq)
    for row, feature in enumerate(features):
        input_ids[row, : len(feature)] = torch.tensor(feature.input_ids)
        attention[row, : len(feature)] = 1
    batch = {"input_ids": input_ids, "attention_mask": attention}
    if all(f.labels is not None for f in features):
        labels = torch.full((len(features), width), IGNORE_INDEX, dtype=torch.long)  # (batch, seq)
        for row, feature in enumerate(features):
            labels[row, : len(feature)] = torch.tensor(feature.labels)
        batch["labels"] = labels
    return batch


def word_id_tensor(features: Sequence[Feature]) -> torch.Tensor:
    """Word ids padded with ``SPECIAL``: (batch, seq)."""
    width = max(len(f) for f in features)
    word_ids = torch.full((len(features), width), SPECIAL, dtype=torch.long)
    for row, feature in enumerate(features):
        word_ids[row, : len(feature)] = torch.tensor(feature.word_ids)
    return word_ids


class FeatureCollator:
    """Picklable collate function for ``DataLoader`` workers."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: Sequence[Feature]) -> dict[str, Any]:
        return collate(features, self.pad_id)
