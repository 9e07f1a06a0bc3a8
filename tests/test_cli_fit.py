"""The command line fits its users: choices checked and completed, help that renders, a progress
bar only on a terminal, tables that are never cut in a pipe, ``--json`` for scripts.

Workflows are stubbed (as in ``test_cli_commands``) or, for ``evaluate``, only the model and its
forward pass are: no model is loaded and nothing is trained.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer
from rich.text import Text
from typer.testing import CliRunner

from nertool.cli import render
from nertool.cli.commands import app
from nertool.evaluate.scores import score_block
from nertool.evaluate.split import SplitEvaluation
from nertool.records import Comparison, EvaluationRecord, InspectionReport
from nertool.workflows import evaluate as evaluation
from nertool.workflows.pretrain import PretrainResult
from nertool.workflows.training_data import SAMPLE_DIR

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
RECORD = EvaluationRecord.from_json(
    {"languages": {"de": {"test": {"f1": 0.5, "strict_f1": 0.5, "sentences": 3}}}}
)
COMMANDS = [
    ["train"],
    ["evaluate"],
    ["demo"],
    ["predict"],
    ["compare"],
    ["transfer"],
    ["pretrain"],
    ["data", "inspect"],
]


def usage_error(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Invalid value" in result.output and "Traceback" not in result.output
    flat = " ".join(result.output.split())
    for word in words:
        assert word in flat, (word, result.output)


def nertool(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "nertool", *args], capture_output=True, text=True, env=environment, timeout=120
    )


@pytest.fixture
def no_model(monkeypatch):
    """Loading any model fails the test: a usage error must come before it."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr("nertool.predict.tagger.Tagger.load", refuse)
    monkeypatch.setattr("nertool.workflows.evaluate.load_trained_run", refuse)


# ---------------------------------------------------------------- 1. choices


@pytest.mark.parametrize(
    ("args", "option", "value"),
    [
        (["predict", "no/such/run", "x.txt", "--output-format", "xml"], "--output-format", "xml"),
        (["predict", "no/such/run", "x.txt", "--input-format", "xml"], "--input-format", "xml"),
        (["predict", "no/such/run", "x.txt", "--text-mode", "page"], "--text-mode", "page"),
        (["predict", "no/such/run", "x.txt", "--device", "tpu"], "--device", "tpu"),
        (["evaluate", "no/such/run", "--data", "sample", "--split", "dev,bogus"], "--split", "bogus"),
        (["compare", "a", "b", "--data", "sample", "--split", "testc"], "--split", "testc"),
        (["evaluate", "no/such/run", "--data", "sample", "--format", "xml"], "--format", "xml"),
    ],
)
def test_a_value_out_of_the_vocabulary_is_a_usage_error_before_any_model_loads(no_model, args, option, value):
    usage_error(runner.invoke(app, args), option, value)


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (["predict"], ["auto|text|conll|jsonl", "jsonl|conll|spans-tsv", "line|file|paragraph", "cuda:N"]),
        (["evaluate"], ["token_tag", "idx_token_tag", "train, validation (or dev", "test (or testb)"]),
        (["compare"], ["token_tag", "validation (or dev"]),
        (["data", "inspect"], ["token_tag"]),
    ],
)
def test_help_lists_the_choices(command, words):
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "250"})  # one line per option
    assert result.exit_code == 0, result.output
    for word in words:
        assert word in result.output, (word, result.output)


def test_split_aliases_reach_the_workflow_as_the_split_they_name(monkeypatch):
    calls = []
    monkeypatch.setattr("nertool.workflows.evaluate.evaluate_model", lambda *a, **k: calls.append(k) or None)
    monkeypatch.setattr(render, "print_metrics", lambda *a, **k: None)
    monkeypatch.setattr("nertool.workflows.evaluate.compare_models", lambda *a, **k: calls.append(k))
    monkeypatch.setattr(render, "print_comparison", lambda *a, **k: None)
    runner.invoke(app, ["evaluate", "m", "--data", "sample", "--split", "dev,testb,test"])
    runner.invoke(app, ["compare", "a", "b", "--data", "sample", "--split", "testa"])
    assert calls[0]["splits"] == ["validation", "test"] and calls[1]["split"] == "validation"


