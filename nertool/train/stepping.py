"""How a step updates the weights: AdamW's groups, the learning rate of token-budget batches,
and the seam to a step captured in a CUDA graph (``train.cuda_graphs``)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from nertool.train.settings import LoopSettings

log = logging.getLogger("nertool")

GraphStep = Callable[[dict[str, torch.Tensor]], torch.Tensor]
AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def optimizer_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: no decay on biases and LayerNorm weights (BERT's recipe)."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim < 2 or "LayerNorm" in name or "norm" in name else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def scaled_learning_rate(settings: LoopSettings, batches: Sequence[Sequence[int]]) -> float:
    """The learning rate for these batches: ``learning_rate`` as given for sentence batches; for
    token budgets, scaled by the square root of (mean sentences per batch / ``batch_size``).

    The square-root rule is the one for Adam-type optimizers (Malladi et al., 2022, "On the SDEs
    and scaling rules for adaptive gradient algorithms"): the recipe's rate stays tuned for
    ``batch_size`` sentences, and a budget that holds more (or fewer) sentences per batch gets
    the rate that keeps the update noise comparable.
    """
    if settings.max_tokens_per_batch is None or not batches:
        return settings.learning_rate
    mean_rows = sum(len(batch) for batch in batches) / len(batches)
    return settings.learning_rate * math.sqrt(mean_rows / settings.batch_size)


def graphed_step(
    model: Any, optimizer: torch.optim.Optimizer, settings: LoopSettings, accelerator: Any
) -> GraphStep | None:
    """A captured whole step (``nertool.train.graphs.GraphedStep``) when ``train.cuda_graphs`` asks
    for one and this run can use it; None (eager steps, with one warning saying why) otherwise.

    A graph replays one step without gradient accumulation on one CUDA device; the captured step
    decides itself what a non-finite loss does, and the loop counts such steps as skipped.
    """
    if not settings.cuda_graphs:
        return None
    device = accelerator.device
    reason = _why_eager(device, settings, accelerator.num_processes)
    if reason is None:
        try:
            from nertool.train.graphs import GraphedStep, graphs_supported
        except ImportError:
            reason = "this installation has no nertool.train.graphs"
        else:
            if graphs_supported(device):
                return GraphedStep(
                    accelerator.unwrap_model(model),
                    optimizer,
                    max_grad_norm=settings.max_grad_norm,
                    autocast_dtype=AUTOCAST.get(settings.mixed_precision),
                )
            reason = f"{device} cannot capture this step"
    log.warning("train.cuda_graphs: %s; training runs eager", reason)
    return None


def _why_eager(device: torch.device, settings: LoopSettings, processes: int) -> str | None:
    if device.type != "cuda":
        return f"CUDA graphs need a CUDA device and this run is on {device.type}"
    if settings.gradient_accumulation_steps > 1:
        return "a captured step has no gradient accumulation (train.gradient_accumulation_steps > 1)"
    if processes > 1:
        return "a captured step runs on one process"
    return None
