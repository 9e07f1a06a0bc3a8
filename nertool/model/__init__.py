"""Model: build, load and save encoders; word ↔ subword features; one batched forward pass.

``build`` (tokenizers, ``scratch:`` models, safetensors save/load), ``align`` (word labels ↔
subword positions over ``word_ids()``), ``batching`` (length-grouped and token-budgeted batches),
``inference`` (the one word-level prediction path shared by evaluation, dev scoring and predict).
"""
