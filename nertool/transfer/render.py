"""The transfer table as files: GitHub Markdown (with the gap table), CSV and the JSON record.

Pure functions over a ``TransferTable``; ``transfer.report`` writes what they return.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

from nertool.errors import NertoolError
from nertool.tables import markdown_rows, number
from nertool.transfer.table import SELECTION_STRATEGIES, TableRow, TransferTable, check_selection


def _fmt(value: float | None, digits: int, signed: bool = False) -> str:
    return number(value, digits, signed=signed)


def _md_table(header: list[str], body: list[list[str]]) -> list[str]:
    return markdown_rows(header, body, numeric=True)


def to_markdown(table: TransferTable, digits: int = 3) -> str:
    """Scores table (plus a gap table when ``each`` was run) as GitHub Markdown."""
    langs = list(table.eval_languages)
    header = ["train \\ test", *langs, "mean", "zero-shot mean"]
    body = [
        [
            row.name,
            *(_fmt(v, digits) for v in row.scores),
            _fmt(row.mean, digits),
            _fmt(row.zero_shot_mean, digits),
        ]
        for row in table.rows
    ]
    lines = [
        f"Test F1; checkpoints chosen by {table.selection} ({SELECTION_STRATEGIES[table.selection]}).",
        "",
    ]
    lines += _md_table(header, body)
    if table.has_gaps:
        gap_body = [[row.name, *(_fmt(g, digits, signed=True) for g in row.gaps)] for row in table.rows]
        lines += ["", "Transfer gap: in-language (each) F1 minus the row's F1.", ""]
        lines += _md_table(["train \\ test", *langs], gap_body)
    if table.has_self_training:
        lines += ["", *self_training_markdown(table, digits)]
    return "\n".join(lines) + "\n"


def label_changes_markdown(rows: list[dict[str, Any]]) -> str:
    """The gold entities each target had renamed or dropped (``to`` = ``O``) before scoring; "" if none."""
    if not rows:
        return ""
    header = ["target", "split", "type", "to", "entities", "rule"]
    body = [[str(row[key]) for key in header] for row in rows]
    lines = ["", "Gold entities renamed or dropped before scoring (`to` = `O`: scored as `O`).", ""]
    return "\n".join([*lines, *markdown_rows(header, body, numeric=True)]) + "\n"


def self_training_markdown(table: TransferTable, digits: int = 3) -> list[str]:
    """Each self-trained row's gain over its plain row, per test language (positive: it helped)."""
    langs = list(table.eval_languages)
    body = [
        [row.name, str(row.base), *(_fmt(g, digits, signed=True) for g in row.gains)]
        for row in table.rows
        if row.base is not None
    ]
    lines = ["Self-training gain: the self-trained row's F1 minus its plain row's.", ""]
    return lines + _md_table(["self-trained", "plain row", *langs], body)


def to_csv(table: TransferTable) -> str:
    """One line per row, 10 significant digits; a missing value is an empty field (read as NaN by pandas)."""
    langs = list(table.eval_languages)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    gains = table.has_self_training  # the base/gain columns only where a row has them
    writer.writerow(
        [
            "setting",
            *langs,
            "mean",
            "zero_shot_mean",
            *(f"gap_{lang}" for lang in langs),
            "selection",
            *(["base", *(f"gain_{lang}" for lang in langs)] if gains else []),
        ]
    )
    for row in table.rows:
        values = [*row.scores, row.mean, row.zero_shot_mean, *row.gaps]
        extra = [row.base or "", *_csv_numbers(row.gains or (None,) * len(langs))] if gains else []
        writer.writerow([row.name, *_csv_numbers(values), table.selection, *extra])
    return out.getvalue()


def _csv_numbers(values: Sequence[float | None]) -> list[str]:
    return ["" if v is None else f"{v:.10g}" for v in values]


def _row_json(row: TableRow, langs: tuple[str, ...]) -> dict[str, Any]:
    return {
        "name": row.name,
        "in_language": row.in_language,
        "train_languages": list(langs if row.in_language else row.train_languages),
        "scores": dict(zip(langs, row.scores, strict=True)),
        "mean": row.mean,
        "zero_shot_mean": row.zero_shot_mean,
        "gap": dict(zip(langs, row.gaps, strict=True)),
        **_self_training_json(row, langs),
    }


def _self_training_json(row: TableRow, langs: tuple[str, ...]) -> dict[str, Any]:
    """``base`` and ``gain`` (F1 minus the base row's, per language) for a self-trained row only."""
    if row.base is None:
        return {}
    return {"base": row.base, "gain": dict(zip(langs, row.gains, strict=True))}


def _plain(value: Any) -> Any:
    """Nested mappings → dicts so that ``json.dumps`` accepts them."""
    return {str(k): _plain(v) for k, v in value.items()} if isinstance(value, Mapping) else value


def to_json(
    table: TransferTable,
    per_type: Mapping[str, Any] | None = None,
    by_selection: Mapping[str, TransferTable] | None = None,
) -> dict[str, Any]:
    """A JSON-ready dict of the table.

    ``per_type`` (setting name → language → entity type → scores) is embedded as given.
    ``by_selection`` (strategy → table built from that strategy's scores) puts the tables of the other
    strategies beside this one, to show how much the choice of checkpoint matters.
    """
    langs = table.eval_languages
    result: dict[str, Any] = {
        "selection": table.selection,
        "selection_description": SELECTION_STRATEGIES[table.selection],
        "eval_languages": list(langs),
        "rows": [_row_json(row, langs) for row in table.rows],
    }
    if per_type is not None:
        result["per_type"] = _plain(per_type)
    if by_selection is not None:
        result["by_selection"] = _by_selection_json(by_selection)
    return result


def _by_selection_json(tables: Mapping[str, TransferTable]) -> dict[str, Any]:
    """Strategy → rows; each key must be a known strategy and match the table it labels."""
    out: dict[str, Any] = {}
    for name, other in tables.items():
        check_selection(name)
        if other.selection != name:
            raise NertoolError(f'table filed under "{name}" was built with selection "{other.selection}"')
        out[name] = {"rows": [_row_json(row, other.eval_languages) for row in other.rows]}
    return out
