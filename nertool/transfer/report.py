"""What a transfer reports: source × target tables per selection strategy, the curve, their files.

Reporting is kept apart from training (``nertool.workflows.transfer``) because it only reads
``RunOutcome`` records: the tables, ``transfer.json``/``.md``/``.csv``/``.png``, the sample-size
curve and the terminal summary can be rebuilt and tested from scores alone. Functions return records
or documents; the writers put files in place atomically, and the CLI renders the summaries.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nertool.config import Recipe
from nertool.errors import NertoolError
from nertool.files import write_json, write_text
from nertool.tables import markdown_rows, number
from nertool.transfer.curve import crossover, curve_json
from nertool.transfer.plan import REUSE, PlannedRun, RunOutcome, Scores, check_curve_recipe, zero_shot_source
from nertool.transfer.render import label_changes_markdown, to_csv, to_json, to_markdown
from nertool.transfer.table import (
    SELECTION_STRATEGIES,
    Setting,
    TransferTable,
    build_table,
)

log = logging.getLogger("nertool")


@dataclass(frozen=True)
class CurveResult:
    """In-language F1 against the number of target sentences, beside one source's zero-shot F1."""

    target_language: str
    source: str
    sizes: tuple[int, ...]
    f1s: tuple[float, ...]
    zero_shot: float
    crossover: float | None
    runs: tuple[RunOutcome, ...]


@dataclass(frozen=True)
class TransferResult:
    """Everything a transfer produced; ``table`` is the headline (``[transfer] selection``)."""

    out_dir: Path
    table: TransferTable
    tables: dict[str, TransferTable]
    runs: tuple[RunOutcome, ...]
    curve: CurveResult | None
    files: tuple[Path, ...]
    seconds: float

    @property
    def trained(self) -> tuple[str, ...]:
        """Runs (matrix and curve) that trained or resumed in this call rather than being reused."""
        curve_runs = self.curve.runs if self.curve else ()
        return tuple(r.name for r in (*self.runs, *curve_runs) if r.status != REUSE)


# ------------------------------------------------------------------ the table


def setting_scores(
    runs: Sequence[PlannedRun], outcomes: Sequence[RunOutcome], languages: Sequence[str]
) -> dict[str, Scores]:
    """Strategy → setting → language → F1: each run's scores under every setting it serves."""
    result: dict[str, Scores] = {strategy: {} for strategy in SELECTION_STRATEGIES}
    for run, done in zip(runs, outcomes, strict=True):
        for strategy, by_lang in done.scores.items():
            cells = {lang: by_lang.get(lang) for lang in languages}
            result[strategy].update({name: cells for name in run.settings})
    return result


def build_tables(
    scores: dict[str, Scores], settings: Sequence[Setting], languages: Sequence[str]
) -> dict[str, TransferTable]:
    """One table per selection strategy."""
    return {
        strategy: build_table(scores[strategy], settings, languages, selection=strategy)
        for strategy in scores
    }


def _per_type(
    runs: Sequence[PlannedRun], outcomes: Sequence[RunOutcome], languages: Sequence[str]
) -> dict[str, Any]:
    return {
        name: {lang: types for lang, types in done.per_type.items() if lang in languages}
        for run, done in zip(runs, outcomes, strict=True)
        for name in run.settings
    }


def _run_json(run: PlannedRun, done: RunOutcome) -> dict[str, Any]:
    return {
        "folder": str(done.run_dir),
        "train_languages": list(done.train_languages),
        "settings": list(run.settings),
        "status": done.status,
        "best_step": done.best_step,
        "train_sentences": done.train_sentences,
        "seconds": round(done.seconds, 1),
    }


def transfer_document(
    tables: dict[str, TransferTable],
    selection: str,
    runs: Sequence[PlannedRun],
    *,
    outcomes: Sequence[RunOutcome],
) -> dict[str, Any]:
    """``transfer.json``: the headline table, the other strategies beside it, per-type scores, the runs."""
    languages = tables[selection].eval_languages
    document = to_json(tables[selection], _per_type(runs, outcomes, languages), by_selection=tables)
    document["per_type_model"] = "source_dev (the model kept in each run folder)"
    document["runs"] = {run.name: _run_json(run, done) for run, done in zip(runs, outcomes, strict=True)}
    return document


