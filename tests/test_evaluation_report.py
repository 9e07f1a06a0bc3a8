"""Evaluation that explains: confusion matrices, imbalance, conventions, errors, intervals, seeds.

The session's scratch:tiny run (trained on the bundled German sample, see conftest) is
evaluated once with the full report; most tests read the written files and check them against
independent computations from the written predictions (plain counting, seqeval itself, the
model's own loss).
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from pathlib import Path

import pytest
import torch
from seqeval.metrics import f1_score
from seqeval.scheme import IOB2
from typer.testing import CliRunner

from nertool.cli.commands import app
from nertool.data.readers import Sentence
from nertool.evaluate.losses import IGNORED, subword_losses
from nertool.evaluate.report import (
    ReportOptions,
    comparison_document,
    seed_summary,
    with_confidence_intervals,
)
from nertool.model.align import build_features, word_pieces
from nertool.model.batching import collate
from nertool.model.build import load_trained
from nertool.records import read_label_strategy
from nertool.workflows.evaluate import evaluate_model

runner = CliRunner()
LANGUAGES = ("de", "fr")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tiny_run):
    """The session's tiny run (German training, German and French evaluation)."""
    return tiny_run


@pytest.fixture(scope="module")
def evaluated(run_dir, tmp_path_factory):
    report_dir = tmp_path_factory.mktemp("report")
    options = ReportOptions(bootstrap=300, seed=1)
    result = evaluate_model(
        str(run_dir), "sample", list(LANGUAGES), splits=["test"], report_dir=report_dir, options=options
    )
    return result, report_dir


def read_conll(path: Path) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    """(words, gold, predicted) per sentence of a ``token<TAB>gold<TAB>pred`` file."""
    blocks = [block.splitlines() for block in path.read_text(encoding="utf-8").strip().split("\n\n")]
    columns = [[line.split("\t") for line in block] for block in blocks]
    return tuple([[row[i] for row in sentence] for sentence in columns] for i in range(3))  # type: ignore[return-value]


def conll_of(report_dir: Path, language: str) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    return read_conll(report_dir / "predictions" / f"{language}-test.conll")


def test_the_model_finds_some_entities(evaluated):
    """Guard for the tests below: an all-O model would make most of them vacuous."""
    result, _ = evaluated
    assert result.metrics["languages"]["de"]["test"]["f1"] > 0.1


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("matrix", ["tags", "entity_types"])
def test_normalised_rows_and_columns_sum_to_one(evaluated, language, matrix):
    _, report_dir = evaluated
    document = json.loads((report_dir / "confusion" / f"{language}-test.json").read_text())
    assert {"labels", "counts", "row_normalized", "column_normalized"} <= set(document)
    block = document if matrix == "tags" else document["entity_types"]
    counts = block["counts"]
    for row, normalised in zip(counts, block["row_normalized"], strict=True):
        assert sum(normalised) == pytest.approx(1.0 if sum(row) else 0.0)
    column_totals = [sum(column) for column in zip(*counts, strict=True)]
    for index, total in enumerate(column_totals):
        column = [row[index] for row in block["column_normalized"]]
        assert sum(column) == pytest.approx(1.0 if total else 0.0)


@pytest.mark.parametrize("language", LANGUAGES)
def test_diagonals_are_recall_and_precision_of_the_written_predictions(evaluated, language):
    _, report_dir = evaluated
    document = json.loads((report_dir / "confusion" / f"{language}-test.json").read_text())
    _, gold, pred = conll_of(report_dir, language)
    pairs = [(g, p) for gs, ps in zip(gold, pred, strict=True) for g, p in zip(gs, ps, strict=True)]
    assert sum(map(sum, document["counts"])) == len(pairs)
    for index, tag in enumerate(document["labels"]):
        hits = sum(g == p == tag for g, p in pairs)
        true, predicted = sum(g == tag for g, _ in pairs), sum(p == tag for _, p in pairs)
        assert document["row_normalized"][index][index] == pytest.approx(hits / true if true else 0.0)
        assert document["column_normalized"][index][index] == pytest.approx(
            hits / predicted if predicted else 0.0
        )


