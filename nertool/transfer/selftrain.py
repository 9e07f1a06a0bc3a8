"""Self-training on unlabeled target text: pseudo-label it with a source model, train a student.

After a source setting's model (the *teacher*, e.g. the German model) is trained, it tags a target
language's unlabeled sentences: that language's train split with its gold tags thrown away, or a
raw-text file (one sentence per line, split into words by ``nertool.predict.textsplit``). A
sentence is kept when *every* entity the teacher predicts in it reaches ``min_confidence``; at most
``max_sentences`` of those are drawn (seeded, so a recipe always picks the same ones). A student
is trained on the source data plus the kept sentences and scored like any other setting; with
``rounds > 1`` the student becomes the next round's teacher. The student's row,
``"de + self(fr)"``, sits beside the plain ``"de"`` row, and the table reports the gain over it.

**Entity confidence is the minimum** of its words' probabilities (each word's max softmax
probability at its first subword, from the shared inference path). An entity is only as right as
its weakest word: one unsure word usually means a wrong boundary or type, and a mean would let two
confident words hide it. (``predict``'s ``Entity.score`` is the mean; it ranks entities for a
reader, while here one bad span poisons a whole training sentence.)

**The test split is never read.** Unlabeled sentences come only from the target's train split
(``load_corpus`` is asked for ``("train",)`` alone) or from the given text file, and a text file
that *is* the target's validation or test file is refused. Which sentences were pseudo-labelled
(ids and hashes), how many of how many passed, and the threshold are written to ``selftrain.json``
in the student's run folder, and summarised in its ``data_manifest.json``.

Everything here is pure or reads input; training the students is ``nertool.workflows.selftrain``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from nertool.config import Recipe, SelfTrainingConfig, build_recipe
from nertool.data.readers import Sentence
from nertool.data.sampling import choose_indices
from nertool.data.sources import load_corpus, locate
from nertool.errors import ConfigError, DataError
from nertool.labels import tags_to_spans
from nertool.run_folder import SELFTRAIN
from nertool.transfer.plan import PlannedRun
from nertool.transfer.table import EACH, Setting

SELFTRAIN_MANIFEST = SELFTRAIN
CONFIDENCE_RULE = "min over the entity's words of the word's max softmax probability"


# ------------------------------------------------------------------ records


@dataclass(frozen=True)
class UnlabeledSentence:
    """Words to pseudo-label, with where they came from (``fr/train:17`` or ``FILE:LINE``)."""

    id: str
    words: tuple[str, ...]

    @property
    def digest(self) -> str:
        """A short hash of the words, so a manifest names the sentence even if its source moves."""
        return hashlib.sha256("\t".join(self.words).encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class UnlabeledPool:
    """A target language's unlabeled sentences and a description of their origin."""

    language: str
    origin: str
    sentences: tuple[UnlabeledSentence, ...]


@dataclass(frozen=True)
class WordTags:
    """A teacher's output for one sentence: a tag and a probability per word."""

    tags: tuple[str, ...]
    scores: tuple[float, ...]


class Teacher(Protocol):
    """Anything that tags pre-split sentences (the trained model; a fake one in tests)."""

    def __call__(self, sentences: Sequence[Sequence[str]]) -> list[WordTags]: ...


@dataclass(frozen=True)
class PseudoLabelled:
    """One sentence as the teacher tagged it, with each predicted entity's confidence."""

    sentence: UnlabeledSentence
    tags: tuple[str, ...]
    confidences: tuple[float, ...]

    def passes(self, threshold: float, *, keep_empty: bool) -> bool:
        """Every entity at or above ``threshold``; a sentence with none passes only with ``keep_empty``."""
        if not self.confidences:
            return keep_empty
        return min(self.confidences) >= threshold


@dataclass(frozen=True)
class Selection:
    """The pseudo-labelled sentences kept for one target, and how many were seen and passed."""

    language: str
    origin: str
    threshold: float
    total: int
    passed: int
    kept: tuple[PseudoLabelled, ...]

    def sentences(self) -> tuple[Sentence, ...]:
        """The kept sentences as training sentences (their tags are the teacher's)."""
        return tuple(Sentence(p.sentence.words, p.tags) for p in self.kept)


