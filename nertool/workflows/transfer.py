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
written atomically; the CLI renders. Planning is ``nertool.transfer.plan`` and the tables, curve and
files are ``nertool.transfer.report``; this module trains the runs and ties the stages together.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nertool.config import Recipe, dump_recipe
from nertool.errors import DataError
from nertool.files import safe_child, write_text
from nertool.records import EvaluationRecord
from nertool.run_folder import TRANSFER_CURVE, TRANSFER_RUNS, RunFolder
from nertool.train.loop import Interrupted, Reporter
from nertool.transfer.plan import (
    RESUME,
    REUSE,
    TRAIN,
    PlannedRun,
    RunOutcome,
    Scores,
    expand_settings,
    plan_curve,
    plan_runs,
    zero_shot_source,
)
from nertool.transfer.report import (
    TransferResult,
    build_tables,
    curve_result,
    setting_scores,
    target_label_changes,
    transfer_document,
    write_curve,
    write_matrix,
)
from nertool.transfer.selftrain import SelfTrainingPlan, plan_self_training
from nertool.transfer.table import Setting
from nertool.workflows.runs import refuse_push
from nertool.workflows.train import train_run

log = logging.getLogger("nertool")

RUNS, CURVE = TRANSFER_RUNS, TRANSFER_CURVE


@dataclass(frozen=True)
class RunEvent:
    """Handed to the progress hook before each run; ``status`` is ``train``, ``resume`` or ``reuse``."""

    index: int
    total: int
    name: str
    status: str
    run_dir: Path


ProgressHook = Callable[[RunEvent], Reporter | None]


# ------------------------------------------------------------------ running


def run_status(run: PlannedRun) -> str:
    """``reuse`` a finished run of the same recipe, ``resume`` an interrupted one, else ``train``."""
    folder = RunFolder(run.run_dir)
    if not folder.config.is_file() or folder.config.read_text(encoding="utf-8") != dump_recipe(run.recipe):
        return TRAIN
    if folder.metrics.is_file():
        return REUSE
    return RESUME if folder.loop_state.is_file() else TRAIN


def execute_run(
    run: PlannedRun, event: RunEvent, progress: ProgressHook | None = None, *, keep_checkpoints: bool = False
) -> RunOutcome:
    """Train, resume or reuse one run and read its scores under every selection strategy."""
    reporter = progress(event) if progress else None
    started = time.perf_counter()
    folder = RunFolder(run.run_dir)
    if event.status == REUSE:  # the record of the finished run; test F1 at every eval is in its log
        metrics = EvaluationRecord.read(folder.metrics, advice="delete the file to retrain this run")
        history = read_eval_history(folder.train_log)
    else:
        metrics, history = _train(run, event.status, reporter)
        if not keep_checkpoints and _is_main():
            shutil.rmtree(folder.checkpoint, ignore_errors=True)
    seconds = 0.0 if event.status == REUSE else time.perf_counter() - started
    return outcome(run, event.status, metrics, history=history, seconds=seconds)


def _train(
    run: PlannedRun, status: str, reporter: Reporter | None
) -> tuple[EvaluationRecord, list[dict[str, Any]]]:
    """Train (after clearing another recipe's leftovers) or resume; test F1 is tracked at every eval."""
    _sync()
    if status == TRAIN and _is_main():
        _clear_stale(run.run_dir)
    _sync()
    try:
        result = train_run(
            run.recipe,
            run.run_dir,
            status == RESUME,
            reporter=reporter,
            track_test=True,
            extra_train=run.extra_train,
        )
    except Interrupted:
        raise Interrupted(
            f"interrupted; {run.run_dir} keeps a checkpoint: rerun the same transfer command to resume "
            "(finished runs are reused)"
        ) from None
    return EvaluationRecord.from_json(result.metrics), _dedupe(result.history)