@pytest.mark.parametrize("language", LANGUAGES)
def test_metrics_equal_seqeval_on_the_written_predictions(evaluated, language):
    result, report_dir = evaluated
    metrics = json.loads((report_dir / "metrics.json").read_text())
    _, gold, pred = conll_of(report_dir, language)
    block = metrics["languages"][language]["test"]
    assert block["f1"] == pytest.approx(f1_score(gold, pred))
    assert block["strict_f1"] == pytest.approx(f1_score(gold, pred, mode="strict", scheme=IOB2))
    assert metrics == result.metrics


def test_bootstrap_interval_contains_the_point_estimate_and_is_seeded(evaluated):
    result, _ = evaluated
    for language in LANGUAGES:
        block = result.metrics["languages"][language]["test"]
        assert block["f1_ci"]["n"] == 300
        assert block["f1_ci"]["low"] <= block["f1"] <= block["f1_ci"]["high"]
        assert block["f1_ci"]["low"] < block["f1_ci"]["high"]
    bare = {
        **result.metrics,
        "languages": {
            k: {s: {x: y for x, y in b.items() if x != "f1_ci"} for s, b in v.items()}
            for k, v in result.metrics["languages"].items()
        },
    }
    again = with_confidence_intervals(bare, result.evaluations, 300, seed=1)
    assert again["languages"] == result.metrics["languages"]


def test_heatmaps_are_pngs_linked_from_the_report(evaluated):
    _, report_dir = evaluated
    markdown = (report_dir / "report.md").read_text()
    links = [line.split("](")[1].rstrip(")") for line in markdown.splitlines() if line.startswith("![")]
    assert len(links) == 6 * len(LANGUAGES)
    for link in links:
        data = (report_dir / link).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 5000, link
    assert sorted(p.relative_to(report_dir).as_posix() for p in report_dir.rglob("*.png")) == sorted(links)


def test_report_has_every_section_and_the_numbers_of_metrics(evaluated):
    result, report_dir = evaluated
    markdown = (report_dir / "report.md").read_text()
    for heading in (
        "## Scores",
        "### Per entity type",
        "## Scoring conventions",
        "## Imbalance",
        "## Confusion matrices",
        "## Errors",
    ):
        assert f"\n{heading}" in markdown, heading
    block = result.metrics["languages"]["de"]["test"]
    assert f"| de | test | 60 | {block['f1']:.3f} | {block['f1_ci']['low']:.3f}–" in markdown
    assert "Token accuracy counts every word" in markdown
    document = json.loads((report_dir / "report.json").read_text())
    keys = [(row["language"], row["convention"]) for row in document["conventions"]]
    assert len(keys) == 3 * len(LANGUAGES)
    imbalance = {row["language"]: row for row in document["imbalance"]}
    _, gold, _ = conll_of(report_dir, "de")
    tags = Counter(tag for sentence in gold for tag in sentence)
    assert imbalance["de"]["tag_counts"] == {tag: n for tag, n in tags.items()}
    assert imbalance["de"]["o_share"] == pytest.approx(tags["O"] / sum(tags.values()))


def test_errors_files_have_the_expected_sections(evaluated):
    _, report_dir = evaluated
    errors = json.loads((report_dir / "errors.json").read_text())
    assert set(errors) == {f"{language}-test" for language in LANGUAGES}
    markdown = (report_dir / "errors.md").read_text()
    for language in LANGUAGES:
        assert f"\n## {language}-test\n" in markdown
    for heading in (
        "### Subword tokens by total loss",
        "### Subword tokens by mean loss",
        "### Loss per gold label",
        "### Sentences with the highest loss",
        "#### Sentence ",
    ):
        assert markdown.count(heading) >= len(LANGUAGES), heading
    worst = errors["de-test"]["worst_sentences"]
    assert len(worst) == 10
    assert [s["total_loss"] for s in worst] == sorted((s["total_loss"] for s in worst), reverse=True)
    assert {"token", "gold", "pred", "loss"} == set(worst[0]["rows"][0])


