"""Typed records that travel between stages and land on disk as JSON.

Evaluation scores, comparisons and data inspections used to travel as plain dicts, built in one
stage and picked apart by key in the next (workflows, transfer tables, the terminal renderer).
Here each has one frozen dataclass with ``from_json`` (read a dict as the files hold it) and
``to_json`` (give that dict back exactly: same keys, same order), so the JSON schemas on disk
stay byte-compatible while the code in between reads fields. ``load_trained_run`` is the one
way to get a trained model with the training settings it needs (its label strategy, its recipe).

Score blocks themselves (``{"f1": ..., "per_type": ...}`` of one split) stay mappings: a one-run
block, a block with a bootstrap interval and a multi-seed block hold different keys, and every
writer and reader of them already goes through ``nertool.evaluate``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomllib

from nertool.errors import ConfigError, DataError
from nertool.labels import LabelMap
from nertool.model.align import LabelStrategy, as_label_strategy, label_strategy_of
from nertool.run_folder import RunFolder

if TYPE_CHECKING:
    from nertool.config import Recipe

Block = Mapping[str, Any]


def _dict(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise DataError(f"{what}: expected a JSON object, got {type(data).__name__}")
    return dict(data)


# ---------------------------------------------------------------- scores


@dataclass(frozen=True)
class LanguageScores:
    """The score blocks of one language, per split (``validation``, ``test``), in file order."""

    splits: Mapping[str, Block] = field(default_factory=dict)

    def get(self, split: str) -> Block | None:
        return self.splits.get(split)

    @property
    def test(self) -> Block | None:
        return self.get("test")

    @property
    def validation(self) -> Block | None:
        return self.get("validation")

    def f1(self, split: str) -> float | None:
        block = self.get(split)
        return None if block is None else float(block["f1"])

    def to_json(self) -> dict[str, Any]:
        return {split: dict(block) for split, block in self.splits.items()}

    @classmethod
    def from_json(cls, data: Any) -> LanguageScores:
        splits = _dict(data, "scores of a language")
        return cls({split: _dict(block, f"scores of {split}") for split, block in splits.items()})


@dataclass(frozen=True)
class EvaluationRecord:
    """What ``metrics.json`` holds: scores per language and split, then the other fields.

    ``extra`` keeps every other top-level key in file order: ``model``/``data`` (evaluate),
    ``best_step``/``train_sentences`` (train), ``seeds``/``runs`` (a multi-seed run). Today's
    writers put ``languages`` first, so ``to_json`` does too.
    """

    languages: Mapping[str, LanguageScores] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> str | None:
        return self.extra.get("model")

    @property
    def data(self) -> str | None:
        return self.extra.get("data")

    @property
    def best_step(self) -> int:
        return int(self.extra.get("best_step", -1))

    @property
    def train_sentences(self) -> dict[str, int]:
        return dict(self.extra.get("train_sentences", {}))

    def block(self, language: str, split: str) -> Block | None:
        scores = self.languages.get(language)
        return None if scores is None else scores.get(split)

    def blocks(self) -> Iterator[tuple[str, str, Block]]:
        """(language, split, block) in file order."""
        for language, scores in self.languages.items():
            for split, block in scores.splits.items():
                yield language, split, block

    def to_json(self) -> dict[str, Any]:
        languages = {language: scores.to_json() for language, scores in self.languages.items()}
        return {"languages": languages, **self.extra}

    @classmethod
    def from_json(cls, data: Any) -> EvaluationRecord:
        document = _dict(data, "metrics")
        if "languages" not in document:
            raise DataError("metrics: no 'languages' key; not a nertool metrics.json")
        languages = _dict(document.pop("languages"), "metrics languages")
        return cls({lang: LanguageScores.from_json(s) for lang, s in languages.items()}, document)

    @classmethod
    def read(cls, path: Path, *, advice: str = "rerun the command that wrote it") -> EvaluationRecord:
        """A ``metrics.json``; a damaged one is a ``DataError`` naming the file and what to do."""
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, DataError) as error:
            raise DataError(f"cannot read ({error}); {advice}", path) from None


# ---------------------------------------------------------------- compare, inspect


@dataclass(frozen=True)
class Comparison:
    """``nertool compare``: a paired bootstrap of F1(A) - F1(B) per language and split."""

    model_a: str
    model_b: str
    data: str
    split: str
    n: int
    seed: int
    languages: Mapping[str, Mapping[str, Block]]

    def to_json(self) -> dict[str, Any]:
        return {
            "model_a": self.model_a,
            "model_b": self.model_b,
            "data": self.data,
            "split": self.split,
            "n": self.n,
            "seed": self.seed,
            "languages": {
                lang: {split: dict(row) for split, row in splits.items()}
                for lang, splits in self.languages.items()
            },
        }

    @classmethod
    def from_json(cls, data: Any) -> Comparison:
        d = _dict(data, "comparison")
        return cls(d["model_a"], d["model_b"], d["data"], d["split"], d["n"], d["seed"], d["languages"])


@dataclass(frozen=True)
class InspectionReport:
    """``nertool data inspect``: a row per language and split; the alignment audit given a tokenizer."""

    source: str
    splits: Sequence[Block]
    alignment: Sequence[Block] | None = None

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"source": self.source, "splits": [dict(row) for row in self.splits]}
        if self.alignment is not None:
            document["alignment"] = [dict(row) for row in self.alignment]
        return document

    @classmethod
    def from_json(cls, data: Any) -> InspectionReport:
        d = _dict(data, "inspection")
        alignment = d.get("alignment")
        return cls(d["source"], tuple(d["splits"]), None if alignment is None else tuple(alignment))


# ---------------------------------------------------------------- a trained run


@dataclass(frozen=True)
class TrainedRun:
    """A fine-tuned model with what it was trained with: labels, label strategy, recipe.

    ``recipe`` is None for a bare model folder (or a ``config.toml`` this version cannot read);
    ``label_strategy`` is then ``first``, the default every run had before it was a setting.
    """

    path: Path
    model: Any
    tokenizer: Any
    label_map: LabelMap
    label_strategy: LabelStrategy = "first"
    recipe: Recipe | None = None


def run_config(path: str | Path) -> Path | None:
    """The ``config.toml`` beside a run's model: in the folder given, or above a ``model/`` folder."""
    folder = Path(path)
    for candidate in (RunFolder(folder).config, RunFolder(folder.parent).config):
        if candidate.is_file():
            return candidate
    return None


