"""Prediction on text files: units in, entity spans with character offsets out.

``textsplit`` (raw text → words with offsets), ``readers`` (input files → units), ``writers``
(atomic JSONL/CoNLL/TSV output) and ``tagger`` (``Tagger``: a trained run as a Python object).
``from nertool.predict import Tagger`` imports torch only when ``Tagger`` is asked for.
"""

from nertool._lazy import exports

__all__, __getattr__ = exports(
    __name__,
    {
        "Tagger": "tagger",
        "predict_files": "tagger",
        "Unit": "readers",
        "Entity": "readers",
        "TaggedUnit": "readers",
        "unit_from_text": "readers",
        "unit_from_tokens": "readers",
        "iter_units": "readers",
        "open_writer": "writers",
        "split_words": "textsplit",
    },
)
