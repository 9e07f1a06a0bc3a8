"""What every scenario shares: options, data, machine description, timing, peak memory, records.

A scenario measures a baseline and nertool alternately (A B A B, ``measure_alternating``) and
returns a *record*: a JSON-ready dict with ``scenario``, ``machine``, ``unit``, the headline
``baseline`` and ``nertool`` medians, ``ratio`` (always nertool / baseline), ``baseline_config``
(how the baseline was set up), ``repeats`` and ``spread``, the ``quality`` check that shows both
did the same work, and ``rows`` (every metric measured, each with the direction that is better).
"""

from __future__ import annotations

import ctypes
import gc
import itertools
import json
import math
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = REPO.parent / "shared" / "data"
SAMPLE = REPO / "nertool" / "resources" / "sample"
CACHE = REPO / "bench" / ".cache"
RESULTS = REPO / "bench" / "results"
LANGUAGE = "de"
T = TypeVar("T")


@dataclass(frozen=True)
class Options:
    """How big to run and where to read and write; ``quick`` is the minute-long smoke version."""

    quick: bool = False
    out: Path = RESULTS
    cache: Path = CACHE
    data_root: Path = DATA_ROOT
    device: str = "cpu"


# ---------------------------------------------------------------- data


def data_source(options: Options) -> tuple[str, str]:
    """(corpus folder, name): WikiANN from the shared data folder, else the bundled sample."""
    wikiann = options.data_root / "wikiann"
    if (wikiann / LANGUAGE / "train.tsv").is_file():
        return str(wikiann), "wikiann"
    return str(SAMPLE), "sample"


def load_split(source: str, split: str) -> list[Any]:
    """German sentences of one split (``nertool.data.readers.Sentence`` records)."""
    from nertool.data import load_corpus

    corpus = load_corpus(source, [LANGUAGE], [split])
    return list(corpus.get(LANGUAGE, split) or [])