def _read_config(path: str | Path) -> dict[str, Any]:
    config = run_config(path)
    if config is None:
        return {}
    try:
        return tomllib.loads(config.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}


def read_label_strategy(path: str | Path) -> LabelStrategy:
    """The ``model.label_strategy`` a run was trained with (``first`` for a bare model folder).

    Losses must be computed on the labels the model was trained on: under ``all`` labelling
    continuation subwords carry ``I-`` labels and are scored too.
    """
    model = _read_config(path).get("model", {})
    return as_label_strategy(model.get("label_strategy") if isinstance(model, Mapping) else None)


def read_run_recipe(path: str | Path) -> Recipe | None:
    """The recipe a run was trained with, or None where there is none this version can read."""
    from nertool.config import build_recipe

    data = _read_config(path)
    try:
        return build_recipe(data, str(run_config(path))) if data else None
    except ConfigError:
        return None


def load_trained_run(path: str | Path, *, trust_remote_code: bool = False) -> TrainedRun:
    """Model, tokenizer, labels and training settings from a run folder or a model folder."""
    from nertool.model.build import load_trained

    model, tokenizer, label_map = load_trained(path, trust_remote_code)
    # config.json records a strategy other than ``first`` (so a bare model folder keeps it); runs
    # saved before it did have it in config.toml only
    recorded = label_strategy_of(model)
    return TrainedRun(
        Path(path),
        model,
        tokenizer,
        label_map,
        label_strategy=recorded if recorded != "first" else read_label_strategy(path),
        recipe=read_run_recipe(path),
    )
