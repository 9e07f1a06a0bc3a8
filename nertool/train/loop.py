"""The training loop: one canonical Accelerate loop shared by fine-tuning and pre-training.

seed → batches → optimizer → scheduler → one ``prepare`` → ``accumulate`` steps, exactly as
Accelerate's examples, so ``accelerate launch``/``torchrun`` (multi-GPU, multi-node) run the same
code. The loop knows nothing of labels or metrics: it receives a ``score`` callback that returns
the dev score used to keep the best model, and a ``Reporter`` for progress and logs.

Checkpoints (``accelerator.save_state``: weights, optimizer, scheduler, RNG) are written after
every evaluation and on SIGTERM/Ctrl-C, atomically and with a manifest that ``--resume`` checks
(``nertool.train.checkpoint``). Batch order is a pure function of (seed, epoch), so a resumed run skips
the batches it already did and ends with the weights of an uninterrupted one.

With several processes every decision that changes which collective operations come next (skip a
non-finite step, stop on a signal or the time limit) is taken by all processes together
(``Loop._any_rank``): one process acting alone would leave the others waiting in an all-reduce.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch

from nertool.errors import CheckpointError, NertoolError, TrainingError
from nertool.model.batching import FeatureCollator, length_grouped_batches
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
    path = folder / "loop_state.json"
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


class NanInjection:
    """Test hook: ``NERTOOL_TEST_NAN_RANK=<r>`` and ``NERTOOL_TEST_NAN_STEP=<s>`` make process r's loss
    non-finite once, at optimizer step s, to check that every process skips that step together.
    Inert unless both variables are set."""

    def __init__(self, rank: int):
        wanted_rank, step = os.environ.get("NERTOOL_TEST_NAN_RANK"), os.environ.get("NERTOOL_TEST_NAN_STEP")
        active = wanted_rank is not None and step is not None and int(wanted_rank) == rank
        self.step: int | None = int(step) if active and step is not None else None

    def apply(self, loss: torch.Tensor, step: int) -> torch.Tensor:
        if self.step is None or step != self.step:
            return loss
        self.step = None
        return loss * float("nan")


def write_weight_fingerprint(model: Any, rank: int) -> None:
    """Test hook: with ``NERTOOL_TEST_WEIGHTS_OUT=<folder>`` each process writes the sha256 of its
    weights to ``rank-<i>.sha256`` there, so a test can see that all processes ended equal."""
    folder = os.environ.get("NERTOOL_TEST_WEIGHTS_OUT")
    if not folder:
        return
    sha = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        sha.update(name.encode())
        sha.update(tensor.detach().float().cpu().numpy().tobytes())
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / f"rank-{rank}.sha256").write_text(sha.hexdigest())


T = TypeVar("T")


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


def any_rank(accelerator: Any, flag: bool) -> bool:
    """True on every process when ``flag`` is true on any (free with one process)."""
    if accelerator.num_processes == 1:
        return flag
    votes = torch.tensor([1.0 if flag else 0.0], device=accelerator.device)
    return bool(accelerator.reduce(votes, reduction="sum").item() > 0)


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
        self._nan_injection = NanInjection(self.accelerator.process_index)
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
            self.lengths,
            self.settings.batch_size,
            self.settings.seed,
            epoch=epoch,
            group=self.settings.group_by_length,
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
        """Load the latest checkpoint if there is one, after checking it whole; True when it was loaded.

        Nothing is loaded unless the manifest vouches for every file and the model built from the
        recipe has the checkpoint's labels and shapes, so a resumed run never mixes two checkpoints.
        """
        if not has_checkpoint(self.checkpoint_dir):
            return False
        state = self._collectively(self._verified_state)
        self._collectively(self._load_state)
        self.state = state
        return True

    def _verified_state(self) -> LoopState:
        """The checkpoint's loop state once its files (main process) and its model summary match."""
        folder = self.checkpoint_dir
        manifest = read_manifest(folder)
        if self.accelerator.is_main_process:
            verify_files(folder, manifest)
        verify_model(folder, manifest, model_summary(self.accelerator.unwrap_model(self.model)))
        return read_loop_state(folder, manifest.get("step"))

    def _load_state(self) -> None:
        """``load_state``, with a damaged pickle or tensor file turned into one line."""
        try:
            self.accelerator.load_state(str(self.checkpoint_dir))
        except Exception as error:  # torch.load and safetensors raise many kinds
            first = (str(error).strip().splitlines() or [""])[0][:200]
            raise CheckpointError(
                f"{self.checkpoint_dir}: cannot load it ({type(error).__name__}: {first}); {START_OVER}"
            ) from None

    def _collectively(self, action: Callable[[], T]) -> T:
        """Run ``action`` on every process; when it fails on any, all of them raise, so none is left
        waiting in a collective for a process that gave up."""
        error: NertoolError | None = None
        try:
            result = action()
        except NertoolError as caught:
            error = caught
        if self._any_rank(error is not None):
            raise error or CheckpointError(
                f"{self.checkpoint_dir}: another process could not resume it; {START_OVER}"
            )
        return result

    def _any_rank(self, flag: bool) -> bool:
        return any_rank(self.accelerator, flag)

    def resume_or_restart(self, resume: bool, log_path: Path) -> bool:
        """Load the latest checkpoint when asked; trim the run log to it (or clear it). True if resumed."""
        if resume:
            restore_checkpoint(self.checkpoint_dir, self.accelerator)
        resumed = resume and self.resume()
        if resume and not resumed:
            log.warning("no checkpoint in %s; starting from the beginning", self.checkpoint_dir)
        if self.accelerator.is_main_process:
            trim_log(log_path, self.state.step if resumed else -1)
        return resumed

    def save_checkpoint(self) -> None:
        """Write the checkpoint beside the current one; swap it in only once sealed by its manifest.

        ``save_state`` is collective (every process writes its RNG state); only the main process
        seals and renames, and everyone waits for that before training on.
        """
        accelerator, folder = self.accelerator, self.checkpoint_dir
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            start_partial(folder)
        boundary()
        accelerator.wait_for_everyone()
        accelerator.save_state(str(partial_dir(folder)), safe_serialization=True)
        accelerator.wait_for_everyone()
        boundary()
        if accelerator.is_main_process:
            self._seal(partial_dir(folder))
            publish(folder)
        accelerator.wait_for_everyone()

    def _seal(self, partial: Path) -> None:
        (partial / "loop_state.json").write_text(json.dumps(asdict(self.state)), encoding="utf-8")
        boundary()
        write_manifest(partial, self.state.step, model_summary(self.accelerator.unwrap_model(self.model)))
        boundary()

    def run(self) -> LoopState:
        self._run_started, self._timed_out = time.perf_counter(), False
        self.reporter.start(self.total, self.state.step)
        with stop_on_signals() as stop:
            while not self._finished():
                self._run_epoch(stop)
        self.reporter.finish()
        write_weight_fingerprint(self.accelerator.unwrap_model(self.model), self.accelerator.process_index)
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
            if self._any_rank(stop.is_set()):
                self.save_checkpoint()
                raise Interrupted(
                    f"interrupted; checkpoint saved in {self.checkpoint_dir}; rerun with --resume"
                )
            if self._finished() or self._out_of_time():
                return
        self.state.epoch += 1
        self.state.batch_in_epoch = 0

    def _time_is_up(self) -> bool:
        """Past ``max_seconds`` since ``run`` started, on this process's clock."""
        limit = self.settings.max_seconds
        return limit is not None and time.perf_counter() - self._run_started > limit

    def _out_of_time(self) -> bool:
        """Past the time limit on any process: all evaluate and checkpoint (once), then stop."""
        if self.settings.max_seconds is None or not self._any_rank(self._time_is_up()):
            return False
        if not self.state.history or self.state.history[-1]["step"] != self.state.step:
            self._evaluate()
        self._timed_out = True
        return True

    def _train_step(self, batch: dict[str, Any]) -> float:
        """One micro-batch under ``accumulate``; a non-finite loss skips the update."""
        with self.accelerator.accumulate(self.model):
            loss = self._nan_injection.apply(self.model(**batch).loss, self.state.step)
            if self._any_rank(not bool(torch.isfinite(loss.detach()))):
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
