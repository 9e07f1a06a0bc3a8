"""Per-subword loss on labelled sentences: the raw material of error analysis.

A single F1 says how often the model is wrong, not where. Following the error analysis of
*Natural Language Processing with Transformers* (ch. 4), every labelled subword gets its own
cross-entropy loss; grouping those losses by token, by gold label and by sentence shows which
words, labels and sentences the model finds hardest (and where the gold labels may be wrong).

Features are built exactly as for training (``align.build_features`` with label ids), so the
loss of a subword is the one the model was trained to lower; positions without a label
(specials, continuation subwords under ``first`` labelling, context words of a window) get
NaN and are shown but never aggregated. A sentence longer than the model allows spans several
windows; each subword is kept once, from the window whose core owns its word.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch

from nertool.data.readers import Sentence
from nertool.evaluate.error_analysis import LossRecord
from nertool.labels import OUTSIDE, LabelMap
from nertool.model.align import (
    IGNORE_INDEX,
    SPECIAL,
    Feature,
    LabelStrategy,
    merge_word_values,
)
from nertool.model.features import encode, flatten
from nertool.model.inference import forward_batches, model_max_length

IGNORED = "IGN"  # gold label shown for subwords that carry no label (the book's placeholder)

# (input ids, per-position loss, per-position predicted label id) of one feature
_FeatureOutput = tuple[list[int], list[float], list[int]]


def feature_losses(
    model: Any, features: Sequence[Feature], pad_id: int, *, max_tokens: int = 8192, max_batch: int = 256
) -> list[_FeatureOutput]:
    """Loss and predicted id of every position of every feature (loss NaN where nothing is labelled)."""
    outputs: list[_FeatureOutput] = [([], [], [])] * len(features)
    batches = forward_batches(model, features, pad_id, max_tokens=max_tokens, max_batch=max_batch)
    for indices, batch, logits in batches:
        labels = torch.from_numpy(batch["labels"]).to(logits.device)  # (batch, seq)
        losses = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), labels, ignore_index=IGNORE_INDEX, reduction="none"
        ).masked_fill(labels == IGNORE_INDEX, float("nan"))  # (batch, seq)
        losses, predicted = losses.cpu(), logits.argmax(dim=-1).cpu()
        for row, index in enumerate(indices):
            length = len(features[index])
            outputs[index] = (
                list(features[index].input_ids),
                losses[row, :length].tolist(),
                predicted[row, :length].tolist(),
            )
    return outputs


def _kept_positions(feature: Feature, first: bool, last: bool) -> Iterator[int]:
    """Core positions of a window, plus ``<s>`` of the first window and ``</s>`` of the last."""
    for position, word in enumerate(feature.word_ids):
        if word == SPECIAL:
            if (position == 0 and first) or (position == len(feature) - 1 and last):
                yield position
        elif feature.core_start <= word < feature.core_end:
            yield position


def sentence_record(
    sentence: Sentence,
    index: int,
    features: Sequence[Feature],
    *,
    outputs: Sequence[_FeatureOutput],
    tokenizer: Any,
    label_map: LabelMap,
) -> LossRecord:
    """One ``LossRecord``: subword rows from every window, word tags read at first subwords."""
    ids: list[int] = []
    losses: list[float] = []
    gold: list[str] = []
    pred: list[str] = []
    for number, (feature, (input_ids, loss, predicted)) in enumerate(zip(features, outputs, strict=True)):
        labels = feature.labels or (IGNORE_INDEX,) * len(feature)
        for position in _kept_positions(feature, number == 0, number == len(features) - 1):
            ids.append(input_ids[position])
            losses.append(loss[position])
            gold.append(IGNORED if labels[position] == IGNORE_INDEX else label_map.names[labels[position]])
            pred.append(label_map.names[predicted[position]])
    word_ids = merge_word_values(len(sentence.tokens), features, [output[2] for output in outputs])
    return LossRecord(
        tokens=tuple(tokenizer.convert_ids_to_tokens(ids)),
        losses=tuple(losses),
        gold_labels=tuple(gold),
        pred_labels=tuple(pred),
        word_gold=tuple(sentence.tags),
        word_pred=tuple(OUTSIDE if i is None else label_map.names[i] for i in word_ids),
        words=tuple(sentence.tokens),
        index=index,
    )


def subword_losses(
    model: Any,
    tokenizer: Any,
    label_map: LabelMap,
    *,
    sentences: Sequence[Sentence],
    strategy: LabelStrategy = "first",
    max_tokens: int = 8192,
    max_batch: int = 256,
) -> list[LossRecord]:
    """A ``LossRecord`` per sentence, in input order: subword tokens, losses, gold and predicted labels.

    ``word_pred`` is the word-level prediction read exactly as ``inference`` reads it (first
    subword in the word's core window, ``O`` for a word without subwords).
    """
    label_map.check_covers((tag for s in sentences for tag in s.tags), "the evaluation data")
    max_length = model_max_length(model, tokenizer)
    grouped = encode(sentences, tokenizer, max_length=max_length, labels=label_map, strategy=strategy)
    outputs = iter(
        feature_losses(
            model, flatten(grouped), tokenizer.pad_token_id, max_tokens=max_tokens, max_batch=max_batch
        )
    )
    records = []
    for index, (sentence, features) in enumerate(zip(sentences, grouped, strict=True)):
        chunk = [next(outputs) for _ in features]
        records.append(
            sentence_record(
                sentence, index, features, outputs=chunk, tokenizer=tokenizer, label_map=label_map
            )
        )
    return records
