"""Prediction on text files: units in, entity spans with character offsets out.

``textsplit`` (raw text → words with offsets), ``readers`` (input files → units), ``writers``
(atomic JSONL/CoNLL/TSV output) and ``tagger`` (``Tagger``: a trained run as a Python object).
``from nertool.predict import Tagger`` imports torch only when ``Tagger`` is asked for.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Tagger", "predict_files"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from nertool.predict import tagger

        return getattr(tagger, name)
    raise AttributeError(f"module 'nertool.predict' has no attribute {name!r}")
