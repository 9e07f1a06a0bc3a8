"""Word-level inference: the one code path that evaluation, dev scoring and ``predict`` share.

words → subword windows (``align``) → token-budgeted, length-sorted batches → model → one
label id and probability per word (``align.merge_word_values``), in input order. Under
several processes each process takes every N-th sentence and results are gathered by
sentence index, so N processes report exactly the predictions of one — nothing dropped or
duplicated by an uneven last batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from nertool.model.align import Feature, label_strategy_of, merge_word_values
from nertool.model.batching import Inputs, padded_inputs, token_budget_batches
from nertool.model.features import encode, flatten

if TYPE_CHECKING:  # imported where a torch model runs: the ONNX backend never loads torch
    import torch


@dataclass(frozen=True)
class WordPrediction:
    """Per word of one sentence: predicted label id and its probability (None: no subword)."""

    label_ids: tuple[int | None, ...]
    scores: tuple[float | None, ...]


def model_max_length(model: Any, tokenizer: Any, cap: int = 512) -> int:
    """Longest input the model accepts (XLM-R keeps 2 of its positions for padding offset)."""
    positions = getattr(model.config, "max_position_embeddings", cap + 2) - 2
    declared = getattr(tokenizer, "model_max_length", cap) or cap
    return max(8, min(cap, positions, declared))


Forward = Callable[[Inputs], np.ndarray]
"""The backend seam: one padded batch (int64 ``input_ids``, ``attention_mask``: (batch, seq)) →
float32 logits (batch, seq, num_labels) as a host array. A torch model (``torch_forward``) and
an ONNX Runtime session (``nertool.model.onnx_backend``) both take this shape, so everything
around the forward pass is numpy and the ONNX backend runs without importing torch."""


def torch_forward(model: Any) -> Forward:
    """The forward pass of a torch token classifier, on the device its parameters live on."""
    return partial(_host_logits, torch_logits(model))


def torch_logits(model: Any) -> Callable[[Inputs], torch.Tensor]:
    """The model's float logits (batch, seq, num_labels), left on its device (losses use them there)."""
    device = next(model.parameters()).device
    return partial(_logits, model, device=device)


