"""How many training sentences to take from each language, and which ones.

Multilingual fine-tuning rarely uses every sentence of every language: the corpus is mixed on purpose,
either in fixed proportions (the Swiss mix of the Hugging Face NLP book: de .629 / fr .229 / it .084 /
en .059) or by exponential smoothing of the corpus sizes (XLM-R, mBERT), which up-weights the small
languages. These functions only compute counts and indices; reading the sentences is ``data.py``'s job.
Everything here is deterministic so that a run's ``data_manifest.json`` can be reproduced exactly.

Rounding everywhere is *largest remainder* (Hamilton's method): floors first, then the leftover units go
to the largest fractional parts, so counts always sum exactly to the requested total. When a language's
share exceeds what it has, it is capped and the excess is shared among the others in proportion to their
weights, so no count ever exceeds availability.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping
from fractions import Fraction
from typing import Literal

from nertool.errors import ConfigError

__all__ = [
    "choose_indices",
    "fraction_counts",
    "temperature_counts",
    "temperature_probs",
]

FractionMode = Literal["own", "total"]

# 0.29 * 100 is 28.999999999999996 in binary floating point; rounding the product to this many
# decimals before taking the floor makes ``int(frac * n)`` mean what the recipe author wrote.
_FLOAT_GUARD_DIGITS = 9


def fraction_counts(
    available: Mapping[str, int],
    fractions: Mapping[str, float],
    total: int | None = None,
    *,
    mode: FractionMode = "own",
) -> dict[str, int]:
    """Per-language sentence counts for a fixed-proportion mix such as the book's Swiss corpus.

    ``mode="own"`` (default) is what the book does: each language keeps ``floor(fraction * available)``
    sentences *of its own corpus*. Fractions are rates in [0, 1] and are not normalised (the book's Swiss
    fractions sum to 1.001; normalising them would change its published sizes 12580/4580/1680/1180).
    ``total`` must be ``None`` in this mode.

    ``mode="total"`` treats fractions as proportions of one overall total (normalised to sum to 1). With
    ``total=None`` it uses the largest total for which no language needs more sentences than it has;
    with a given total it distributes exactly that many, capping at availability and giving the excess to
    the others. Either way the counts sum exactly to the total.

    Only languages named in ``fractions`` appear in the result, in the order of ``fractions``.
    """
    _check_available(available)
    _check_fractions(available, fractions)
    if mode == "own":
        return _own_counts(available, fractions, total)
    if mode == "total":
        return _total_counts(available, fractions, total)
    raise ConfigError(f'unknown sampling mode "{mode}": use "own" (fraction of each corpus) or "total"')


def temperature_probs(available: Mapping[str, int], temperature: float) -> dict[str, float]:
    """Sampling probabilities p_i ∝ n_i^(1/T) (exponential smoothing as in mBERT and XLM-R).

    T = 1 samples in proportion to corpus size; larger T flattens towards uniform (``math.inf`` gives
    exactly uniform over the non-empty corpora); T < 1 sharpens towards the largest corpus. Computed in
    log space so that small T cannot overflow. Empty corpora get probability 0.
    """
    _check_available(available)
    if math.isnan(temperature) or temperature <= 0:
        raise ConfigError(f"sampling temperature must be > 0, got {temperature}: use 1 for proportional")
    logs = {lang: math.log(n) for lang, n in available.items() if n > 0}
    if not logs:
        raise ConfigError("every language has 0 training sentences: nothing to sample from")
    top = max(logs.values())
    weights = {
        lang: math.exp((logs[lang] - top) / temperature) if lang in logs else 0.0 for lang in available
    }
    norm = sum(weights.values())
    return {lang: w / norm for lang, w in weights.items()}


def temperature_counts(available: Mapping[str, int], temperature: float, total: int) -> dict[str, int]:
    """Exactly ``total`` sentences split by :func:`temperature_probs`, capped by availability.

    A language whose smoothed share exceeds its corpus contributes all it has; the excess goes to the
    other languages in proportion to their smoothed weights.
    """
    probs = temperature_probs(available, temperature)
    return _allocate(probs, available, _check_total(total, available, probs))


def choose_indices(n_available: int, n: int, seed: int, *, key: str) -> list[int]:
    """``n`` distinct sentence indices out of ``range(n_available)``, sorted ascending.

    The generator is seeded from ``(seed, key)`` through SHA-256, not Python's ``hash()`` (salted per
    process), so the same recipe picks the same sentences on every machine, and each language (``key``)
    gets an independent draw: adding a language to the mix does not change the others' sentences.
    Sorting keeps the corpus order, which makes manifests diff-able. ``n >= n_available`` returns all.
    """
    if n_available < 0 or n < 0:
        raise ConfigError(f'cannot choose {n} of {n_available} sentences for "{key}": counts must be >= 0')
    if n >= n_available:
        return list(range(n_available))
    rng = random.Random(_derived_seed(seed, key))
    return sorted(rng.sample(range(n_available), n))


def _derived_seed(seed: int, key: str) -> int:
    """A stable 64-bit seed for one (run seed, language) pair."""
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _own_counts(
    available: Mapping[str, int], fractions: Mapping[str, float], total: int | None
) -> dict[str, int]:
    """The book's rule: ``int(fraction * len(corpus))`` for each language separately."""
    if total is not None:
        raise ConfigError(
            'mode "own" takes a fraction of each language\'s own corpus and cannot meet a fixed total: '
            'leave the total unset or use mode "total"'
        )
    for lang, frac in fractions.items():
        if frac > 1:
            raise ConfigError(
                f'fraction for "{lang}" is {frac}, more than its whole corpus: use a value in [0, 1] '
                'or mode "total" for proportions of an overall total'
            )
    return {
        lang: math.floor(round(frac * available[lang], _FLOAT_GUARD_DIGITS))
        for lang, frac in fractions.items()
    }


