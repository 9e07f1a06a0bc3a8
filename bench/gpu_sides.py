"""The training sides of the GPU benchmark, each timed per epoch with the device synchronised at the edges.

- ``trainer``: ``transformers.Trainer`` in its fastest configuration a user would pick: length
  grouping, fused AdamW (``optim="adamw_torch_fused"``), and whichever of fp32 and bf16 measured
  faster in a short probe.
- ``shipped_loop``: ``nertool.train.loop.Loop`` as it ships (throughput only, a capped number of steps).
- ``eager``: the lean eager step (``GraphedStep`` that never captures): fused AdamW with a tensor
  learning rate, widths padded to multiples of 16, no host read in the step (the loss is summed
  on the device), collation in loader workers with pinned memory on GPU.
- ``graphs``: the same step captured as one CUDA graph per width bucket, batch 32.
- ``budget_<tokens>``: the lean eager step on token-budget batches (rows × bucketed width ≤ the
  budget); the learning rate is scaled by √(mean sentences per batch / 32).

Only the tokens of real (non-padding) positions count for FLOP utilisation.
"""

from __future__ import annotations

import gc
import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bench.gpu_f1 import dev_f1

BUCKET = 16
LOADER_WORKERS = 2  # collation off the main thread, on GPU, for every side that has a loader


@dataclass(frozen=True)
class GpuPlan:
    """Sizes and optimizer settings shared by every side."""

    train_sentences: int = 20_000
    dev_sentences: int = 5_000
    epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    probe_steps: int = 40
    loop_steps: int = 200
    budgets: tuple[int, ...] = (256 * 32, 512 * 32)
    predict_sentences: int = 5_000
    predict_batches: tuple[int, ...] = (32, 256)
    repeats: int = 3
    seed: int = 42


@dataclass
class Epoch:
    seconds: float
    sentences: int
    tokens: int
    steps: int


@dataclass
class Side:
    """What one side measured: per-epoch timings, dev F1 after training, its configuration."""

    name: str
    config: str
    epochs: list[Epoch] = field(default_factory=list)
    dev_f1: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self, non_embedding: int, peak: float | None) -> dict[str, Any]:
        """Medians over epochs (the repeats), with min/max as the spread."""
        rates = [e.sentences / e.seconds for e in self.epochs]
        step_ms = [1000 * e.seconds / max(e.steps, 1) for e in self.epochs]
        mfu = [6 * non_embedding * e.tokens / e.seconds / peak for e in self.epochs] if peak else []
        return {
            "config": self.config,
            "sentences_per_s": round(statistics.median(rates), 2),
            "ms_per_step": round(statistics.median(step_ms), 3),
            "model_flop_utilisation": round(statistics.median(mfu), 4) if mfu else None,
            "dev_f1": None if self.dev_f1 is None else round(self.dev_f1, 4),
            "repeats": len(self.epochs),
            "spread": {"sentences_per_s": [round(min(rates), 2), round(max(rates), 2)]},
            "steps_per_epoch": [e.steps for e in self.epochs],
            **self.extra,
        }


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# ---------------------------------------------------------------- batches


