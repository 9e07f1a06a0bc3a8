"""Tokenizers and models: Hub ids, local folders, run folders and ``scratch:<size>`` encoders.

``scratch:<size>`` is how the toolkit runs with no network: a randomly initialised XLM-R of a
named size whose SentencePiece-style Unigram tokenizer is trained on the run's own text (ids
0..4 = ``<s> <pad> </s> <unk> <mask>``, exactly XLM-R's), saved beside the model so the run
folder is self-contained and loads with ``transformers.pipeline``. Weights are read and written
as safetensors only, and remote code runs only when a recipe asks for it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nertool.errors import ModelError, first_line
from nertool.labels import LabelMap
from nertool.model.limits import declare_max_length, saved_max_length

log = logging.getLogger("nertool")

SCRATCH_PREFIX = "scratch:"
SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
REMOTE_CODE_KEY = "model.trust_remote_code = true"
# One of these makes a folder's tokenizer real; without any, transformers 5 quietly builds a
# tokenizer that knows only the special tokens and every word becomes <unk>.
VOCAB_FILES = (
    "tokenizer.json",
    "sentencepiece.bpe.model",
    "tokenizer.model",
    "spiece.model",
    "spm.model",
    "vocab.json",
    "vocab.txt",
)


@dataclass(frozen=True)
class ScratchSize:
    """Shape of a from-scratch XLM-R encoder."""

    layers: int
    hidden: int
    heads: int
    intermediate: int
    vocab: int


SCRATCH_SIZES = {
    "tiny": ScratchSize(2, 128, 2, 256, 4000),
    "small": ScratchSize(4, 256, 4, 1024, 8000),
    "medium": ScratchSize(6, 512, 8, 2048, 32000),
    "base": ScratchSize(12, 768, 12, 3072, 64000),
}


def is_scratch(name: str) -> bool:
    return name.startswith(SCRATCH_PREFIX)


def scratch_size(name: str) -> ScratchSize:
    size = name[len(SCRATCH_PREFIX) :]
    if size not in SCRATCH_SIZES:
        raise ModelError(f"unknown scratch size {size!r}; choose one of {', '.join(SCRATCH_SIZES)}")
    return SCRATCH_SIZES[size]


def resolve_model_dir(name: str) -> str:
    """A run folder means its ``model/``; anything else is passed on (hub id or folder)."""
    path = Path(name)
    if (path / "model" / "config.json").is_file():
        return str(path / "model")
    if path.exists() and not any((path / name).is_file() for name in ("config.json", "tokenizer.json")):
        raise ModelError(
            f"{path}: no config.json here or in {path}/model; give a run folder or a model folder"
        )
    if not path.exists() and (name.startswith((".", "/")) or name.count("/") > 1):
        raise ModelError(f"{path}: model folder not found; check the path (or give a hub id)")
    return name


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Any:
    """A Unigram tokenizer trained on ``texts``, wrapped as XLM-R's fast tokenizer."""
    from tokenizers import SentencePieceUnigramTokenizer
    from transformers import XLMRobertaTokenizerFast  # type: ignore[attr-defined]  # lazy alias in 5.x

    unigram = SentencePieceUnigramTokenizer()
    unigram.train_from_iterator(
        texts, vocab_size=vocab_size, show_progress=False, special_tokens=SPECIAL_TOKENS, unk_token="<unk>"
    )
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "tokenizer.json"
        unigram.save(str(file))
        built = XLMRobertaTokenizerFast(tokenizer_file=str(file))
        # Round-trip through save_pretrained: what a run trains with is then exactly what its
        # saved model folder loads (transformers 5 rebuilds parts of the pipeline on load).
        built.save_pretrained(Path(tmp) / "saved")
        return load_tokenizer(str(Path(tmp) / "saved"))


def scratch_config(size: ScratchSize, vocab_size: int, max_length: int) -> Any:
    """An XLM-R config of ``size``; positions cover ``max_length`` plus XLM-R's offset of 2."""
    from transformers import XLMRobertaConfig

    return XLMRobertaConfig(
        vocab_size=vocab_size,
        hidden_size=size.hidden,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        intermediate_size=size.intermediate,
        max_position_embeddings=max(max_length, 512) + 2,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )


def load_errors() -> tuple[type[Exception], ...]:
    """What the loader seam turns into one-line ``ModelError``s, and nothing broader.

    safetensors raises its own ``SafetensorError`` for a truncated or corrupt weights file,
    huggingface_hub a ``StrictDataclassError`` for a config value of the wrong type, and
    transformers ``RuntimeError`` when a state dict cannot be copied into the model.
    """
    from huggingface_hub.errors import StrictDataclassError
    from safetensors import SafetensorError

    return (OSError, ValueError, RuntimeError, SafetensorError, StrictDataclassError)


