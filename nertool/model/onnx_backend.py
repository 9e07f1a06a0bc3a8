"""The ONNX Runtime side of the backend seam: find an exported model, open a session, run a batch.

An ONNX folder (written by ``nertool export RUN --format onnx``) holds ``model.onnx`` beside the
model's ``config.json`` (labels, positions) and tokenizer files, plus ``onnx_export.json`` (how it
was exported and checked). ``nertool predict RUN --backend onnx`` finds it at ``RUN/onnx`` (or
``RUN/onnx-int8`` with ``--quantize``), or takes such a folder itself. onnxruntime is an optional
extra (``pip install 'nertool[onnx]'``); without it the ONNX paths fail with one line that says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from nertool.errors import ModelError, first_line
from nertool.labels import LabelMap
from nertool.model.build import check_local_folder, load_errors, load_tokenizer, read_folder_json

if TYPE_CHECKING:
    import torch

Backend = Literal["torch", "onnx", "auto"]  # ``predict --backend``; auto: ONNX where an export exists
ExportFormat = Literal["onnx"]  # ``export --format``
ONNX_FILE = "model.onnx"
MANIFEST = "onnx_export.json"
FOLDER, QUANTIZED_FOLDER = "onnx", "onnx-int8"
INPUTS = ("input_ids", "attention_mask")
OUTPUT = "logits"
INSTALL = "pip install 'nertool[onnx]'"


def require(module: str, purpose: str) -> Any:
    """Import ``module`` (``onnxruntime``, ``onnx``, ``onnxscript``) or say in one line how to get it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ModelError(f"{purpose} needs the {module} package, which is not installed; {INSTALL}") from None


def export_folder(root: Path, quantized: bool) -> Path:
    """Where ``export`` writes by default, and where ``predict --backend onnx`` looks: inside ``root``."""
    return root / (QUANTIZED_FOLDER if quantized else FOLDER)


def find_export(path: str | Path, quantized: bool) -> Path | None:
    """The ONNX folder for ``path``: the folder itself when it holds ``model.onnx``, else its export."""
    given = Path(path)
    if (given / ONNX_FILE).is_file():
        return given
    default = export_folder(given, quantized)
    return default if (default / ONNX_FILE).is_file() else None


def session(file: Path, threads: int) -> Any:
    """An ONNX Runtime CPU session: all graph optimisations, ``threads`` intra-op threads, one inter-op."""
    ort = require("onnxruntime", "the ONNX backend")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its optimiser notes are not the user's business
    try:
        return ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own (non-exported) exception types
        reason = first_line(error)
        raise ModelError(f"{file}: not a loadable ONNX model ({reason}); export the run again") from None


@dataclass(frozen=True)
class OnnxForward:
    """``Forward`` over an ONNX Runtime session: the collated torch batch in, float logits out."""

    session: Any

    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        import torch

        feeds = {name: batch[name].numpy() for name in INPUTS}  # int64 (batch, seq)
        (logits,) = self.session.run([OUTPUT], feeds)
        return torch.from_numpy(logits).float()  # (batch, seq, num_labels)


@dataclass(frozen=True)
class Exported:
    """An ONNX folder loaded: the session's forward pass, the model config, tokenizer and labels."""

    folder: Path
    forward: OnnxForward
    config: Any
    tokenizer: Any
    labels: LabelMap


def load_exported(folder: Path, threads: int, quantized: bool = False) -> Exported:
    """An ONNX folder as a tagger needs it; its config and tokenizer pass the same checks as a torch
    model's (no folder code is ever run), and ``quantized`` must find an int8 export."""
    from transformers import AutoConfig

    check_local_folder(folder, trust_remote_code=False)
    manifest = read_folder_json(folder / MANIFEST) if (folder / MANIFEST).is_file() else {}
    if quantized and manifest.get("quantized") is False:
        raise ModelError(
            f"{folder}: a full-precision ONNX export, and --quantize asks for int8; "
            f"give the int8 export (nertool export RUN --format onnx --quantize) or drop --quantize"
        )
    try:
        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=False)
    except load_errors() as error:
        raise ModelError(
            f"{folder / 'config.json'}: not a model config ({first_line(error)}); export the run again"
        ) from None
    tokenizer = load_tokenizer(str(folder))
    if len(tokenizer) > config.vocab_size:
        raise ModelError(
            f"{folder}: the tokenizer has {len(tokenizer)} tokens but the model only {config.vocab_size}; "
            "the files come from two models, export the run again"
        )
    forward = OnnxForward(session(folder / ONNX_FILE, threads))
    return Exported(folder, forward, config, tokenizer, LabelMap.from_id2label(config.id2label))
