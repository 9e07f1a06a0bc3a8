"""Words ↔ subwords, both ways, without losing a word.

The model sees subwords; people and seqeval see words. Everything here is a pure function
over *word ids* (which word each subword position came from, as ``word_ids()`` reports),
never over token strings: XLM-R emits bare ``▁`` pieces and some characters give no piece.

- Forward: each word's label goes on its first subword; the other subwords get
  ``IGNORE_INDEX`` (``first``) or the ``I-`` label of the word's type (``all``). Under
  ``first_content`` the label goes on the word's first piece that is not a bare ``▁`` (the
  SentencePiece word-start marker standing alone, which carries nothing of the word), or on
  its first piece when it has only bare ones.
- Windows: a sentence longer than the model allows is cut into overlapping windows of whole
  words. Every word belongs to the *core* of exactly one window, where it is trained on and
  predicted; the words around the core only give context. So nothing is truncated.
- Backward: one prediction per word, read at the word's labelled subword in its core window
  (the piece the strategy labels: a feature built under ``first_content`` remembers the piece
  id it skips, so prediction reads the very position training labelled).
  A word with no subword at all gets ``None`` and the caller gives it ``O`` on purpose.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from nertool.labels import IGNORE_INDEX

SPECIAL = -1  # word id of <s>, </s> and padding positions
LabelStrategy = Literal["first", "all", "first_content"]
BARE_PIECE = "\u2581"  # SentencePiece's word-start marker; XLM-R emits it alone before some words
# The model config attribute (saved in config.json) naming the strategy a model was trained with,
# so that every prediction path reads the piece training labelled, even from a bare model folder.
STRATEGY_ATTRIBUTE = "nertool_label_strategy"


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
    # A piece id a word's label skips while the word has another piece (``first_content``: bare ▁).
    skip_piece: int | None = None

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
    encode = batch_encoder(tokenizer)
    result: list[list[list[int]]] = []
    with gc_paused():
        for begin in range(0, len(sentences), chunk):
            batch = [list(words) for words in sentences[begin : begin + chunk]]
            for words, (ids, word_ids) in zip(batch, encode(batch), strict=True):
                result.append(group_by_word(ids, word_ids, len(words)))
    return result


def batch_encoder(tokenizer: Any) -> Callable[[list[list[str]]], list[tuple[list[int], list[int | None]]]]:
    """(ids, word ids) per pre-split sentence, without special tokens."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and getattr(tokenizer, "is_fast", False):

        def fast(batch: list[list[str]]) -> list[tuple[list[int], list[int | None]]]:
            with untruncated(backend):
                encodings = backend.encode_batch(batch, is_pretokenized=True, add_special_tokens=False)
            return [(e.ids, e.word_ids) for e in encodings]

        return fast

    def generic(batch: list[list[str]]) -> list[tuple[list[int], list[int | None]]]:
        encoded = tokenizer(batch, is_split_into_words=True, add_special_tokens=False)
        return [(encoded["input_ids"][i], encoded.word_ids(i)) for i in range(len(batch))]

    return generic


