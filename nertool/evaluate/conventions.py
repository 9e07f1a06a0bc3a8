"""Scoring conventions side by side: seqeval default (conlleval), strict IOB2 and partial match.

The four span conventions (``strict``, ``exact``, ``partial``, ``type``) follow nervaluate 1.x
(SemEval-2013 task 9.1 categories, one greedy matching per convention); ``scoring_table`` puts
the conventions in one table and marks where they disagree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from nertool.evaluate.scores import DISAGREEMENT, Tags, _clean, _f1, _ratio, check_shapes, score_block
from nertool.labels import Span, tags_to_spans

_CONVENTIONS = ("strict", "exact", "partial", "type")
_CATEGORIES = ("COR", "INC", "PAR", "MIS", "SPU")
# nervaluate's default ``min_overlap_percentage``: a gold span counts as overlapped when at least
# this share of its words (in percent) lie under the prediction.
MIN_OVERLAP_PERCENT = 1
Matcher = Callable[[Sequence[Span], Sequence[Span]], Counter[str]]


def overlaps(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end


def touches(pred: Span, gold: Span) -> bool:
    """nervaluate's "sufficient overlap": shared words cover ``MIN_OVERLAP_PERCENT`` of the gold span."""
    shared = min(pred.end, gold.end) - max(pred.start, gold.start)
    return shared > 0 and 100 * shared >= MIN_OVERLAP_PERCENT * (gold.end - gold.start)


def same_boundaries(a: Span, b: Span) -> bool:
    return (a.start, a.end) == (b.start, b.end)


def _first_hit_matcher(hit: Callable[[Span, Span], bool], near: str) -> Matcher:
    """``strict``, ``exact`` and ``partial``: each prediction, in order, against the unmatched golds.

    The first unmatched gold it ``hit``s makes it ``COR``; failing that, the first unmatched gold
    it touches makes it ``near`` (``INC`` or ``PAR``); failing both it is ``SPU``. The gold it
    matched is taken; golds never taken are ``MIS``.
    """

    def match(golds: Sequence[Span], preds: Sequence[Span]) -> Counter[str]:
        counts, taken = Counter[str](), set[int]()
        for pred in preds:
            free = [i for i in range(len(golds)) if i not in taken]
            exact = next((i for i in free if hit(pred, golds[i])), None)
            close = next((i for i in free if touches(pred, golds[i])), None)
            category, chosen = ("COR", exact) if exact is not None else (near, close)
            if chosen is None:
                category = "SPU"
            else:
                taken.add(chosen)
            counts[category] += 1
        counts["MIS"] += len(golds) - len(taken)
        return counts

    return match


def _distance(a: Span, b: Span) -> int:
    return abs(a.start - b.start) + abs(a.end - b.end)


def _type_matcher(golds: Sequence[Span], preds: Sequence[Span]) -> Counter[str]:
    """``type``: a prediction is ``COR`` against the touched unmatched gold of its type whose
    boundaries are nearest (first on a tie), else ``INC`` against the first touched gold of another
    type, else ``SPU``; golds never taken are ``MIS``."""
    counts, taken = Counter[str](), set[int]()
    for pred in preds:
        free = [i for i in range(len(golds)) if i not in taken and touches(pred, golds[i])]
        same = [i for i in free if golds[i].label == pred.label]
        other = [i for i in free if golds[i].label != pred.label]
        if same:
            counts["COR"] += 1
            taken.add(min(same, key=lambda i: _distance(pred, golds[i])))
        elif other:
            counts["INC"] += 1
            taken.add(other[0])
        else:
            counts["SPU"] += 1
    counts["MIS"] += len(golds) - len(taken)
    return counts


_MATCHERS: dict[str, Matcher] = {
    "strict": _first_hit_matcher(lambda p, g: p == g, "INC"),
    "exact": _first_hit_matcher(same_boundaries, "INC"),
    "partial": _first_hit_matcher(lambda p, g: touches(p, g) and same_boundaries(p, g), "PAR"),
    "type": _type_matcher,
}


def sentence_counts(gold_tags: Sequence[str], pred_tags: Sequence[str]) -> dict[str, Counter[str]]:
    """COR/INC/PAR/MIS/SPU of one sentence under each convention."""
    golds, preds = tags_to_spans(gold_tags), tags_to_spans(pred_tags)
    return {convention: _MATCHERS[convention](golds, preds) for convention in _CONVENTIONS}


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
    """Span scores under the four conventions, equal to nervaluate 1.x's ``overall`` results.

    Spans are read with ``tags_to_spans`` (an orphan ``I-`` starts an entity, as nervaluate's list
    loader reads it). Per sentence and per convention, each predicted span in order is matched
    against the gold spans no earlier prediction took; a gold span is *touched* when the
    prediction covers at least 1 % of its words (nervaluate's ``min_overlap_percentage``):

    =========  =============================  ====================================  =====
    convention COR                            INC / PAR                             else
    =========  =============================  ====================================  =====
    strict     same boundaries and type       INC: first touched gold               SPU
    exact      same boundaries, any type      INC: first touched gold               SPU
    partial    same boundaries, any type      PAR: first touched gold               SPU
    type       touched gold of its type with  INC: first touched gold of another    SPU
               the nearest boundaries         type
    =========  =============================  ====================================  =====

    The gold span matched is taken; every gold span never taken is MIS. POS = COR + INC + PAR +
    MIS (gold spans), ACT = COR + INC + PAR + SPU (predicted spans). ``partial``: precision =
    (COR + 0.5·PAR) / ACT, recall = (COR + 0.5·PAR) / POS; the others: precision = COR / ACT,
    recall = COR / POS (they have no PAR). A ratio with a zero denominator is 0.0. Returns
    {convention: {COR, INC, PAR, MIS, SPU, POS, ACT, precision, recall, f1}}.
    """
    check_shapes(gold, pred)
    counts = {convention: Counter[str]() for convention in _CONVENTIONS}
    for gold_tags, pred_tags in zip(gold, pred, strict=True):
        for convention, sentence in sentence_counts(gold_tags, pred_tags).items():
            counts[convention].update(sentence)
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
