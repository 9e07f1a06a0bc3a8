"""A run folder's layout (``RunFolder``: every path in one place), one process per folder, and
no run written over another one (or over someone's files).

``claim_run_folder`` is what ``train``, ``pretrain`` and ``transfer`` hold while they write a folder:

- a lock file ``.lock`` (created with ``O_CREAT | O_EXCL``, holding the holder's pid and host), so a
  second command on the same folder fails at once, naming the holder, instead of interleaving
  logs and metrics with the first. A lock whose process is gone (same host, pid not alive) is
  stale: it is taken over with a warning. Only the main process of a multi-process launch
  (``RANK``/``LOCAL_RANK`` 0) takes it; the other ranks write only what rank 0 allows.
- a folder that holds a finished run (``metrics.json``, ``model/``) or files that are not
  nertool's needs ``--resume`` (continue) or ``--overwrite`` (remove the nertool files, start
  over); otherwise a new config would land beside the old model and metrics.

A transfer folder is resumable by design (finished sub-runs under ``runs/`` are reused), so only
files that are not nertool's stop it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nertool.errors import ConfigError, NertoolError
from nertool.files import output_folder

log = logging.getLogger("nertool")

MODEL = "model"
CONFIG = "config.toml"
METRICS = "metrics.json"
TRAIN_LOG = "train_log.jsonl"
DATA_MANIFEST = "data_manifest.json"
CHECKPOINT = "checkpoint"
TRACKERS = "trackers"
LOCK = ".lock"
PREDICTIONS = "predictions"
REPORT = "report.md"
TRANSFER_RUNS, TRANSFER_CURVE = "runs", "curve"
SELFTRAIN = "selftrain.json"  # a self-training student's pseudo-labelled sentences
_RUN = {CONFIG, DATA_MANIFEST, TRAIN_LOG, METRICS, MODEL, CHECKPOINT, TRACKERS, SELFTRAIN}
_TRANSFER = {CONFIG, TRANSFER_RUNS, TRANSFER_CURVE, "curve.json", "curve.png"} | {
    f"transfer.{ext}" for ext in ("json", "md", "csv", "png")
}
NERTOOL_FILES = {"train": _RUN, "pretrain": _RUN, "transfer": _TRANSFER}
FINISHED = (METRICS, MODEL)
_TEMPORARY = re.compile(r"\..+\.(part|partial|old)|\..+\.partial\.png|\.model\.(partial|old)")
_SEED = re.compile(r"seed-\d+")


class RunFolderError(NertoolError):
    """The run folder is busy, holds another run, or holds files that are not nertool's."""


@dataclass(frozen=True)
class RunFolder:
    """Where a run keeps each of its files: the one place their names are spelled.

    A train or pretrain run writes ``config.toml``, ``data_manifest.json``, ``train_log.jsonl``,
    ``checkpoint/`` while it trains, then ``model/`` and (train) ``metrics.json``; an evaluation
    report folder holds ``metrics.json``, ``predictions/`` and ``report.md``.
    """

    root: Path

    @property
    def model(self) -> Path:
        return self.root / MODEL

    @property
    def model_partial(self) -> Path:
        """Where the best model is saved before it replaces ``model/`` in one rename."""
        return self.root / f".{MODEL}.partial"

    @property
    def config(self) -> Path:
        return self.root / CONFIG

    @property
    def metrics(self) -> Path:
        return self.root / METRICS

    @property
    def train_log(self) -> Path:
        return self.root / TRAIN_LOG

    @property
    def data_manifest(self) -> Path:
        return self.root / DATA_MANIFEST

    @property
    def checkpoint(self) -> Path:
        return self.root / CHECKPOINT

    @property
    def checkpoint_tokenizer(self) -> Path:
        return self.checkpoint / "tokenizer"

    @property
    def loop_state(self) -> Path:
        return self.checkpoint / "loop_state.json"

    @property
    def trackers(self) -> Path:
        """Where the experiment trackers of ``train.report_to`` write (TensorBoard event files)."""
        return self.root / TRACKERS

    @property
    def lock(self) -> Path:
        return self.root / LOCK

    @property
    def predictions(self) -> Path:
        return self.root / PREDICTIONS

    @property
    def report(self) -> Path:
        return self.root / REPORT

    def seed(self, seed: int) -> RunFolder:
        """The folder of one seed's run in a multi-seed run."""
        return RunFolder(self.root / seed_folder(seed))


