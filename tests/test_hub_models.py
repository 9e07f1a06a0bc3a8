"""A saved run in the Hugging Face tools: pipeline on long lines, the Tagger API, evaluate's evaluator."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

import nertool
from nertool.config import build_recipe
from nertool.model.build import load_trained, save_model
from nertool.model.limits import saved_max_length
from nertool.predict.readers import Entity
from nertool.predict.tagger import Tagger
from nertool.workflows.evaluate import evaluate_model
from nertool.workflows.train import train_run
from nertool.workflows.training_data import SAMPLE_DIR

pytestmark = pytest.mark.slow
LONG_LINE = " ".join(["Angela Merkel besuchte Frankfurt am Main ."] * 430)  # 3,010 words


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hub-run")
    recipe = build_recipe(
        {
            "seed": 5,
            "model": {"name": "scratch:tiny", "max_length": 64},
            "data": {"source": "sample", "train_languages": ["de"], "eval_languages": ["de"]},
            "train": {"epochs": 6, "batch_size": 16, "learning_rate": 3e-3},
        }
    )
    train_run(recipe, folder)
    return folder


@pytest.fixture(scope="module")
def tagger(run_dir: Path) -> Tagger:
    return Tagger.load(run_dir, device="cpu")


def pipeline_of(model_dir: Path) -> Any:
    from transformers import pipeline

    return pipeline("token-classification", model=str(model_dir), aggregation_strategy="first", device="cpu")


# ---------------------------------------------------------------- model_max_length


def declared_max_length(model_dir: Path) -> Any:
    return json.loads((model_dir / "tokenizer_config.json").read_text(encoding="utf-8"))["model_max_length"]


def test_saved_scratch_tokenizer_declares_the_run_limit(run_dir: Path) -> None:
    """A trained run's tokenizer declares min(model positions - 2, the run's model.max_length = 64)."""
    model_dir = run_dir / "model"
    positions = json.loads((model_dir / "config.json").read_text())["max_position_embeddings"]
    assert positions - 2 == 512
    assert declared_max_length(model_dir) == 64


def test_save_model_without_a_run_limit_declares_the_model_positions(run_dir: Path, tmp_path: Path) -> None:
    model, tokenizer, _ = load_trained(run_dir)
    tokenizer.model_max_length = int(1e30)  # what a freshly trained scratch tokenizer declares
    save_model(model, tokenizer, tmp_path / "m")
    assert declared_max_length(tmp_path / "m") == 512


def test_pipeline_tags_a_3000_word_line(run_dir: Path, tmp_path: Path) -> None:
    entities = pipeline_of(run_dir / "model")(LONG_LINE)
    assert entities  # truncated to the model's 512 positions instead of indexing past them
    assert all(0 <= e["start"] < e["end"] <= len(LONG_LINE) // 4 for e in entities)
    unlimited = tmp_path / "unlimited"
    shutil.copytree(run_dir / "model", unlimited)
    config = json.loads((unlimited / "tokenizer_config.json").read_text(encoding="utf-8"))
    (unlimited / "tokenizer_config.json").write_text(json.dumps({**config, "model_max_length": 10**30}))
    with pytest.raises((IndexError, RuntimeError), match="out of bounds"):  # what it used to declare
        pipeline_of(unlimited)(LONG_LINE)


def test_save_model_declares_the_run_max_length_when_given(run_dir: Path, tmp_path: Path) -> None:
    model, tokenizer, _ = load_trained(run_dir)
    save_model(model, tokenizer, tmp_path / "m", max_length=64)
    assert declared_max_length(tmp_path / "m") == 64
    assert pipeline_of(tmp_path / "m")(LONG_LINE)
    tokenizer.model_max_length = 100
    assert saved_max_length(model, tokenizer) == 100  # a tokenizer's own smaller limit is kept
    assert saved_max_length(model, tokenizer, 300) == 100


# ---------------------------------------------------------------- Tagger.tag / Tagger.tag_words


def test_tag_takes_one_string_or_a_list_of_strings(tagger: Tagger) -> None:
    text = "Angela Merkel besuchte Paris"
    single = tagger.tag(text)
    assert isinstance(single, tuple) and all(isinstance(e, Entity) for e in single)
    assert all(text[e.start : e.end] == e.text for e in single)
    assert tagger.tag([text, "Paris"]) == [single, tagger.tag("Paris")]
    assert tagger.tag((text,)) == [single]
    assert tagger.tag([]) == []


@pytest.mark.parametrize(
    ("value", "named"),
    [(42, "int"), (["Paris", 3], "item 1 is int"), (iter(["Paris"]), "list_iterator"), (b"Paris", "bytes")],
)
def test_tag_refuses_anything_else_with_a_type_error(tagger: Tagger, value: Any, named: str) -> None:
    with pytest.raises(TypeError, match=r"Tagger\.tag\(\) takes a string or a list of strings") as caught:
        tagger.tag(value)
    assert named in str(caught.value)


def test_tag_words_takes_one_word_list_or_a_list_of_them(tagger: Tagger) -> None:
    words = ["Angela", "Merkel", "besuchte", "Paris"]
    tags = tagger.tag_words(words)
    assert isinstance(tags, tuple) and len(tags) == 4 and all(isinstance(t, str) for t in tags)
    assert tagger.tag_words(tuple(words)) == tags
    assert tagger.tag_words([words, ["Paris"]]) == [tags, tagger.tag_words(["Paris"])]
    assert tagger.tag_words([]) == []


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("Angela Merkel", "not str"),
        (42, "not int"),
        (["Paris", 3], "item 1 is int"),
        ([["Paris"], "Rom"], "item 1 is str"),
    ],
)
def test_tag_words_refuses_anything_else_with_a_type_error(tagger: Tagger, value: Any, named: str) -> None:
    with pytest.raises(TypeError, match=r"Tagger\.tag_words\(\) takes a list of words") as caught:
        tagger.tag_words(value)
    assert named in str(caught.value)


def test_tag_words_gives_the_tags_evaluate_scores(run_dir: Path, tagger: Tagger) -> None:
    [evaluation] = evaluate_model(str(run_dir), str(SAMPLE_DIR), ["de"], splits=["test"]).evaluations
    words = [list(s.tokens) for s in evaluation.sentences]
    assert [list(t) for t in tagger.tag_words(words)] == [list(t) for t in evaluation.predicted]


def docstring_examples(function: Any) -> list[str]:
    """The ``>>>`` lines of a docstring, their doctest directives dropped."""
    lines = re.findall(r"^\s*>>> (.*)$", function.__doc__ or "", flags=re.MULTILINE)
    return [re.sub(r"#\s*doctest:.*$", "", line).strip() for line in lines]


def test_the_docstring_examples_run(run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "de").symlink_to(run_dir)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"Tagger": Tagger}
    examples = docstring_examples(Tagger.tag) + docstring_examples(Tagger.tag_words)
    assert len(examples) == 5
    results = []
    for line in examples:
        if line.startswith("tagger = "):
            exec(line, namespace)
        else:
            results.append(eval(line, namespace))
    entities, counts, tags, batch = results
    assert isinstance(entities, tuple) and all(isinstance(e, Entity) for e in entities)
    assert len(counts) == 2 and len(tags) == 4 and [len(t) for t in batch] == [1, 2]


# ---------------------------------------------------------------- evaluate.evaluator


def wikiann_like(sentences: Any, names: list[str]) -> Any:
    import datasets

    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names)),
        }
    )
    rows = {
        "tokens": [list(s.tokens) for s in sentences],
        "ner_tags": [[names.index(t) for t in s.tags] for s in sentences],
    }
    return datasets.Dataset.from_dict(rows, features=features)


def test_evaluate_evaluator_with_the_metric_gives_nertool_evaluate_scores(run_dir: Path) -> None:
    """evaluate's evaluator joins the words by spaces, runs the pipeline (no aggregation) and takes
    the tag of each word's first token: on space-separated words that is nertool's first-subword
    reading, so the score blocks are the same."""
    evaluate = pytest.importorskip("evaluate")
    [evaluation] = evaluate_model(str(run_dir), str(SAMPLE_DIR), ["de"], splits=["test"]).evaluations
    names = load_trained(run_dir)[2].names
    metric = evaluate.load(nertool.metric_path())
    result = evaluate.evaluator("token-classification").compute(
        model_or_pipeline=str(run_dir / "model"),
        data=wikiann_like(evaluation.sentences, list(names)),
        metric=metric,
        input_column="tokens",
        label_column="ner_tags",
        join_by=" ",
        device=-1,
    )
    block = evaluation.scores
    assert result["f1"] == pytest.approx(block["f1"], abs=1e-12)
    for key in ("precision", "recall", "strict_f1", "macro_f1", "per_type", "token_accuracy", "sentences"):
        assert result[key] == block[key], key
    assert block["f1"] > 0
