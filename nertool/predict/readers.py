"""What ``nertool predict`` reads: input units with character offsets, and the tagged-unit records.

The model side (batching, windows) only ever sees ``Unit`` records and hands back one tag and one
score per word; everything about files lives here, so that inference can be tested without files
and files without a model.

Reading (``iter_units``) is streaming: files are decoded incrementally, line by line, and units are
yielded one at a time, so a file of any size is never held in memory (except in ``text_mode="file"``,
where the file *is* the unit). Input formats:

- ``text``: one unit per line (``line``, the default; an empty line is a unit with no words, never
  skipped, so output lines up with input), one per blank-line-separated paragraph (``paragraph``;
  lines joined with ``\\n``), or one per file (``file``; lines joined with ``\\n``, a final line
  end dropped). Words come from ``nertool.predict.textsplit.split_words``.
- ``conll``: one token per line, token in the first column (tab-separated if the line has a tab,
  else space-separated), other columns (tags) ignored; a blank line ends a sentence;
  ``-DOCSTART-`` lines are skipped. Tab-separated ``idx<TAB>token<TAB>tag`` sentences (first column
  exactly ``0..n-1`` or ``1..n``) take the token from the second column. Tokens are kept as given.
- ``jsonl``: one JSON object per line with ``"tokens"`` (a list of strings, used as given) or
  ``"text"`` (split with ``split_words``); ``tokens`` win when both are present; blank lines are
  not records and are passed over.
- ``auto``: by file name: ``.jsonl`` → jsonl; ``.conll``, ``.conllu``, ``.tsv``, ``.iob`` → conll;
  anything else, and standard input, → text.

For token input the unit text is ``" ".join(tokens)`` and offsets point into that string.

Lines end at ``\\r\\n``, ``\\r`` or ``\\n`` (``nertool.data.lines``), so Windows, old Mac and mixed
files give the same units as Unix ones. A UTF-8 byte-order mark at the start of a file is dropped
(offsets are into the text without it). Undecodable bytes raise ``DataError`` with the file, the
line and the 0-based byte offset.

Unit ids are ``"<source>:<line>"``: the file name as given (or as found under a folder, or ``-`` for
standard input) and the 1-based line where the unit starts. They are stable across runs and unique,
because each input may be named only once.

Writing the tagged units (JSONL, CoNLL, spans TSV; atomically) is ``nertool.predict.writers``.
"""

from __future__ import annotations

import codecs
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Literal

from nertool.data.lines import BadBytes, Line, decode_lines, file_lines
from nertool.errors import DataError
from nertool.labels import Span, tags_to_spans
from nertool.predict.textsplit import split_words

InputFormat = Literal["auto", "text", "conll", "jsonl"]
TextMode = Literal["line", "file", "paragraph"]
INPUT_FORMATS: tuple[str, ...] = ("auto", "text", "conll", "jsonl")
TEXT_MODES: tuple[str, ...] = ("line", "file", "paragraph")
STDIN = "-"
DEFAULT_EXTENSIONS: tuple[str, ...] = (".txt", ".conll", ".conllu", ".tsv", ".iob", ".jsonl")
_CONLL_EXTENSIONS = (".conll", ".conllu", ".tsv", ".iob")
_DOCSTART = "-DOCSTART-"


