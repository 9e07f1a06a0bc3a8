"""GPU training throughput: nertool ``Loop`` against ``transformers.Trainer``, XLM-R-base-sized, bf16.

``python -m bench.gpu_train`` (on a GPU machine) or ``python -m bench.gpu_train --device cpu --tiny
--quick`` (a smoke test of the script itself). Both sides train the same randomly initialised
XLM-R-base-sized token classifier (12 × 768, 250,002-piece embedding: 278M parameters) from the
same weights on the same sentences at batch 32 in bf16 (fp32 on CPU), for the same number of steps.

Throughput is steady state: the clock starts after ``warmup`` optimizer steps and stops at the
last one (``torch.cuda.synchronize`` at both marks), so CUDA start-up and the end-of-run
bookkeeping are not counted. Model FLOP utilisation is ``6 × N × tokens / seconds / peak`` with N
the parameters outside the input embeddings (a lookup does no multiply-adds), on real tokens;
``peak`` is the dense bf16 peak of the GPU model when known.

Runs without ``datasets`` or ``seqeval`` (the GPU machines may lack them): the example's
``tokenize_and_align_labels`` is applied to a plain dict of lists, and nothing is scored. Data:
WikiANN de train when the shared data folder is there, else the bundled sample, repeated.
"""

from __future__ import annotations

import argparse
import copy
import inspect
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench.harness import (
    CACHE,
    DATA_ROOT,
    RESULTS,
    Options,
    PeakMemory,
    Row,
    cycled,
    data_source,
    load_split,
    make_record,
    render_table,
    set_threads,
    write_record,
)
from bench.training import CountingCollator
from nertool.train.loop import SilentReporter

