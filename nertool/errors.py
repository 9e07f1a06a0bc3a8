"""Errors the toolkit raises on purpose.

Every message is meant to be read by a person at a terminal: it names the file (and line,
where there is one) and says what to do. The CLI turns any ``NertoolError`` into one line on
stderr and exit code 1; nothing below the CLI prints or exits.
"""

from __future__ import annotations

from pathlib import Path


class NertoolError(Exception):
    """Base class: an expected failure with an actionable message."""


class ConfigError(NertoolError):
    """A recipe or ``--set`` override is invalid (unknown key, wrong type, bad value)."""


class DataError(NertoolError):
    """An input file cannot be read or holds malformed sentences."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(where + message)


class LabelError(NertoolError):
    """Labels disagree: a tag is not IOB2, or data uses a label the model does not know."""


class ModelError(NertoolError):
    """A model or run folder cannot be found or loaded."""


class TrainingError(NertoolError):
    """Training cannot go on (for example too many non-finite losses)."""


class CheckpointError(NertoolError):
    """A checkpoint cannot be resumed: incomplete, damaged, or from another model."""


def first_line(error: BaseException) -> str:
    """The first line of a library's error message (its type when it has none): what a one-line
    error passes on of an exception that is not the user's to debug."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
