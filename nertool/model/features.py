"""The one feature encoder: sentences → subword windows, with subword labels when a label map is given.

Training, dev scoring, evaluation, the subword-loss pass and ``predict`` all encode through
``encode`` (lists of ``Feature``) or ``encode_arrays`` (the same windows as ``FeatureArrays``),
so a sentence becomes exactly the same model input wherever it is used: the same pieces, the
same windows and the same label placement as ``align.build_features`` defines them.

How it is fast: each distinct word is tokenised once (``pieces.WordPieceTable``, checked
against whole-sentence tokenisation on the first sentences of each call), and every sentence
that fits one window (nearly all of them) is assembled for a whole chunk at once with numpy:
``<s>`` + its words' pieces + ``</s>``, word ids, and the label on each word's labelled piece.
A sentence that needs windows goes through ``align.build_features`` itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from nertool.labels import IGNORE_INDEX, LabelMap
from nertool.model.align import SPECIAL, Feature, LabelStrategy, build_features, gc_paused, skipped_piece
from nertool.model.arrays import ID_DTYPE, FeatureArrays, offsets_of
from nertool.model.pieces import PROBE_SENTENCES, ChunkPieces, WordPieceTable, probe, sentence_pieces

CHUNK_SENTENCES = 8192  # sentences assembled together: bounds the temporary arrays


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
    arrays = encode_arrays(sentences, tokenizer, max_length=max_length, labels=labels, strategy=strategy)
    return by_sentence(arrays, len(sentences))


def encode_arrays(
    sentences: Sequence[Labelled] | Sequence[Sequence[str]],
    tokenizer: Any,
    *,
    max_length: int,
    labels: LabelMap | None = None,
    strategy: LabelStrategy = "first",
) -> FeatureArrays:
    """``encode``'s windows as flat arrays (every window of every sentence, in sentence order)."""
    encoder = _ChunkEncoder(tokenizer, max_length, labels, strategy)
    words = [_words(s) for s in sentences]
    exact = encoder.table_is_exact(words[:PROBE_SENTENCES])
    parts = []
    for begin in range(0, len(sentences), CHUNK_SENTENCES):
        chunk = slice(begin, begin + CHUNK_SENTENCES)
        # narrowed per chunk, so the int32 arrays of only one chunk exist at a time
        parts.append(encoder.chunk(words[chunk], sentences[chunk], begin, exact=exact).compact())
    return FeatureArrays.concatenate(parts) if len(parts) != 1 else parts[0]


