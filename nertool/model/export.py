"""``nertool export``: a trained token classifier as an ONNX folder that ``predict --backend onnx`` runs.

The graph is traced with torch's dynamo exporter (``torch.onnx.export(..., dynamo=True)``, the
default since torch 2.9; the TorchScript exporter is deprecated) at opset ``OPSET``, with batch and
sequence axes dynamic, so one file serves every batch the length-sorted batcher builds. Before the
folder is written, the exported graph and the torch model tag a few fixed sentences (padded, and
one alone, so both dynamic axes are exercised): logits must agree to ``TOLERANCE`` at every real
position, or the export is refused. ``--quantize`` then applies ONNX Runtime's dynamic int8
quantisation (weights int8, activations quantised per batch), the counterpart of ``predict
--quantize`` on torch; its agreement with torch's tags is recorded, not enforced (int8 moves logits).

The folder is built under a temporary name and renamed into place when complete, so an
interrupted export leaves no half folder; an existing one is replaced only with ``overwrite``,
and only when it is an ONNX export (never someone's other files, never the model being exported).
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nertool import __version__
from nertool.errors import DataError, ModelError, first_line
from nertool.files import output_folder, replace_folder, write_json
from nertool.model.batching import Inputs, padded_inputs
from nertool.model.build import load_tokenizer, load_trained, resolve_model_dir
from nertool.model.features import encode, flatten
from nertool.model.inference import model_max_length, torch_forward
from nertool.model.onnx_backend import (
    INPUTS,
    MANIFEST,
    ONNX_FILE,
    OUTPUT,
    OnnxForward,
    export_folder,
    load_rust_tokenizer,
    require,
    rust_tokenizer_record,
    session,
)

OPSET = 20
TOLERANCE = 1e-3
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack")
CHECK_SENTENCES = (
    ("Angela", "Merkel", "besuchte", "am", "Montag", "die", "Deutsche", "Bank", "in", "Frankfurt", "."),
    ("Paris",),
    ("Le", "président", "Emmanuel", "Macron", "a", "parlé", "à", "Bruxelles", "."),
    ("The", "United", "Nations", "met", "in", "New", "York", "on", "Tuesday", "."),
    ("北京大学", "und", "Zürich", "👩🏽‍💻", "Ⅻ"),
    ("Johann", "Sebastian", "Bach", "wurde", "1685", "in", "Eisenach", "geboren", "und", "starb", "."),
)


@dataclass(frozen=True)
class ExportResult:
    """What was exported where, and how well the graph matches the torch model (``onnx_export.json``)."""

    source: str
    output: str
    format: str
    quantized: bool
    opset: int
    check_sentences: int
    max_abs_logit_diff: float
    tolerance: float
    int8_tag_agreement: float | None
    tokenizer: dict[str, Any] | None = None  # the Rust tokenizer predict loads (``rust_tokenizer_record``)
    nertool_version: str = __version__

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def export_onnx(
    run: str | Path, output: str | Path | None = None, *, quantize: bool = False, overwrite: bool = False
) -> ExportResult:
    """Export the model of a run (or model) folder to an ONNX folder; default ``RUN/onnx[-int8]``."""
    require("onnx", "nertool export --format onnx")
    require("onnxscript", "nertool export --format onnx")
    require("onnxruntime", "nertool export --format onnx")
    model, tokenizer, _ = load_trained(run)  # refuses a missing folder, or one that would run its code
    source = Path(resolve_model_dir(str(run)))
    target = Path(output) if output is not None else export_folder(Path(run), quantize)
    check_target(target, source, overwrite)
    model.to("cpu").float().eval()
    batches = check_batches(model, tokenizer)
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        result = _build(model, source, target, partial, batches, quantize)
        write_json(partial / MANIFEST, result.to_json())
        replace_folder(partial, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return result


def _build(
    model: Any,
    source: Path,
    target: Path,
    folder: Path,
    batches: Sequence[Inputs],
    quantize: bool,
) -> ExportResult:
    """Trace, verify, (quantise) and copy the model's other files into ``folder``."""
    graph = folder / ONNX_FILE
    trace(model, batches[0], graph)
    expected = [torch_forward(model)(batch) for batch in batches]
    diff = max_difference(OnnxForward(session(graph, torch.get_num_threads())), batches, expected)
    if not diff <= TOLERANCE:
        raise ModelError(
            f"{source}: the ONNX graph's logits differ from the torch model's by {diff:.2g} "
            f"(more than {TOLERANCE:g}); this model does not export faithfully, keep --backend torch"
        )
    agreement = None
    if quantize:
        quantize_int8(graph)
        agreement = tag_agreement(OnnxForward(session(graph, torch.get_num_threads())), batches, expected)
    copy_model_files(source, folder)
    return ExportResult(
        source=str(source),
        output=str(target),
        format="onnx",
        quantized=quantize,
        opset=OPSET,
        check_sentences=len(CHECK_SENTENCES),
        max_abs_logit_diff=float(diff),
        tolerance=TOLERANCE,
        int8_tag_agreement=agreement,
        tokenizer=checked_rust_tokenizer(folder, model),
    )


