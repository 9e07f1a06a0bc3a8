"""Confusion matrices: word tags (rows = true, columns = predicted) and span-level entity types.

Labels are ordered ``O``, then ``B-X``/``I-X`` per type (``LABEL_ORDER``); the span matrix adds a
``none`` row and column for missed and spurious entities.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from nertool.errors import LabelError
from nertool.evaluate.conventions import overlaps
from nertool.evaluate.scores import NONE_TYPE, Tags, _ratio, check_shapes, label_order
from nertool.labels import Span, tags_to_spans


@dataclass(frozen=True)
class ConfusionMatrix:
    """Label-pair counts: ``counts[i][j]`` items of true ``labels[i]`` predicted as ``labels[j]``."""

    labels: tuple[str, ...]
    counts: list[list[int]]

    def row_normalized(self) -> list[list[float]]:
        """Each row over its total: the diagonal is per-label recall; an all-zero row stays zeros."""
        return [[_ratio(cell, sum(row)) for cell in row] for row in self.counts]

    def column_normalized(self) -> list[list[float]]:
        """Each column over its total: the diagonal is per-label precision; an all-zero column stays zeros."""
        totals = [sum(column) for column in zip(*self.counts, strict=True)]
        return [[_ratio(cell, total) for cell, total in zip(row, totals, strict=True)] for row in self.counts]

    def to_json(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "counts": [list(row) for row in self.counts],
            "row_normalized": self.row_normalized(),
            "column_normalized": self.column_normalized(),
        }

    def to_csv(self) -> str:
        """Counts with a header row of predicted labels and the true label first in each row."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["true\\predicted", *self.labels])
        for label, row in zip(self.labels, self.counts, strict=True):
            writer.writerow([label, *row])
        return buffer.getvalue()


def _count_pairs(labels: Sequence[str], pairs: Iterable[tuple[str, str]]) -> ConfusionMatrix:
    index = {label: position for position, label in enumerate(labels)}
    counts = [[0] * len(labels) for _ in labels]
    for true, predicted in pairs:
        for label in (true, predicted):
            if label not in index:
                raise LabelError(f"label {label!r} is not in the matrix labels ({', '.join(labels)})")
        counts[index[true]][index[predicted]] += 1
    return ConfusionMatrix(tuple(labels), counts)


def word_confusion(gold: Tags, pred: Tags, labels: Sequence[str] | None = None) -> ConfusionMatrix:
    """Word-level tag confusion; labels default to ``LABEL_ORDER`` over gold and predicted tags."""
    check_shapes(gold, pred)
    order = tuple(labels) if labels is not None else label_order(gold, pred)
    pairs = (
        (g, p)
        for gold_tags, pred_tags in zip(gold, pred, strict=True)
        for g, p in zip(gold_tags, pred_tags, strict=True)
    )
    return _count_pairs(order, pairs)


# ---------------------------------------------------------------- span outcomes

SPAN_OUTCOMES = ("matched", "wrong_type", "wrong_boundary", "wrong_both", "missed", "spurious")


def _partner(gold: Span, preds: Sequence[Span]) -> Span | None:
    """The predicted span that answers ``gold``: same boundaries, else the largest overlap (first wins)."""
    best, best_overlap = None, 0
    for pred in preds:
        if (pred.start, pred.end) == (gold.start, gold.end):
            return pred
        overlap = min(pred.end, gold.end) - max(pred.start, gold.start)
        if overlap > best_overlap:
            best, best_overlap = pred, overlap
    return best


def _outcome(gold: Span, partner: Span | None) -> str:
    if partner is None:
        return "missed"
    same_bounds = (partner.start, partner.end) == (gold.start, gold.end)
    if partner.label == gold.label:
        return "matched" if same_bounds else "wrong_boundary"
    return "wrong_type" if same_bounds else "wrong_both"


def _span_pairs(gold: Tags, pred: Tags) -> Iterator[tuple[str, str, str]]:
    """(outcome, gold type, predicted type) per gold span, then per spurious predicted span."""
    for gold_tags, pred_tags in zip(gold, pred, strict=True):
        golds, preds = tags_to_spans(gold_tags), tags_to_spans(pred_tags)
        for span in golds:
            partner = _partner(span, preds)
            yield _outcome(span, partner), span.label, partner.label if partner else NONE_TYPE
        for span in preds:
            if not any(overlaps(span, other) for other in golds):
                yield "spurious", NONE_TYPE, span.label


def span_type_confusion(gold: Tags, pred: Tags) -> ConfusionMatrix:
    """Entity-type confusion at span level, with a ``none`` row (spurious) and column (missed).

    Each gold span is paired with its partner prediction as in ``span_confusion``, so the
    diagonal counts spans whose type was right whatever their boundaries.
    """
    check_shapes(gold, pred)
    pairs = [(true, predicted) for _, true, predicted in _span_pairs(gold, pred)]
    types = sorted({kind for pair in pairs for kind in pair} - {NONE_TYPE})
    return _count_pairs([*types, NONE_TYPE], pairs)


def span_confusion(gold: Tags, pred: Tags) -> dict[str, Any]:
    """What happened to every entity, per type, and the span-level type confusion matrix.

    Each gold span gets one outcome from its partner prediction (same boundaries, else the
    predicted span with the largest overlap): ``matched`` (same type and boundaries),
    ``wrong_type`` (same boundaries), ``wrong_boundary`` (overlap, same type), ``wrong_both``,
    or ``missed`` (no overlapping prediction). A predicted span overlapping no gold span is
    ``spurious`` and counts under its predicted type. Predicted spans that overlap a gold span
    without being its partner (a gold entity split in two) are not counted again. So per type,
    the first five outcomes sum to that type's gold support.
    """
    check_shapes(gold, pred)
    per_type: dict[str, Counter[str]] = defaultdict(Counter)
    for outcome, true, predicted in _span_pairs(gold, pred):
        per_type[predicted if outcome == "spurious" else true][outcome] += 1
    totals = Counter[str]()
    for counts in per_type.values():
        totals.update(counts)
    return {
        "outcomes": list(SPAN_OUTCOMES),
        "per_type": {kind: {o: per_type[kind][o] for o in SPAN_OUTCOMES} for kind in sorted(per_type)},
        "totals": {outcome: totals[outcome] for outcome in SPAN_OUTCOMES},
        "type_confusion": span_type_confusion(gold, pred).to_json(),
    }
