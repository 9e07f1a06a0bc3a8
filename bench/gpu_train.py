"""GPU training and prediction at XLM-R-base size: the Trainer's fastest configuration against nertool.

``python -m bench.gpu_train`` on a GPU machine (``bench/gpu_session.sh run``; about 6 minutes by an
estimate from earlier H100 step times, not yet measured), or ``python -m bench.gpu_train --device
cpu --tiny --quick``: a smoke test of the whole script on a 2 x 128 model, under a minute on CPU.

Every side trains the same randomly initialised XLM-R-base-sized token classifier (12 x 768,
250,002-piece embedding: 278M parameters) from the same weights on the same 20,000 German WikiANN
training sentences for the same number of epochs (2), then is scored on 5,000 German dev sentences
through one inference path (``bench.gpu_f1``: span F1 equal to seqeval's default mode, because the
GPU machine has no seqeval, nor ``datasets``). Sides (``bench.gpu_sides``): the Trainer (length
grouping, fused AdamW, the faster of fp32 and bf16 in a probe), the loop as shipped (throughput
only), the lean eager step, CUDA graphs at batch 32 and token budgets of 256 x 32 and 512 x 32
tokens. Each reports sentences/s, ms/step and model FLOP utilisation as medians over its epochs
(the repeats, min/max as the spread): ``6 x non-embedding parameters x real tokens / seconds /
bf16 peak``. Prediction (``bench.gpu_predict``): nertool's batched inference against
``transformers.pipeline`` at batch 32 and 256 in bf16, alternating, median of 3.

The record goes to ``bench/results/gpu_<card>.json`` (a temp folder for ``--tiny``).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench.gpu_data import GpuData, find_corpus, load_data
from bench.gpu_predict import compare_predict
from bench.gpu_sides import (
    GpuPlan,
    Side,
    budget_batches,
    release,
    sentence_batches,
    train_lean,
    train_shipped_loop,
    train_trainer,
)
from bench.harness import (
    CACHE,
    DATA_ROOT,
    RESULTS,
    Options,
    Row,
    finite,
    make_record,
    render_table,
    set_threads,
)

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
TINY_PLAN = GpuPlan(
    train_sentences=256,
    dev_sentences=64,
    epochs=2,
    probe_steps=2,
    loop_steps=4,
    budgets=(1024, 2048),
    predict_sentences=64,
    predict_batches=(8, 32),
    repeats=1,
)


def plan_for(quick: bool, epochs: int | None) -> GpuPlan:
    plan = TINY_PLAN if quick else GpuPlan()
    return replace(plan, epochs=epochs) if epochs else plan


def peak_flops(device: Any) -> float | None:
    import torch

    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_FLOPS if key in name), None)


def card_name(device: Any) -> str:
    """``h200`` for "NVIDIA H200": the results file's name part; ``cpu`` without a GPU."""
    import torch

    if device.type != "cuda":
        return "cpu"
    name = torch.cuda.get_device_name(device).lower().removeprefix("nvidia ").strip()
    return re.sub(r"[^a-z0-9]+", "_", name).strip("_")