def _total_counts(
    available: Mapping[str, int], fractions: Mapping[str, float], total: int | None
) -> dict[str, int]:
    """Distribute one overall total in proportion to the fractions (normalised by ``_allocate``)."""
    caps = {lang: available[lang] for lang in fractions}
    if total is None:
        total = _largest_feasible_total(fractions, caps)
    return _allocate(fractions, caps, _check_total(total, caps, fractions))


def _largest_feasible_total(weights: Mapping[str, float], caps: Mapping[str, int]) -> int:
    """The largest T such that every exact share ``T * w_i / sum(w)`` fits into its language's corpus."""
    norm = sum(Fraction(w) for w in weights.values())
    return min(math.floor(caps[lang] * norm / Fraction(w)) for lang, w in weights.items() if w > 0)


def _allocate(weights: Mapping[str, float], caps: Mapping[str, int], total: int) -> dict[str, int]:
    """Largest-remainder rounding of ``total`` by ``weights``, never above ``caps``.

    Exact rational arithmetic keeps the floors and the leftover consistent (no unit lost or doubled).
    Languages whose share reaches their cap are fixed at the cap, and the rest is re-shared among the
    others until no share exceeds its cap.
    """
    exact = {lang: Fraction(w) for lang, w in weights.items()}
    counts = dict.fromkeys(weights, 0)
    active = [lang for lang in weights if exact[lang] > 0 and caps[lang] > 0]
    remaining = total
    while active:
        norm = sum(exact[lang] for lang in active)
        shares = {lang: remaining * exact[lang] / norm for lang in active}
        full = [lang for lang in active if shares[lang] >= caps[lang]]
        if not full:
            counts.update(_round_shares(shares))
            break
        for lang in full:
            counts[lang] = caps[lang]
            remaining -= caps[lang]
        active = [lang for lang in active if lang not in full]
    return counts


def _round_shares(shares: Mapping[str, Fraction]) -> dict[str, int]:
    """Hamilton's method: floors, then one more unit to each of the largest remainders.

    Ties go to the language listed first, so the result depends only on the inputs' order.
    """
    floors = {lang: math.floor(s) for lang, s in shares.items()}
    leftover = int(sum(shares.values())) - sum(floors.values())
    order = sorted(shares, key=lambda lang: -(shares[lang] - floors[lang]))
    for lang in order[:leftover]:
        floors[lang] += 1
    return floors


def _check_total(total: int, caps: Mapping[str, int], weights: Mapping[str, float]) -> int:
    """The total must be reachable by the languages that have a positive weight."""
    reachable = sum(caps[lang] for lang, w in weights.items() if w > 0)
    if total < 0 or total > reachable:
        raise ConfigError(
            f"cannot sample {total} sentences: the weighted languages hold {reachable} in all; "
            f"ask for a total between 0 and {reachable}"
        )
    return total


def _check_available(available: Mapping[str, int]) -> None:
    """Corpus sizes must be known and non-negative."""
    if not available:
        raise ConfigError("no training languages given: list at least one in data.train_languages")
    for lang, n in available.items():
        if n < 0:
            raise ConfigError(f'corpus size for "{lang}" is {n}: sizes must be >= 0')


def _check_fractions(available: Mapping[str, int], fractions: Mapping[str, float]) -> None:
    """Fractions must name known languages, be finite and non-negative, and not all be zero."""
    for lang, frac in fractions.items():
        if lang not in available:
            known = ", ".join(available)
            raise ConfigError(
                f'data.fractions names "{lang}", which is not a training language ({known}): '
                "add it to data.train_languages or remove it from data.fractions"
            )
        if not math.isfinite(frac) or frac < 0:
            raise ConfigError(f'data.fractions["{lang}"] is {frac}: fractions must be finite and >= 0')
    if not any(frac > 0 for frac in fractions.values()):
        raise ConfigError("data.fractions are all zero: give at least one language a positive fraction")
