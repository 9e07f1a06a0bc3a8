"""Progress on standard error: training and pre-training bars, transfer runs, tagged units,
evaluated sentences. Results themselves go to standard output (``render``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

if TYPE_CHECKING:
    from nertool.workflows.evaluate import EvaluationStep


class ProgressReporter:
    """A rich progress bar over optimisation steps with the running loss and speed."""

    def __init__(self, enabled: bool = True, description: str = "training"):
        self.enabled = enabled
        self.description = description
        self.progress: Progress | None = None
        self.task: Any = None

    def start(self, total_steps: int, done: int) -> None:
        if not self.enabled:
            return
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task(self.description, total=total_steps, completed=done, loss="–")

    def step(self, step: int, loss: float) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step, loss=f"{loss:.4f}")

    def log(self, record: dict[str, Any]) -> None:
        if self.progress is not None and "eval" in record:
            scores = ", ".join(f"{k} {v:.3f}" for k, v in record["eval"].get("dev_f1", {}).items())
            self.progress.console.print(f"step {record['step']}: dev F1 {scores}")

    def finish(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def progress_reporter(enabled: bool) -> ProgressReporter:
    return ProgressReporter(enabled)


@contextmanager
def unit_progress(enabled: bool) -> Iterator[Callable[[int], None]]:
    """A counter of tagged units with their rate, on stderr; yields the ``advance(n)`` callback."""
    if not enabled:
        yield lambda n: None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("tagging"),
        TaskProgressColumn(show_speed=True),
        TextColumn("{task.completed} units"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    ) as progress:
        task = progress.add_task("tagging", total=None)
        yield lambda n: progress.advance(task, n)


@contextmanager
def evaluation_progress(enabled: bool | None = None) -> Iterator[Callable[[EvaluationStep], None] | None]:
    """A bar over the sentences an evaluation works through, on stderr; yields the callback for
    ``evaluate_model(progress=...)``, or None (no bar) unless stderr is a terminal (``enabled``
    None) or ``enabled`` is True. The bar goes away when the evaluation ends, before its table."""
    stderr = Console(stderr=True)
    if not (stderr.is_terminal if enabled is None else enabled):
        yield None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("sentences"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
    ) as progress:
        task = progress.add_task("loading", total=None)

        def on_step(step: EvaluationStep) -> None:
            description = "report" if step.stage == "report" else f"{step.stage} {step.language}/{step.split}"
            progress.update(task, total=step.total, completed=step.done, description=description)

        yield on_step


_TRANSFER_VERBS = {"train": "training", "resume": "resuming its checkpoint", "reuse": "done earlier, reused"}


class TransferProgress:
    """One line per run of a transfer (``[2/6] de+fr: training``), then that run's training bar."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled

    def __call__(self, event: Any) -> ProgressReporter | None:
        if not self.enabled:
            return None
        verb = _TRANSFER_VERBS.get(event.status, event.status)
        line = f"[{event.index}/{event.total}] {event.name}: {verb} ({event.run_dir})"
        Console(stderr=True).print(line, markup=False, highlight=False)
        return None if event.status == "reuse" else ProgressReporter(True, description=event.name)


def transfer_progress(enabled: bool) -> TransferProgress:
    return TransferProgress(enabled)


class PretrainProgress(ProgressReporter):
    """The training progress bar, printing held-out perplexity where ``train`` prints dev F1."""

    def log(self, record: dict[str, Any]) -> None:
        if self.progress is not None and "eval" in record:
            scores = record["eval"]
            self.progress.console.print(
                f"step {record['step']}: held-out loss {scores['heldout_loss']:.4f}, "
                f"perplexity {scores['perplexity']:.1f}"
            )


def pretrain_progress(enabled: bool) -> PretrainProgress:
    return PretrainProgress(enabled, description="pre-training")
