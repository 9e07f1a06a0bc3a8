"""Masked-language-model (continued) pre-training: text → documents → packed blocks → the shared loop.

An encoder that has read the target languages learns NER from far fewer labelled sentences, so
``nertool pretrain`` runs the MLM objective (``mlm.mask_tokens``: 15%, 80/10/10, optionally whole
words) through the same ``train.Loop`` and run-folder layout as ``train``.

Text sources and the language mix live in ``pretrain_text``.

Masks are deterministic: the collator masks each block, at its own unpadded length, with a
``torch.Generator`` seeded from (seed, epoch, block index). A block's mask therefore depends on
nothing else — not batch size, padding, batch order, process count or skipped batches — so
``--resume`` replays the masks of an uninterrupted run exactly, while each epoch still gets fresh
masks (RoBERTa's dynamic masking). Held-out blocks use epoch -1: the same masks at every evaluation.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch

from nertool.config import PretrainConfig, Recipe, dump_recipe
from nertool.errors import ConfigError
from nertool.files import replace_folder, write_json, write_text
from nertool.model.align import word_pieces
from nertool.model.build import (
    is_scratch,
    load_tokenizer,
    masked_lm,
    save_model,
    scratch_masked_lm,
    scratch_size,
    train_tokenizer,
)
from nertool.model.inference import model_max_length
from nertool.pretrain.masking import IGNORE_INDEX, mask_tokens
from nertool.pretrain.packing import PackedBlock, collate_blocks, pack_documents
from nertool.pretrain.text import TextMix, TextSource, Words, mix_documents, read_text_sources
from nertool.train.loop import (
    JsonlLogReporter,
    Loop,
    LoopSettings,
    Reporter,
    ScoreFn,
    SilentReporter,
    make_accelerator,
    restore_checkpoint,
)

HELDOUT_EPOCH = -1


# ------------------------------------------------------------------ tokens, blocks and masks


def pack_text(
    tokenizer: Any, documents: Sequence[Words], block_size: int, *, cross: bool, whole_word: bool
) -> list[PackedBlock]:
    """Subword ids of each document, packed into blocks (with word ids for whole-word masking)."""
    pieces = word_pieces(tokenizer, documents)
    ids = [[piece for word in doc for piece in word] for doc in pieces]
    words = [[n for n, word in enumerate(doc) for _ in word] for doc in pieces] if whole_word else None
    bos, eos = tokenizer.cls_token_id, tokenizer.sep_token_id  # XLM-R: <s>, </s>; BERT: [CLS], [SEP]
    return pack_documents(ids, block_size, bos, eos, cross, doc_word_ids=words, keep_remainder=True)


@dataclass(frozen=True)
class IndexedBlock:
    """A block and its fixed index in the block list (the index seeds its masks)."""

    index: int
    block: PackedBlock

    def __len__(self) -> int:
        return len(self.block.input_ids)


@dataclass(frozen=True)
class MaskingSpec:
    """Everything the collator needs to mask a block."""

    mask_token_id: int
    vocab_size: int
    n_special: int
    mlm_probability: float
    pad_id: int
    whole_word: bool
    seed: int

    def mask_args(self) -> dict[str, Any]:
        """The keyword arguments of ``mlm.mask_tokens`` this spec fixes."""
        names = ("mask_token_id", "vocab_size", "n_special", "mlm_probability")
        return {name: getattr(self, name) for name in names}


def masking_spec(tokenizer: Any, settings: PretrainConfig, seed: int) -> MaskingSpec:
    """Random replacements skip the leading special ids (XLM-R: ``<s> <pad> </s> <unk>`` ...)."""
    specials, n_special = set(tokenizer.all_special_ids), 0
    while n_special in specials:
        n_special += 1
    if tokenizer.mask_token_id is None:
        raise ConfigError("the tokenizer has no mask token; masked-LM pre-training needs one")
    mask_id, pad_id, probability = (
        tokenizer.mask_token_id,
        tokenizer.pad_token_id or 0,
        settings.mlm_probability,
    )
    return MaskingSpec(
        mask_id, len(tokenizer), n_special, probability, pad_id, settings.whole_word_masking, seed
    )


def block_seed(seed: int, epoch: int, index: int) -> int:
    """A stable 63-bit seed for one block in one epoch (SHA-256: no per-process salt)."""
    digest = hashlib.sha256(f"{seed}\x00{epoch}\x00{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class MaskingCollator:
    """Masks each block with its own (seed, epoch, index) generator, then pads the batch."""

    def __init__(self, spec: MaskingSpec, epoch: int = 0):
        self.spec, self.epoch = spec, epoch

    def mask_block(self, item: IndexedBlock) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.spec
        single = collate_blocks([item.block], s.pad_id)  # (1, len) each
        generator = torch.Generator().manual_seed(block_seed(s.seed, self.epoch, item.index))
        word_ids = single.get("word_ids") if s.whole_word else None
        ids, special = single["input_ids"], single["special_tokens_mask"]
        inputs, labels = mask_tokens(ids, special, generator=generator, word_ids=word_ids, **s.mask_args())
        return inputs[0], labels[0]

    def __call__(self, items: Sequence[IndexedBlock]) -> dict[str, torch.Tensor]:
        rows = [self.mask_block(item) for item in items]
        shape = (len(rows), max(len(ids) for ids, _ in rows))
        batch = {  # each (batch, seq)
            "input_ids": torch.full(shape, self.spec.pad_id, dtype=torch.long),
            "attention_mask": torch.zeros(shape, dtype=torch.long),
            "labels": torch.full(shape, IGNORE_INDEX, dtype=torch.long),
        }
        for row, (ids, labels) in enumerate(rows):
            batch["input_ids"][row, : len(ids)] = ids
            batch["attention_mask"][row, : len(ids)] = 1
            batch["labels"][row, : len(ids)] = labels
        return batch


# ------------------------------------------------------------------ model, held-out score, loop


def mlm_tokenizer(
    recipe: Recipe, documents: Sequence[Words], folder: Path, *, resume: bool, accelerator: Any
) -> Any:
    """The model's own tokenizer, or (scratch) one trained on the text by the main process, saved in
    the checkpoint and loaded by every process and by ``--resume``: Unigram training is not
    bit-for-bit repeatable, and the checkpoint's embeddings belong to one vocabulary."""
    spec = recipe.model
    if not is_scratch(spec.name):
        return load_tokenizer(spec.name, spec.revision, spec.trust_remote_code)
    if not (resume and (folder / "tokenizer.json").is_file()) and accelerator.is_main_process:
        texts = (" ".join(doc) for doc in documents)
        train_tokenizer(texts, min(spec.vocab_size, scratch_size(spec.name).vocab)).save_pretrained(folder)
    accelerator.wait_for_everyone()
    return load_tokenizer(str(folder))


