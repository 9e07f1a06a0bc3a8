"""Faster CPU kernels for the encoder while it trains: dropout and attention.

On CPU two costs of a training step are not matrix products. ``torch.nn.Dropout`` draws one
Bernoulli sample per element (``bernoulli_``: 8.5 % of a bf16 step of ``scratch:small``), and
``scaled_dot_product_attention`` with dropout has no fused CPU kernel, so it falls back to a math
path that is 1.2-1.8x slower than the plain eager formula (bf16, 32 sentences of 20-141 pieces,
forward and backward). While a CPU run trains, ``cpu_training_kernels`` swaps in

- dropout from 15-bit integer draws: an element is kept when its draw is at least
  ``round(p * 32768)``, so the drop probability is p to within 1/32768, and the output is scaled
  by the exact inverse of the keep probability; the mask is kept as bools for the backward pass;
- eager attention with that dropout, registered with transformers' attention interface under
  ``ATTENTION``; with dropout off (evaluation) it hands over to transformers' sdpa function.

Together they make the loop's bf16 CPU training of ``scratch:small`` about 1.15x faster (an
80-step probe, alternating); ``bench/results/training_bf16.json`` has the loop against the
Trainer with them in place (1.15x, 1.12x against a Trainer with eager attention). Weights, the
config written to disk and eval-mode outputs are untouched, and both swaps are undone when
training ends, so the model a run saves or hands back is a stock transformers model. GPUs keep
the stock kernels: there dropout is cheap and sdpa has fused kernels.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

ATTENTION = "nertool_cpu_training"
DRAW_LEVELS = 32768  # 15-bit draws: four per 64-bit random word


def dropout_mask(shape: torch.Size, p: float, device: torch.device) -> tuple[torch.Tensor, float]:
    """A keep mask (bools) for dropping each element with probability ``p``, and the scale that
    keeps the expectation: 1 / the mask's exact keep probability."""
    threshold = round(p * DRAW_LEVELS)
    count = math.prod(shape)
    words = torch.empty((count + 3) // 4, dtype=torch.int64, device=device).random_()
    draws = words.view(torch.int16)[:count].bitwise_and_(DRAW_LEVELS - 1)
    return draws.ge(threshold).view(shape), DRAW_LEVELS / (DRAW_LEVELS - threshold)


class _MaskedScale(torch.autograd.Function):
    """``x * keep * scale`` whose backward reuses the bool mask instead of a float copy of it."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return x.mul(keep).mul_(scale)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (keep,) = ctx.saved_tensors
        return grad.mul(keep).mul_(ctx.scale), None, None


def fast_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Training-mode dropout of ``x`` with probability ``p`` (0 < p < 1)."""
    keep, scale = dropout_mask(x.shape, p, x.device)
    out: torch.Tensor = _MaskedScale.apply(x, keep, scale)
    return out


class FastDropout(torch.nn.Dropout):
    """``nn.Dropout`` with ``fast_dropout`` in training; the class a swapped module wears."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if self.training and 0.0 < self.p < 1.0 and not self.inplace:
            return fast_dropout(input, self.p)
        return super().forward(input)


def training_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Bidirectional attention for a training step: the eager formula with ``fast_dropout`` on the
    attention weights. Anything else (no dropout, causal attention, grouped heads) goes to
    transformers' own sdpa function, so evaluation is exactly what it is without the swap."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    causal = kwargs.get("is_causal") or getattr(module, "is_causal", False)
    if not (0.0 < dropout < 1.0) or causal or key.shape[1] != query.shape[1]:
        output: tuple[torch.Tensor, None] = sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
        return output
    scale = query.size(-1) ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(2, 3)) * scale
    if attention_mask is not None and attention_mask.dtype == torch.bool:  # sdpa's mask: True attends
        scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
    elif attention_mask is not None:  # an additive mask from a model that builds eager masks
        scores = scores + attention_mask
    weights = fast_dropout(torch.softmax(scores, dim=-1), dropout)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), None


def register_attention() -> None:
    """Make ``ATTENTION`` a name transformers resolves, with sdpa's (boolean) masks."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    AttentionInterface.register(ATTENTION, training_attention)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)


@contextmanager
def cpu_training_kernels(model: Any, *, enabled: bool = True) -> Iterator[None]:
    """Train ``model`` with the fast dropout and (where it uses sdpa) the training attention;
    the stock classes and attention name come back on exit, an exception included."""
    if not enabled:
        yield
        return
    register_attention()
    config = getattr(model, "config", None)
    attention = getattr(config, "_attn_implementation", None)
    dropouts = [m for m in model.modules() if type(m) is torch.nn.Dropout]
    try:
        for module in dropouts:
            module.__class__ = FastDropout
        if attention == "sdpa":
            config._attn_implementation = ATTENTION  # type: ignore[union-attr]
        yield
    finally:
        for module in dropouts:
            module.__class__ = torch.nn.Dropout
        if attention == "sdpa":
            config._attn_implementation = attention  # type: ignore[union-attr]