SCENARIO = "gpu_train"
# Dense bf16 tensor-core peaks (no sparsity), by a substring of torch.cuda.get_device_name().
PEAK_BF16_FLOPS = (
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("H200", 989e12),
    ("GH200", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L4", 121e12),
    ("A10G", 70e12),
)
EMBEDDING_KEYS = ("word_embeddings", "position_embeddings", "token_type_embeddings")


@dataclass(frozen=True)
class GpuPlan:
    tiny: bool
    steps: int
    warmup: int
    batch_size: int = 32
    learning_rate: float = 5e-5
    max_length: int = 128
    seed: int = 42


def plan_for(tiny: bool, quick: bool, steps: int | None = None) -> GpuPlan:
    if quick:
        return GpuPlan(tiny, steps or 6, warmup=2, batch_size=8 if tiny else 32)
    return GpuPlan(tiny, steps or 300, warmup=30)


def peak_flops(device: str) -> float | None:
    import torch

    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name(torch.device(device))
    return next((peak for key, peak in PEAK_BF16_FLOPS if key in name), None)


# ---------------------------------------------------------------- model and data


def xlmr_config(tiny: bool, vocab_size: int, n_labels: int) -> Any:
    from transformers import XLMRobertaConfig

    shape = (2, 128, 2, 256) if tiny else (12, 768, 12, 3072)
    config = XLMRobertaConfig(
        vocab_size=vocab_size if tiny else 250_002,
        num_hidden_layers=shape[0],
        hidden_size=shape[1],
        num_attention_heads=shape[2],
        intermediate_size=shape[3],
        max_position_embeddings=514,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    config.num_labels = n_labels
    return config


def parameter_counts(model: Any) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    embedding = sum(p.numel() for n, p in model.named_parameters() if any(k in n for k in EMBEDDING_KEYS))
    return {"total": total, "non_embedding": total - embedding}


@dataclass(frozen=True)
class Inputs:
    tokenizer: Any
    label_map: Any
    features: list[Any]
    rows: list[dict[str, Any]]
    source: str


def build_inputs(plan: GpuPlan, options: Options) -> Inputs:
    """nertool features and the example's tokenized rows of the same sentences."""
    from bench.hf_example import label_aligner
    from nertool.labels import LabelMap
    from nertool.model import build_features, train_tokenizer, word_pieces

    source, source_name = data_source(options)
    sentences = cycled(load_split(source, "train"), plan.steps * plan.batch_size)
    label_map = LabelMap.from_tags(tag for s in sentences for tag in s.tags)
    tokenizer = train_tokenizer((" ".join(s.tokens) for s in sentences), 8000)
    labels = [label_map.encode(s.tags) for s in sentences]
    features = []
    for index, pieces in enumerate(word_pieces(tokenizer, [s.tokens for s in sentences])):
        features += build_features(
            index,
            pieces,
            plan.max_length,
            bos_id=tokenizer.bos_token_id,
            eos_id=tokenizer.eos_token_id,
            label_ids=labels[index],
        )
    encoded = label_aligner(tokenizer, plan.max_length)(
        {"tokens": [list(s.tokens) for s in sentences], "ner_tags": labels}
    )
    rows = [
        {key: encoded[key][i] for key in ("input_ids", "attention_mask", "labels")}
        for i in range(len(labels))
    ]
    return Inputs(tokenizer, label_map, features, rows, source_name)


# ---------------------------------------------------------------- steady-state clock


class StepClock:
    """Time and collator counts at the warm-up step and at the last step."""

    def __init__(self, warmup: int, last: int, counter: CountingCollator, device: str):
        self.warmup, self.last, self.counter, self.device = warmup, last, counter, device
        self.marks: dict[int, tuple[float, int, int]] = {}

    def mark(self, step: int) -> None:
        if step not in (self.warmup, self.last):
            return
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
        self.marks[step] = (time.perf_counter(), self.counter.sentences, self.counter.real)

    def span(self) -> tuple[float, int, int]:
        """(seconds, sentences, real tokens) between the two marks."""
        (t0, s0, r0), (t1, s1, r1) = self.marks[self.warmup], self.marks[self.last]
        return t1 - t0, s1 - s0, r1 - r0


class ClockReporter(SilentReporter):
    """``nertool.train.loop.Reporter`` that marks the clock after each optimizer step."""

    def __init__(self, clock: StepClock):
        self.clock = clock

    def step(self, step: int, loss: float) -> None:
        self.clock.mark(step)


# ---------------------------------------------------------------- the two sides


def sampling_args(fields: Sequence[str]) -> dict[str, Any]:
    """Random batches, under whichever name this transformers version uses."""
    return (
        {"train_sampling_strategy": "random"}
        if "train_sampling_strategy" in fields
        else {"group_by_length": False}
    )


def run_trainer(model: Any, inputs: Inputs, plan: GpuPlan, device: str, folder: Path) -> StepClock:
    from transformers import (
        DataCollatorForTokenClassification,
        PrinterCallback,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    counter = CountingCollator(DataCollatorForTokenClassification(inputs.tokenizer))
    clock = StepClock(plan.warmup, plan.steps, counter, device)

    class Mark(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            clock.mark(state.global_step)

    fields = list(inspect.signature(TrainingArguments.__init__).parameters)
    args = TrainingArguments(
        output_dir=str(folder),
        per_device_train_batch_size=plan.batch_size,
        max_steps=plan.steps,
        learning_rate=plan.learning_rate,
        weight_decay=0.01,
        warmup_steps=int(0.1 * plan.steps),
        seed=plan.seed,
        bf16=device.startswith("cuda"),
        use_cpu=not device.startswith("cuda"),
        report_to="none",
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        **sampling_args(fields),
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=inputs.rows, data_collator=counter, callbacks=[Mark()]
    )
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    return clock


def run_loop(model: Any, inputs: Inputs, plan: GpuPlan, device: str, folder: Path) -> StepClock:
    from nertool.model import FeatureCollator
    from nertool.train.loop import Loop, LoopSettings

    settings = LoopSettings(
        epochs=math.ceil(plan.steps * plan.batch_size / len(inputs.features)) or 1,
        batch_size=plan.batch_size,
        learning_rate=plan.learning_rate,
        max_steps=plan.steps,
        seed=plan.seed,
        log_every=10**9,
        mixed_precision="bf16" if device.startswith("cuda") else "no",
    )
    counter = CountingCollator(FeatureCollator(model.config.pad_token_id))
    clock = StepClock(plan.warmup, plan.steps, counter, device)
    loop = Loop(
        model,
        inputs.features,
        settings,
        folder / "checkpoint",
        reporter=ClockReporter(clock),
        collator=counter,
    )
    loop.save_checkpoint = lambda: None  # type: ignore[method-assign]  # a 3 GB state after the clock stops
    loop.run()
    return clock


def measure(side: Any, model: Any, inputs: Inputs, plan: GpuPlan, device: str) -> tuple[StepClock, float]:
    with tempfile.TemporaryDirectory(prefix="nertool-bench-gpu-") as tmp, PeakMemory(device) as memory:
        clock = side(model, inputs, plan, device, Path(tmp))
    return clock, memory.peak_mb


def utilisation(tokens: int, seconds: float, non_embedding: int, peak: float | None) -> float:
    return 6 * non_embedding * tokens / seconds / peak if peak and seconds else float("nan")


def train_both(template: Any, inputs: Inputs, plan: GpuPlan, device: str) -> tuple[dict[str, Any], bool]:
    """Each side trains its own copy of ``template``'s weights; also whether both copies started equal."""
    from bench.training import same_weights

    initial, results, identical = copy.deepcopy(template.state_dict()), {}, True
    for name, side in (("baseline", run_trainer), ("nertool", run_loop)):
        model = type(template)(copy.deepcopy(template.config))
        model.load_state_dict(initial)
        identical = identical and same_weights(model.state_dict(), initial)
        results[name] = measure(side, model.to(device), inputs, plan, device)
        del model
    return results, identical


def rows_of(results: dict[str, Any], non_embedding: int, peak: float | None, device: str) -> list[Row]:
    (b_clock, b_mem), (n_clock, n_mem) = results["baseline"], results["nertool"]
    (b_s, b_n, b_tok), (n_s, n_n, n_tok) = b_clock.span(), n_clock.span()
    memory = "MiB allocated" if device.startswith("cuda") else "MiB RSS"
    return [
        Row("throughput (steady state)", "sentences/s", b_n / b_s, n_n / n_s),
        Row("real tokens", "tokens/s", b_tok / b_s, n_tok / n_s),
        Row(
            "model FLOP utilisation",
            "fraction of peak",
            utilisation(b_tok, b_s, non_embedding, peak),
            utilisation(n_tok, n_s, non_embedding, peak),
        ),
        Row(
            "padding share", "fraction", b_clock.counter.padding_share, n_clock.counter.padding_share, "lower"
        ),
        Row("peak memory", memory, b_mem, n_mem, "lower"),
    ]


def run(options: Options, tiny: bool | None = None, steps: int | None = None) -> dict[str, Any]:
    from transformers import XLMRobertaForTokenClassification

    device = options.device
    plan = plan_for(tiny if tiny is not None else not device.startswith("cuda"), options.quick, steps)
    inputs = build_inputs(plan, options)
    config = xlmr_config(plan.tiny, len(inputs.tokenizer), len(inputs.label_map))
    template = XLMRobertaForTokenClassification(config)
    counts, peak = parameter_counts(template), peak_flops(device)
    results, identical = train_both(template, inputs, plan, device)
    quality = {
        "identical_initial_weights": identical,
        "steps_timed": plan.steps - plan.warmup,
        "steps_run": {name: clock.counter.batches for name, (clock, _) in results.items()},
    }
    precision = "bf16" if device.startswith("cuda") else "fp32"
    settings = {
        **asdict(plan),
        "parameters": counts,
        "peak_bf16_flops": peak,
        "data": inputs.source,
        "precision": precision,
        "flops_formula": "6 x non-embedding parameters x real tokens",
        "baseline_sampling": "random",
        "nertool_sampling": "length-grouped",
        "timed": f"steady state: optimizer steps {plan.warmup}..{plan.steps}",
    }
    names = (
        f"transformers.Trainer ({precision}, batch {plan.batch_size}, example preprocessing)",
        f"nertool.train.loop.Loop ({precision}, batch {plan.batch_size})",
    )
    rows = rows_of(results, counts["non_embedding"], peak, device)
    return make_record(SCENARIO, replace(options, device=device), rows, quality, settings, names)


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(prog="python -m bench.gpu_train", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tiny", action="store_true", help="a 2 x 128 model instead of XLM-R-base size")
    parser.add_argument("--quick", action="store_true", help="a few steps only")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per side")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results folder (default: bench/results, or a temp folder for --tiny)",
    )
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT)
    parser.add_argument("--threads", type=int, default=1, help="torch threads when --device cpu (0: torch's)")
    args = parser.parse_args(argv)
    from bench.run import quiet_libraries

    quiet_libraries()
    if not args.device.startswith("cuda"):
        set_threads(args.threads)
    # A smoke test (--tiny) must not overwrite the real GPU results kept in bench/results.
    out = args.out or (Path(tempfile.mkdtemp(prefix="nertool-gpu-smoke-")) if args.tiny else RESULTS)
    options = Options(args.quick, out, CACHE, args.data_root, args.device)
    record = run(options, tiny=args.tiny, steps=args.steps)
    print(render_table(record))
    print(f"-> {write_record(record, out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
