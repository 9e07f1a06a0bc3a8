"""Readers for local IOB2 files: one sentence record per blank-line-separated block.

Formats (ARCHITECTURE §1), detected per file from its first lines and overridable:

- ``token_tag``   ``token<TAB>tag`` (or one space)            e.g. KIND, MasakhaNER
- ``panx``        ``de:token<TAB>tag``: the language prefix is stripped
- ``idx_token_tag`` ``0<TAB>token<TAB>tag``                  e.g. WikiANN es/pl ``.conllu``
- ``conll``       token first, tag last, any columns between; ``-DOCSTART-`` skipped (CoNLL-2002/3)
- ``jsonl``       ``{"tokens": [...], "ner_tags": [...]}`` one sentence a line

Files are read line by line (a generator), so a huge file is never held twice. Every
malformed line is a ``DataError`` naming the file and line; IOB2 repairs are counted in a
``ReadReport`` rather than printed, so the caller decides how to tell the user.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from nertool.data.lines import describe_for_resave, file_lines
from nertool.errors import DataError, LabelError
from nertool.labels import iob2_issues, parse_tag, repair_iob2

FileFormat = Literal["auto", "token_tag", "panx", "idx_token_tag", "conll", "jsonl"]
FORMATS: tuple[str, ...] = ("auto", "token_tag", "panx", "idx_token_tag", "conll", "jsonl")
_PANX_PREFIX = re.compile(r"^[a-z]{2,3}:.")
_DOCSTART = "-DOCSTART-"
_SNIFF_LINES = 50


@dataclass(frozen=True)
class Sentence:
    """One sentence: words and their IOB2 tags, with the line it starts on (for messages)."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    line: int = 0


@dataclass
class ReadReport:
    """What reading a file found and fixed: shown by ``data inspect`` and logged by ``train``."""

    path: str
    file_format: str = ""
    sentences: int = 0
    repaired_tags: int = 0
    first_repair_line: int | None = None
    warnings: list[str] = field(default_factory=list)


def _lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """(line number, text without line end) per line (CRLF, CR or LF; see ``nertool.data.lines``)."""
    return file_lines(path, describe_for_resave, encoding)


def _split(line: str) -> list[str]:
    """Columns of a line: tab-separated when it holds a tab, else whitespace-separated."""
    return line.split("\t") if "\t" in line else line.split()


def sniff_format(path: Path) -> str:
    """Guess the format from the extension and the first non-blank lines."""
    if path.suffix == ".jsonl":
        return "jsonl"
    rows = []
    for _, line in _lines(path):
        if line.strip() and not line.startswith(_DOCSTART):
            rows.append(_split(line))
        if len(rows) >= _SNIFF_LINES:
            break
    if not rows:
        raise DataError("the file holds no sentences (it is empty or blank)", path)
    if rows[0][0].startswith("{"):
        return "jsonl"
    widths = {len(row) for row in rows}
    if widths == {2}:
        return "panx" if all(_PANX_PREFIX.match(row[0]) for row in rows) else "token_tag"
    if widths == {3} and all(row[0].isdigit() for row in rows):
        return "idx_token_tag"
    return "conll"


def _columns_to_pair(cols: list[str], file_format: str, path: Path, number: int) -> tuple[str, str]:
    """(token, tag) from one line's columns, or a ``DataError`` saying what was expected."""
    expected = {"token_tag": 2, "panx": 2, "idx_token_tag": 3}.get(file_format)
    if (expected is not None and len(cols) != expected) or len(cols) < 2:
        want = f"{expected} columns" if expected else "at least 2 columns (token ... tag)"
        raise DataError(
            f"expected {want} in {file_format} format, found {len(cols)}: {'|'.join(cols)!r}; "
            "fix the line or pass the right --format",
            path,
            number,
        )
    token, tag = cols[1 if file_format == "idx_token_tag" else 0], cols[-1]
    if file_format == "panx":
        token = token.split(":", 1)[1] if _PANX_PREFIX.match(token) else token
    if not token:
        raise DataError("empty token", path, number)
    return token, tag


def _column_sentences(path: Path, file_format: str) -> Iterator[tuple[int, list[str], list[str]]]:
    """Blocks of (start line, tokens, tags) from a column file."""
    tokens: list[str] = []
    tags: list[str] = []
    start, width = 0, 0
    for number, line in _lines(path):
        if not line.strip() or line.startswith(_DOCSTART):
            if tokens:
                yield start, tokens, tags
            tokens, tags = [], []
            continue
        cols = _split(line)
        width = width or len(cols)
        if file_format == "conll" and len(cols) != width:
            raise DataError(
                f"expected {width} columns like the file's first line, found {len(cols)}: "
                f"{'|'.join(cols)!r}; every line needs the same columns (token first, tag last)",
                path,
                number,
            )
        token, tag = _columns_to_pair(cols, file_format, path, number)
        start = start if tokens else number
        tokens.append(token)
        tags.append(tag)
    if tokens:
        yield start, tokens, tags


