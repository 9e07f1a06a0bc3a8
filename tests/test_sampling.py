"""Per-language sampling: the book's Swiss mix, temperature smoothing, reproducible index choice."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nertool.data.sampling import choose_indices, fraction_counts, temperature_counts, temperature_probs
from nertool.errors import ConfigError

SWISS = {"de": 0.629, "fr": 0.229, "it": 0.084, "en": 0.059}
PANX_TRAIN = {"de": 20000, "fr": 20000, "it": 20000, "en": 20000}


# ---------------------------------------------------------------- fraction_counts, mode "own"


def test_swiss_mix_reproduces_the_books_training_sizes() -> None:
    assert fraction_counts(PANX_TRAIN, SWISS) == {"de": 12580, "fr": 4580, "it": 1680, "en": 1180}


@pytest.mark.parametrize(
    ("available", "fraction", "expected"),
    [
        (100, 0.29, 29),  # 0.29 * 100 == 28.999999999999996 in binary floating point
        (11, 0.5, 5),  # floor, as int(frac * len(ds)) in the book
        (7, 1.0, 7),
        (7, 0.0, 0),
        (0, 0.5, 0),
    ],
)
def test_own_mode_takes_the_floor_of_each_corpus_share(
    available: int, fraction: float, expected: int
) -> None:
    assert fraction_counts({"de": available, "fr": 10}, {"de": fraction, "fr": 1.0})["de"] == expected


def test_own_mode_reports_only_languages_with_a_fraction_in_their_order() -> None:
    counts = fraction_counts({"de": 10, "fr": 10, "it": 10}, {"it": 0.5, "de": 0.1})
    assert list(counts) == ["it", "de"]


def test_own_mode_rejects_a_fraction_above_one_and_a_fixed_total() -> None:
    with pytest.raises(ConfigError, match="more than its whole corpus"):
        fraction_counts({"de": 10}, {"de": 1.5})
    with pytest.raises(ConfigError, match='mode "total"'):
        fraction_counts({"de": 10}, {"de": 0.5}, total=3)


# ---------------------------------------------------------------- fraction_counts, mode "total"


def test_total_mode_normalises_fractions() -> None:
    available = {"de": 1000, "fr": 1000}
    assert fraction_counts(available, {"de": 2, "fr": 1}, total=300, mode="total") == {"de": 200, "fr": 100}
    assert fraction_counts(available, {"de": 0.4, "fr": 0.2}, total=300, mode="total") == {
        "de": 200,
        "fr": 100,
    }


def test_total_mode_sums_exactly_with_largest_remainder_and_first_listed_wins_ties() -> None:
    counts = fraction_counts({"a": 50, "b": 50, "c": 50}, {"a": 1, "b": 1, "c": 1}, total=10, mode="total")
    assert counts == {"a": 4, "b": 3, "c": 3}
    counts = fraction_counts(PANX_TRAIN, SWISS, total=1000, mode="total")
    assert sum(counts.values()) == 1000
    assert counts == {"de": 628, "fr": 229, "it": 84, "en": 59}


def test_total_mode_caps_at_availability_and_gives_the_excess_to_the_others() -> None:
    counts = fraction_counts({"de": 100, "fr": 20000}, {"de": 0.5, "fr": 0.5}, total=1000, mode="total")
    assert counts == {"de": 100, "fr": 900}


def test_total_mode_without_total_uses_the_largest_total_that_fits() -> None:
    counts = fraction_counts(PANX_TRAIN, SWISS, mode="total")
    # German is the binding language: 20000 / (0.629 / 1.001) = 31828.3...
    assert sum(counts.values()) == 31828
    assert all(counts[lang] <= PANX_TRAIN[lang] for lang in counts)
    assert counts == fraction_counts(PANX_TRAIN, SWISS, total=31828, mode="total")
    assert counts["de"] == 20000


@pytest.mark.parametrize(
    ("available", "fractions", "kwargs", "message"),
    [
        ({"de": 10}, {"de": -0.1}, {}, ">= 0"),
        ({"de": 10}, {"de": math.nan}, {}, "finite"),
        ({"de": 10}, {"xx": 0.5}, {}, 'names "xx"'),
        ({"de": 10, "fr": 5}, {"de": 0.0, "fr": 0.0}, {}, "all zero"),
        ({"de": -1}, {"de": 0.5}, {}, ">= 0"),
        ({}, {}, {}, "no training languages"),
        ({"de": 10}, {"de": 0.5}, {"mode": "sum"}, "unknown sampling mode"),
        ({"de": 10, "fr": 10}, {"de": 1, "fr": 1}, {"mode": "total", "total": 21}, "hold 20"),
        ({"de": 10, "fr": 10}, {"de": 1, "fr": 0}, {"mode": "total", "total": 11}, "hold 10"),
    ],
)
def test_fraction_counts_errors(available: dict, fractions: dict, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        fraction_counts(available, fractions, **kwargs)


# ---------------------------------------------------------------- temperature


def test_temperature_one_is_proportional() -> None:
    probs = temperature_probs({"a": 100, "b": 300, "c": 0}, 1.0)
    assert probs == pytest.approx({"a": 0.25, "b": 0.75, "c": 0.0})
    assert temperature_counts({"a": 100, "b": 300}, 1.0, 40) == {"a": 10, "b": 30}


def test_large_temperature_is_nearly_uniform_and_infinity_exactly() -> None:
    available = {"a": 100, "b": 10_000, "c": 1_000_000}
    assert temperature_probs(available, 1e6) == pytest.approx(dict.fromkeys(available, 1 / 3), abs=1e-4)
    assert temperature_probs(available, math.inf) == dict.fromkeys(available, 1 / 3)


def test_temperature_smoothing_moves_mass_from_large_to_small_languages() -> None:
    available = {"small": 1_000, "large": 100_000}
    smalls = [temperature_probs(available, t)["small"] for t in (0.5, 1.0, 2.0, 5.0)]
    assert smalls == sorted(smalls)
    assert temperature_probs(available, 0.001)["large"] == pytest.approx(1.0)  # no overflow


def test_temperature_probs_sum_to_one() -> None:
    probs = temperature_probs({"a": 7, "b": 13, "c": 1, "d": 0}, 3.3)
    assert sum(probs.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("total", [0, 1, 7, 149, 1000, 3000, 10_150])
def test_temperature_counts_sum_to_total_and_respect_caps(total: int) -> None:
    available = {"a": 100, "b": 10_000, "c": 50}
    counts = temperature_counts(available, 5.0, total)
    assert sum(counts.values()) == total
    assert all(0 <= counts[lang] <= available[lang] for lang in available)


def test_temperature_counts_redistribute_the_excess_of_capped_languages() -> None:
    # Nearly uniform shares of 1000 each, but a and c hold only 100 and 50.
    assert temperature_counts({"a": 100, "b": 10_000, "c": 50}, 100.0, 3000) == {"a": 100, "b": 2850, "c": 50}


@pytest.mark.parametrize(
    ("available", "temperature", "total", "message"),
    [
        ({"a": 10}, 0.0, 5, "> 0"),
        ({"a": 10}, -1.0, 5, "> 0"),
        ({"a": 0, "b": 0}, 1.0, 0, "0 training sentences"),
        ({"a": 10, "b": 5}, 1.0, 16, "hold 15"),
        ({"a": 10}, 1.0, -1, "between 0 and 10"),
    ],
)
def test_temperature_errors(available: dict, temperature: float, total: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        temperature_counts(available, temperature, total)


# ---------------------------------------------------------------- choose_indices


def test_choose_indices_is_reproducible_sorted_unique_and_in_range() -> None:
    first = choose_indices(1000, 100, seed=42, key="de")
    assert first == choose_indices(1000, 100, seed=42, key="de")
    assert first == sorted(first)
    assert len(set(first)) == 100
    assert all(0 <= i < 1000 for i in first)


def test_choose_indices_differs_by_key_and_by_seed() -> None:
    base = choose_indices(1000, 100, seed=42, key="de")
    assert base != choose_indices(1000, 100, seed=42, key="fr")
    assert base != choose_indices(1000, 100, seed=43, key="de")


@pytest.mark.parametrize(("n_available", "n"), [(5, 5), (5, 9), (0, 3), (0, 0)])
def test_choose_indices_returns_everything_when_asked_for_at_least_all(n_available: int, n: int) -> None:
    assert choose_indices(n_available, n, seed=0, key="de") == list(range(n_available))


def test_choose_indices_zero_and_negative() -> None:
    assert choose_indices(10, 0, seed=0, key="de") == []
    with pytest.raises(ConfigError, match=">= 0"):
        choose_indices(10, -1, seed=0, key="de")


def test_choose_indices_does_not_depend_on_the_process_hash_seed() -> None:
    code = "from nertool.data.sampling import choose_indices; print(choose_indices(10**6, 5, 7, key='de'))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[1],
        ).stdout
        for hash_seed in ("1", "2")
    }
    assert outputs == {str(choose_indices(10**6, 5, 7, key="de")) + "\n"}
