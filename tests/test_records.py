"""Typed records read today's files and write them back unchanged, key order included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nertool.config import build_recipe
from nertool.errors import DataError
from nertool.evaluate.report import seed_summary
from nertool.records import (
    Comparison,
    EvaluationRecord,
    InspectionReport,
    LanguageScores,
    load_trained_run,
    read_label_strategy,
)
from nertool.run_folder import RunFolder

FIXTURE = Path(__file__).parent / "data" / "metrics-v1.json"


def dumped(document: object) -> str:
    """The bytes ``files.write_json`` writes."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from nertool.workflows.train import train_run

    recipe = build_recipe(
        {
            "seed": 3,
            "model": {"name": "scratch:tiny", "max_length": 64, "label_strategy": "all"},
            "data": {"source": "sample", "eval_languages": ["de", "fr"], "max_train_samples": 32},
            "train": {"epochs": 1, "batch_size": 16, "learning_rate": 3e-3, "warmup_ratio": 0.0},
        }
    )
    folder = tmp_path_factory.mktemp("run")
    train_run(recipe, folder)
    return folder


def test_a_hand_written_old_metrics_file_is_read_field_by_field():
    text = FIXTURE.read_text(encoding="utf-8")
    record = EvaluationRecord.read(FIXTURE)
    assert list(record.languages) == ["de", "fr"]
    assert record.languages["de"].f1("test") == 0.6667
    assert record.block("de", "test")["f1_ci"]["n"] == 100
    assert record.block("fr", "validation") is None
    assert record.best_step == 12 and record.train_sentences == {"de": 64}
    assert (record.model, record.data) == ("runs/old", "sample")
    assert [(lang, split) for lang, split, _ in record.blocks()] == [
        ("de", "validation"),
        ("de", "test"),
        ("fr", "test"),
    ]
    assert record.to_json() == json.loads(text)
    assert list(record.to_json()) == list(json.loads(text))  # key order too


def test_metrics_written_by_a_training_run_round_trip_byte_for_byte(run_dir):
    text = RunFolder(run_dir).metrics.read_text(encoding="utf-8")
    record = EvaluationRecord.from_json(json.loads(text))
    assert record.to_json() == json.loads(text)
    assert dumped(record.to_json()) == text
    assert set(record.languages) == {"de", "fr"} and record.best_step >= 0


def test_metrics_written_by_evaluate_round_trip_byte_for_byte(run_dir, tmp_path):
    from nertool.evaluate.report import ReportOptions
    from nertool.workflows.evaluate import evaluate_model

    options = ReportOptions(bootstrap=20, errors=False, report=False)
    result = evaluate_model(
        str(run_dir), "sample", ["de"], splits=["test"], report_dir=tmp_path, options=options
    )
    text = RunFolder(tmp_path).metrics.read_text(encoding="utf-8")
    assert dumped(EvaluationRecord.from_json(json.loads(text)).to_json()) == text
    assert result.record == EvaluationRecord.read(RunFolder(tmp_path).metrics)
    assert "f1_ci" in result.record.block("de", "test")


def test_a_multi_seed_summary_round_trips():
    block = {"f1": 0.5, "strict_f1": 0.4, "precision": 0.5, "recall": 0.5, "sentences": 3}
    summary = seed_summary(
        {1: {"languages": {"de": {"test": block}}}, 2: {"languages": {"de": {"test": block}}}}
    )
    assert dumped(EvaluationRecord.from_json(summary).to_json()) == dumped(summary)


def test_comparison_round_trips_in_the_file_order(run_dir, tmp_path):
    from nertool.workflows.evaluate import compare_models

    out = tmp_path / "compare.json"
    result = compare_models(str(run_dir), str(run_dir), "sample", languages=["de"], n=20, output=out)
    text = out.read_text(encoding="utf-8")
    assert list(json.loads(text)) == ["model_a", "model_b", "data", "split", "n", "seed", "languages"]
    assert dumped(Comparison.from_json(json.loads(text)).to_json()) == text
    assert result.languages["de"]["test"]["delta"] == 0.0


def test_inspection_round_trips_with_and_without_the_audit():
    from nertool.workflows.inspection import inspect_source

    report = inspect_source("sample", ["de"])
    assert "alignment" not in report.to_json()
    assert InspectionReport.from_json(report.to_json()) == report
    audited = InspectionReport("x", ({"language": "de"},), ({"language": "de", "subwords_per_word": 1.5},))
    assert list(audited.to_json()) == ["source", "splits", "alignment"]
    assert InspectionReport.from_json(audited.to_json()) == audited


def test_a_trained_run_carries_its_label_strategy_and_recipe(run_dir):
    run = load_trained_run(run_dir)
    assert run.label_strategy == "all" and run.recipe is not None
    assert run.recipe.model.label_strategy == "all"
    assert run.label_map.names[0] == "O"
    bare = load_trained_run(RunFolder(run_dir).model)  # config.toml one level up is found too
    assert bare.label_strategy == "all"


def test_a_folder_without_a_readable_config_is_first(tmp_path):
    assert read_label_strategy(tmp_path) == "first"
    (tmp_path / "config.toml").write_text("not [ toml", encoding="utf-8")
    assert read_label_strategy(tmp_path) == "first"


def test_a_file_that_is_not_metrics_is_a_data_error(tmp_path):
    path = tmp_path / "metrics.json"
    for content in ("[1, 2]", '{"model": 1}', '{"languages": {"de": []}}', "{"):
        path.write_text(content, encoding="utf-8")
        with pytest.raises(DataError, match=r"metrics\.json"):
            EvaluationRecord.read(path)
    assert LanguageScores.from_json({"test": {"f1": 1.0}}).test == {"f1": 1.0}
