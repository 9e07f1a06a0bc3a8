"""Words ↔ subwords, both ways, without losing a word.

The model sees subwords; people and seqeval see words. Everything here is a pure function
over *word ids* (which word each subword position came from, as ``word_ids()`` reports),
never over token strings: XLM-R emits bare ``▁`` pieces and some characters give no piece.

- Forward: each word's label goes on its first subword; the other subwords get
  ``IGNORE_INDEX`` (``first``) or the ``I-`` label of the word's type (``all``).
- Windows: a sentence longer than the model allows is cut into overlapping windows of whole
  words. Every word belongs to the *core* of exactly one window, where it is trained on and
  predicted; the words around the core only give context. So nothing is truncated.
- Backward: one prediction per word, read at the word's first subword in its core window.
  A word with no subword at all gets ``None`` and the caller gives it ``O`` on purpose.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from nertool.labels import IGNORE_INDEX

SPECIAL = -1  # word id of <s>, </s> and padding positions
LabelStrategy = Literal["first", "all"]


@dataclass(frozen=True)
class Window:
    """Words ``[start, end)`` go into one model input; words ``[core_start, core_end)`` are its own."""

    start: int
    end: int
    core_start: int
    core_end: int


@dataclass(frozen=True)
class Feature:
    """One model input: subword ids, the word of each position (``SPECIAL`` for specials)."""

    sentence: int
    input_ids: tuple[int, ...]
    word_ids: tuple[int, ...]
    core_start: int
    core_end: int
    labels: tuple[int, ...] | None = None

    def __len__(self) -> int:
        return len(self.input_ids)


def word_pieces(
    tokenizer: Any, sentences: Sequence[Sequence[str]], chunk: int = 1000
) -> list[list[list[int]]]:
    """Subword ids of every word of every sentence (``[]`` for a word that yields none).

    Tokenises whole sentences as pre-split words (so each word gets XLM-R's word-initial ``▁``
    exactly as in pre-training) and groups pieces by ``word_ids``. The fast tokenizer's own
    backend is called when there is one (same ids, without transformers' per-sentence
    conversions), and the garbage collector is paused while millions of small lists are made.
    """
    encode = _batch_encoder(tokenizer)
    result: list[list[list[int]]] = []
    with gc_paused():
        for begin in range(0, len(sentences), chunk):
            batch = [list(words) for words in sentences[begin : begin + chunk]]
            for words, (ids, word_ids) in zip(batch, encode(batch), strict=True):
                result.append(group_by_word(ids, word_ids, len(words)))
    return result


def _batch_encoder(tokenizer: Any) -> Callable[[list[list[str]]], list[tuple[list[int], list[int | None]]]]:
    """(ids, word ids) per pre-split sentence, without special tokens."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and getattr(tokenizer, "is_fast", False):

        def fast(batch: list[list[str]]) -> list[tuple[list[int], list[int | None]]]:
            encodings = backend.encode_batch(batch, is_pretokenized=True, add_special_tokens=False)
            return [(e.ids, e.word_ids) for e in encodings]

        return fast

    def generic(batch: list[list[str]]) -> list[tuple[list[int], list[int | None]]]:
        encoded = tokenizer(batch, is_split_into_words=True, add_special_tokens=False)
        return [(encoded["input_ids"][i], encoded.word_ids(i)) for i in range(len(batch))]

    return generic


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small, acyclic lists.

    Building features allocates millions of small lists, which triggers collections that
    find nothing; pausing them makes encoding about a third faster.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def group_by_word(input_ids: Sequence[int], word_ids: Sequence[int | None], n_words: int) -> list[list[int]]:
    """Pieces per word from a flat encoding; words absent from ``word_ids`` get ``[]``."""
    pieces: list[list[int]] = [[] for _ in range(n_words)]
    for piece, word in zip(input_ids, word_ids, strict=True):
        if word is not None:
            pieces[word].append(piece)
    return pieces


