"""Prediction on GPU: nertool's batched word-level inference against ``transformers.pipeline``.

Both sides tag the same dev sentences with the same trained model in bf16 (fp32 on CPU), from
words to word-level entities, at the same batch size; they alternate A B A B and the median
time of ``repeats`` runs counts. The pipeline gets each sentence as its words joined by spaces
and groups subwords with ``aggregation_strategy="first"``. The quality check is the entity
agreement of the two sides: span F1 of the pipeline's entities (character spans) against
nertool's, 1.0 when every entity is the same.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import torch

from bench.harness import alternate

MAX_LENGTH = 128


def char_spans(tokens: Sequence[str], tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """Entities of word tags as (start, end, type) character spans of ``" ".join(tokens)``."""
    from nertool.labels import tags_to_spans

    starts, position = [], 0
    for token in tokens:
        starts.append(position)
        position += len(token) + 1
    return [
        (starts[s.start], starts[s.end - 1] + len(tokens[s.end - 1]), s.label) for s in tags_to_spans(tags)
    ]


def agreement(pipeline_out: Sequence[Any], nertool_spans: Sequence[Sequence[tuple[int, int, str]]]) -> float:
    """Micro span F1 between the two sides' entity sets (exact character span and type)."""
    both = predicted = expected = 0
    for groups, spans in zip(pipeline_out, nertool_spans, strict=True):
        theirs = {(int(g["start"]), int(g["end"]), g["entity_group"]) for g in groups}
        ours = set(spans)
        both, predicted, expected = both + len(theirs & ours), predicted + len(theirs), expected + len(ours)
    return 2 * both / (predicted + expected) if predicted + expected else 1.0


def compare_at(model: Any, data: Any, sentences: Sequence[Any], batch: int, repeats: int) -> dict[str, Any]:
    from transformers import pipeline

    from nertool.model import predict_sentences, tags_of

    device = next(model.parameters()).device
    tokenizer = data.tokenizer
    tokenizer.model_max_length = MAX_LENGTH + 2  # a scratch tokenizer declares 1e30: truncate as training did
    texts = [" ".join(s.tokens) for s in sentences]
    words = [list(s.tokens) for s in sentences]
    tagger = pipeline(
        "token-classification",
        model=model,
        tokenizer=tokenizer,
        aggregation_strategy="first",
        device=device,
        batch_size=batch,
    )
    tagger(texts[:batch])  # load and warm both paths before timing
    predict_sentences(model, tokenizer, words[:batch], max_batch=batch)

    def baseline() -> Any:
        return tagger(texts)

    def ours() -> Any:
        return predict_sentences(model, tokenizer, words, max_batch=batch, max_tokens=batch * MAX_LENGTH)

    timed_pipeline, timed_nertool = alternate(baseline, ours, repeats, device=device.type)
    names = data.label_map.names
    spans = [char_spans(w, tags_of(p, names)) for w, p in zip(words, timed_nertool.result, strict=True)]
    pipe_s, ours_s = (
        statistics.median(timed_pipeline.all_seconds),
        statistics.median(timed_nertool.all_seconds),
    )
    return {
        "pipeline_sentences_per_s": round(len(texts) / pipe_s, 2),
        "nertool_sentences_per_s": round(len(texts) / ours_s, 2),
        "ratio": round(pipe_s / ours_s, 4),
        "repeats": repeats,
        "spread": {
            "pipeline_s": list(timed_pipeline.all_seconds),
            "nertool_s": list(timed_nertool.all_seconds),
        },
        "entity_agreement_f1": round(agreement(timed_pipeline.result, spans), 4),
        "sentences": len(texts),
    }


def compare_predict(model: Any, data: Any, plan: Any) -> dict[str, Any]:
    """Both sides at each batch size of ``plan.predict_batches``, the model in bf16 on GPU."""
    device = next(model.parameters()).device
    if device.type == "cuda":
        model = model.to(torch.bfloat16)
    model.eval()
    sentences = data.dev[: plan.predict_sentences]
    precision = "bf16" if device.type == "cuda" else "fp32"
    results = {
        f"batch_{b}": compare_at(model, data, sentences, b, plan.repeats) for b in plan.predict_batches
    }
    return {"precision": precision, **results}