def completions(words: str) -> str:
    """What the shell is offered for the last (empty or partial) word of ``words`` (zsh protocol)."""
    result = nertool(env={"_NERTOOL_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": words})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_shell_completes_choices_splits_and_devices():
    assert all(
        v in completions("nertool predict m x --output-format ") for v in ("jsonl", "conll", "spans-tsv")
    )
    assert all(v in completions("nertool evaluate m --format ") for v in ("panx", "idx_token_tag"))
    offered = completions("nertool evaluate m --split test,va")
    assert "test,validation" in offered and "test,train" not in offered
    assert "cuda" in completions("nertool predict m x --device cu")


# ---------------------------------------------------------------- the split a source has


@pytest.fixture
def no_forward_pass(monkeypatch):
    """A trained run that is never loaded and a split "scored" as gold (no model runs)."""
    run = SimpleNamespace(model=None, tokenizer=None, label_map=None, label_strategy="first")
    monkeypatch.setattr("nertool.workflows.evaluate.load_trained_run", lambda path: run)

    def perfect(model, tokenizer, label_map, *, sentences, language, split, where=""):
        gold = tuple(tuple(s.tags) for s in sentences)
        return SplitEvaluation(language, split, tuple(sentences), gold, score_block(gold, gold))

    monkeypatch.setattr("nertool.workflows.evaluate.evaluate_split", perfect)


@pytest.fixture
def train_test_corpus(tmp_path):
    """A corpus folder whose languages have train and test, and no validation split."""
    for language in ("de", "fr"):
        (tmp_path / "corpus" / language).mkdir(parents=True)
        for split in ("train", "test"):
            shutil.copy(
                SAMPLE_DIR / language / f"{split}.tsv", tmp_path / "corpus" / language / f"{split}.tsv"
            )
    return tmp_path / "corpus"


def test_a_split_the_source_does_not_have_names_the_splits_it_has(no_forward_pass, train_test_corpus):
    result = runner.invoke(app, ["evaluate", "run", "--data", str(train_test_corpus), "--split", "test,dev"])
    assert result.exit_code == 1
    [line] = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert str(train_test_corpus) in line and "no validation split" in line and "it has: train, test" in line


def test_a_file_is_the_one_split_it_is_read_as(no_forward_pass):
    data = str(SAMPLE_DIR / "de" / "test.tsv")
    result = runner.invoke(app, ["compare", "a", "b", "--data", data, "--split", "validation"])
    assert result.exit_code == 0, result.output  # a file is whichever split is asked for
    result = runner.invoke(app, ["evaluate", "run", "--data", data, "--split", "validation,test"])
    assert (
        result.exit_code == 1 and "no test split" in result.output and "a file is one split" in result.output
    )


# ---------------------------------------------------------------- 2. completion


def test_completion_can_be_shown_and_installed(monkeypatch):
    listed = runner.invoke(app, ["--help"]).output
    assert "--install-completion" in listed and "--show-completion" in listed
    # Name the shell instead of detecting it from the parent process (sh under make, which typer refuses).
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    result = runner.invoke(app, ["--show-completion", "bash"])  # shows only: nothing is written
    assert result.exit_code == 0, result.output
    assert "complete" in result.output and "_COMPLETE" in result.output


# ---------------------------------------------------------------- 3. help


def all_help_texts() -> list[str]:
    """The help of the program, of every command and of every one of their parameters."""
    texts = []

    def walk(command) -> None:
        texts.append(command.help or "")
        texts.extend(getattr(param, "help", None) or "" for param in command.params)
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(typer.main.get_command(app))
    return [text for text in texts if text]


