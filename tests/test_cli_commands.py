"""Each command with its workflow replaced by a stub: a command line in, the exact call out.

No model is loaded and nothing is trained: these check only that a command parses its options
and hands them, by keyword, to the one workflow function it calls (and renders what comes back).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from nertool.cli import render
from nertool.cli.commands import app
from nertool.config import load_recipe
from nertool.records import Comparison, EvaluationRecord, InspectionReport

runner = CliRunner()
RECIPES = Path(__file__).resolve().parents[1] / "recipes"
TRAIN_TOML = """seed = 7
[model]
name = "scratch:tiny"
[data]
source = "sample"
eval_languages = ["de"]
"""
RECORD = EvaluationRecord.from_json({"languages": {"de": {"test": {"f1": 0.5, "sentences": 3}}}})


@dataclass
class Stub:
    """Stands in for a workflow function: records its one call and returns ``result``."""

    result: Any = None
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((args, kwargs))
        return self.result

    @property
    def call(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        assert len(self.calls) == 1, self.calls
        return self.calls[0]


@pytest.fixture(autouse=True)
def quiet_render(monkeypatch):
    """Rendering is not under test here: every print function is a no-op."""
    for name in ("print_metrics", "print_seed_metrics", "print_comparison", "print_inspection"):
        monkeypatch.setattr(render, name, lambda *args, **kwargs: None)
    monkeypatch.setattr(render, "print_transfer", lambda *args, **kwargs: None)
    monkeypatch.setattr(render, "print_pretrain", lambda *args, **kwargs: None)


def invoke(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output


@pytest.fixture
def recipe_file(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TRAIN_TOML, encoding="utf-8")
    return path


def test_train(monkeypatch, recipe_file, tmp_path):
    stub = Stub(SimpleNamespace(metrics=RECORD.to_json()))
    monkeypatch.setattr("nertool.workflows.jobs.train_job", stub)
    out = tmp_path / "run"
    invoke(["train", str(recipe_file), "-o", str(out), "--set", "train.epochs=2", "--resume"])
    args, kwargs = stub.call
    assert args == (load_recipe(recipe_file, ["train.epochs=2"]), out)
    assert isinstance(kwargs.pop("reporter"), render.ProgressReporter)
    assert kwargs == {"resume": True, "overwrite": False}


def test_train_default_folder_is_named_after_the_recipe(monkeypatch, recipe_file):
    stub = Stub(SimpleNamespace(metrics=RECORD.to_json()))
    monkeypatch.setattr("nertool.workflows.jobs.train_job", stub)
    invoke(["train", str(recipe_file), "--overwrite"])
    args, kwargs = stub.call
    assert args[1] == Path("runs") / "tiny" and kwargs["overwrite"] is True and kwargs["resume"] is False


def test_evaluate(monkeypatch, tmp_path):
    from nertool.evaluate.report import ReportOptions

    stub = Stub(SimpleNamespace(record=RECORD, report=tmp_path / "report.md"))
    monkeypatch.setattr("nertool.workflows.evaluate.evaluate_model", stub)
    invoke(
        [
            "evaluate", "runs/x", "--data", "sample", "--languages", "de, fr", "--split", "validation,test",
            "-o", str(tmp_path), "--format", "conll", "--strict-tags", "--bootstrap", "50", "--seed", "3",
            "--no-errors",
        ]
    )  # fmt: skip
    assert stub.call == (
        ("runs/x", "sample", ["de", "fr"]),
        {
            "splits": ["validation", "test"],
            "report_dir": tmp_path,
            "file_format": "conll",
            "strict_tags": True,
            "options": ReportOptions(bootstrap=50, seed=3, errors=False, report=True),
            "progress": None,  # no bar: the runner's stderr is not a terminal
            "label_map": {},
            "unknown_types": "error",
        },
    )


def test_evaluate_label_map_and_unknown_types(monkeypatch, tmp_path):
    stub = Stub(SimpleNamespace(record=RECORD, report=None))
    monkeypatch.setattr("nertool.workflows.evaluate.evaluate_model", stub)
    map_args = ["--label-map", "MISC=O,PERSON=PER", "--unknown-types", "drop"]
    invoke(["evaluate", "runs/x", "--data", "sample", *map_args])
    _, kwargs = stub.call
    assert kwargs["label_map"] == {"MISC": "O", "PERSON": "PER"} and kwargs["unknown_types"] == "drop"


def test_compare(monkeypatch, tmp_path):
    stub = Stub(Comparison("a", "b", "sample", "validation", 10, 1, {}))
    monkeypatch.setattr("nertool.workflows.evaluate.compare_models", stub)
    out = tmp_path / "c.json"
    invoke(
        [
            "compare", "a", "b", "--data", "sample", "--languages", "de", "--split", "validation",
            "--bootstrap", "10", "--seed", "1", "-o", str(out),
        ]
    )  # fmt: skip
    assert stub.call == (
        ("a", "b", "sample"),
        {
            "languages": ["de"],
            "split": "validation",
            "n": 10,
            "seed": 1,
            "output": out,
            "file_format": "auto",
        },
    )


def test_transfer(monkeypatch):
    stub = Stub(SimpleNamespace(table=SimpleNamespace(selection="source_dev")))
    monkeypatch.setattr("nertool.workflows.jobs.transfer_job", stub)
    monkeypatch.setattr("nertool.workflows.jobs.transfer_summary", lambda result: ([], []))
    recipe = RECIPES / "panx-transfer.toml"
    invoke(["transfer", str(recipe), "--keep-checkpoints", "--set", "train.epochs=1"])
    args, kwargs = stub.call
    assert args == (load_recipe(recipe, ["train.epochs=1"]), Path("runs") / "panx-transfer")
    assert isinstance(kwargs.pop("progress"), render.TransferProgress)
    assert kwargs == {"overwrite": False, "keep_checkpoints": True}


def test_transfer_folder_of_another_recipe_name_ends_in_transfer(monkeypatch, recipe_file):
    stub = Stub(SimpleNamespace(table=SimpleNamespace(selection="source_dev")))
    monkeypatch.setattr("nertool.workflows.jobs.transfer_job", stub)
    monkeypatch.setattr("nertool.workflows.jobs.transfer_summary", lambda result: ([], []))
    invoke(["transfer", str(recipe_file), "--overwrite"])
    args, kwargs = stub.call
    assert args[1] == Path("runs") / "tiny-transfer" and kwargs["overwrite"] is True


def test_predict(monkeypatch, tmp_path):
    stub = Stub(SimpleNamespace(units=2, entities=1, output=str(tmp_path / "out.jsonl")))
    monkeypatch.setattr("nertool.workflows.predict.predict_files", stub)
    out = str(tmp_path / "out.jsonl")
    invoke(
        [
            "predict", "runs/x", "a.txt", "b.txt", "-o", out, "--input-format", "text",
            "--output-format", "conll", "--doc-per-file", "--encoding", "latin-1", "--batch-size", "8",
            "--max-tokens", "512", "--device", "cpu", "--quantize", "--backend", "onnx", "--threads", "3",
        ]
    )  # fmt: skip
    args, kwargs = stub.call
    assert args == ("runs/x", ["a.txt", "b.txt"], out)
    assert callable(kwargs.pop("progress"))
    assert kwargs == {
        "device": "cpu",
        "quantize": True,
        "backend": "onnx",
        "threads": 3,
        "max_tokens": 512,
        "batch_size": 8,
        "input_format": "text",
        "output_format": "conll",
        "text_mode": "file",
        "encoding": "latin-1",
    }


def test_export(monkeypatch, tmp_path):
    result = SimpleNamespace(
        quantized=True,
        output=str(tmp_path / "o"),
        max_abs_logit_diff=1e-5,
        check_sentences=6,
        int8_tag_agreement=0.99,
    )
    stub = Stub(result)
    monkeypatch.setattr("nertool.workflows.export.export_model", stub)
    invoke(["export", "runs/x", "--format", "onnx", "-o", str(tmp_path / "o"), "--quantize", "--overwrite"])
    assert stub.call == (("runs/x", tmp_path / "o"), {"format": "onnx", "quantize": True, "overwrite": True})


def test_data_inspect(monkeypatch):
    stub = Stub(InspectionReport("sample", ()))
    monkeypatch.setattr("nertool.workflows.inspection.inspect_source", stub)
    invoke(["data", "inspect", "sample", "--languages", "de,fr", "--model", "runs/x", "--format", "conll"])
    assert stub.call == (("sample", ["de", "fr"], "runs/x"), {"file_format": "conll"})


def test_pretrain(monkeypatch, tmp_path):
    stub = Stub(SimpleNamespace(history=[]))
    monkeypatch.setattr("nertool.workflows.jobs.pretrain_job", stub)
    recipe = RECIPES / "pretrain-wikiann-cpu.toml"
    invoke(["pretrain", str(recipe), "-o", str(tmp_path / "p"), "--overwrite"])
    args, kwargs = stub.call
    assert args == (load_recipe(recipe), tmp_path / "p")
    assert isinstance(kwargs.pop("reporter"), render.PretrainProgress)
    assert kwargs == {"resume": False, "overwrite": True}


def test_demo(monkeypatch, tmp_path):
    stub = Stub(SimpleNamespace(metrics=RECORD.to_json()))
    monkeypatch.setattr("nertool.workflows.jobs.demo_job", stub)
    invoke(["demo", "-o", str(tmp_path / "demo")])
    args, kwargs = stub.call
    assert args == (tmp_path / "demo",)
    assert isinstance(kwargs.pop("reporter"), render.ProgressReporter) and kwargs == {}
