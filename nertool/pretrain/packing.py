"""Sequence packing for masked-LM pre-training: documents → fixed-size blocks → padded batches.

Blocks never cut a document unless it is longer than a block (then it is cut at a word start),
so whole-word masking always sees whole words. Pure ints and tensors, no model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from nertool.errors import ConfigError, DataError

_SPECIALS_PER_DOCUMENT = 2  # <s> ... </s>

WordKey = tuple[int, int] | None  # (document index, word index inside it); None for specials


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
