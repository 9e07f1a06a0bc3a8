"""The transfer workflow: one model per training-language set, the source × target table, the curve.

``nertool transfer RECIPE`` expands ``[transfer] sources`` into settings (``transfer.expand_sources``),
trains each distinct language set once into ``DIR/runs/<languages>/`` (``"de"`` and ``"each:de"`` share
``runs/de``), and reads every model-selection strategy from the run's eval history: each evaluation
records dev *and* test F1 per language (``train_run(track_test=True)``), so ``source_dev`` (XTREME),
``target_dev`` (oracle) and ``last`` cost one training, not three. Runs always keep the ``source_dev``
checkpoint, so the ``source_dev`` cells are the test scores in that run's ``metrics.json``.

A run folder whose ``config.toml`` matches and whose ``metrics.json`` exists is reused; one with a
checkpoint but no metrics resumes; anything else trains afresh. An interrupted transfer therefore
picks up where it stopped and never trains a model twice. Functions return records; files are
written atomically; the CLI renders.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nertool.config import Recipe, build_recipe, dump_recipe
from nertool.errors import ConfigError, DataError, NertoolError
from nertool.files import write_json, write_text
from nertool.train import Interrupted, Reporter
from nertool.transfer import (
    SELECTION_STRATEGIES,
    Setting,
    TransferTable,
    build_table,
    crossover,
    curve_json,
    group_trainings,
    to_csv,
    to_json,
    to_markdown,
)
from nertool.transfer import expand_sources as _expand_sources
from nertool.workflows import train_run

log = logging.getLogger("nertool")

RUNS, CURVE = "runs", "curve"
TRAIN, RESUME, REUSE = "train", "resume", "reuse"
Scores = dict[str, dict[str, float | None]]


@dataclass(frozen=True)
class PlannedRun:
    """One model to train or reuse: its folder, the recipe it trains with, the settings it serves."""

    name: str
    train_languages: tuple[str, ...]
    settings: tuple[str, ...]
    recipe: Recipe
    run_dir: Path


@dataclass(frozen=True)
class RunEvent:
    """Handed to the progress hook before each run; ``status`` is ``train``, ``resume`` or ``reuse``."""

    index: int
    total: int
    name: str
    status: str
    run_dir: Path


ProgressHook = Callable[[RunEvent], Reporter | None]


@dataclass(frozen=True)
class RunOutcome:
    """What one run contributes: test F1 per strategy and language, and the kept model's per-type scores."""

    name: str
    run_dir: Path
    status: str
    train_languages: tuple[str, ...]
    scores: Scores
    per_type: dict[str, Any]
    best_step: int
    train_sentences: dict[str, int]
    seconds: float


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


# ------------------------------------------------------------------ planning


def run_recipe(
    recipe: Recipe, train_languages: Sequence[str], eval_languages: Sequence[str], **data: Any
) -> Recipe:
    """The recipe of one run: its training languages, scored on the evaluation languages.

    The training languages join the evaluation languages, so ``source_dev`` selects on their own dev
    sets, never on a target's. ``select_on`` is pinned to ``source_dev`` (the kept model is the
    headline model) and the ``[transfer]`` section is dropped, so editing it never invalidates a run.
    """
    values = recipe.model_dump()
    values["data"].update(
        train_languages=list(train_languages),
        eval_languages=list(dict.fromkeys([*eval_languages, *train_languages])),
        fractions=_setting_fractions(recipe.data.fractions, train_languages),
    )
    values["data"].update(data)
    values["train"]["select_on"] = "source_dev"
    values.pop("transfer")
    return build_recipe(values, f"transfer run {'+'.join(train_languages)}")


def _setting_fractions(
    fractions: dict[str, float] | None, languages: Sequence[str]
) -> dict[str, float] | None:
    """``data.fractions`` restricted to one setting: all of its languages, or none of them."""
    if not fractions or not any(lang in fractions for lang in languages):
        return None
    missing = [lang for lang in languages if lang not in fractions]
    if missing:
        raise ConfigError(
            f"data.fractions gives no fraction for {', '.join(missing)}, which the transfer setting "
            f"{'+'.join(languages)} trains on: add a fraction for it or remove data.fractions"
        )
    return {lang: fractions[lang] for lang in languages}


def expand_settings(recipe: Recipe) -> list[Setting]:
    """The recipe's transfer settings (``[transfer] sources`` × ``data.eval_languages``)."""
    return _expand_sources(recipe.transfer.sources, recipe.eval_languages)


