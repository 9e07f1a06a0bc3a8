"""The one feature encoder: sentences → subword windows, with subword labels when a label map is given.

Training, dev scoring, evaluation, the subword-loss pass and ``predict`` all encode through
``encode``, so a sentence becomes exactly the same model input wherever it is used: the same
pieces (``align.word_pieces``), the same windows and the same label placement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, cast

from nertool.labels import LabelMap
from nertool.model.align import Feature, LabelStrategy, build_features, gc_paused, skipped_piece, word_pieces


class Labelled(Protocol):
    """A sentence with gold tags (``data.readers.Sentence`` and its kin)."""

    @property
    def tokens(self) -> Sequence[str]: ...

    @property
    def tags(self) -> Sequence[str]: ...


def _words(sentence: Any) -> Sequence[str]:
    return sentence.tokens if hasattr(sentence, "tokens") else sentence


def encode(
    sentences: Sequence[Labelled] | Sequence[Sequence[str]],
    tokenizer: Any,
    *,
    max_length: int,
    labels: LabelMap | None = None,
    strategy: LabelStrategy = "first",
) -> list[list[Feature]]:
    """Features of each sentence (one list of windows per sentence, in input order).

    ``sentences`` are word lists or labelled sentences; with ``labels`` each sentence's tags are
    encoded and placed on subwords by ``strategy`` (so the sentences must carry ``tags``). The
    strategy matters without labels too: under ``first_content`` the features remember the piece
    a word's prediction skips, so predictions are read where training put the labels.
    """
    pieces = word_pieces(tokenizer, [_words(s) for s in sentences])
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    skip = skipped_piece(tokenizer, strategy)
    with gc_paused():
        if labels is None:
            return [
                build_features(i, words, max_length, bos_id=bos, eos_id=eos, skip_piece=skip)
                for i, words in enumerate(pieces)
            ]
        tagged = cast("Sequence[Labelled]", sentences)
        return [
            build_features(
                i,
                words,
                max_length,
                bos_id=bos,
                eos_id=eos,
                label_ids=labels.encode(s.tags),
                strategy=strategy,
                inside_of=labels.inside_of,
                skip_piece=skip,
            )
            for i, (s, words) in enumerate(zip(tagged, pieces, strict=True))
        ]


def flatten(grouped: Sequence[Sequence[Feature]]) -> list[Feature]:
    """Every window of every sentence in one list (sentence order kept)."""
    return [feature for features in grouped for feature in features]
