"""One number and table formatter for every Markdown report, transfer table and terminal table.

Reports, the transfer table and the CLI used to format numbers and Markdown rows each in their
own way; they now share these few functions, so a score reads the same (three decimals, an en dash
where a value is missing) in every file nertool writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

MISSING = "–"


def number(value: float | None, digits: int = 3, *, signed: bool = False, missing: str = MISSING) -> str:
    """A score with ``digits`` decimals (``+`` on gains when ``signed``); ``missing`` for None."""
    if value is None:
        return missing
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def text(value: Any, *, missing: str = MISSING) -> str:
    """Any cell value as plain text: floats as scores, dicts as ``key value`` pairs."""
    if value is None:
        return missing
    if isinstance(value, float):
        return number(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or missing
    return str(value)


def cell(value: Any, *, missing: str = MISSING) -> str:
    """A Markdown cell: :func:`text`, with pipes escaped and line breaks flattened."""
    return text(value, missing=missing).replace("|", "\\|").replace("\n", " ")


def markdown_rows(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    numeric: bool = False,
    missing: str = MISSING,
) -> list[str]:
    """A Markdown table as lines; ``numeric`` right-aligns every column after the first."""
    rule = "|---" + "|---:" * (len(headers) - 1) + "|" if numeric else "|" + "---|" * len(headers)
    lines = ["| " + " | ".join(headers) + " |", rule]
    return lines + ["| " + " | ".join(cell(v, missing=missing) for v in row) + " |" for row in rows]


def markdown_records(
    columns: Sequence[str], records: Sequence[Mapping[str, Any]], *, headers: Sequence[str] = ()
) -> str:
    """A Markdown table of dict ``records`` over ``columns``; ``headers`` rename the columns."""
    rows = ([record.get(column) for column in columns] for record in records)
    return "\n".join(markdown_rows(headers or columns, rows))
