"""Memory: peak RSS of ``nertool predict`` on a large text file against a small one.

``nertool predict`` streams (reads, tags and writes in chunks), so its peak RSS must not grow with
the input: the ratio large / small must stay at or below 1.5. Each run is a fresh subprocess
(``python -m nertool predict RUN FILE -o -``, output discarded), and its peak RSS is the
``VmHWM`` of that child, read from ``/proc`` while it runs (see ``peak_rss_of``). The text is
WikiANN de sentences, one per line, repeated up to the size, in a temporary folder deleted after.

The model is a ``scratch:tiny`` run: inference dominates the time, and the point here is memory,
not speed. A run on an empty file gives the start-up time (and the floor RSS); when the small run's
throughput says the large file would take longer than ``LARGE_BUDGET_S`` (8 min), a 50 MB file
is used instead (20 MB if even that would pass 20 min), and the record says so. Quick mode
compares 1 MB with 0.1 MB, so that the whole quick run stays near a minute.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import REPO, Options, Row, data_source, load_split, make_record
from bench.runs import QUICK_RUN, RunPlan, cached_run

SCENARIO = "memory"
MEMORY_RUN = RunPlan("scratch:tiny", 2000, 2, 32, 3e-3)
LARGE_BUDGET_S = 480.0
FALLBACKS = ((50.0, 1200.0), (20.0, float("inf")))  # (MB, budget s), tried in turn
TARGET = 1.5
MB = 1_000_000


def sizes_mb(options: Options) -> tuple[float, float]:
    """(large, small) file sizes in MB."""
    return (1.0, 0.1) if options.quick else (200.0, 2.0)


def write_text(path: Path, lines: Sequence[str], size_mb: float) -> int:
    """Write ``lines`` round-robin until the file holds ``size_mb`` MB; returns the line count."""
    target, written, count = int(size_mb * MB), 0, 0
    block = "\n".join(lines) + "\n"
    per_line = len(block.encode("utf-8")) / len(lines)
    with path.open("w", encoding="utf-8") as handle:
        while written + len(block.encode("utf-8")) <= target:
            handle.write(block)
            written += len(block.encode("utf-8"))
            count += len(lines)
        rest = max(0, int((target - written) / per_line))
        handle.write("\n".join(lines[:rest]) + ("\n" if rest else ""))
    return count + rest


@dataclass(frozen=True)
class Usage:
    """What one ``nertool predict`` run used: peak RSS, time, and RSS along the run."""

    peak_mb: float
    seconds: float
    rss_by_tenth_mb: tuple[float, ...]  # RSS at 10 %, 20 %, ... 100 % of the run: flat = no growth


def proc_memory(pid: int) -> tuple[float, float]:
    """(``VmHWM``, ``VmRSS``) of a live process in MiB: peak RSS since its ``exec``, and RSS now."""
    fields: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmHWM:", "VmRSS:")):
                fields[line[:5]] = int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError):
        pass
    return fields.get("VmHWM", 0.0), fields.get("VmRSS", 0.0)


def by_tenth(samples: Sequence[tuple[float, float]]) -> tuple[float, ...]:
    """The value of the last (time, value) sample at or before each tenth of the sampled span."""
    if not samples:
        return ()
    end, values = samples[-1][0], []
    for k in range(1, 11):
        before = [value for moment, value in samples if moment <= end * k / 10]
        values.append(round(before[-1] if before else samples[0][1], 1))
    return tuple(values)


def peak_rss_of(command: Sequence[str], interval: float = 0.05) -> Usage:
    """Peak RSS, wall time and RSS trace of one subprocess.

    Read from ``/proc/<pid>/status`` ``VmHWM`` while it runs, not from ``wait4``'s ``ru_maxrss``:
    Linux carries the pre-``exec`` high-water mark into ``ru_maxrss``, i.e. this (large) benchmark
    process's RSS at the fork, which hides the child's own peak. ``VmHWM`` only grows, so the last
    reading before exit is the peak up to the final ``interval``.
    """
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(REPO), "TOKENIZERS_PARALLELISM": "false"}
    samples: list[tuple[float, float]] = []
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors, env=env)
        peak = 0.0
        while process.poll() is None:
            high_water, rss = proc_memory(process.pid)
            peak = max(peak, high_water)
            if rss:
                samples.append((time.perf_counter() - started, rss))
            time.sleep(interval)
        if process.returncode != 0:
            errors.seek(0)
            tail = errors.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}): {tail}")
    return Usage(peak, time.perf_counter() - started, by_tenth(samples))


def predict_command(run_dir: Path, text_file: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "nertool",
        "predict",
        str(run_dir),
        str(text_file),
        "-o",
        "-",
        "--device",
        "cpu",
    ]


def large_size(requested_mb: float, seconds_per_mb: float) -> tuple[float, str]:
    """The requested size if it fits its budget, else the first fallback that fits its own; and why."""
    ladder = [(requested_mb, LARGE_BUDGET_S), *((mb, s) for mb, s in FALLBACKS if mb < requested_mb)]
    size = next((mb for mb, budget in ladder if seconds_per_mb * mb <= budget), ladder[-1][0])
    if size == requested_mb:
        return size, ""
    minutes = seconds_per_mb * requested_mb / 60
    return size, f"{requested_mb:g} MB would take about {minutes:.0f} min here; measured {size:g} MB instead"


def measure(
    run_dir: Path, folder: Path, name: str, lines: Sequence[str], size_mb: float
) -> tuple[Usage, int]:
    """Usage of ``nertool predict`` on a fresh file of ``size_mb`` MB, and the file's line count."""
    path = folder / f"{name}.txt"
    count = write_text(path, lines, size_mb) if size_mb else 0
    path.touch()
    usage = peak_rss_of(predict_command(run_dir, path))
    path.unlink()
    return usage, count


