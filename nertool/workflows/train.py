"""The ``train`` job: recipe → training data → model and features → the loop → metrics and card.

``train_run`` is one run folder; ``train_seeds`` one run per seed with a mean ± std summary.
Functions here return typed results and write files; they never print and never parse argv.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nertool.config import Recipe, dump_recipe
from nertool.data.readers import Sentence
from nertool.evaluate.report import seed_summary
from nertool.evaluate.split import SplitEncodings, evaluate_split, mean_f1, metrics_document
from nertool.files import write_json, write_text
from nertool.labels import LabelMap
from nertool.model.align import LabelStrategy, record_label_strategy
from nertool.model.arrays import FeatureArrays
from nertool.model.build import (
    freeze_embeddings,
    is_scratch,
    load_trained,
    scratch_classifier,
    scratch_size,
    token_classifier,
)
from nertool.model.cache import cache_root, cached_features, feature_key
from nertool.model.features import encode_arrays
from nertool.model.inference import model_max_length
from nertool.train.loop import BestFn, Loop, LoopHooks, ScoreFn
from nertool.train.reporters import Reporter
from nertool.train.runtime import make_accelerator
from nertool.train.settings import loop_settings
from nertool.workflows.runs import (
    build_tokenizer,
    check_push,
    checkpoint_tokenizer,
    refuse_push,
    run_log,
    save_run_model,
    share_run,
    tracker_dir,
    write_run_inputs,
)
from nertool.workflows.training_data import TrainingData, load_training_data

log = logging.getLogger("nertool")

# ------------------------------------------------------------------ model and features


def tokenizer_texts(train: dict[str, list[Sentence]]) -> Iterator[str]:
    """The text a scratch tokenizer is trained on: every training sentence, words joined by spaces."""
    return (" ".join(s.tokens) for sentences in train.values() for s in sentences)


def build_model(
    recipe: Recipe, label_map: LabelMap, train: dict[str, list[Sentence]], *, tokenizer: Any = None
) -> tuple[Any, Any]:
    """(model, tokenizer): a scratch model sized to the tokenizer, or a loaded one with a new head."""
    spec = recipe.model
    tokenizer = tokenizer if tokenizer is not None else build_tokenizer(spec, tokenizer_texts(train))
    if is_scratch(spec.name):
        model = scratch_classifier(
            scratch_size(spec.name), len(tokenizer), spec.max_length, label_map=label_map
        )
    else:
        model = token_classifier(
            spec.name, label_map, spec.revision, trust_remote_code=spec.trust_remote_code
        )
    if spec.freeze_embeddings:
        freeze_embeddings(model)
    record_label_strategy(model, spec.label_strategy)  # saved in config.json: predictions read it
    return model, tokenizer


def encode_training(
    tokenizer: Any,
    sentences: Sequence[Sentence],
    label_map: LabelMap,
    *,
    max_length: int,
    strategy: LabelStrategy,
    cache_dir: str = "off",
) -> FeatureArrays:
    """Labelled features (windows) of every training sentence, as flat arrays, through the cache.

    ``cache_dir`` is ``data.cache_dir``: with the cache on, features of the same tokenizer, data and
    alignment settings are read back (memory-mapped) instead of tokenised again.
    """

    def build() -> FeatureArrays:
        return encode_arrays(sentences, tokenizer, max_length=max_length, labels=label_map, strategy=strategy)

    root = cache_root(cache_dir)
    if root is None:
        return build()
    key = feature_key(
        tokenizer, sentences, max_length=max_length, label_names=label_map.names, strategy=strategy
    )
    return cached_features(root, key, build)


# ------------------------------------------------------------------ train


@dataclass
class RunResult:
    """What a training run produced: its folder, metrics and dev history."""

    run_dir: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)


def _dev_scorer(
    data: TrainingData, tokenizer: Any, recipe: Recipe, accelerator: Any, track_test: bool = False
) -> ScoreFn:
    """The callback the loop calls after each epoch: dev F1 per language and the selection score.

    With ``track_test`` each evaluation also records the test F1 of every language (unrounded), so a
    transfer experiment can read the test score of any checkpoint (best on source dev, best on target
    dev, last) from the eval history without keeping every checkpoint.
    """
    selection = recipe.data.train_languages if recipe.train.select_on == "source_dev" else list(data.dev)
    encodings = SplitEncodings()  # dev (and test) encoded at the first evaluation, reused after

    def score(model: Any) -> tuple[float, dict[str, Any]]:
        results = {
            language: evaluate_split(
                model,
                tokenizer,
                data.label_map,
                sentences=sentences,
                language=language,
                split="validation",
                accelerator=accelerator,
                encodings=encodings,
            )
            for language, sentences in data.dev.items()
        }
        chosen = [results[lang] for lang in selection if lang in results] or list(results.values())
        details = {lang: round(r.scores["f1"], 4) for lang, r in results.items()}
        value = mean_f1(chosen) if recipe.train.select_on != "last" else float(len(details))
        tracked = {"test_f1": _test_f1(model, data, tokenizer, accelerator, encodings)} if track_test else {}
        return value, {"dev_f1": details, **tracked}

    return score


def _test_f1(
    model: Any, data: TrainingData, tokenizer: Any, accelerator: Any, encodings: SplitEncodings
) -> dict[str, float]:
    return {
        lang: evaluate_split(
            model,
            tokenizer,
            data.label_map,
            sentences=split,
            language=lang,
            split="test",
            accelerator=accelerator,
            encodings=encodings,
        ).scores["f1"]
        for lang, split in data.test.items()
    }


def train_run(
    recipe: Recipe,
    run_dir: Path,
    resume: bool = False,
    *,
    reporter: Reporter | None = None,
    seed: int | None = None,
    track_test: bool = False,
    extra_train: Mapping[str, Sequence[Sentence]] | None = None,
) -> RunResult:
    """Fine-tune on the recipe's data, keep the best dev model, score it, write the run folder.

    The model's card is written last, from ``metrics.json``; ``train.push_to_hub`` then uploads
    the model (its login is checked first, so a run never trains only to fail at the upload).
    ``extra_train`` adds training sentences from no corpus file (``load_training_data``).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    check_push(recipe)
    data = load_training_data(recipe, extra_train)
    settings = loop_settings(recipe, seed)
    accelerator = make_accelerator(settings, tracker_dir=tracker_dir(run_dir))
    model, tokenizer = _run_model(
        recipe, data, run_dir, resume=resume, accelerator=accelerator, seed=settings.seed
    )
    with accelerator.main_process_first():  # one process tokenises; the others read its cache entry
        features = _run_features(recipe, data, model, tokenizer)
    hooks = LoopHooks(
        score=_dev_scorer(data, tokenizer, recipe, accelerator, track_test) if data.dev else None,
        on_best=_best_saver(tokenizer, run_dir, accelerator, max_length=recipe.model.max_length),
    )
    loop = Loop(
        model,
        features,
        settings,
        run_dir / "checkpoint",
        hooks=hooks,
        reporter=run_log(run_dir, reporter, accelerator, recipe=recipe),
        accelerator=accelerator,
    )
    write_run_inputs(run_dir, recipe, data.manifest, accelerator)
    loop.resume_or_restart(resume, run_dir / "train_log.jsonl")
    state = loop.run()
    metrics = final_metrics(
        run_dir,
        data,
        accelerator,
        best_step=state.best_step,
        trust_remote_code=recipe.model.trust_remote_code,
    )
    if accelerator.is_main_process:
        write_json(run_dir / "metrics.json", metrics)
    share_run(run_dir, recipe, accelerator)
    return RunResult(run_dir, metrics, state.history)


