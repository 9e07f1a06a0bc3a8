"""Output files: atomic where that is safe, and never at the cost of an input or a special file.

An interrupted command must never leave a truncated ``metrics.json`` or model that looks
finished; ``os.replace`` is atomic on one file system, so readers see the old file or the new
one, never half of one. A rename would however *replace* whatever the output path names, so:

- a symlink is followed and its target written (the link itself stays);
- a FIFO, a device (``/dev/null``, ``/dev/stdout``), any other non-regular file and anything
  under ``/dev``, ``/proc`` or ``/sys`` is written straight, never renamed over;
- an existing regular file keeps its permission bits (and owner, where we may set it); a new one
  gets the umask's normal mode (``0666 & ~umask``), not ``mkstemp``'s private 0600;
- the temporary ``.part`` file is removed on every failure, even when closing it fails too.

Every ``OSError`` becomes a one-line ``DataError`` naming the path the user gave.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from nertool.errors import DataError

STDIN = "-"


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` through an ``AtomicOutput``."""
    with AtomicOutput(path) as stream:
        stream.write(text)


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


class AtomicOutput:
    """``with AtomicOutput(path) as stream:`` — the file appears complete at ``path`` or not at all.

    For a non-regular file (FIFO, device) there is nothing to rename: it is written straight.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.target = Path(os.path.realpath(self.path))  # symlinks followed: the link is never replaced
        self._stream: TextIO | None = None
        self._temp: Path | None = None

    def __enter__(self) -> TextIO:
        self._stream, self._temp = _open_output(self.path, self.target)
        return self._stream

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.commit()
            return
        self.discard()
        if isinstance(exc, OSError):
            raise output_error(exc, self.path) from None

    def commit(self) -> None:
        """Close (flushing the last bytes) and move the temporary file into place."""
        assert self._stream is not None
        try:
            self._stream.close()
            if self._temp is not None:
                os.replace(self._temp, self.target)
        except OSError as error:
            self.discard()
            raise output_error(error, self.path) from None

    def discard(self) -> None:
        """Drop what was written; a failing close (a full disk, again) must not hide the first error."""
        if self._stream is not None:
            with contextlib.suppress(OSError):
                self._stream.close()
        if self._temp is not None:
            with contextlib.suppress(OSError):
                self._temp.unlink(missing_ok=True)


def _open_output(path: Path, target: Path) -> tuple[TextIO, Path | None]:
    """(stream, temporary file), or (stream, None) where ``path`` is a special file written in place.

    A special file is opened by the name given, not its resolved one: ``/dev/stdout`` resolves
    to ``/proc/self/fd/1`` and, for a pipe, on to a name that exists nowhere.
    """
    try:
        info: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        info = None
    except OSError as error:
        raise output_error(error, path) from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise DataError("is a folder; give a file name for the output", path)
    try:
        if info is not None and (not stat.S_ISREG(info.st_mode) or _is_system_path(path)):
            return _open_stream(_open_in_place(path)), None
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as error:
        raise output_error(error, path) from None
    try:
        _copy_mode(info, handle)
    except OSError as error:
        os.close(handle)
        Path(name).unlink(missing_ok=True)
        raise output_error(error, path) from None
    return _open_stream(handle), Path(name)


def _is_system_path(path: Path) -> bool:
    """``/dev``, ``/proc`` and ``/sys`` paths name things, not files to replace (``/dev/stdout`` may be
    a redirect to a regular file, which must be written through, not renamed over)."""
    return os.path.abspath(path).startswith(("/dev/", "/proc/", "/sys/"))


_FD_ALIAS = re.compile(r"/dev/std(?P<std>out|err)|/dev/fd/(?P<fd>\d+)|/proc/self/fd/(?P<self>\d+)")


def _open_in_place(path: Path) -> int:
    """A descriptor writing straight to ``path``; ``/dev/stdout`` and the like share the open one.

    Sharing (``dup``) keeps a shell's ``>>`` appending and its ``>`` offset, where reopening the
    name would start over at the beginning of the redirected file.
    """
    alias = _FD_ALIAS.fullmatch(os.path.abspath(path))
    if alias is not None:
        std = alias["std"]
        return os.dup({"out": 1, "err": 2}[std] if std else int(alias["fd"] or alias["self"]))
    return os.open(path, os.O_WRONLY | os.O_TRUNC)


def _open_stream(handle: int) -> TextIO:
    """The text stream over a file descriptor (a seam: tests swap it for one whose disk is full)."""
    return os.fdopen(handle, "w", encoding="utf-8", newline="\n")


def _copy_mode(existing: os.stat_result | None, handle: int) -> None:
    """The replaced file's mode (and owner, if we may), else the mode a plain ``open`` would give."""
    if existing is None:
        os.fchmod(handle, 0o666 & ~umask())
        return
    os.fchmod(handle, stat.S_IMODE(existing.st_mode))
    if (existing.st_uid, existing.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(OSError):  # only root may give a file away; others keep their own
            os.fchown(handle, existing.st_uid, existing.st_gid)


def umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


_ADVICE = {
    errno.ENOSPC: "free some disk space or write elsewhere",
    errno.EDQUOT: "free some disk space or write elsewhere",
    errno.EACCES: "choose a place you may write to",
    errno.EPERM: "choose a place you may write to",
    errno.EROFS: "choose a place you may write to",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EEXIST: "a part of the path is a file, not a folder; choose another path",
}


def output_error(error: OSError, path: str | Path) -> DataError:
    """One line for an OS failure while writing ``path``: what went wrong and what to do."""
    reason = error.strerror or str(error)
    advice = _ADVICE.get(error.errno or 0, "choose another output path")
    return DataError(f"cannot write: {reason}; {advice}", path)


def output_folder(folder: Path, *, create: bool = True) -> Path:
    """Create ``folder`` (and parents) for outputs, or say in one line why it cannot be one.

    With ``create=False`` nothing is created: the folder, or its nearest existing parent, must be a
    writable folder (a check before long work, when a later failure must leave nothing behind).
    """
    if folder.exists() and not folder.is_dir():
        raise DataError("is a file, not a folder; give a folder for the output", folder)
    if not create:
        return _check_creatable(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise output_error(error, folder) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError("cannot write into this folder: permission denied; choose another one", folder)
    return folder


def _check_creatable(folder: Path) -> Path:
    parent = folder
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise DataError(f"cannot be a folder: {parent} is a file; give a folder for the output", folder)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(f"cannot be created in {parent}: permission denied; choose another one", folder)
    return folder


def safe_child(folder: Path, name: str) -> Path:
    """``folder / name`` for a file name built from data (a language code), which must stay in ``folder``.

    Input validation should already refuse such names; this is the last guard where paths are built.
    """
    child = folder / name
    bad = name in ("", ".", "..") or any(c in name for c in ("/", "\\", "\0"))
    if bad or not Path(os.path.realpath(child)).is_relative_to(os.path.realpath(folder)):
        raise DataError(f"output name {name!r} would be written outside this folder; refused", folder)
    return child


def refuse_inputs_as_output(inputs: Sequence[str], output: str | None) -> None:
    """An output that is one of the inputs, or inside an input folder, would destroy or re-read them."""
    if output in (None, STDIN):
        return
    target = os.path.realpath(output)
    for given in inputs:
        if given == STDIN:
            continue
        source = os.path.realpath(given)
        inside = os.path.isdir(source) and Path(target).is_relative_to(source)
        if target == source or inside or _same_file(target, source):
            what = "inside input folder" if inside else "the same file as input"
            raise DataError(f"the output is {what} {given}; write it somewhere else", output)


def _same_file(first: str, second: str) -> bool:
    """Hard links too: two names, one file."""
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def replace_folder(tmp: Path, final: Path) -> None:
    """Move a completely written folder into place, replacing an older one."""
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)
