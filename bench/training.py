"""Training: the nertool ``Loop`` against ``transformers.Trainer`` in its fastest CPU configuration.

The baseline is the Trainer as a user who cares about speed would run it: length-grouped
batches (``train_sampling_strategy="group_by_length"``, built in) and its default fused AdamW
(``adamw_torch_fused``); it preprocesses with the transformers example
(``tokenize_and_align_labels`` + ``DataCollatorForTokenClassification``). Both sides get the
same model config and the *same initial weights* (one ``state_dict`` copied into each run), the
same sentences, batch size, optimizer steps, learning rate, warm-up, weight decay, clipping,
precision and thread count: fp32 here, bf16 autocast in ``bench.training_bf16`` (the Trainer's
``bf16=True`` against the loop's ``train.mixed_precision = "bf16"``). The sides alternate
(Trainer, loop, ...) ``REPEATS`` times; the record reports medians with the spread and per-repeat
ratios. The Trainer keeps transformers' default sdpa attention; the same Trainer with eager
attention runs beside it as a reference, because on CPU the loop trains with its own dropout
and eager attention kernels (``nertool.train.cpu_kernels``) and eager attention is a switch a
Trainer user has too.

Measured: sentences/s and real (non-padding) tokens/s over ``Trainer.train()`` / ``Loop.run()``,
achieved model FLOP/s (6 × non-embedding parameters × real tokens / s, the usual estimate), the
share of padding positions, peak RSS growth. Quality: dev F1 of both models after the same steps
(last repeat), scored by ``nertool.evaluate.scores.score_block`` through the same inference path.

On a slow (shared) machine the full run takes fewer than the planned 300 steps: a forward and
backward probe estimates the step time, steps are cut so all runs fit ``BUDGET_S``, and the
record keeps planned and actual steps.
"""

from __future__ import annotations

import copy
import math
import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench.harness import (
    Options,
    PeakMemory,
    Row,
    cycled,
    data_source,
    headline_spread,
    load_split,
    make_record,
    measure_alternating,
    stopwatch,
)
from nertool.train.loop import SilentReporter

SCENARIO = "training"
BUDGET_S = 600.0  # every timed run together (full mode); fewer steps when this machine is slower
REPEATS = 3
BASELINE_CONFIG = {
    "train_sampling_strategy": "group_by_length",
    "optim": "adamw_torch_fused (Trainer default)",
    "dataloader": "main process, no pinned memory (CPU)",
}
PRECISION_CONFIG = {"fp32": "fp32 (CPU)", "bf16": "bf16=True (CPU autocast)"}
MIN_STEPS = 50
FP32_STEP_COST = 1.7  # an fp32 step in bf16 steps on an AVX-512 BF16 core: sizes the fp32 reference runs


@dataclass(frozen=True)
class Plan:
    """One training comparison: model size, optimizer settings and data sizes."""

    model: str
    steps: int
    batch_size: int
    learning_rate: float
    dev_sentences: int
    max_length: int = 256
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 42
    precision: str = "fp32"  # or "bf16": CPU autocast on both sides
    attention: str = "sdpa"  # the Trainer's attention implementation (transformers' default)

    @property
    def train_sentences(self) -> int:
        return self.steps * self.batch_size

    @property
    def warmup_steps(self) -> int:
        return int(self.warmup_ratio * self.steps)


def plan_for(options: Options) -> Plan:
    if options.quick:
        return Plan("scratch:tiny", steps=8, batch_size=16, learning_rate=1e-3, dev_sentences=100)
    return Plan("scratch:small", steps=300, batch_size=32, learning_rate=5e-4, dev_sentences=2000)


class CountingCollator:
    """Wraps a collator and counts real and padded positions of every batch it makes."""

    def __init__(self, inner: Callable[[Sequence[Any]], Any]):
        self.inner = inner
        self.batches = self.real = self.positions = self.sentences = 0

    def __call__(self, rows: Sequence[Any]) -> Any:
        batch = self.inner(rows)
        mask = batch["attention_mask"]  # (batch, seq)
        self.batches += 1
        self.sentences += int(mask.shape[0])
        self.real += int(mask.sum())
        self.positions += int(mask.numel())
        return batch

    @property
    def padding_share(self) -> float:
        return 1.0 - self.real / self.positions if self.positions else 0.0