def _best_saver(tokenizer: Any, run_dir: Path, accelerator: Any, *, max_length: int) -> BestFn:
    """The loop's ``on_best``: the best dev model so far becomes ``model/``."""

    def save(model: Any) -> None:
        save_run_model(model, tokenizer, run_dir, accelerator, max_length=max_length)

    return save


def _run_model(
    recipe: Recipe, data: TrainingData, run_dir: Path, *, resume: bool, accelerator: Any, seed: int
) -> tuple[Any, Any]:
    """(model, tokenizer) of a run: the checkpoint's tokenizer, and the model built under ``seed``."""
    from accelerate.utils import set_seed

    tokenizer = checkpoint_tokenizer(
        recipe.model,
        tokenizer_texts(data.train),
        run_dir / "checkpoint",
        resume=resume,
        accelerator=accelerator,
    )
    set_seed(seed)  # the new head (or scratch model) starts seeded
    return build_model(recipe, data.label_map, data.train, tokenizer=tokenizer)


def _run_features(recipe: Recipe, data: TrainingData, model: Any, tokenizer: Any) -> FeatureArrays:
    """Every training sentence encoded, windows no longer than the recipe and the model allow."""
    max_length = min(recipe.model.max_length, model_max_length(model, tokenizer))
    return encode_training(
        tokenizer,
        [s for sentences in data.train.values() for s in sentences],
        data.label_map,
        max_length=max_length,
        strategy=recipe.model.label_strategy,
        cache_dir=recipe.data.cache_dir,
    )


def final_metrics(
    run_dir: Path, data: TrainingData, accelerator: Any, *, best_step: int, trust_remote_code: bool = False
) -> dict[str, Any]:
    """Score the kept model on validation and test of every evaluation language.

    The model was saved from the recipe's model, so it may run that model's code only when
    the recipe allowed it (``model.trust_remote_code``).
    """
    accelerator.wait_for_everyone()
    model, tokenizer, label_map = load_trained(run_dir / "model", trust_remote_code)
    model.to(accelerator.device)
    evaluations = [
        evaluate_split(
            model,
            tokenizer,
            label_map,
            sentences=sentences,
            language=language,
            split=split,
            accelerator=accelerator,
        )
        for split, by_language in (("validation", data.dev), ("test", data.test))
        for language, sentences in by_language.items()
    ]
    train_counts = {lang: len(s) for lang, s in data.train.items()}
    return metrics_document(evaluations, {"best_step": best_step, "train_sentences": train_counts})


# ------------------------------------------------------------------ seeds


def train_seeds(
    recipe: Recipe, run_dir: Path, resume: bool = False, *, reporter: Reporter | None = None
) -> RunResult:
    """One full run per ``train.seeds`` entry in ``seed-<s>/``; the top-level metrics are mean and std.

    ``train_run`` seeds the initial weights and the loop the batch order with the run's seed, so a
    seed fixes both (the data sample stays the recipe's).
    """
    from accelerate import PartialState

    refuse_push(recipe, "a multi-seed run keeps a model per seed", f"{run_dir}/seed-<n>")
    per_seed = {}
    for seed in dict.fromkeys(recipe.train.seeds):
        per_seed[seed] = train_run(
            recipe, run_dir / f"seed-{seed}", resume, reporter=reporter, seed=seed
        ).metrics
    metrics = seed_summary(per_seed)
    if PartialState().is_main_process:
        write_text(run_dir / "config.toml", dump_recipe(recipe))
        write_json(run_dir / "metrics.json", metrics)
    return RunResult(run_dir, metrics)