class BucketCollator:
    """nertool's ``collate``, then padded on to a multiple of ``BUCKET`` so batch shapes repeat."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: Sequence[Any]) -> dict[str, torch.Tensor]:
        from nertool.model import collate

        batch = collate(features, self.pad_id)
        extra = bucket(batch["input_ids"].shape[1]) - batch["input_ids"].shape[1]
        fill = {"input_ids": self.pad_id, "attention_mask": 0, "labels": -100}
        return {k: torch.nn.functional.pad(v, (0, extra), value=fill[k]) for k, v in batch.items()}


def bucket(width: int) -> int:
    return BUCKET * math.ceil(width / BUCKET)


def sentence_batches(lengths: Sequence[int], plan: GpuPlan) -> Callable[[int], list[list[int]]]:
    from nertool.model import length_grouped_batches

    return lambda epoch: length_grouped_batches(lengths, plan.batch_size, plan.seed, epoch=epoch)


def budget_batches(lengths: Sequence[int], max_tokens: int, seed: int) -> Callable[[int], list[list[int]]]:
    """Shuffled token-budget batches: mega-chunks sorted by length, cut where rows × bucket > budget."""

    def batches(epoch: int) -> list[list[int]]:
        rng = random.Random(seed * 100_003 + epoch)
        order = list(range(len(lengths)))
        rng.shuffle(order)
        chunk = max(1, 50 * max_tokens // 32)
        cut: list[list[int]] = []
        for start in range(0, len(order), chunk):
            current: list[int] = []
            for index in sorted(order[start : start + chunk], key=lengths.__getitem__):
                if current and (len(current) + 1) * bucket(lengths[index]) > max_tokens:
                    cut.append(current)
                    current = []
                current.append(index)
            cut += [current] if current else []
        rng.shuffle(cut)
        return cut

    return batches


def loader(features: Sequence[Any], batches: list[list[int]], pad_id: int, device: torch.device) -> Any:
    on_gpu = device.type == "cuda"
    return torch.utils.data.DataLoader(
        features,  # type: ignore[arg-type]  # a list is a map-style dataset
        batch_sampler=batches,
        collate_fn=BucketCollator(pad_id),
        num_workers=LOADER_WORKERS if on_gpu else 0,
        pin_memory=on_gpu,
        persistent_workers=False,
    )


# ---------------------------------------------------------------- the lean step: eager, graphs, budgets


def train_lean(
    model: Any,
    data: Any,
    plan: GpuPlan,
    batches: Callable[[int], list[list[int]]],
    *,
    graphs: bool,
    learning_rate: float,
) -> tuple[Side, Any]:
    """Train ``plan.epochs`` epochs with ``GraphedStep``; ``graphs`` False never captures."""
    from transformers import get_linear_schedule_with_warmup

    from nertool.train.graphs import GraphedStep, make_graph_optimizer
    from nertool.train.loop import optimizer_groups

    device = next(model.parameters()).device
    plans = [batches(epoch) for epoch in range(plan.epochs)]
    total = sum(len(b) for b in plans)
    optimizer = make_graph_optimizer(optimizer_groups(model, plan.weight_decay), lr=learning_rate)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(plan.warmup_ratio * total), total)
    step = GraphedStep(
        model.train(),
        optimizer,
        max_grad_norm=plan.max_grad_norm,
        autocast_dtype=torch.bfloat16 if device.type == "cuda" else None,
        max_graphs=16 if graphs else 0,
    )
    side, tokens = Side("", ""), sum(len(f) for f in data.features)
    loss_sum = torch.zeros((), device=device)
    for epoch_batches in plans:
        synchronize(device)
        started = time.perf_counter()
        for batch in loader(data.features, epoch_batches, data.tokenizer.pad_token_id, device):
            loss_sum += step(batch).float().nan_to_num(0.0)
            scheduler.step()
        synchronize(device)
        side.epochs.append(
            Epoch(time.perf_counter() - started, len(data.features), tokens, len(epoch_batches))
        )
    side.extra = {
        "graphs_captured": len(step.captured_shapes),
        "skipped_steps": int(step.skipped()),
        "mean_loss": float(loss_sum) / max(total, 1),
        "learning_rate": learning_rate,
        "mean_sentences_per_batch": round(len(data.features) * plan.epochs / max(total, 1), 2),
    }
    del step, optimizer, scheduler
    side.dev_f1 = dev_f1(model, data)
    return side, model


# ---------------------------------------------------------------- transformers.Trainer


def grouping_args(fields: Sequence[str]) -> dict[str, Any]:
    """Length grouping under whichever name this transformers version uses (5.17 kept the old one)."""
    if "train_sampling_strategy" in fields:
        return {"train_sampling_strategy": "group_by_length"}
    return {"group_by_length": True}


def trainer_args(folder: Path, plan: GpuPlan, precision: str, device: torch.device, **length: Any) -> Any:
    import inspect

    from transformers import TrainingArguments

    fields = list(inspect.signature(TrainingArguments.__init__).parameters)
    steps = length.get("max_steps") or plan.epochs * math.ceil(plan.train_sentences / plan.batch_size)
    return TrainingArguments(
        output_dir=str(folder),
        per_device_train_batch_size=plan.batch_size,
        learning_rate=plan.learning_rate,
        weight_decay=plan.weight_decay,
        warmup_steps=int(plan.warmup_ratio * steps),
        lr_scheduler_type="linear",
        max_grad_norm=plan.max_grad_norm,
        seed=plan.seed,
        bf16=precision == "bf16",
        use_cpu=device.type != "cuda",
        optim="adamw_torch_fused",
        dataloader_num_workers=LOADER_WORKERS if device.type == "cuda" else 0,  # as nertool's side
        report_to="none",
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        **grouping_args(fields),
        **length,
    )


def timing_callback(device: torch.device, marks: list[float]) -> Any:
    """A ``TrainerCallback`` appending a synchronised clock reading at each epoch's start and end."""
    from transformers import TrainerCallback

    class Timer(TrainerCallback):
        def on_epoch_begin(self, *args: Any, **kwargs: Any) -> None:
            synchronize(device)
            marks.append(time.perf_counter())

        on_epoch_end = on_epoch_begin

    return Timer()