@dataclass(frozen=True)
class Unit:
    """One piece of input the model tags as a whole: its words and their character offsets."""

    id: str
    text: str
    words: tuple[str, ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    source: str
    line: int


@dataclass(frozen=True)
class Entity:
    """A predicted entity as a character span of the unit text; ``score`` = mean word score."""

    start: int
    end: int
    label: str
    text: str
    score: float


@dataclass(frozen=True)
class TaggedUnit:
    """A unit with one tag per word and the entities those tags make."""

    unit: Unit
    tags: tuple[str, ...]
    entities: tuple[Entity, ...]


# ---------------------------------------------------------------- units and entities


def unit_from_text(text: str, source: str, line: int) -> Unit:
    """A unit of raw text, split into words by the shared rule (``nertool.predict.textsplit``)."""
    words = split_words(text)
    return Unit(
        id=f"{source}:{line}",
        text=text,
        words=tuple(word.text for word in words),
        starts=tuple(word.start for word in words),
        ends=tuple(word.end for word in words),
        source=source,
        line=line,
    )


def unit_from_tokens(tokens: Sequence[str], source: str, line: int) -> Unit:
    """A unit of given tokens; its text is the tokens joined by single spaces."""
    starts, ends, position = [], [], 0
    for token in tokens:
        starts.append(position)
        ends.append(position + len(token))
        position += len(token) + 1
    return Unit(f"{source}:{line}", " ".join(tokens), tuple(tokens), tuple(starts), tuple(ends), source, line)


def entities_for(unit: Unit, tags: Sequence[str], word_scores: Sequence[float]) -> tuple[Entity, ...]:
    """Character-span entities of word tags (an orphan ``I-X`` starts an entity, as in seqeval)."""
    if not len(tags) == len(word_scores) == len(unit.words):
        raise ValueError(
            f"{unit.id}: {len(unit.words)} words but {len(tags)} tags and {len(word_scores)} scores"
        )
    return tuple(_entity(unit, span, word_scores) for span in tags_to_spans(tags))


def _entity(unit: Unit, span: Span, word_scores: Sequence[float]) -> Entity:
    start, end = unit.starts[span.start], unit.ends[span.end - 1]
    inside = [float(score) for score in word_scores[span.start : span.end]]
    return Entity(start, end, span.label, unit.text[start:end], round(sum(inside) / len(inside), 4))


def tag_unit(unit: Unit, tags: Sequence[str], word_scores: Sequence[float]) -> TaggedUnit:
    """The record writers take: tags plus the entities they make."""
    return TaggedUnit(unit, tuple(tags), entities_for(unit, tags, word_scores))


# ---------------------------------------------------------------- finding inputs


def iter_units(
    paths: Sequence[str],
    input_format: InputFormat = "auto",
    text_mode: TextMode = "line",
    *,
    encoding: str = "utf-8",
    extensions: Sequence[str] = DEFAULT_EXTENSIONS,
) -> Iterator[Unit]:
    """Units of every input in order: files, folders (recursive, sorted) and ``-`` for stdin.

    ``extensions`` filters the files found in folders only; a file named directly is always read.
    Arguments and paths are checked now, so a typo fails before any model is loaded; the files
    themselves are read lazily as the returned iterator is consumed.
    """
    check_choice("input format", input_format, INPUT_FORMATS)
    check_choice("text mode", text_mode, TEXT_MODES)
    _check_encoding(encoding)
    sources = expand_inputs(paths, extensions)
    return chain.from_iterable(_source_units(source, input_format, text_mode, encoding) for source in sources)


def expand_inputs(paths: Sequence[str], extensions: Sequence[str] = DEFAULT_EXTENSIONS) -> list[str]:
    """Input names in reading order: folders become their matching files, sorted by path."""
    if not paths:
        raise DataError("no input given: name files, folders, or - for standard input")
    sources = [source for given in paths for source in _expand_one(given, extensions)]
    _check_unique(sources)
    return sources


def _expand_one(given: str, extensions: Sequence[str]) -> list[str]:
    path = Path(given)
    if not path.exists() and given != STDIN:
        raise DataError("no such file or folder; check the path", given)
    if given == STDIN or not path.is_dir():
        return [given]  # a named file is read whatever its extension (pipes such as /dev/fd/3 too)
    files = _folder_files(path, extensions)
    if not files:
        raise DataError(
            f"folder holds no files ending in {' '.join(extensions)}; name the files directly", given
        )
    return [str(file) for file in files]


def _folder_files(folder: Path, extensions: Sequence[str]) -> list[Path]:
    """Matching files under ``folder``, hidden files and folders left out, in path order."""
    endings = tuple(extension.lower() for extension in extensions)
    found = [
        path
        for path in folder.rglob("*")
        if path.is_file()
        and path.name.lower().endswith(endings)
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    ]
    return sorted(found, key=lambda path: path.relative_to(folder).parts)


def _check_unique(sources: list[str]) -> None:
    """Each input once: repeated input would repeat ids and read standard input twice."""
    seen: dict[str, str] = {}
    for source in sources:
        key = source if source == STDIN else os.path.realpath(source)
        if key in seen:
            raise DataError(f"given more than once (also as {seen[key]}); name each input once", source)
        seen[key] = source


def check_choice(what: str, value: str, choices: Sequence[str]) -> None:
    """Reject an unknown option value up front, naming the choices (readers and writers share it)."""
    if value not in choices:
        raise DataError(f"unknown {what} {value!r}; use one of {', '.join(choices)}")


def _check_encoding(encoding: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DataError(
            f"unknown encoding {encoding!r}; use a codec name such as utf-8, latin-1 or cp1252"
        ) from None


def format_of(source: str, input_format: InputFormat) -> str:
    """The concrete format of one input; ``auto`` decides by file name (stdin is text)."""
    if input_format != "auto":
        return input_format
    name = source.lower()
    if name.endswith(".jsonl"):
        return "jsonl"
    return "conll" if name.endswith(_CONLL_EXTENSIONS) else "text"


def _source_units(
    source: str, input_format: InputFormat, text_mode: TextMode, encoding: str
) -> Iterator[Unit]:
    lines = read_lines(source, encoding)
    file_format = format_of(source, input_format)
    if file_format == "jsonl":
        return _jsonl_units(lines, source)
    if file_format == "conll":
        return _conll_units(lines, source)
    return _text_units(lines, source, text_mode)


# ---------------------------------------------------------------- decoding lines


def read_lines(source: str, encoding: str = "utf-8") -> Iterator[Line]:
    """Decoded lines of a file or of stdin (``-``), numbered from 1, without line ends."""
    if source == STDIN:
        if sys.stdin is None:
            raise DataError("standard input is closed; name an input file instead", STDIN)
        yield from decode_lines(sys.stdin.buffer, source, _describe_bad_bytes, encoding=encoding)
        return
    yield from file_lines(source, _describe_bad_bytes, encoding)


def _describe_bad_bytes(bad: BadBytes) -> str:
    return (
        f"bytes not valid in {bad.encoding} (0x{bad.byte} at byte offset {bad.offset}: {bad.reason}); "
        "pass --encoding with the file's real encoding (for example --encoding latin-1 or cp1252)"
    )


# ---------------------------------------------------------------- formats


def _text_units(lines: Iterator[Line], source: str, text_mode: TextMode) -> Iterator[Unit]:
    if text_mode == "file":
        yield unit_from_text("\n".join(text for _, text in lines), source, 1)
    elif text_mode == "paragraph":
        yield from _paragraph_units(lines, source)
    else:
        for number, text in lines:
            yield unit_from_text(text, source, number)


def _paragraph_units(lines: Iterator[Line], source: str) -> Iterator[Unit]:
    """Blank (whitespace-only) lines separate paragraphs; each starts at its first line."""
    block: list[str] = []
    first = 0
    for number, text in chain(lines, [(0, "")]):
        if text.strip():
            first = first if block else number
            block.append(text)
        elif block:
            yield unit_from_text("\n".join(block), source, first)
            block = []


def _conll_units(lines: Iterator[Line], source: str) -> Iterator[Unit]:
    rows: list[list[str]] = []
    first = 0
    for number, text in chain(lines, [(0, "")]):
        if not text.strip():
            if rows:
                yield unit_from_tokens(_sentence_tokens(rows), source, first)
            rows = []
            continue
        fields = text.split("\t") if "\t" in text else text.split()
        if fields[0] == _DOCSTART:
            continue
        if not fields[0]:
            raise DataError("empty token in the first column; remove the leading tab", source, number)
        first = first if rows else number
        rows.append(fields)


def _sentence_tokens(rows: list[list[str]]) -> list[str]:
    """First column, or the second where the first is a running index (``idx<TAB>token<TAB>tag``)."""
    if all(len(fields) >= 3 for fields in rows):
        index = [fields[0] for fields in rows]
        if index in ([str(i) for i in range(len(rows))], [str(i + 1) for i in range(len(rows))]):
            return [fields[1] for fields in rows]
    return [fields[0] for fields in rows]


def _jsonl_units(lines: Iterator[Line], source: str) -> Iterator[Unit]:
    for number, text in lines:
        if text.strip():
            yield _jsonl_unit(text, source, number)


def _jsonl_unit(text: str, source: str, number: int) -> Unit:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(
            f"invalid JSON ({error.msg}, column {error.colno}); "
            'write one object per line, like {"text": "..."}',
            source,
            number,
        ) from None
    if isinstance(record, dict) and "tokens" in record:
        return unit_from_tokens(_checked_tokens(record["tokens"], source, number), source, number)
    if isinstance(record, dict) and isinstance(record.get("text"), str):
        return unit_from_text(record["text"], source, number)
    raise DataError('each line needs an object with a "text" string or a "tokens" list', source, number)


def _checked_tokens(tokens: object, source: str, number: int) -> list[str]:
    """Tokens must be non-empty strings free of tabs and line ends (they end up in CoNLL lines)."""
    if isinstance(tokens, list) and all(
        isinstance(token, str) and token and not any(c in token for c in "\t\n\r") for token in tokens
    ):
        return tokens
    raise DataError('"tokens" must be a list of non-empty strings without tabs or line ends', source, number)
