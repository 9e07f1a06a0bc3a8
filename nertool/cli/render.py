"""What the CLI prints: tables or JSON of the records workflows return (progress: ``progress``).

Kept apart from the workflows (which return data) so library users never get output they
did not ask for, and so the same result can be printed, saved or tested. Results go to standard
output: as tables (as wide as they need when it is not a terminal, so nothing is cut in a pipe or
a log) or, with ``--json``, as the result's JSON document. Progress goes to standard error.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import typer
from rich.console import Console, JustifyMethod
from rich.table import Table

from nertool.cli.progress import (  # the commands reach the progress displays through here too
    PretrainProgress,
    ProgressReporter,
    TransferProgress,
    evaluation_progress,
    pretrain_progress,
    progress_reporter,
    transfer_progress,
    unit_progress,
)
from nertool.records import Comparison, EvaluationRecord, InspectionReport
from nertool.run_folder import RunFolder
from nertool.tables import text

__all__ = [
    "WIDE",
    "PretrainProgress",
    "ProgressReporter",
    "TransferProgress",
    "console",
    "evaluation_progress",
    "out",
    "pretrain_progress",
    "print_comparison",
    "print_inspection",
    "print_json",
    "print_metrics",
    "print_pretrain",
    "print_seed_metrics",
    "print_table",
    "print_transfer",
    "print_transfer_json",
    "progress_reporter",
    "transfer_progress",
    "unit_progress",
]

WIDE = 4096  # the width of standard output when it is not a terminal: wider than any table


def out() -> Console:
    """Standard output as it is now: a terminal's own width, else (a pipe, a file, a test runner)
    wide enough that no table is cut to 80 columns (``COLUMNS`` still decides where it is set)."""
    console = Console()
    if console.is_terminal or os.environ.get("COLUMNS", "").isdigit():
        return console
    return Console(width=WIDE)


class _Stdout:
    """``console.print`` on standard output as it is when printing (see ``out``)."""

    def print(self, *objects: Any, **options: Any) -> None:
        out().print(*objects, **options)


console = _Stdout()


def print_json(result: Any) -> None:
    """A result as one JSON document on standard output (``--json``): a record's ``to_json()``,
    a dataclass's fields, or the mapping itself; paths are written as strings."""
    if hasattr(result, "to_json"):
        result = result.to_json()
    elif dataclasses.is_dataclass(result) and not isinstance(result, type):
        result = dataclasses.asdict(result)
    typer.echo(json.dumps(result, indent=2, ensure_ascii=False, default=str))


def print_transfer_json(out_dir: Path) -> None:
    """The transfer's result is ``transfer.json``, just written: printed as it is on disk."""
    print_json(json.loads((out_dir / "transfer.json").read_text(encoding="utf-8")))


def _table(
    title: str, columns: Sequence[str], names: Sequence[str] = (), numbers: JustifyMethod = "right"
) -> Table:
    """A table whose cells are never cut: ``names`` columns fold onto a new line, the others
    (numbers, justified ``numbers``) keep every digit."""
    table = Table(title=title)
    for column in columns:
        if column in names:
            table.add_column(column, justify="left", overflow="fold")
        else:
            table.add_column(column, justify=numbers, no_wrap=True)
    return table


def _fmt(value: Any) -> str:
    return text(value)


def print_inspection(report: InspectionReport) -> None:
    """Per language and split: sentences, tokens, entities, share of O, and the alignment audit."""
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
    table = _table(
        f"data: {report.source}",
        columns,
        names=("language", "split", "format", "PER/ORG/LOC/..."),
        numbers="left",
    )
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
        table.add_column(str(column), overflow="fold")
    for row in rows:
        table.add_row(*(_fmt(row.get(column)) for column in rows[0]))
    console.print(table)


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
    table = _table(title, ("language", "split", *columns), names=("language", "split"))
    for language, split, block in _record(metrics).blocks():
        table.add_row(language, split, *cells(block))
    console.print(table)


def print_metrics(metrics: EvaluationRecord | Mapping[str, Any], title: str) -> None:
    """Scores per language and split: micro F1 with its bootstrap interval (a column only when
    there are intervals: ``--bootstrap``), macro/strict F1, precision, recall, token accuracy,
    sentences."""
    record = _record(metrics)
    intervals = any(block.get("f1_ci") for _, _, block in record.blocks())
    columns = ("f1", *(["95% CI"] if intervals else []), "macro_f1", "strict_f1", "precision")
    _print_language_split_table(
        title,
        (*columns, "recall", "token_acc", "sentences"),
        record,
        lambda s: [
            _fmt(s["f1"]),
            *([_interval(s)] if intervals else []),
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
    title = f"A = {result.model_a}  vs  B = {result.model_b}  ({result.n} resamples)"
    columns = ("language", "split", "sentences", "f1 A", "f1 B", "A − B", "95% CI", "p-value")
    table = _table(title, columns, names=("language", "split"))
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


def print_transfer(title: str, rows: list[dict[str, Any]], notes: list[str]) -> None:
    """The headline transfer table, then one line per note (other selections, crossover, files)."""
    print_table(title, rows)
    for note in notes:
        console.print(note, markup=False, highlight=False)


def print_pretrain(run_dir: Path, history: Sequence[Mapping[str, Any]]) -> None:
    """Held-out masked-LM loss at each evaluation, then where the model is."""
    rows = [{"step": r["step"], **r["eval"]} for r in history]
    print_table(f"{run_dir} — held-out masked-LM loss", rows)
    typer.echo(f"model: {RunFolder(run_dir).model} (use it as model.name in a train recipe)")


def print_export(result: Any) -> None:
    """Where the export went and how closely it matches the torch model (an ``ExportResult``)."""
    kind = "int8 ONNX" if result.quantized else "ONNX"
    check = f"logits within {result.max_abs_logit_diff:.1g} of torch on {result.check_sentences} sentences"
    if result.int8_tag_agreement is not None:
        check += f"; int8 tags agree at {result.int8_tag_agreement:.1%} of positions"
    console.print(f"{kind} model -> {result.output} ({check})", markup=False, highlight=False)
