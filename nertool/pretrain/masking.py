"""Masked-language-model building blocks for ``nertool pretrain``: token masking and sequence packing.

Everything here is pure and model-independent (ints and tensors in, ints and tensors out), so the
objective can be checked statistically in fast tests and the training loop stays a short sequence
of calls: ``pack_documents`` → ``collate_blocks`` → ``mask_tokens`` → model → loss.

Masking follows BERT/RoBERTa: a share ``mlm_probability`` of the eligible subwords is chosen; of
those, 80% become ``<mask>``, 10% a random ordinary token, 10% stay as they are, so the model
cannot learn that only ``<mask>`` positions matter. With word ids, whole words are chosen together
(the 80/10/10 split is still drawn per subword, as in BERT's whole-word-masking release), because a
model that sees ``Bund▁esre<mask>`` learns to finish words rather than to use context.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from nertool.errors import ConfigError, DataError

# Same value as the cross-entropy ``ignore_index`` used for token classification.
IGNORE_INDEX = -100
MASK_SHARE = 0.8  # of the chosen subwords: replaced by <mask>
RANDOM_SHARE = 0.1  # of the chosen subwords: replaced by a random ordinary token; the rest are kept
_SPECIALS_PER_DOCUMENT = 2  # <s> ... </s>

WordKey = tuple[int, int] | None  # (document index, word index inside it); None for specials


# ---------------------------------------------------------------------------------------------
# Masking
# ---------------------------------------------------------------------------------------------


def mask_tokens(
    input_ids: torch.Tensor,
    special_mask: torch.Tensor,
    *,
    mask_token_id: int,
    vocab_size: int,
    n_special: int,
    mlm_probability: float = 0.15,
    generator: torch.Generator,
    word_ids: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Corrupt a batch for the MLM objective; return ``(inputs, labels)`` as new tensors.

    ``input_ids`` (batch, seq) long; ``special_mask`` (batch, seq) bool, True where a position must
    never be chosen (``<s>``, ``</s>``, padding). ``word_ids`` (batch, seq) long, -1 at specials,
    switches on whole-word masking: ids only need to be unique within a row (as
    ``collate_blocks`` gives them). Random replacements are drawn from ``[n_special, vocab_size)``
    so the model is never fed a stray ``<pad>`` or ``</s>``. All randomness comes from
    ``generator`` (which must live on the tensors' device), so a seed fixes the result; the inputs
    are never modified.
    """
    _check_mask_args(input_ids, special_mask, word_ids, mlm_probability)
    _check_vocab_args(mask_token_id, vocab_size, n_special)
    chosen = _choose_positions(special_mask, mlm_probability, generator, word_ids)  # (batch, seq) bool
    labels = input_ids.masked_fill(~chosen, IGNORE_INDEX)  # (batch, seq)
    inputs = _corrupt_chosen(input_ids, chosen, mask_token_id, vocab_size, n_special, generator)
    return inputs, labels


def _check_mask_args(
    input_ids: torch.Tensor, special_mask: torch.Tensor, word_ids: torch.Tensor | None, probability: float
) -> None:
    """Reject shapes and dtypes that would otherwise broadcast silently into wrong masks."""
    if input_ids.dim() != 2:
        raise DataError(f"input_ids must be (batch, seq); got shape {tuple(input_ids.shape)}")
    if special_mask.shape != input_ids.shape or special_mask.dtype != torch.bool:
        raise DataError(
            f"special_mask must be a bool tensor of shape {tuple(input_ids.shape)}; "
            f"got {special_mask.dtype} {tuple(special_mask.shape)}"
        )
    if word_ids is not None and word_ids.shape != input_ids.shape:
        raise DataError(
            f"word_ids must have the shape of input_ids {tuple(input_ids.shape)}; got {tuple(word_ids.shape)}"
        )
    if not 0.0 <= probability <= 1.0:
        raise ConfigError(f"mlm_probability must lie in [0, 1]; got {probability}: use e.g. 0.15")


def _check_vocab_args(mask_token_id: int, vocab_size: int, n_special: int) -> None:
    """The random-replacement range must be non-empty and the mask id a real vocabulary entry."""
    if not 0 <= n_special < vocab_size:
        raise ConfigError(
            f"need 0 <= n_special < vocab_size to draw random replacements; got n_special={n_special}, "
            f"vocab_size={vocab_size}"
        )
    if not 0 <= mask_token_id < vocab_size:
        raise ConfigError(f"mask_token_id {mask_token_id} is outside the vocabulary [0, {vocab_size})")