def target_label_changes(manifests: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Gold entities renamed or dropped in each scored target, from the runs' ``data_manifest.json``.

    A change is filed under the column and split whose file it was counted in (``sources`` for the
    recipe's own corpus, ``eval_sources`` for the others); every run scores the same capped sets, so
    a target's counts are listed once. Changes in training files are left to each run's manifest.
    """
    rows: dict[tuple[str, str, str, str, str], int] = {}
    for manifest in manifests:
        where = _target_files(manifest)
        for change in manifest.get("label_changes", []):
            if change["file"] in where:
                column, split = where[change["file"]]
                key = (column, split, change["type"], change["to"], change["rule"])
                rows.setdefault(key, change["entities"])
    return [
        {"target": c, "split": sp, "type": t, "to": to, "entities": n, "rule": r}
        for (c, sp, t, to, r), n in rows.items()
    ]


def _target_files(manifest: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """file → (column, split) for the dev and test files a run scored."""
    by_column = {**manifest.get("sources", {}), **manifest.get("eval_sources", {})}
    return {
        path: (column, split)
        for column, splits in by_column.items()
        for split, path in splits.items()
        if split != "train"
    }


def selection_markdown(tables: dict[str, TransferTable], digits: int = 3) -> str:
    """How much the choice of checkpoint matters: each row's mean and zero-shot mean per strategy."""
    names = list(tables)
    first = tables[names[0]]
    lines = [
        "Mean / zero-shot mean test F1 of each row under each model-selection strategy.",
        "",
        "| train \\ selection | " + " | ".join(names) + " |",
        markdown_rows(["train \\ selection", *names], [], numeric=True)[1],
    ]
    for row in first.rows:
        cells = [tables[name].row(row.name) for name in names]
        pairs = [f"{_fmt(r.mean, digits)} / {_fmt(r.zero_shot_mean, digits)}" for r in cells]
        lines.append(f"| {row.name} | " + " | ".join(pairs) + " |")
    return "\n".join(lines) + "\n"


def _fmt(value: float | None, digits: int) -> str:
    return number(value, digits)


def write_matrix(
    out_dir: Path, tables: dict[str, TransferTable], selection: str, *, document: dict[str, Any]
) -> list[Path]:
    """``transfer.json``/``.md``/``.csv``/``.png`` (the PNG drawn to a temporary name, then renamed)."""
    from nertool.transfer.plots import plot_table

    table = tables[selection]

    paths = [out_dir / f"transfer.{ext}" for ext in ("json", "md", "csv", "png")]
    write_json(paths[0], document)
    changes = label_changes_markdown(document.get("label_changes_by_target", []))
    write_text(paths[1], to_markdown(table) + "\n" + selection_markdown(tables) + changes)
    write_text(paths[2], to_csv(table))
    _write_png(lambda tmp: plot_table(table, tmp), paths[3])
    return paths


def _write_png(draw: Callable[[Path], Path], path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.partial.png")
    draw(tmp)
    os.replace(tmp, path)


# ------------------------------------------------------------------ the curve


def curve_result(
    recipe: Recipe, settings: Sequence[Setting], scores: dict[str, Scores], *, outcomes: Sequence[RunOutcome]
) -> CurveResult:
    """The curve's points (actual sentence counts) and the zero-shot F1 of the first source without it."""
    target, selection = check_curve_recipe(recipe), recipe.transfer.selection
    source = zero_shot_source(settings, target)
    zero_shot = scores[selection].get(source.name, {}).get(target)
    if zero_shot is None:
        raise NertoolError(
            f"no test F1 of setting {source.name} on {target}: the curve needs {target}'s test split"
        )
    sizes, f1s = _curve_points(outcomes, target, selection)
    return CurveResult(
        target, source.name, sizes, f1s, zero_shot, crossover(sizes, f1s, zero_shot), tuple(outcomes)
    )


def _curve_points(
    outcomes: Sequence[RunOutcome], target: str, selection: str
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """(sentences actually trained on, test F1); sizes the corpus could not fill are counted as they were."""
    points: dict[int, float] = {}
    for done in outcomes:
        n, f1 = done.train_sentences.get(target, 0), done.scores[selection].get(target)
        if f1 is None:
            raise NertoolError(
                f"{done.run_dir}: no test F1 on {target}; the curve needs {target}'s test split"
            )
        if n in points:
            log.warning(
                "%s: the corpus has only %d %s training sentences; the point is counted once",
                done.run_dir,
                n,
                target,
            )
        points.setdefault(n, f1)
    return tuple(points), tuple(points.values())


def write_curve(out_dir: Path, curve: CurveResult, selection: str) -> list[Path]:
    """``curve.json`` and ``curve.png``."""
    from nertool.transfer.plots import plot_curve

    document = curve_json(
        curve.sizes, curve.f1s, curve.zero_shot, target_lang=curve.target_language, source_name=curve.source
    )
    document["selection"] = selection
    document["runs"] = {done.name: str(done.run_dir) for done in curve.runs}
    paths = [out_dir / "curve.json", out_dir / "curve.png"]
    write_json(paths[0], document)
    _write_png(
        lambda tmp: plot_curve(
            curve.sizes,
            curve.f1s,
            curve.zero_shot,
            crossover=curve.crossover,
            path=tmp,
            target_lang=curve.target_language,
            source_name=curve.source,
        ),
        paths[1],
    )
    return paths


# ------------------------------------------------------------------ summaries for the terminal


def summary_rows(table: TransferTable) -> list[dict[str, Any]]:
    """The headline table as flat rows (setting, one F1 per language, means) for ``render.print_table``."""
    return [
        {
            "train \\ test": row.name,
            **dict(zip(table.eval_languages, row.scores, strict=True)),
            "mean": row.mean,
            "zero-shot mean": row.zero_shot_mean,
        }
        for row in table.rows
    ]


def summary_notes(result: TransferResult) -> list[str]:
    """One line per fact worth printing under the table: other strategies, the crossover, the files."""
    notes = [
        "mean of the rows' zero-shot F1 by selection: "
        + ", ".join(f"{name} {_mean_zero_shot(table)}" for name, table in result.tables.items())
    ]
    if result.curve is not None:
        c = result.curve
        where = (
            "never reached"
            if c.crossover is None
            else f"reached at ≈ {c.crossover:,.0f} {c.target_language} sentences"
        )
        notes.append(f"curve: zero-shot F1 of {c.source} on {c.target_language} = {c.zero_shot:.3f}, {where}")
    trained = ", ".join(result.trained) or "none (all reused)"
    notes.append(f"trained: {trained}; {result.seconds:.0f} s; files in {result.out_dir}")
    return notes


def _mean_zero_shot(table: TransferTable) -> str:
    values = [row.zero_shot_mean for row in table.rows if row.zero_shot_mean is not None]
    return f"{sum(values) / len(values):.3f}" if values else "–"