def seed_folder(seed: int) -> str:
    """The name of one seed's run folder inside a multi-seed run (``seed-<n>``)."""
    return f"seed-{seed}"


@contextmanager
def claim_run_folder(
    run_dir: Path, kind: str = "train", *, resume: bool = False, overwrite: bool = False
) -> Iterator[Path]:
    """Hold ``run_dir`` for one ``kind`` command (lock, contents checked, cleared on ``overwrite``)."""
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other: give one of them")
    if not is_main_process():
        yield run_dir
        return
    output_folder(run_dir)
    lock = take_lock(run_dir)
    try:
        prepare_contents(run_dir, kind, resume, overwrite=overwrite)
        yield run_dir
    finally:
        release_lock(lock)


def is_main_process() -> bool:
    """Rank 0 of a torchrun/accelerate launch, or a single process."""
    return os.environ.get("RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") == "0"


# ------------------------------------------------------------------ the lock


def take_lock(run_dir: Path) -> Path:
    """Create ``run_dir/.lock`` for this process; a live holder is an error, a dead one is replaced."""
    path = RunFolder(run_dir).lock
    for _ in range(2):
        try:
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = read_holder(path)
            if holder is None or holder_alive(holder):
                raise RunFolderError(_busy_message(run_dir, path, holder)) from None
            log.warning("%s: taking over the stale lock of process %s on %s", run_dir, *holder)
            path.unlink(missing_ok=True)
            continue
        except OSError as error:
            raise RunFolderError(f"{path}: cannot create the lock: {error.strerror}") from None
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump({"pid": os.getpid(), "host": socket.gethostname()}, stream)
        return path
    raise RunFolderError(_busy_message(run_dir, path, read_holder(path)))


def read_holder(path: Path) -> tuple[int, str] | None:
    """(pid, host) from a lock file; None when it cannot be read (being written, or damaged)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return int(data["pid"]), str(data["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def holder_alive(holder: tuple[int, str]) -> bool:
    """True unless the holder is on this host and its pid is gone (another host: cannot tell)."""
    pid, host = holder
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _busy_message(run_dir: Path, path: Path, holder: tuple[int, str] | None) -> str:
    who = f"process {holder[0]} on {holder[1]}" if holder else "another process (unreadable lock)"
    return (
        f"{run_dir}: in use by {who} (lock {path}); wait for it to finish or use another -o "
        "(delete the lock only if that process is gone)"
    )


def release_lock(path: Path) -> None:
    """Remove the lock if it is still this process's (a takeover may have replaced it)."""
    holder = read_holder(path)
    if holder is not None and holder == (os.getpid(), socket.gethostname()):
        path.unlink(missing_ok=True)


# ------------------------------------------------------------------ what the folder holds


def prepare_contents(run_dir: Path, kind: str, resume: bool, *, overwrite: bool) -> None:
    """Refuse a finished run or foreign files unless told what to do; ``overwrite`` clears ours."""
    entries = sorted(p for p in run_dir.iterdir() if p.name != LOCK)
    ours = [p for p in entries if is_nertool_file(p.name, kind)]
    foreign = [p for p in entries if p not in ours]
    if overwrite:
        for path in ours:
            _remove(path)
        return
    if resume:
        return
    if foreign:
        raise RunFolderError(
            f"{run_dir}: holds files that are not a nertool {kind} run ({foreign[0].name}"
            f"{', ...' if len(foreign) > 1 else ''}); choose an empty folder, or add --overwrite"
        )
    if kind != "transfer" and holds_finished_run(run_dir):
        raise RunFolderError(
            f"{run_dir}: holds a finished run (metrics.json or model/); "
            "add --resume to continue it or --overwrite to start over"
        )


def is_nertool_file(name: str, kind: str) -> bool:
    """A name a ``kind`` command writes in its folder (temporary names and seed runs included)."""
    if name in NERTOOL_FILES[kind] or _TEMPORARY.fullmatch(name):
        return True
    return kind == "train" and _SEED.fullmatch(name) is not None


def holds_finished_run(run_dir: Path) -> bool:
    """A kept model or metrics, at the top or in a ``seed-<n>/`` run of a multi-seed run."""
    folders = [run_dir, *(p for p in run_dir.glob("seed-*") if p.is_dir())]  # RunFolder.seed
    return any((folder / name).exists() for folder in folders for name in FINISHED)


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError as error:
        raise RunFolderError(f"{path}: cannot remove it to start over: {error.strerror}") from None