def plan_runs(recipe: Recipe, settings: Sequence[Setting], runs_dir: Path) -> list[PlannedRun]:
    """One run per distinct language set; the folder is named by the sorted languages (``de+fr``)."""
    planned = []
    for languages, names in group_trainings(settings).items():
        first = next(s for s in settings if s.name == names[0])
        folder = "+".join(languages)
        run = run_recipe(recipe, first.train_languages, recipe.eval_languages)
        planned.append(PlannedRun(folder, first.train_languages, tuple(names), run, runs_dir / folder))
    return planned


def zero_shot_source(settings: Sequence[Setting], target: str) -> Setting:
    """The first setting that does not train on ``target``: the zero-shot line of the curve."""
    for setting in settings:
        if target not in setting.train_languages:
            return setting
    raise ConfigError(
        f"every transfer.sources setting trains on {target}, so none gives a zero-shot score for the "
        f'sample-size curve: add a source without it, e.g. ["de"]'
    )


def plan_curve(recipe: Recipe, curve_dir: Path) -> list[PlannedRun]:
    """One run per ``[transfer] sample_sizes`` entry: n target sentences, scored on the target only."""
    target = _check_curve_recipe(recipe)
    return [
        PlannedRun(
            f"{target}-{n}",
            (target,),
            (),
            run_recipe(
                recipe, [target], [target], max_train_samples=n, fractions=None, sampling_temperature=None
            ),
            curve_dir / f"{target}-{n}",
        )
        for n in recipe.transfer.sample_sizes
    ]


def _check_curve_recipe(recipe: Recipe) -> str:
    """The curve's target language, after checking the recipe asks for a drawable curve."""
    sizes, target = recipe.transfer.sample_sizes, recipe.transfer.target_language
    if target is None:
        raise ConfigError('transfer.sample_sizes needs transfer.target_language, e.g. target_language = "fr"')
    if target not in recipe.eval_languages:
        raise ConfigError(
            f"transfer.target_language {target!r} is not in data.eval_languages "
            f"({', '.join(recipe.eval_languages)}): add it there, so the zero-shot score on it is measured"
        )
    if sizes[0] <= 0 or any(b <= a for a, b in itertools.pairwise(sizes)):
        raise ConfigError(f"transfer.sample_sizes must be positive and increasing, got {sizes}: sort them")
    return target


# ------------------------------------------------------------------ running


def run_status(run: PlannedRun) -> str:
    """``reuse`` a finished run of the same recipe, ``resume`` an interrupted one, else ``train``."""
    config = run.run_dir / "config.toml"
    if not config.is_file() or config.read_text(encoding="utf-8") != dump_recipe(run.recipe):
        return TRAIN
    if (run.run_dir / "metrics.json").is_file():
        return REUSE
    return RESUME if (run.run_dir / "checkpoint" / "loop_state.json").is_file() else TRAIN


def execute_run(
    run: PlannedRun, event: RunEvent, progress: ProgressHook | None = None, keep_checkpoints: bool = False
) -> RunOutcome:
    """Train, resume or reuse one run and read its scores under every selection strategy."""
    reporter = progress(event) if progress else None
    started = time.perf_counter()
    if event.status == REUSE:
        metrics = _read_json(run.run_dir / "metrics.json")
        history = read_eval_history(run.run_dir / "train_log.jsonl")
    else:
        metrics, history = _train(run, event.status, reporter)
        if not keep_checkpoints and _is_main():
            shutil.rmtree(run.run_dir / "checkpoint", ignore_errors=True)
    seconds = 0.0 if event.status == REUSE else time.perf_counter() - started
    return outcome(run, event.status, metrics, history, seconds)