class LossReporter(SilentReporter):
    """A ``nertool.train.loop.Reporter`` that keeps the training losses (for the mean training loss)."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def step(self, step: int, loss: float) -> None:
        self.losses.append(loss)


@dataclass(frozen=True)
class Side:
    """What one training run measured."""

    seconds: float
    peak_growth_mb: float
    counter: CountingCollator
    mean_loss: float
    model: Any
    precision: str  # what the side's accelerator actually ran ("no" or "bf16")

    @property
    def rate(self) -> float:
        """Sentences per second."""
        return self.counter.sentences / self.seconds


def rates(sides: Sequence[Side]) -> list[float]:
    return [side.rate for side in sides]


# ---------------------------------------------------------------- the two sides


def train_with_trainer(model: Any, tokenizer: Any, dataset: Any, plan: Plan, folder: Path) -> Side:
    """``transformers.Trainer`` with length grouping and fused AdamW; no evaluation, logging or saving."""
    from transformers import DataCollatorForTokenClassification, PrinterCallback, Trainer, TrainingArguments

    model.config._attn_implementation = plan.attention
    counter = CountingCollator(DataCollatorForTokenClassification(tokenizer))
    args = TrainingArguments(
        output_dir=str(folder),
        per_device_train_batch_size=plan.batch_size,
        max_steps=plan.steps,
        learning_rate=plan.learning_rate,
        weight_decay=plan.weight_decay,
        warmup_steps=plan.warmup_steps,
        lr_scheduler_type="linear",
        max_grad_norm=plan.max_grad_norm,
        seed=plan.seed,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        dataloader_pin_memory=False,
        train_sampling_strategy="group_by_length",
        bf16=plan.precision == "bf16",
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=counter)
    trainer.remove_callback(PrinterCallback)  # it prints the final metrics dict
    with PeakMemory() as memory, stopwatch() as watch:
        output = trainer.train()
    precision = str(trainer.accelerator.mixed_precision)
    loss = float(output.training_loss)
    return Side(watch.seconds, memory.growth_mb, counter, loss, trainer.model, precision)


def train_with_loop(model: Any, features: Sequence[Any], plan: Plan, folder: Path) -> Side:
    """The nertool ``Loop`` with the same settings and its defaults (length-grouped batches from
    4,096-row pools, ``train.length_pool``)."""
    from nertool.model import FeatureCollator
    from nertool.train.loop import Loop, LoopSettings

    settings = LoopSettings(
        epochs=math.ceil(plan.train_sentences / len(features)) or 1,
        batch_size=plan.batch_size,
        learning_rate=plan.learning_rate,
        weight_decay=plan.weight_decay,
        warmup_ratio=plan.warmup_ratio,
        max_grad_norm=plan.max_grad_norm,
        max_steps=plan.steps,
        seed=plan.seed,
        log_every=10**9,
        mixed_precision="bf16" if plan.precision == "bf16" else "no",
    )
    counter = CountingCollator(FeatureCollator(model.config.pad_token_id))
    reporter = LossReporter()
    loop = Loop(model, features, settings, folder / "checkpoint", reporter=reporter, collator=counter)
    with PeakMemory() as memory, stopwatch() as watch:
        loop.run()
    mean_loss = sum(reporter.losses) / max(1, len(reporter.losses))
    model = loop.accelerator.unwrap_model(loop.model)
    precision = str(loop.accelerator.mixed_precision)
    return Side(watch.seconds, memory.growth_mb, counter, mean_loss, model, precision)


# ---------------------------------------------------------------- setup and quality


def same_weights(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)


def fresh_copy(model: Any, initial: dict[str, Any]) -> Any:
    """A new model of the same config holding a copy of ``initial`` (identical starting weights)."""
    clone = type(model)(copy.deepcopy(model.config))
    clone.load_state_dict(copy.deepcopy(initial))
    return clone


def dev_f1(model: Any, tokenizer: Any, label_map: Any, dev: Sequence[Any]) -> float:
    from nertool.evaluate import score_block
    from nertool.model import predict_sentences, tags_of

    predictions = predict_sentences(model, tokenizer, [s.tokens for s in dev])
    return float(score_block([s.tags for s in dev], [tags_of(p, label_map.names) for p in predictions])["f1"])


def prepare(plan: Plan, options: Options) -> dict[str, Any]:
    """Sentences, label map, scratch model + tokenizer, both sides' inputs and the initial weights."""
    from bench.hf_example import raw_dataset, tokenized_dataset
    from nertool.config import build_recipe
    from nertool.labels import LabelMap
    from nertool.workflows.train import build_model, encode_training

    source, source_name = data_source(options)
    train = cycled(load_split(source, "train"), plan.train_sentences)
    dev = load_split(source, "validation")[: plan.dev_sentences]
    label_map = LabelMap.from_tags(tag for s in train for tag in s.tags)
    recipe = build_recipe({"seed": plan.seed, "model": {"name": plan.model, "max_length": plan.max_length}})
    model, tokenizer = build_model(recipe, label_map, {"de": train})
    features = encode_training(tokenizer, train, label_map, max_length=plan.max_length, strategy="first")
    dataset = tokenized_dataset(
        raw_dataset(train, [label_map.encode(s.tags) for s in train]), tokenizer, plan.max_length
    )
    return {
        "source": source_name,
        "train": train,
        "dev": dev,
        "label_map": label_map,
        "model": model,
        "tokenizer": tokenizer,
        "features": features,
        "dataset": dataset,
        "initial": copy.deepcopy(model.state_dict()),
    }


