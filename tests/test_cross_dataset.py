"""Targets from several corpora: ``corpus:language`` table columns, eval and train sources, their counts."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from nertool.config import build_recipe, load_recipe
from nertool.errors import ConfigError
from nertool.transfer.render import to_csv, to_markdown
from nertool.transfer.report import target_label_changes
from nertool.transfer.table import Setting, build_table, column_language, expand_sources
from nertool.workflows.training_data import SAMPLE_DIR, load_training_data
from nertool.workflows.transfer import run_transfer

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["wikiann:de", "wikiann:fr", "conll2003:de", "masakhaner:swa"]


def write_corpus(root: Path, language: str, sentences: list[list[tuple[str, str]]], splits=("test",)) -> Path:
    """``root/<language>/<split>.tsv`` for each split, all holding ``sentences``."""
    folder = root / language
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n\n".join("\n".join(f"{t}\t{g}" for t, g in s) for s in sentences) + "\n"
    for split in splits:
        (folder / f"{split}.tsv").write_text(text, encoding="utf-8")
    return root


# ---------------------------------------------------------------- the table


def test_corpus_language_columns_means_zero_shot_and_a_missing_cell():
    settings = [Setting("de", ("de",)), Setting("de+fr", ("de", "fr"))]
    scores = {
        "de": {"wikiann:de": 0.8, "wikiann:fr": 0.4, "conll2003:de": 0.5, "masakhaner:swa": None},
        "de+fr": {"wikiann:de": 0.7, "wikiann:fr": 0.6, "conll2003:de": 0.45, "masakhaner:swa": 0.2},
    }
    table = build_table(scores, settings, COLUMNS)
    de, both = table.row("de"), table.row("de+fr")
    assert table.eval_languages == tuple(COLUMNS)
    assert de.mean == pytest.approx((0.8 + 0.4 + 0.5) / 3)  # the missing swa cell is left out
    assert de.zero_shot_mean == pytest.approx(0.4)  # conll2003:de is German: not zero-shot for de
    assert both.zero_shot_mean == pytest.approx(0.2)
    assert de.trained_on("conll2003:de") and not de.trained_on("wikiann:fr")
    markdown = to_markdown(table)
    assert "| train \\ test | wikiann:de | wikiann:fr | conll2003:de | masakhaner:swa |" in markdown
    assert "| de | 0.800 | 0.400 | 0.500 | – |" in markdown
    assert to_csv(table).splitlines()[0].startswith("setting,wikiann:de,wikiann:fr,conll2003:de")


def test_each_row_fills_a_column_from_the_model_of_its_language():
    settings = expand_sources([["de"], "each"], ["de", "fr"])
    scores = {
        "de": {"wikiann:fr": 0.3, "conll2003:de": 0.5},
        "each:de": {"wikiann:fr": 0.2, "conll2003:de": 0.6},
        "each:fr": {"wikiann:fr": 0.7, "conll2003:de": 0.1},
    }
    table = build_table(scores, settings, ["wikiann:fr", "conll2003:de"])
    assert table.row("each").scores == (0.7, 0.6)
    assert table.row("de").gaps == pytest.approx((0.4, 0.1))


@pytest.mark.parametrize("bad", [["wikiann:de", "wikiann:de"], ["wiki ann:de"], [":de"], ["wikiann:"]])
def test_bad_columns_are_config_errors(bad):
    with pytest.raises(ConfigError):
        build_table({}, [Setting("de", ("de",))], bad)


def test_column_language():
    assert column_language("conll2003:de") == "de" and column_language("fr") == "fr"


def test_recipe_columns_are_named_after_the_source_folder_or_name():
    recipe = build_recipe(
        {
            "data": {
                "eval_sources": [
                    {"source": "/data/wikiann/", "languages": ["de", "fr"]},
                    {"source": "hub:org/conll2003:x", "languages": ["en"]},
                    {"source": "/data/masakhaner", "languages": ["swa"], "name": "masakha"},
                ]
            }
        }
    )
    assert recipe.eval_columns == ["wikiann:de", "wikiann:fr", "conll2003:en", "masakha:swa"]
    assert build_recipe({"data": {"eval_languages": ["de", "fr"]}}).eval_columns == ["de", "fr"]


def test_recipe_source_paths_resolve_against_the_recipe_folder(tmp_path):
    (tmp_path / "corpora" / "conll").mkdir(parents=True)
    recipe_file = tmp_path / "r.toml"
    recipe_file.write_text('[[data.eval_sources]]\nsource = "corpora/conll"\nlanguages = ["de"]\n')
    recipe = load_recipe(recipe_file)
    assert recipe.data.eval_sources is not None
    assert recipe.data.eval_sources[0].source == str((tmp_path / "corpora" / "conll").resolve())


# ---------------------------------------------------------------- reading several corpora

CONLL_LIKE = [
    [("Ana", "B-PER"), ("vive", "O"), ("en", "O"), ("Madrid", "B-LOC"), ("Euro", "B-MISC")],
    [("Copa", "B-MISC"), ("del", "I-MISC"), ("Rey", "I-MISC"), ("Real", "B-ORG")],
    [("Liga", "B-MISC"), ("sin", "O")],
]
MASAKHA_LIKE = [[("Juma", "B-PER"), ("leo", "B-DATE"), ("Nairobi", "B-LOC")]]


@pytest.fixture
def corpora(tmp_path):
    conll = write_corpus(tmp_path / "conll2002", "es", CONLL_LIKE, splits=("validation", "test"))
    masakha = write_corpus(tmp_path / "masakhaner", "swa", MASAKHA_LIKE)  # test only
    return conll, masakha


def _recipe(eval_sources, **data):
    base = {
        "source": "sample",
        "train_languages": ["de"],
        "max_train_samples": 20,
        "eval_sources": eval_sources,
    }
    return build_recipe({"seed": 3, "data": {**base, **data}})


def test_eval_sources_are_keyed_by_column_capped_and_counted_on_what_is_scored(corpora):
    conll, masakha = corpora
    recipe = _recipe(
        [
            {"source": str(conll), "languages": ["es"], "label_map": {"MISC": "O"}},
            {"source": str(masakha), "languages": ["swa"], "label_map": {"DATE": "O"}},
        ],
        max_eval_samples=2,
    )
    data = load_training_data(recipe)
    assert set(data.test) == {"de", "conll2002:es", "masakhaner:swa"}
    assert set(data.dev) == {"de", "conll2002:es"}  # masakhaner here has no validation split
    assert len(data.test["conll2002:es"]) == 2
    assert data.test["conll2002:es"][1].tags == ("O", "O", "O", "B-ORG")
    rows = target_label_changes([data.manifest])
    dropped = {(r["target"], r["split"], r["type"]): r["entities"] for r in rows}
    # three MISC entities in the file, two in the two sentences scored
    assert dropped == {
        ("conll2002:es", "test", "MISC"): 2,
        ("conll2002:es", "validation", "MISC"): 2,
        ("masakhaner:swa", "test", "DATE"): 1,
    }
    assert data.manifest["eval_sources"]["masakhaner:swa"] == {"test": str(masakha / "swa" / "test.tsv")}


def test_eval_source_type_unknown_to_the_model_is_an_error_unless_dropped(corpora):
    conll, _ = corpora
    with pytest.raises(Exception, match="B-MISC"):
        load_training_data(_recipe([{"source": str(conll), "languages": ["es"]}]))
    data = load_training_data(_recipe([{"source": str(conll), "languages": ["es"]}], unknown_types="drop"))
    assert [c["rule"] for c in data.manifest["label_changes"]] == ["unknown_types", "unknown_types"]


def test_train_sources_mix_corpora_with_different_label_sets(tmp_path):
    persons = [[("Anna", "B-PERSON"), ("in", "O"), ("Wien", "B-LOC")]] * 10
    misc = [[("Euro", "B-MISC"), ("Rom", "B-LOC"), ("Tom", "B-PER")]] * 6
    first = write_corpus(tmp_path / "people", "de", persons, splits=("train",))
    second = write_corpus(tmp_path / "kind", "it", misc, splits=("train",))
    recipe = _recipe(
        None,
        train_sources=[
            {"source": str(first), "languages": ["de"], "fraction": 0.5, "label_map": {"PERSON": "PER"}},
            {"source": str(second), "languages": ["it"], "label_map": {"MISC": "O"}},
        ],
    )
    data = load_training_data(recipe)
    assert {len(data.train["people:de"]), len(data.train["kind:it"])} == {5, 6}
    assert data.train["people:de"][0].tags == ("B-PER", "O", "B-LOC")
    assert data.label_map.types == ["LOC", "ORG", "PER"]  # sample's types; no PERSON, no MISC
    assert data.manifest["counts"]["people:de"] == 5
    assert len(data.manifest["train_sources"]["people:de"]["indices"]) == 5
    moved = {
        (Path(c["file"]).parent.name, c["type"], c["to"]): c["entities"]
        for c in data.manifest["label_changes"]
    }
    assert moved == {("de", "PERSON", "PER"): 5, ("it", "MISC", "O"): 6}


def test_shared_corpora_as_targets(shared_data):
    """The real folders: CoNLL MISC and MasakhaNER DATE dropped, counted; CoNLL-2003 de has no MISC."""
    sources = [
        {"source": str(shared_data / "conll2003"), "languages": ["de", "en"]},
        {"source": str(shared_data / "masakhaner"), "languages": ["swa"]},
    ]
    recipe = build_recipe(
        {
            "data": {
                "source": str(shared_data / "wikiann"),
                "train_languages": ["de"],
                "eval_languages": ["de"],
                "max_train_samples": 50,
                "max_eval_samples": 100,
                "label_map": {"MISC": "O", "DATE": "O"},
                "eval_sources": sources,
            }
        }
    )
    data = load_training_data(recipe)
    assert all(len(data.test[c]) == 100 for c in recipe.eval_columns)
    dropped = {
        (r["target"], r["type"]) for r in target_label_changes([data.manifest]) if r["split"] == "test"
    }
    assert ("conll2003:en", "MISC") in dropped and ("masakhaner:swa", "DATE") in dropped
    assert not any(target == "conll2003:de" for target, _ in dropped)


@pytest.mark.slow
def test_transfer_with_eval_sources_has_corpus_columns_and_reports_the_counts(corpora, tmp_path):
    conll, masakha = corpora
    recipe = build_recipe(
        {
            "seed": 7,
            "model": {"name": "scratch:tiny", "max_length": 64},
            "data": {
                "source": "sample",
                "eval_languages": ["de"],
                "max_train_samples": 32,
                "label_map": {"MISC": "O", "DATE": "O"},
                "eval_sources": [
                    {"source": str(SAMPLE_DIR), "languages": ["de", "fr"], "name": "sample"},
                    {"source": str(conll), "languages": ["es"]},
                    {"source": str(masakha), "languages": ["swa"]},
                ],
            },
            "train": {"epochs": 1, "batch_size": 8, "learning_rate": 5e-3, "warmup_ratio": 0.0},
            "transfer": {"sources": [["de"]]},
        }
    )
    result = run_transfer(recipe, tmp_path / "out")
    assert result.table.eval_languages == ("sample:de", "sample:fr", "conll2002:es", "masakhaner:swa")
    row = result.table.row("de")
    assert all(score is not None for score in row.scores)
    assert row.zero_shot_mean == pytest.approx(sum(row.scores[1:]) / 3)
    document = json.loads((tmp_path / "out" / "transfer.json").read_text())
    assert set(document["per_type"]["de"]) == set(result.table.eval_languages)
    targets = {
        (r["target"], r["split"], r["type"]): r["entities"] for r in document["label_changes_by_target"]
    }
    assert targets[("conll2002:es", "test", "MISC")] == 3 and targets[("masakhaner:swa", "test", "DATE")] == 1
    assert "Gold entities renamed or dropped" in (tmp_path / "out" / "transfer.md").read_text()


def test_shipped_cross_dataset_recipe_plans_columns():
    recipe = load_recipe(ROOT / "recipes" / "cross-dataset-local.toml")
    assert recipe.eval_columns[:3] == ["wikiann:de", "wikiann:fr", "wikiann:en"]
    assert {"conll2003:de", "conll2003:en", "conll2002:es", "conll2002:nl", "kind:it"} <= set(
        recipe.eval_columns
    )
    assert recipe.transfer.sources == [["de"], ["en"]]
    assert {"MISC", "DATE"} <= set(recipe.data.label_map or {})


def test_a_recipe_wide_map_is_checked_against_all_its_corpora_at_once(corpora, caplog):
    conll, masakha = corpora
    sources = [{"source": str(conll), "languages": ["es"]}, {"source": str(masakha), "languages": ["swa"]}]
    with caplog.at_level(logging.WARNING, logger="nertool"):
        load_training_data(_recipe(sources, label_map={"MISC": "O", "DATE": "O"}))
    assert "maps" not in caplog.text  # MISC is in one corpus, DATE in another: both are used
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="nertool"):
        load_training_data(_recipe(sources, label_map={"MISC": "O", "DATE": "O", "DTAE": "O"}))
    assert caplog.text.count("data.label_map maps DTAE") == 1


def test_model_card_reads_corpus_language_sets_as_their_language_and_corpus():
    from huggingface_hub import ModelCard

    from nertool.hub.card import CardFacts, card_text
    from nertool.records import EvaluationRecord

    block = {"precision": 0.5, "recall": 0.5, "f1": 0.5, "sentences": 10, "per_type": {}}
    record = EvaluationRecord.from_json(
        {
            "languages": {
                "de": {"test": block},
                "conll2003:de": {"test": block},
                "conll2003:en": {"test": block},
            }
        }
    )
    recipe = build_recipe(
        {
            "data": {
                "source": "/d/wikiann",
                "eval_sources": [{"source": "/d/conll2003", "languages": ["de", "en"]}],
            }
        }
    )
    text = card_text(CardFacts(recipe, "ner", "me/x", ["O", "B-PER", "I-PER"], record))
    card = ModelCard(text)
    assert card.data.language == ["de", "en"]
    assert {r.dataset_type for r in card.data.eval_results} == {"wikiann", "conll2003"}
    assert (
        "| conll2003:de | test |" in text
        and "| conll2003:de | test | 0.5000 | 0.5000 | 0.5000 | 10 | yes |" in text
    )
