"""Tokenizers and models: Hub ids, local folders, run folders and ``scratch:<size>`` encoders.

``scratch:<size>`` is how the toolkit runs with no network: a randomly initialised XLM-R of a
named size whose SentencePiece-style Unigram tokenizer is trained on the run's own text (ids
0..4 = ``<s> <pad> </s> <unk> <mask>``, exactly XLM-R's), saved beside the model so the run
folder is self-contained and loads with ``transformers.pipeline``. Weights are read and written
as safetensors only, and remote code runs only when a recipe asks for it.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nertool.errors import ModelError
from nertool.labels import LabelMap

log = logging.getLogger("nertool")

SCRATCH_PREFIX = "scratch:"
SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


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


def load_tokenizer(name: str, revision: str | None = None, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(
            resolve_model_dir(name), revision=revision, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot load a tokenizer from {name!r}: {_first_line(error)}") from None


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def token_classifier(
    name: str, label_map: LabelMap, revision: str | None = None, trust_remote_code: bool = False
) -> Any:
    """A token-classification model for ``label_map``, new head if the labels differ."""
    from transformers import AutoModelForTokenClassification

    try:
        return AutoModelForTokenClassification.from_pretrained(
            resolve_model_dir(name),
            num_labels=len(label_map),
            id2label=label_map.id2label,
            label2id=label_map.label2id,
            revision=revision,
            trust_remote_code=trust_remote_code,
            ignore_mismatched_sizes=True,
            use_safetensors=True,
        )
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot load model {name!r}: {_first_line(error)}") from None


def scratch_classifier(size: ScratchSize, vocab_size: int, max_length: int, label_map: LabelMap) -> Any:
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

    try:
        return AutoModelForMaskedLM.from_pretrained(
            resolve_model_dir(name),
            revision=revision,
            trust_remote_code=trust_remote_code,
            use_safetensors=True,
        )
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot load a masked-LM model from {name!r}: {_first_line(error)}") from None


def scratch_masked_lm(size: ScratchSize, vocab_size: int, max_length: int) -> Any:
    """A randomly initialised XLM-R with its LM head, for pre-training from nothing."""
    from transformers import XLMRobertaForMaskedLM

    return XLMRobertaForMaskedLM(scratch_config(size, vocab_size, max_length))


def load_trained(path: str | Path) -> tuple[Any, Any, LabelMap]:
    """A fine-tuned model, its tokenizer and its ``LabelMap`` from a run or model folder."""
    from transformers import AutoModelForTokenClassification

    folder = resolve_model_dir(str(path))
    if not Path(folder).exists():
        raise ModelError(f"{path}: model folder not found; give a run folder (with model/) or a model folder")
    try:
        model = AutoModelForTokenClassification.from_pretrained(folder, use_safetensors=True)
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot load model from {path}: {_first_line(error)}") from None
    tokenizer = load_tokenizer(folder)
    return model, tokenizer, LabelMap.from_id2label(model.config.id2label)


def save_model(model: Any, tokenizer: Any, folder: Path) -> None:
    """``save_pretrained`` of model (safetensors) and tokenizer into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def freeze_embeddings(model: Any) -> None:
    """Keep the (large) embedding matrix fixed: less memory traffic, often better zero-shot."""
    for parameter in model.get_input_embeddings().parameters():
        parameter.requires_grad_(False)
