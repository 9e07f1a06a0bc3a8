"""Transfer settings, the source × target table with its means and gaps, renderers, curves, plots."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest

from nertool.errors import ConfigError, NertoolError
from nertool.transfer.curve import crossover, curve_json
from nertool.transfer.plots import plot_curve, plot_table
from nertool.transfer.render import to_csv, to_json, to_markdown
from nertool.transfer.table import (
    Setting,
    build_table,
    each_name,
    expand_sources,
    group_trainings,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LANGS = ["de", "fr", "en"]
SOURCES: list = [["de"], "each", ["de", "fr"], "all"]
# Hand-made scores: the in-language English cell is missing (None), "all" was never scored on en.
SCORES: dict[str, dict[str, float | None]] = {
    "de": {"de": 0.80, "fr": 0.60, "en": 0.50},
    "each:de": {"de": 0.80},
    "each:fr": {"fr": 0.75},
    "each:en": {"en": None},
    "de+fr": {"de": 0.78, "fr": 0.74, "en": 0.52},
    "all": {"de": 0.79, "fr": 0.74},
}


@pytest.fixture
def table():
    return build_table(SCORES, expand_sources(SOURCES, LANGS), LANGS)


# ---------------------------------------------------------------- settings


def test_expand_sources_names_and_languages() -> None:
    settings = expand_sources(SOURCES, LANGS)
    assert settings == [
        Setting("de", ("de",)),
        Setting("each:de", ("de",)),
        Setting("each:fr", ("fr",)),
        Setting("each:en", ("en",)),
        Setting("de+fr", ("de", "fr")),
        Setting("all", ("de", "fr", "en")),
    ]
    assert [s.row for s in settings] == ["de", "each", "each", "each", "de+fr", "all"]
    assert each_name("it") == "each:it"


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        (["every"], 'unknown keyword "every"'),
        (["de"], 'unknown keyword "de"'),  # a language set must be a list
        ([[]], "non-empty list"),
        ([["de", "de"]], "repeats a language"),
        ([["de+fr"]], "not a language code"),
        ([["each"]], "not a language code"),
        ([["de"], ["de"]], "more than once"),
        (["all", "all"], "more than once"),
    ],
)
def test_expand_sources_errors(sources: list, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        expand_sources(sources, LANGS)


def test_expand_sources_rejects_empty_eval_languages() -> None:
    with pytest.raises(ConfigError, match="eval_languages"):
        expand_sources(["each"], [])


def test_group_trainings_finds_settings_that_share_a_model() -> None:
    settings = expand_sources([["de"], "each", ["fr", "de"], ["de", "fr"]], ["de", "fr"])
    assert group_trainings(settings) == {
        ("de",): ["de", "each:de"],
        ("fr",): ["each:fr"],
        ("de", "fr"): ["fr+de", "de+fr"],
    }


# ---------------------------------------------------------------- build_table


def test_rows_follow_the_recipe_with_each_collapsed(table) -> None:
    assert [row.name for row in table.rows] == ["de", "each", "de+fr", "all"]
    assert table.eval_languages == ("de", "fr", "en")
    assert table.selection == "source_dev"
    assert table.row("each").scores == (0.80, 0.75, None)
    assert table.row("all").scores == (0.79, 0.74, None)


@pytest.mark.parametrize(
    ("name", "mean", "zero_shot_mean", "gaps"),
    [
        ("de", (0.80 + 0.60 + 0.50) / 3, (0.60 + 0.50) / 2, (0.0, 0.15, None)),
        ("each", (0.80 + 0.75) / 2, None, (0.0, 0.0, None)),
        ("de+fr", (0.78 + 0.74 + 0.52) / 3, 0.52, (0.02, 0.01, None)),
        ("all", (0.79 + 0.74) / 2, None, (0.01, 0.01, None)),
    ],
)
def test_means_zero_shot_means_and_gaps(table, name: str, mean: float, zero_shot_mean, gaps: tuple) -> None:
    row = table.row(name)
    assert row.mean == pytest.approx(mean)
    assert row.zero_shot_mean == (None if zero_shot_mean is None else pytest.approx(zero_shot_mean))
    assert [None if g is None else pytest.approx(g) for g in gaps] == list(row.gaps)


def test_trained_on_marks_in_language_cells(table) -> None:
    assert table.row("de").trained_on("de") and not table.row("de").trained_on("fr")
    assert all(table.row("each").trained_on(lang) for lang in LANGS)


def test_without_each_there_are_no_gaps() -> None:
    settings = expand_sources([["de"]], LANGS)
    table = build_table({"de": {"de": 0.8, "fr": 0.6}}, settings, LANGS, selection="last")
    assert table.row("de").gaps == (None, None, None)
    assert not table.has_gaps
    assert table.row("de").scores == (0.8, 0.6, None)


def test_a_setting_without_scores_gives_an_empty_row() -> None:
    settings = expand_sources([["de"], ["fr"]], LANGS)
    table = build_table({"de": {"de": 0.8}}, settings, LANGS)
    row = table.row("fr")
    assert (row.scores, row.mean, row.zero_shot_mean) == ((None, None, None), None, None)


@pytest.mark.parametrize(
    ("scores", "kwargs", "error", "message"),
    [
        ({"xx": {"de": 0.5}}, {}, NertoolError, '"xx", which is not a transfer setting'),
        ({"de": {"it": 0.5}}, {}, NertoolError, '"it", which is not an evaluation language'),
        ({"de": {"de": math.nan}}, {}, NertoolError, "finite"),
        ({}, {"selection": "best"}, ConfigError, 'unknown model-selection strategy "best"'),
    ],
)
def test_build_table_errors(scores: dict, kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        build_table(scores, expand_sources(SOURCES, LANGS), LANGS, **kwargs)


def test_unknown_row_is_an_error(table) -> None:
    with pytest.raises(NertoolError, match='no row "it"'):
        table.row("it")


# ---------------------------------------------------------------- renderers


def test_markdown_contents(table) -> None:
    text = to_markdown(table)
    lines = text.splitlines()
    assert "source_dev" in lines[0]
    assert "| train \\ test | de | fr | en | mean | zero-shot mean |" in lines
    assert "| de | 0.800 | 0.600 | 0.500 | 0.633 | 0.550 |" in lines
    assert "| each | 0.800 | 0.750 | – | 0.775 | – |" in lines
    assert "| all | 0.790 | 0.740 | – | 0.765 | – |" in lines
    gap_part = text.split("Transfer gap")[1]
    assert "| de | +0.000 | +0.150 | – |" in gap_part.splitlines()
    assert "| de+fr | +0.020 | +0.010 | – |" in gap_part.splitlines()


def test_markdown_without_each_has_no_gap_table() -> None:
    settings = expand_sources([["de"]], LANGS)
    assert "Transfer gap" not in to_markdown(build_table({"de": {"de": 0.8}}, settings, LANGS))


def test_csv_contents(table) -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(table))))
    assert [r["setting"] for r in rows] == ["de", "each", "de+fr", "all"]
    de = rows[0]
    assert (float(de["de"]), float(de["fr"]), float(de["en"])) == (0.80, 0.60, 0.50)
    assert float(de["zero_shot_mean"]) == pytest.approx(0.55)
    assert float(de["gap_fr"]) == pytest.approx(0.15)
    assert de["gap_en"] == ""
    assert rows[1]["en"] == "" and rows[1]["zero_shot_mean"] == ""
    assert {r["selection"] for r in rows} == {"source_dev"}


def test_json_round_trips_with_per_type_and_other_selections(table) -> None:
    settings = expand_sources(SOURCES, LANGS)
    oracle = build_table(SCORES, settings, LANGS, selection="target_dev")
    per_type = {"de": {"fr": {"PER": {"f1": 0.7, "support": 10}}}}
    data = json.loads(json.dumps(to_json(table, per_type=per_type, by_selection={"target_dev": oracle})))
    assert data["selection"] == "source_dev"
    assert "XTREME" in data["selection_description"]
    assert data["eval_languages"] == LANGS
    each = data["rows"][1]
    assert each["name"] == "each" and each["in_language"] is True
    assert each["scores"] == {"de": 0.80, "fr": 0.75, "en": None}
    assert data["rows"][0]["gap"]["fr"] == pytest.approx(0.15)
    assert data["per_type"] == per_type
    assert [r["name"] for r in data["by_selection"]["target_dev"]["rows"]] == ["de", "each", "de+fr", "all"]


def test_json_without_extras_and_mislabelled_selection(table) -> None:
    data = to_json(table)
    assert "per_type" not in data and "by_selection" not in data
    with pytest.raises(NertoolError, match='filed under "last"'):
        to_json(table, by_selection={"last": table})


def test_plot_table_writes_a_png(table, tmp_path: Path) -> None:
    path = plot_table(table, tmp_path / "sub" / "transfer.png")
    assert path.read_bytes()[:8] == PNG_MAGIC


# ---------------------------------------------------------------- sample-size curves

SIZES = [100, 1000, 10_000]
F1S = [0.2, 0.4, 0.8]


@pytest.mark.parametrize(
    ("sizes", "f1s", "zero_shot", "expected"),
    [
        (SIZES, F1S, 0.6, math.sqrt(1000 * 10_000)),  # halfway in log(n) between 1000 and 10000
        (SIZES, F1S, 0.3, math.sqrt(100 * 1000)),
        (SIZES, F1S, 0.4, 1000.0),  # reached exactly at a measured size
        (SIZES, F1S, 0.1, 100.0),  # already above at the smallest size
        (SIZES, F1S, 0.2, 100.0),
        (SIZES, F1S, 0.9, None),  # never reached
        ([100, 1000, 10_000, 100_000], [0.2, 0.7, 0.5, 0.9], 0.6, 10 ** (2 + 0.8)),  # first crossing
        ([500], [0.3], 0.5, None),
    ],
)
def test_crossover(sizes: list, f1s: list, zero_shot: float, expected: float | None) -> None:
    result = crossover(sizes, f1s, zero_shot)
    assert result == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(
    ("sizes", "f1s", "message"),
    [
        ([100, 1000], [0.1], "one F1 per size"),
        ([], [], "one F1 per size"),
        ([1000, 100], [0.1, 0.2], "strictly increasing"),
        ([100, 100], [0.1, 0.2], "strictly increasing"),
        ([0, 100], [0.1, 0.2], "positive"),
    ],
)
def test_crossover_errors(sizes: list, f1s: list, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        crossover(sizes, f1s, 0.5)


def test_curve_json() -> None:
    data = json.loads(json.dumps(curve_json(SIZES, F1S, 0.6, target_lang="fr", source_name="de")))
    assert data["target_language"] == "fr" and data["source"] == "de"
    assert data["zero_shot_f1"] == 0.6
    assert data["points"] == [{"train_sentences": n, "f1": f} for n, f in zip(SIZES, F1S, strict=True)]
    assert data["crossover"] == pytest.approx(math.sqrt(1e7))


@pytest.mark.parametrize("cross", [math.sqrt(1e7), None])
def test_plot_curve_writes_a_png(tmp_path: Path, cross: float | None) -> None:
    path = plot_curve(
        SIZES, F1S, 0.6, crossover=cross, path=tmp_path / "curve.png", target_lang="fr", source_name="de"
    )
    assert path.read_bytes()[:8] == PNG_MAGIC
