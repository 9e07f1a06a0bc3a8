"""Masked-language-model (continued) pre-training: text → documents → packed blocks → the shared loop.

An encoder that has read the target languages learns NER from far fewer labelled sentences, so
``nertool pretrain`` runs the MLM objective (``mlm.mask_tokens``: 15%, 80/10/10, optionally whole
words) through the same ``train.Loop`` and run-folder layout as ``train``: the loop is given its
masking collator, held-out score and step-based evaluation schedule as ``LoopHooks``.

Text sources and the language mix live in ``nertool.pretrain.text``.

Masks are deterministic: the collator (``nertool.pretrain.collator``) masks each block, at its own
unpadded length, with a ``torch.Generator`` seeded from (seed, epoch, block index), so ``--resume``
replays the masks of an uninterrupted run exactly; held-out blocks get the same masks every time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from nertool.config import Recipe
from nertool.errors import ConfigError
from nertool.model.align import word_pieces
from nertool.model.build import is_scratch, masked_lm, scratch_masked_lm, scratch_size
from nertool.model.inference import model_max_length
from nertool.pretrain.collator import (
    HELDOUT_EPOCH,
    IndexedBlock,
    MaskingCollator,
    MaskingSpec,
    masking_spec,
)
from nertool.pretrain.masking import IGNORE_INDEX
from nertool.pretrain.packing import PackedBlock, pack_documents
from nertool.pretrain.text import TextMix, TextSource, Words, mix_documents, read_text_sources
from nertool.train.loop import Loop, LoopHooks, ScoreFn, every_n_batches
from nertool.train.reporters import Reporter
from nertool.train.runtime import loader_workers, make_accelerator
from nertool.train.settings import LoopSettings, loop_settings
from nertool.workflows.runs import (
    check_push,
    checkpoint_tokenizer,
    run_log,
    save_run_model,
    share_run,
    tracker_dir,
    write_run_inputs,
)

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


# ------------------------------------------------------------------ model, held-out score, loop


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


def without_sparse_head(model: Any) -> Any:
    """The masked LM itself (what ``model/`` holds), with or without ``MaskedOnlyHead`` around it."""
    return model.model if isinstance(model, MaskedOnlyHead) else model


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


def pretrain_settings(recipe: Recipe, batches_per_epoch: int, processes: int = 1) -> LoopSettings:
    """Loop settings: ``[train]`` optimisation keys; the run's length (steps, time) from ``[pretrain]``."""
    t, p = recipe.train, recipe.pretrain
    local = math.ceil(batches_per_epoch / processes)
    steps = p.steps or math.ceil(local * t.epochs / t.gradient_accumulation_steps)
    return replace(
        loop_settings(recipe),
        epochs=float(steps * t.gradient_accumulation_steps) if p.steps else t.epochs,  # max_steps stops it
        max_steps=steps,
        max_seconds=p.max_minutes * 60 if p.max_minutes else None,
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
    texts = (" ".join(doc) for doc in mix.train)
    tokenizer = checkpoint_tokenizer(
        recipe.model, texts, run_dir / "checkpoint", resume=resume, accelerator=accelerator
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
    return loader_workers(accelerator.device, accelerator.num_processes)


def pretrain_run(
    recipe: Recipe, run_dir: Path, resume: bool = False, *, reporter: Reporter | None = None
) -> PretrainResult:
    """Pre-train (or continue pre-training) a masked LM; write ``model/`` (with its card), logs,
    config and manifest; ``train.push_to_hub`` uploads the model."""
    run_dir.mkdir(parents=True, exist_ok=True)
    check_push(recipe)
    settings = pretrain_settings(recipe, 1)  # the accelerator needs precision, accumulation, trackers
    accelerator = make_accelerator(settings, tracker_dir=tracker_dir(run_dir))
    data = prepare(recipe, run_dir, resume, accelerator)
    log = run_log(run_dir, reporter, accelerator, recipe=recipe)
    loop = pretrain_loop(recipe, data, run_dir / "checkpoint", reporter=log, accelerator=accelerator)
    write_run_inputs(run_dir, recipe, data.manifest, accelerator)
    loop.resume_or_restart(resume, run_dir / "train_log.jsonl")
    state = loop.run()  # the last weights become model/
    final = without_sparse_head(accelerator.unwrap_model(loop.model))
    save_run_model(final, data.tokenizer, run_dir, accelerator)  # limit from positions: any fine-tune length
    share_run(run_dir, recipe, accelerator)
    return PretrainResult(run_dir, state.step, state.history, data.manifest)


def pretrain_loop(
    recipe: Recipe, data: PretrainData, checkpoint_dir: Path, *, reporter: Reporter, accelerator: Any
) -> Loop:
    """The shared loop over the packed blocks, given the masks, held-out score and schedule as hooks."""
    batches = math.ceil(len(data.blocks) / recipe.train.batch_size)
    settings = replace(
        pretrain_settings(recipe, batches, accelerator.num_processes),
        loader_workers=collation_workers(accelerator),
    )
    items = [IndexedBlock(index, block) for index, block in enumerate(data.blocks)]
    every = recipe.pretrain.eval_every or max(1, (settings.max_steps or 1) // 10)
    collator = MaskingCollator(data.spec)
    heldout = heldout_scorer(data.heldout, data.spec, recipe.train.eval_batch_size) if data.heldout else None
    hooks = LoopHooks(
        score=heldout,
        on_epoch_start=collator.start_epoch,
        eval_schedule=every_n_batches(every * settings.gradient_accumulation_steps),
    )
    return Loop(
        with_sparse_head(data.model),
        items,
        settings,
        checkpoint_dir,
        hooks=hooks,
        reporter=reporter,
        collator=collator,
        lengths=[len(item) for item in items],
        accelerator=accelerator,
    )
