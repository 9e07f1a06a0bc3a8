"""``train.mixed_precision`` on a CPU: bf16 autocast where the CPU has bf16 matrix instructions,
fp32 with a warning elsewhere (never the setting silently dropped), and runs of different
precisions one after the other in one process (Accelerate keeps one process-wide state)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from test_loop_lean import LossReporter, labelled_features
from tiny_models import tiny_token_classifier

from nertool.train import runtime
from nertool.train.loop import Loop, LoopSettings

native_bf16 = pytest.mark.skipif(
    not runtime.cpu_has_native_bf16(), reason="this CPU has no bf16 instructions"
)


def test_no_mixed_precision_stays_fp32_without_a_word(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="nertool"):
        assert runtime.cpu_precision("no", native_bf16=True) == "no"
        assert runtime.cpu_precision("no", native_bf16=False) == "no"
    assert not caplog.records


def test_bf16_runs_where_the_cpu_has_the_instructions(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="nertool"):
        assert runtime.cpu_precision("bf16", native_bf16=True) == "bf16"
    assert not caplog.records


@pytest.mark.parametrize(("requested", "native", "why"), [("bf16", False, "no bf16"), ("fp16", True, "GPUs")])
def test_a_precision_the_cpu_cannot_speed_up_falls_back_to_fp32_and_says_so(
    requested: str, native: bool, why: str, caplog
) -> None:
    with caplog.at_level(logging.WARNING, logger="nertool"):
        assert runtime.cpu_precision(requested, native_bf16=native) == "no"
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and requested in messages[0] and why in messages[0] and "fp32" in messages[0]


class DtypeSpy:
    """Records the dtype of every ``Linear`` output while the model trains."""

    def __init__(self, model: torch.nn.Module):
        self.dtypes: set[torch.dtype] = set()
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                module.register_forward_hook(self.hook)

    def hook(self, module, inputs, output) -> None:
        if module.training:
            self.dtypes.add(output.dtype)


def train(tmp_path: Path, precision: str) -> tuple[str, Loop, DtypeSpy, list[float]]:
    """One run; its precision as Accelerate reports it right after the run (the state is
    process-wide, so a later run's accelerator changes what an earlier one reports)."""
    settings = LoopSettings(epochs=1, batch_size=6, learning_rate=3e-3, seed=4, mixed_precision=precision)
    model = tiny_token_classifier(vocab_size=60, hidden_size=16, num_labels=3)
    spy, reporter = DtypeSpy(model), LossReporter()
    loop = Loop(model, labelled_features(24), settings, tmp_path, reporter=reporter)
    loop.run()
    return str(loop.accelerator.mixed_precision), loop, spy, reporter.losses


@native_bf16
@pytest.mark.slow  # trains three tiny models
def test_fp32_bf16_fp32_in_one_process_each_run_as_asked(tmp_path: Path) -> None:
    """The second and third accelerators would be refused by Accelerate without
    ``forget_other_precision``; each run's linear layers compute in its own precision, and the
    weights stay fp32 (autocast, not a bf16 model)."""
    first, _, first_spy, first_losses = train(tmp_path / "a", "no")
    second, bf16_loop, second_spy, second_losses = train(tmp_path / "b", "bf16")
    third, _, third_spy, third_losses = train(tmp_path / "c", "no")
    assert (first, second, third) == ("no", "bf16", "no")
    assert first_spy.dtypes == third_spy.dtypes == {torch.float32}
    assert second_spy.dtypes == {torch.bfloat16}
    weights = bf16_loop.accelerator.unwrap_model(bf16_loop.model).parameters()
    assert all(p.dtype == torch.float32 for p in weights)
    assert first_losses == third_losses  # the reset leaves nothing behind that changes an fp32 run
    assert len(second_losses) == len(first_losses) and all(torch.isfinite(torch.tensor(second_losses)))
    assert second_losses != first_losses  # bf16 rounding: the runs are different computations


def test_forgetting_the_precision_keeps_the_process_group() -> None:
    from accelerate.state import AcceleratorState, PartialState

    runtime.make_accelerator(LoopSettings(epochs=1, batch_size=1, learning_rate=0.1))
    partial = dict(PartialState._shared_state)
    runtime.forget_other_precision("bf16")
    assert not AcceleratorState._shared_state and PartialState._shared_state == partial
    runtime.forget_other_precision("bf16")  # nothing to forget: still no error
