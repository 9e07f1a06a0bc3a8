"""The one error boundary of the command line: every failure becomes one readable line.

Exit codes (``errors`` below; the option types and checks are in ``options``):

- 2: a usage error, found while parsing, before any work starts: an unknown ``--format``,
  ``--input-format``, ``--output-format`` or ``--text-mode`` (click choices, listed in ``--help``
  and completed by the shell), an unknown ``--split`` (a split or an alias of one, ``dev``), a
  language that is not a code (``nertool.langcode``), an unknown ``--encoding``, a ``--device``
  this machine does not have (``cuda`` without a CUDA device).
- 1: the input is wrong or the system refused: any ``NertoolError``, and the standard errors
  that leak from below (``OSError`` such as a permission, a folder where a file belongs, a full
  disk; invalid JSON, TOML or UTF-8 in a file nertool did not write; a corrupt safetensors
  file; a pydantic ``ValidationError``) become one line ``error: <file>: <what>; <what to do>``.
- 1: anything else is a bug; it is one line too, ``error: internal error: <type>: <message>``,
  naming ``NERTOOL_DEBUG=1``, with which the exception propagates with its traceback.
- 130: interrupted (Ctrl-C).

``NertoolError`` messages are the library's own; standard errors that leak from below (``OSError``,
invalid JSON/TOML/UTF-8, a corrupt safetensors file, a pydantic ``ValidationError``, out of memory)
get a message naming the file and what to do; anything else is a bug, reported in one line unless
``NERTOOL_DEBUG=1`` lets the traceback through.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager

import click
import tomllib
import typer

from nertool.errors import NertoolError


@contextmanager
def errors() -> Iterator[None]:
    """The one error boundary: every failure is one readable line (see the module docstring)."""
    try:
        yield
    except (click.exceptions.Exit, click.exceptions.ClickException, click.exceptions.Abort):
        raise
    except NertoolError as error:
        fail(str(error))
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        raise typer.Exit(130) from None
    except Exception as error:
        message = leaked_message(error)
        if message is None and os.environ.get("NERTOOL_DEBUG", "") not in ("", "0"):
            raise
        fail(message or internal_message(error))


def fail(message: str) -> None:
    typer.echo(f"error: {' '.join(message.split())}", err=True)  # one line, whatever the message holds
    raise typer.Exit(1) from None


_OS_ADVICE = {
    "EACCES": "check its permissions",
    "EPERM": "check its permissions",
    "ENOENT": "check the path",
    "EISDIR": "it is a folder: name a file",
    "ENOTDIR": "a part of the path is a file, not a folder: check the path",
    "EEXIST": "it already exists: remove it or choose another path",
    "ENOSPC": "the disk is full: free space or write somewhere else",
    "EDQUOT": "the disk quota is used up: free space or write somewhere else",
    "EROFS": "the file system is read-only: write somewhere else",
    "ELOOP": "too many symbolic links: check the path",
}
_REWRITE = "the file is damaged or incomplete: rewrite it (rerun the command that made it)"


def leaked_message(error: Exception) -> str | None:
    """The one-line message for a standard error that escaped the library, or None for a bug."""
    if isinstance(error, OSError):
        return os_message(error)
    if isinstance(error, json.JSONDecodeError):
        return f"invalid JSON ({error.msg}, line {error.lineno} column {error.colno}); {_REWRITE}"
    if isinstance(error, tomllib.TOMLDecodeError):
        return f"invalid TOML ({error}); fix the file"
    if isinstance(error, UnicodeDecodeError):
        return f"a file is not valid {error.encoding} ({error.reason}); re-save it as UTF-8"
    if type(error).__name__ == "SafetensorError":
        return f"cannot read a safetensors file ({error}); {_REWRITE}"
    if type(error).__name__ == "ValidationError" and type(error).__module__.startswith("pydantic"):
        first = error.errors()[0]  # type: ignore[attr-defined]
        where = ".".join(str(part) for part in first["loc"])
        return f"invalid setting {where}: {first['msg']}; fix it"
    if isinstance(error, MemoryError):
        return "out of memory; use smaller batches (batch_size, --max-tokens) or less data"
    if type(error).__name__ == "OutOfMemoryError":
        return "out of GPU memory; use smaller batches (train.batch_size, --max-tokens) or a larger GPU"
    return None


def os_message(error: OSError) -> str:
    """``file: what; what to do`` from the error's filename, errno and text."""
    import errno

    name = errno.errorcode.get(error.errno or 0, "")
    what = error.strerror or str(error)
    advice = _OS_ADVICE.get(name, "check the path and permissions")
    paths = [str(path) for path in (error.filename, error.filename2) if path is not None]
    return f"{' -> '.join(paths)}: {what}; {advice}" if paths else f"{what}; {advice}"


def internal_message(error: Exception) -> str:
    return (
        f"internal error: {type(error).__name__}: {error} "
        "(rerun with NERTOOL_DEBUG=1 for the traceback, and report it)"
    )
