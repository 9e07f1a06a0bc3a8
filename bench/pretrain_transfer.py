"""Does masked-LM pre-training help zero-shot transfer? Random weights against a pre-trained encoder.

``python -m bench.pretrain_transfer --pretrain-recipe recipes/pretrain-wikiann-cpu.toml --data DIR``

1. ``nertool pretrain`` with the given recipe (its text read from ``--data``), unless ``--encoder``
   names an encoder already pre-trained;
2. ``nertool transfer recipes/transfer-local.toml`` with sources ``[["de"]]`` once from random
   weights (the pre-training recipe's ``scratch:`` size and vocabulary size, tokenizer trained on the
   fine-tuning text, as ``train`` does) and once from the pre-trained encoder, at each
   ``--lr``; both run the same fine-tuning recipe, ``--parallel`` of them at a time;
   and once from a *control*: random weights of the encoder's own shape with the encoder's own
   (multilingual) tokenizer, which separates what the tokenizer contributes from what
   pre-training does (the random-weights run trains its tokenizer on the German fine-tuning text);
3. per encoder, the learning rate with the best German dev F1 (no target-language data is used to
   choose), and its test F1 per language: the baseline column is random weights, the nertool
   column the pre-trained encoder, the control in the last rows; every table is kept in the record.

The command lines run are written into the record, so each number can be reproduced by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import REPO, RESULTS, Options, Row, make_record, render_table, write_record

TRANSFER_RECIPE = REPO / "recipes" / "transfer-local.toml"
SOURCE = "de"


@dataclass(frozen=True)
class FineTune:
    """One ``nertool transfer`` run: which encoder, which learning rate, where."""

    encoder: str  # "random", "control" (random weights, the encoder's tokenizer) or "pretrained"
    model_name: str
    learning_rate: float
    out: Path


def nertool(*args: str, log: Path) -> float:
    """Run ``python -m nertool ARGS`` with its output in ``log``; seconds taken. Fails loudly."""
    command = [sys.executable, "-m", "nertool", *args]
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as handle:
        handle.write(shlex.join(command) + "\n")
        handle.flush()
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO, check=False)
    if done.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise SystemExit(f"{shlex.join(command)} failed ({done.returncode}):\n{tail}")
    return time.perf_counter() - start


def sets(pairs: dict[str, Any]) -> list[str]:
    """``--set key=value`` arguments, values in TOML (JSON) syntax."""
    return [arg for key, value in pairs.items() for arg in ("--set", f"{key}={json.dumps(value)}")]


def pretrain(args: argparse.Namespace, work: Path) -> tuple[Path, dict[str, Any]]:
    """Pre-train (or take ``--encoder``); the encoder folder and a summary of its log."""
    if args.encoder:
        run_dir = args.encoder.parent  # a run folder holds model/ beside its log and manifest
        found = (run_dir / "train_log.jsonl").is_file() and (run_dir / "data_manifest.json").is_file()
        return args.encoder, {
            "encoder": str(args.encoder),
            "reused": True,
            **(pretrain_summary(run_dir) if found else {}),
        }
    run_dir = work / "pretrain"
    overrides = {"pretrain.text": [str(args.data)], **dict(_pair(item) for item in args.pretrain_set)}
    seconds = nertool(
        "pretrain", str(args.pretrain_recipe), "-o", str(run_dir), *sets(overrides), log=work / "pretrain.log"
    )
    return run_dir / "model", {**pretrain_summary(run_dir), "seconds": round(seconds, 1), "set": overrides}


def pretrain_summary(run_dir: Path) -> dict[str, Any]:
    """Steps, speed and the held-out perplexity curve of a pre-training run."""
    lines = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines() if line]
    steps = [line for line in lines if "loss" in line]
    evals = [{"step": line["step"], **line["eval"]} for line in lines if "eval" in line]
    manifest = json.loads((run_dir / "data_manifest.json").read_text())
    return {
        "steps": max((line["step"] for line in lines), default=0),
        "tokens_per_s": round(steps[-1].get("tokens_per_s", 0.0), 1) if steps else None,
        "heldout": evals,
        "data": manifest,
    }


def _pair(item: str) -> tuple[str, Any]:
    key, _, value = item.partition("=")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def random_model(recipe_path: Path, overrides: Sequence[str]) -> tuple[str, int]:
    """The pre-training recipe's scratch size and vocabulary size: random weights of that shape."""
    from nertool.config import load_recipe

    model = load_recipe(recipe_path, overrides).model
    if not model.name.startswith("scratch:"):
        raise SystemExit(
            f"{recipe_path}: the random-weights baseline needs a scratch: model, not {model.name}"
        )
    return model.name, model.vocab_size


def control_encoder(encoder: Path, out: Path, seed: int = 0) -> Path:
    """Random weights in the encoder's architecture, beside a copy of its tokenizer files."""
    import shutil

    import torch
    from transformers import AutoConfig, AutoModelForMaskedLM

    if (out / "config.json").is_file():
        return out
    torch.manual_seed(seed)
    config = AutoConfig.from_pretrained(str(encoder), trust_remote_code=False)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    AutoModelForMaskedLM.from_config(config).save_pretrained(str(partial))
    for file in encoder.iterdir():
        if file.is_file() and (
            file.name.startswith(("tokenizer", "special_tokens")) or file.suffix == ".model"
        ):
            shutil.copyfile(file, partial / file.name)
    partial.rename(out)
    return out


