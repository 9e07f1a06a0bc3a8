"""Harmonised label sets: renaming and dropping entity types as files are read, counted, never silent."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nertool.cli.commands import app
from nertool.cli.options import parse_label_map
from nertool.config import build_recipe
from nertool.data.harmonise import LabelChanges, TypeMap, drop_unknown_types, harmonise, map_tags
from nertool.data.readers import Sentence
from nertool.data.sources import load_corpus
from nertool.errors import ConfigError, LabelError
from nertool.labels import LabelMap, check_type_map, iob2_issues
from nertool.workflows.training_data import load_training_data

runner = CliRunner()

MISC_IN_THE_MIDDLE = ("B-PER", "I-PER", "B-MISC", "I-MISC", "I-MISC", "B-LOC", "O", "B-MISC")


def write_corpus(root: Path, language: str, splits: dict[str, list[list[tuple[str, str]]]]) -> Path:
    """``root/<language>/<split>.tsv`` from (token, tag) sentences."""
    folder = root / language
    folder.mkdir(parents=True, exist_ok=True)
    for split, sentences in splits.items():
        blocks = ["\n".join(f"{t}\t{g}" for t, g in sentence) for sentence in sentences]
        (folder / f"{split}.tsv").write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return root


def test_dropping_an_entity_in_the_middle_leaves_valid_iob2_and_counts_entities():
    tags, moved = map_tags(MISC_IN_THE_MIDDLE, {"MISC": "O"})
    assert tags == ("B-PER", "I-PER", "O", "O", "O", "B-LOC", "O", "O")
    assert iob2_issues(tags) == []
    assert moved == {("MISC", "O"): 2}  # two MISC entities, not five MISC words


def test_renaming_keeps_prefixes_and_adjacent_entities_apart():
    tags, moved = map_tags(("B-PERSON", "I-PERSON", "B-PER", "O"), {"PERSON": "PER", "MISC": "O"})
    assert tags == ("B-PER", "I-PER", "B-PER", "O")
    assert moved == {("PERSON", "PER"): 1}


def test_harmonise_counts_per_file_and_type():
    sentences = [Sentence(("a", "b", "c"), ("B-MISC", "O", "B-DATE")), Sentence(("d",), ("B-MISC",))]
    changes = LabelChanges()
    out = harmonise(sentences, TypeMap({"MISC": "O", "DATE": "O"}), file="x.tsv", changes=changes)
    assert [s.tags for s in out] == [("O", "O", "O"), ("O",)]
    assert changes.to_json() == [
        {"file": "x.tsv", "type": "MISC", "to": "O", "entities": 2, "rule": "label_map"},
        {"file": "x.tsv", "type": "DATE", "to": "O", "entities": 1, "rule": "label_map"},
    ]
    assert changes.dropped("x.tsv") == {"MISC": 2, "DATE": 1}


@pytest.mark.parametrize("target", ["B-", "per", "B-PER", ""])
def test_a_map_to_something_that_is_not_a_type_is_refused(target):
    with pytest.raises(LabelError, match="not an entity type"):
        check_type_map({"MISC": target})


def test_recipe_label_map_error_names_the_key():
    with pytest.raises(ConfigError, match=r"data\.label_map"):
        build_recipe({"data": {"label_map": {"MISC": "B-"}}})
    with pytest.raises(ConfigError, match=r"data\.eval_sources\[0\]\.label_map"):
        build_recipe(
            {"data": {"eval_sources": [{"source": "x", "languages": ["de"], "label_map": {"A": "o"}}]}}
        )


def test_load_corpus_applies_the_map_and_warns_about_a_type_no_file_has(tmp_path, caplog):
    root = write_corpus(tmp_path, "es", {"test": [[("Madrid", "B-LOC"), ("Euro", "B-MISC")]]})
    with caplog.at_level(logging.WARNING, logger="nertool"):
        corpus = load_corpus(str(root), ["es"], ["test"], type_map=TypeMap({"MISC": "O", "MSC": "O"}))
    assert corpus.get("es", "test")[0].tags == ("B-LOC", "O")
    assert corpus.changes.dropped() == {"MISC": 1}
    assert "data.label_map maps MSC" in caplog.text


def test_unknown_types_drop_counts_what_the_model_lacks():
    labels = LabelMap.from_tags(["B-PER", "B-LOC"])
    splits = {"de/test": [Sentence(("a", "b", "c"), ("B-PER", "B-ORG", "I-ORG"))]}
    changes = LabelChanges()
    kept = drop_unknown_types(splits, labels, files={"de/test": "t.tsv"}, changes=changes)
    assert kept["de/test"][0].tags == ("B-PER", "O", "O")
    assert changes.to_json() == [
        {"file": "t.tsv", "type": "ORG", "to": "O", "entities": 1, "rule": "unknown_types"}
    ]


def _recipe(root: Path, **data):
    base = {"source": str(root), "train_languages": ["de"], "eval_languages": ["de"]}
    return build_recipe({"seed": 1, "data": {**base, **data}})


@pytest.fixture
def misc_corpus(tmp_path):
    train = [[("Anna", "B-PER"), ("in", "O"), ("Rom", "B-LOC")], [("Euro", "B-MISC"), ("gut", "O")]]
    test = [[("Bonn", "B-LOC"), ("Dax", "B-DATE"), ("x", "B-MISC")]]
    return write_corpus(tmp_path / "corpus", "de", {"train": train, "validation": test, "test": test})


def test_training_data_map_and_unknown_types_land_in_the_manifest(misc_corpus):
    data = load_training_data(_recipe(misc_corpus, label_map={"MISC": "O"}, unknown_types="drop"))
    assert data.label_map.types == ["LOC", "PER"]  # MISC mapped away before the label set was built
    assert data.test["de"][0].tags == ("B-LOC", "O", "O")
    changes = {
        (c["file"].rsplit("/", 1)[-1], c["type"], c["rule"]): c["entities"]
        for c in data.manifest["label_changes"]
    }
    assert changes == {
        ("train.tsv", "MISC", "label_map"): 1,
        ("validation.tsv", "MISC", "label_map"): 1,
        ("test.tsv", "MISC", "label_map"): 1,
        ("validation.tsv", "DATE", "unknown_types"): 1,
        ("test.tsv", "DATE", "unknown_types"): 1,
    }


def test_unknown_types_error_is_todays_message_naming_the_file(misc_corpus):
    with pytest.raises(LabelError, match=r"test\.tsv|validation\.tsv") as raised:
        load_training_data(_recipe(misc_corpus, label_map={"MISC": "O"}))
    assert "B-DATE" in str(raised.value) and "unknown to the model" in str(raised.value)


def test_cli_label_map_parse():
    assert parse_label_map("MISC=O, DATE=O,PERSON=PER") == {"MISC": "O", "DATE": "O", "PERSON": "PER"}
    assert parse_label_map("") == {}


@pytest.mark.parametrize("spec", ["MISC", "MISC=", "=O", "MISC=b-per", "MISC=O,MISC=PER"])
def test_cli_bad_label_map_is_a_one_line_usage_error(spec, tmp_path):
    result = runner.invoke(app, ["evaluate", str(tmp_path), "--data", "sample", "--label-map", spec])
    assert result.exit_code == 2
    assert "--label-map" in result.output and "Traceback" not in result.output


def test_evaluate_with_label_map_and_unknown_drop_reports_the_counts(tiny_run, tmp_path):
    data = tmp_path / "misc.tsv"
    data.write_text("Berlin\tB-LOC\nist\tO\nschön\tB-MISC\nheute\tB-DATE\n", encoding="utf-8")
    report = tmp_path / "report"
    args = ["evaluate", str(tiny_run), "--data", str(data), "--split", "train", "-o", str(report)]
    result = runner.invoke(app, [*args, "--label-map", "MISC=O", "--unknown-types", "drop"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((report / "metrics.json").read_text())
    moved = {(c["type"], c["rule"]): c["entities"] for c in metrics["label_changes"]}
    assert moved == {("MISC", "label_map"): 1, ("DATE", "unknown_types"): 1}
    assert json.loads((report / "report.json").read_text())["label_changes"] == metrics["label_changes"]
    assert "## Harmonised labels" in (report / "report.md").read_text()
    refused = runner.invoke(app, [*args[:-2], "--label-map", "MISC=O"])
    assert refused.exit_code == 1 and "B-DATE" in refused.output
