"""Predict, whole process: ``nertool predict`` against a pipeline script, each a fresh process.

The inference scenario times tagging inside one process; a user runs a command. Here each side is
a subprocess started from nothing and timed until it exits: interpreter start, imports, model
load, reading the input file, tagging, writing the output. The input is a CoNLL file of WikiANN de
sentences (test, then validation); the model is the inference scenario's cached run.

- baseline: ``python -m bench.pipeline_predict`` (``transformers.pipeline``,
  ``aggregation_strategy="first"``) at the pipeline's fastest batch size of
  ``inference.PIPELINE_BATCHES`` (probed in this process first, as the inference scenario does);
- nertool: ``python -m nertool predict RUN INPUT -o OUT --input-format conll --threads T`` with
  its defaults, with ``--backend torch`` and, when onnxruntime is installed, ``--backend onnx``
  on an export of the same run (``nertool export``, not timed). The headline is the faster
  backend, and the record says which.

Every child gets the same thread count (``OMP_NUM_THREADS``/``MKL_NUM_THREADS``; nertool also by
``--threads``). The sides alternate (pipeline, torch, onnx, pipeline, ...) ``REPEATS`` times;
medians with the spread. A one-sentence input, run once per side before timing, gives each
side's start-up. Quality: each side's output file of the last repeat, read back as word tags —
word-level disagreement (explained by the pipeline's bare-``▁`` word heuristic, see
``inference``), the first-subword check against the pipeline's per-subword labels, ONNX against
torch word by word, and test F1 of every side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench.harness import (
    REPO,
    Options,
    Row,
    headline_spread,
    in_temporary_folder,
    make_record,
    measure_alternating,
    stopwatch,
)
from bench.inference import (
    PROBE,
    PROBE_ROUNDS,
    bare_piece_words,
    best_batch_size,
    disagreement,
    first_subword_agreement,
    inference_sentences,
    nertool_tags,
    onnx_available,
    pipeline_tags,
    test_f1,
)
from bench.runs import INFERENCE_RUN, QUICK_RUN, cached_run

SCENARIO = "predict whole process"
REPEATS = 3
TARGET = 2.5
BUDGET_S = 480.0  # every timed run together (full mode); fewer sentences when this machine is slower
SIDES_COST = 1.6  # one repeat of all sides, in pipeline-tagging times (nertool's sides are faster)
SUBWORD_CHECK = 2000
MIN_SENTENCES = 2000


def wanted(options: Options) -> int:
    return 300 if options.quick else 8000


def fit_to_budget(per_sentence: float, n: int) -> int:
    affordable = int(BUDGET_S / (REPEATS * SIDES_COST * per_sentence)) // 1000 * 1000
    return max(MIN_SENTENCES, min(n, affordable))


def write_conll(path: Path, sentences: Sequence[Any]) -> None:
    """One word per line, a blank line after each sentence: what both sides read."""
    with path.open("w", encoding="utf-8") as handle:
        for sentence in sentences:
            handle.write("\n".join(sentence.tokens) + "\n\n")


@dataclass(frozen=True)
class Command:
    """One side: the argv of its child process and the file it writes."""

    name: str
    argv: tuple[str, ...]
    output: Path


def child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def run_child(command: Command, env: dict[str, str]) -> float:
    """Run one side to its end; its wall-clock seconds. A failing child fails the scenario, loudly."""
    with stopwatch() as watch:
        done = subprocess.run(command.argv, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{command.name} exited {done.returncode}: {done.stderr[-2000:]}")
    return watch.seconds


def commands(
    run_dir: Path, onnx_dir: Path | None, source: Path, out: Path, batch_size: int, threads: int
) -> list[Command]:
    python = sys.executable
    sides = [
        Command(
            "baseline",
            (
                python,
                "-m",
                "bench.pipeline_predict",
                str(run_dir / "model"),
                str(source),
                str(out / "pipeline.jsonl"),
                "--batch-size",
                str(batch_size),
            ),
            out / "pipeline.jsonl",
        ),
        Command(
            "nertool",
            (
                python,
                "-m",
                "nertool",
                "predict",
                str(run_dir),
                str(source),
                "-o",
                str(out / "torch.jsonl"),
                "--input-format",
                "conll",
                "--threads",
                str(threads),
                "--backend",
                "torch",
            ),
            out / "torch.jsonl",
        ),
    ]
    if onnx_dir is not None:
        sides.append(
            Command(
                "onnx",
                (
                    python,
                    "-m",
                    "nertool",
                    "predict",
                    str(onnx_dir),
                    str(source),
                    "-o",
                    str(out / "onnx.jsonl"),
                    "--input-format",
                    "conll",
                    "--threads",
                    str(threads),
                    "--backend",
                    "onnx",
                ),
                out / "onnx.jsonl",
            )
        )
    return sides


def export_for_onnx(run_dir: Path, folder: Path) -> Path | None:
    """An ONNX export of the run (not timed), or None when onnxruntime and its exporter are absent."""
    if not onnx_available():
        return None
    from nertool.model.export import export_onnx

    export_onnx(run_dir, folder / "onnx")
    return folder / "onnx"


def startup_seconds(sides: Sequence[Command], env: dict[str, str]) -> dict[str, float]:
    """Each side on a one-sentence input: interpreter, imports and model load, nearly nothing else."""
    return {side.name: round(run_child(side, env), 3) for side in sides}


# ---------------------------------------------------------------- quality


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def word_bounds(tokens: Sequence[str]) -> tuple[list[int], list[int]]:
    """Character [start, end) of each word in ``" ".join(tokens)`` (what the pipeline saw)."""
    starts, ends, position = [], [], 0
    for token in tokens:
        starts.append(position)
        ends.append(position + len(token))
        position += len(token) + 1
    return starts, ends


@dataclass(frozen=True)
class Tagged:
    tags: list[str]


def quality_of(
    run_dir: Path, sentences: Sequence[Any], n_test: int, outputs: dict[str, Path]
) -> dict[str, Any]:
    from nertool.model import load_tokenizer

    rows = {name: read_jsonl(path) for name, path in outputs.items()}
    counts = {name: len(records) for name, records in rows.items()}
    base_tags = [
        pipeline_tags(row["entities"], *word_bounds(s.tokens))
        for row, s in zip(rows["baseline"], sentences, strict=True)
    ]
    ours = [Tagged(row["tags"]) for row in rows["nertool"]]
    our_tags = [nertool_tags(t.tags) for t in ours]
    bare = bare_piece_words(load_tokenizer(str(run_dir)), sentences)
    gold = sentences[:n_test]
    quality: dict[str, Any] = {
        "sentences_in": len(sentences),
        "records_out": counts,
        "pipeline_vs_nertool": disagreement(base_tags, our_tags, bare),
        "first_subword_check": first_subword_agreement(
            str(run_dir / "model"), sentences[:SUBWORD_CHECK], ours[:SUBWORD_CHECK]
        ),
        "test_sentences_scored": n_test,
        "test_f1": {"baseline": test_f1(gold, base_tags), "nertool": test_f1(gold, our_tags)},
    }
    if "onnx" in outputs:
        onnx_tags = [row["tags"] for row in rows["onnx"]]
        same = sum(
            a == b
            for x, y in zip(onnx_tags, [t.tags for t in ours], strict=True)
            for a, b in zip(x, y, strict=True)
        )
        quality["onnx_vs_torch_same_word_tags"] = {"words": sum(len(t.tags) for t in ours), "same": same}
        quality["test_f1"]["onnx"] = test_f1(gold, [nertool_tags(t) for t in onnx_tags])
    return quality


# ---------------------------------------------------------------- the scenario


def rows_of(n: int, runs: dict[str, Any], startup: dict[str, float]) -> tuple[list[Row], str]:
    """Rows with the faster nertool backend first (the headline), then every comparison."""
    import statistics

    rate = {name: statistics.median(n / s for s in r.seconds) for name, r in runs.items()}
    best = max((name for name in rate if name != "baseline"), key=rate.__getitem__)
    label = {"nertool": "torch", "onnx": "ONNX"}
    rows = [
        Row(f"throughput, best backend ({label[best]}) (median)", "sentences/s", rate["baseline"], rate[best])
    ]
    rows.append(Row("throughput, torch backend (median)", "sentences/s", rate["baseline"], rate["nertool"]))
    if "onnx" in rate:
        rows.append(Row("throughput, ONNX backend (median)", "sentences/s", rate["baseline"], rate["onnx"]))
        rows.append(
            Row("throughput, ONNX vs torch backend (median)", "sentences/s", rate["nertool"], rate["onnx"])
        )
    seconds = {name: statistics.median(r.seconds) for name, r in runs.items()}
    rows.append(Row("wall time (median)", "s", seconds["baseline"], seconds[best], "lower"))
    rows.append(Row("start-up, one sentence", "s", startup["baseline"], startup[best], "lower"))
    return rows, best


def run(options: Options) -> dict[str, Any]:
    return in_temporary_folder("nertool-bench-process-", partial(_run, options))


def _run(options: Options, tmp: Path) -> dict[str, Any]:
    import torch

    plan = QUICK_RUN if options.quick else INFERENCE_RUN
    run_dir = cached_run(plan, options)
    sentences, n_test = inference_sentences(options, wanted(options))
    batch_size, probes = best_batch_size(str(run_dir / "model"), [" ".join(s.tokens) for s in sentences])
    n = len(sentences) if options.quick else fit_to_budget(probes[batch_size], len(sentences))
    sentences, n_test = sentences[:n], min(n_test, n)
    source = tmp / "input.conll"
    write_conll(source, sentences)
    threads = torch.get_num_threads()
    env = child_env(threads)
    onnx_dir = export_for_onnx(run_dir, tmp)
    sides = commands(run_dir, onnx_dir, source, tmp, batch_size, threads)
    one = tmp / "one.conll"
    write_conll(one, sentences[:1])
    startup = startup_seconds(commands(run_dir, onnx_dir, one, tmp, batch_size, threads), env)
    repeats = 1 if options.quick else REPEATS
    runs = measure_alternating([(side.name, partial(run_child, side, env)) for side in sides], repeats)
    rows, best = rows_of(n, runs, startup)
    quality = quality_of(run_dir, sentences, n_test, {side.name: side.output for side in sides})
    rates = [[n / s for s in runs[name].seconds] for name in ("baseline", best)]
    settings = {
        "run": run_dir.name,
        "sentences": n,
        "requested_sentences": wanted(options),
        "pipeline_probe_s_per_sentence": probes,
        "pipeline_batch_size": batch_size,
        "threads": threads,
        "budget_s": None if options.quick else BUDGET_S,
        "best_backend": best,
        "commands": {
            side.name: " ".join(Path(a).name if "/" in a else a for a in side.argv[1:]) for side in sides
        },
        "startup_s": startup,
        "repeats": repeats,
        "order": "alternating: " + ", ".join(side.name for side in sides) + ", ...",
        "timed": "each child process from start to exit (subprocess wall clock)",
        "target": TARGET,
    }
    return make_record(
        SCENARIO,
        options,
        rows,
        quality,
        settings,
        ("python -m bench.pipeline_predict (transformers.pipeline)", f"nertool predict --backend {best}"),
        baseline_config={
            "aggregation_strategy": "first",
            "batch_size": f"{batch_size} (fastest of {', '.join(map(str, sorted(probes)))}; "
            f"best of {PROBE_ROUNDS} rounds on a {PROBE}-sentence probe)",
            "device": "cpu",
            "threads": threads,
        },
        repeats=repeats,
        spread=headline_spread(rates[0], rates[1], "sentences/s"),
    )
