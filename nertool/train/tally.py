"""What the loop learns from each step, kept on the device and read in one transfer.

Reading a loss (``float(loss)``), a token count or a finiteness flag on the host waits for the
device to finish every queued kernel: four such reads per step cost a GPU step about as much as
its optimizer. ``StepTally`` keeps each optimizer step's loss and skip flag, and the epoch's
real-token count, as device tensors; ``read`` moves all of them to the host at once, at log
time, at an evaluation, or (one process) when the progress bar is due. On a CPU a read is free.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class StepRecord:
    """One optimizer step as read back: its number, loss and whether its update was skipped."""

    step: int
    loss: float
    skipped: bool


@dataclass
class StepTally:
    """Device-side losses, skip flags and token counts since the last ``read``."""

    device: torch.device
    steps: list[int] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)  # 0-d losses
    flags: list[torch.Tensor] = field(default_factory=list)
    tokens: torch.Tensor | None = None

    def add_step(self, step: int, loss: torch.Tensor, skipped: torch.Tensor) -> None:
        self.steps.append(step)
        self.values.append(loss.detach().float())
        self.flags.append(skipped.float())

    def add_tokens(self, attention_mask: torch.Tensor) -> None:
        counted = attention_mask.sum()
        self.tokens = counted if self.tokens is None else self.tokens + counted

    @property
    def pending(self) -> int:
        return len(self.steps)

    def read(self) -> tuple[list[StepRecord], int]:
        """(the steps added since the last read, real tokens added since the last ``reset_tokens``)."""
        tokens = self.tokens if self.tokens is not None else torch.zeros((), device=self.device)
        numbers = torch.stack([*self.values, *self.flags, tokens.float()]).tolist()  # one transfer
        n = len(self.steps)
        records = [
            StepRecord(step, loss, flag > 0)
            for step, loss, flag in zip(self.steps, numbers[:n], numbers[n : 2 * n], strict=True)
        ]
        self.steps, self.values, self.flags = [], [], []
        return records, int(numbers[-1])

    def reset_tokens(self) -> None:
        self.tokens = None
