"""The ``predict`` job: check the inputs and the output, load the tagger, stream the files through it.

The checks come first so that a missing, repeated or overwritten input fails in a second, before
the model is read; ``progress`` starts only once the model is loaded (its bar counts tagged units).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from nertool.files import refuse_inputs_as_output
from nertool.model.onnx_backend import Backend
from nertool.predict import tagger as tagging
from nertool.predict.readers import expand_inputs
from nertool.predict.tagger import PredictSummary, Tagger
from nertool.threads import chosen_threads

Progress = Callable[[], AbstractContextManager[Callable[[int], None]]]


def _no_progress() -> AbstractContextManager[Any]:
    return nullcontext(None)


def predict_files(
    model: str,
    inputs: Sequence[str],
    output: str | None,
    *,
    device: str | None = None,
    quantize: bool = False,
    max_tokens: int | None = None,
    batch_size: int | None = None,
    backend: Backend = "torch",
    threads: int | None = None,
    input_format: str = "auto",
    output_format: str = "jsonl",
    text_mode: str = "line",
    encoding: str = "utf-8",
    progress: Progress | None = None,
) -> PredictSummary:
    """Tag every unit of ``inputs`` with the model of a run (or model, or ONNX) folder into ``output``.

    ``max_tokens`` and ``batch_size`` default by device (``tagger.CPU_LIMITS``, ``CUDA_LIMITS``);
    ``threads`` by nertool's policy (``nertool.threads``), given to whichever backend computes.
    """
    expand_inputs(inputs)  # a missing or repeated input fails before the model loads
    refuse_inputs_as_output(inputs, output)  # before the model loads
    count = chosen_threads(threads)
    tagger = Tagger.load(model, device, quantize, max_tokens, batch_size, backend=backend, threads=count)
    with (progress or _no_progress)() as advance:
        return tagging.predict_files(
            tagger,
            inputs,
            output,
            input_format=input_format,
            output_format=output_format,
            text_mode=text_mode,
            encoding=encoding,
            on_chunk=advance,
        )
