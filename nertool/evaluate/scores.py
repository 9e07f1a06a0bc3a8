"""Model-free analysis of NER predictions: scores, scoring conventions, confusion matrices, label stats.

A single F1 hides what matters on imbalanced NER data: most words are ``O``, so a model that
predicts only ``O`` has high token accuracy and zero F1. Everything here takes word-level IOB2
tag sequences (``gold`` and ``pred``, one list of tags per sentence, same shapes) and returns
plain data (dicts, lists, frozen dataclasses) that ``evaluate`` writes as JSON/CSV/Markdown and
``plots`` draws. Nothing here loads a model or touches files. Bootstrap intervals of F1 live in
``nertool.evaluate.bootstrap``; tables of subword losses in ``nertool.evaluate.error_analysis``.

Span reading. Spans come from ``nertool.labels.tags_to_spans``: an orphan ``I-X`` starts a new
entity, exactly as conlleval and seqeval's default mode read it. seqeval's strict IOB2 mode
instead drops such an entity, which is why both scores are reported.

Label order (``LABEL_ORDER``). Every confusion matrix over tags lists ``O`` first, then ``B-X``,
``I-X`` for each entity type ``X`` in sorted order (``nertool.labels.canonical_order``). Rows are
true labels, columns predicted labels: the opposite of the transposed matrix some tutorials plot.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from nertool.labels import OUTSIDE, canonical_order, entity_type, tags_to_spans

Tags = Sequence[Sequence[str]]

LABEL_ORDER = "O, then B-X and I-X for each entity type X in sorted order (rows = true, columns = predicted)"
SEQEVAL_MODE = "default (conlleval)"
DISAGREEMENT = 0.005
NONE_TYPE = "none"


# ---------------------------------------------------------------- inputs


def check_shapes(gold: Tags, pred: Tags) -> None:
    """Raise ``ValueError`` naming the first sentence whose gold and predicted lengths differ."""
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} sentences but pred has {len(pred)}; pass one per sentence")
    for index, (gold_tags, pred_tags) in enumerate(zip(gold, pred, strict=True)):
        if len(gold_tags) != len(pred_tags):
            raise ValueError(
                f"sentence {index}: gold has {len(gold_tags)} tags but pred has {len(pred_tags)}; "
                "predictions must be word-level, one tag per word"
            )


def _as_lists(tags: Tags) -> list[list[str]]:
    return [list(sentence) for sentence in tags]


def _has_entities(*tag_sets: Tags) -> bool:
    return any(tag != OUTSIDE for tags in tag_sets for sentence in tags for tag in sentence)


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / denominator if denominator else 0.0


def _f1(precision: float, recall: float) -> float:
    return _ratio(2 * precision * recall, precision + recall)


def _clean(value: Any) -> float:
    """A Python float from a numpy scalar; NaN (an undefined average) becomes 0.0."""
    number = float(value)
    return 0.0 if math.isnan(number) else number


@contextmanager
def _quiet() -> Iterator[None]:
    """seqeval and numpy warn on undefined averages we already map to 0.0; keep the logs readable."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ---------------------------------------------------------------- seqeval scores


def token_accuracy(gold: Tags, pred: Tags) -> float:
    """Share of words whose predicted tag equals the gold tag (high even for an all-``O`` model)."""
    pairs = [
        (g, p)
        for gold_tags, pred_tags in zip(gold, pred, strict=True)
        for g, p in zip(gold_tags, pred_tags, strict=True)
    ]
    return _ratio(sum(g == p for g, p in pairs), len(pairs))


def _report(gold: list[list[str]], pred: list[list[str]], strict: bool) -> dict[str, dict[str, Any]]:
    """seqeval's classification report: per type plus micro/macro averages, from one entity pass."""
    mode = {"mode": "strict", "scheme": IOB2} if strict else {}
    with _quiet():
        return classification_report(gold, pred, output_dict=True, zero_division=0, **mode)


def _type_row(row: dict[str, Any]) -> dict[str, float | int]:
    return {
        "precision": _clean(row["precision"]),
        "recall": _clean(row["recall"]),
        "f1": _clean(row["f1-score"]),
        "support": int(row["support"]),
    }


_SCORE_KEYS = ("precision", "recall", "f1", "strict_precision", "strict_recall", "strict_f1", "macro_f1")


def _seqeval_scores(gold: list[list[str]], pred: list[list[str]]) -> dict[str, Any]:
    """Headline scores and per-type rows; the report's micro average is seqeval's plain ``f1_score``."""
    default, strict = _report(gold, pred, strict=False), _report(gold, pred, strict=True)
    micro, strict_micro = _type_row(default["micro avg"]), _type_row(strict["micro avg"])
    return {
        "precision": micro["precision"],
        "recall": micro["recall"],
        "f1": micro["f1"],
        "strict_precision": strict_micro["precision"],
        "strict_recall": strict_micro["recall"],
        "strict_f1": strict_micro["f1"],
        "macro_f1": _clean(default["macro avg"]["f1-score"]),
        "per_type": {
            kind: _type_row(row) for kind, row in sorted(default.items()) if not kind.endswith(" avg")
        },
    }


def score_block(gold: Tags, pred: Tags) -> dict[str, Any]:
    """The ``metrics.json`` score block: seqeval default (conlleval) mode headline, strict IOB2 beside it.

    Empty inputs and data without any entity score 0.0 (seqeval itself fails or yields NaN there).
    """
    check_shapes(gold, pred)
    gold_lists, pred_lists = _as_lists(gold), _as_lists(pred)
    scores: dict[str, Any] = {**dict.fromkeys(_SCORE_KEYS, 0.0), "per_type": {}}
    if _has_entities(gold_lists, pred_lists):
        scores = _seqeval_scores(gold_lists, pred_lists)
    return {
        **scores,
        "micro_f1": scores["f1"],
        "token_accuracy": token_accuracy(gold_lists, pred_lists),
        "sentences": len(gold_lists),
        "seqeval_mode": SEQEVAL_MODE,
    }


def label_order(*tag_sets: Tags) -> tuple[str, ...]:
    """``LABEL_ORDER`` over every type seen in any of ``tag_sets``."""
    types = {kind for tags in tag_sets for sentence in tags for tag in sentence if (kind := entity_type(tag))}
    return tuple(canonical_order(types))


# ---------------------------------------------------------------- imbalance


def label_stats(tag_sequences: Tags) -> dict[str, Any]:
    """How imbalanced a split is: tag counts, entities per type, the share of ``O`` words."""
    tag_counts = Counter(tag for sentence in tag_sequences for tag in sentence)
    entity_counts = Counter(span.label for sentence in tag_sequences for span in tags_to_spans(sentence))
    tokens, sentences = sum(tag_counts.values()), len(tag_sequences)
    order = label_order(tag_sequences)
    return {
        "sentences": sentences,
        "tokens": tokens,
        "tag_counts": {tag: tag_counts[tag] for tag in order if tag_counts[tag]},
        "entity_counts": dict(sorted(entity_counts.items())),
        "o_share": _ratio(tag_counts[OUTSIDE], tokens),
        "entities_per_sentence": _ratio(sum(entity_counts.values()), sentences),
    }