@contextmanager
def evaluating(model: Any) -> Iterator[None]:
    """The model in eval mode while the block runs, then put back as it was (dev scoring trains on)."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def forward_batches(
    model: Any, features: Sequence[Feature], pad_id: int, *, max_tokens: int = 8192, max_batch: int = 256
) -> Iterator[tuple[list[int], Inputs, torch.Tensor]]:
    """The one batched forward pass of a torch model: ``(feature indices, padded batch, float
    logits on the model's device)`` per batch.

    The model runs in eval mode and is put back as it was (see ``batched_logits``).
    """
    with evaluating(model):
        yield from batched_logits(
            torch_logits(model), features, pad_id, max_tokens=max_tokens, max_batch=max_batch
        )


def batched_logits(
    forward: Callable[[Inputs], Any],
    features: Sequence[Feature],
    pad_id: int,
    *,
    max_tokens: int,
    max_batch: int,
) -> Iterator[tuple[list[int], Inputs, Any]]:
    """``(feature indices, padded batch, logits)`` per batch, whichever backend ``forward`` is.

    Batches are length-sorted and token-budgeted; logits are (batch, seq, num_labels), padded to
    the batch's longest feature.
    """
    for indices in token_budget_batches([len(f) for f in features], max_tokens, max_batch):
        batch = padded_inputs([features[i] for i in indices], pad_id)
        yield indices, batch, forward(batch)


def _logits(model: Any, batch: Inputs, device: Any) -> torch.Tensor:
    import torch

    with torch.inference_mode():
        inputs = {key: torch.from_numpy(batch[key]).to(device) for key in ("input_ids", "attention_mask")}
        return model(**inputs).logits.float()  # (batch, seq, num_labels)


def _host_logits(logits_of: Callable[[Inputs], torch.Tensor], batch: Inputs) -> np.ndarray:
    return logits_of(batch).cpu().numpy()


def best_of(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(argmax id, its softmax probability) at every position of (batch, seq, num_labels) logits.

    The probability is 1 / sum(exp(logit - max)): the softmax of the winning label without
    computing the others'.
    """
    top = logits.max(axis=-1, keepdims=True)
    probabilities = 1.0 / np.exp(logits - top).sum(axis=-1)
    return logits.argmax(axis=-1), probabilities


def _best_labels(
    forward: Forward, features: Sequence[Feature], pad_id: int, max_tokens: int, max_batch: int
) -> list[tuple[list[int], list[float]]]:
    """(argmax ids, max probabilities) per feature."""
    outputs: list[tuple[list[int], list[float]]] = [([], [])] * len(features)
    batches = batched_logits(forward, features, pad_id, max_tokens=max_tokens, max_batch=max_batch)
    for batch_indices, _, logits in batches:
        ids, probs = best_of(logits)  # (batch, seq) each
        id_rows, prob_rows = ids.tolist(), probs.tolist()  # one conversion per batch, not two per row
        for row, index in enumerate(batch_indices):
            length = len(features[index])
            outputs[index] = (id_rows[row][:length], prob_rows[row][:length])
    return outputs


def predict_features(
    model: Any,
    grouped: Sequence[Sequence[Feature]],
    n_words: Sequence[int],
    *,
    pad_id: int,
    max_tokens: int = 8192,
    max_batch: int = 256,
) -> list[WordPrediction]:
    """Word predictions of a torch model for sentences given as their features (one list per sentence)."""
    with evaluating(model):
        return predict_with(
            torch_forward(model), grouped, n_words, pad_id=pad_id, max_tokens=max_tokens, max_batch=max_batch
        )


def predict_with(
    forward: Forward,
    grouped: Sequence[Sequence[Feature]],
    n_words: Sequence[int],
    *,
    pad_id: int,
    max_tokens: int = 8192,
    max_batch: int = 256,
) -> list[WordPrediction]:
    """Word predictions through any backend's ``forward`` (the model already in eval mode)."""
    outputs = _best_labels(forward, flatten(grouped), pad_id, max_tokens, max_batch)
    return list(_merge(grouped, n_words, iter(outputs)))


def _merge(
    grouped: Sequence[Sequence[Feature]],
    n_words: Sequence[int],
    outputs: Iterator[tuple[list[int], list[float]]],
) -> Iterator[WordPrediction]:
    for features, count in zip(grouped, n_words, strict=True):
        # (label id, probability) per position, so each word's pair is read once, at its first piece
        paired = [list(zip(*next(outputs), strict=True)) for _ in features]
        merged = merge_word_values(count, features, paired)
        ids = [None if pair is None else pair[0] for pair in merged]
        scores = [None if pair is None else pair[1] for pair in merged]
        yield WordPrediction(tuple(ids), tuple(scores))


@dataclass(frozen=True)
class EncodedSentences:
    """One process's share of a sentence list, encoded for the model: what repeated scoring reuses.

    Dev (and tracked test) sets are scored after every evaluation point of a run, with the same
    tokenizer, window length and label strategy each time; encoding them once keeps tokenisation
    out of every later evaluation (``evaluate.split.SplitEncodings``).
    """

    indices: tuple[int, ...]  # sentence positions this process predicts (every ``world``-th)
    grouped: tuple[tuple[Feature, ...], ...]  # each of those sentences' windows
    n_words: tuple[int, ...]
    total: int  # sentences in the whole list (every process)


def encode_sentences(
    model: Any, tokenizer: Any, sentences: Sequence[Sequence[str]], *, accelerator: Any = None
) -> EncodedSentences:
    """This process's sentences as windows for ``model`` (its window length and label strategy)."""
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    mine = tuple(range(rank, len(sentences), world))
    grouped = encode(
        [sentences[i] for i in mine],
        tokenizer,
        max_length=model_max_length(model, tokenizer),
        strategy=label_strategy_of(model),
    )
    return EncodedSentences(
        mine, tuple(tuple(g) for g in grouped), tuple(len(sentences[i]) for i in mine), len(sentences)
    )


def predict_encoded(
    model: Any,
    encoded: EncodedSentences,
    *,
    pad_id: int,
    accelerator: Any = None,
    max_tokens: int = 8192,
    max_batch: int = 256,
) -> list[WordPrediction]:
    """Word predictions for every sentence of ``encoded``, gathered in order across processes."""
    local = predict_features(
        model, encoded.grouped, encoded.n_words, pad_id=pad_id, max_tokens=max_tokens, max_batch=max_batch
    )
    if accelerator is None or accelerator.num_processes == 1:
        return local
    from accelerate.utils import gather_object

    pairs = gather_object(list(zip(encoded.indices, local, strict=True)))
    ordered = dict(pairs)
    return [ordered[i] for i in range(encoded.total)]


def predict_sentences(
    model: Any,
    tokenizer: Any,
    sentences: Sequence[Sequence[str]],
    *,
    accelerator: Any = None,
    max_tokens: int = 8192,
    max_batch: int = 256,
) -> list[WordPrediction]:
    """Word predictions for every sentence, sharded over processes when ``accelerator`` has several.

    Each word is read at the piece the model was trained to label (``label_strategy_of``).
    """
    encoded = encode_sentences(model, tokenizer, sentences, accelerator=accelerator)
    return predict_encoded(
        model,
        encoded,
        pad_id=tokenizer.pad_token_id,
        accelerator=accelerator,
        max_tokens=max_tokens,
        max_batch=max_batch,
    )


def tags_of(prediction: WordPrediction, names: Sequence[str], fallback: str = "O") -> list[str]:
    """Tag names per word; a word with no subword gets ``fallback`` (deliberately ``O``)."""
    return [fallback if i is None else names[i] for i in prediction.label_ids]