def check_target(target: Path, source: Path, overwrite: bool) -> None:
    """Refuse an output that exists (unless ``overwrite`` and it is an ONNX export) or holds the model."""
    if target.resolve() == source.resolve() or source.resolve().is_relative_to(target.resolve()):
        raise DataError(f"would replace the model folder it exports ({source}); choose another -o", target)
    if target.exists() and not target.is_dir():
        raise DataError("is a file, not a folder; give a folder for the ONNX export", target)
    if target.exists() and not overwrite:
        raise DataError("already exists; pass --overwrite to replace it, or choose another -o", target)
    if target.exists() and not (target / MANIFEST).is_file():
        raise DataError("is not an ONNX export (no onnx_export.json); refused, choose another -o", target)
    output_folder(target.parent, create=False)


def checked_rust_tokenizer(folder: Path, model: Any) -> dict[str, Any] | None:
    """The manifest's tokenizer entry, kept only if the Rust tokenizer it names encodes the check
    sentences exactly as the transformers tokenizer of the exported folder does (else None:
    predict then loads the tokenizer through transformers)."""
    loaded = load_tokenizer(str(folder))
    record = rust_tokenizer_record(loaded, folder)
    rust = load_rust_tokenizer(folder, record)

    def inputs(tokenizer: Any) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        grouped = encode(list(CHECK_SENTENCES), tokenizer, max_length=model_max_length(model, tokenizer))
        return [(f.input_ids, f.word_ids) for f in flatten(grouped)]

    return record if rust is not None and inputs(rust) == inputs(loaded) else None


def check_batches(model: Any, tokenizer: Any) -> list[Inputs]:
    """The fixed sentences as the predict path feeds them: first the example the graph is traced
    with (two padded rows), then all of them padded together, then one alone (batch 1)."""
    grouped = encode(list(CHECK_SENTENCES), tokenizer, max_length=model_max_length(model, tokenizer))
    features = flatten(grouped)
    pad = tokenizer.pad_token_id
    return [padded_inputs(features[:2], pad), padded_inputs(features, pad), padded_inputs(features[1:2], pad)]


def trace(model: Any, example: Inputs, file: Path) -> None:
    """Write the graph of ``model`` (inputs ``input_ids``, ``attention_mask``; output ``logits``)."""
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    axes = {name: {0: batch, 1: sequence} for name in INPUTS}
    try:
        with quiet():
            program = torch.onnx.export(
                _LogitsOnly(model),
                tuple(torch.from_numpy(example[name]) for name in INPUTS),
                input_names=list(INPUTS),
                output_names=[OUTPUT],
                opset_version=OPSET,
                dynamo=True,
                dynamic_shapes=axes,
                external_data=False,
                verbose=False,
            )
            assert program is not None  # the dynamo exporter returns the program it built
            program.save(str(file), external_data=False)
    except ModelError:
        raise
    except Exception as error:  # the exporter raises many types, none of them the user's to debug
        raise ModelError(f"cannot export this model to ONNX: {first_line(error)}") from None


class _LogitsOnly(torch.nn.Module):
    """The classifier with positional inputs and the logits tensor as its only output."""

    def __init__(self, model: Any):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The exporter's and the quantiser's progress notes and advice off while they run."""
    loggers = [logging.getLogger(name) for name in ("", "torch.onnx")]  # the quantiser logs on the root
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _real(batch: Inputs) -> np.ndarray:
    return batch["attention_mask"].astype(bool)  # (batch, seq): real positions, padding left out


def max_difference(forward: OnnxForward, batches: Sequence[Inputs], expected: Sequence[np.ndarray]) -> float:
    """Largest absolute logit difference at real positions over ``batches``."""
    diffs = [np.abs(forward(b) - e)[_real(b)].max() for b, e in zip(batches, expected, strict=True)]
    return float(max(diffs))


def tag_agreement(forward: OnnxForward, batches: Sequence[Inputs], expected: Sequence[np.ndarray]) -> float:
    """Share of real positions where the graph's best label is the torch model's."""
    same = total = 0
    for batch, logits in zip(batches, expected, strict=True):
        mask = _real(batch)
        same += int((forward(batch).argmax(-1) == logits.argmax(-1))[mask].sum())
        total += int(mask.sum())
    return same / total


def quantize_int8(graph: Path) -> None:
    """Dynamic int8 quantisation of ``graph`` in place (weights int8; activations per batch)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    full = graph.with_name("fp32.onnx")
    graph.rename(full)
    try:
        with quiet():
            quantize_dynamic(str(full), str(graph), weight_type=QuantType.QInt8)
    except Exception as error:  # onnxruntime's quantiser raises assorted types
        raise ModelError(f"cannot quantise the ONNX graph: {first_line(error)}") from None
    finally:
        full.unlink(missing_ok=True)


def copy_model_files(source: Path, folder: Path) -> None:
    """Config, tokenizer, labels and card beside the graph; torch weights and subfolders stay behind."""
    for file in sorted(source.iterdir()):
        if file.is_file() and file.suffix not in WEIGHT_SUFFIXES and not file.name.endswith(".index.json"):
            shutil.copyfile(file, folder / file.name)