@dataclass(frozen=True)
class SelfTrainingPlan:
    """One student setting: the plain setting it grows from, its target, and its table setting."""

    base: Setting
    target: str
    setting: Setting


# ------------------------------------------------------------------ planning


def self_setting_name(base: str, target: str) -> str:
    """The student's row: ``"de + self(fr)"``."""
    return f"{base} + self({target})"


def plan_self_training(recipe: Recipe, settings: Sequence[Setting]) -> list[SelfTrainingPlan]:
    """One student per (plain setting, target) where the setting does not train on the target.

    Checked before anything trains: each target must be an evaluation language (else the student
    has no score to compare), and some setting must leave it out (else nothing is zero-shot).
    """
    config = recipe.transfer.self_training
    if config is None:
        return []
    plans = []
    for target in config.languages:
        if target not in recipe.eval_languages:
            raise ConfigError(
                f"transfer.self_training.languages: {target!r} is not in data.eval_languages "
                f"({', '.join(recipe.eval_languages)}): add it there, so the student is scored on it"
            )
        bases = [s for s in settings if not s.name.startswith(EACH + ":") and target not in s.train_languages]
        if not bases:
            raise ConfigError(
                f"transfer.self_training: every transfer.sources setting trains on {target}, so none is "
                f'a teacher for it: add a source without it, e.g. ["de"]'
            )
        plans += [SelfTrainingPlan(b, target, _student_setting(b, target)) for b in bases]
    return plans


def _student_setting(base: Setting, target: str) -> Setting:
    return Setting(self_setting_name(base.name, target), base.train_languages, base=base.name)


def student_run(
    base_run: PlannedRun, plan: SelfTrainingPlan, config: SelfTrainingConfig, round_: int
) -> PlannedRun:
    """The student of one round: the base run's recipe plus this target's self-training section.

    The section stays in the student's ``config.toml``, so a changed threshold or amount retrains
    it; only the last round's student fills the table row.
    """
    values = base_run.recipe.model_dump()
    values["transfer"]["self_training"] = student_recipe_section(config, plan.target)
    recipe = build_recipe(values, f"self-training run {plan.setting.name}")
    folder = f"{base_run.run_dir.name}.self-{plan.target}.round-{round_}"
    settings = (plan.setting.name,) if round_ == config.rounds else ()
    return PlannedRun(folder, base_run.train_languages, settings, recipe, base_run.run_dir.parent / folder)


def student_recipe_section(config: SelfTrainingConfig, target: str) -> dict[str, Any]:
    """The self-training section of one target's student (its text file only)."""
    values = config.model_dump()
    values["languages"] = [target]
    values["text"] = {lang: path for lang, path in config.text.items() if lang == target}
    return values


# ------------------------------------------------------------------ unlabeled text


def read_unlabeled(recipe: Recipe, source: str, language: str) -> UnlabeledPool:
    """The target's unlabeled sentences: its given text file, else its train split without tags."""
    config = recipe.transfer.self_training
    text = config.text.get(language) if config else None
    if text is not None:
        refuse_held_out_text(Path(text), source, language, recipe)
        return read_text_pool(Path(text), language)
    return read_train_pool(source, language, recipe)


def read_train_pool(source: str, language: str, recipe: Recipe) -> UnlabeledPool:
    """The train split only (never validation or test), its gold tags dropped."""
    data = recipe.data
    corpus = load_corpus(
        source,
        [language],
        ("train",),
        file_format=data.format,
        strict_tags=data.strict_tags,
        revision=data.revision,
        tokens_column=data.tokens_column,
        tags_column=data.tags_column,
    )
    sentences = corpus.get(language, "train")
    if not sentences:
        raise DataError(f"no train split for {language!r} to self-train on; give transfer.self_training.text")
    origin = f"{corpus.sources[language]['train']} (train split, tags ignored)"
    pool = (UnlabeledSentence(f"{language}/train:{i}", s.tokens) for i, s in enumerate(sentences))
    return UnlabeledPool(language, origin, tuple(pool))


def read_text_pool(path: Path, language: str) -> UnlabeledPool:
    """One sentence per non-blank line of a raw-text file, split into words as ``predict`` does."""
    from nertool.predict.readers import iter_units

    units = iter_units([str(path)], "text", "line")
    pool = (UnlabeledSentence(u.id, u.words) for u in units if u.words)
    return UnlabeledPool(language, f"{path} (raw text, one sentence per line)", tuple(pool))


