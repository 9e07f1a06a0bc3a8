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
from typing import Any, Literal

import numpy as np

from nertool.errors import ModelError, first_line
from nertool.labels import LabelMap
from nertool.model.align import STRATEGY_ATTRIBUTE
from nertool.model.batching import Inputs
from nertool.model.build import check_local_folder, load_tokenizer, read_folder_json

Backend = Literal["torch", "onnx", "auto"]  # ``predict --backend``; auto: ONNX where an export exists
ExportFormat = Literal["onnx"]  # ``export --format``
ONNX_FILE = "model.onnx"
MANIFEST = "onnx_export.json"
RUST_TOKENIZER = "onnx_tokenizer.json"  # written only where tokenizer.json alone would tokenize otherwise
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
    """``Forward`` over an ONNX Runtime session: a padded int64 batch in, float32 logits out."""

    session: Any

    def __call__(self, batch: Inputs) -> np.ndarray:
        feeds = {name: batch[name] for name in INPUTS}  # int64 (batch, seq)
        (logits,) = self.session.run([OUTPUT], feeds)
        return np.asarray(logits, dtype=np.float32)  # (batch, seq, num_labels)


@dataclass(frozen=True)
class ExportConfig:
    """What the ONNX path reads from an export's ``config.json``, checked: the attributes the
    shared inference code asks a model config for (window length, label strategy, labels)."""

    id2label: dict[int, str]
    max_position_embeddings: int
    vocab_size: int
    nertool_label_strategy: str = "first"


def read_export_config(file: Path) -> ExportConfig:
    """``config.json`` as data (no transformers class is built from it), or one line that names it."""
    data = read_folder_json(file)
    id2label, positions, vocab = (
        data.get("id2label"),
        data.get("max_position_embeddings"),
        data.get("vocab_size"),
    )
    if not (isinstance(id2label, dict) and id2label and all(isinstance(v, str) for v in id2label.values())):
        raise ModelError(f"{file}: no id2label of label names; export the run again")
    if not all(str(k).isdigit() for k in id2label) or sorted(int(k) for k in id2label) != list(
        range(len(id2label))
    ):
        raise ModelError(
            f"{file}: id2label keys are not the numbers 0..{len(id2label) - 1}; export the run again"
        )
    for name, value in (("max_position_embeddings", positions), ("vocab_size", vocab)):
        if not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            raise ModelError(f"{file}: {name} is {value!r}, not a positive integer; export the run again")
    strategy = data.get(STRATEGY_ATTRIBUTE, "first")
    labels = {int(k): v for k, v in id2label.items()}
    return ExportConfig(labels, positions, vocab, strategy if isinstance(strategy, str) else "first")  # type: ignore[arg-type]


@dataclass(frozen=True)
class RustTokenizer:
    """The exported model's tokenizer as the Rust ``tokenizers`` object plus its special ids: all the
    shared encoder uses of a transformers fast tokenizer (``backend_tokenizer``, ``is_fast``),
    loaded without importing transformers. ``export`` records it only after checking that it is
    the tokenizer transformers loads from the same folder."""

    backend_tokenizer: Any
    bos_token_id: int
    eos_token_id: int
    pad_token_id: int
    unk_token_id: int | None
    model_max_length: int
    size: int
    is_fast: bool = True

    def convert_tokens_to_ids(self, token: str) -> int | None:
        piece = self.backend_tokenizer.token_to_id(token)
        return self.unk_token_id if piece is None else int(piece)

    def __len__(self) -> int:
        return self.size


TOKENIZER_IDS = ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id", "model_max_length", "size")


def rust_tokenizer_record(tokenizer: Any, folder: Path) -> dict[str, Any]:
    """What ``load_rust_tokenizer`` needs, for the manifest: the file holding exactly the backend of
    ``tokenizer`` (``tokenizer.json`` when it already does, else ``RUST_TOKENIZER`` written now)."""
    from tokenizers import Tokenizer

    backend, on_disk = tokenizer.backend_tokenizer, folder / "tokenizer.json"
    file = "tokenizer.json"
    if not (on_disk.is_file() and Tokenizer.from_file(str(on_disk)).to_str() == backend.to_str()):
        file = RUST_TOKENIZER
        backend.save(str(folder / file))
    values = [getattr(tokenizer, name, None) for name in TOKENIZER_IDS[:-1]] + [len(tokenizer)]
    return {"file": file, **dict(zip(TOKENIZER_IDS, values, strict=True))}


def load_rust_tokenizer(folder: Path, record: Any) -> RustTokenizer | None:
    """The manifest's tokenizer, or None when the manifest has none (an export from before it)."""
    if not isinstance(record, dict):
        return None
    ids = {name: record.get(name) for name in TOKENIZER_IDS}
    required = [name for name in TOKENIZER_IDS if name != "unk_token_id"]
    file = folder / str(record.get("file", ""))
    if Path(str(record.get("file", ""))).name != record.get("file") or not all(
        isinstance(ids[name], int) for name in required
    ):
        raise ModelError(f"{folder / MANIFEST}: its tokenizer entry is damaged; export the run again")
    from tokenizers import Tokenizer

    try:
        backend = Tokenizer.from_file(str(file))
    except Exception as error:  # the Rust side raises plain ``Exception`` for unreadable or invalid files
        raise ModelError(
            f"{file}: not a loadable tokenizer ({first_line(error)}); export the run again"
        ) from None
    return RustTokenizer(backend, **ids)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Exported:
    """An ONNX folder loaded: the session's forward pass, the model config, tokenizer and labels."""

    folder: Path
    forward: OnnxForward
    config: ExportConfig
    tokenizer: Any
    labels: LabelMap


def load_exported(folder: Path, threads: int, quantized: bool = False) -> Exported:
    """An ONNX folder as a tagger needs it; its config and tokenizer pass the same checks as a torch
    model's (no folder code is ever run), and ``quantized`` must find an int8 export.

    Exports record their tokenizer in the manifest, so nothing here imports torch or transformers
    (about 2.5 s of a ``predict`` process's start); an older export's tokenizer loads through
    transformers as before.
    """
    check_local_folder(folder, trust_remote_code=False, built_by_transformers=False)
    manifest = read_folder_json(folder / MANIFEST) if (folder / MANIFEST).is_file() else {}
    if quantized and manifest.get("quantized") is False:
        raise ModelError(
            f"{folder}: a full-precision ONNX export, and --quantize asks for int8; "
            f"give the int8 export (nertool export RUN --format onnx --quantize) or drop --quantize"
        )
    config = read_export_config(folder / "config.json")
    tokenizer = load_rust_tokenizer(folder, manifest.get("tokenizer")) or load_tokenizer(str(folder))
    if len(tokenizer) > config.vocab_size:
        raise ModelError(
            f"{folder}: the tokenizer has {len(tokenizer)} tokens but the model only {config.vocab_size}; "
            "the files come from two models, export the run again"
        )
    forward = OnnxForward(session(folder / ONNX_FILE, threads))
    return Exported(folder, forward, config, tokenizer, LabelMap.from_id2label(config.id2label))