def _jsonl_sentences(path: Path) -> Iterator[tuple[int, list[str], list[str]]]:
    """(line, tokens, tags) from ``{"tokens": [...], "ner_tags": [...]}`` lines."""
    for number, line in _lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(
                f"not a JSON object with 'tokens' and 'ner_tags' ({error}); fix the line", path, number
            ) from None
        tokens, tags = _jsonl_fields(record, path, number)
        if len(tokens) != len(tags):
            raise DataError(
                f"'tokens' and 'ner_tags' must be lists of strings of equal length "
                f"(found {len(tokens)} and {len(tags)})",
                path,
                number,
            )
        yield number, tokens, tags


def _jsonl_fields(record: object, path: Path, number: int) -> tuple[list[str], list[str]]:
    """The two lists of one record, type-checked: a string is not a list of letters.

    ``"tokens": "Berlin"`` would otherwise read as six one-letter words. Integer tags are refused:
    without the dataset's label list (which hub datasets carry, local files do not) an id is no tag.
    """
    if not isinstance(record, dict) or "tokens" not in record or "ner_tags" not in record:
        raise DataError("not a JSON object with 'tokens' and 'ner_tags'; fix the line", path, number)
    for name in ("tokens", "ner_tags"):
        value = record[name]
        if not isinstance(value, list):
            raise DataError(
                f"field {name!r} must be a list of strings, found {type(value).__name__} {value!r:.40}; "
                f'write it as a JSON list, e.g. "{name}": ["..."]',
                path,
                number,
            )
        if name == "ner_tags" and any(isinstance(tag, int) for tag in value):
            raise DataError(
                "field 'ner_tags' holds integer ids; write the tag names such as B-PER and O: "
                "a local file carries no label list to map ids through",
                path,
                number,
            )
        wrong = next((item for item in value if not isinstance(item, str)), None)
        if wrong is not None:
            raise DataError(
                f"field {name!r} must be a list of strings, found an item {wrong!r:.40}; quote every item",
                path,
                number,
            )
    return record["tokens"], record["ner_tags"]


def _check_tags(tags: list[str], path: Path, start: int, step: int) -> None:
    """Every tag must be IOB2-shaped; the error points at the offending line.

    ``step`` is 1 for column files (a word a line) and 0 for JSONL (a sentence a line).
    """
    for offset, tag in enumerate(tags):
        try:
            parse_tag(tag)
        except LabelError as error:
            raise DataError(
                f"{error}; fix the tag or convert the file to IOB2", path, start + offset * step
            ) from None


def read_sentences(
    path: Path, file_format: str = "auto", strict_tags: bool = False, *, report: ReadReport | None = None
) -> Iterator[Sentence]:
    """Sentences of one local file, validated as IOB2.

    Orphan ``I-X`` tags (IOB1 files, or annotation slips) become ``B-X`` and are counted in
    ``report``; with ``strict_tags`` they are an error naming the line instead.
    """
    if path.is_dir():
        raise DataError("is a folder, not a file; name a file inside it", path)
    if not path.is_file():
        raise DataError("no such file; check the path", path)
    file_format = sniff_format(path) if file_format == "auto" else file_format
    report = report if report is not None else ReadReport(str(path))
    report.file_format = file_format
    blocks = _jsonl_sentences(path) if file_format == "jsonl" else _column_sentences(path, file_format)
    for start, tokens, tags in blocks:
        step = 0 if file_format == "jsonl" else 1
        _check_tags(tags, path, start, step)
        issues = iob2_issues(tags)
        if issues and strict_tags:
            raise DataError(
                f"{issues[0].problem}: an I- tag must continue an entity of its type "
                "(drop --strict-tags to repair it to B-)",
                path,
                start + issues[0].index * step,
            )
        if issues:
            report.repaired_tags += len(issues)
            report.first_repair_line = report.first_repair_line or start + issues[0].index * step
            tags = repair_iob2(tags)
        report.sentences += 1
        yield Sentence(tuple(tokens), tuple(tags), start)
    if report.sentences == 0:
        raise DataError("the file holds no sentences (it is empty or blank)", path)