def refuse_held_out_text(path: Path, source: str, language: str, recipe: Recipe) -> None:
    """A text file that is the target's validation or test file would train on what is scored."""
    if not path.is_file():
        raise DataError("transfer.self_training.text: no such file; check the path", path)
    data = recipe.data
    refs = locate(
        source,
        [language],
        ("validation", "test"),
        tokens_column=data.tokens_column,
        tags_column=data.tags_column,
    )
    for ref in refs:
        held_out = ref.path or ref.dataset
        if held_out is not None and held_out.exists() and os.path.samefile(held_out, path):
            raise DataError(
                f"transfer.self_training.text for {language} is the {ref.split} split ({held_out}): "
                "self-training must never see evaluation sentences; give unlabeled text",
                path,
            )


# ------------------------------------------------------------------ pseudo-labels and selection


def entity_confidences(tags: Sequence[str], scores: Sequence[float]) -> tuple[float, ...]:
    """One confidence per predicted entity: the lowest probability among its words."""
    return tuple(min(scores[span.start : span.end]) for span in tags_to_spans(tags))


def pseudo_label(pool: UnlabeledPool, teacher: Teacher) -> list[PseudoLabelled]:
    """The teacher's tags for every sentence of the pool, with their entities' confidences."""
    predictions = teacher([s.words for s in pool.sentences])
    return [
        PseudoLabelled(sentence, p.tags, entity_confidences(p.tags, p.scores))
        for sentence, p in zip(pool.sentences, predictions, strict=True)
    ]


def select(
    pool: UnlabeledPool, labelled: Sequence[PseudoLabelled], config: SelfTrainingConfig, *, seed: int
) -> Selection:
    """Sentences whose every entity passes the threshold; a seeded draw of ``max_sentences`` of them."""
    passed = [p for p in labelled if p.passes(config.min_confidence, keep_empty=config.keep_empty)]
    chosen = choose_indices(len(passed), config.max_sentences, seed, key=f"self-training:{pool.language}")
    return Selection(
        pool.language,
        pool.origin,
        config.min_confidence,
        len(labelled),
        len(passed),
        tuple(passed[i] for i in chosen),
    )


def model_teacher(run_dir: Path) -> Teacher:
    """A trained run as a teacher, through ``Tagger`` and the shared word-level inference path."""
    from nertool.model.inference import predict_sentences, tags_of
    from nertool.predict.tagger import Tagger

    tagger = Tagger.load(run_dir)

    def teach(sentences: Sequence[Sequence[str]]) -> list[WordTags]:
        predictions = predict_sentences(
            tagger.model,
            tagger.tokenizer,
            sentences,
            max_tokens=tagger.max_tokens,
            max_batch=tagger.max_batch,
        )
        return [
            WordTags(tuple(tags_of(p, tagger.labels.names)), tuple(0.0 if s is None else s for s in p.scores))
            for p in predictions
        ]

    return teach


# ------------------------------------------------------------------ manifests


def selection_manifest(
    selection: Selection, config: SelfTrainingConfig, *, teacher: Path, round_: int
) -> dict[str, Any]:
    """``selftrain.json``: the threshold, the counts and every pseudo-labelled sentence (id, hash, tags)."""
    return {
        "language": selection.language,
        "round": round_,
        "rounds": config.rounds,
        "teacher": str(teacher),
        "unlabeled": selection.origin,
        "min_confidence": selection.threshold,
        "confidence": CONFIDENCE_RULE,
        "keep_empty": config.keep_empty,
        "max_sentences": config.max_sentences,
        "total": selection.total,
        "passed": selection.passed,
        "kept": len(selection.kept),
        "sentences": [_sentence_json(p) for p in selection.kept],
    }


def _sentence_json(labelled: PseudoLabelled) -> dict[str, Any]:
    return {
        "id": labelled.sentence.id,
        "sha256": labelled.sentence.digest,
        "tags": list(labelled.tags),
        "confidence": [round(c, 4) for c in labelled.confidences],
    }


def pseudo_training(selection: Selection) -> Mapping[str, tuple[Sentence, ...]]:
    """The extra training sentences of a student, keyed by their language."""
    return {selection.language: selection.sentences()}
