"""How ``nertool predict`` writes tagged units: JSONL, CoNLL or a spans TSV, atomically.

Output is kept apart from reading (``nertool.predict.readers``) because the two share only the records:
readers know encodings and input formats, writers know output formats and how to replace a file
safely. Every format renders one ``TaggedUnit`` at a time, so predictions stream to disk as they
are made and a file of any size is never held in memory.

Writing (``open_writer``) is atomic for regular files (``nertool.files.AtomicOutput``): output
goes to a temporary file in the target's folder and replaces the target only when the ``with``
block ends without an exception, so a crashed or interrupted run never leaves a truncated
prediction file behind. A symlink's target is written, a FIFO or device is written straight, and
an existing file keeps its mode. ``-`` or ``None`` writes to standard output instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import TracebackType
from typing import Literal, TextIO

from nertool.files import AtomicOutput, output_error
from nertool.predict.readers import STDIN, TaggedUnit, check_choice

OutputFormat = Literal["jsonl", "conll", "spans-tsv"]
OUTPUT_FORMATS: tuple[str, ...] = ("jsonl", "conll", "spans-tsv")
SPANS_TSV_HEADER = "id\tstart\tend\tlabel\ttext\n"


def render_jsonl(tagged: TaggedUnit) -> str:
    """One JSON line; U+2028/U+2029/U+0085 are escaped so line-splitting readers stay in step."""
    unit = tagged.unit
    record = {
        "id": unit.id,
        "text": unit.text,
        "tokens": list(unit.words),
        "tags": list(tagged.tags),
        "entities": [
            {"start": e.start, "end": e.end, "label": e.label, "text": e.text, "score": e.score}
            for e in tagged.entities
        ],
    }
    line = json.dumps(record, ensure_ascii=False)
    return line.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").replace("\x85", "\\u0085") + "\n"


def render_conll(tagged: TaggedUnit) -> str:
    """``token<TAB>tag`` lines and a blank line (an empty unit is just the blank line)."""
    return (
        "".join(f"{word}\t{tag}\n" for word, tag in zip(tagged.unit.words, tagged.tags, strict=True)) + "\n"
    )


def render_spans_tsv(tagged: TaggedUnit) -> str:
    """One line per entity under ``SPANS_TSV_HEADER``; tabs and line ends in fields are escaped."""
    unit_id = _tsv_field(tagged.unit.id)
    return "".join(
        f"{unit_id}\t{e.start}\t{e.end}\t{e.label}\t{_tsv_field(e.text)}\n" for e in tagged.entities
    )


def _tsv_field(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


_RENDERERS = {"jsonl": render_jsonl, "conll": render_conll, "spans-tsv": render_spans_tsv}
_HEADERS = {"spans-tsv": SPANS_TSV_HEADER}


class PredictionWriter:
    """Context manager writing tagged units to a file (atomically) or to stdout (``-``/None)."""

    def __init__(self, path: str | None, output_format: OutputFormat):
        check_choice("output format", output_format, OUTPUT_FORMATS)
        self.path = None if path in (None, STDIN) else Path(path)
        self.output_format = output_format
        self.units_written = 0
        self.entities_written = 0
        self._render = _RENDERERS[output_format]
        self._stream: TextIO | None = None
        self._file: AtomicOutput | None = None

    def __enter__(self) -> PredictionWriter:
        if self.path is None:
            self._stream = sys.stdout
        else:
            self._file = AtomicOutput(self.path)
            self._stream = self._file.__enter__()
        self._emit(_HEADERS.get(self.output_format, ""))
        return self

    def write(self, tagged: TaggedUnit) -> None:
        """Append one unit; the file appears at its path only when the ``with`` block ends cleanly."""
        self._emit(self._render(tagged))
        self.units_written += 1
        self.entities_written += len(tagged.entities)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._file is None:
            sys.stdout.flush()
        else:
            self._file.__exit__(exc_type, exc, tb)

    def _emit(self, text: str) -> None:
        if self._stream is None:
            raise RuntimeError("PredictionWriter used outside its with block")
        try:
            self._stream.write(text)
        except OSError as error:
            if self._file is not None:
                self._file.discard()
            raise output_error(error, self.path or STDIN) from None


def open_writer(path: str | None, output_format: OutputFormat) -> PredictionWriter:
    """A writer for ``with`` blocks: ``with open_writer("out.jsonl", "jsonl") as out: out.write(t)``."""
    return PredictionWriter(path, output_format)
