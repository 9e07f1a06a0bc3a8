"""Scoring conventions side by side: seqeval default (conlleval), strict IOB2 and partial match.

Partial match follows SemEval-2013 task 9 / nervaluate scenarios over spans; ``scoring_table``
puts the conventions in one table and marks where they disagree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from nertool.evaluate.scores import DISAGREEMENT, Tags, _clean, _f1, _ratio, check_shapes, score_block
from nertool.labels import Span, tags_to_spans

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


def overlaps(a: Span, b: Span) -> bool:
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
        if overlaps(gold, pred) and gold not in taken:
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
