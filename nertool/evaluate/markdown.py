"""The Markdown pages of an evaluation report: ``report.md`` and ``errors.md``, from plain data.

``report.report_document`` gathers what the page shows; the functions here only lay it out, so the
same document is written as ``report.json`` and rendered here without running anything twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nertool.evaluate.error_analysis import render_errors_markdown
from nertool.tables import markdown_records

ACCURACY_NOTE = (
    "Token accuracy counts every word, and most words are `O`: a model that tags everything `O` "
    "scores the share of `O` in accuracy and 0 in entity F1. Entity F1 counts only whole entities "
    "(right boundaries and type), so one wrong word of a three-word name costs a whole entity."
)


def markdown_table(
    columns: Sequence[str], rows: Sequence[Mapping[str, Any]], headers: Sequence[str] = ()
) -> str:
    """A Markdown table of ``rows`` (dicts) over ``columns``; ``headers`` rename the columns."""
    return markdown_records(columns, rows, headers=headers)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


SCORE_COLUMNS = _words(
    "language split sentences micro_f1 f1_ci macro_f1 strict_f1 precision recall token_accuracy"
)
TYPE_COLUMNS = _words("language split type precision recall f1 support")
IMBALANCE_COLUMNS = _words(
    "language split sentences tokens o_share entities_per_sentence entity_counts predicted_entity_counts"
)
CONVENTION_COLUMNS = _words("language split convention precision recall f1 disagrees")
LABEL_CHANGE_COLUMNS = _words("file type to entities rule")
LABEL_CHANGE_NOTE = (
    "Gold entities renamed or dropped before scoring (`to` = `O`: dropped, its words scored as `O`); "
    "`label_map` is the map given, `unknown_types` a type the model does not know."
)


def _section(title: str, *blocks: str) -> str:
    return "\n\n".join((title, *blocks))


def _conventions_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """Conventions table with every F1 more than 0.005 off the default one in bold."""
    marked = [
        {
            **row,
            "f1": f"**{row['f1']:.3f}**" if row["disagrees"] else row["f1"],
            "disagrees": "**yes**" if row["disagrees"] else "no",
        }
        for row in rows
    ]
    headers = (*CONVENTION_COLUMNS[:-1], "differs from default by > 0.005")
    return markdown_table(CONVENTION_COLUMNS, marked, headers)


def _tag_counts_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    tags = list(dict.fromkeys(tag for row in rows for tag in row["tag_counts"]))
    flat = [{"language": r["language"], "split": r["split"], **r["tag_counts"]} for r in rows]
    return markdown_table(("language", "split", *tags), flat)


def _confusion_markdown(name: str, images: Sequence[str]) -> str:
    pictures = [f"![{Path(image).stem}]({image})" for image in images]
    return _section(
        f"### {name}",
        "Word tags (rows = true, columns = predicted):",
        "\n".join(pictures[:3]),
        "Entity types at span level (`none` row = spurious predictions, `none` column = missed entities):",
        "\n".join(pictures[3:]),
    )


def _errors_markdown(errors: Mapping[str, Any]) -> str:
    tables = [
        _section(
            f"### {name}",
            markdown_table(("token", "count", "total_loss", "mean_loss"), summary["by_total"]),
            markdown_table(
                ("label", "count", "errors", "total_loss", "mean_loss"), summary["loss_per_label"]
            ),
        )
        for name, summary in errors.items()
    ]
    note = "Per-subword losses; full tables and the worst sentences in [errors.md](errors.md)."
    return _section("## Errors", note, *tables)


def render_report_markdown(document: Mapping[str, Any], images: Mapping[str, Sequence[str]]) -> str:
    """The self-contained ``report.md``; ``images`` maps split names to PNG paths relative to it."""
    sections = [
        _section("# Evaluation report", f"Model `{document.get('model')}` on `{document.get('data')}`."),
        _section("## Scores", markdown_table(SCORE_COLUMNS, document["scores"]), f"> {ACCURACY_NOTE}"),
        _section(
            "### Per entity type (seqeval default mode)", markdown_table(TYPE_COLUMNS, document["per_type"])
        ),
        _section("## Scoring conventions", _conventions_markdown(document["conventions"])),
        _section("## Imbalance", markdown_table(IMBALANCE_COLUMNS, document["imbalance"])),
        _section("### Word tag counts (gold)", _tag_counts_markdown(document["imbalance"])),
        _section(
            "## Confusion matrices", *(_confusion_markdown(name, paths) for name, paths in images.items())
        ),
    ]
    if document.get("label_changes"):
        sections.insert(2, _label_changes_markdown(document["label_changes"]))
    if document["errors"]:
        sections.append(_errors_markdown(document["errors"]))
    return "\n\n".join(sections) + "\n"


def _label_changes_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    return _section("## Harmonised labels", LABEL_CHANGE_NOTE, markdown_table(LABEL_CHANGE_COLUMNS, rows))


def render_all_errors_markdown(errors: Mapping[str, Any]) -> str:
    """``errors.md``: a section per split holding ``error_analysis.render_errors_markdown`` one level down."""
    parts = [
        _section(
            f"## {name}",
            "\n".join(
                "#" + line if line.startswith("#") else line
                for line in render_errors_markdown(report).splitlines()
            ),
        )
        for name, report in errors.items()
    ]
    note = "Subword losses of the gold labels; `IGN` marks subwords without a label."
    return _section("# Error analysis", note, *parts) + "\n"
