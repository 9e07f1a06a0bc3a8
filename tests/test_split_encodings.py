"""Dev and test splits are encoded once per run and reused at every evaluation, with the same scores."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from nertool.evaluate.split import SplitEncodings, evaluate_split
from nertool.model.build import load_trained
from nertool.model.inference import encode_sentences, predict_encoded, predict_sentences
from nertool.workflows.training_data import load_training_data


@pytest.fixture(scope="module")
def trained(tiny_run: Any, tiny_run_recipe: Any) -> tuple[Any, Any, Any, Any]:
    model, tokenizer, labels = load_trained(tiny_run)
    return model, tokenizer, labels, load_training_data(tiny_run_recipe)


def count_encodings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Patch the one encoder ``SplitEncodings`` calls; the list grows by one per encoding made."""
    import nertool.evaluate.split as split

    calls: list[int] = []
    real = split.encode_sentences

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(split, "encode_sentences", counted)
    return calls


def test_a_reused_encoding_predicts_what_a_fresh_one_does_after_the_weights_change(trained: Any) -> None:
    model, tokenizer, _, data = trained
    sentences = [s.tokens for s in data.dev["de"]]
    encoded = encode_sentences(model, tokenizer, sentences)
    with torch.no_grad():
        for parameter in model.classifier.parameters():  # as an optimizer step would
            parameter.add_(torch.randn_like(parameter))
    try:
        reused = predict_encoded(model, encoded, pad_id=tokenizer.pad_token_id)
        assert reused == predict_sentences(model, tokenizer, sentences)
        assert len(reused) == len(sentences)
    finally:
        model.load_state_dict(load_trained(model.name_or_path)[0].state_dict())


def test_the_scorer_encodes_each_split_once_across_evaluations(
    trained: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nertool.workflows.train import _dev_scorer

    model, tokenizer, _, data = trained
    calls = count_encodings(monkeypatch)
    from nertool.config import build_recipe

    recipe = build_recipe({"data": {"train_languages": ["de"]}})
    score = _dev_scorer(data, tokenizer, recipe, accelerator=None, track_test=True)
    first = score(model)
    splits = len(data.dev) + len(data.test)
    assert len(calls) == splits
    assert score(model) == first  # same weights, same scores, from the kept encodings
    assert len(calls) == splits


def test_another_sentence_list_under_the_same_name_is_encoded_again(
    trained: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, tokenizer, labels, data = trained
    calls = count_encodings(monkeypatch)
    memo = SplitEncodings()
    dev = data.dev["de"]

    def scores(sentences: Any) -> dict[str, Any]:
        return evaluate_split(
            model, tokenizer, labels, sentences=sentences, language="de", split="validation", encodings=memo
        ).scores

    whole = scores(dev)
    assert scores(dev) == whole and len(calls) == 1
    half = scores(dev[: len(dev) // 2])
    assert len(calls) == 2 and half["sentences"] == len(dev) // 2
    assert memo.encoded == 2