def plan_windows(lengths: Sequence[int], budget: int) -> list[Window]:
    """Cover all words with windows of at most ``budget`` subwords, cores disjoint and complete.

    ``lengths`` are subwords per word (already capped at ``budget``). Cores take at most half
    the budget, so each core word sees context on both sides; context is then added
    alternately left and right while it fits.
    """
    if sum(lengths) <= budget:
        return [Window(0, len(lengths), 0, len(lengths))]
    windows = []
    start = 0
    while start < len(lengths):
        end = _core_end(lengths, start, max(1, budget // 2))
        windows.append(_add_context(lengths, start, end, budget))
        start = end
    return windows


def _core_end(lengths: Sequence[int], start: int, core_budget: int) -> int:
    """End of a core starting at ``start``: as many words as fit, at least one."""
    end, used = start, 0
    while end < len(lengths) and (end == start or used + lengths[end] <= core_budget):
        used += lengths[end]
        end += 1
    return end


def _add_context(lengths: Sequence[int], core_start: int, core_end: int, budget: int) -> Window:
    left, right, used = core_start, core_end, sum(lengths[core_start:core_end])
    grew = True
    while grew:
        grew = False
        if right < len(lengths) and used + lengths[right] <= budget:
            used, right, grew = used + lengths[right], right + 1, True
        if left > 0 and used + lengths[left - 1] <= budget:
            used, left, grew = used + lengths[left - 1], left - 1, True
    return Window(left, right, core_start, core_end)


def build_features(
    sentence: int,
    pieces: Sequence[Sequence[int]],
    max_length: int,
    *,
    bos_id: int,
    eos_id: int,
    label_ids: Sequence[int] | None = None,
    strategy: LabelStrategy = "first",
    inside_of: Callable[[int], int] | None = None,
) -> list[Feature]:
    """Model inputs for one sentence (one per window), with subword labels when given.

    A single word longer than the whole budget keeps its first ``budget`` pieces: it still
    gets a position, so it is still trained on and predicted.
    """
    budget = max_length - 2
    capped = [list(p[:budget]) for p in pieces]
    features = []
    for window in plan_windows([len(p) for p in capped], budget):
        ids, words = [bos_id], [SPECIAL]
        for word in range(window.start, window.end):
            ids += capped[word]
            words += [word] * len(capped[word])
        ids.append(eos_id)
        words.append(SPECIAL)
        labels = None
        if label_ids is not None:
            labels = tuple(subword_labels(words, label_ids, window, strategy=strategy, inside_of=inside_of))
        features.append(
            Feature(sentence, tuple(ids), tuple(words), window.core_start, window.core_end, labels)
        )
    return features


def subword_labels(
    word_ids: Sequence[int],
    label_ids: Sequence[int],
    window: Window,
    *,
    strategy: LabelStrategy = "first",
    inside_of: Callable[[int], int] | None = None,
) -> list[int]:
    """Label per subword position: the word's label on its first piece in the core.

    Continuation pieces get ``IGNORE_INDEX`` (``first``) or ``inside_of(label)`` (``all``);
    specials and context words outside the core always get ``IGNORE_INDEX``.
    """
    labels = []
    previous = SPECIAL
    for word in word_ids:
        in_core = window.core_start <= word < window.core_end
        if word == SPECIAL or not in_core:
            labels.append(IGNORE_INDEX)
        elif word != previous:
            labels.append(label_ids[word])
        elif strategy == "all" and inside_of is not None:
            labels.append(inside_of(label_ids[word]))
        else:
            labels.append(IGNORE_INDEX)
        previous = word
    return labels


def first_piece_positions(feature: Feature) -> dict[int, int]:
    """Core word → position of its first subword in this feature."""
    positions: dict[int, int] = {}
    for position, word in enumerate(feature.word_ids):
        if feature.core_start <= word < feature.core_end and word not in positions:
            positions[word] = position
    return positions


def merge_word_values(
    n_words: int, features: Sequence[Feature], values: Sequence[Sequence[Any]]
) -> list[Any]:
    """One value per word from per-position values of a sentence's features (``None`` if no piece).

    ``values[i][p]`` is what the model said at position ``p`` of ``features[i]`` (a label id,
    a probability, a loss); each word's value is read at its first piece in its core window.
    """
    merged: list[Any] = [None] * n_words
    for feature, per_position in zip(features, values, strict=True):
        for word, position in first_piece_positions(feature).items():
            merged[word] = per_position[position]
    return merged