def xlmr_config(tiny: bool, vocab_size: int, label_map: Any) -> Any:
    from transformers import XLMRobertaConfig

    layers, hidden, heads, intermediate = (2, 128, 2, 256) if tiny else (12, 768, 12, 3072)
    config = XLMRobertaConfig(
        vocab_size=vocab_size if tiny else 250_002,
        num_hidden_layers=layers,
        hidden_size=hidden,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=514,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    config.num_labels = len(label_map)
    config.id2label, config.label2id = label_map.id2label, label_map.label2id  # the pipeline's entity names
    return config


def parameter_counts(model: Any) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    embedding = sum(p.numel() for n, p in model.named_parameters() if any(k in n for k in EMBEDDING_KEYS))
    return {"total": total, "non_embedding": total - embedding}


# ---------------------------------------------------------------- the sides, in one process


def copier(template: Any, device: Any) -> Callable[[], Any]:
    """Fresh models holding exactly ``template``'s initial weights, on ``device``."""

    def fresh() -> Any:
        return copy.deepcopy(template).to(device).train()  # a copy, not a second random init

    return fresh


def train_sides(
    fresh: Callable[[], Any], data: GpuData, plan: GpuPlan, device: Any, folder: Path
) -> tuple[dict[str, Side], Any]:
    """Every side from the same weights; returns their results and the graphs side's trained model."""
    sides: dict[str, Side] = {}
    trainer, model = train_trainer(fresh, data, plan, folder / "trainer")
    sides["trainer"] = trainer
    del model
    release(device)
    sides["shipped_loop"] = train_shipped_loop(fresh(), data, plan, folder / "loop")
    release(device)
    lengths = [len(f) for f in data.features]
    lean = (
        ("eager", sentence_batches(lengths, plan), False, plan.learning_rate),
        ("graphs", sentence_batches(lengths, plan), True, plan.learning_rate),
    )
    kept = None
    for name, batches, graphs, lr in lean:
        side, model = train_lean(fresh(), data, plan, batches, graphs=graphs, learning_rate=lr)
        side.name, side.config = (
            name,
            f"GraphedStep ({'graphs' if graphs else 'eager'}), batch {plan.batch_size}",
        )
        sides[name] = side
        kept = model if graphs else None
        release(device)
    for budget in plan.budgets:
        batches = budget_batches(lengths, budget, plan.seed)
        rows = len(data.features) / max(1, len(batches(0)))
        lr = plan.learning_rate * (rows / plan.batch_size) ** 0.5
        side, model = train_lean(fresh(), data, plan, batches, graphs=False, learning_rate=lr)
        side.name, side.config = f"budget_{budget}", f"token budget {budget} (eager), lr x sqrt(rows/32)"
        sides[side.name] = side
        del model
        release(device)
    return sides, kept


# ---------------------------------------------------------------- the record


@dataclass(frozen=True)
class Comparison:
    """One row of the record with its target ratio and how far dev F1 may fall below the Trainer's."""

    key: str
    row: Row
    target: float | None = None
    side: str | None = None  # whose dev F1 is held against the Trainer's
    f1_tolerance: float | None = None


def comparisons(summary: dict[str, Any], predict: dict[str, Any], budgets: Sequence[int]) -> list[Comparison]:
    """The comparisons the script exists for; the first (graphs against the Trainer) is the headline."""
    rate = {name: s["sentences_per_s"] for name, s in summary.items()}
    unit, trainer = "sentences/s", rate["trainer"]
    found = [
        Comparison(
            "graphs",
            Row("training, CUDA graphs (batch 32) vs Trainer", unit, trainer, rate["graphs"]),
            5.0,
            "graphs",
            0.02,
        ),
        Comparison(
            "eager_vs_shipped_loop",
            Row("training, lean eager vs the shipped loop", unit, rate["shipped_loop"], rate["eager"]),
            1.5,
        ),
        Comparison("eager", Row("training, lean eager vs Trainer", unit, trainer, rate["eager"])),
    ]
    found += [
        Comparison(
            f"budget_{b}",
            Row(f"training, token budget {b} vs Trainer", unit, trainer, rate[f"budget_{b}"]),
            10.0,
            f"budget_{b}",
            0.02,
        )
        for b in budgets
    ]
    predict_targets = dict(zip((32, 256), (5.0, 2.5), strict=True))
    found += [
        Comparison(
            f"predict_{name}",
            Row(
                f"predict {name.replace('_', ' ')} vs pipeline",
                unit,
                v["pipeline_sentences_per_s"],
                v["nertool_sentences_per_s"],
            ),
            predict_targets.get(int(name.removeprefix("batch_"))),
        )
        for name, v in predict.items()
        if name.startswith("batch_")
    ]
    return found


def targets(summary: dict[str, Any], found: Sequence[Comparison]) -> dict[str, Any]:
    """Each target: the measured ratio, the target, the dev F1 gap to the Trainer, whether it was met."""
    result = {}
    for c in found:
        if c.target is None:
            continue
        mine, theirs = summary.get(c.side or "", {}).get("dev_f1"), summary["trainer"]["dev_f1"]
        gap = None if mine is None or theirs is None else round(mine - theirs, 4)
        f1_ok = c.f1_tolerance is None or (gap is not None and gap >= -c.f1_tolerance)
        met = math.isfinite(c.row.ratio) and c.row.ratio >= c.target and f1_ok
        result[c.key] = {
            "ratio": finite(c.row.ratio),
            "target": c.target,
            "dev_f1_minus_trainer": gap,
            "met": met,
        }
    return result


def build_record(
    sides: dict[str, Side], predict: dict[str, Any], plan: GpuPlan, options: Options, extra: dict[str, Any]
) -> dict[str, Any]:
    import torch

    device = torch.device(options.device)
    counts, peak = extra["parameters"], peak_flops(device)
    summary = {name: side.summary(counts["non_embedding"], peak) for name, side in sides.items()}
    found = comparisons(summary, predict, plan.budgets)
    rows = [c.row for c in found]
    quality = {
        "identical_initial_weights": True,
        "dev_f1": {name: s["dev_f1"] for name, s in summary.items() if s["dev_f1"] is not None},
        "predict_entity_agreement_f1": {
            name: v["entity_agreement_f1"] for name, v in predict.items() if name.startswith("batch_")
        },
    }
    settings = {
        **asdict(plan),
        **extra,
        "peak_bf16_flops": peak,
        "flops_formula": "6 x non-embedding parameters x real tokens / seconds / peak",
        "repeats_are": "epochs of one training run per side (median of per-epoch timings); predict: A B A B",
    }
    names = (
        "transformers.Trainer, fastest configuration / transformers.pipeline",
        "nertool GraphedStep / batched inference",
    )
    record = make_record(SCENARIO, options, rows, quality, settings, names)
    return {
        **record,
        "smoke_test_only": device.type != "cuda",
        "baseline_config": summary["trainer"]["config"],
        "repeats": plan.epochs,
        "spread": {name: s["spread"]["sentences_per_s"] for name, s in summary.items()},
        "sides": summary,
        "predict": predict,
        "targets": targets(summary, found),
    }


def render(record: dict[str, Any]) -> str:
    lines = ["| side | sentences/s | ms/step | MFU | dev F1 |", "|---|---:|---:|---:|---:|"]
    for name, s in record["sides"].items():
        mfu, f1 = s["model_flop_utilisation"], s["dev_f1"]
        lines.append(f"| {name} | {s['sentences_per_s']} | {s['ms_per_step']} | {mfu} | {f1} |")
    lines += [
        f"{name}: {t['ratio']} (target {t['target']}, {'met' if t['met'] else 'not met'})"
        for name, t in record["targets"].items()
    ]
    return render_table(record) + "\n" + "\n".join(lines)


def run(
    options: Options, tiny: bool | None = None, epochs: int | None = None, data: Path | None = None
) -> dict[str, Any]:
    """The whole comparison; ``bench.run`` calls it with harness ``Options`` (tiny on CPU)."""
    import torch
    from transformers import XLMRobertaForTokenClassification

    started = time.perf_counter()
    device = torch.device(options.device)
    tiny = device.type != "cuda" if tiny is None else tiny
    plan = plan_for(options.quick, epochs)
    corpus, source = find_corpus(data, options.data_root)
    inputs = load_data(corpus, source, plan.train_sentences, plan.dev_sentences)
    torch.manual_seed(plan.seed)
    template = XLMRobertaForTokenClassification(xlmr_config(tiny, len(inputs.tokenizer), inputs.label_map))
    extra: dict[str, Any] = {"parameters": parameter_counts(template), "data": source, "tiny": tiny}
    with tempfile.TemporaryDirectory(prefix="nertool-bench-gpu-") as tmp:
        sides, model = train_sides(copier(template, device), inputs, plan, device, Path(tmp))
    predict = compare_predict(model, inputs, plan)
    extra["wall_s"] = round(time.perf_counter() - started, 1)
    return build_record(sides, predict, plan, options, extra)


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(prog="python -m bench.gpu_train", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tiny", action="store_true", help="a 2 x 128 model instead of XLM-R-base size")
    parser.add_argument("--quick", action="store_true", help="256 training sentences, 2 epochs, few steps")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per training side (default 2)")
    parser.add_argument("--data", type=Path, default=None, help="WikiANN folder (e.g. .gpudata/wikiann)")
    parser.add_argument(
        "--data-root", type=Path, default=DATA_ROOT, help="shared data folder (wikiann/ inside)"
    )
    parser.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on CPU (0: torch's)")
    args = parser.parse_args(argv)
    from bench.run import quiet_libraries

    quiet_libraries()
    if args.device == "cpu":
        set_threads(args.threads)
    # A smoke test (--tiny) must not overwrite the real GPU results kept in bench/results.
    out = args.out or (Path(tempfile.mkdtemp(prefix="nertool-gpu-smoke-")) if args.tiny else RESULTS)
    options = Options(args.quick, out, CACHE, args.data_root, args.device)
    record = run(options, tiny=args.tiny, epochs=args.epochs, data=args.data)
    print(render(record))
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"gpu_{card_name(torch.device(args.device))}.json"
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
