"""Atomic, verified checkpoints: a folder that is either a whole checkpoint or refused on resume.

A checkpoint is written into a sibling ``.checkpoint.partial`` folder, closed by ``manifest.json``
(every file with its size and sha256, the label map, every parameter's shape, the step) written
last, flushed to disk, and only then moved into place: ``checkpoint`` → ``.checkpoint.old``,
``.checkpoint.partial`` → ``checkpoint``, ``.checkpoint.old`` removed. A process killed at any
point therefore leaves a complete ``checkpoint`` (or, between the two renames, a complete
``.checkpoint.old`` that ``restore_interrupted`` moves back). ``--resume`` loads nothing a
manifest does not vouch for, so new weights never continue with an old optimizer or step.

The folders must sit on one file system that every process sees (as ``save_state`` needs).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

from nertool.errors import CheckpointError

MANIFEST = "manifest.json"
FORMAT = 1
START_OVER = "rerun without --resume to start over"

# Test hook: with NERTOOL_TEST_KILL_AT=<n> the process SIGKILLs itself right after the n-th
# checkpoint-writing boundary (counted over the whole process, ``BOUNDARIES_PER_SAVE`` per save).
# Inert unless the variable is set; the crash tests use it to stop at every boundary in turn.
KILL_ENV = "NERTOOL_TEST_KILL_AT"
BOUNDARIES_PER_SAVE = 7
_boundaries = itertools.count(1)


def boundary() -> None:
    """Mark one finished step of a checkpoint write (test hook: maybe die here, see ``KILL_ENV``)."""
    target = os.environ.get(KILL_ENV)
    if target and next(_boundaries) == int(target):
        os.kill(os.getpid(), signal.SIGKILL)


def partial_dir(folder: Path) -> Path:
    return folder.with_name(f".{folder.name}.partial")


def old_dir(folder: Path) -> Path:
    return folder.with_name(f".{folder.name}.old")


def model_summary(model: Any) -> dict[str, Any]:
    """What a checkpoint's weights must agree with: the label names in id order and every shape."""
    id2label = getattr(getattr(model, "config", None), "id2label", None) or {}
    return {
        "labels": [id2label[key] for key in sorted(id2label, key=int)],
        "parameters": {name: list(p.shape) for name, p in model.named_parameters()},
    }


def _digest(path: Path, flush: bool = False) -> str:
    """sha256 of a file; with ``flush`` also force it to disk (the file is read once for both)."""
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
        if flush:
            os.fsync(handle.fileno())
    return sha.hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def _fsync_dir(folder: Path) -> None:
    """Make renames and new entries in ``folder`` durable (POSIX; a no-op where dirs cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_manifest(folder: Path, step: int, summary: dict[str, Any]) -> None:
    """Seal a fully written checkpoint folder: flush its files, then write the manifest last."""
    files = {
        p.relative_to(folder).as_posix(): {"bytes": p.stat().st_size, "sha256": _digest(p, flush=True)}
        for p in _files(folder)
    }
    for sub in {p.parent for p in _files(folder)}:
        _fsync_dir(sub)
    manifest = {"format": FORMAT, "step": step, "files": files, **summary}
    tmp = folder / f".{MANIFEST}.partial"
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(manifest, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, folder / MANIFEST)
    _fsync_dir(folder)


def start_partial(folder: Path) -> Path:
    """An empty ``.checkpoint.partial`` holding a copy of the run's tokenizer (main process only)."""
    partial = partial_dir(folder)
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    if (folder / "tokenizer").is_dir():
        shutil.copytree(folder / "tokenizer", partial / "tokenizer")
    return partial


def publish(folder: Path) -> None:
    """Move the sealed ``.checkpoint.partial`` into place, keeping the old one until it is there."""
    partial, old = partial_dir(folder), old_dir(folder)
    if old.exists():
        shutil.rmtree(old)
    if folder.exists():
        folder.rename(old)
    _fsync_dir(folder.parent)
    boundary()
    partial.rename(folder)
    _fsync_dir(folder.parent)
    boundary()
    if old.exists():
        shutil.rmtree(old)
    boundary()


def restore_interrupted(folder: Path) -> None:
    """Undo a publish cut short between its renames: a complete ``.checkpoint.old`` comes back.

    Call before anything reads the checkpoint (the tokenizer inside it included), on the main
    process only. A sealed ``.checkpoint.partial`` is newer but is left alone: the previous
    checkpoint is the one the run log was last trimmed to agree with.
    """
    old = old_dir(folder)
    if not folder.exists() and (old / MANIFEST).is_file():
        old.rename(folder)
        _fsync_dir(folder.parent)
    elif (folder / MANIFEST).is_file() and old.exists():
        shutil.rmtree(old)


def has_checkpoint(folder: Path) -> bool:
    """True when ``folder`` holds (part of) a checkpoint, not just the tokenizer a new run saved."""
    return any((folder / name).exists() for name in (MANIFEST, "loop_state.json", "model.safetensors"))


def _refuse(folder: Path, problem: str) -> CheckpointError:
    return CheckpointError(f"{folder}: {problem}; {START_OVER}")


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest, or a one-line refusal when it is missing or unreadable."""
    path = folder / MANIFEST
    if not path.is_file():
        raise _refuse(folder, f"no {MANIFEST}, so the checkpoint is incomplete or from an older nertool")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _refuse(folder, f"{MANIFEST} is unreadable ({error})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise _refuse(folder, f"{MANIFEST} lists no files")
    return manifest


_verified: set[tuple[str, int, int]] = set()


def verify_files(folder: Path, manifest: dict[str, Any]) -> None:
    """Every file the manifest names is there with its size and sha256 (hashed once per manifest:
    a run checks its checkpoint before reading the tokenizer in it and again before loading it)."""
    stat = (folder / MANIFEST).stat()
    key = (str((folder / MANIFEST).resolve()), stat.st_mtime_ns, stat.st_ino)
    if key in _verified:
        return
    _check_files(folder, manifest)
    _verified.add(key)


def _check_files(folder: Path, manifest: dict[str, Any]) -> None:
    for name, entry in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise _refuse(folder, f"{name} is missing")
        size = path.stat().st_size
        if not isinstance(entry, dict) or size != entry.get("bytes"):
            raise _refuse(folder, f"{name} has {size} bytes, the manifest says {entry.get('bytes')}")
        if _digest(path) != entry.get("sha256"):
            raise _refuse(folder, f"{name} is damaged (its sha256 differs from the manifest's)")


def verify_model(folder: Path, manifest: dict[str, Any], summary: dict[str, Any]) -> None:
    """The checkpoint's labels and parameter shapes are those of the model built from the recipe."""
    if manifest.get("labels") != summary["labels"]:
        raise _refuse(
            folder,
            f"the checkpoint has labels {manifest.get('labels')}, the recipe's data {summary['labels']}",
        )
    saved: dict[str, Any] = manifest.get("parameters") or {}
    built: dict[str, Any] = summary["parameters"]
    for name in sorted(saved.keys() | built.keys()):
        if saved.get(name) != built.get(name):
            raise _refuse(
                folder,
                f"parameter {name} has shape {saved.get(name)} in the checkpoint but {built.get(name)} in "
                "the model the recipe builds (another model or size?)",
            )
