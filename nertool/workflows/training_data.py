"""A training run's data: the recipe's source read, training sets sampled, labels built and checked.

Shared by ``train`` and ``transfer`` (every transfer setting reads its data the same way), and by
``evaluate``/``inspect`` for resolving a SPEC (``sample`` is the corpus bundled in the package).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nertool.config import CorpusSource, Recipe, TrainSource
from nertool.data.harmonise import (
    LabelChanges,
    TypeMap,
    drop_unknown_types,
    harmonise_splits,
    types_in,
)
from nertool.data.readers import Sentence
from nertool.data.sampling import fraction_counts
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

    Every set is harmonised with its label map (``data.label_map``, or an entry's own) before the
    label set is built from the training sentences; ``data.train_sources`` add training sentences
    keyed ``corpus:language`` and ``data.eval_sources`` add dev/test sets keyed the same way. Every
    renamed or dropped entity of the sampled and capped sets is counted in ``manifest["label_changes"]``.
    ``extra_train`` (pseudo-labelled sentences of a self-training student, per language) joins the
    training sets as given and is counted in the manifest under ``pseudo_labelled``.
    """
    changes = LabelChanges()
    primary = _primary_sets(recipe, changes)
    mixed = _sample_train_sources(recipe, changes)
    extra = _eval_sources(recipe, changes)
    changes.warn_unused()
    train = {**primary.train, **mixed.sentences}
    if extra_train:
        train = _with_extra(train, extra_train)
    dev, test = {**primary.dev, **extra.dev}, {**primary.test, **extra.test}
    label_map = LabelMap.from_tags(tag for sentences in train.values() for s in sentences for tag in s.tags)
    files = {**primary.files, **extra.files}
    dev, test = _check_eval_labels(label_map, dev, test, files=files, recipe=recipe, changes=changes)
    manifest = primary.manifest
    manifest["counts"] = {**manifest["counts"], **{k: len(v) for k, v in mixed.sentences.items()}}
    if mixed.indices:
        manifest["train_sources"] = mixed.indices
    if extra.files:
        manifest["eval_sources"] = extra.sources
    if extra_train:
        manifest["pseudo_labelled"] = {lang: len(s) for lang, s in extra_train.items()}
    manifest["label_changes"] = changes.to_json()
    return TrainingData(train, dev, test, manifest, label_map)


@dataclass
class _PrimarySets:
    """What ``data.source`` gives: sampled training sets, dev/test per language, and their files."""

    train: dict[str, list[Sentence]]
    dev: dict[str, list[Sentence]]
    test: dict[str, list[Sentence]]
    files: dict[str, str]
    manifest: dict[str, Any]


def _primary_sets(recipe: Recipe, changes: LabelChanges) -> _PrimarySets:
    """``data.source`` read, training sets sampled, dev/test capped, harmonised by ``data.label_map``."""
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
    type_map = _noted(TypeMap(data.label_map or {}), corpus, data.source, changes)
    files = _split_files(corpus, languages)
    train, manifest = _sample_training(corpus, recipe)
    sets = {
        "train": train,
        "validation": _eval_split(corpus, recipe.eval_languages, "validation", data.max_eval_samples),
        "test": _eval_split(corpus, recipe.eval_languages, "test", data.max_eval_samples),
    }
    done = {
        split: harmonise_splits(named, type_map, files=_of_split(files, split), changes=changes)
        for split, named in sets.items()
    }
    eval_files = {name: f for name, f in files.items() if not name.endswith("/train")}
    return _PrimarySets(done["train"], done["validation"], done["test"], eval_files, manifest)


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


def _split_files(corpus: Corpus, languages: Sequence[str]) -> dict[str, str]:
    """``<name>/<split>`` → the file it was read from, for messages and label-change counts."""
    return {
        f"{language}/{split}": where
        for language in languages
        for split, where in corpus.sources.get(language, {}).items()
    }


def _of_split(files: dict[str, str], split: str) -> dict[str, str]:
    """``<name>/<split>`` keys of ``files`` → ``<name>`` for one split."""
    return {name.rsplit("/", 1)[0]: f for name, f in files.items() if name.endswith(f"/{split}")}


def _noted(type_map: TypeMap, corpus: Corpus, where: str, changes: LabelChanges) -> TypeMap:
    """The map, noted with the types of ``corpus`` (a mapped type no source has is warned about once)."""
    found = types_in(
        s for splits in corpus.splits.values() for sentences in splits.values() for s in sentences
    )
    changes.note(type_map, found, where)
    return type_map


