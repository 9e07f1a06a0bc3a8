"""What the loop is told: ``LoopSettings``, and the one mapping from a recipe's ``[train]`` to it.

Fine-tuning and pre-training read the same optimisation keys from ``[train]``; pre-training then
replaces the length of the run (steps, time) with its own ``[pretrain]`` keys. Keeping the mapping
here means a new ``[train]`` key reaches both through one edit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from nertool.config import Recipe
from nertool.model.batching import LENGTH_POOL


@dataclass(frozen=True)
class LoopSettings:
    """What the loop needs from a recipe's ``[train]`` section (and pre-training's)."""

    epochs: float
    batch_size: int
    learning_rate: float
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"
    group_by_length: bool = True
    length_pool: int = LENGTH_POOL  # rows sorted together when grouping by length (``batching``)
    evals_per_epoch: int = 1
    log_every: int = 20
    early_stopping_patience: int | None = None
    max_nonfinite_steps: int = 10
    max_steps: int | None = None
    max_seconds: float | None = None
    seed: int = 42
    loader_workers: int | None = None  # None: none on a CPU, a few on a GPU (``runtime.loader_workers``)
    max_tokens_per_batch: int | None = None  # batches of padded positions instead of ``batch_size`` rows
    pad_to_multiple_of: int | None = None  # batch widths rounded up to this; None: 16 on a GPU, 1 on a CPU
    cuda_graphs: bool = False
    report_to: list[str] = field(default_factory=list)  # Accelerate ``log_with`` names (``train.report_to``)


def loop_settings(recipe: Recipe, seed: int | None = None) -> LoopSettings:
    """The recipe's ``[train]`` keys as loop settings, seeded with ``seed`` or the recipe's seed."""
    t = recipe.train
    return LoopSettings(
        epochs=t.epochs,
        batch_size=t.batch_size,
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        warmup_ratio=t.warmup_ratio,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        max_grad_norm=t.max_grad_norm,
        mixed_precision=t.mixed_precision,
        group_by_length=t.group_by_length,
        length_pool=t.length_pool,
        max_tokens_per_batch=t.max_tokens_per_batch,
        pad_to_multiple_of=t.pad_to_multiple_of,
        cuda_graphs=t.cuda_graphs,
        evals_per_epoch=t.evals_per_epoch,
        log_every=t.log_every,
        early_stopping_patience=t.early_stopping_patience,
        max_nonfinite_steps=t.max_nonfinite_steps,
        seed=recipe.seed if seed is None else seed,
        report_to=list(t.report_to),
    )


def total_steps(n_batches: int, settings: LoopSettings) -> int:
    """Optimizer steps of a run over ``n_batches`` batches per epoch (capped by ``max_steps``)."""
    steps = math.ceil(n_batches * settings.epochs / settings.gradient_accumulation_steps)
    return min(steps, settings.max_steps) if settings.max_steps else steps
