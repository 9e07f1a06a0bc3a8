"""Features as flat arrays: every window of a corpus in a few contiguous integer numpy arrays.

A ``Feature`` is a handful of Python tuples, about 1.6 KB per training sentence; a million
sentences then cost gigabytes in every process. ``FeatureArrays`` holds the same windows as
one array per field (token ids, word ids, labels: one entry per subword position, all windows
end to end) plus per-window offsets, about 8 bytes per position (``compact``). It is a
``Sequence[Feature]`` (indexing builds the ``Feature`` a collator expects), so the training loop
and every function that takes a list of features take it too. Arrays can be memory-mapped from
the feature cache (``model.cache``), and ``shard`` gives a process its own rows only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from nertool.model.align import Feature

ID_DTYPE = np.int32  # token ids, word ids, labels, sentence numbers and core bounds
OFFSET_DTYPE = np.int64  # window starts: a corpus may hold more than 2**31 positions


@dataclass(frozen=True, eq=False)
class FeatureArrays(Sequence[Feature]):
    """Windows ``i`` spans positions ``offsets[i]:offsets[i + 1]`` of the per-position arrays.

    ``labels`` is None for unlabelled features; ``skip_piece`` is what every window's
    ``Feature.skip_piece`` is (the bare ``▁`` id under ``first_content``).
    """

    input_ids: np.ndarray  # (positions,) int32
    word_ids: np.ndarray  # (positions,) int32, SPECIAL for <s>/</s>
    labels: np.ndarray | None  # (positions,) int32, IGNORE_INDEX where nothing is learnt
    offsets: np.ndarray  # (windows + 1,) int64, starting at 0
    sentence: np.ndarray  # (windows,) int32
    core: np.ndarray  # (windows, 2) int32: core_start, core_end
    skip_piece: int | None = None

    # ------------------------------------------------------------------ building

    @classmethod
    def from_features(cls, features: Iterable[Feature], skip_piece: int | None = None) -> FeatureArrays:
        """Arrays of a list of features (all labelled or none)."""
        items = list(features)
        labelled = bool(items) and all(f.labels is not None for f in items)
        if items and skip_piece is None:
            skip_piece = items[0].skip_piece
        lengths = np.fromiter((len(f) for f in items), dtype=OFFSET_DTYPE, count=len(items))
        return cls(
            input_ids=_flat((f.input_ids for f in items), int(lengths.sum())),
            word_ids=_flat((f.word_ids for f in items), int(lengths.sum())),
            labels=_flat((f.labels or () for f in items), int(lengths.sum())) if labelled else None,
            offsets=offsets_of(lengths),
            sentence=np.fromiter((f.sentence for f in items), dtype=ID_DTYPE, count=len(items)),
            core=np.array([(f.core_start, f.core_end) for f in items], dtype=ID_DTYPE).reshape(-1, 2),
            skip_piece=skip_piece,
        )

    @classmethod
    def concatenate(cls, parts: Sequence[FeatureArrays]) -> FeatureArrays:
        """One container of several, in order (sentence numbers are kept as they are)."""
        if not parts:
            return cls.from_features([])
        lengths = np.concatenate([part.lengths() for part in parts])
        labels = None
        if all(part.labels is not None for part in parts):
            labels = np.concatenate([part.labels for part in parts if part.labels is not None])
        return cls(
            input_ids=np.concatenate([part.input_ids for part in parts]),
            word_ids=np.concatenate([part.word_ids for part in parts]),
            labels=labels,
            offsets=offsets_of(lengths),
            sentence=np.concatenate([part.sentence for part in parts]),
            core=np.concatenate([part.core for part in parts]),
            skip_piece=parts[0].skip_piece,
        )

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self.sentence)

    @overload
    def __getitem__(self, index: int) -> Feature: ...
    @overload
    def __getitem__(self, index: slice) -> FeatureArrays: ...

    def __getitem__(self, index: int | slice) -> Feature | FeatureArrays:
        if isinstance(index, slice):
            return self.take(range(len(self))[index])
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"feature {index} of {len(self)}")
        return self._feature(index)

    def __getitems__(self, indices: Sequence[int]) -> list[Feature]:
        """A batch of features at once (``torch.utils.data.DataLoader`` calls this when defined)."""
        return [self[i] for i in indices]

    def __iter__(self) -> Iterator[Feature]:
        return (self._feature(i) for i in range(len(self)))

    def _feature(self, index: int) -> Feature:
        start, end = int(self.offsets[index]), int(self.offsets[index + 1])
        labels = None if self.labels is None else tuple(self.labels[start:end].tolist())
        core_start, core_end = self.core[index].tolist()
        return Feature(
            int(self.sentence[index]),
            tuple(self.input_ids[start:end].tolist()),
            tuple(self.word_ids[start:end].tolist()),
            core_start,
            core_end,
            labels,
            self.skip_piece,
        )

    def lengths(self) -> np.ndarray:
        """Positions per window: (windows,) int64."""
        return np.diff(self.offsets)

    def take(self, indices: Sequence[int] | np.ndarray) -> FeatureArrays:
        """A new container of the windows at ``indices``, in that order (copies only their rows)."""
        chosen = np.asarray(indices, dtype=np.int64)
        lengths = self.lengths()[chosen]
        positions = concat_ranges(self.offsets[:-1][chosen], lengths)
        return FeatureArrays(
            input_ids=np.ascontiguousarray(self.input_ids[positions]),
            word_ids=np.ascontiguousarray(self.word_ids[positions]),
            labels=None if self.labels is None else np.ascontiguousarray(self.labels[positions]),
            offsets=offsets_of(lengths),
            sentence=np.ascontiguousarray(self.sentence[chosen]),
            core=np.ascontiguousarray(self.core[chosen]),
            skip_piece=self.skip_piece,
        )

    def shard(self, rank: int, world: int) -> FeatureArrays:
        """Every ``world``-th window from ``rank``: one process's share, read without the rest.

        On memory-mapped arrays only the pages of the shard's own rows are read.
        """
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is not one of {world} processes")
        return self.take(np.arange(rank, len(self), world))

    def compact(self) -> FeatureArrays:
        """The same windows with word ids and labels in int16 where their values fit (they
        almost always do: word ids count words of a sentence, labels are a handful of ids and
        -100), 8 instead of 12 bytes a position; the collator widens them to int64 per batch."""
        labels = None if self.labels is None else _narrow(self.labels)
        return FeatureArrays(
            self.input_ids,
            _narrow(self.word_ids),
            labels,
            self.offsets,
            self.sentence,
            self.core,
            self.skip_piece,
        )

    def nbytes(self) -> int:
        """Bytes the arrays hold (what a process keeps resident once they are all read)."""
        arrays = [self.input_ids, self.word_ids, self.offsets, self.sentence, self.core]
        return sum(int(a.nbytes) for a in arrays) + (0 if self.labels is None else int(self.labels.nbytes))

    def fields(self) -> dict[str, np.ndarray]:
        """The arrays by name (what the cache writes), labels only when there are labels."""
        arrays = {
            "input_ids": self.input_ids,
            "word_ids": self.word_ids,
            "offsets": self.offsets,
            "sentence": self.sentence,
            "core": self.core,
        }
        if self.labels is not None:
            arrays["labels"] = self.labels
        return arrays

    def same_as(self, other: Any) -> bool:
        """Equal windows: the same positions, words, labels, cores and skipped piece."""
        if not isinstance(other, FeatureArrays) or self.skip_piece != other.skip_piece:
            return False
        mine, theirs = self.fields(), other.fields()
        return mine.keys() == theirs.keys() and all(np.array_equal(mine[k], theirs[k]) for k in mine)


def _narrow(values: np.ndarray) -> np.ndarray:
    """``values`` as int16 when every value fits, else as they are."""
    small = np.iinfo(np.int16)
    if values.size and (int(values.min()) < small.min or int(values.max()) > small.max):
        return values
    return values.astype(np.int16)


def offsets_of(lengths: np.ndarray) -> np.ndarray:
    """Window starts from window lengths: ``[0, l0, l0 + l1, ...]``."""
    offsets = np.zeros(len(lengths) + 1, dtype=OFFSET_DTYPE)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def concat_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, lengths)])`` without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    keep = lengths > 0
    begins, counts = starts[keep].astype(np.int64), lengths[keep].astype(np.int64)
    firsts = np.cumsum(counts) - counts  # where each range begins in the output
    steps = np.ones(total, dtype=np.int64)
    steps[0] = begins[0]
    steps[firsts[1:]] = begins[1:] - (begins[:-1] + counts[:-1] - 1)  # jump from one range's end
    return np.cumsum(steps)


def _flat(rows: Iterable[Sequence[int]], total: int) -> np.ndarray:
    return np.fromiter((value for row in rows for value in row), dtype=ID_DTYPE, count=total)


def lengths_of(features: Sequence[Feature]) -> list[int]:
    """Positions per feature, without building a ``Feature`` per row for ``FeatureArrays``."""
    if isinstance(features, FeatureArrays):
        return features.lengths().tolist()
    return [len(f) for f in features]
