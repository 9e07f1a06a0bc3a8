"""Training the self-training students of a transfer: teacher → pseudo-labels → student, per round.

The selection rules live in ``nertool.transfer.selftrain``; this module runs them after the plain
settings are trained. Round 1's teacher is the plain setting's model; each later round's teacher is
the previous student. A student whose folder already holds the same recipe's finished run is reused
(its teacher is not even loaded), unless a teacher before it was trained in this call: its
pseudo-labels could then differ, so it trains afresh.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from nertool.config import Recipe, SelfTrainingConfig
from nertool.files import write_json
from nertool.transfer.plan import REUSE, TRAIN, PlannedRun, RunOutcome
from nertool.transfer.selftrain import (
    SELFTRAIN_MANIFEST,
    SelfTrainingPlan,
    model_teacher,
    pseudo_label,
    pseudo_training,
    read_unlabeled,
    select,
    selection_manifest,
    student_run,
)
from nertool.workflows.training_data import resolve_source
from nertool.workflows.transfer import ProgressHook, RunEvent, _is_main, execute_run, run_status

log = logging.getLogger("nertool")


@dataclass(frozen=True)
class StudentRun:
    """A trained student: its plan, its run and its outcome (only the last round fills a row)."""

    plan: SelfTrainingPlan
    run: PlannedRun
    outcome: RunOutcome


def train_students(
    recipe: Recipe,
    plans: Sequence[SelfTrainingPlan],
    bases: Sequence[tuple[PlannedRun, RunOutcome]],
    progress: ProgressHook | None = None,
    *,
    keep_checkpoints: bool = False,
) -> list[StudentRun]:
    """Every round of every student, in plan order; ``bases`` are the plain runs and their outcomes."""
    config = recipe.transfer.self_training
    if config is None or not plans:
        return []
    total = len(plans) * config.rounds
    students: list[StudentRun] = []
    for plan in plans:
        base_run, base_outcome = _base_of(plan, bases)
        teacher, fresh = base_run.run_dir, base_outcome.status != REUSE
        for round_ in range(1, config.rounds + 1):
            run = student_run(base_run, plan, config, round_)
            status = TRAIN if fresh else run_status(run)
            if status != REUSE:
                run = _with_pseudo_labels(recipe, run, config, teacher=teacher, round_=round_)
            event = RunEvent(len(students) + 1, total, run.name, status, run.run_dir)
            done = execute_run(run, event, progress, keep_checkpoints=keep_checkpoints)
            students.append(StudentRun(plan, run, done))
            teacher, fresh = run.run_dir, done.status != REUSE
    return students


def _base_of(
    plan: SelfTrainingPlan, bases: Sequence[tuple[PlannedRun, RunOutcome]]
) -> tuple[PlannedRun, RunOutcome]:
    """The plain run that trains the student's base setting."""
    return next((run, done) for run, done in bases if plan.base.name in run.settings)


def _with_pseudo_labels(
    recipe: Recipe, run: PlannedRun, config: SelfTrainingConfig, *, teacher: Path, round_: int
) -> PlannedRun:
    """Tag the target's unlabeled text with ``teacher``, select, record it, attach it to the run."""
    target = run.recipe.transfer.self_training.languages[0]  # type: ignore[union-attr]
    pool = read_unlabeled(recipe, resolve_source(recipe.data.source), target)
    log.info("%s: pseudo-labelling %d %s sentences with %s", run.name, len(pool.sentences), target, teacher)
    selection = select(pool, pseudo_label(pool, model_teacher(teacher)), config, seed=run.recipe.seed)
    log.info(
        "%s: %d of %d sentences have every entity at confidence >= %s; %d kept",
        run.name,
        selection.passed,
        selection.total,
        selection.threshold,
        len(selection.kept),
    )
    if not selection.kept:
        log.warning(
            "%s: no %s sentence reached min_confidence %s, so this student trains on the source data "
            "alone and its row repeats the teacher's; lower transfer.self_training.min_confidence "
            "(selftrain.json counts what passed)",
            run.name,
            target,
            selection.threshold,
        )
    if _is_main():
        run.run_dir.mkdir(parents=True, exist_ok=True)
        manifest = selection_manifest(selection, config, teacher=teacher, round_=round_)
        write_json(run.run_dir / SELFTRAIN_MANIFEST, manifest)
    return replace(run, extra_train=pseudo_training(selection))
