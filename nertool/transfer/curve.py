"""The book's "when is it worth annotating?" curve: F1 against n target sentences, and its crossover.

Pure functions over numbers (no files, no plots): ``crossover`` is where the in-language curve
first reaches the zero-shot line; ``curve_json`` is the record ``curve.json`` holds.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

from nertool.errors import ConfigError


def crossover(sizes: Sequence[int], f1s: Sequence[float], zero_shot: float) -> float | None:
    """Training-set size at which the in-language curve first reaches the zero-shot F1.

    Answers the book's question "how many target-language labels is zero-shot transfer worth?".
    Between the two bracketing points the curve is taken as linear in log(n), matching the log-x plot.
    Returns ``sizes[0]`` when the smallest size already reaches the zero-shot score (the true
    crossover is at or below it), and ``None`` when no size reaches it.
    """
    _check_curve(sizes, f1s)
    if f1s[0] >= zero_shot:
        return float(sizes[0])
    for i in range(1, len(sizes)):
        if f1s[i] >= zero_shot:
            t = (zero_shot - f1s[i - 1]) / (f1s[i] - f1s[i - 1])
            lo, hi = math.log(sizes[i - 1]), math.log(sizes[i])
            return math.exp(lo + t * (hi - lo))
    return None


def _check_curve(sizes: Sequence[int], f1s: Sequence[float]) -> None:
    if not sizes or len(sizes) != len(f1s):
        raise ConfigError(
            f"a sample-size curve needs one F1 per size; got {len(sizes)} sizes and {len(f1s)} F1s"
        )
    if any(n <= 0 for n in sizes) or any(b <= a for a, b in itertools.pairwise(sizes)):
        raise ConfigError(
            f"transfer.sample_sizes must be positive and strictly increasing, got {list(sizes)}: sort them"
        )


def curve_json(
    sizes: Sequence[int], f1s: Sequence[float], zero_shot: float, *, target_lang: str, source_name: str
) -> dict[str, Any]:
    """JSON-ready record of one sample-size curve against one zero-shot baseline."""
    return {
        "target_language": target_lang,
        "source": source_name,
        "zero_shot_f1": zero_shot,
        "points": [{"train_sentences": n, "f1": f} for n, f in zip(sizes, f1s, strict=True)],
        "crossover": crossover(sizes, f1s, zero_shot),
        "crossover_rule": "first size reaching the zero-shot F1, linear in log(n) between points; "
        "the smallest size if already reached there; null if never reached",
    }
