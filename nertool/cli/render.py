"""Terminal rendering for the CLI: progress bars and tables from the records workflows return.

Kept apart from the workflows (which return data) so library users never get output they
did not ask for, and so the same result can be printed, saved or tested.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from nertool.records import Comparison, EvaluationRecord, InspectionReport
from nertool.run_folder import RunFolder
from nertool.tables import text

console = Console()


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


def _fmt(value: Any) -> str:
    return text(value)


def print_inspection(report: InspectionReport) -> None:
    """Per language and split: sentences, tokens, entities, share of O, and the alignment audit."""
    table = Table(title=f"data: {report.source}")
    columns = (
        "language",
        "split",
        "format",
        "sentences",
        "tokens",
        "entities",
        "O share",
        "PER/ORG/LOC/...",
        "repaired",
    )
    for column in columns:
        table.add_column(column)
    for row in report.splits:
        types = " ".join(f"{k}:{v}" for k, v in row["entity_types"].items())
        table.add_row(
            row["language"],
            row["split"],
            row.get("format", ""),
            str(row["sentences"]),
            str(row["tokens"]),
            str(row["entities"]),
            f"{row['o_share']:.3f}",
            types,
            str(row.get("repaired_tags", 0)),
        )
    console.print(table)
    if report.alignment:
        print_table("alignment audit", [dict(row) for row in report.alignment])


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    """A generic table from a list of flat dicts (keys of the first row are the columns)."""
    if not rows:
        return
    table = Table(title=title)
    for column in rows[0]:
        table.add_column(str(column))
    for row in rows:
        table.add_row(*(_fmt(row.get(column)) for column in rows[0]))
    console.print(table)


@contextmanager
def unit_progress(enabled: bool) -> Iterator[Callable[[int], None]]:
    """A counter of tagged units with their rate, on stderr; yields the ``advance(n)`` callback."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import Progress, SpinnerColumn, TaskProgressColumn

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


def _interval(block: Mapping[str, Any], key: str = "f1_ci") -> str:
    interval = block.get(key)
    return f"{interval['low']:.3f}–{interval['high']:.3f}" if interval else ""


def _record(metrics: EvaluationRecord | Mapping[str, Any]) -> EvaluationRecord:
    """The record of a ``metrics.json`` document (train and pretrain results still carry the dict)."""
    if isinstance(metrics, EvaluationRecord):
        return metrics
    return EvaluationRecord.from_json({"languages": {}, **metrics})


def _print_language_split_table(
    title: str,
    columns: Sequence[str],
    metrics: EvaluationRecord | Mapping[str, Any],
    cells: Callable[[Mapping[str, Any]], list[str]],
) -> None:
    """One row per (language, split) of a record; ``cells`` gives the columns after those two."""
    table = Table(title=title)
    for column in ("language", "split", *columns):
        table.add_column(column, justify="left" if column in ("language", "split") else "right")
    for language, split, block in _record(metrics).blocks():
        table.add_row(language, split, *cells(block))
    console.print(table)


def print_metrics(metrics: EvaluationRecord | Mapping[str, Any], title: str) -> None:
    """Scores per language and split: micro F1 with its bootstrap interval (if any), macro/strict F1,
    precision, recall, token accuracy, sentences."""
    columns = ("f1", "95% CI", "macro_f1", "strict_f1", "precision", "recall", "token_acc", "sentences")
    _print_language_split_table(
        title,
        columns,
        metrics,
        lambda s: [
            _fmt(s["f1"]),
            _interval(s),
            _fmt(s.get("macro_f1")),
            _fmt(s["strict_f1"]),
            _fmt(s["precision"]),
            _fmt(s["recall"]),
            _fmt(s.get("token_accuracy")),
            str(s["sentences"]),
        ],
    )


def print_seed_metrics(metrics: EvaluationRecord | Mapping[str, Any], title: str) -> None:
    """Multi-seed runs: mean ± standard deviation of F1 and strict F1 per language and split."""
    columns = ("f1 mean ± std", "strict_f1 mean ± std", "seeds", "sentences")
    _print_language_split_table(
        title,
        columns,
        metrics,
        lambda s: [
            f"{s['f1_mean']:.3f} ± {s['f1_std']:.3f}",
            f"{s['strict_f1_mean']:.3f} ± {s['strict_f1_std']:.3f}",
            str(len(s["seeds"])),
            str(s["sentences"]),
        ],
    )


def print_comparison(result: Comparison) -> None:
    """Paired bootstrap per language: F1 of A and B, their difference with its interval, the p-value."""
    table = Table(title=f"A = {result.model_a}  vs  B = {result.model_b}  ({result.n} resamples)")
    for column in ("language", "split", "sentences", "f1 A", "f1 B", "A − B", "95% CI", "p-value"):
        table.add_column(column, justify="left" if column in ("language", "split") else "right")
    for language, splits in result.languages.items():
        for split, s in splits.items():
            table.add_row(
                language,
                split,
                str(s["sentences"]),
                _fmt(s["f1_a"]),
                _fmt(s["f1_b"]),
                f"{s['delta']:+.3f}",
                f"{s['low']:+.3f} – {s['high']:+.3f}",
                f"{s['p_value']:.3f}",
            )
    console.print(table)


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


def print_transfer(title: str, rows: list[dict[str, Any]], notes: list[str]) -> None:
    """The headline transfer table, then one line per note (other selections, crossover, files)."""
    print_table(title, rows)
    for note in notes:
        console.print(note, markup=False, highlight=False)


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


def print_pretrain(run_dir: Path, history: Sequence[Mapping[str, Any]]) -> None:
    """Held-out masked-LM loss at each evaluation, then where the model is."""
    rows = [{"step": r["step"], **r["eval"]} for r in history]
    print_table(f"{run_dir} — held-out masked-LM loss", rows)
    typer.echo(f"model: {RunFolder(run_dir).model} (use it as model.name in a train recipe)")
