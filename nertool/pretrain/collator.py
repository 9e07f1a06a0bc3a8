"""The pre-training collator: each block masked by its own (seed, epoch, block index) generator.

A block's mask therefore depends on nothing else — not batch size, padding, batch order, process
count or skipped batches — so ``--resume`` replays the masks of an uninterrupted run exactly, while
each epoch still gets fresh masks (RoBERTa's dynamic masking). Held-out blocks use
``HELDOUT_EPOCH``: the same masks at every evaluation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from nertool.config import PretrainConfig
from nertool.errors import ConfigError
from nertool.pretrain.masking import IGNORE_INDEX, mask_tokens
from nertool.pretrain.packing import PackedBlock, collate_blocks

HELDOUT_EPOCH = -1


@dataclass(frozen=True)
class IndexedBlock:
    """A block and its fixed index in the block list (the index seeds its masks)."""

    index: int
    block: PackedBlock

    def __len__(self) -> int:
        return len(self.block.input_ids)


@dataclass(frozen=True)
class MaskingSpec:
    """Everything the collator needs to mask a block."""

    mask_token_id: int
    vocab_size: int
    n_special: int
    mlm_probability: float
    pad_id: int
    whole_word: bool
    seed: int

    def mask_args(self) -> dict[str, Any]:
        """The keyword arguments of ``mlm.mask_tokens`` this spec fixes."""
        names = ("mask_token_id", "vocab_size", "n_special", "mlm_probability")
        return {name: getattr(self, name) for name in names}


def masking_spec(tokenizer: Any, settings: PretrainConfig, seed: int) -> MaskingSpec:
    """Random replacements skip the leading special ids (XLM-R: ``<s> <pad> </s> <unk>`` ...)."""
    specials, n_special = set(tokenizer.all_special_ids), 0
    while n_special in specials:
        n_special += 1
    if tokenizer.mask_token_id is None:
        raise ConfigError("the tokenizer has no mask token; masked-LM pre-training needs one")
    mask_id, pad_id, probability = (
        tokenizer.mask_token_id,
        tokenizer.pad_token_id or 0,
        settings.mlm_probability,
    )
    return MaskingSpec(
        mask_id, len(tokenizer), n_special, probability, pad_id, settings.whole_word_masking, seed
    )


def block_seed(seed: int, epoch: int, index: int) -> int:
    """A stable 63-bit seed for one block in one epoch (SHA-256: no per-process salt)."""
    digest = hashlib.sha256(f"{seed}\x00{epoch}\x00{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class MaskingCollator:
    """Masks each block with its own (seed, epoch, index) generator, then pads the batch."""

    def __init__(self, spec: MaskingSpec, epoch: int = 0):
        self.spec, self.epoch = spec, epoch

    def start_epoch(self, epoch: int) -> None:
        """The loop's ``on_epoch_start``: this epoch's blocks get this epoch's masks."""
        self.epoch = epoch

    def mask_block(self, item: IndexedBlock) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.spec
        single = collate_blocks([item.block], s.pad_id)  # (1, len) each
        generator = torch.Generator().manual_seed(block_seed(s.seed, self.epoch, item.index))
        word_ids = single.get("word_ids") if s.whole_word else None
        ids, special = single["input_ids"], single["special_tokens_mask"]
        inputs, labels = mask_tokens(ids, special, generator=generator, word_ids=word_ids, **s.mask_args())
        return inputs[0], labels[0]

    def __call__(self, items: Sequence[IndexedBlock]) -> dict[str, torch.Tensor]:
        rows = [self.mask_block(item) for item in items]
        shape = (len(rows), max(len(ids) for ids, _ in rows))
        batch = {  # each (batch, seq)
            "input_ids": torch.full(shape, self.spec.pad_id, dtype=torch.long),
            "attention_mask": torch.zeros(shape, dtype=torch.long),
            "labels": torch.full(shape, IGNORE_INDEX, dtype=torch.long),
        }
        for row, (ids, labels) in enumerate(rows):
            batch["input_ids"][row, : len(ids)] = ids
            batch["attention_mask"][row, : len(ids)] = 1
            batch["labels"][row, : len(ids)] = labels
        return batch