@contextmanager
def untruncated(backend: Any) -> Iterator[None]:
    """The Rust tokenizer with truncation and padding off while the block runs, then as it was.

    A transformers tokenizer called with ``truncation=True`` or ``padding=...`` (the transformers
    example's preprocessing, a pipeline) leaves that setting on its backend; every piece of every
    word must come out here, however long the input.
    """
    truncation, padding = backend.truncation, backend.padding
    if truncation is None and padding is None:
        yield
        return
    backend.no_truncation()
    backend.no_padding()
    try:
        yield
    finally:
        if truncation is not None:
            backend.enable_truncation(**truncation)
        if padding is not None:
            backend.enable_padding(**padding)


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
    skip_piece: int | None = None,
) -> list[Feature]:
    """Model inputs for one sentence (one per window), with subword labels when given.

    A single word longer than the whole budget keeps its first ``budget`` pieces: it still
    gets a position, so it is still trained on and predicted. ``skip_piece`` (the bare ``▁`` id
    under ``first_content``, from ``skipped_piece``) is kept on each feature for prediction.
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
            labels = tuple(
                subword_labels(
                    words,
                    label_ids,
                    window,
                    strategy=strategy,
                    inside_of=inside_of,
                    input_ids=ids,
                    skip_piece=skip_piece,
                )
            )
        core = (window.core_start, window.core_end)
        features.append(Feature(sentence, tuple(ids), tuple(words), *core, labels, skip_piece))
    return features


def subword_labels(
    word_ids: Sequence[int],
    label_ids: Sequence[int],
    window: Window,
    *,
    strategy: LabelStrategy = "first",
    inside_of: Callable[[int], int] | None = None,
    input_ids: Sequence[int] | None = None,
    skip_piece: int | None = None,
) -> list[int]:
    """Label per subword position: the word's label on its labelled piece in the core.

    The labelled piece is the word's first (``labelled_positions``; with ``skip_piece`` and
    ``input_ids``, its first piece that is not ``skip_piece``). The word's other pieces get
    ``IGNORE_INDEX`` (``first``, ``first_content``) or ``inside_of(label)`` (``all``); specials
    and context words outside the core always get ``IGNORE_INDEX``.
    """
    ids = input_ids if input_ids is not None else [None] * len(word_ids)
    labelled = labelled_positions(ids, word_ids, window.core_start, window.core_end, skip_piece)
    inside = strategy == "all" and inside_of is not None
    labels = []
    for position, word in enumerate(word_ids):
        if labelled.get(word) == position:
            labels.append(label_ids[word])
        elif inside and window.core_start <= word < window.core_end:
            labels.append(inside_of(label_ids[word]))  # type: ignore[misc]
        else:
            labels.append(IGNORE_INDEX)
    return labels


def labelled_positions(
    input_ids: Sequence[int | None],
    word_ids: Sequence[int],
    core_start: int,
    core_end: int,
    skip_piece: int | None = None,
) -> dict[int, int]:
    """Core word → the position its label sits on: its first piece that is not ``skip_piece``.

    A word whose pieces are all ``skip_piece`` (a word that is only a bare ``▁``) keeps its
    first piece, so every word with a piece is still labelled and predicted.
    """
    first: dict[int, int] = {}
    content: dict[int, int] = {}
    for position, (piece, word) in enumerate(zip(input_ids, word_ids, strict=True)):
        if not core_start <= word < core_end:
            continue
        first.setdefault(word, position)
        if skip_piece is not None and piece != skip_piece:
            content.setdefault(word, position)
    return first if skip_piece is None else {word: content.get(word, p) for word, p in first.items()}


def first_piece_positions(feature: Feature) -> dict[int, int]:
    """Core word → position of its labelled subword in this feature (its first, or first content)."""
    return labelled_positions(
        feature.input_ids, feature.word_ids, feature.core_start, feature.core_end, feature.skip_piece
    )


def bare_piece_id(tokenizer: Any) -> int | None:
    """Id of the bare ``▁`` piece in this tokenizer's vocabulary, or None when it has none.

    Looked up once per encoding call; a tokenizer without such a piece maps it to its unknown
    token, which is not a bare piece.
    """
    piece = tokenizer.convert_tokens_to_ids(BARE_PIECE)
    if piece is None or piece == getattr(tokenizer, "unk_token_id", None):
        return None
    return int(piece)


def skipped_piece(tokenizer: Any, strategy: LabelStrategy) -> int | None:
    """The piece id a word's label skips under ``strategy`` (only ``first_content`` skips one)."""
    return bare_piece_id(tokenizer) if strategy == "first_content" else None


def label_strategy_of(model: Any) -> LabelStrategy:
    """The strategy a model was trained with, as its config records it (``first`` when it does not)."""
    return as_label_strategy(getattr(getattr(model, "config", None), STRATEGY_ATTRIBUTE, "first"))


def as_label_strategy(value: Any) -> LabelStrategy:
    """``value`` when it names a strategy, else ``first`` (what every model had before the setting)."""
    return cast("LabelStrategy", value) if value in get_args(LabelStrategy) else "first"


def record_label_strategy(model: Any, strategy: LabelStrategy) -> None:
    """Write the strategy into the model's config (and so config.json); ``first`` is left implicit."""
    if strategy != "first":
        setattr(model.config, STRATEGY_ATTRIBUTE, strategy)


def merge_word_values(
    n_words: int, features: Sequence[Feature], values: Sequence[Sequence[Any]]
) -> list[Any]:
    """One value per word from per-position values of a sentence's features (``None`` if no piece).

    ``values[i][p]`` is what the model said at position ``p`` of ``features[i]`` (a label id,
    a probability, a loss); each word's value is read at its labelled piece in its core window.
    """
    merged: list[Any] = [None] * n_words
    for feature, per_position in zip(features, values, strict=True):
        for word, position in first_piece_positions(feature).items():
            merged[word] = per_position[position]
    return merged
