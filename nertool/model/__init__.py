"""Model: build, load and save encoders; word ↔ subword features; one batched forward pass.

``build`` (tokenizers, ``scratch:`` models, safetensors save/load), ``limits`` (the
``model_max_length`` a saved tokenizer declares), ``align`` (word labels ↔
subword positions over ``word_ids()``), ``batching`` (length-grouped and token-budgeted batches),
``inference`` (the one word-level prediction path shared by evaluation, dev scoring and predict).
"""

from nertool._lazy import exports

__all__, __getattr__ = exports(
    __name__,
    {
        "load_tokenizer": "build",
        "train_tokenizer": "build",
        "token_classifier": "build",
        "scratch_classifier": "build",
        "masked_lm": "build",
        "is_scratch": "build",
        "scratch_size": "build",
        "Feature": "align",
        "word_pieces": "align",
        "build_features": "align",
        "merge_word_values": "align",
        "encode": "features",
        "flatten": "features",
        "FeatureCollator": "batching",
        "collate": "batching",
        "length_grouped_batches": "batching",
        "token_budget_batches": "batching",
        "WordPrediction": "inference",
        "forward_batches": "inference",
        "predict_sentences": "inference",
        "predict_features": "inference",
        "model_max_length": "inference",
        "tags_of": "inference",
    },
)