def _check_eval_labels(
    label_map: LabelMap,
    dev: dict[str, list[Sentence]],
    test: dict[str, list[Sentence]],
    *,
    files: dict[str, str],
    recipe: Recipe,
    changes: LabelChanges,
) -> tuple[dict[str, list[Sentence]], dict[str, list[Sentence]]]:
    """Dev/test types the training data lacks: an error (``unknown_types = "error"``) or dropped to O."""
    splits = {**{f"{k}/validation": v for k, v in dev.items()}, **{f"{k}/test": v for k, v in test.items()}}
    if recipe.data.unknown_types == "drop":
        kept = drop_unknown_types(splits, label_map, files=files, changes=changes)
        return _by_split(kept, "validation"), _by_split(kept, "test")
    for name, sentences in splits.items():
        try:
            label_map.check_covers((t for s in sentences for t in s.tags), files.get(name, name))
        except LabelError as error:
            raise LabelError(
                f"{error}; the training data has no such label (map it with data.label_map, "
                'or set data.unknown_types = "drop")'
            ) from None
    return dev, test


def _by_split(splits: dict[str, list[Sentence]], split: str) -> dict[str, list[Sentence]]:
    return {name.rsplit("/", 1)[0]: s for name, s in splits.items() if name.endswith(f"/{split}")}


# ------------------------------------------------------------------ more corpora


def _type_map(entry: CorpusSource, index: int, key: str, recipe: Recipe) -> TypeMap:
    """An entry's own label map, else the recipe's ``data.label_map``."""
    if entry.label_map is not None:
        return TypeMap(entry.label_map, f"data.{key}[{index}].label_map")
    return TypeMap(recipe.data.label_map or {}, "data.label_map")


def _read_entry(entry: CorpusSource, splits: Sequence[str], recipe: Recipe) -> Corpus:
    return load_corpus(
        resolve_source(entry.source),
        entry.languages,
        splits,
        file_format=entry.format,
        strict_tags=recipe.data.strict_tags,
    )


@dataclass
class MixedTraining:
    """Training sentences from ``data.train_sources``, keyed ``corpus:language``, with their indices."""

    sentences: dict[str, list[Sentence]] = field(default_factory=dict)
    indices: dict[str, dict[str, Any]] = field(default_factory=dict)


def _sample_train_sources(recipe: Recipe, changes: LabelChanges) -> MixedTraining:
    """``fraction`` of each entry's training split per language (capped by ``max_train_samples``)."""
    mixed = MixedTraining()
    for index, entry in enumerate(recipe.data.train_sources or []):
        corpus = _read_entry(entry, ("train",), recipe)
        type_map = _noted(_type_map(entry, index, "train_sources", recipe), corpus, entry.source, changes)
        for language in entry.languages:
            _take_fraction(mixed, entry, language, corpus, recipe)
        taken = {column: mixed.sentences[column] for column in entry.columns}
        files = {column: mixed.indices[column]["source"] for column in entry.columns}
        mixed.sentences.update(harmonise_splits(taken, type_map, files=files, changes=changes))
    return mixed


def _take_fraction(
    mixed: MixedTraining, entry: TrainSource, language: str, corpus: Corpus, recipe: Recipe
) -> None:
    sentences = corpus.get(language, "train")
    if not sentences:
        raise DataError(f"no training split for language {language!r} in {entry.source}")
    count = fraction_counts({language: len(sentences)}, {language: entry.fraction})[language]
    count = min(count, recipe.data.max_train_samples or count)
    column = entry.column(language)
    mixed.sentences[column], chosen = sample_sentences(sentences, count, recipe.seed, key=column)
    where = corpus.sources[language]["train"]
    mixed.indices[column] = {"source": where, "fraction": entry.fraction, "indices": chosen}


@dataclass
class EvalSets:
    """Dev and test sets of ``data.eval_sources``, keyed ``corpus:language``."""

    dev: dict[str, list[Sentence]] = field(default_factory=dict)
    test: dict[str, list[Sentence]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    sources: dict[str, dict[str, str]] = field(default_factory=dict)


def _eval_sources(recipe: Recipe, changes: LabelChanges) -> EvalSets:
    """Each entry's test (and validation, for ``target_dev``) split, capped by ``max_eval_samples``.

    A single file is read as the test split. A target without a test split is logged and left out:
    its column stays empty in the transfer table.
    """
    sets = EvalSets()
    cap = recipe.data.max_eval_samples
    for index, entry in enumerate(recipe.data.eval_sources or []):
        corpus = _read_entry(entry, ("test", "validation"), recipe)
        type_map = _noted(_type_map(entry, index, "eval_sources", recipe), corpus, entry.source, changes)
        for language in entry.languages:
            column = entry.column(language)
            sets.sources[column] = corpus.sources.get(language, {})
            for split, target in (("validation", sets.dev), ("test", sets.test)):
                sentences = corpus.get(language, split)
                if sentences is None:
                    log.warning(
                        "%s has no %s split in %s; it is not scored on it", column, split, entry.source
                    )
                    continue
                where = corpus.sources[language][split]
                sets.files[f"{column}/{split}"] = where
                capped = {column: sentences[:cap] if cap else sentences}
                target.update(harmonise_splits(capped, type_map, files={column: where}, changes=changes))
    return sets
