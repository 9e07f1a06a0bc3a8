"""A training run's data: the recipe's source read, training sets sampled, labels built and checked.

Shared by ``train`` and ``transfer`` (every transfer setting reads its data the same way), and by
``evaluate``/``inspect`` for resolving a SPEC (``sample`` is the corpus bundled in the package).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nertool.config import Recipe
from nertool.data.readers import Sentence
from nertool.data.sources import Corpus, load_corpus, plan_sample, sample_sentences
from nertool.errors import DataError, LabelError
from nertool.labels import LabelMap

log = logging.getLogger("nertool")

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "resources" / "sample"


def resolve_source(source: str) -> str:
    """``sample`` names the corpus shipped in the package; anything else is a SPEC."""
    return str(SAMPLE_DIR) if source == "sample" else source


# ------------------------------------------------------------------ data for a training run


@dataclass
class TrainingData:
    """Everything a run trains and scores on, and how it was chosen."""

    train: dict[str, list[Sentence]]
    dev: dict[str, list[Sentence]]
    test: dict[str, list[Sentence]]
    manifest: dict[str, Any]
    label_map: LabelMap


def load_training_data(
    recipe: Recipe, extra_train: Mapping[str, Sequence[Sentence]] | None = None
) -> TrainingData:
    """Read train/dev/test for the recipe's languages, sample the training sets, build labels.

    ``extra_train`` (pseudo-labelled sentences of a self-training student, per language) joins the
    sampled training sets as given and is counted in the manifest under ``pseudo_labelled``.
    """
    data = recipe.data
    languages = list(dict.fromkeys([*data.train_languages, *recipe.eval_languages]))
    corpus = load_corpus(
        resolve_source(data.source),
        languages,
        file_format=data.format,
        strict_tags=data.strict_tags,
        revision=data.revision,
        tokens_column=data.tokens_column,
        tags_column=data.tags_column,
    )
    train, manifest = _sample_training(corpus, recipe)
    if extra_train:
        train = _with_extra(train, extra_train)
        manifest["pseudo_labelled"] = {lang: len(s) for lang, s in extra_train.items()}
    dev = _eval_split(corpus, recipe.eval_languages, "validation", data.max_eval_samples)
    test = _eval_split(corpus, recipe.eval_languages, "test", data.max_eval_samples)
    label_map = LabelMap.from_tags(tag for sentences in train.values() for s in sentences for tag in s.tags)
    _check_eval_labels(
        label_map,
        {**{f"{k}/validation": v for k, v in dev.items()}, **{f"{k}/test": v for k, v in test.items()}},
        corpus,
    )
    return TrainingData(train, dev, test, manifest, label_map)


def _sample_training(corpus: Corpus, recipe: Recipe) -> tuple[dict[str, list[Sentence]], dict[str, Any]]:
    available = {}
    for language in recipe.data.train_languages:
        sentences = corpus.get(language, "train")
        if not sentences:
            raise DataError(f"no training split for language {language!r} in {recipe.data.source}")
        available[language] = len(sentences)
    plan = plan_sample(
        available,
        recipe.data.max_train_samples,
        recipe.data.fractions,
        temperature=recipe.data.sampling_temperature,
    )
    train, chosen = {}, {}
    for language, count in plan.counts.items():
        train[language], chosen[language] = sample_sentences(
            corpus.get(language, "train") or [], count, recipe.seed, key=language
        )
    manifest = {
        "source": recipe.data.source,
        "revision": recipe.data.revision,
        "sources": corpus.sources,
        "sampling": plan.method,
        "seed": recipe.seed,
        "counts": plan.counts,
        "train_indices": chosen,
    }
    return train, manifest


def _with_extra(
    train: dict[str, list[Sentence]], extra: Mapping[str, Sequence[Sentence]]
) -> dict[str, list[Sentence]]:
    """The sampled training sets with the extra sentences appended, per language."""
    merged = {lang: list(sentences) for lang, sentences in train.items()}
    for lang, sentences in extra.items():
        merged.setdefault(lang, []).extend(sentences)
    return merged


def _eval_split(
    corpus: Corpus, languages: Sequence[str], split: str, cap: int | None
) -> dict[str, list[Sentence]]:
    """The split per language where the source has it (PAN-X it has no test: skipped, logged)."""
    found = {}
    for language in languages:
        sentences = corpus.get(language, split)
        if sentences is None:
            log.warning("%s has no %s split in this source; it is not scored on it", language, split)
            continue
        found[language] = sentences[:cap] if cap else sentences
    return found


def _check_eval_labels(label_map: LabelMap, splits: dict[str, list[Sentence]], corpus: Corpus) -> None:
    for name, sentences in splits.items():
        language, split = name.split("/")
        where = corpus.sources.get(language, {}).get(split, name)
        try:
            label_map.check_covers((t for s in sentences for t in s.tags), where)
        except LabelError as error:
            raise LabelError(f"{error}; the training data has no such label") from None
