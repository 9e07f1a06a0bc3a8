"""Subword pieces of a corpus's words, each distinct word tokenised once.

With XLM-R-style tokenizers a pre-split word's pieces do not depend on its neighbours (the
pre-tokenizer treats each word on its own and prefixes each with ``▁``), and only about a fifth
of a corpus's words are distinct, so tokenising each distinct word once and looking the rest up
is exact and skips most of the tokenizer's work. Exactness is not assumed: the first sentences
of every call are also tokenised whole and compared (``probe``); if any word's pieces differ,
the whole call falls back to whole-sentence tokenisation (``align.word_pieces``).

Pieces travel as flat arrays: ``ChunkPieces.pieces`` holds every word's pieces end to end and
``counts`` the pieces of each word, in corpus order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nertool.model.align import batch_encoder, word_pieces
from nertool.model.arrays import ID_DTYPE, concat_ranges, offsets_of

log = logging.getLogger("nertool")

WORDS_PER_INPUT = 128  # distinct words tokenised together as one pre-split input (fewer encodings)
PROBE_SENTENCES = 64


@dataclass(frozen=True)
class ChunkPieces:
    """Pieces of consecutive words: ``pieces`` end to end (int32), ``counts`` per word (int64)."""

    pieces: np.ndarray
    counts: np.ndarray

    def per_word(self) -> list[list[int]]:
        """The same as lists, one per word (for the rare sentences that need windows)."""
        flat, starts = self.pieces.tolist(), offsets_of(self.counts).tolist()
        return [flat[starts[i] : starts[i + 1]] for i in range(len(self.counts))]


class WordPieceTable:
    """Each distinct word's pieces, tokenised on first sight and kept for the whole call."""

    def __init__(self, tokenizer: Any):
        self._encode = batch_encoder(tokenizer)
        self._index: dict[str, int] = {}
        self._pieces = np.zeros(0, dtype=ID_DTYPE)
        self._counts = np.zeros(0, dtype=np.int64)

    def lookup(self, words: Sequence[str]) -> ChunkPieces:
        """Pieces of ``words`` (a flat run of words, any number of sentences)."""
        types = self._types(words)
        counts = self._counts[types]
        starts = offsets_of(self._counts)[:-1][types]
        return ChunkPieces(self._pieces[concat_ranges(starts, counts)], counts)

    def _types(self, words: Sequence[str]) -> np.ndarray:
        index, new = self._index, []
        types = []
        for word in words:
            found = index.get(word)
            if found is None:
                found = index[word] = len(index)
                new.append(word)
            types.append(found)
        if new:
            self._add(new)
        return np.asarray(types, dtype=np.int64)

    def _add(self, words: list[str]) -> None:
        """Tokenise new words, ``WORDS_PER_INPUT`` to an input, and append their pieces."""
        pieces, counts = [self._pieces], [self._counts]
        for begin in range(0, len(words), WORDS_PER_INPUT):
            batch = words[begin : begin + WORDS_PER_INPUT]
            [(ids, word_ids)] = self._encode([batch])
            pieces.append(np.asarray(ids, dtype=ID_DTYPE))
            counts.append(np.bincount(np.asarray(word_ids, dtype=np.int64), minlength=len(batch)))
        self._pieces, self._counts = np.concatenate(pieces), np.concatenate(counts).astype(np.int64)


def sentence_pieces(tokenizer: Any, sentences: Sequence[Sequence[str]]) -> ChunkPieces:
    """Pieces of every word from whole-sentence tokenisation (the fallback, and the probe's truth)."""
    grouped = word_pieces(tokenizer, sentences)
    counts = np.fromiter((len(p) for words in grouped for p in words), dtype=np.int64)
    flat = np.fromiter((i for words in grouped for p in words for i in p), dtype=ID_DTYPE)
    return ChunkPieces(flat, counts)


def probe(table: WordPieceTable, tokenizer: Any, sentences: Sequence[Sequence[str]]) -> bool:
    """True when per-word pieces equal whole-sentence pieces on these sentences."""
    words = [w for sentence in sentences for w in sentence]
    cached, whole = table.lookup(words), sentence_pieces(tokenizer, sentences)
    same = np.array_equal(cached.counts, whole.counts) and np.array_equal(cached.pieces, whole.pieces)
    if not same:
        log.info("this tokenizer's word pieces depend on their neighbours: tokenising whole sentences")
    return same
