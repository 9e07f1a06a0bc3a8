"""The process side of a training run: the accelerator, stop signals, the clock and the test hooks.

Kept apart from the loop so that the loop reads as the canonical Accelerate sequence; everything
here is either a small pure function or inert unless a test sets its environment variable.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from nertool.train.settings import LoopSettings

log = logging.getLogger("nertool")


class NanInjection:
    """Test hook: ``NERTOOL_TEST_NAN_RANK=<r>`` and ``NERTOOL_TEST_NAN_STEP=<s>`` make process r's loss
    non-finite once, at optimizer step s, to check that every process skips that step together.
    Inert unless both variables are set."""

    def __init__(self, rank: int):
        wanted_rank, step = os.environ.get("NERTOOL_TEST_NAN_RANK"), os.environ.get("NERTOOL_TEST_NAN_STEP")
        active = wanted_rank is not None and step is not None and int(wanted_rank) == rank
        self.step: int | None = int(step) if active and step is not None else None

    def apply(self, loss: torch.Tensor, step: int) -> torch.Tensor:
        if self.step is None or step != self.step:
            return loss
        self.step = None
        return loss * float("nan")


def write_weight_fingerprint(model: Any, rank: int) -> None:
    """Test hook: with ``NERTOOL_TEST_WEIGHTS_OUT=<folder>`` each process writes the sha256 of its
    weights to ``rank-<i>.sha256`` there, so a test can see that all processes ended equal."""
    folder = os.environ.get("NERTOOL_TEST_WEIGHTS_OUT")
    if not folder:
        return
    sha = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        sha.update(name.encode())
        sha.update(tensor.detach().float().cpu().numpy().tobytes())
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / f"rank-{rank}.sha256").write_text(sha.hexdigest())


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AVX-512 BF16 or AMX tiles)."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def cpu_precision(requested: str, *, native_bf16: bool | None = None) -> str:
    """The mixed precision a CPU run gets for ``train.mixed_precision = requested``.

    bf16 autocast runs on CPUs with bf16 matrix instructions, where it trains 1.63x faster than
    fp32 (``scratch:small`` on an AVX-512 BF16 core, ``bench/results/training_bf16.json``); on
    other CPUs bf16 is emulated and slower than fp32, and fp16 autocast has no fast CPU kernels
    anywhere, so those runs stay in fp32 and say so instead of silently ignoring the setting.
    """
    if requested == "no":
        return "no"
    native = cpu_has_native_bf16() if native_bf16 is None else native_bf16
    if requested == "bf16" and native:
        return "bf16"
    why = "this CPU has no bf16 matrix instructions" if requested == "bf16" else "fp16 is for GPUs"
    log.warning("train.mixed_precision = %s: %s; training on CPU runs in fp32", requested, why)
    return "no"


def forget_other_precision(precision: str) -> None:
    """Let a second run in this process use another mixed precision.

    Accelerate keeps one process-wide ``AcceleratorState`` and refuses an ``Accelerator`` whose
    precision differs from the first one's (a bf16 run after an fp32 one in the same Python
    session, a benchmark, a test). Only that record is cleared; the process group
    (``PartialState``) stays, so a distributed run is untouched. The Trainer does the same, more
    bluntly, whenever it builds its arguments.
    """
    from accelerate.state import AcceleratorState

    shared = AcceleratorState._shared_state
    if shared and shared.get("_mixed_precision") != precision:
        AcceleratorState._reset_state()


def make_accelerator(settings: LoopSettings, *, tracker_dir: Path | None = None) -> Any:
    """The run's accelerator; with ``settings.report_to`` its trackers write under ``tracker_dir``.

    Accelerate drops a tracker whose package is missing without a word, so a missing one is an
    error here, before any training.
    """
    from accelerate import Accelerator

    from nertool.train.trackers import check_trackers

    requested = settings.mixed_precision
    precision = requested if torch.cuda.is_available() else cpu_precision(requested)
    check_trackers(settings.report_to)
    forget_other_precision(precision)
    return Accelerator(
        mixed_precision=precision,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        cpu=not torch.cuda.is_available(),
        log_with=list(settings.report_to) or None,
        project_dir=None if tracker_dir is None else str(tracker_dir),
    )


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM/SIGINT, so the loop can save before it stops (main thread only)."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda *_: event.set())
    try:
        yield event
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def time_is_up(started: float, now: float, limit: float | None) -> bool:
    """Past ``limit`` seconds between ``started`` and ``now`` (never without a limit)."""
    return limit is not None and now - started > limit


def make_optimizer(groups: list[dict[str, Any]], learning_rate: float) -> tuple[torch.optim.Optimizer, bool]:
    """AdamW, fused where the parameters' device has the kernel (CUDA, CPU, MPS, XPU), else foreach;
    and whether it can skip an update on the device.

    The fused kernel reads an ``found_inf`` tensor (the mechanism ``GradScaler`` uses): when it is
    1 the update is not applied and the step count is restored, so a non-finite step is skipped
    without the host reading the loss. The fused step is also the fastest (3.5 ms against 8.6 ms
    for 278M parameters on an H100; one kernel instead of a Python loop over tensors on a CPU).
    """
    try:
        return torch.optim.AdamW(groups, lr=learning_rate, fused=True), True
    except (RuntimeError, ValueError):  # a device or dtype without the fused kernel
        return torch.optim.AdamW(groups, lr=learning_rate, foreach=True), False


def loader_workers(device: torch.device, processes: int) -> int:
    """Worker processes that collate batches while the device trains on the last one.

    On a CPU the workers would take cores from the model itself (and collating a batch is
    under a millisecond next to a step of hundreds), so batches are made in the training
    process; on a GPU a few workers keep collation off the step.
    """
    if device.type == "cpu":
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(0, min(4, cores // processes - 1))
