"""The one line decoder every reader shares: numbered text lines from bytes, streamed.

Line ends are ``\\r\\n``, ``\\r`` and ``\\n``, alone or mixed in one file, so a file saved with
old Mac (CR-only) or mixed line ends reads exactly like its Unix copy instead of as one huge
line. Nothing else ends a line (not U+2028, form feed or vertical tab), because those may sit
inside a token. A UTF-8 byte-order mark at the start is dropped.

The stream is read in bounded pieces (at most ``CHUNK`` bytes, up to a ``\\n``), so a CR-only
file of gigabytes is still never held whole. Undecodable bytes raise ``DataError`` naming the
file, the line and the 0-based byte offset; the caller supplies the advice (``--encoding`` for
``predict``, re-saving for training data), through ``describe``.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from nertool.errors import DataError

CHUNK = 1 << 16
_LINE_END = re.compile(r"\r\n|\r|\n")
_BOM = "\ufeff"

Line = tuple[int, str]  # (1-based line number, text without its line end)


@dataclass(frozen=True)
class BadBytes:
    """Where decoding failed, for the caller's message."""

    encoding: str
    offset: int
    byte: str  # the first bad byte as two hex digits ('' at a truncated end)
    reason: str
    at_end: bool


Describe = Callable[[BadBytes], str]


def describe_for_resave(bad: BadBytes) -> str:
    """The message for training data: there is no ``--encoding`` option, the file must be UTF-8."""
    name = _display_name(bad.encoding)
    if bad.at_end:
        return f"the file ends inside a {name} character ({bad.reason}); re-save it"
    return f"invalid {name} at byte {bad.offset} ({bad.reason}); re-save the file as UTF-8"


def _display_name(encoding: str) -> str:
    """``UTF-8`` however the codec was spelled (``utf-8``, ``utf8``, ``UTF_8``); others as given."""
    return "UTF-8" if encoding.lower().replace("-", "").replace("_", "") == "utf8" else encoding


def open_binary(path: str | Path) -> BinaryIO:
    """Open for reading, turning ``OSError`` (permission, a folder, a dangling link) into one line."""
    try:
        return open(path, "rb")  # the caller closes it
    except IsADirectoryError:
        raise DataError("is a folder, not a file; name a file inside it", path) from None
    except OSError as error:
        raise DataError(
            f"cannot open: {error.strerror or error}; check the path and permissions", path
        ) from None


def file_lines(path: str | Path, describe: Describe, encoding: str = "utf-8") -> Iterator[Line]:
    """Numbered lines of a file on disk (see ``decode_lines``)."""
    with open_binary(path) as stream:
        yield from decode_lines(stream, str(path), describe, encoding=encoding)


def decode_lines(
    stream: BinaryIO, source: str, describe: Describe, *, encoding: str = "utf-8"
) -> Iterator[Line]:
    """Decoded lines numbered from 1, without their line ends; the last line may lack one."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    number, consumed, pending = 0, 0, ""
    while True:
        raw = stream.readline(CHUNK)
        buffered = decoder.getstate()[0]
        try:
            pending += decoder.decode(raw, final=not raw)
        except UnicodeDecodeError as error:
            where = _Where(number, pending, consumed - len(buffered), at_end=not raw)
            raise _bad_bytes(error, source, describe, where, encoding) from None
        consumed += len(raw)
        if raw and pending.endswith("\r"):  # maybe the first half of \r\n: wait for the next piece
            complete, pending = _LINE_END.split(pending[:-1]), "\r"
            pending = complete.pop() + pending
        else:
            *complete, pending = _LINE_END.split(pending)
        for text in complete:
            number += 1
            yield number, _strip_bom(text, number)
        if not raw:
            break
    if pending:
        yield number + 1, _strip_bom(pending, number + 1)


def _strip_bom(text: str, number: int) -> str:
    return text[1:] if number == 1 and text.startswith(_BOM) else text


@dataclass(frozen=True)
class _Where:
    """The decoder's position when a piece failed: lines done, text not yet split, bytes before it."""

    lines_done: int
    pending: str
    piece_start: int
    at_end: bool


def _bad_bytes(
    error: UnicodeDecodeError, source: str, describe: Describe, where: _Where, encoding: str
) -> DataError:
    """A ``DataError`` at the line holding the bad bytes (lines of this piece before them counted)."""
    before = bytes(error.object[: error.start]).decode(encoding, errors="replace")
    line = where.lines_done + 1 + len(_LINE_END.findall(where.pending + before))
    bad = BadBytes(
        encoding=encoding,
        offset=where.piece_start + error.start,
        byte=bytes(error.object[error.start : error.start + 1]).hex(),
        reason=error.reason,
        at_end=where.at_end,
    )
    return DataError(describe(bad), source, line)
