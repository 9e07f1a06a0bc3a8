"""The training loop: one canonical Accelerate loop shared by fine-tuning and pre-training.

seed → batches → optimizer → scheduler → one ``prepare`` → ``accumulate`` steps, exactly as
Accelerate's examples, so ``accelerate launch``/``torchrun`` (multi-GPU, multi-node) run the same
code. The loop knows nothing of labels or metrics: everything a job adds is given at construction
in ``LoopHooks`` (a ``score`` callback returning the dev score that keeps the best model, what to
do with that model, what to do as an epoch starts, when to evaluate), with a ``Reporter`` for
progress and logs (``nertool.train.reporters``).

Checkpoints (``accelerator.save_state``: weights, optimizer, scheduler, RNG) are written after
every evaluation and on SIGTERM/Ctrl-C, atomically and with a manifest that ``--resume`` checks
(``nertool.train.checkpoint``, ``nertool.train.state``). Batch order is a pure function of
(seed, epoch), so a resumed run skips the batches it already did and ends with the weights of an
uninterrupted one.

With several processes every decision that changes which collective operations come next (stop
on a signal or the time limit) is taken by all processes together (``any_rank``): one process
acting alone would leave the others waiting in an all-reduce.

The steady state has no host sync: a step's loss, its skip flag and the token count stay on the
device (``nertool.train.tally``) and are read together at log time. A non-finite loss is skipped
on the device, by the fused AdamW kernel's ``found_inf`` (agreed across processes by an
all-reduce, not a vote on the host); its step still counts, so step numbers stay a function of
batches. Batches are sentence batches (``length_grouped_batches``) or token budgets
(``token_budget_training_batches``), padded to a multiple of ``pad_to_multiple_of`` so that
shapes repeat.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nertool.errors import NertoolError, TrainingError
from nertool.model.arrays import lengths_of
from nertool.model.batching import FeatureCollator
from nertool.threads import tokenizer_threads_off
from nertool.train.cpu_kernels import cpu_training_kernels
from nertool.train.plan import BatchPlan
from nertool.train.reporters import JsonlLogReporter, Reporter, SilentReporter, trim_log
from nertool.train.runtime import (
    NanInjection,
    loader_workers,
    make_accelerator,
    make_optimizer,
    stop_on_signals,
    time_is_up,
    write_weight_fingerprint,
)
from nertool.train.settings import LoopSettings, total_steps
from nertool.train.state import LoopState, any_rank, restore_checkpoint, resume_state, save_checkpoint
from nertool.train.stepping import graphed_step, optimizer_groups, scaled_learning_rate
from nertool.train.tally import StepTally

__all__ = [  # the reporters and settings are re-exported: ``from nertool.train.loop import ...`` works
    "BestFn",
    "EvalSchedule",
    "Interrupted",
    "JsonlLogReporter",
    "Loop",
    "LoopHooks",
    "LoopSettings",
    "LoopState",
    "Reporter",
    "ScoreFn",
    "SilentReporter",
    "evals_per_epoch",
    "every_n_batches",
    "make_accelerator",
    "total_steps",
]

log = logging.getLogger("nertool")
PROGRESS_EVERY_S = 0.5  # one process: the progress bar reads the tally at most this often

ScoreFn = Callable[[Any], tuple[float, dict[str, Any]]]
BestFn = Callable[[Any], None]
# (epoch, batches per epoch on this process) → the batch indices after which to evaluate
EvalSchedule = Callable[[int, int], Collection[int]]


def evals_per_epoch(count: int) -> EvalSchedule:
    """``count`` evaluations spread evenly over each epoch, the last after its final batch."""

    def points(epoch: int, n: int) -> set[int]:
        return {max(1, round(n * (k + 1) / count)) - 1 for k in range(count)}

    return points


def every_n_batches(period: int) -> EvalSchedule:
    """An evaluation after every ``period``-th batch of the run, counted across epochs."""

    def points(epoch: int, n: int) -> set[int]:
        return {batch for batch in range(n) if (epoch * n + batch + 1) % period == 0}

    return points


@dataclass(frozen=True)
class LoopHooks:
    """What a job adds to the loop, given whole at construction.

    ``score(model)`` returns (selection score, details for the log): higher is better; without it
    the loop only checkpoints. ``on_best(model)`` keeps a model that scored best (or, when nothing
    was scored, the last one). ``on_epoch_start(epoch)`` runs before an epoch's batches are drawn
    (pre-training re-seeds its masks there). ``eval_schedule`` defaults to ``evals_per_epoch``.
    """

    score: ScoreFn | None = None
    on_best: BestFn | None = None
    on_epoch_start: Callable[[int], None] | None = None
    eval_schedule: EvalSchedule | None = None


class Interrupted(NertoolError):
    """Training stopped by a signal after saving a checkpoint."""


class Loop:
    """One training run over fixed features; ``run`` returns the final ``LoopState``."""

    def __init__(
        self,
        model: Any,
        features: Sequence[Any],
        settings: LoopSettings,
        checkpoint_dir: Path,
        *,
        hooks: LoopHooks | None = None,
        reporter: Reporter | None = None,
        collator: Callable[[Sequence[Any]], dict[str, Any]] | None = None,
        lengths: Sequence[int] | None = None,
        accelerator: Any = None,
    ):
        from accelerate.utils import set_seed

        set_seed(settings.seed)  # the training RNG (dropout): a run's only seeding inside the loop
        self.settings = settings
        self.features = features
        self.lengths = lengths if lengths is not None else lengths_of(features)
        self.checkpoint_dir = checkpoint_dir
        self.hooks = hooks or LoopHooks()
        self.eval_schedule = self.hooks.eval_schedule or evals_per_epoch(settings.evals_per_epoch)
        self.reporter = reporter or SilentReporter()
        self.accelerator = accelerator or make_accelerator(settings)
        device = self.accelerator.device
        self.pad_multiple = settings.pad_to_multiple_of or (16 if device.type == "cuda" else 1)
        self.collator = collator or FeatureCollator(model.config.pad_token_id or 0, self.pad_multiple)
        self.state = LoopState()
        self._run_started, self._timed_out, self._last_read = 0.0, False, 0.0
        self._nan_injection = NanInjection(self.accelerator.process_index)
        self.plan = BatchPlan(self.lengths, settings, self.pad_multiple, self.accelerator.num_processes)
        self.tally = StepTally(device)
        self._found_inf = torch.zeros((), device=device)  # 1 once a micro-batch of this step was non-finite
        self._losses: list[float] = []  # finite losses since the last log record
        self.total = self.plan.total_steps()
        self._prepare(model)
        self._graphed = graphed_step(self.model, self._raw_optimizer, settings, self.accelerator)

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        return self.plan.batches(epoch)

    @property
    def batches_per_epoch(self) -> int:
        return len(self.plan.batches(self.state.epoch))

    def _local_batches(self, epoch: int | None = None) -> int:
        return self.plan.local_batches(self.state.epoch if epoch is None else epoch)

    def _prepare(self, model: Any) -> None:
        from transformers import get_linear_schedule_with_warmup

        s = self.settings
        groups = optimizer_groups(model, s.weight_decay)
        learning_rate = scaled_learning_rate(s, self._epoch_batches(0))
        optimizer: torch.optim.Optimizer
        if s.cuda_graphs and self.accelerator.device.type == "cuda" and self.accelerator.num_processes == 1:
            # a captured step reads its learning rate from a device tensor (``graphs`` module doc)
            from nertool.train.graphs import make_graph_optimizer

            model.to(self.accelerator.device)
            optimizer, self._skips_on_device = make_graph_optimizer(groups, lr=learning_rate), True
        else:
            optimizer, self._skips_on_device = make_optimizer(groups, learning_rate)
        self._raw_optimizer = optimizer
        scheduler = get_linear_schedule_with_warmup(optimizer, int(s.warmup_ratio * self.total), self.total)
        self.model, self.optimizer, self.scheduler = self.accelerator.prepare(model, optimizer, scheduler)

    def _epoch_loader(self, epoch: int, skip: int) -> Any:
        """This epoch's batches (a pure function of seed and epoch), minus the ``skip`` already done."""
        if self.hooks.on_epoch_start is not None:
            self.hooks.on_epoch_start(epoch)
        batches = self._epoch_batches(epoch)
        world = self.accelerator.num_processes
        # Skip whole rounds of batches (one per process) by slicing the list, not with a wrapper:
        # a private generator keeps iterator creation off the global RNG that dropout uses,
        # so a resumed epoch sees exactly the dropout masks of an uninterrupted one.
        generator = torch.Generator().manual_seed(self.settings.seed * 1_000_003 + epoch)
        loader: torch.utils.data.DataLoader[Any] = torch.utils.data.DataLoader(
            self.features,  # type: ignore[arg-type]  # a list (or FeatureArrays) is a map-style dataset
            batch_sampler=batches[skip * world :],
            collate_fn=self.collator,
            generator=generator,
            num_workers=self._workers(),
            pin_memory=self.accelerator.device.type == "cuda",
        )
        return self.accelerator.prepare_data_loader(loader)

    def _workers(self) -> int:
        chosen, accelerator = self.settings.loader_workers, self.accelerator
        return chosen if chosen is not None else loader_workers(accelerator.device, accelerator.num_processes)

    def resume(self) -> bool:
        """Load the latest checkpoint if there is one, after checking it whole; True when it was loaded."""
        state = resume_state(self.accelerator, self.checkpoint_dir, model=self.model)
        if state is not None:
            self.state = state
        return state is not None

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
        """Checkpoint the weights, optimizer, scheduler, RNG and loop state (collective)."""
        save_checkpoint(self.accelerator, self.checkpoint_dir, state=self.state, model=self.model)

    def run(self) -> LoopState:
        self._run_started, self._timed_out = time.perf_counter(), False
        self.reporter.start(self.total, self.state.step)
        cpu = self.accelerator.device.type == "cpu"
        model = self.accelerator.unwrap_model(self.model)
        with stop_on_signals() as stop, tokenizer_threads_off(), cpu_training_kernels(model, enabled=cpu):
            while not self._finished():
                self._run_epoch(stop)
        self._read_tally()
        self.reporter.finish()
        write_weight_fingerprint(self.accelerator.unwrap_model(self.model), self.accelerator.process_index)
        if self.state.best_step < 0 and self.hooks.on_best is not None:
            self.hooks.on_best(self.accelerator.unwrap_model(self.model))
        return self.state

    def _finished(self) -> bool:
        s = self.settings
        patience_out = (
            s.early_stopping_patience is not None
            and self.state.evals_without_gain >= s.early_stopping_patience
        )
        return self.state.step >= self.total or patience_out or self._timed_out

    def _run_epoch(self, stop: threading.Event) -> None:
        self.model.train()
        eval_points = self.eval_schedule(self.state.epoch, self._local_batches())
        started, sentences = time.perf_counter(), 0
        self.tally.reset_tokens()
        for batch in self._epoch_loader(self.state.epoch, self.state.batch_in_epoch):
            self._train_step(batch)
            self.tally.add_tokens(batch["attention_mask"])
            sentences += int(batch["input_ids"].shape[0])  # a shape: known on the host
            self.state.batch_in_epoch += 1
            evaluate = self.state.batch_in_epoch - 1 in eval_points or self.state.step >= self.total
            checks = self._checks_due(evaluate)
            self._maybe_read(checks, sentences, time.perf_counter() - started)
            if evaluate:
                self._evaluate()
            if checks and self._any_rank(stop.is_set()):
                self.save_checkpoint()
                raise Interrupted(
                    f"interrupted; checkpoint saved in {self.checkpoint_dir}; rerun with --resume"
                )
            if self._finished() or (checks and self._out_of_time()):
                return
        self.state.epoch += 1
        self.state.batch_in_epoch = 0

    def _checks_due(self, evaluate: bool) -> bool:
        """Whether this batch reads the tally and votes on stopping: every batch with one process
        (free there), else at log and evaluation points, where every process is at the same batch."""
        logging_point = self.state.batch_in_epoch % self.settings.log_every == 0
        return self.accelerator.num_processes == 1 or logging_point or evaluate

    def _out_of_time(self) -> bool:
        """Past the time limit on any process: all evaluate and checkpoint (once), then stop."""
        limit = self.settings.max_seconds
        if limit is None or not self._any_rank(time_is_up(self._run_started, time.perf_counter(), limit)):
            return False
        if not self.state.history or self.state.history[-1]["step"] != self.state.step:
            self._evaluate()
        self._timed_out = True
        return True

    def _train_step(self, batch: dict[str, Any]) -> None:
        """One micro-batch: a captured step (``train.cuda_graphs``) or the eager one."""
        step = self.state.step
        if self._graphed is not None:
            loss = self._graphed(batch)  # forward, backward, clip, optimizer step, zero_grad
            self.scheduler.step()
            self._end_step(step, loss, ~torch.isfinite(loss))
            return
        with self.accelerator.accumulate(self.model):
            loss = self._nan_injection.apply(self.model(**batch).loss, step)
            self._found_inf = torch.maximum(self._found_inf, (~torch.isfinite(loss.detach())).float())
            self.accelerator.backward(loss)
            skip = self._found_inf
            if self.accelerator.sync_gradients:
                skip = self._agreed(self._found_inf)
                self.accelerator.clip_grad_norm_(self.model.parameters(), self.settings.max_grad_norm)
                self._raw_optimizer.found_inf = skip if self._skips_on_device else None  # type: ignore[attr-defined]
            if self._skips_on_device or not (self.accelerator.sync_gradients and bool(skip)):
                self.optimizer.step()  # the fused kernel leaves the weights as they are when skip is 1
            self.scheduler.step()
            self.optimizer.zero_grad()
        if self.accelerator.sync_gradients:
            self._end_step(step, loss, skip)
            self._found_inf = torch.zeros_like(self._found_inf)

    def _agreed(self, flag: torch.Tensor) -> torch.Tensor:
        """1 on every process when ``flag`` is 1 on any: an all-reduce on the device, no host read."""
        if self.accelerator.num_processes == 1:
            return flag
        return self.accelerator.reduce(flag.clone(), reduction="sum").clamp(max=1.0)

    def _end_step(self, step: int, loss: torch.Tensor, skipped: torch.Tensor) -> None:
        self.state.step += 1
        self.tally.add_step(step, loss, skipped)

    def _maybe_read(self, checks: bool, sentences: int, seconds: float) -> None:
        """Read the tally at a log point (and log), else, with one process, when progress is due."""
        if self.state.batch_in_epoch % self.settings.log_every == 0:
            tokens = self._read_tally()
            self._log(tokens, sentences, seconds)
        elif checks and time.perf_counter() - self._last_read > PROGRESS_EVERY_S:
            self._read_tally()

    def _read_tally(self) -> int:
        """Report the steps since the last read (progress, skipped-step warnings); the epoch's tokens."""
        if not self.tally.pending:
            return 0
        records, tokens = self.tally.read()
        self._last_read = time.perf_counter()
        for record in records:
            if record.skipped:
                self._count_nonfinite(record.step)
            else:
                self._losses.append(record.loss)
                self.reporter.step(record.step + 1, record.loss)
        return tokens

    def _count_nonfinite(self, step: int) -> None:
        self.state.nonfinite_steps += 1
        self.reporter.log({"step": step, "warning": "non-finite loss; step skipped"})
        if self.state.nonfinite_steps > self.settings.max_nonfinite_steps:
            raise TrainingError(
                f"{self.state.nonfinite_steps} steps had a non-finite loss (limit train.max_nonfinite_steps="
                f"{self.settings.max_nonfinite_steps}); lower the learning rate or check the data"
            )

    def _log(self, tokens: int, sentences: int, seconds: float) -> None:
        """The log record: mean finite loss since the last record, learning rate, throughput."""
        loss = sum(self._losses) / len(self._losses) if self._losses else float("nan")
        self._losses = []
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
        self._read_tally()  # skipped steps are counted (and the limit checked) before a checkpoint
        if self.hooks.score is None:
            self.save_checkpoint()
            return
        unwrapped = self.accelerator.unwrap_model(self.model)
        value, details = self.hooks.score(unwrapped)
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
            if self.hooks.on_best is not None:
                self.hooks.on_best(unwrapped)
        else:
            self.state.evals_without_gain += 1
        self.save_checkpoint()