def test_every_help_text_reads_the_same_once_rendered():
    """Rich markup would eat a "[pretrain]"; RST backticks are for developers."""
    for help_text in all_help_texts():
        assert "``" not in help_text, help_text
        assert Text.from_markup(help_text).plain == help_text.replace("\\[", "["), help_text


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_command_help_renders_and_says_what_it_writes(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "``" not in result.output
    flat = " ".join(result.output.split())
    assert any(word in flat for word in ("Writes", "writes", "Prints")), flat


def test_pretrain_help_shows_its_section_and_the_program_help_is_for_users():
    assert "[pretrain]" in " ".join(runner.invoke(app, ["pretrain", "--help"]).output.split())
    top = " ".join(runner.invoke(app, ["--help"]).output.split())
    assert "``" not in top and "nertool trains and scores" in top and "Typer" not in top


# ---------------------------------------------------------------- 4. progress of evaluate


def test_evaluate_reports_progress_once_per_split_with_sentence_counts(no_forward_pass):
    events = []
    result = evaluation.evaluate_model(
        "run", str(SAMPLE_DIR), ["de", "fr"], splits=["validation", "test"], progress=events.append
    )
    sizes = [len(e.sentences) for e in result.evaluations]
    total = sum(sizes)
    assert [(e.stage, e.language, e.split, e.sentences) for e in events] == [
        ("scoring", "de", "validation", sizes[0]),
        ("scoring", "de", "test", sizes[1]),
        ("scoring", "fr", "validation", sizes[2]),
        ("scoring", "fr", "test", sizes[3]),
    ]
    assert [e.done for e in events] == [0, sizes[0], sum(sizes[:2]), sum(sizes[:3])]
    assert {e.total for e in events} == {total}


def test_the_loss_pass_reports_progress_too(no_forward_pass, monkeypatch, tmp_path):
    monkeypatch.setattr("nertool.workflows.evaluate.subword_losses", lambda *a, **k: [])
    monkeypatch.setattr("nertool.workflows.evaluate.write_evaluation_report", lambda *a, **k: None)
    events = []
    evaluation.evaluate_model(
        "run", str(SAMPLE_DIR), ["de"], splits=["test"], report_dir=tmp_path, progress=events.append
    )
    [scoring, losses, report] = events
    assert (scoring.stage, losses.stage, report.stage) == ("scoring", "losses", "report")
    assert losses.done == scoring.sentences and losses.total == 2 * scoring.sentences
    assert report.done == report.total == 2 * scoring.sentences


def test_no_progress_bar_off_a_terminal(no_forward_pass):
    result = runner.invoke(app, ["evaluate", "run", "--data", "sample", "--languages", "de"])
    assert result.exit_code == 0, result.output
    assert "scoring de" not in result.output and "\x1b[" not in result.output and "0:00" not in result.output
    assert "de" in result.output and "f1" in result.output


def test_the_progress_bar_follows_the_steps(capsys):
    with render.evaluation_progress(enabled=True) as on_step:
        assert on_step is not None
        on_step(evaluation.EvaluationStep("scoring", "de", "test", 10, 0, 20))
        on_step(evaluation.EvaluationStep("scoring", "fr", "test", 10, 10, 20))
    with render.evaluation_progress() as on_step:  # pytest's stderr is not a terminal
        assert on_step is None


# ---------------------------------------------------------------- 5. full-width tables


LONG = "be-tarask-classical-orthography"


def test_tables_are_not_cut_when_output_is_not_a_terminal(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    block = {"f1": 0.91234, "macro_f1": 0.9, "strict_f1": 0.9, "precision": 0.9, "recall": 0.9}
    block = {**block, "token_accuracy": 0.99, "sentences": 10000}
    record = EvaluationRecord.from_json({"languages": {LONG: {"validation": block}, "de": {"test": block}}})
    monkeypatch.setattr(
        "nertool.workflows.evaluate.evaluate_model",
        lambda *a, **k: SimpleNamespace(record=record, report=None),
    )
    result = runner.invoke(app, ["evaluate", "run", "--data", "sample"])
    assert result.exit_code == 0, result.output
    assert "10000" in result.output and LONG in result.output and "validation" in result.output
    for column in ("language", "macro_f1", "strict_f1", "precision", "recall", "token_acc", "sentences"):
        assert column in result.output
    assert "…" not in result.output


def test_inspection_keeps_long_entity_type_lists_whole(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    types = {f"TYPE{i}": 1000 + i for i in range(12)}
    row = {"language": LONG, "split": "train", "format": "token_tag", "sentences": 10000, "tokens": 123456}
    row = {**row, "entities": 20000, "o_share": 0.8, "entity_types": types}
    report = InspectionReport("sample", (row,))
    monkeypatch.setattr("nertool.workflows.inspection.inspect_source", lambda *a, **k: report)
    output = runner.invoke(app, ["data", "inspect", "sample"]).output
    assert "123456" in output and LONG in output and "TYPE11:1011" in output and "…" not in output


# ---------------------------------------------------------------- 6. --json


def stub(monkeypatch, target: str, result) -> None:
    monkeypatch.setattr(target, lambda *args, **kwargs: result)


def json_of(args: list[str]):
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def recipe_file(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text('[model]\nname = "scratch:tiny"\n[data]\nsource = "sample"\n', encoding="utf-8")
    return path


def test_json_of_train_and_demo_is_the_metrics_document(monkeypatch, recipe_file, tmp_path):
    stub(monkeypatch, "nertool.workflows.jobs.train_job", SimpleNamespace(metrics=RECORD.to_json()))
    assert json_of(["train", str(recipe_file), "-o", str(tmp_path / "run")]) == RECORD.to_json()
    stub(monkeypatch, "nertool.workflows.jobs.demo_job", SimpleNamespace(metrics=RECORD.to_json()))
    assert json_of(["demo", "-o", str(tmp_path / "demo")]) == RECORD.to_json()


def test_json_of_evaluate_compare_and_inspect_is_their_record(monkeypatch):
    stub(
        monkeypatch, "nertool.workflows.evaluate.evaluate_model", SimpleNamespace(record=RECORD, report=None)
    )
    assert json_of(["evaluate", "run", "--data", "sample"]) == RECORD.to_json()
    comparison = Comparison("a", "b", "sample", "test", 10, 0, {"de": {"test": {"delta": 0.1}}})
    stub(monkeypatch, "nertool.workflows.evaluate.compare_models", comparison)
    assert json_of(["compare", "a", "b", "--data", "sample"]) == comparison.to_json()
    report = InspectionReport("sample", ({"language": "de", "split": "test", "sentences": 3},))
    stub(monkeypatch, "nertool.workflows.inspection.inspect_source", report)
    assert json_of(["data", "inspect", "sample"]) == report.to_json()


def test_json_of_transfer_is_transfer_json(monkeypatch, tmp_path):
    document = {"selection": "source_dev", "rows": {"de": {"de": 0.9, "fr": 0.7}}}
    (tmp_path / "transfer.json").write_text(json.dumps(document), encoding="utf-8")
    stub(monkeypatch, "nertool.workflows.jobs.transfer_job", SimpleNamespace(out_dir=tmp_path))
    assert json_of(["transfer", str(RECIPES / "panx-transfer.toml"), "-o", str(tmp_path)]) == document


def test_json_of_pretrain_is_its_result(monkeypatch, tmp_path):
    history = [{"step": 10, "eval": {"heldout_loss": 2.5, "perplexity": 12.2}}]
    result = PretrainResult(tmp_path / "p", 10, history, {"languages": {"de": 5}})
    stub(monkeypatch, "nertool.workflows.jobs.pretrain_job", result)
    document = json_of(["pretrain", str(RECIPES / "pretrain-wikiann-cpu.toml"), "-o", str(tmp_path / "p")])
    assert document == {
        "run_dir": str(tmp_path / "p"),
        "steps": 10,
        "history": history,
        "manifest": result.manifest,
    }


# ---------------------------------------------------------------- 7. no empty columns


def evaluate_output(monkeypatch, block) -> str:
    record = EvaluationRecord.from_json({"languages": {"de": {"test": block}}})
    stub(
        monkeypatch, "nertool.workflows.evaluate.evaluate_model", SimpleNamespace(record=record, report=None)
    )
    result = runner.invoke(app, ["evaluate", "run", "--data", "sample"])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_interval_column_is_there_only_with_intervals(monkeypatch):
    block = {"f1": 0.5, "strict_f1": 0.5, "precision": 0.5, "recall": 0.5, "sentences": 3}
    assert "95% CI" not in evaluate_output(monkeypatch, block)
    with_ci = evaluate_output(monkeypatch, {**block, "f1_ci": {"low": 0.4, "high": 0.6, "n": 50}})
    assert "95% CI" in with_ci and "0.400–0.600" in with_ci