def test_loss_per_label_counts_one_labelled_subword_per_word(evaluated):
    """First-subword labelling: each word's gold tag is scored exactly once."""
    _, report_dir = evaluated
    errors = json.loads((report_dir / "errors.json").read_text())
    _, gold, pred = conll_of(report_dir, "de")
    rows = {row["label"]: row for row in errors["de-test"]["loss_per_label"]}
    assert {label: row["count"] for label, row in rows.items()} == Counter(t for s in gold for t in s)
    wrong = Counter(
        g for gs, ps in zip(gold, pred, strict=True) for g, p in zip(gs, ps, strict=True) if g != p
    )
    assert {label: row["errors"] for label, row in rows.items() if row["errors"]} == wrong


def test_subword_losses_agree_with_the_model_loss_and_predictions(run_dir, evaluated):
    result, _ = evaluated
    model, tokenizer, labels = load_trained(run_dir)
    evaluation = result.evaluations[0]
    records = subword_losses(model, tokenizer, labels, sentences=evaluation.sentences[:8])
    assert [list(r.word_pred) for r in records] == [list(p) for p in evaluation.predicted[:8]]
    sentence = evaluation.sentences[0]
    features = build_features(
        0,
        word_pieces(tokenizer, [sentence.tokens])[0],
        64,
        bos_id=tokenizer.bos_token_id,
        eos_id=tokenizer.eos_token_id,
        label_ids=labels.encode(sentence.tags),
    )
    with torch.inference_mode():
        expected = model(**collate(features, tokenizer.pad_token_id)).loss.item()
    finite = [loss for loss in records[0].losses if not math.isnan(loss)]
    assert statistics.fmean(finite) == pytest.approx(expected, rel=1e-4)
    assert records[0].tokens[0] == "<s>" and records[0].tokens[-1] == "</s>"
    assert all(
        gold == IGNORED
        for gold, loss in zip(records[0].gold_labels, records[0].losses, strict=True)
        if math.isnan(loss)
    )


def test_a_sentence_longer_than_the_model_keeps_every_subword_once(run_dir):
    model, tokenizer, labels = load_trained(run_dir)
    words = ["Berlin", "liegt", "an", "der", "Spree", "und", "Paris", "an", "der", "Seine", "."] * 70
    tags = ["B-LOC" if word[0].isupper() else "O" for word in words]
    pieces = word_pieces(tokenizer, [words])[0]
    assert sum(map(len, pieces)) > 600
    (record,) = subword_losses(model, tokenizer, labels, sentences=[Sentence(tuple(words), tuple(tags))])
    assert len(record.tokens) == sum(map(len, pieces)) + 2
    assert sum(not math.isnan(loss) for loss in record.losses) == len(words)
    assert record.tokens.count("<s>") == 1 and record.tokens.count("</s>") == 1


def test_label_strategy_is_read_from_the_run_config(tmp_path, run_dir):
    assert read_label_strategy(run_dir) == "first"
    assert read_label_strategy(tmp_path) == "first"
    (tmp_path / "model").mkdir()
    (tmp_path / "config.toml").write_text('[model]\nlabel_strategy = "all"\n')
    assert read_label_strategy(tmp_path) == "all"
    assert read_label_strategy(tmp_path / "model") == "all"