def build_mlm(recipe: Recipe, tokenizer: Any) -> Any:
    """A scratch XLM-R sized to the tokenizer, or the named model (embeddings grown if needed)."""
    spec, block_size = recipe.model, recipe.pretrain.block_size
    if is_scratch(spec.name):
        return scratch_masked_lm(scratch_size(spec.name), len(tokenizer), max(spec.max_length, block_size))
    model = masked_lm(spec.name, spec.revision, spec.trust_remote_code)
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    if block_size > model_max_length(model, tokenizer):
        limit = model_max_length(model, tokenizer)
        raise ConfigError(
            f"pretrain.block_size {block_size} exceeds what {spec.name} accepts ({limit}); lower it"
        )
    return model


class MaskedOnlyHead(torch.nn.Module):
    """A masked LM whose LM head runs only where labels are set (~15% of positions).

    The loss is the model's own (mean cross-entropy over labelled positions), but the projection
    onto the vocabulary — for a 6 × 512 encoder with 32k pieces about as costly as the encoder, and
    its largest activation — is computed for a seventh of the positions. ``lm_head`` is the
    RoBERTa/XLM-R layout; other models run whole (see ``with_sparse_head``).
    """

    def __init__(self, model: Any):
        super().__init__()
        self.model, self.config = model, model.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> Any:
        from transformers.modeling_outputs import MaskedLMOutput

        encoded = self.model.base_model(input_ids=input_ids, attention_mask=attention_mask)
        hidden = encoded[0]  # (batch, seq, dim)
        chosen = labels != IGNORE_INDEX  # (batch, seq)
        logits = self.model.lm_head(hidden[chosen])  # (n_chosen, vocab)
        return MaskedLMOutput(loss=torch.nn.functional.cross_entropy(logits.float(), labels[chosen]))


