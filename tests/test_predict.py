"""nertool predict: every input unit gets one record, offsets are exact, CoNLL tags equal evaluate's."""

from __future__ import annotations

import json

import pytest
import torch
from seqeval.metrics import f1_score
from typer.testing import CliRunner

from nertool.cli.commands import app
from nertool.data.readers import read_sentences
from nertool.predict.readers import unit_from_tokens
from nertool.predict.tagger import Tagger
from nertool.workflows.evaluate import evaluate_model
from nertool.workflows.training_data import SAMPLE_DIR

runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(tiny_run):
    """The session's tiny run (see conftest)."""
    return tiny_run


TRICKY = [
    "Angela Merkel besuchte Paris .",
    "",
    "Zero\u200bwidth\u200b space and\u00a0nbsp",
    "Emoji 👩🏽‍💻 with Angela Merkel 🇩🇪 flags",
    "مرحبا بكم في برلين",
    "北京大学 und Deutsche Bank",
    "   ",
    "Dé\u0301composé Frankfurt",
]


def check_record(record, text):
    assert record["text"] == text
    assert len(record["tokens"]) == len(record["tags"])
    for entity in record["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["text"]
        assert 0.0 <= entity["score"] <= 1.0


def test_text_file_gives_one_record_per_line_with_exact_offsets(run_dir, tmp_path):
    long_line = " ".join(["Angela Merkel besuchte Frankfurt am Main ."] * 500)  # 3,500 words
    lines = [*TRICKY, long_line]
    source = tmp_path / "in.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["predict", str(run_dir), str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(records) == len(lines)
    for record, text in zip(records, lines, strict=True):
        check_record(record, text)
    assert records[1]["entities"] == [] and records[1]["tokens"] == []
    assert len(records[-1]["tokens"]) == 3500


def test_long_document_windows_cover_every_word_once(run_dir):
    tagger = Tagger.load(run_dir)
    tagger.tokenizer.model_max_length = 24  # force many overlapping windows
    text = " ".join(["Angela Merkel besuchte die Deutsche Bank in Frankfurt ."] * 30)
    [entities] = tagger.tag([text])
    starts = [e.start for e in entities]
    assert starts == sorted(set(starts)), "an entity on a window boundary came out twice"
    for entity in entities:
        assert text[entity.start : entity.end] == entity.text


def test_invalid_utf8_is_one_line_error_naming_file_and_line(run_dir, tmp_path):
    source = tmp_path / "bad.txt"
    source.write_bytes(b"fine line\nbad \xff byte\n")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["predict", str(run_dir), str(source), "-o", str(out)])
    assert result.exit_code == 1
    assert "bad.txt:2:" in result.output and "--encoding" in result.output
    assert "Traceback" not in result.output
    assert not out.exists(), "a failed run must not leave a half-written output"


def test_conll_input_tags_equal_evaluate_predictions(run_dir, tmp_path):
    report = tmp_path / "report"
    evaluate_model(str(run_dir), str(SAMPLE_DIR), ["fr"], splits=["test"], report_dir=report)
    evaluated = (report / "predictions" / "fr-test.conll").read_text().strip().split("\n\n")
    out = tmp_path / "pred.conll"
    source = SAMPLE_DIR / "fr" / "test.tsv"
    result = runner.invoke(
        app,
        [
            "predict",
            str(run_dir),
            str(source),
            "--input-format",
            "conll",
            "--output-format",
            "conll",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    predicted = out.read_text().strip().split("\n\n")
    assert len(predicted) == len(evaluated) == 40
    for pred_block, eval_block in zip(predicted, evaluated, strict=True):
        pred_tags = [line.split("\t")[1] for line in pred_block.splitlines()]
        eval_tags = [line.split("\t")[2] for line in eval_block.splitlines()]
        assert pred_tags == eval_tags


def test_spans_tsv_and_jsonl_input(run_dir, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps({"text": "Angela Merkel besuchte Paris ."})
        + "\n"
        + json.dumps({"tokens": ["Deutsche", "Bank"]})
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "spans.tsv"
    result = runner.invoke(
        app, ["predict", str(run_dir), str(source), "--output-format", "spans-tsv", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = out.read_text(encoding="utf-8").splitlines()
    assert rows[0].split("\t") == ["id", "start", "end", "label", "text"]


def test_python_api_orders_output_like_input(run_dir):
    tagger = Tagger.load(run_dir)
    texts = ["x " * n + "Angela Merkel" for n in (30, 0, 12, 3)]
    results = tagger.tag(texts)
    assert len(results) == 4
    for text, entities in zip(texts, results, strict=True):
        for entity in entities:
            assert text[entity.start : entity.end] == entity.text


def test_quantized_tagger_agrees_with_full_precision(run_dir):
    """int8 Linear layers may flip a near-tie, no more: the tags of the German and French test
    sentences (about 1,000 words) agree word for word (measured: all of them on the tiny run)."""
    sentences = [s for lang in ("de", "fr") for s in read_sentences(SAMPLE_DIR / lang / "test.tsv")]
    units = [unit_from_tokens(s.tokens, "test", i) for i, s in enumerate(sentences, start=1)]
    full = Tagger.load(run_dir)
    quantized = Tagger.load(run_dir, quantized=True)
    assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in quantized.model.modules())
    assert not any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in full.model.modules())
    full_tags = [t.tags for t in full.tag_units(units)]
    quantized_tags = [t.tags for t in quantized.tag_units(units)]
    pairs = [
        (a, b) for f, q in zip(full_tags, quantized_tags, strict=True) for a, b in zip(f, q, strict=True)
    ]
    assert len(pairs) == sum(len(u.words) for u in units) > 900
    assert sum(a != "O" for a, _ in pairs) > 50, "the model must tag entities for the check to bite"
    assert sum(a == b for a, b in pairs) / len(pairs) >= 0.95
    assert f1_score([list(t) for t in full_tags], [list(t) for t in quantized_tags]) >= 0.9
    assert len(quantized.tag(["Angela Merkel besuchte Paris ."])) == 1