def _clear_stale(run_dir: Path) -> None:
    """Remove what a run of another recipe left, so it can never be mistaken for this run's."""
    folder = RunFolder(run_dir)
    folder.metrics.unlink(missing_ok=True)
    shutil.rmtree(folder.checkpoint, ignore_errors=True)


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
    run: PlannedRun,
    status: str,
    metrics: EvaluationRecord,
    *,
    history: Sequence[dict[str, Any]],
    seconds: float,
) -> RunOutcome:
    """Test F1 per strategy and table column, read from the run's record and its eval history."""
    languages = run.recipe.eval_columns
    tests = {lang: metrics.block(lang, "test") for lang in languages}
    tracked = [r for r in history if "test_f1" in r["eval"]]
    kept = {lang: block["f1"] if block else None for lang, block in tests.items()}
    _check_kept(run, kept, tracked)
    scores: Scores = {
        "source_dev": kept,
        "target_dev": {lang: _test_at(_best_on(tracked, lang), lang) for lang in languages},
        "last": {lang: _test_at(tracked[-1] if tracked else None, lang) for lang in languages},
    }
    per_type = {lang: block.get("per_type", {}) for lang, block in tests.items() if block}
    train_sentences = metrics.train_sentences
    return RunOutcome(
        run.name,
        run.run_dir,
        status,
        run.train_languages,
        scores,
        per_type,
        metrics.best_step,
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


# ------------------------------------------------------------------ the job


def run_transfer(
    recipe: Recipe, out_dir: Path, progress: ProgressHook | None = None, *, keep_checkpoints: bool = False
) -> TransferResult:
    """The whole experiment: plan (errors before any training), train or reuse, tables, curve, files."""
    started = time.perf_counter()
    refuse_push(recipe, "a transfer trains a model per language set", f"{out_dir}/{RUNS}/<languages>")
    settings = expand_settings(recipe)
    self_training = plan_self_training(recipe, settings)
    matrix = plan_runs(recipe, settings, out_dir / RUNS)
    curve_runs = plan_curve(recipe, out_dir / CURVE) if recipe.transfer.sample_sizes else []
    if curve_runs:
        zero_shot_source(settings, curve_runs[0].train_languages[0])
    _check_run_folders(out_dir, [*matrix, *curve_runs])
    done = _execute_all([*matrix, *curve_runs], progress, keep_checkpoints)
    outcomes, curve_outcomes = done[: len(matrix)], done[len(matrix) :]
    if self_training:
        settings, matrix, outcomes = _add_students(
            recipe, self_training, settings, matrix, outcomes, progress, keep=keep_checkpoints
        )
    columns = recipe.eval_columns
    scores = setting_scores(matrix, outcomes, columns)
    tables = build_tables(scores, settings, columns)
    selection = recipe.transfer.selection
    curve = curve_result(recipe, settings, scores, outcomes=curve_outcomes) if curve_runs else None
    files: list[Path] = []
    if _is_main():
        write_text(RunFolder(out_dir).config, dump_recipe(recipe))
        files = write_matrix(
            out_dir,
            tables,
            selection,
            document=with_label_changes(
                transfer_document(tables, selection, matrix, outcomes=outcomes), matrix
            ),
        )
        files += write_curve(out_dir, curve, selection) if curve else []
    seconds = time.perf_counter() - started
    return TransferResult(out_dir, tables[selection], tables, tuple(outcomes), curve, tuple(files), seconds)


def with_label_changes(document: dict[str, Any], runs: Sequence[PlannedRun]) -> dict[str, Any]:
    """``transfer.json`` gains what each run's ``data_manifest.json`` says was renamed or dropped
    (per file and type, and per target), when anything was: a harmonised table is never silent."""
    manifests = {run.name: _manifest(run.run_dir) for run in runs}
    changes = {name: m["label_changes"] for name, m in manifests.items() if m.get("label_changes")}
    if changes:
        document["label_changes"] = changes
        document["label_changes_by_target"] = target_label_changes(list(manifests.values()))
    return document


def _manifest(run_dir: Path) -> dict[str, Any]:
    path = RunFolder(run_dir).data_manifest
    return dict(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else {}


def _add_students(
    recipe: Recipe,
    plans: Sequence[SelfTrainingPlan],
    settings: Sequence[Setting],
    matrix: Sequence[PlannedRun],
    outcomes: Sequence[RunOutcome],
    progress: ProgressHook | None,
    *,
    keep: bool,
) -> tuple[list[Setting], list[PlannedRun], list[RunOutcome]]:
    """Train the self-training students; their settings, runs and outcomes join the plain ones."""
    from nertool.workflows.selftrain import train_students  # it builds on this module's runner

    bases = list(zip(matrix, outcomes, strict=True))
    students = train_students(recipe, plans, bases, progress, keep_checkpoints=keep)
    return (
        [*settings, *(plan.setting for plan in plans)],
        [*matrix, *(s.run for s in students)],
        [*outcomes, *(s.outcome for s in students)],
    )


def _check_run_folders(out_dir: Path, runs: Sequence[PlannedRun]) -> None:
    """Run folders are named from language codes: each must stay under ``out_dir/runs`` or ``curve``."""
    for run in runs:
        if run.run_dir.parent not in (out_dir / RUNS, out_dir / CURVE):
            raise DataError(f"run folder {run.run_dir} is outside {out_dir}; refused")
        safe_child(run.run_dir.parent, run.run_dir.name)


def _execute_all(runs: Sequence[PlannedRun], progress: ProgressHook | None, keep: bool) -> list[RunOutcome]:
    outcomes = []
    for index, run in enumerate(runs, start=1):
        event = RunEvent(index, len(runs), run.name, run_status(run), run.run_dir)
        outcomes.append(execute_run(run, event, progress, keep_checkpoints=keep))
    return outcomes