def with_sparse_head(model: Any) -> Any:
    return MaskedOnlyHead(model) if hasattr(model, "lm_head") and hasattr(model, "base_model") else model


@torch.no_grad()
def heldout_loss(
    model: Any, items: Sequence[IndexedBlock], collator: MaskingCollator, *, batch_size: int
) -> float:
    """Mean cross-entropy per masked subword over the held-out blocks (fixed masks)."""
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for start in range(0, len(items), batch_size):
        batch = {key: value.to(device) for key, value in collator(items[start : start + batch_size]).items()}
        n = int((batch["labels"] != IGNORE_INDEX).sum())
        if n:
            total += float(model(**batch).loss) * n
            count += n
    return total / max(count, 1)


def heldout_scorer(blocks: Sequence[PackedBlock], spec: MaskingSpec, batch_size: int) -> ScoreFn:
    """The loop's score callback: minus held-out loss (higher is better), with loss and perplexity."""
    collator = MaskingCollator(spec, epoch=HELDOUT_EPOCH)
    items = [IndexedBlock(index, block) for index, block in enumerate(blocks)]

    def score(model: Any) -> tuple[float, dict[str, Any]]:
        loss = heldout_loss(model, items, collator, batch_size=batch_size)
        return -loss, {"heldout_loss": round(loss, 4), "perplexity": round(math.exp(min(loss, 50.0)), 3)}

    return score


class PretrainLoop(Loop):
    """``train.Loop`` plus what pre-training needs from it: the epoch for the collator's masks,
    held-out evaluation every ``eval_every`` optimisation steps (not per epoch), and a time budget
    for the whole invocation (not per epoch) that ends with a held-out score and a checkpoint that
    ``--resume`` continues from."""

    def __init__(self, *args: Any, eval_every: int, **kwargs: Any):
        self.eval_every = eval_every
        super().__init__(*args, **kwargs)

    def _epoch_loader(self, epoch: int, skip: int) -> Any:
        if isinstance(self.collator, MaskingCollator):
            self.collator.epoch = epoch
        return super()._epoch_loader(epoch, skip)

    def _eval_points(self) -> set[int]:
        n, period = self._local_batches(), self.eval_every * self.settings.gradient_accumulation_steps
        return {batch for batch in range(n) if (self.state.epoch * n + batch + 1) % period == 0}


def pretrain_settings(recipe: Recipe, batches_per_epoch: int, processes: int = 1) -> LoopSettings:
    """Loop settings: ``[train]`` optimisation keys; steps, time and evaluations from ``[pretrain]``."""
    t, p = recipe.train, recipe.pretrain
    local = math.ceil(batches_per_epoch / processes)
    steps = p.steps or math.ceil(local * t.epochs / t.gradient_accumulation_steps)
    own = {"epochs", "max_steps", "max_seconds", "seed"}
    shared = {f.name for f in fields(LoopSettings)} & set(type(t).model_fields) - own
    return LoopSettings(
        **{key: getattr(t, key) for key in shared},
        epochs=float(steps * t.gradient_accumulation_steps) if p.steps else t.epochs,  # max_steps stops it
        max_steps=steps,
        max_seconds=p.max_minutes * 60 if p.max_minutes else None,
        seed=recipe.seed,
    )


# ------------------------------------------------------------------ the workflow


@dataclass(frozen=True)
class PretrainResult:
    """What a pre-training run produced: its folder, steps done, held-out history and data manifest."""

    run_dir: Path
    steps: int
    history: list[dict[str, Any]]
    manifest: dict[str, Any]


def _manifest(
    recipe: Recipe, text: TextSource, mix: TextMix, blocks: Sequence[PackedBlock], heldout: int
) -> dict[str, Any]:
    p = recipe.pretrain
    return {
        "sources": text.sources,
        "languages": mix.counts,
        "sampling": mix.method,
        "seed": recipe.seed,
        "blocks": len(blocks),
        "heldout_blocks": heldout,
        "tokens": sum(len(block.input_ids) for block in blocks),
        "block_size": p.block_size,
        "cross_documents": p.cross_documents,
        "masks": "per block: a generator seeded by sha256(seed, epoch, block index); held-out: epoch -1",
    }


