"""The model card: built from a hand-made record (fast), and written by a tiny train and pretrain run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from nertool.config import build_recipe
from nertool.hub.card import CardFacts, card_text
from nertool.hub.sections import strategy_note
from nertool.records import EvaluationRecord

LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


def block(f1: float, precision: float, recall: float, sentences: int = 10) -> dict:
    return {"precision": precision, "recall": recall, "f1": f1, "sentences": sentences, "per_type": {}}


METRICS = {
    "languages": {
        "de": {"validation": block(0.8, 0.8, 0.8), "test": block(0.81234, 0.8, 0.825)},
        "fr": {"validation": block(0.5, 0.5, 0.5), "test": block(0.55555, 0.6, 0.51)},
        "sw": {"validation": block(0.3, 0.25, 0.375)},
    },
    "best_step": 40,
    "train_sentences": {"de": 1000},
}


def recipe(**model):
    return build_recipe(
        {
            "model": {"name": "FacebookAI/xlm-roberta-base", **model},
            "data": {
                "source": "hub:google/xtreme:PAN-X.{lang}",
                "train_languages": ["de"],
                "eval_languages": ["de", "fr", "sw"],
            },
        }
    )


def facts(**model) -> CardFacts:
    record = EvaluationRecord.from_json(json.loads(json.dumps(METRICS)))
    return CardFacts(recipe(**model), "ner", "me/panx-de", LABELS, record)


def test_card_header_holds_languages_base_model_data_and_scores():
    card = ModelCard(card_text(facts()))
    data = card.data
    assert data.language == ["de", "fr", "sw"]
    assert data.base_model == "FacebookAI/xlm-roberta-base"
    assert data.datasets == ["google/xtreme"]
    assert data.library_name == "transformers" and data.pipeline_tag == "token-classification"
    scores = {(r.dataset_config, r.dataset_split, r.metric_type): r.metric_value for r in data.eval_results}
    assert scores[("PAN-X.de", "test", "f1")] == 0.8123
    assert scores[("PAN-X.fr", "test", "precision")] == 0.6
    assert scores[("PAN-X.fr", "test", "recall")] == 0.51
    assert scores[("PAN-X.sw", "validation", "f1")] == 0.3  # no test split: its validation, said so
    assert all(r.dataset_type == "google/xtreme" for r in data.eval_results)


def test_card_text_has_labels_usage_limits_and_the_recipe():
    text = card_text(facts())
    assert "`1` B-LOC" in text and "`4` I-PER" in text
    assert 'pipeline("token-classification", model="me/panx-de", aggregation_strategy="first")' in text
    assert '"simple"' in text and "fragments" in text
    assert 'Tagger.load("me/panx-de")' in text
    assert "silver" in text and "Wikipedia" in text
    assert "fr, sw are zero-shot" in text
    assert "```toml\nseed = 42\n" in text and 'source = "hub:google/xtreme:PAN-X.{lang}"' in text
    assert "Warning" not in text


def test_scratch_card_names_no_base_model():
    text = card_text(facts(name="scratch:small"))
    assert ModelCard(text).data.base_model is None
    assert "randomly initialised XLM-R-style encoder of size `small`" in text
    assert "not XLM-R" in text


def test_label_strategy_all_reads_right_and_others_warn():
    assert "is still the word" in card_text(facts(label_strategy="all"))
    assert strategy_note("first") == []
    assert "Warning" in " ".join(strategy_note("first_content"))


def test_first_content_card_says_the_pipeline_does_not_read_it():
    text = card_text(facts(label_strategy="first_content"))
    assert '`pipeline(aggregation_strategy="first")` does not read this model correctly' in text
    assert 'bare "▁" piece' in text


# ------------------------------------------------------------------ written by the runs


def tiny_train_recipe():
    return build_recipe(
        {
            "seed": 7,
            "model": {"name": "scratch:tiny", "max_length": 64, "vocab_size": 600},
            "data": {
                "source": "sample",
                "train_languages": ["de"],
                "eval_languages": ["de", "fr"],
                "max_train_samples": 48,
                "max_eval_samples": 20,
            },
            "train": {"epochs": 1, "batch_size": 16, "learning_rate": 3e-3, "log_every": 1},
        }
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    from nertool.workflows.train import train_run

    run_dir = tmp_path_factory.mktemp("card") / "run"
    train_run(tiny_train_recipe(), run_dir)
    return run_dir


@pytest.mark.slow
def test_train_writes_a_card_whose_scores_are_metrics_json(trained):
    card = ModelCard.load(trained / "model" / "README.md")
    metrics = json.loads((trained / "metrics.json").read_text())
    results = {(r.dataset_config, r.metric_type): r.metric_value for r in card.data.eval_results}
    for language in ("de", "fr"):
        test = metrics["languages"][language]["test"]
        for metric in ("f1", "precision", "recall"):
            assert results[(language, metric)] == round(test[metric], 4)
    assert card.data.model_name == "run" and card.data.base_model is None
    id2label = json.loads((trained / "model" / "config.json").read_text())["id2label"]
    for index, label in id2label.items():
        assert f"`{index}` {label}" in card.text
    assert (trained / "config.toml").read_text().rstrip() in card.text


@pytest.mark.slow
def test_pretrain_writes_a_fill_mask_card(tmp_path):
    from nertool.workflows.pretrain import pretrain_run

    mlm = build_recipe(
        {
            "seed": 5,
            "model": {"name": "scratch:tiny", "vocab_size": 600, "max_length": 64},
            "train": {"batch_size": 8, "learning_rate": 2e-3, "warmup_ratio": 0.0, "log_every": 1},
            "pretrain": {
                "text": ["sample"],
                "steps": 6,
                "block_size": 64,
                "heldout_fraction": 0.1,
                "eval_every": 3,
            },
        }
    )
    pretrain_run(mlm, tmp_path / "mlm")
    card = ModelCard.load(tmp_path / "mlm" / "model" / "README.md")
    assert card.data.pipeline_tag == "fill-mask" and not card.data.eval_results
    assert 'pipeline("fill-mask", model="mlm")' in card.text
    assert "Held-out masked-token loss" in card.text and "at step 6" in card.text
