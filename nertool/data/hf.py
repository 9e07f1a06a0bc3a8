"""Hugging Face ``datasets`` as a data source: hub splits, ``save_to_disk`` folders, Parquet files.

Every one of them ends in the same conversion, ``dataset_sentences``: a ``tokens`` column of
word lists and an ``ner_tags`` column of tag lists (integer ids are mapped through the column's
``ClassLabel`` names, as WikiANN and PAN-X store them; strings are taken as they are). Other
column names come from the recipe keys ``data.tokens_column`` / ``data.tags_column``, like
``run_ner.py``'s ``--text_column_name`` / ``--label_column_name``.

Local layouts (ARCHITECTURE §1), one language per DatasetDict or Parquet set:

- ``<dir>/dataset_dict.json`` (``DatasetDict.save_to_disk``) or ``<dir>/<lang>/dataset_dict.json``;
- ``<dir>/<split>.parquet`` or ``<dir>/<lang>/<split>.parquet`` (``Dataset.to_parquet``, which
  keeps the ``ClassLabel`` names in the file's schema).

Local data are read without the ``datasets`` cache: a saved folder is memory-mapped, a Parquet
file read into memory.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nertool.data.readers import Sentence
from nertool.errors import DataError

DATASET_DICT = "dataset_dict.json"
PARQUET = ".parquet"


@dataclass(frozen=True)
class Columns:
    """The dataset columns holding the words and the tags of each sentence."""

    tokens: str = "tokens"
    tags: str = "ner_tags"

    @classmethod
    def of(cls, tokens: str | None = None, tags: str | None = None) -> Columns:
        """Columns from the recipe keys, whose ``None`` means the default name."""
        return cls(tokens or cls.tokens, tags or cls.tags)


DEFAULT_COLUMNS = Columns()
_KEYS = {"tokens": "data.tokens_column", "tags": "data.tags_column"}


def is_saved_dataset(folder: Path) -> bool:
    """A ``DatasetDict.save_to_disk`` folder."""
    return (folder / DATASET_DICT).is_file()


def is_dataset_split(path: Path) -> bool:
    """A path a split is read from through ``datasets``: a saved split folder or a Parquet file."""
    return path.is_dir() or path.suffix == PARQUET


def saved_split(folder: Path, aliases: Sequence[str]) -> Path | None:
    """The split folder of a saved DatasetDict under the first of ``aliases`` it holds."""
    try:
        names = json.loads((folder / DATASET_DICT).read_text(encoding="utf-8"))["splits"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataError(
            f"not a readable DatasetDict ({error}); save it again with save_to_disk", folder
        ) from None
    for alias in aliases:
        if alias in names and (folder / alias).is_dir():
            return folder / alias
    return None


def parquet_split(folder: Path, aliases: Sequence[str]) -> Path | None:
    """``<folder>/<alias>.parquet`` for the first alias there is a file for."""
    return next((folder / f"{a}{PARQUET}" for a in aliases if (folder / f"{a}{PARQUET}").is_file()), None)


def load_local_split(path: Path) -> Any:
    """The ``datasets.Dataset`` of one saved split folder or Parquet file."""
    import datasets

    try:
        if path.suffix == PARQUET:
            import pyarrow.parquet as pq
            from datasets.table import InMemoryTable

            return datasets.Dataset(InMemoryTable(pq.read_table(path)))
        return datasets.load_from_disk(str(path))
    except Exception as error:  # a corrupt or foreign file: one line naming it
        raise DataError(
            f"cannot be read as a dataset split: {str(error).strip().splitlines()[0]}", path
        ) from None


def dataset_sentences(dataset: Any, where: str, columns: Columns = DEFAULT_COLUMNS) -> list[Sentence]:
    """Sentences of one dataset split; ``where`` names it in messages."""
    _check_columns(dataset, where, columns)
    names = tag_names(dataset, columns.tags)
    sentences = []
    for index, row in enumerate(dataset):
        tokens, tags = row[columns.tokens], row[columns.tags]
        if names:
            tags = [names[t] for t in tags]
        _check_row(tokens, tags, where, index + 1)
        sentences.append(Sentence(tuple(tokens), tuple(tags), index + 1))
    return sentences


def _check_columns(dataset: Any, where: str, columns: Columns) -> None:
    """A missing column is one line naming it, the columns there are, and the recipe key to set."""
    present = getattr(dataset, "column_names", None)
    if present is None:
        return
    for role, name in (("tokens", columns.tokens), ("tags", columns.tags)):
        if name not in present:
            raise DataError(
                f"{where}: no column {name!r} for the {role} (columns: {', '.join(present)}); "
                f"name it with {_KEYS['tokens']} and {_KEYS['tags']}"
            )


def _check_row(tokens: Any, tags: Any, where: str, row: int) -> None:
    if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
        raise DataError(f"{where}: row {row}: the tokens must be a list of strings, found {tokens!r:.60}")
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise DataError(
            f"{where}: row {row}: the tags must be tag names or ClassLabel ids, found {tags!r:.60}; "
            "store them as a Sequence(ClassLabel(names=[...])) or as strings such as B-PER"
        )
    if len(tokens) != len(tags):
        raise DataError(f"{where}: row {row}: {len(tokens)} tokens but {len(tags)} tags")


def tag_names(dataset: Any, column: str = Columns.tags) -> list[str] | None:
    """The ``ClassLabel`` names of a tags column, None when it holds strings (or has no features)."""
    feature = (getattr(dataset, "features", None) or {}).get(column)
    inner = getattr(feature, "feature", None)
    return list(inner.names) if inner is not None and hasattr(inner, "names") else None