class _ChunkEncoder:
    """What one ``encode_arrays`` call keeps between chunks: the piece table and the settings."""

    def __init__(self, tokenizer: Any, max_length: int, labels: LabelMap | None, strategy: LabelStrategy):
        self.tokenizer, self.labels, self.strategy = tokenizer, labels, strategy
        self.budget = max_length - 2
        self.max_length = max_length
        self.bos, self.eos = tokenizer.bos_token_id, tokenizer.eos_token_id
        self.skip = skipped_piece(tokenizer, strategy)
        self.table = WordPieceTable(tokenizer)
        # under ``all``: the I- id of each label id, for a word's other pieces
        self.inside = None
        if strategy == "all" and labels is not None:
            self.inside = np.asarray([labels.inside_of(i) for i in range(len(labels))], dtype=np.int64)

    def table_is_exact(self, sentences: Sequence[Sequence[str]]) -> bool:
        return probe(self.table, self.tokenizer, sentences)

    def chunk(
        self, words: Sequence[Sequence[str]], sentences: Sequence[Any], first: int, *, exact: bool
    ) -> FeatureArrays:
        """Windows of one chunk of sentences (numbered from ``first``)."""
        flat = [w for sentence in words for w in sentence]
        pieces = self.table.lookup(flat) if exact else sentence_pieces(self.tokenizer, words)
        word_counts = np.fromiter((len(s) for s in words), dtype=np.int64, count=len(words))
        label_ids = None
        if self.labels is not None:
            tags = [tag for s in sentences for tag in s.tags]
            label_ids = np.asarray(self.labels.encode(tags), dtype=np.int64)
        layout = _Layout(pieces.counts, word_counts)
        short = layout.sentence_pieces <= self.budget  # one window, nothing capped
        single = self._assemble(pieces, layout, label_ids, short, first)
        if short.all():
            return single
        windowed = self._windowed(pieces, layout, label_ids, np.flatnonzero(~short), first)
        merged = FeatureArrays.concatenate([single, windowed])
        return merged.take(np.argsort(merged.sentence, kind="stable"))

    def _assemble(
        self,
        pieces: ChunkPieces,
        layout: _Layout,
        label_ids: np.ndarray | None,
        short: np.ndarray,
        first: int,
    ) -> FeatureArrays:
        """One window per short sentence, for all of them at once (``build_features``'s layout)."""
        word_mask = np.repeat(short, layout.word_counts)
        piece_mask = np.repeat(word_mask, pieces.counts)
        counts = pieces.counts[word_mask]  # pieces per kept word
        n_words = layout.word_counts[short]  # words per kept sentence
        totals = layout.sentence_pieces[short]  # pieces per kept sentence
        lengths = totals + 2
        offsets = offsets_of(lengths)
        sentence_of_piece = np.repeat(np.arange(len(totals)), totals)
        piece_positions = np.arange(len(sentence_of_piece)) + 2 * sentence_of_piece + 1
        input_ids = np.empty(int(offsets[-1]), dtype=ID_DTYPE)
        input_ids[offsets[:-1]] = self.bos
        input_ids[offsets[1:] - 1] = self.eos
        input_ids[piece_positions] = pieces.pieces[piece_mask]
        local_word = np.arange(len(counts)) - np.repeat(offsets_of(n_words)[:-1], n_words)
        word_ids = np.full(len(input_ids), SPECIAL, dtype=ID_DTYPE)
        word_ids[piece_positions] = np.repeat(local_word, counts)
        labels = None
        if label_ids is not None:
            labels = self._labels(
                len(input_ids), pieces.pieces[piece_mask], counts, label_ids[word_mask], piece_positions
            )
        core = np.stack([np.zeros_like(n_words), n_words], axis=1).astype(ID_DTYPE)
        sentence = (np.flatnonzero(short) + first).astype(ID_DTYPE)
        return FeatureArrays(input_ids, word_ids, labels, offsets, sentence, core, self.skip)

    def _labels(
        self,
        size: int,
        pieces: np.ndarray,
        counts: np.ndarray,
        word_labels: np.ndarray,
        piece_positions: np.ndarray,
    ) -> np.ndarray:
        """Each word's label on its labelled piece; ``I-`` on the rest under ``all``; -100 elsewhere."""
        labels = np.full(size, IGNORE_INDEX, dtype=ID_DTYPE)
        if self.inside is not None:
            labels[piece_positions] = np.repeat(self.inside[word_labels], counts)
        has_piece = counts > 0
        first_piece = (offsets_of(counts)[:-1] + labelled_offsets(pieces, counts, self.skip))[has_piece]
        labels[piece_positions[first_piece]] = word_labels[has_piece]
        return labels

    def _windowed(
        self,
        pieces: ChunkPieces,
        layout: _Layout,
        label_ids: np.ndarray | None,
        long: np.ndarray,
        first: int,
    ) -> FeatureArrays:
        """Sentences longer than one window, through ``align.build_features`` itself."""
        per_word = pieces.per_word()
        starts = offsets_of(layout.word_counts).tolist()
        features: list[Feature] = []
        with gc_paused():
            for index in long.tolist():
                words = slice(starts[index], starts[index + 1])
                features += build_features(
                    first + index,
                    per_word[words],
                    self.max_length,
                    bos_id=self.bos,
                    eos_id=self.eos,
                    label_ids=None if label_ids is None else label_ids[words].tolist(),
                    strategy=self.strategy,
                    inside_of=self.labels.inside_of if self.labels is not None else None,
                    skip_piece=self.skip,
                )
        return FeatureArrays.from_features(features, self.skip)


class _Layout:
    """Words per sentence and pieces per sentence of a chunk."""

    def __init__(self, piece_counts: np.ndarray, word_counts: np.ndarray):
        self.word_counts = word_counts
        word_ends = offsets_of(piece_counts)[offsets_of(word_counts)]
        self.sentence_pieces = np.diff(word_ends)


def labelled_offsets(pieces: np.ndarray, counts: np.ndarray, skip: int | None) -> np.ndarray:
    """Per word, the index (within the word) of its labelled piece: its first that is not ``skip``.

    0 for every word when nothing is skipped, and for a word made only of ``skip`` pieces (the
    same rule as ``align.labelled_positions``).
    """
    offsets = np.zeros(len(counts), dtype=np.int64)
    if skip is None or len(pieces) == 0:
        return offsets
    word_of = np.repeat(np.arange(len(counts)), counts)
    content = np.flatnonzero(pieces != skip)
    words = word_of[content]
    firsts = np.ones(len(words), dtype=bool)
    firsts[1:] = words[1:] != words[:-1]  # words are in order: the first content piece of each
    starts = offsets_of(counts)[:-1]
    offsets[words[firsts]] = content[firsts] - starts[words[firsts]]
    return offsets


def by_sentence(arrays: FeatureArrays, n_sentences: int) -> list[list[Feature]]:
    """``FeatureArrays`` (in sentence order) as one list of ``Feature`` per sentence."""
    grouped: list[list[Feature]] = [[] for _ in range(n_sentences)]
    ids, words = arrays.input_ids.tolist(), arrays.word_ids.tolist()
    labels = arrays.labels.tolist() if arrays.labels is not None else None
    offsets, cores, numbers = arrays.offsets.tolist(), arrays.core.tolist(), arrays.sentence.tolist()
    skip = arrays.skip_piece
    with gc_paused():
        for index, (sentence, (core_start, core_end)) in enumerate(zip(numbers, cores, strict=True)):
            span = slice(offsets[index], offsets[index + 1])
            row = None if labels is None else tuple(labels[span])
            grouped[sentence].append(
                Feature(sentence, tuple(ids[span]), tuple(words[span]), core_start, core_end, row, skip)
            )
    return grouped


def flatten(grouped: Sequence[Sequence[Feature]]) -> list[Feature]:
    """Every window of every sentence in one list (sentence order kept)."""
    return [feature for features in grouped for feature in features]
