"""Dev F1 without seqeval (the GPU machine lacks it): exact span + type matches, micro-averaged.

Spans are read with ``nertool.labels.tags_to_spans`` (conlleval chunking: an orphan ``I-X``
starts an entity), which is how seqeval's default mode reads IOB tags, so the value equals
``seqeval.metrics.f1_score`` on the same tags (``tests/test_gpu_bench.py`` checks it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nertool.labels import tags_to_spans


def span_f1(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> float:
    """Micro F1 over entity spans: 2·TP / (predicted + gold); 0.0 when neither side has an entity."""
    true_positives = predicted = expected = 0
    for gold_tags, pred_tags in zip(gold, pred, strict=True):
        golds, preds = set(tags_to_spans(gold_tags)), set(tags_to_spans(pred_tags))
        true_positives += len(golds & preds)
        predicted, expected = predicted + len(preds), expected + len(golds)
    return 2 * true_positives / (predicted + expected) if predicted + expected else 0.0


def dev_f1(model: Any, data: Any, max_batch: int = 256) -> float:
    """F1 of ``model`` on the dev sentences through nertool's one word-level inference path."""
    from nertool.model import predict_features, tags_of

    predictions = predict_features(
        model,
        data.dev_grouped,
        [len(s.tokens) for s in data.dev],
        pad_id=data.tokenizer.pad_token_id,
        max_batch=max_batch,
    )
    names = data.label_map.names
    return span_f1([s.tags for s in data.dev], [tags_of(p, names) for p in predictions])
