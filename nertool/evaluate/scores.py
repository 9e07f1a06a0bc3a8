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

import csv
import io
import math
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from nertool.errors import LabelError
from nertool.labels import OUTSIDE, Span, canonical_order, entity_type, tags_to_spans

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


# ---------------------------------------------------------------- nervaluate conventions

_CONVENTIONS = ("strict", "exact", "partial", "type")
_CATEGORIES = ("COR", "INC", "PAR", "MIS", "SPU")
# SemEval-2013 scenario -> category under (strict, exact, partial, type).
_SCENARIOS: dict[str, tuple[str, str, str, str]] = {
    "exact_match": ("COR", "COR", "COR", "COR"),
    "wrong_type_same_boundaries": ("INC", "COR", "COR", "INC"),
    "overlap_same_type": ("INC", "INC", "PAR", "COR"),
    "overlap_wrong_type": ("INC", "INC", "PAR", "INC"),
    "spurious": ("SPU", "SPU", "SPU", "SPU"),
    "missed": ("MIS", "MIS", "MIS", "MIS"),
}


def _overlaps(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end


def _pred_scenario(pred: Span, golds: Sequence[Span], taken: set[Span]) -> str:
    """nervaluate's greedy rule: exact match, else same boundaries, else first untaken overlap."""
    if pred in golds:
        taken.add(pred)
        return "exact_match"
    for gold in golds:
        if (gold.start, gold.end) == (pred.start, pred.end):
            taken.add(gold)
            return "wrong_type_same_boundaries"
        if _overlaps(gold, pred) and gold not in taken:
            taken.add(gold)
            return "overlap_same_type" if gold.label == pred.label else "overlap_wrong_type"
    return "spurious"


def sentence_scenarios(gold_tags: Sequence[str], pred_tags: Sequence[str]) -> list[str]:
    """The SemEval-2013 scenario of every predicted span, then ``missed`` for each untouched gold span."""
    golds, taken = tags_to_spans(gold_tags), set[Span]()
    scenarios = [_pred_scenario(pred, golds, taken) for pred in tags_to_spans(pred_tags)]
    return scenarios + ["missed"] * sum(gold not in taken for gold in golds)


def _convention_scores(counts: Counter[str], partial_credit: float) -> dict[str, float | int]:
    possible = counts["COR"] + counts["INC"] + counts["PAR"] + counts["MIS"]
    actual = counts["COR"] + counts["INC"] + counts["PAR"] + counts["SPU"]
    credit = counts["COR"] + partial_credit * counts["PAR"]
    precision, recall = _ratio(credit, actual), _ratio(credit, possible)
    return {
        **{c: counts[c] for c in _CATEGORIES},
        "POS": possible,
        "ACT": actual,
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
    }


def partial_scores(gold: Tags, pred: Tags) -> dict[str, dict[str, float | int]]:
    """Span scores under the four nervaluate / SemEval-2013 Task 9.1 conventions.

    Matching, per sentence, follows nervaluate's ``compute_metrics`` (versions before 1.0, with
    inclusive-end overlap): each predicted span, in order, is

    * an exact match (same boundaries and type) of a gold span -> ``exact_match``; else
    * the first gold span (in order) with the same boundaries but another type ->
      ``wrong_type_same_boundaries``; else
    * the first gold span it overlaps that no earlier prediction overlapped ->
      ``overlap_same_type`` or ``overlap_wrong_type``; else ``spurious``.

    Every gold span touched by no prediction is ``missed``. Categories per convention:

    ============================  ======  =====  =======  ====
    scenario                      strict  exact  partial  type
    ============================  ======  =====  =======  ====
    exact_match                   COR     COR    COR      COR
    wrong_type_same_boundaries    INC     COR    COR      INC
    overlap_same_type             INC     INC    PAR      COR
    overlap_wrong_type            INC     INC    PAR      INC
    spurious / missed             SPU     SPU    SPU      SPU  / MIS everywhere
    ============================  ======  =====  =======  ====

    POS = COR + INC + PAR + MIS (gold spans counted), ACT = COR + INC + PAR + SPU (predicted).
    ``partial``: precision = (COR + 0.5·PAR) / ACT, recall = (COR + 0.5·PAR) / POS; the others:
    precision = COR / ACT, recall = COR / POS (``type`` has no PAR). A ratio with a zero
    denominator is 0.0. Returns {convention: {COR, INC, PAR, MIS, SPU, POS, ACT, precision,
    recall, f1}}.
    """
    check_shapes(gold, pred)
    counts = {convention: Counter[str]() for convention in _CONVENTIONS}
    for gold_tags, pred_tags in zip(gold, pred, strict=True):
        for scenario in sentence_scenarios(gold_tags, pred_tags):
            for convention, category in zip(_CONVENTIONS, _SCENARIOS[scenario], strict=True):
                counts[convention][category] += 1
    return {c: _convention_scores(counts[c], 0.5 if c == "partial" else 0.0) for c in _CONVENTIONS}


def scoring_table(gold: Tags, pred: Tags) -> list[dict[str, Any]]:
    """One row per scoring convention, flagged where its F1 differs from the headline by > 0.005.

    A large gap between default and strict means many predicted (or gold) entities start with an
    orphan ``I-``; a large gap to partial means boundaries, not detection, are the problem.
    """
    block, partial = score_block(gold, pred), partial_scores(gold, pred)["partial"]
    rows = [
        ("default", "seqeval default (conlleval)", block["precision"], block["recall"], block["f1"]),
        (
            "strict",
            "seqeval strict IOB2",
            block["strict_precision"],
            block["strict_recall"],
            block["strict_f1"],
        ),
        ("partial", "partial match (SemEval-2013)", partial["precision"], partial["recall"], partial["f1"]),
    ]
    return [
        {
            "key": key,
            "convention": name,
            "precision": _clean(p),
            "recall": _clean(r),
            "f1": _clean(f),
            "disagrees": abs(_clean(f) - block["f1"]) > DISAGREEMENT,
        }
        for key, name, p, r, f in rows
    ]


# ---------------------------------------------------------------- confusion matrices


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


def label_order(*tag_sets: Tags) -> tuple[str, ...]:
    """``LABEL_ORDER`` over every type seen in any of ``tag_sets``."""
    types = {kind for tags in tag_sets for sentence in tags for tag in sentence if (kind := entity_type(tag))}
    return tuple(canonical_order(types))


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
            if not any(_overlaps(span, other) for other in golds):
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
