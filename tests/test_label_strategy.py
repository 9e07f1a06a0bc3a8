"""``model.label_strategy = "first_content"`` from training to prediction: the strategy travels
with the saved model, and every word is predicted at the piece training labelled."""

from __future__ import annotations

import json

import pytest
import torch

from nertool.config import build_recipe
from nertool.model.align import bare_piece_id, first_piece_positions, label_strategy_of
from nertool.model.features import encode
from nertool.predict.tagger import Tagger
from nertool.records import load_trained_run
from nertool.workflows.train import train_run
from nertool.workflows.training_data import load_training_data


@pytest.fixture(scope="module")
def content_run(tmp_path_factory):
    recipe = build_recipe(
        {
            "seed": 3,
            "model": {"name": "scratch:tiny", "max_length": 64, "label_strategy": "first_content"},
            "data": {"source": "sample", "train_languages": ["de"], "max_train_samples": 48},
            "train": {"epochs": 1, "batch_size": 16, "learning_rate": 3e-3, "warmup_ratio": 0.0},
        }
    )
    folder = tmp_path_factory.mktemp("first-content") / "run"
    train_run(recipe, folder)
    return folder, recipe


@pytest.mark.slow
def test_first_content_is_saved_with_the_model(content_run):
    folder, _ = content_run
    config = json.loads((folder / "model" / "config.json").read_text())
    assert config["nertool_label_strategy"] == "first_content"
    assert load_trained_run(folder / "model").label_strategy == "first_content"
    assert load_trained_run(folder).label_strategy == "first_content"


@pytest.mark.slow
def test_first_content_predictions_keep_every_word_and_read_the_content_piece(content_run):
    folder, recipe = content_run
    tagger = Tagger.load(folder / "model", device="cpu")
    assert label_strategy_of(tagger.model) == "first_content"
    sentences = [list(s.tokens) for s in load_training_data(recipe).test["de"]] + [["Berlin", "\u200b", "."]]
    tags = tagger.tag_words(sentences)
    assert [len(t) for t in tags] == [len(s) for s in sentences]

    bare = bare_piece_id(tagger.tokenizer)
    grouped = encode(sentences, tagger.tokenizer, max_length=64, strategy="first_content")
    names = tagger.labels.names
    opened_bare = 0
    for words, features, predicted in zip(sentences, grouped, tags, strict=True):
        expected = ["O"] * len(words)
        for feature in features:
            with torch.inference_mode():
                logits = tagger.model(input_ids=torch.tensor([feature.input_ids])).logits[0]
            for word, position in first_piece_positions(feature).items():
                expected[word] = names[int(logits[position].argmax())]
                before = position - 1
                opened_bare += feature.input_ids[before] == bare and feature.word_ids[before] == word
        assert list(predicted) == expected
    assert opened_bare > 0, "some words should open with a bare ▁ and be read one piece later"
