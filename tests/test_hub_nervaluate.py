"""Scoring parity: nertool's span conventions equal nervaluate 1.x's on random IOB2 data."""

from __future__ import annotations

import random
from functools import cache
from importlib.metadata import version

import pytest

from nertool.evaluate.conventions import partial_scores

nervaluate = pytest.importorskip("nervaluate")
if int(version("nervaluate").split(".")[0]) < 1:
    pytest.skip("needs nervaluate 1.x (its scenario rules changed in 1.0)", allow_module_level=True)

TYPES = ("PER", "ORG", "LOC")
# nertool's convention -> nervaluate's scenario, and its result fields per category.
SCENARIOS = {"strict": "strict", "exact": "exact", "partial": "partial", "type": "ent_type"}
FIELDS = {"COR": "correct", "INC": "incorrect", "PAR": "partial", "MIS": "missed", "SPU": "spurious"}


def random_iob2(rng: random.Random, length: int) -> list[str]:
    """A valid IOB2 sequence: an ``I-X`` only ever continues a ``B-X`` or ``I-X``."""
    tags: list[str] = []
    for _ in range(length):
        previous = tags[-1][2:] if tags and tags[-1] != "O" else None
        roll = rng.random()
        if previous is not None and roll < 0.35:
            tags.append(f"I-{previous}")
        elif roll < 0.7:
            tags.append("O")
        else:
            tags.append(f"B-{rng.choice(TYPES)}")
    return tags


@cache
def random_pairs(seed: int, count: int) -> list[tuple[list[str], list[str]]]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        length = rng.randint(1, 12)
        pairs.append((random_iob2(rng, length), random_iob2(rng, length)))
    return pairs


def nervaluate_overall(gold: list[list[str]], pred: list[list[str]]) -> dict[str, object]:
    return nervaluate.Evaluator(gold, pred, tags=list(TYPES), loader="list").evaluate()["overall"]


def assert_same(ours: dict[str, dict[str, float | int]], theirs: dict[str, object]) -> None:
    for convention, scenario in SCENARIOS.items():
        result = theirs[scenario]
        for category, field in FIELDS.items():
            assert ours[convention][category] == getattr(result, field), (convention, category)
        for key in ("precision", "recall", "f1"):
            assert ours[convention][key] == pytest.approx(getattr(result, key), abs=1e-9), (convention, key)


@pytest.mark.parametrize("index", range(500))
def test_each_random_sentence_scores_like_nervaluate(index: int) -> None:
    gold, pred = random_pairs(2024, 500)[index]
    assert_same(partial_scores([gold], [pred]), nervaluate_overall([gold], [pred]))


def test_a_random_corpus_scores_like_nervaluate() -> None:
    pairs = random_pairs(7, 500)
    gold, pred = [g for g, _ in pairs], [p for _, p in pairs]
    assert_same(partial_scores(gold, pred), nervaluate_overall(gold, pred))
