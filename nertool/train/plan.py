"""Which batches a run trains on: sentence batches or token budgets, per epoch, and how many steps.

The plan is a pure function of (lengths, settings, seed, epoch), the same on every process, so a
resumed run skips exactly the batches it already did.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from nertool.model.batching import length_grouped_batches, token_budget_training_batches
from nertool.train.settings import LoopSettings, total_steps


class BatchPlan:
    """The batches of feature indices of each epoch (the current epoch's kept) and the run's steps."""

    def __init__(self, lengths: Sequence[int], settings: LoopSettings, pad_multiple: int, processes: int):
        self.lengths, self.settings = lengths, settings
        self.pad_multiple, self.processes = pad_multiple, processes
        self._cached: tuple[int, list[list[int]]] | None = None

    def batches(self, epoch: int) -> list[list[int]]:
        """Every process's batches of ``epoch``: ``train.max_tokens_per_batch`` padded positions
        each when set, else ``batch_size`` sentences (length-grouped unless turned off)."""
        if self._cached is None or self._cached[0] != epoch:
            s = self.settings
            if s.max_tokens_per_batch is not None:
                plan = token_budget_training_batches(
                    self.lengths, s.max_tokens_per_batch, s.seed, epoch=epoch, multiple=self.pad_multiple
                )
            else:
                plan = length_grouped_batches(
                    self.lengths,
                    s.batch_size,
                    s.seed,
                    epoch=epoch,
                    group=s.group_by_length,
                    pool=s.length_pool,
                )
            self._cached = (epoch, plan)
        return self._cached[1]

    def local_batches(self, epoch: int) -> int:
        """Batches one process trains on in ``epoch``."""
        return math.ceil(len(self.batches(epoch)) / self.processes)

    def total_steps(self) -> int:
        """Optimizer steps of the run; token budgets count each epoch's own batches (they vary)."""
        s = self.settings
        if s.max_tokens_per_batch is None:
            return total_steps(self.local_batches(0), s)
        whole, part = int(s.epochs), s.epochs - int(s.epochs)
        batches = sum(self.local_batches(e) for e in range(whole))
        batches += math.ceil(part * self.local_batches(whole)) if part else 0
        steps = math.ceil(batches / s.gradient_accumulation_steps)
        return min(steps, s.max_steps) if s.max_steps else steps
