"""The loop's progress (``LoopState``) and how every process saves and restores it together.

``nertool.train.checkpoint`` is the folder format (atomic swap, manifest); this module is the
loop's use of it with several processes: ``save_state``/``load_state`` are collective, only the
main process seals, renames and hashes, and a refusal on any process is raised on all of them
(``any_rank``), so none is left waiting in a collective for a process that gave up.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

import torch

from nertool.errors import CheckpointError, NertoolError
from nertool.train.checkpoint import (
    START_OVER,
    boundary,
    has_checkpoint,
    model_summary,
    partial_dir,
    publish,
    read_manifest,
    restore_interrupted,
    start_partial,
    verify_files,
    verify_model,
    write_manifest,
)

T = TypeVar("T")
STATE_FILE = "loop_state.json"


@dataclass
class LoopState:
    """Progress that must survive a restart (saved next to each checkpoint)."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_score: float = -math.inf
    best_step: int = -1
    evals_without_gain: int = 0
    nonfinite_steps: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


_STATE_TYPES: dict[str, tuple[type, ...]] = {
    "step": (int,),
    "epoch": (int,),
    "batch_in_epoch": (int,),
    "best_score": (int, float),
    "best_step": (int,),
    "evals_without_gain": (int,),
    "nonfinite_steps": (int,),
    "history": (list,),
}


def read_loop_state(folder: Path, step: Any) -> LoopState:
    """``loop_state.json`` of a checkpoint, checked field by field against ``LoopState`` and the
    manifest's step: a hand-edited or foreign file is refused in one line, not a traceback."""
    path = folder / STATE_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: unreadable ({error}); {START_OVER}") from None
    expected = [f.name for f in fields(LoopState)]
    if not isinstance(raw, dict) or sorted(raw) != sorted(expected):
        raise CheckpointError(f"{path}: expected the fields {', '.join(expected)}; {START_OVER}")
    for name, types in _STATE_TYPES.items():
        if isinstance(raw[name], bool) or not isinstance(raw[name], types):
            raise CheckpointError(f"{path}: {name} is {raw[name]!r}, not a {types[0].__name__}; {START_OVER}")
    if raw["step"] != step:
        raise CheckpointError(f"{path}: step {raw['step']} but the manifest says {step}; {START_OVER}")
    return LoopState(**raw)


def any_rank(accelerator: Any, flag: bool) -> bool:
    """True on every process when ``flag`` is true on any (free with one process)."""
    if accelerator.num_processes == 1:
        return flag
    votes = torch.tensor([1.0 if flag else 0.0], device=accelerator.device)
    return bool(accelerator.reduce(votes, reduction="sum").item() > 0)


def collectively(accelerator: Any, folder: Path, action: Callable[[], T]) -> T:
    """Run ``action`` on every process; when it fails on any, all of them raise."""
    error: NertoolError | None = None
    try:
        result = action()
    except NertoolError as caught:
        error = caught
    if any_rank(accelerator, error is not None):
        raise error or CheckpointError(f"{folder}: another process could not resume it; {START_OVER}")
    return result


def restore_checkpoint(folder: Path, accelerator: Any) -> None:
    """Before ``--resume`` reads anything in the checkpoint (its tokenizer first): bring back one
    whose replacement was cut short (``restore_interrupted``) and check every file against the
    manifest, so a damaged checkpoint is refused in one line on every process."""
    error: NertoolError | None = None
    if accelerator.is_main_process:
        restore_interrupted(folder)
        try:
            if has_checkpoint(folder):
                verify_files(folder, read_manifest(folder))
        except NertoolError as caught:
            error = caught
    if any_rank(accelerator, error is not None):
        raise error or CheckpointError(f"{folder}: the main process refused it; {START_OVER}")
    accelerator.wait_for_everyone()


def save_checkpoint(accelerator: Any, folder: Path, *, state: LoopState, model: Any) -> None:
    """Write the checkpoint beside the current one; swap it in only once sealed by its manifest.

    ``save_state`` is collective (every process writes its RNG state); only the main process
    seals and renames, and everyone waits for that before training on.
    """
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        start_partial(folder)
    boundary()
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial_dir(folder)), safe_serialization=True)
    accelerator.wait_for_everyone()
    boundary()
    if accelerator.is_main_process:
        _seal(partial_dir(folder), state, model_summary(accelerator.unwrap_model(model)))
        publish(folder)
    accelerator.wait_for_everyone()


def _seal(partial: Path, state: LoopState, summary: dict[str, Any]) -> None:
    (partial / STATE_FILE).write_text(json.dumps(asdict(state)), encoding="utf-8")
    boundary()
    write_manifest(partial, state.step, summary)
    boundary()


def resume_state(accelerator: Any, folder: Path, *, model: Any) -> LoopState | None:
    """Load the latest checkpoint into the prepared objects after checking it whole; its loop
    state, or None when there is no checkpoint.

    Nothing is loaded unless the manifest vouches for every file and the model built from the
    recipe has the checkpoint's labels and shapes, so a resumed run never mixes two checkpoints.
    """
    if not has_checkpoint(folder):
        return None
    state = collectively(accelerator, folder, lambda: _verified_state(accelerator, folder, model))
    collectively(accelerator, folder, lambda: _load_state(accelerator, folder))
    return state


def _verified_state(accelerator: Any, folder: Path, model: Any) -> LoopState:
    """The checkpoint's loop state once its files (main process) and its model summary match."""
    manifest = read_manifest(folder)
    if accelerator.is_main_process:
        verify_files(folder, manifest)
    verify_model(folder, manifest, model_summary(accelerator.unwrap_model(model)))
    return read_loop_state(folder, manifest.get("step"))


def _load_state(accelerator: Any, folder: Path) -> None:
    """``load_state``, with a damaged pickle or tensor file turned into one line."""
    try:
        accelerator.load_state(str(folder))
    except Exception as error:  # torch.load and safetensors raise many kinds
        first = (str(error).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(
            f"{folder}: cannot load it ({type(error).__name__}: {first}); {START_OVER}"
        ) from None