def test_cli_evaluate_without_report_or_errors_still_writes_metrics(run_dir, tmp_path):
    out = tmp_path / "rep"
    result = runner.invoke(
        app,
        [
            "evaluate",
            str(run_dir),
            "--data",
            "sample",
            "--languages",
            "it",
            "--bootstrap",
            "50",
            "--no-report",
            "--no-errors",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "metrics.json",
        "predictions/it-test.conll",
    ]
    interval = json.loads((out / "metrics.json").read_text())["languages"]["it"]["test"]["f1_ci"]
    assert interval["n"] == 50 and interval["low"] <= interval["high"]


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seeds")
    recipe_file = folder / "r.toml"
    recipe_file.write_text(
        '[model]\nname = "scratch:tiny"\nmax_length = 64\n[data]\nsource = "sample"\n'
        "max_train_samples = 48\n[train]\nepochs = 1\nbatch_size = 16\nlearning_rate = 0.003\n"
    )
    out = folder / "run"
    result = runner.invoke(app, ["train", str(recipe_file), "-o", str(out), "--set", "train.seeds=[1, 2]"])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.slow
def test_multi_seed_training_writes_seed_folders_and_mean_std(seeds_run):
    metrics = json.loads((seeds_run / "metrics.json").read_text())
    per_seed = {s: json.loads((seeds_run / f"seed-{s}" / "metrics.json").read_text()) for s in (1, 2)}
    assert (seeds_run / "seed-1" / "model" / "config.json").is_file() and (
        seeds_run / "config.toml"
    ).is_file()
    assert metrics["seeds"] == [1, 2]
    for split in ("validation", "test"):
        block = metrics["languages"]["de"][split]
        for key in ("f1", "strict_f1"):
            values = [per_seed[s]["languages"]["de"][split][key] for s in (1, 2)]
            assert block[f"{key}_mean"] == pytest.approx(statistics.fmean(values))
            assert block[f"{key}_std"] == pytest.approx(statistics.stdev(values))
        assert block["per_seed"]["2"] == per_seed[2]["languages"]["de"][split]
        assert block["seeds"] == [1, 2]


def test_cli_compare_gives_a_p_value(run_dir, seeds_run, evaluated, tmp_path):
    result, _ = evaluated
    out = tmp_path / "compare.json"
    invoked = runner.invoke(
        app,
        [
            "compare",
            str(run_dir),
            str(seeds_run / "seed-1"),
            "--data",
            "sample",
            "--languages",
            "de,fr",
            "--bootstrap",
            "200",
            "-o",
            str(out),
        ],
    )
    assert invoked.exit_code == 0, invoked.output
    assert "p-value" in invoked.output
    comparison = json.loads(out.read_text())
    for language in LANGUAGES:
        test = comparison["languages"][language]["test"]
        assert 0.0 <= test["p_value"] <= 1.0
        assert test["f1_a"] == pytest.approx(result.metrics["languages"][language]["test"]["f1"])
        assert test["delta"] == pytest.approx(test["f1_a"] - test["f1_b"])
        assert test["low"] <= test["delta"] <= test["high"]


def test_comparing_a_model_with_itself_finds_no_difference(evaluated):
    result, _ = evaluated
    comparison = comparison_document(result.evaluations, result.evaluations, n=100)
    for splits in comparison["languages"].values():
        assert splits["test"]["delta"] == 0.0 and splits["test"]["p_value"] == 1.0


@pytest.mark.parametrize(
    ("f1s", "mean", "std"),
    [([0.5], 0.5, 0.0), ([0.4, 0.6], 0.5, math.sqrt(0.02)), ([0.1, 0.2, 0.6], 0.3, math.sqrt(0.07))],
)
def test_seed_summary_mean_and_sample_std(f1s, mean, std):
    per_seed = {
        seed: {"languages": {"de": {"test": {"f1": f1, "strict_f1": f1 / 2, "sentences": 9}}}}
        for seed, f1 in enumerate(f1s, start=1)
    }
    block = seed_summary(per_seed)["languages"]["de"]["test"]
    assert block["f1_mean"] == pytest.approx(mean) and block["f1"] == pytest.approx(mean)
    assert block["f1_std"] == pytest.approx(std)
    assert block["strict_f1_std"] == pytest.approx(std / 2)
    assert block["seeds"] == list(range(1, len(f1s) + 1)) and block["sentences"] == 9