def seconds_per_step(
    model: Any, tokenizer: Any, dataset: Any, batch_size: int, precision: str = "fp32"
) -> float:
    """Median forward + backward time of a typical length-grouped batch: the estimate that sizes the run.

    Both sides train on length-grouped batches, so the probe batch is one of them: the middle batch
    of the first 50 batches' rows sorted by length (an unsorted batch is padded to its longest row
    and overestimates a step about threefold at PAN-X lengths).
    """
    from transformers import DataCollatorForTokenClassification

    pool = sorted(range(min(len(dataset), 50 * batch_size)), key=lambda i: len(dataset[i]["input_ids"]))
    middle = max(0, len(pool) // 2 - batch_size // 2)
    rows = [dataset[i] for i in pool[middle : middle + batch_size]]
    batch = DataCollatorForTokenClassification(tokenizer)(rows)
    import torch

    times = []
    for _ in range(3):
        with stopwatch() as watch, torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
            model(**batch).loss.backward()
        times.append(watch.seconds)
    return sorted(times)[1]


def fit_to_budget(plan: Plan, step_s: float, budget_s: float, runs_per_repeat: float = 2.0) -> Plan:
    """As many steps (a multiple of 10, at most the plan's) as fit every run in ``budget_s``
    (``runs_per_repeat`` runs of ``step_s`` steps per repeat).

    The probe's forward + backward stands in for a whole step of either side (the optimizer step
    adds a few per cent, the probe's first-call costs take about as much off).
    """
    steps = int(budget_s / (runs_per_repeat * REPEATS) / step_s) // 10 * 10
    return replace(plan, steps=max(MIN_STEPS, min(plan.steps, steps)))


def first_sentences(ready: dict[str, Any], n: int) -> tuple[Any, list[Any]]:
    """The baseline rows and nertool features of the first ``n`` training sentences."""
    return ready["dataset"].select(range(n)), [f for f in ready["features"] if f.sentence < n]


def flops_per_token(model: Any) -> float:
    """6 × non-embedding parameters: forward + backward FLOPs per token (attention left out)."""
    embedding = sum(p.numel() for name, p in model.named_parameters() if "embeddings" in name)
    return 6.0 * (sum(p.numel() for p in model.parameters()) - embedding)


def rows_of(base: Sequence[Side], ours: Sequence[Side], flops: float) -> list[Row]:
    """Medians over the repeats of each side."""

    def med(sides: Sequence[Side], value: Callable[[Side], float]) -> float:
        return statistics.median(value(side) for side in sides)

    return [
        Row(
            "throughput (median)",
            "sentences/s",
            med(base, lambda s: s.rate),
            med(ours, lambda s: s.rate),
        ),
        Row(
            "real tokens (median)",
            "tokens/s",
            med(base, lambda s: s.counter.real / s.seconds),
            med(ours, lambda s: s.counter.real / s.seconds),
        ),
        Row(
            "achieved model FLOP/s (median)",
            "GFLOP/s",
            med(base, lambda s: flops * s.counter.real / s.seconds / 1e9),
            med(ours, lambda s: flops * s.counter.real / s.seconds / 1e9),
        ),
        Row(
            "padding share",
            "fraction",
            base[-1].counter.padding_share,
            ours[-1].counter.padding_share,
            "lower",
        ),
        Row(
            "wall time (median)", "s", med(base, lambda s: s.seconds), med(ours, lambda s: s.seconds), "lower"
        ),
        Row(
            "peak RSS growth (max)",
            "MiB",
            max(s.peak_growth_mb for s in base),
            max(s.peak_growth_mb for s in ours),
            "lower",
        ),
    ]


def quality_of(base: Side, ours: Side, identical: bool, ready: dict[str, Any]) -> dict[str, Any]:
    tokenizer, label_map, dev = ready["tokenizer"], ready["label_map"], ready["dev"]
    return {
        "identical_initial_weights": identical,
        "steps": {"baseline": base.counter.batches, "nertool": ours.counter.batches},
        "dev_sentences": len(dev),
        "dev_f1": {
            "baseline": dev_f1(base.model, tokenizer, label_map, dev),
            "nertool": dev_f1(ours.model, tokenizer, label_map, dev),
        },
        "mean_train_loss": {"baseline": base.mean_loss, "nertool": ours.mean_loss},
        "scorer": "nertool.evaluate.scores.score_block (seqeval default mode), same inference path for both",
    }


def settings_of(plan: Plan, planned: Plan, step_s: float, options: Options, source: str) -> dict[str, Any]:
    return {
        **asdict(plan),
        "train_sentences": plan.train_sentences,
        "warmup_steps": plan.warmup_steps,
        "planned_steps": planned.steps,
        "estimated_step_s": round(step_s, 4),
        "budget_s": None if options.quick else BUDGET_S,
        "data": source,
        "precision": plan.precision,
        "device": "cpu",
        "baseline_sampling": "length-grouped (train_sampling_strategy=group_by_length)",
        "nertool_sampling": "length-grouped, 4,096-row pools (Loop default, train.length_pool)",
        "baseline_optimizer": "Trainer default (adamw_torch_fused)",
        "nertool_optimizer": "torch.optim.AdamW, fused where the device has it",
        "repeats": REPEATS if not options.quick else 1,
        "order": "alternating in every repeat: Trainer, loop, Trainer with eager attention (loop in fp32)",
        "nertool_kernels": "CPU: nertool.train.cpu_kernels (integer-draw dropout, eager training attention)",
        "timed": "Trainer.train() / Loop.run() only (the Loop's end-of-run checkpoint included)",
    }


def run(options: Options) -> dict[str, Any]:
    return compare(options, SCENARIO, "fp32")


def compare(
    options: Options, scenario: str, precision: str, *, fp32_reference: bool = False
) -> dict[str, Any]:
    """Trainer against loop at ``precision``, alternating.

    A third side, in every repeat, is the Trainer with eager attention: on CPU the loop trains
    with its own dropout and eager attention (``nertool.train.cpu_kernels``), and a Trainer user
    can switch to eager attention too, so the record says how much of the ratio that one switch
    would take back. With ``fp32_reference`` the loop also runs in fp32, so the record says what
    the precision itself is worth.
    """
    planned = replace(plan_for(options), precision=precision)
    ready = prepare(planned, options)
    model, tokenizer, initial = ready["model"], ready["tokenizer"], ready["initial"]
    step_s = seconds_per_step(
        fresh_copy(model, initial), tokenizer, ready["dataset"], planned.batch_size, precision
    )
    runs_per_repeat = 3.0 + (FP32_STEP_COST if fp32_reference else 0.0)
    plan = planned if options.quick else fit_to_budget(planned, step_s, BUDGET_S, runs_per_repeat)
    repeats = 1 if options.quick else REPEATS
    dataset, features = first_sentences(ready, plan.train_sentences)
    starts: list[bool] = []  # per timed run: did its model start from ``initial``?
    eager = replace(plan, attention="eager")

    def start() -> Any:
        copy_ = fresh_copy(model, initial)
        starts.append(same_weights(copy_.state_dict(), initial))
        return copy_

    sides: list[tuple[str, Callable[[], Side]]] = [
        ("baseline", lambda: train_with_trainer(start(), tokenizer, dataset, plan, Path(tmp) / "trainer")),
        ("nertool", lambda: train_with_loop(start(), features, plan, Path(tmp) / "loop")),
        ("eager", lambda: train_with_trainer(start(), tokenizer, dataset, eager, Path(tmp) / "eager")),
    ]
    if fp32_reference:
        fp32 = replace(plan, precision="fp32")
        sides.append(("fp32", lambda: train_with_loop(start(), features, fp32, Path(tmp) / "loop-fp32")))
    with tempfile.TemporaryDirectory(prefix="nertool-bench-") as tmp:
        runs = measure_alternating(sides, repeats)
    identical = all(starts) and len(starts) == len(sides) * repeats
    base, ours = list(runs["baseline"].results), list(runs["nertool"].results)
    names = (
        "transformers.Trainer, group_by_length, fused AdamW (example preprocessing)",
        "nertool.train.loop.Loop (Accelerate, length-grouped batches, 4,096-row pools)",
    )
    quality = quality_of(base[-1], ours[-1], identical, ready)
    quality["precision_run"] = {"baseline": base[-1].precision, "nertool": ours[-1].precision}
    rows = rows_of(base, ours, flops_per_token(model))
    spread = headline_spread(rates(base), rates(ours), "sentences/s")
    # (side, its key in quality, its key in spread, the row comparing the loop with it)
    references = [
        ("eager", "baseline_eager", "baseline_eager", "throughput against the Trainer with eager attention"),
    ]
    if fp32_reference:
        references.append(
            ("fp32", "nertool_fp32", f"fp32_to_{precision}", f"loop throughput, fp32 -> {precision}")
        )
    for side, key, spread_key, metric in references:
        reference = list(runs[side].results)
        quality["dev_f1"][key] = dev_f1(reference[-1].model, tokenizer, ready["label_map"], ready["dev"])
        quality["precision_run"][key] = reference[-1].precision
        rows.append(reference_row(metric, reference, ours))
        spread[spread_key] = headline_spread(rates(reference), rates(ours), "sentences/s")["ratio"]
    return make_record(
        scenario,
        options,
        rows,
        quality,
        settings_of(plan, planned, step_s, options, ready["source"]),
        names,
        baseline_config={
            **BASELINE_CONFIG,
            "precision": PRECISION_CONFIG[precision],
            "attention": "sdpa (transformers default); eager as a reference side",
        },
        repeats=repeats,
        spread=spread,
    )


def reference_row(metric: str, reference: Sequence[Side], ours: Sequence[Side]) -> Row:
    """The loop's throughput against a reference side's (medians over the repeats)."""
    median = statistics.median
    return Row(f"{metric} (median)", "sentences/s", median(rates(reference)), median(rates(ours)))
