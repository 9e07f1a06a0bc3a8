"""What fine-tuning and pre-training runs share around the loop: the run's tokenizer, its log, its
recorded inputs and its kept model, each done one way for both.

Both jobs write the same run folder: ``config.toml`` and ``data_manifest.json`` (what it was
asked and what it read), ``train_log.jsonl``, ``checkpoint/`` (with the tokenizer of a scratch
model) and ``model/``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nertool.config import ModelConfig, Recipe, dump_recipe
from nertool.files import replace_folder, write_json, write_text
from nertool.model.build import is_scratch, load_tokenizer, save_model, scratch_size, train_tokenizer
from nertool.train.reporters import JsonlLogReporter, Reporter, SilentReporter
from nertool.train.state import restore_checkpoint


def build_tokenizer(spec: ModelConfig, texts: Iterable[str]) -> Any:
    """A Unigram tokenizer trained on ``texts`` for a scratch model, or the named model's own."""
    if is_scratch(spec.name):
        return train_tokenizer(texts, min(spec.vocab_size, scratch_size(spec.name).vocab))
    return load_tokenizer(spec.name, spec.revision, spec.trust_remote_code)


def checkpoint_tokenizer(
    spec: ModelConfig, texts: Iterable[str], checkpoint_dir: Path, *, resume: bool, accelerator: Any
) -> Any:
    """The run's tokenizer, the same on every process and after ``--resume``.

    When resuming, the checkpoint is first restored and checked whole, since a scratch run reads
    its tokenizer from it. Unigram training is not bit-for-bit repeatable and the checkpoint's
    embeddings belong to one vocabulary, so a scratch tokenizer is trained once (main process),
    saved in ``checkpoint/tokenizer`` and loaded by every process and by a resumed run; a named
    model's tokenizer is loaded as it is.
    """
    if resume:
        restore_checkpoint(checkpoint_dir, accelerator)
    if not is_scratch(spec.name):
        return build_tokenizer(spec, texts)
    folder = checkpoint_dir / "tokenizer"
    if not (resume and (folder / "tokenizer.json").is_file()) and accelerator.is_main_process:
        build_tokenizer(spec, texts).save_pretrained(folder)
    accelerator.wait_for_everyone()
    return load_tokenizer(str(folder))


def save_run_model(
    model: Any, tokenizer: Any, run_dir: Path, accelerator: Any, *, max_length: int | None = None
) -> None:
    """``model/`` becomes this model and tokenizer, whole or not at all (main process writes).

    ``max_length`` (the run's ``model.max_length``) is saved as the tokenizer's limit, so that
    ``transformers.pipeline`` on the saved folder windows long text as the run did.
    """
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        tmp = run_dir / ".model.partial"
        save_model(model, tokenizer, tmp, max_length=max_length)
        replace_folder(tmp, run_dir / "model")


def run_log(run_dir: Path, reporter: Reporter | None, accelerator: Any) -> JsonlLogReporter:
    """The caller's reporter (or none), with every record also appended to ``train_log.jsonl``."""
    log_path = run_dir / "train_log.jsonl"
    return JsonlLogReporter(log_path, reporter or SilentReporter(), accelerator.is_main_process)


def write_run_inputs(run_dir: Path, recipe: Recipe, manifest: dict[str, Any], accelerator: Any) -> None:
    """``config.toml`` (the resolved recipe) and ``data_manifest.json`` (what was read), once."""
    if accelerator.is_main_process:
        write_text(run_dir / "config.toml", dump_recipe(recipe))
        write_json(run_dir / "data_manifest.json", manifest)
