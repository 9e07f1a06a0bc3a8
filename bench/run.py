"""Entry point: ``python -m bench.run [--quick] [--scenario NAME]... [--out bench/results]``.

Runs each scenario in turn (default: all CPU scenarios, plus ``gpu_train`` when a GPU is
present), prints its table and writes ``<out>/<scenario>.json``. Torch runs on one thread by
default (``--threads``): on a CPU shared with other jobs, more threads measure the contention
(see ``harness.set_threads``); both sides of a comparison always run with the same setting.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from bench.harness import CACHE, DATA_ROOT, RESULTS, Options, render_table, set_threads, write_record

SCENARIOS = (
    "training",
    "training_bf16",
    "preprocessing",
    "inference",
    "predict_whole_process",
    "memory",
    "training_memory",
    "gpu_train",
)
CPU_SCENARIOS = SCENARIOS[:-1]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and scratch:tiny (about a minute)")
    parser.add_argument(
        "--scenario", action="append", choices=SCENARIOS, help="run only this one (repeatable)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for <scenario>.json")
    parser.add_argument(
        "--cache", type=Path, default=CACHE, help="folder for trained models reused across runs"
    )
    parser.add_argument(
        "--data-root", type=Path, default=DATA_ROOT, help="shared data folder (wikiann/ inside)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: stable on a shared CPU; 0: torch default)",
    )
    return parser.parse_args(argv)


def default_scenarios() -> tuple[str, ...]:
    import torch

    return SCENARIOS if torch.cuda.is_available() else CPU_SCENARIOS


def device_for(scenario: str) -> str:
    """Only ``gpu_train`` uses a GPU (a tiny model on CPU when there is none); the rest are CPU scenarios."""
    import torch

    return "cuda" if scenario == "gpu_train" and torch.cuda.is_available() else "cpu"


def quiet_libraries() -> None:
    """Progress bars and advice from the libraries would bury the tables."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    logging.getLogger("nertool").setLevel(logging.ERROR)
    import transformers

    try:
        import datasets

        datasets.disable_progress_bars()
    except ImportError:  # the GPU machines may not have it; only gpu_train runs there
        pass
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_libraries()
    set_threads(args.threads)
    for name in args.scenario or default_scenarios():
        options = Options(args.quick, args.out, args.cache, args.data_root, device_for(name))
        module = importlib.import_module(f"bench.{name}")
        record = module.run(options)
        path = write_record(record, args.out)
        print(render_table(record))
        print(f"-> {path}\n", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
