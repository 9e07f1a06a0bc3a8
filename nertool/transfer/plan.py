"""What a transfer will train: one run per training-language set, one per curve size, and their records.

Planning is pure (recipes in, ``PlannedRun`` records out, nothing trained or written), so every
recipe error surfaces before the first model trains and the plan of a shipped recipe can be checked
in a test without training. The records here are what the later stages pass along:
``nertool.workflows.transfer`` trains each ``PlannedRun`` into a ``RunOutcome``, and
``nertool.transfer.report`` turns the outcomes into tables, a curve and files.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nertool.config import Recipe, build_recipe
from nertool.data.readers import Sentence
from nertool.errors import ConfigError
from nertool.transfer.table import Setting, group_trainings
from nertool.transfer.table import expand_sources as _expand_sources

TRAIN, RESUME, REUSE = "train", "resume", "reuse"
Scores = dict[str, dict[str, float | None]]


@dataclass(frozen=True)
class PlannedRun:
    """One model to train or reuse: its folder, the recipe it trains with, the settings it serves.

    ``extra_train`` holds training sentences that come from no corpus file: a self-training
    student's pseudo-labelled target sentences (``nertool.transfer.selftrain``), per language.
    """

    name: str
    train_languages: tuple[str, ...]
    settings: tuple[str, ...]
    recipe: Recipe
    run_dir: Path
    extra_train: Mapping[str, Sequence[Sentence]] | None = None


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
    target = check_curve_recipe(recipe)
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


def check_curve_recipe(recipe: Recipe) -> str:
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
