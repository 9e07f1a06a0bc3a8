"""The input length a saved tokenizer declares, so other tools stop where the model stops.

``transformers.pipeline`` truncates to the tokenizer's ``model_max_length``. A ``scratch:``
tokenizer sets none (transformers then says about 1e30), so a 3,000-word line would index past
the model's 514 position embeddings; the saved folder declares the real limit instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# A tokenizer that sets no limit declares about 1e30 (transformers' VERY_LARGE_INTEGER).
UNSET_MAX_LENGTH = 10**29
# XLM-R numbers positions from padding_idx + 1, so two of its position embeddings never hold a token.
POSITION_OFFSET = 2


def saved_max_length(model: Any, tokenizer: Any, max_length: int | None = None) -> int | None:
    """The least of: the model's positions less XLM-R's offset (as ``model.inference.model_max_length``
    reads them), the run's ``max_length`` when given, the tokenizer's own limit when it sets one.

    None when none of them is known (a model config without ``max_position_embeddings``).
    """
    positions = getattr(model.config, "max_position_embeddings", None)
    declared = getattr(tokenizer, "model_max_length", None)
    limits = [
        *([positions - POSITION_OFFSET] if isinstance(positions, int) else []),
        *([max_length] if max_length is not None else []),
        *([declared] if isinstance(declared, int) and 0 < declared < UNSET_MAX_LENGTH else []),
    ]
    return min(limits) if limits else None


def declare_max_length(config_file: Path, max_length: int | None) -> None:
    """Write ``model_max_length`` into a just-saved tokenizer_config.json, formatted as transformers does."""
    if max_length is None or not config_file.is_file():
        return
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["model_max_length"] = max_length
    text = json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    config_file.write_text(text, encoding="utf-8")
