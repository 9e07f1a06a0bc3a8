"""End to end on the bundled sample: train scratch:tiny, save, reload, same predictions; CLI paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from seqeval.metrics import f1_score
from seqeval.scheme import IOB2
from typer.testing import CliRunner

from nertool.cli.commands import app
from nertool.config import build_recipe, load_recipe
from nertool.model.build import load_trained
from nertool.model.inference import predict_sentences, tags_of
from nertool.predict.readers import entities_for, unit_from_tokens
from nertool.predict.tagger import Tagger
from nertool.workflows.evaluate import evaluate_model
from nertool.workflows.training_data import SAMPLE_DIR, load_training_data

runner = CliRunner()


@pytest.fixture(scope="module")
def trained_run(tiny_run, tiny_run_result):
    """The session's tiny run (see conftest) and what ``train_run`` returned for it."""
    return tiny_run, tiny_run_result


def test_run_folder_has_every_file(trained_run, tiny_run_recipe):
    run_dir, result = trained_run
    for name in (
        "config.toml",
        "metrics.json",
        "train_log.jsonl",
        "data_manifest.json",
        "model/config.json",
        "model/model.safetensors",
        "model/tokenizer.json",
    ):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["languages"]) == {"de", "fr"}
    block = metrics["languages"]["de"]["test"]
    assert {"precision", "recall", "f1", "strict_f1", "per_type", "sentences", "seqeval_mode"} <= set(block)
    assert block["sentences"] == 60  # the whole German test split
    manifest = json.loads((run_dir / "data_manifest.json").read_text())
    assert len(manifest["train_indices"]["de"]) == tiny_run_recipe.data.max_train_samples == 96
    assert result.metrics == metrics


def test_resolved_config_reloads_to_the_same_recipe(trained_run, tiny_run_recipe):
    run_dir, _ = trained_run
    assert load_recipe(run_dir / "config.toml") == tiny_run_recipe


def test_reload_gives_identical_predictions(trained_run, tiny_run_recipe, tmp_path):
    run_dir, _ = trained_run
    model, tokenizer, labels = load_trained(run_dir)
    sentences = [s.tokens for s in load_training_data(tiny_run_recipe).test["de"]]
    first = [tags_of(p, labels.names) for p in predict_sentences(model, tokenizer, sentences)]
    model.save_pretrained(tmp_path / "again")
    tokenizer.save_pretrained(tmp_path / "again")
    model2, tokenizer2, labels2 = load_trained(tmp_path / "again")
    second = [tags_of(p, labels2.names) for p in predict_sentences(model2, tokenizer2, sentences)]
    assert first == second
    assert all(len(t) == len(s) for t, s in zip(first, sentences, strict=True))


@pytest.mark.slow
def test_overfits_a_small_set():
    """A model must learn 16 sentences by heart: the loop, labels, alignment and the tagger agree.

    Judged on entities, not tokens (an all-O model already gets most tokens right): the tagger,
    given the training sentences' own tokens, returns exactly their gold entities.
    """
    recipe = build_recipe(
        {
            "seed": 3,
            "model": {"name": "scratch:tiny", "max_length": 64},
            "data": {"source": "sample", "train_languages": ["de"], "max_train_samples": 16},
            "train": {
                "epochs": 40,
                "batch_size": 8,
                "learning_rate": 3e-3,
                "warmup_ratio": 0.0,
                "select_on": "last",
            },
        }
    )
    data = load_training_data(recipe)
    from nertool.train.loop import Loop, LoopSettings
    from nertool.workflows.train import build_model, encode_training

    torch.manual_seed(0)
    model, tokenizer = build_model(recipe, data.label_map, data.train)
    features = encode_training(tokenizer, data.train["de"], data.label_map, max_length=64, strategy="first")
    settings = LoopSettings(epochs=40, batch_size=8, learning_rate=3e-3, warmup_ratio=0.0, seed=3)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        Loop(model, features, settings, Path(tmp)).run()
    model.eval()
    sentences = data.train["de"]
    units = [unit_from_tokens(s.tokens, "train", i) for i, s in enumerate(sentences, start=1)]
    tagged = Tagger(model, tokenizer, data.label_map).tag_units(units)
    gold = [list(s.tags) for s in sentences]
    predicted = [list(t.tags) for t in tagged]
    assert f1_score(gold, predicted, mode="strict", scheme=IOB2) == 1.0
    assert f1_score(gold, predicted) == 1.0
    gold_entities = [
        [(e.start, e.end, e.label, e.text) for e in entities_for(u, s.tags, [1.0] * len(s.tags))]
        for u, s in zip(units, sentences, strict=True)
    ]
    assert sum(map(len, gold_entities)) >= 20, "too few entities for the check to bite"
    assert [[(e.start, e.end, e.label, e.text) for e in t.entities] for t in tagged] == gold_entities


def test_evaluate_writes_report_matching_seqeval(trained_run, tmp_path):
    run_dir, _ = trained_run
    result = evaluate_model(str(run_dir), str(SAMPLE_DIR), ["it"], splits=["test"], report_dir=tmp_path)
    conll = (tmp_path / "predictions" / "it-test.conll").read_text().strip().split("\n\n")
    gold = [[line.split("\t")[1] for line in block.splitlines()] for block in conll]
    pred = [[line.split("\t")[2] for line in block.splitlines()] for block in conll]
    assert len(gold) == 40
    assert result.metrics["languages"]["it"]["test"]["f1"] == pytest.approx(f1_score(gold, pred))
    assert json.loads((tmp_path / "metrics.json").read_text()) == result.metrics


def test_cli_version_and_help():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and "nertool" in result.output
    assert runner.invoke(app, ["--help"]).exit_code == 0


@pytest.mark.slow
def test_cli_train_and_evaluate(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        '[model]\nname = "scratch:tiny"\nmax_length = 64\n[data]\nsource = "sample"\n'
        'max_train_samples = 32\neval_languages = ["de"]\n[train]\nepochs = 1\nbatch_size = 16\n'
    )
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(recipe), "-o", str(out), "--set", "train.learning_rate=0.001"])
    assert result.exit_code == 0, result.output
    assert (out / "metrics.json").is_file()
    assert "0.001" in (out / "config.toml").read_text()
    result = runner.invoke(
        app, ["evaluate", str(out), "--data", "sample", "--languages", "en", "-o", str(tmp_path / "rep")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "rep" / "predictions" / "en-test.conll").is_file()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "missing.toml"], "recipe not found"),
        (["evaluate", "no/such/run", "--data", "sample"], "not found"),
        (["data", "inspect", "no/such/folder"], "not found"),
    ],
)
def test_cli_errors_are_one_line_without_traceback(args, needle):
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert needle in result.output
    assert "Traceback" not in result.output


def test_cli_typo_in_recipe_names_key_and_file(tmp_path):
    recipe = tmp_path / "typo.toml"
    recipe.write_text("[train]\nepochz = 3\n")
    result = runner.invoke(app, ["train", str(recipe)])
    assert result.exit_code == 1
    assert "epochz" in result.output and "typo.toml" in result.output


def test_cli_inspect_sample():
    result = runner.invoke(app, ["data", "inspect", "sample", "--languages", "de,fr"])
    assert result.exit_code == 0, result.output
    assert "de" in result.output and "train" in result.output