def in_temporary_folder(prefix: str, body: Callable[[Path], T]) -> T:
    """``body(folder)`` with a fresh temporary folder, deleted afterwards (exports, inputs, outputs)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        return body(Path(tmp))


def cycled(items: Sequence[Any], n: int) -> list[Any]:
    """``n`` items, repeating ``items`` when there are fewer (only the small bundled sample)."""
    return list(itertools.islice(itertools.cycle(items), n)) if items else []


# ---------------------------------------------------------------- machine


def set_threads(threads: int) -> None:
    """Pin torch and child processes (``OMP_NUM_THREADS``) to ``threads`` threads; 0 keeps the default.

    On a CPU shared with other jobs, OpenMP's worker threads wait on each other at every parallel
    region; measured here with the load at 4-5 on 2 cores, a training step of the 4 x 256 model took
    12x longer with 2 threads than with 1. One thread measures the code, not the neighbours.
    """
    if threads <= 0:
        return
    import torch

    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (the platform's processor string elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """What the numbers were measured on; a ratio only means something on one machine."""
    import torch
    import transformers

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


# ---------------------------------------------------------------- time and memory


@dataclass
class Stopwatch:
    seconds: float = 0.0


@contextmanager
def stopwatch() -> Iterator[Stopwatch]:
    watch = Stopwatch()
    started = time.perf_counter()
    try:
        yield watch
    finally:
        watch.seconds = time.perf_counter() - started


Clock = Callable[[], float]


@dataclass(frozen=True)
class Spread:
    """Median and spread of repeated measurements: min, max and the quartiles (IQR = q3 - q1)."""

    median: float
    min: float
    max: float
    q1: float
    q3: float
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            raise ValueError("a spread needs at least one value")
        ordered = sorted(values)
        q1, q3 = _quartiles(ordered)
        return cls(statistics.median(ordered), ordered[0], ordered[-1], q1, q3, tuple(values))

    def as_dict(self, digits: int = 4) -> dict[str, Any]:
        return {
            "median": finite(self.median, digits),
            "min": finite(self.min, digits),
            "max": finite(self.max, digits),
            "iqr": [finite(self.q1, digits), finite(self.q3, digits)],
            "values": [finite(v, digits) for v in self.values],
        }


def _quartiles(ordered: Sequence[float]) -> tuple[float, float]:
    """First and third quartiles (inclusive method: defined for any count, the extremes for two)."""
    if len(ordered) == 1:
        return ordered[0], ordered[0]
    q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    return q1, q3


@dataclass(frozen=True)
class Repeats:
    """Every timed run of one side, in the order they ran, with what each returned."""

    name: str
    seconds: tuple[float, ...]
    peak_growth_mb: tuple[float, ...]
    results: tuple[Any, ...]

    @property
    def median_seconds(self) -> float:
        return float(statistics.median(self.seconds))

    def rates(self, work: float | Sequence[float]) -> tuple[float, ...]:
        """Work per second of each run (``work`` per run, or one amount for all)."""
        amounts = [work] * len(self.seconds) if isinstance(work, int | float) else list(work)
        return tuple(a / s for a, s in zip(amounts, self.seconds, strict=True))


def measure_alternating(
    sides: Sequence[tuple[str, Callable[[], Any]]],
    repeats: int,
    device: str = "cpu",
    clock: Clock = time.perf_counter,
) -> dict[str, Repeats]:
    """Run the sides in turn, A B A B ..., ``repeats`` times each; every run timed on its own.

    Alternating spreads the drift of a shared machine (neighbours starting, thermal state) over all
    sides instead of letting one side run in a quiet minute and the other in a busy one; the caller
    reports medians with their spread (``Spread``, ``paired_ratios``). ``clock`` is injectable so
    the order and bookkeeping can be tested without timing anything.
    """
    if repeats < 1 or not sides:
        raise ValueError("need at least one side and one repeat")
    runs: dict[str, list[tuple[float, float, Any]]] = {name: [] for name, _ in sides}
    for _ in range(repeats):
        for name, fn in sides:
            with PeakMemory(device) as memory:
                started = clock()
                result = fn()
                seconds = clock() - started
            runs[name].append((seconds, memory.growth_mb, result))
    return {
        name: Repeats(
            name,
            tuple(s for s, _, _ in done),
            tuple(m for _, m, _ in done),
            tuple(r for _, _, r in done),
        )
        for name, done in runs.items()
    }


def paired_ratios(baseline: Sequence[float], nertool: Sequence[float]) -> tuple[float, ...]:
    """nertool / baseline for each repeat: both ran back to back, so each pair saw the same load."""
    return tuple(n / b if b else float("nan") for b, n in zip(baseline, nertool, strict=True))


def headline_spread(baseline: Sequence[float], nertool: Sequence[float], unit: str) -> dict[str, Any]:
    """The ``spread`` block of a record: each side's median/min/max/IQR and the paired ratios'."""
    return {
        "unit": unit,
        "baseline": Spread.of(baseline).as_dict(),
        "nertool": Spread.of(nertool).as_dict(),
        "ratio": Spread.of(paired_ratios(baseline, nertool)).as_dict(),
        "ratio_definition": "median of each side for the headline; per-repeat nertool / baseline here",
    }


@dataclass(frozen=True)
class Measured:
    """The best (shortest) of several timed runs, its peak memory growth, and the last result."""

    seconds: float
    all_seconds: tuple[float, ...]
    peak_growth_mb: float
    result: Any


def alternate(baseline: Any, nertool: Any, repeats: int, device: str = "cpu") -> tuple[Measured, Measured]:
    """``measure_alternating`` for two sides, summarised by the best time (kept for older scenarios)."""
    runs = measure_alternating((("baseline", baseline), ("nertool", nertool)), repeats, device)
    return _best(runs["baseline"]), _best(runs["nertool"])


def _best(runs: Repeats) -> Measured:
    times = tuple(round(seconds, 4) for seconds in runs.seconds)
    return Measured(min(times), times, max(runs.peak_growth_mb), runs.results[-1])


def rss_mb() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


def release_memory() -> None:
    """Collect garbage and hand freed heap back to the OS, so the next side starts from the same floor."""
    gc.collect()
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@dataclass
class PeakMemory:
    """Peak memory while the ``with`` block runs.

    On CPU a thread samples the process RSS every ``interval`` seconds; ``growth_mb`` is the peak
    above the RSS at entry (what the measured code itself needed). On GPU it is
    ``torch.cuda.max_memory_allocated`` after a reset.
    """

    device: str = "cpu"
    interval: float = 0.01
    start_mb: float = 0.0
    peak_mb: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def growth_mb(self) -> float:
        return max(0.0, self.peak_mb - self.start_mb)

    def __enter__(self) -> PeakMemory:
        release_memory()
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats()
            self.start_mb = torch.cuda.memory_allocated() / 2**20
            return self
        self.start_mb = self.peak_mb = rss_mb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_mb = max(self.peak_mb, rss_mb())

    def __exit__(self, *exc: object) -> None:
        if self._thread is None:
            import torch

            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
            return
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, rss_mb())


# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class Row:
    """One measured metric; ``ratio`` is nertool / baseline, ``better`` says which way is good."""

    metric: str
    unit: str
    baseline: float
    nertool: float
    better: str = "higher"

    @property
    def ratio(self) -> float:
        return self.nertool / self.baseline if self.baseline else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "baseline": finite(self.baseline),
            "nertool": finite(self.nertool),
            "ratio": finite(self.ratio),
        }


def finite(value: float, digits: int = 4) -> float | None:
    """A rounded number for JSON, or None where it is undefined (JSON has no NaN)."""
    return round(value, digits) if math.isfinite(value) else None


def make_record(
    scenario: str,
    options: Options,
    rows: Sequence[Row],
    quality: dict[str, Any],
    settings: dict[str, Any],
    names: tuple[str, str],
    *,
    baseline_config: dict[str, Any] | None = None,
    repeats: int | None = None,
    spread: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON record of a scenario; the first row is the headline.

    ``baseline_config`` says how the baseline was set up (a ratio against a slowed-down baseline
    means nothing), ``repeats`` how often each side ran (alternating), ``spread`` the headline's
    median/min/max/IQR per side and of the per-repeat ratios (``headline_spread``).
    """
    head = rows[0]
    return {
        "scenario": scenario,
        "quick": options.quick,
        "machine": machine_info(options.device),
        "unit": head.unit,
        "metric": head.metric,
        "baseline": finite(head.baseline),
        "nertool": finite(head.nertool),
        "ratio": finite(head.ratio),
        "ratio_definition": "nertool / baseline",
        "better": head.better,
        "baseline_name": names[0],
        "nertool_name": names[1],
        "baseline_config": baseline_config,
        "repeats": repeats,
        "spread": spread,
        "quality": quality,
        "rows": [row.as_dict() for row in rows],
        "settings": settings,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_record(record: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{record['scenario'].replace(' ', '_')}.json"
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _number(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def render_table(record: dict[str, Any]) -> str:
    """A small Markdown table: one line per metric, with the ratio and which way is better."""
    lines = [
        f"### {record['scenario']}{' (quick)' if record['quick'] else ''}",
        f"baseline: {record['baseline_name']}",
        f"nertool:  {record['nertool_name']}",
        "",
        "| metric | unit | baseline | nertool | ratio (nertool/baseline) | better |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in record["rows"]:
        lines.append(
            f"| {row['metric']} | {row['unit']} | {_number(row['baseline'])} | {_number(row['nertool'])} "
            f"| {_number(row['ratio'])} | {row['better']} |"
        )
    spread = record.get("spread") or {}
    if "ratio" in spread:  # a headline_spread block (the GPU script keeps one spread per side)
        ratio = spread["ratio"]
        lines.append(
            f"repeats: {record.get('repeats')} per side, alternating; headline ratio per repeat "
            f"{_number(ratio['min'])}-{_number(ratio['max'])} (median {_number(ratio['median'])})"
        )
    if record.get("baseline_config"):
        lines.append(f"baseline_config: {json.dumps(record['baseline_config'], ensure_ascii=False)}")
    lines.append(f"quality: {json.dumps(record['quality'], ensure_ascii=False)}")
    return "\n".join(lines)