def run(options: Options) -> dict[str, Any]:
    run_dir = cached_run(QUICK_RUN if options.quick else MEMORY_RUN, options)
    source, source_name = data_source(options)
    lines = [" ".join(s.tokens) for s in load_split(source, "train")]
    requested_mb, small_mb = sizes_mb(options)
    with tempfile.TemporaryDirectory(prefix="nertool-bench-memory-") as tmp:
        folder = Path(tmp)
        empty = None if options.quick else measure(run_dir, folder, "empty", lines, 0)[0]
        start_s = empty.seconds if empty else 0.0
        small, small_lines = measure(run_dir, folder, "small", lines, small_mb)
        large_mb, note = large_size(requested_mb, max(small.seconds - start_s, 1e-3) / small_mb)
        large, large_lines = measure(run_dir, folder, "large", lines, large_mb)
    ratio = large.peak_mb / small.peak_mb
    rows = [
        Row("peak RSS", "MiB", small.peak_mb, large.peak_mb, "lower"),
        Row("throughput", "lines/s", small_lines / small.seconds, large_lines / large.seconds),
        Row("wall time (incl. start-up)", "s", small.seconds, large.seconds, "lower"),
    ]
    quality = {
        "target_max_ratio": TARGET,
        "meets_target": ratio <= TARGET,
        "lines": {"small": small_lines, "large": large_lines},
        "peak_rss_empty_input_mib": empty.peak_mb if empty else None,
        "start_up_s": empty.seconds if empty else None,
        "rss_by_tenth_of_run_mib": {"small": small.rss_by_tenth_mb, "large": large.rss_by_tenth_mb},
        "note": note or None,
    }
    settings = {
        "model": "scratch:tiny (inference dominates; memory is the point)",
        "run": run_dir.name,
        "data": f"{source_name} de train sentences, one per line, repeated",
        "small_mb": small_mb,
        "large_mb": large_mb,
        "requested_large_mb": sizes_mb(options)[0],
        "command": "python -m nertool predict RUN FILE -o - --device cpu (stdout discarded)",
        "measure": "VmHWM of the child (/proc/<pid>/status), polled every 0.05 s",
    }
    names = (f"nertool predict, {small_mb:g} MB text", f"nertool predict, {large_mb:g} MB text")
    return make_record(SCENARIO, options, rows, quality, settings, names)