def run_trainer(model: Any, data: Any, args: Any, marks: list[float]) -> Any:
    from transformers import DataCollatorForTokenClassification, PrinterCallback, Trainer

    device = next(model.parameters()).device
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data.rows,
        data_collator=DataCollatorForTokenClassification(data.tokenizer),
        callbacks=[timing_callback(device, marks)],
    )
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    return trainer.model


def probe_precision(fresh: Callable[[], Any], data: Any, plan: GpuPlan, folder: Path) -> dict[str, float]:
    """Seconds per Trainer step in fp32 and in bf16 over ``plan.probe_steps`` steps (start-up in both)."""
    timings = {}
    for precision in ("fp32", "bf16"):
        model = fresh()
        device = next(model.parameters()).device
        marks: list[float] = []
        args = trainer_args(folder / precision, plan, precision, device, max_steps=plan.probe_steps)
        synchronize(device)
        started = time.perf_counter()
        run_trainer(model, data, args, marks)
        synchronize(device)
        timings[precision] = (time.perf_counter() - started) / plan.probe_steps
        del model
        release(device)
    return timings


def train_trainer(fresh: Callable[[], Any], data: Any, plan: GpuPlan, folder: Path) -> tuple[Side, Any]:
    probe = probe_precision(fresh, data, plan, folder)
    precision = min(probe, key=probe.__getitem__)
    model = fresh()
    device = next(model.parameters()).device
    marks: list[float] = []
    args = trainer_args(folder / "full", plan, precision, device, num_train_epochs=plan.epochs)
    model = run_trainer(model, data, args, marks)
    steps = math.ceil(len(data.rows) / plan.batch_size)
    tokens = sum(len(r["input_ids"]) for r in data.rows)
    epochs = [
        Epoch(end - begin, len(data.rows), tokens, steps)
        for begin, end in zip(marks[::2], marks[1::2], strict=True)
    ]
    config = (
        f"train_sampling_strategy=group_by_length, optim=adamw_torch_fused, {precision}, "
        f"dataloader_num_workers={args.dataloader_num_workers} "
        f"(probe s/step: fp32 {probe['fp32']:.4f}, bf16 {probe['bf16']:.4f}), batch {plan.batch_size}"
    )
    side = Side("trainer", config, epochs, extra={"precision": precision, "probe_s_per_step": probe})
    side.dev_f1 = dev_f1(model, data)
    return side, model


# ---------------------------------------------------------------- the loop as shipped


def train_shipped_loop(model: Any, data: Any, plan: GpuPlan, folder: Path) -> Side:
    """``nertool.train.loop.Loop`` for ``plan.loop_steps`` steps; timed from step 10% to the last."""
    from nertool.train.loop import Loop, LoopSettings, SilentReporter

    device = next(model.parameters()).device
    steps = min(plan.loop_steps, math.ceil(len(data.features) / plan.batch_size))
    warm = max(1, steps // 10)
    marks: dict[int, float] = {}

    class Clock(SilentReporter):
        def step(self, step: int, loss: float) -> None:
            if step in (warm, steps):
                synchronize(device)
                marks[step] = time.perf_counter()

    settings = LoopSettings(
        epochs=1,
        batch_size=plan.batch_size,
        learning_rate=plan.learning_rate,
        max_steps=steps,
        seed=plan.seed,
        log_every=10**9,
        mixed_precision="bf16" if device.type == "cuda" else "no",
    )
    from accelerate.state import AcceleratorState

    # The Trainer's accelerator state may hold another precision; the loop makes its own.
    AcceleratorState._reset_state(reset_partial_state=True)
    loop = Loop(model, data.features, settings, folder / "checkpoint", reporter=Clock())
    loop.save_checkpoint = lambda: None  # type: ignore[method-assign]  # a 3 GB state, not the step
    loop.run()
    timed = steps - warm
    mean_tokens = sum(len(f) for f in data.features) / len(data.features)
    sentences = timed * plan.batch_size
    epoch = Epoch(marks[steps] - marks[warm], sentences, round(sentences * mean_tokens), timed)
    return Side("shipped_loop", f"nertool.train.loop.Loop as shipped, batch {plan.batch_size}", [epoch])
