"""Experiment trackers (``train.report_to``): every ``train_log.jsonl`` record, also sent to Accelerate.

The loop already hands each record to its reporter; ``TrackerReporter`` forwards the numeric
fields of each one through ``accelerator.log(values, step=record["step"])`` to the trackers the
accelerator was made with (``log_with``), so TensorBoard, W&B, MLflow ... see exactly what the
JSON-lines log holds, under the same step. Nested fields are flattened with ``/``
(``eval/dev_f1/de``); text fields (a warning) are not numbers and stay in the log only.

Trackers are finished one by one rather than through ``accelerator.end_training``, which would
also tear down the process group that the final evaluation (and the next seed's run) still needs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from nertool.errors import ConfigError
from nertool.train.reporters import Reporter

PROJECT = "nertool"  # the trackers' project name: TensorBoard writes RUN/trackers/nertool/
# The package each tracker needs, where its name is not the tracker's own.
_PACKAGES = {"comet_ml": "comet-ml"}


def check_trackers(names: Sequence[str]) -> None:
    """Every tracker named is installed; Accelerate would silently skip one that is not."""
    if not names:
        return
    from accelerate.tracking import get_available_trackers

    available = {str(tracker) for tracker in get_available_trackers()}
    missing = [name for name in names if name not in available]
    if missing:
        packages = " ".join(_PACKAGES.get(name, name) for name in missing)
        raise ConfigError(
            f"train.report_to: {', '.join(missing)} is not installed; "
            f"pip install {packages} (TensorBoard: pip install 'nertool[trackers]'), or remove it"
        )


def tracker_values(record: Mapping[str, Any], prefix: str = "") -> dict[str, float | int]:
    """The numeric fields of a log record, nested ones flattened with ``/``; ``step`` is the step."""
    values: dict[str, float | int] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if not prefix and key == "step":
            continue
        if isinstance(value, Mapping):
            values.update(tracker_values(value, f"{name}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            values[name] = value
    return values


def tracker_config(recipe_data: Mapping[str, Any]) -> dict[str, Any]:
    """The recipe (``Recipe.model_dump()``) as flat hyperparameters, ``train.learning_rate``.

    TensorBoard stores only scalars and strings: lists and tables become their JSON text, and
    unset (None) keys are left out, as in ``config.toml``.
    """
    flat: dict[str, Any] = {}
    for section, values in recipe_data.items():
        items = values.items() if isinstance(values, Mapping) else [("", values)]
        for key, value in items:
            if value is not None:
                flat[f"{section}.{key}" if key else section] = _scalar(value)
    return flat


def _scalar(value: Any) -> Any:
    if isinstance(value, (list, tuple, Mapping)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # max_grad_norm = inf
    return value


class TrackerReporter:
    """Forwards every call to ``inner`` and the numeric fields of each record to the trackers."""

    def __init__(self, inner: Reporter, accelerator: Any, *, config: Mapping[str, Any]):
        self.inner, self.accelerator, self.config = inner, accelerator, dict(config)
        self._started = False

    def start(self, total_steps: int, done: int) -> None:
        if not self._started:  # init_trackers runs on the main process only (Accelerate's rule)
            self.accelerator.init_trackers(PROJECT, config=self.config)
            self._started = True
        self.inner.start(total_steps, done)

    def step(self, step: int, loss: float) -> None:
        self.inner.step(step, loss)

    def log(self, record: dict[str, Any]) -> None:
        values = tracker_values(record)
        if values and "step" in record:
            self.accelerator.log(values, step=int(record["step"]))
        self.inner.log(record)

    def finish(self) -> None:
        self.inner.finish()
        for tracker in self.accelerator.trackers:
            tracker.finish()
