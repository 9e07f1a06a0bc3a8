"""Training in bf16 autocast on CPU: the Trainer's ``bf16=True`` against the loop's
``train.mixed_precision = "bf16"``, with the loop in fp32 beside them.

On a CPU with bf16 matrix instructions (AVX-512 BF16, AMX) bf16 is the fastest configuration
of both sides, so the comparison at fp32 (``bench.training``) is repeated here in it: the same
weights, data, steps and alternation. The third side, the loop in fp32 in every repeat, gives
what bf16 is worth on this machine and its dev F1 beside fp32's. ``settings.native_bf16`` says
whether the CPU has the instructions; without them the loop runs fp32 (``precision_run``) and
the record says so rather than timing an emulation.
"""

from __future__ import annotations

from typing import Any

from bench import training
from bench.harness import Options

SCENARIO = "training_bf16"


def run(options: Options) -> dict[str, Any]:
    from nertool.train.runtime import cpu_has_native_bf16

    record = training.compare(options, SCENARIO, "bf16", fp32_reference=True)
    record["settings"]["native_bf16"] = cpu_has_native_bf16()
    return record
