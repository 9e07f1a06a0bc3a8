"""How a training run reports: the ``Reporter`` protocol, a silent one, and the ``train_log.jsonl`` writer.

The loop only calls a reporter; what is shown (a progress bar, nothing) is the caller's choice,
and the JSON-lines log wraps whichever reporter the caller gave, so every run logs the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol


class Reporter(Protocol):
    def start(self, total_steps: int, done: int) -> None: ...
    def step(self, step: int, loss: float) -> None: ...
    def log(self, record: dict[str, Any]) -> None: ...
    def finish(self) -> None: ...


class SilentReporter:
    """A reporter that records nothing: for tests and library use."""

    def start(self, total_steps: int, done: int) -> None:
        pass

    def step(self, step: int, loss: float) -> None:
        pass

    def log(self, record: dict[str, Any]) -> None:
        pass

    def finish(self) -> None:
        pass


class JsonlLogReporter:
    """Appends every log record to ``train_log.jsonl`` (main process only) and forwards all calls."""

    def __init__(self, path: Path, inner: Reporter, enabled: bool = True):
        self.path, self.inner, self.enabled = path, inner, enabled

    def start(self, total_steps: int, done: int) -> None:
        self.inner.start(total_steps, done)

    def step(self, step: int, loss: float) -> None:
        self.inner.step(step, loss)

    def log(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.inner.log(record)

    def finish(self) -> None:
        self.inner.finish()


def trim_log(path: Path, last_step: int) -> None:
    """Keep only log records up to the checkpoint a run resumes from (all of them go when -1)."""
    if not path.exists():
        return
    kept = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if last_step >= 0 and json.loads(line).get("step", 0) <= last_step
    ]
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    tmp.replace(path)