@dataclass(frozen=True)
class PretrainData:
    """The model, its tokenizer and the packed text a run trains and scores on."""

    model: Any
    tokenizer: Any
    spec: MaskingSpec
    blocks: list[PackedBlock]
    heldout: list[PackedBlock]
    manifest: dict[str, Any]


def prepare(recipe: Recipe, run_dir: Path, resume: bool, accelerator: Any) -> PretrainData:
    """Read and mix the text, build the tokenizer and model, pack the blocks."""
    from accelerate.utils import set_seed

    p = recipe.pretrain
    text = read_text_sources(p.text or [recipe.data.source], p.languages)
    mix = mix_documents(text, p, recipe.seed)
    if resume:  # undo a swap cut short and check the checkpoint before its tokenizer is read
        restore_checkpoint(run_dir / "checkpoint", accelerator)
    tokenizer = mlm_tokenizer(
        recipe, mix.train, run_dir / "checkpoint" / "tokenizer", resume=resume, accelerator=accelerator
    )
    set_seed(recipe.seed)  # a scratch model's initial weights follow the seed
    model = build_mlm(recipe, tokenizer)
    blocks, heldout = (
        pack_text(tokenizer, docs, p.block_size, cross=p.cross_documents, whole_word=p.whole_word_masking)
        if docs
        else []
        for docs in (mix.train, mix.heldout)
    )
    manifest = _manifest(recipe, text, mix, blocks, len(heldout))
    return PretrainData(model, tokenizer, masking_spec(tokenizer, p, recipe.seed), blocks, heldout, manifest)


def collation_workers(accelerator: Any) -> int:
    """Worker processes that mask batches while the accelerator trains on the last one.

    Masking is per block in Python (about 20 ms for 128 blocks of 128 positions), as long as a
    small encoder's whole step on a GPU. On a CPU the workers would take cores from the model
    itself, so masking stays in the training process there.
    """
    if accelerator.device.type == "cpu":
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(0, min(4, cores // accelerator.num_processes - 1))


def pretrain_run(
    recipe: Recipe, run_dir: Path, resume: bool = False, *, reporter: Reporter | None = None
) -> PretrainResult:
    """Pre-train (or continue pre-training) a masked LM; write ``model/``, logs, config and manifest."""
    run_dir.mkdir(parents=True, exist_ok=True)
    accelerator = make_accelerator(pretrain_settings(recipe, 1))  # needs only precision and accumulation
    data = prepare(recipe, run_dir, resume, accelerator)
    batches = math.ceil(len(data.blocks) / recipe.train.batch_size)
    settings = replace(
        pretrain_settings(recipe, batches, accelerator.num_processes),
        loader_workers=collation_workers(accelerator),
    )
    items = [IndexedBlock(index, block) for index, block in enumerate(data.blocks)]
    every = recipe.pretrain.eval_every or max(1, (settings.max_steps or 1) // 10)
    collator, lengths = MaskingCollator(data.spec), [len(item) for item in items]
    model = with_sparse_head(data.model)
    loop = PretrainLoop(
        model,
        items,
        settings,
        run_dir / "checkpoint",
        collator=collator,
        lengths=lengths,
        accelerator=accelerator,
        eval_every=every,
    )
    main = accelerator.is_main_process
    loop.reporter = JsonlLogReporter(run_dir / "train_log.jsonl", reporter or SilentReporter(), main)
    loop.score = (
        heldout_scorer(data.heldout, data.spec, recipe.train.eval_batch_size) if data.heldout else None
    )
    if main:
        write_text(run_dir / "config.toml", dump_recipe(recipe))
        write_json(run_dir / "data_manifest.json", data.manifest)
    loop.resume_or_restart(resume, run_dir / "train_log.jsonl")
    state = loop.run()
    _save_final(loop, data.tokenizer, run_dir)
    return PretrainResult(run_dir, state.step, state.history, data.manifest)


def _save_final(loop: Loop, tokenizer: Any, run_dir: Path) -> None:
    """The last weights become ``model/`` (whole, or not at all)."""
    loop.accelerator.wait_for_everyone()
    if loop.accelerator.is_main_process:
        tmp = run_dir / ".model.partial"
        model = loop.accelerator.unwrap_model(loop.model)
        save_model(model.model if isinstance(model, MaskedOnlyHead) else model, tokenizer, tmp)
        replace_folder(tmp, run_dir / "model")