def read_folder_json(file: Path) -> dict[str, Any]:
    """A model folder's JSON file as a dict, or a ``ModelError`` that names the file."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ModelError(
            f"{file}:{error.lineno}: not valid JSON ({error.msg}); restore the file or retrain the model"
        ) from None
    except UnicodeDecodeError:
        raise ModelError(f"{file}: not UTF-8 text; restore the file or retrain the model") from None
    except OSError as error:
        raise ModelError(f"{file}: cannot be read ({error.strerror or error}); check the file") from None
    if not isinstance(data, dict):
        raise ModelError(f"{file}: not a JSON object; restore the file or retrain the model")
    return data


def check_local_folder(
    folder: Path, trust_remote_code: bool, tokenizer_only: bool = False, *, built_by_transformers: bool = True
) -> None:
    """Refuse a local folder that is unreadable or would run its own Python, before transformers.

    transformers imports a folder's ``.py`` files when its config has an ``auto_map`` (or a
    ``model_type`` it does not know), and when not told otherwise asks on standard input
    whether to do so, so piped input could answer "y". Checked here, no transformers code
    path gets the chance; a hub id (no such folder) is left to ``trust_remote_code=False``.
    ``built_by_transformers=False`` is for folders whose config nertool only reads as data (an
    ONNX export): an ``auto_map`` is still refused, the ``model_type`` is not looked up.
    """
    if not folder.is_dir():
        return
    configs = {} if tokenizer_only else {"config.json": read_folder_json(folder / "config.json")}
    if (folder / "tokenizer_config.json").exists():
        configs["tokenizer_config.json"] = read_folder_json(folder / "tokenizer_config.json")
    if not trust_remote_code:
        for name, config in configs.items():
            refuse_remote_code(folder, name, config, known_types=built_by_transformers)


def refuse_remote_code(folder: Path, name: str, config: dict[str, Any], *, known_types: bool = True) -> None:
    model_type = config.get("model_type")
    if "auto_map" in config:
        why = f"{name} has an auto_map (Python code in the folder)"
    elif known_types and name == "config.json" and isinstance(model_type, str) and not _built_in(model_type):
        why = f"{name} has model_type {model_type!r}, not built into transformers (its code is in the folder)"
    else:
        return
    raise ModelError(
        f"{folder}: {why}; nertool does not run a model folder's code unless a recipe sets {REMOTE_CODE_KEY}"
    )


def _built_in(model_type: str) -> bool:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return model_type in CONFIG_MAPPING_NAMES


def load_tokenizer(name: str, revision: str | None = None, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    folder = resolve_model_dir(name)
    check_local_folder(Path(folder), trust_remote_code, tokenizer_only=True)
    if Path(folder).is_dir() and not any((Path(folder) / file).is_file() for file in VOCAB_FILES):
        raise ModelError(
            f"{folder}: no tokenizer vocabulary (tokenizer.json); restore it or retrain the model"
        )
    try:
        return AutoTokenizer.from_pretrained(folder, revision=revision, trust_remote_code=trust_remote_code)
    except load_errors() as error:
        raise ModelError(f"cannot load a tokenizer from {name!r}: {first_line(error)}") from None


def load_weights(auto_class: Any, folder: str, head: tuple[str, ...], **kwargs: Any) -> Any:
    """``auto_class.from_pretrained(folder)`` whose weights must fit, except under ``head``.

    Mismatched sizes are let through to transformers only to be judged here: a new head
    (other labels, an LM head on a classifier) is expected, a body of another shape or
    missing tensors would be a silently random model.
    """
    try:
        model, info = auto_class.from_pretrained(
            folder, ignore_mismatched_sizes=True, output_loading_info=True, use_safetensors=True, **kwargs
        )
    except load_errors() as error:
        raise ModelError(weights_message(folder, error)) from None
    mismatched = sorted((key, saved, wanted) for key, saved, wanted in info["mismatched_keys"])
    foreign = [entry for entry in mismatched if not entry[0].startswith(head)]
    if foreign:
        key, saved, wanted = foreign[0]
        raise ModelError(
            f"{folder}: the weights do not fit config.json ({len(foreign)} tensors differ, first {key}: "
            f"{tuple(saved)} saved, {tuple(wanted)} by the config); the folder mixes two models, "
            "restore it or retrain"
        )
    missing = sorted(key for key in info["missing_keys"] if not key.startswith(head))
    if missing and Path(folder).is_dir():
        raise ModelError(
            f"{folder}: the weights lack {len(missing)} tensors the model needs (first {missing[0]}); "
            "restore the folder or retrain"
        )
    return model


def weights_message(folder: str, error: Exception) -> str:
    from safetensors import SafetensorError

    if isinstance(error, SafetensorError):
        file = Path(folder) / "model.safetensors"
        where = file if file.exists() else Path(folder)
        return f"{where}: model.safetensors is truncated or corrupt; retrain or restore it"
    return f"cannot load model from {folder}: {first_line(error)}"


def token_classifier(
    name: str, label_map: LabelMap, revision: str | None = None, *, trust_remote_code: bool = False
) -> Any:
    """A token-classification model for ``label_map``, new head if the labels differ."""
    from transformers import AutoModelForTokenClassification

    folder = resolve_model_dir(name)
    check_local_folder(Path(folder), trust_remote_code)
    return load_weights(
        AutoModelForTokenClassification,
        folder,
        ("classifier.",),
        num_labels=len(label_map),
        id2label=label_map.id2label,
        label2id=label_map.label2id,
        revision=revision,
        trust_remote_code=trust_remote_code,
    )


def scratch_classifier(size: ScratchSize, vocab_size: int, max_length: int, *, label_map: LabelMap) -> Any:
    from transformers import XLMRobertaForTokenClassification

    config = scratch_config(size, vocab_size, max_length)
    config.num_labels = len(label_map)
    config.id2label = label_map.id2label
    config.label2id = label_map.label2id
    return XLMRobertaForTokenClassification(config)


def masked_lm(name: str, revision: str | None = None, trust_remote_code: bool = False) -> Any:
    """A masked-LM model for continued pre-training: a hub id, a model folder or a run folder.

    A fine-tuned token classifier loads too (its encoder is kept, the LM head starts new).
    """
    from transformers import AutoModelForMaskedLM

    folder = resolve_model_dir(name)
    check_local_folder(Path(folder), trust_remote_code)
    return load_weights(
        AutoModelForMaskedLM, folder, ("lm_head.",), revision=revision, trust_remote_code=trust_remote_code
    )


def scratch_masked_lm(size: ScratchSize, vocab_size: int, max_length: int) -> Any:
    """A randomly initialised XLM-R with its LM head, for pre-training from nothing."""
    from transformers import XLMRobertaForMaskedLM

    return XLMRobertaForMaskedLM(scratch_config(size, vocab_size, max_length))


def load_trained(path: str | Path, trust_remote_code: bool = False) -> tuple[Any, Any, LabelMap]:
    """A fine-tuned model, its tokenizer and its ``LabelMap`` from a run or model folder.

    Never runs the folder's own code unless the caller (a recipe that asked for it) says so:
    ``predict``, ``evaluate`` and ``compare`` read folders from anywhere.
    """
    from transformers import AutoModelForTokenClassification

    folder = resolve_model_dir(str(path))
    if not Path(folder).exists():
        raise ModelError(f"{path}: model folder not found; give a run folder (with model/) or a model folder")
    check_local_folder(Path(folder), trust_remote_code)
    model = load_weights(AutoModelForTokenClassification, folder, (), trust_remote_code=trust_remote_code)
    tokenizer = load_tokenizer(folder, trust_remote_code=trust_remote_code)
    if len(tokenizer) > model.config.vocab_size:
        raise ModelError(
            f"{folder}: the tokenizer has {len(tokenizer)} tokens but the model only "
            f"{model.config.vocab_size}; the files come from two models, restore the folder or retrain"
        )
    return model, tokenizer, LabelMap.from_id2label(model.config.id2label)


def save_model(model: Any, tokenizer: Any, folder: Path, *, max_length: int | None = None) -> None:
    """``save_pretrained`` of model (safetensors) and tokenizer into ``folder``.

    The saved tokenizer declares the longest input the model takes (``saved_max_length``):
    ``transformers.pipeline`` truncates to ``model_max_length``, and a ``scratch:`` tokenizer's
    own value (1e30) would let a long line index past the position table.
    transformers writes weights through a private temporary file (mode 0600); a model folder is
    meant to be shared, so every file gets the mode a plainly created file would (umask).
    """
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    declare_max_length(folder / "tokenizer_config.json", saved_max_length(model, tokenizer, max_length))
    mode = 0o666 & ~current_umask()
    for file in folder.iterdir():
        if file.is_file():
            file.chmod(mode)


def current_umask() -> int:
    """The process umask (reading it means setting it; it is put straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def freeze_embeddings(model: Any) -> None:
    """Keep the (large) embedding matrix fixed: less memory traffic, often better zero-shot."""
    for parameter in model.get_input_embeddings().parameters():
        parameter.requires_grad_(False)