def _train(
    run: PlannedRun, status: str, reporter: Reporter | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Train (after clearing another recipe's leftovers) or resume; test F1 is tracked at every eval."""
    _sync()
    if status == TRAIN and _is_main():
        _clear_stale(run.run_dir)
    _sync()
    try:
        result = train_run(run.recipe, run.run_dir, status == RESUME, reporter, track_test=True)
    except Interrupted:
        raise Interrupted(
            f"interrupted; {run.run_dir} keeps a checkpoint: rerun the same transfer command to resume "
            "(finished runs are reused)"
        ) from None
    return result.metrics, _dedupe(result.history)


def _clear_stale(run_dir: Path) -> None:
    """Remove what a run of another recipe left, so it can never be mistaken for this run's."""
    (run_dir / "metrics.json").unlink(missing_ok=True)
    shutil.rmtree(run_dir / "checkpoint", ignore_errors=True)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read ({error}); delete the file to retrain this run", path) from None


def read_eval_history(path: Path) -> list[dict[str, Any]]:
    """The eval records of a ``train_log.jsonl``, one per step (a resumed run may repeat a step)."""
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            records.append(json.loads(line))
        except ValueError:
            raise DataError("not a JSON line; delete the run folder to retrain it", path, number) from None
    return _dedupe([r for r in records if "eval" in r])


def _dedupe(history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    by_step = {record["step"]: record for record in history}
    return [by_step[step] for step in sorted(by_step)]


def _is_main() -> bool:
    from accelerate import PartialState

    return bool(PartialState().is_main_process)


def _sync() -> None:
    from accelerate import PartialState

    PartialState().wait_for_everyone()


# ------------------------------------------------------------------ scores of one run


def outcome(
    run: PlannedRun, status: str, metrics: dict[str, Any], history: Sequence[dict[str, Any]], seconds: float
) -> RunOutcome:
    """Test F1 per strategy and language, read from ``metrics.json`` and the eval history."""
    languages = run.recipe.eval_languages
    tests = {lang: metrics["languages"].get(lang, {}).get("test") for lang in languages}
    tracked = [r for r in history if "test_f1" in r["eval"]]
    kept = {lang: block["f1"] if block else None for lang, block in tests.items()}
    _check_kept(run, kept, tracked)
    scores: Scores = {
        "source_dev": kept,
        "target_dev": {lang: _test_at(_best_on(tracked, lang), lang) for lang in languages},
        "last": {lang: _test_at(tracked[-1] if tracked else None, lang) for lang in languages},
    }
    per_type = {lang: block.get("per_type", {}) for lang, block in tests.items() if block}
    train_sentences = dict(metrics.get("train_sentences", {}))
    return RunOutcome(
        run.name,
        run.run_dir,
        status,
        run.train_languages,
        scores,
        per_type,
        int(metrics.get("best_step", -1)),
        train_sentences,
        seconds,
    )


def source_dev_record(history: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The eval the loop kept: the first with the highest score (mean dev F1 on the training languages)."""
    best: dict[str, Any] | None = None
    for record in history:
        if best is None or record["score"] > best["score"]:
            best = record
    return best


def _best_on(history: Sequence[dict[str, Any]], lang: str) -> dict[str, Any] | None:
    """The first eval with the highest dev F1 on ``lang`` (the oracle ``target_dev`` checkpoint)."""
    scored = [r for r in history if r["eval"]["dev_f1"].get(lang) is not None]
    return max(scored, key=lambda r: r["eval"]["dev_f1"][lang]) if scored else None


def _test_at(record: dict[str, Any] | None, lang: str) -> float | None:
    return None if record is None else record["eval"]["test_f1"].get(lang)


def _check_kept(run: PlannedRun, kept: dict[str, float | None], tracked: Sequence[dict[str, Any]]) -> None:
    """The history's source_dev eval and ``metrics.json`` score the same weights; say so where they differ.

    They can differ when the reloaded tokenizer splits some words differently from the one trained
    in memory; the table keeps the ``metrics.json`` numbers, which ``nertool evaluate`` reproduces.
    """
    record = source_dev_record(tracked)
    if record is None:
        return
    seen = record["eval"]["test_f1"]
    differ = [
        f"{lang} {f1:.4f} vs {seen[lang]:.4f}"
        for lang, f1 in kept.items()
        if f1 is not None and seen.get(lang) is not None and abs(f1 - seen[lang]) > 1e-6
    ]
    if differ:
        log.warning(
            "%s: test F1 of the saved model vs at step %s in training: %s",
            run.run_dir.name,
            record["step"],
            ", ".join(differ),
        )


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
    return {strategy: build_table(scores[strategy], settings, languages, strategy) for strategy in scores}


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
    outcomes: Sequence[RunOutcome],
) -> dict[str, Any]:
    """``transfer.json``: the headline table, the other strategies beside it, per-type scores, the runs."""
    languages = tables[selection].eval_languages
    document = to_json(tables[selection], _per_type(runs, outcomes, languages), by_selection=tables)
    document["per_type_model"] = "source_dev (the model kept in each run folder)"
    document["runs"] = {run.name: _run_json(run, done) for run, done in zip(runs, outcomes, strict=True)}
    return document


def selection_markdown(tables: dict[str, TransferTable], digits: int = 3) -> str:
    """How much the choice of checkpoint matters: each row's mean and zero-shot mean per strategy."""
    names = list(tables)
    first = tables[names[0]]
    lines = [
        "Mean / zero-shot mean test F1 of each row under each model-selection strategy.",
        "",
        "| train \\ selection | " + " | ".join(names) + " |",
        "|---" + "|---:" * len(names) + "|",
    ]
    for row in first.rows:
        cells = [tables[name].row(row.name) for name in names]
        pairs = [f"{_fmt(r.mean, digits)} / {_fmt(r.zero_shot_mean, digits)}" for r in cells]
        lines.append(f"| {row.name} | " + " | ".join(pairs) + " |")
    return "\n".join(lines) + "\n"


def _fmt(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def write_matrix(
    out_dir: Path, tables: dict[str, TransferTable], selection: str, document: dict[str, Any]
) -> list[Path]:
    """``transfer.json``/``.md``/``.csv``/``.png`` (the PNG drawn to a temporary name, then renamed)."""
    from nertool.transfer_plots import plot_table

    table = tables[selection]

    paths = [out_dir / f"transfer.{ext}" for ext in ("json", "md", "csv", "png")]
    write_json(paths[0], document)
    write_text(paths[1], to_markdown(table) + "\n" + selection_markdown(tables))
    write_text(paths[2], to_csv(table))
    _write_png(lambda tmp: plot_table(table, tmp), paths[3])
    return paths


def _write_png(draw: Callable[[Path], Path], path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.partial.png")
    draw(tmp)
    os.replace(tmp, path)


# ------------------------------------------------------------------ the curve


def curve_result(
    recipe: Recipe, settings: Sequence[Setting], scores: dict[str, Scores], outcomes: Sequence[RunOutcome]
) -> CurveResult:
    """The curve's points (actual sentence counts) and the zero-shot F1 of the first source without it."""
    target, selection = _check_curve_recipe(recipe), recipe.transfer.selection
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
    from nertool.transfer_plots import plot_curve

    document = curve_json(curve.sizes, curve.f1s, curve.zero_shot, curve.target_language, curve.source)
    document["selection"] = selection
    document["runs"] = {done.name: str(done.run_dir) for done in curve.runs}
    paths = [out_dir / "curve.json", out_dir / "curve.png"]
    write_json(paths[0], document)
    _write_png(
        lambda tmp: plot_curve(
            curve.sizes, curve.f1s, curve.zero_shot, curve.crossover, tmp, curve.target_language, curve.source
        ),
        paths[1],
    )
    return paths


# ------------------------------------------------------------------ the job


def run_transfer(
    recipe: Recipe, out_dir: Path, progress: ProgressHook | None = None, keep_checkpoints: bool = False
) -> TransferResult:
    """The whole experiment: plan (errors before any training), train or reuse, tables, curve, files."""
    started = time.perf_counter()
    settings = expand_settings(recipe)
    matrix = plan_runs(recipe, settings, out_dir / RUNS)
    curve_runs = plan_curve(recipe, out_dir / CURVE) if recipe.transfer.sample_sizes else []
    if curve_runs:
        zero_shot_source(settings, curve_runs[0].train_languages[0])
    done = _execute_all([*matrix, *curve_runs], progress, keep_checkpoints)
    outcomes, curve_outcomes = done[: len(matrix)], done[len(matrix) :]
    scores = setting_scores(matrix, outcomes, recipe.eval_languages)
    tables = build_tables(scores, settings, recipe.eval_languages)
    selection = recipe.transfer.selection
    curve = curve_result(recipe, settings, scores, curve_outcomes) if curve_runs else None
    files: list[Path] = []
    if _is_main():
        write_text(out_dir / "config.toml", dump_recipe(recipe))
        files = write_matrix(
            out_dir, tables, selection, transfer_document(tables, selection, matrix, outcomes)
        )
        files += write_curve(out_dir, curve, selection) if curve else []
    seconds = time.perf_counter() - started
    return TransferResult(out_dir, tables[selection], tables, tuple(outcomes), curve, tuple(files), seconds)


def _execute_all(runs: Sequence[PlannedRun], progress: ProgressHook | None, keep: bool) -> list[RunOutcome]:
    outcomes = []
    for index, run in enumerate(runs, start=1):
        event = RunEvent(index, len(runs), run.name, run_status(run), run.run_dir)
        outcomes.append(execute_run(run, event, progress, keep))
    return outcomes


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