def fine_tune(job: FineTune, args: argparse.Namespace, vocab_size: int) -> dict[str, Any]:
    """One transfer table; returns its rows plus the German dev F1 that picks the learning rate."""
    overrides = {
        "data.source": str(args.data),
        "data.max_train_samples": args.train_sentences,
        "data.max_eval_samples": args.eval_sentences,
        "transfer.sources": [[SOURCE]],
        "transfer.sample_sizes": [],
        "model.name": job.model_name,
        "model.vocab_size": vocab_size,
        "train.learning_rate": job.learning_rate,
        **dict(_pair(item) for item in args.finetune_set),
    }
    seconds = nertool(
        "transfer",
        str(TRANSFER_RECIPE),
        "-o",
        str(job.out),
        *sets(overrides),
        log=job.out.with_suffix(".log"),
    )
    table = json.loads((job.out / "transfer.json").read_text())
    metrics = json.loads((job.out / "runs" / SOURCE / "metrics.json").read_text())
    return {
        "encoder": job.encoder,
        "learning_rate": job.learning_rate,
        "dev_f1": metrics["languages"][SOURCE]["validation"]["f1"],
        "test_f1": table["rows"][0]["scores"],
        "zero_shot_mean": table["rows"][0]["zero_shot_mean"],
        "seconds": round(seconds, 1),
        "set": overrides,
    }


def best_by_dev(results: Sequence[dict[str, Any]], encoder: str) -> dict[str, Any]:
    return max((r for r in results if r["encoder"] == encoder), key=lambda r: r["dev_f1"])


def rows_of(random: dict[str, Any], pretrained: dict[str, Any]) -> list[Row]:
    """Zero-shot mean first (the headline), then every language's test F1."""
    rows = [Row("zero-shot mean F1", "F1", random["zero_shot_mean"], pretrained["zero_shot_mean"])]
    for language, score in random["test_f1"].items():
        kind = "in-language" if language == SOURCE else "zero-shot"
        rows.append(Row(f"{language} test F1 ({kind})", "F1", score, pretrained["test_f1"][language]))
    return rows


def control_rows(control: dict[str, Any], pretrained: dict[str, Any]) -> list[Row]:
    """The control (random weights, the encoder's tokenizer) against the pre-trained encoder."""
    rows = [Row("control: zero-shot mean F1", "F1", control["zero_shot_mean"], pretrained["zero_shot_mean"])]
    for language, score in control["test_f1"].items():
        rows.append(Row(f"control: {language} test F1", "F1", score, pretrained["test_f1"][language]))
    return rows


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pretrain_transfer", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--pretrain-recipe", type=Path, required=True)
    parser.add_argument(
        "--data", type=Path, required=True, help="a WikiANN corpus folder (language/split.tsv)"
    )
    parser.add_argument("--encoder", type=Path, default=None, help="skip pre-training: use this encoder")
    parser.add_argument("--pretrain-set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--finetune-set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--lr", type=float, action="append", default=None, help="fine-tuning learning rates")
    parser.add_argument("--train-sentences", type=int, default=3000)
    parser.add_argument("--eval-sentences", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=1, help="fine-tuning runs at a time")
    parser.add_argument("--work", type=Path, default=Path("runs/pretrain-transfer"))
    parser.add_argument("--name", default="pretrain_transfer", help="the record's file name (scenario)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--device", default="cpu", help="recorded as the machine's device")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    args.data, args.pretrain_recipe = args.data.resolve(), args.pretrain_recipe.resolve()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    encoder, pretraining = pretrain(args, work)
    size, vocab = random_model(args.pretrain_recipe, args.pretrain_set)
    control = control_encoder(encoder, work / "control-encoder")
    jobs = [
        FineTune(name, model, lr, work / f"transfer-{name}-lr{lr:g}")
        for lr in args.lr or [5e-4]
        for name, model in (("random", size), ("control", str(control)), ("pretrained", str(encoder)))
    ]
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
        results = list(pool.map(lambda job: fine_tune(job, args, vocab), jobs))
    random, pretrained = best_by_dev(results, "random"), best_by_dev(results, "pretrained")
    control_best = best_by_dev(results, "control")
    quality = {
        "pretrained_beats_random_zero_shot": all(
            pretrained["test_f1"][lang] > random["test_f1"][lang]
            for lang in random["test_f1"]
            if lang != SOURCE
        ),
        "pretrained_beats_control_zero_shot": all(
            pretrained["test_f1"][lang] > control_best["test_f1"][lang]
            for lang in control_best["test_f1"]
            if lang != SOURCE
        ),
        "chosen_learning_rate": {
            "random": random["learning_rate"],
            "control": control_best["learning_rate"],
            "pretrained": pretrained["learning_rate"],
        },
        "control": {
            "what": "random weights of the encoder's architecture with the encoder's tokenizer",
            "test_f1": control_best["test_f1"],
            "zero_shot_mean": control_best["zero_shot_mean"],
        },
    }
    settings = {
        "pretraining": pretraining,
        "fine_tuning": results,
        "pretrain_recipe": str(args.pretrain_recipe),
    }
    names = (f"random weights ({size})", f"pre-trained encoder ({args.pretrain_recipe.name})")
    options = Options(out=args.out, device=args.device)
    rows = rows_of(random, pretrained) + control_rows(control_best, pretrained)
    record = make_record(args.name, options, rows, quality, settings, names)
    print(render_table(record))
    print(f"-> {write_record(record, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