def _choose_positions(
    special_mask: torch.Tensor, probability: float, generator: torch.Generator, word_ids: torch.Tensor | None
) -> torch.Tensor:
    """Bool (batch, seq): the positions the model must predict; specials are never among them."""
    eligible = ~special_mask  # (batch, seq)
    if word_ids is None:
        draw = torch.rand(special_mask.shape, generator=generator, device=special_mask.device)
        return eligible & (draw < probability)
    eligible &= word_ids >= 0
    n_words = max(int(word_ids.max().item()) + 1, 1) if word_ids.numel() else 1
    word_draw = torch.rand(
        (special_mask.shape[0], n_words), generator=generator, device=special_mask.device
    )  # (batch, n_words): one draw per word and row, shared by all of the word's subwords
    word_chosen = torch.gather(word_draw < probability, 1, word_ids.clamp(min=0).long())  # (batch, seq)
    return eligible & word_chosen


def _corrupt_chosen(
    input_ids: torch.Tensor,
    chosen: torch.Tensor,
    mask_token_id: int,
    vocab_size: int,
    n_special: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Apply the 80/10/10 split to the chosen positions of a copy of ``input_ids``."""
    device = input_ids.device
    action = torch.rand(input_ids.shape, generator=generator, device=device)  # (batch, seq)
    to_mask = chosen & (action < MASK_SHARE)
    to_random = chosen & (action >= MASK_SHARE) & (action < MASK_SHARE + RANDOM_SHARE)
    random_ids = torch.randint(
        n_special, vocab_size, input_ids.shape, generator=generator, device=device, dtype=input_ids.dtype
    )  # (batch, seq)
    inputs = input_ids.masked_fill(to_mask, mask_token_id)  # a new tensor: the caller's stays intact
    return torch.where(to_random, random_ids, inputs)


def mlm_stats(
    inputs_before: torch.Tensor,
    inputs_after: torch.Tensor,
    labels: torch.Tensor,
    special_mask: torch.Tensor,
    mask_token_id: int,
) -> dict[str, float]:
    """Shares that show whether masking behaves as configured, for tests and training logs.

    ``share_chosen`` is over eligible (non-special) positions; ``share_masked``,
    ``share_replaced`` and ``share_kept`` are over chosen positions. A random replacement that
    happens to draw the original id counts as kept, since the model sees the original token.
    The two ``n_*`` error counts must be zero: chosen specials, changed unchosen positions.
    """
    chosen = labels != IGNORE_INDEX  # (batch, seq)
    masked = chosen & (inputs_after == mask_token_id)
    kept = chosen & ~masked & (inputs_after == inputs_before)
    replaced = chosen & ~masked & ~kept
    n_eligible = int((~special_mask).sum())
    n_chosen = int(chosen.sum())
    return {
        "n_eligible": float(n_eligible),
        "n_chosen": float(n_chosen),
        "share_chosen": n_chosen / max(n_eligible, 1),
        "share_masked": int(masked.sum()) / max(n_chosen, 1),
        "share_replaced": int(replaced.sum()) / max(n_chosen, 1),
        "share_kept": int(kept.sum()) / max(n_chosen, 1),
        "n_chosen_special": float(int((chosen & special_mask).sum())),
        "n_changed_unchosen": float(int((~chosen & (inputs_after != inputs_before)).sum())),
    }


# ---------------------------------------------------------------------------------------------
# Packing
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackedBlock:
    """One attention window of at most ``block_size`` positions, before padding.

    ``doc_ids`` holds the source document index per position (-1 for ``<s>``/``</s>``), so a
    block can be traced back to its data. ``word_ids`` (present when word boundaries were given)
    numbers words 0, 1, ... in order of appearance inside this block, -1 for specials: the same
    word index in two documents of one block gets two different ids.
    """

    input_ids: list[int]
    doc_ids: list[int]
    word_ids: list[int] | None = None


@dataclass(frozen=True)
class _Span:
    """The tokens ``[start, end)`` of document ``doc``, to be wrapped in ``<s> ... </s>``."""

    doc: int
    start: int
    end: int


def pack_documents(
    docs: Sequence[Sequence[int]],
    block_size: int,
    bos_id: int,
    eos_id: int,
    cross_documents: bool = False,
    *,
    doc_word_ids: Sequence[Sequence[int]] | None = None,
    keep_remainder: bool = False,
) -> list[PackedBlock]:
    """Pack documents (token ids without specials) into blocks of at most ``block_size`` positions.

    Every document is wrapped as ``<s> tokens </s>``; empty documents are skipped.

    ``cross_documents=False`` (default): documents are placed whole, in order, and a block is
    closed when the next document does not fit, so no document is ever cut between two windows.
    A document longer than ``block_size - 2`` tokens is the one exception: it is cut into
    consecutive blocks of its own (each ``<s> piece </s>``, cut at a word boundary where word ids
    allow), never shared with other documents. Blocks then vary in length; pad with
    ``collate_blocks``.

    ``cross_documents=True``: the wrapped documents are concatenated and cut into blocks of
    exactly ``block_size`` (RoBERTa's FULL-SENTENCES), with no padding. The last, shorter block is
    dropped unless ``keep_remainder``.

    ``doc_word_ids`` (a word index per token, per document, e.g. from a tokenizer's ``word_ids()``)
    adds block-unique ``word_ids`` for whole-word masking.
    """
    _check_packing_args(docs, block_size, doc_word_ids)
    if cross_documents:
        spans = [_Span(doc, 0, len(tokens)) for doc, tokens in enumerate(docs) if tokens]
        stream = _wrap_spans(spans, docs, doc_word_ids, bos_id, eos_id)
        return _cut_stream(stream, block_size, keep_remainder)
    plan = _plan_blocks(docs, block_size, doc_word_ids)
    return [_to_block(_wrap_spans(spans, docs, doc_word_ids, bos_id, eos_id)) for spans in plan]


def _check_packing_args(
    docs: Sequence[Sequence[int]], block_size: int, doc_word_ids: Sequence[Sequence[int]] | None
) -> None:
    """Catch a block too small for one token and word ids that do not line up with the tokens."""
    if block_size < _SPECIALS_PER_DOCUMENT + 1:
        raise ConfigError(f"block_size must be at least 3 (<s>, one token, </s>); got {block_size}")
    if doc_word_ids is None:
        return
    if len(doc_word_ids) != len(docs):
        raise DataError(f"doc_word_ids has {len(doc_word_ids)} documents but docs has {len(docs)}")
    for index, (tokens, words) in enumerate(zip(docs, doc_word_ids, strict=True)):
        if len(tokens) != len(words):
            raise DataError(f"document {index}: {len(tokens)} tokens but {len(words)} word ids")
        if any(word < 0 for word in words):
            raise DataError(f"document {index}: word ids must be >= 0 (pass tokens without specials)")


def _plan_blocks(
    docs: Sequence[Sequence[int]], block_size: int, doc_word_ids: Sequence[Sequence[int]] | None
) -> list[list[_Span]]:
    """Greedy next-fit of whole documents into blocks, keeping document order."""
    room = block_size - _SPECIALS_PER_DOCUMENT
    plan: list[list[_Span]] = []
    current: list[_Span] = []
    used = 0
    for doc, tokens in enumerate(docs):
        length = len(tokens)
        if length == 0:
            continue
        if current and (length > room or used + length + _SPECIALS_PER_DOCUMENT > block_size):
            plan.append(current)
            current, used = [], 0
        if length > room:  # too long for any block: cut, alone in its blocks
            plan.extend([piece] for piece in _split_long(doc, length, room, doc_word_ids))
            continue
        current.append(_Span(doc, 0, length))
        used += length + _SPECIALS_PER_DOCUMENT
    return [*plan, current] if current else plan


def _split_long(
    doc: int, length: int, room: int, doc_word_ids: Sequence[Sequence[int]] | None
) -> list[_Span]:
    """Consecutive pieces of at most ``room`` tokens, each ending on a word boundary if one exists."""
    words = None if doc_word_ids is None else doc_word_ids[doc]
    pieces = []
    start = 0
    while start < length:
        end = min(start + room, length)
        if words is not None and end < length:
            end = _last_word_start(words, start, end)
        pieces.append(_Span(doc, start, end))
        start = end
    return pieces


def _last_word_start(words: Sequence[int], start: int, end: int) -> int:
    """The largest cut in ``(start, end]`` that does not split a word; ``end`` if the word is too long."""
    for cut in range(end, start, -1):
        if words[cut] != words[cut - 1]:
            return cut
    return end


@dataclass(frozen=True)
class _Stream:
    """Wrapped tokens with, per position, the source document and word (before block numbering)."""

    input_ids: list[int]
    doc_ids: list[int]
    word_keys: list[WordKey] | None


def _wrap_spans(
    spans: Sequence[_Span],
    docs: Sequence[Sequence[int]],
    doc_word_ids: Sequence[Sequence[int]] | None,
    bos_id: int,
    eos_id: int,
) -> _Stream:
    """Concatenate ``<s> span </s>`` for each span, tracking where every position came from."""
    input_ids: list[int] = []
    doc_ids: list[int] = []
    word_keys: list[WordKey] = []
    for span in spans:
        input_ids += [bos_id, *docs[span.doc][span.start : span.end], eos_id]
        doc_ids += [-1, *[span.doc] * (span.end - span.start), -1]
        if doc_word_ids is not None:
            inner = [(span.doc, word) for word in doc_word_ids[span.doc][span.start : span.end]]
            word_keys += [None, *inner, None]
    return _Stream(input_ids, doc_ids, word_keys if doc_word_ids is not None else None)


def _cut_stream(stream: _Stream, block_size: int, keep_remainder: bool) -> list[PackedBlock]:
    """Exact ``block_size`` slices of one long stream (documents may straddle blocks)."""
    total = len(stream.input_ids)
    stop = total if keep_remainder else total - total % block_size
    blocks = []
    for start in range(0, stop, block_size):
        end = min(start + block_size, stop)
        keys = None if stream.word_keys is None else stream.word_keys[start:end]
        blocks.append(_to_block(_Stream(stream.input_ids[start:end], stream.doc_ids[start:end], keys)))
    return blocks


def _to_block(stream: _Stream) -> PackedBlock:
    """Freeze a stream slice into a block, numbering its words in order of appearance."""
    if stream.word_keys is None:
        return PackedBlock(list(stream.input_ids), list(stream.doc_ids))
    return PackedBlock(list(stream.input_ids), list(stream.doc_ids), _number_words(stream.word_keys))


def _number_words(word_keys: Sequence[WordKey]) -> list[int]:
    """Block-unique word ids 0, 1, ...; -1 for specials."""
    numbers: dict[tuple[int, int], int] = {}
    word_ids = []
    for key in word_keys:
        if key is None:
            word_ids.append(-1)
        else:
            word_ids.append(numbers.setdefault(key, len(numbers)))
    return word_ids


def collate_blocks(blocks: Sequence[PackedBlock], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad blocks to the longest one; tensors ready for ``mask_tokens`` and the model.

    Returns ``input_ids`` (batch, seq) long, ``attention_mask`` (batch, seq) long (1 = real),
    ``special_tokens_mask`` (batch, seq) bool (True at ``<s>``, ``</s>`` and padding) and, when
    every block carries word ids, ``word_ids`` (batch, seq) long (-1 at specials and padding).
    """
    if not blocks:
        raise DataError("no blocks to collate: the pre-training text produced no tokens")
    with_words = [block.word_ids is not None for block in blocks]
    if any(with_words) and not all(with_words):
        raise DataError("some blocks carry word ids and some do not: pack them with the same doc_word_ids")
    shape = (len(blocks), max(len(block.input_ids) for block in blocks))
    batch = {
        "input_ids": torch.full(shape, pad_id, dtype=torch.long),  # (batch, seq)
        "attention_mask": torch.zeros(shape, dtype=torch.long),  # (batch, seq)
        "special_tokens_mask": torch.ones(shape, dtype=torch.bool),  # (batch, seq)
    }
    if all(with_words):
        batch["word_ids"] = torch.full(shape, -1, dtype=torch.long)  # (batch, seq)
    for row, block in enumerate(blocks):
        _fill_row(batch, row, block)
    return batch


def _fill_row(batch: dict[str, torch.Tensor], row: int, block: PackedBlock) -> None:
    """Copy one block into the first ``len(block)`` columns of row ``row``."""
    length = len(block.input_ids)
    batch["input_ids"][row, :length] = torch.tensor(block.input_ids, dtype=torch.long)
    batch["attention_mask"][row, :length] = 1
    batch["special_tokens_mask"][row, :length] = torch.tensor(block.doc_ids, dtype=torch.long) < 0
    if "word_ids" in batch and block.word_ids is not None:
        batch["word_ids"][row, :length] = torch.tensor(block.word_ids, dtype=torch.long)
