"""The training loop: one canonical Accelerate loop shared by fine-tuning and pre-training.

seed → batches → optimizer → scheduler → one ``prepare`` → ``accumulate`` steps, exactly as
Accelerate's examples, so ``accelerate launch``/``torchrun`` (multi-GPU, multi-node) run the same
code. The loop knows nothing of labels or metrics: it receives a ``score`` callback that returns
the dev score used to keep the best model, and a ``Reporter`` for progress and logs.

Checkpoints (``accelerator.save_state``: weights, optimizer, scheduler, RNG) are written after
every evaluation and on SIGTERM/Ctrl-C. Batch order is a pure function of (seed, epoch), so a
resumed run skips the batches it already did and ends with the weights of an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from nertool.batching import FeatureCollator, length_grouped_batches
from nertool.errors import NertoolError, TrainingError

log = logging.getLogger("nertool")


@dataclass(frozen=True)
class LoopSettings:
    """What the loop needs from a recipe's ``[train]`` section (and pre-training's)."""

    epochs: float
    batch_size: int
    learning_rate: float
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"
    group_by_length: bool = True
    evals_per_epoch: int = 1
    log_every: int = 20
    early_stopping_patience: int | None = None
    max_nonfinite_steps: int = 10
    max_steps: int | None = None
    max_seconds: float | None = None
    seed: int = 42
    loader_workers: int = 0


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


class Interrupted(NertoolError):
    """Training stopped by a signal after saving a checkpoint."""


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


ScoreFn = Callable[[Any], tuple[float, dict[str, Any]]]
BestFn = Callable[[Any], None]


def make_accelerator(settings: LoopSettings) -> Any:
    from accelerate import Accelerator

    precision = settings.mixed_precision if torch.cuda.is_available() else "no"
    return Accelerator(
        mixed_precision=precision,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        cpu=not torch.cuda.is_available(),
    )


def optimizer_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: no decay on biases and LayerNorm weights (BERT's recipe)."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim < 2 or "LayerNorm" in name or "norm" in name else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def total_steps(n_batches: int, settings: LoopSettings) -> int:
    steps = math.ceil(n_batches * settings.epochs / settings.gradient_accumulation_steps)
    return min(steps, settings.max_steps) if settings.max_steps else steps


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM/SIGINT, so the loop can save before it stops (main thread only)."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda *_: event.set())
    try:
        yield event
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Loop:
    """One training run over fixed features; ``run`` returns the final ``LoopState``."""

    def __init__(
        self,
        model: Any,
        features: Sequence[Any],
        settings: LoopSettings,
        checkpoint_dir: Path,
        score: ScoreFn | None = None,
        on_best: BestFn | None = None,
        reporter: Reporter | None = None,
        collator: Callable[[Sequence[Any]], dict[str, Any]] | None = None,
        lengths: Sequence[int] | None = None,
        accelerator: Any = None,
    ):
        from accelerate.utils import set_seed

        set_seed(settings.seed)
        self.settings = settings
        self.features = features
        self.lengths = lengths if lengths is not None else [len(f) for f in features]
        self.collator = collator or FeatureCollator(pad_id=model.config.pad_token_id or 0)
        self.checkpoint_dir = checkpoint_dir
        self.score, self.on_best = score, on_best
        self.reporter = reporter or SilentReporter()
        self.accelerator = accelerator or make_accelerator(settings)
        self.state = LoopState()
        self._run_started, self._timed_out = 0.0, False
        self.batches_per_epoch = math.ceil(len(features) / settings.batch_size)
        self.total = total_steps(self._local_batches(), settings)
        self._prepare(model)

    def _local_batches(self) -> int:
        return math.ceil(self.batches_per_epoch / self.accelerator.num_processes)

    def _prepare(self, model: Any) -> None:
        from transformers import get_linear_schedule_with_warmup

        s = self.settings
        optimizer = torch.optim.AdamW(optimizer_groups(model, s.weight_decay), lr=s.learning_rate)
        scheduler = get_linear_schedule_with_warmup(optimizer, int(s.warmup_ratio * self.total), self.total)
        self.model, self.optimizer, self.scheduler = self.accelerator.prepare(model, optimizer, scheduler)

    def _epoch_loader(self, epoch: int, skip: int) -> Any:
        """This epoch's batches (a pure function of seed and epoch), minus the ``skip`` already done."""
        batches = length_grouped_batches(
            self.lengths, self.settings.batch_size, self.settings.seed, epoch, self.settings.group_by_length
        )
        world = self.accelerator.num_processes
        # Skip whole rounds of batches (one per process) by slicing the list, not with a wrapper:
        # a private generator keeps iterator creation off the global RNG that dropout uses,
        # so a resumed epoch sees exactly the dropout masks of an uninterrupted one.
        generator = torch.Generator().manual_seed(self.settings.seed * 1_000_003 + epoch)
        loader: torch.utils.data.DataLoader[Any] = torch.utils.data.DataLoader(
            self.features,  # type: ignore[arg-type]  # a list is a map-style dataset
            batch_sampler=batches[skip * world :],
            collate_fn=self.collator,
            generator=generator,
            num_workers=self.settings.loader_workers,
        )
        return self.accelerator.prepare_data_loader(loader)

    def resume(self) -> bool:
        """Load the latest checkpoint if there is one; True when it was loaded."""
        state_file = self.checkpoint_dir / "loop_state.json"
        if not state_file.is_file():
            return False
        self.accelerator.load_state(str(self.checkpoint_dir))
        self.state = LoopState(**json.loads(state_file.read_text()))
        return True

    def resume_or_restart(self, resume: bool, log_path: Path) -> bool:
        """Load the latest checkpoint when asked; trim the run log to it (or clear it). True if resumed."""
        resumed = resume and self.resume()
        if resume and not resumed:
            log.warning("no checkpoint in %s; starting from the beginning", self.checkpoint_dir)
        if self.accelerator.is_main_process:
            trim_log(log_path, self.state.step if resumed else -1)
        return resumed

    def save_checkpoint(self) -> None:
        self.accelerator.wait_for_everyone()
        self.accelerator.save_state(str(self.checkpoint_dir), safe_serialization=True)
        if self.accelerator.is_main_process:
            tmp = self.checkpoint_dir / "loop_state.json.tmp"
            tmp.write_text(json.dumps(asdict(self.state)))
            tmp.replace(self.checkpoint_dir / "loop_state.json")

    def run(self) -> LoopState:
        self._run_started, self._timed_out = time.perf_counter(), False
        self.reporter.start(self.total, self.state.step)
        with stop_on_signals() as stop:
            while not self._finished():
                self._run_epoch(stop)
        self.reporter.finish()
        if self.state.best_step < 0 and self.on_best is not None:
            self.on_best(self.accelerator.unwrap_model(self.model))
        return self.state

    def _finished(self) -> bool:
        s = self.settings
        patience_out = (
            s.early_stopping_patience is not None
            and self.state.evals_without_gain >= s.early_stopping_patience
        )
        return self.state.step >= self.total or patience_out or self._timed_out

    def _eval_points(self) -> set[int]:
        """Batch indices (within an epoch) after which to evaluate."""
        n = self._local_batches()
        per = self.settings.evals_per_epoch
        return {max(1, round(n * (k + 1) / per)) - 1 for k in range(per)}

    def _run_epoch(self, stop: threading.Event) -> None:
        self.model.train()
        eval_points = self._eval_points()
        started, tokens, sentences = time.perf_counter(), 0, 0
        for batch in self._epoch_loader(self.state.epoch, self.state.batch_in_epoch):
            loss = self._train_step(batch)
            tokens += int(batch["attention_mask"].sum())
            sentences += int(batch["input_ids"].shape[0])
            self.state.batch_in_epoch += 1
            self._maybe_log(loss, tokens, sentences, time.perf_counter() - started)
            if self.state.batch_in_epoch - 1 in eval_points or self.state.step >= self.total:
                self._evaluate()
            if stop.is_set():
                self.save_checkpoint()
                raise Interrupted(
                    f"interrupted; checkpoint saved in {self.checkpoint_dir}; rerun with --resume"
                )
            if self._finished() or self._out_of_time():
                return
        self.state.epoch += 1
        self.state.batch_in_epoch = 0

    def _out_of_time(self) -> bool:
        """Past ``max_seconds`` since ``run`` started: evaluate and checkpoint (once), then stop."""
        limit = self.settings.max_seconds
        if limit is None or time.perf_counter() - self._run_started <= limit:
            return False
        if not self.state.history or self.state.history[-1]["step"] != self.state.step:
            self._evaluate()
        self._timed_out = True
        return True

    def _train_step(self, batch: dict[str, Any]) -> float:
        """One micro-batch under ``accumulate``; a non-finite loss skips the update."""
        with self.accelerator.accumulate(self.model):
            loss = self.model(**batch).loss
            if not torch.isfinite(loss.detach()):
                self._count_nonfinite()
                self.optimizer.zero_grad()
                return float("nan")
            self.accelerator.backward(loss)
            if self.accelerator.sync_gradients:
                self.accelerator.clip_grad_norm_(self.model.parameters(), self.settings.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad()
        if self.accelerator.sync_gradients:
            self.state.step += 1
            self.reporter.step(self.state.step, float(loss.detach()))
        return float(loss.detach())

    def _count_nonfinite(self) -> None:
        self.state.nonfinite_steps += 1
        self.reporter.log({"step": self.state.step, "warning": "non-finite loss; step skipped"})
        if self.state.nonfinite_steps > self.settings.max_nonfinite_steps:
            raise TrainingError(
                f"{self.state.nonfinite_steps} steps had a non-finite loss (limit train.max_nonfinite_steps="
                f"{self.settings.max_nonfinite_steps}); lower the learning rate or check the data"
            )

    def _maybe_log(self, loss: float, tokens: int, sentences: int, seconds: float) -> None:
        if self.state.batch_in_epoch % self.settings.log_every:
            return
        self.reporter.log(
            {
                "step": self.state.step,
                "epoch": self.state.epoch + self.state.batch_in_epoch / max(1, self._local_batches()),
                "loss": loss,
                "lr": self.scheduler.get_last_lr()[0],
                "sentences_per_s": sentences * self.accelerator.num_processes / max(seconds, 1e-9),
                "tokens_per_s": tokens * self.accelerator.num_processes / max(seconds, 1e-9),
            }
        )

    def _evaluate(self) -> None:
        """Score on dev, keep the best model, count evaluations without gain, checkpoint."""
        if self.score is None:
            self.save_checkpoint()
            return
        unwrapped = self.accelerator.unwrap_model(self.model)
        value, details = self.score(unwrapped)
        self.model.train()
        record = {"step": self.state.step, "epoch": self.state.epoch, "score": value, "eval": details}
        self.state.history.append(record)
        self.reporter.log(record)
        if value > self.state.best_score:
            self.state.best_score, self.state.best_step, self.state.evals_without_gain = (
                value,
                self.state.step,
                0,
            )
            if self.on_best is not None:
                self.on_best(unwrapped)
        else:
            self.state.evals_without_gain += 1
        self.save_checkpoint()
