"""The commands' jobs: a recipe and an output folder in, the folder claimed, the workflow run.

Each holds its run folder (``run_folder.claim_run_folder``: the lock, and no finished run or
foreign file written over) for exactly as long as the workflow writes it, so the CLI only parses
arguments, calls one of these by keyword and renders what comes back.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from nertool.config import Recipe, load_recipe
from nertool.run_folder import claim_run_folder

if TYPE_CHECKING:  # the workflows import torch: loaded when a job runs, not when the CLI starts
    from nertool.train.loop import Reporter
    from nertool.transfer.report import TransferResult
    from nertool.workflows.train import RunResult

DEMO_RECIPE = Path(__file__).resolve().parents[1] / "resources" / "demo.toml"


def train_job(
    recipe: Recipe,
    run_dir: Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    reporter: Reporter | None = None,
) -> RunResult:
    """One run, or one per ``train.seeds`` entry, in a claimed ``run_dir``."""
    from nertool.workflows.train import train_run, train_seeds

    with claim_run_folder(run_dir, "train", resume=resume, overwrite=overwrite):
        if recipe.train.seeds:
            return train_seeds(recipe, run_dir, resume=resume, reporter=reporter)
        return train_run(recipe, run_dir, resume=resume, reporter=reporter)


def transfer_job(
    recipe: Recipe,
    out_dir: Path,
    *,
    overwrite: bool = False,
    keep_checkpoints: bool = False,
    progress: Any = None,
) -> TransferResult:
    """The transfer experiment in a claimed ``out_dir`` (finished runs under ``runs/`` are reused)."""
    from nertool.workflows.transfer import run_transfer

    with claim_run_folder(out_dir, "transfer", overwrite=overwrite):
        return run_transfer(recipe, out_dir, progress, keep_checkpoints=keep_checkpoints)


def transfer_summary(result: TransferResult) -> tuple[list[dict[str, Any]], list[str]]:
    """The headline table as rows, and the notes printed under it."""
    from nertool.transfer.report import summary_notes, summary_rows

    return summary_rows(result.table), summary_notes(result)


def pretrain_job(
    recipe: Recipe,
    run_dir: Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    reporter: Reporter | None = None,
) -> Any:
    """Masked-LM pre-training in a claimed ``run_dir``; returns ``workflows.pretrain.PretrainResult``."""
    from nertool.workflows.pretrain import pretrain_run

    with claim_run_folder(run_dir, "pretrain", resume=resume, overwrite=overwrite):
        return pretrain_run(recipe, run_dir, resume=resume, reporter=reporter)


def demo_job(output: Path, *, reporter: Reporter | None = None) -> RunResult:
    """scratch:tiny trained on the bundled German sample, scored on de/fr/it/en."""
    from nertool.workflows.train import train_run

    return train_run(load_recipe(DEMO_RECIPE), output, reporter=reporter)
