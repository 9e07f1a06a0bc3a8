"""What fine-tuning and pre-training runs share around the loop: the run's tokenizer, its log, its
recorded inputs and its kept model, each done one way for both.

Both jobs write the same run folder: ``config.toml`` and ``data_manifest.json`` (what it was
asked and what it read), ``train_log.jsonl`` (and, with ``train.report_to``, ``trackers/``),
``checkpoint/`` (with the tokenizer of a scratch model) and ``model/`` with its card
(``model/README.md``), which ``train.push_to_hub`` or ``nertool push`` upload to the Hub.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nertool.config import HUB_REPO_ID, ModelConfig, Recipe, dump_recipe
from nertool.errors import ConfigError, ModelError
from nertool.files import replace_folder, write_json, write_text
from nertool.hub.card import card_text
from nertool.hub.push import PushResult, check_login, open_repo, upload_model
from nertool.hub.run_card import CARD, run_card_facts, write_run_card
from nertool.model.build import is_scratch, load_tokenizer, save_model, scratch_size, train_tokenizer
from nertool.run_folder import RunFolder
from nertool.train.reporters import JsonlLogReporter, Reporter, SilentReporter
from nertool.train.state import restore_checkpoint
from nertool.train.trackers import TrackerReporter, tracker_config


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


def run_log(
    run_dir: Path, reporter: Reporter | None, accelerator: Any, *, recipe: Recipe | None = None
) -> JsonlLogReporter:
    """The caller's reporter (or none), with every record also appended to ``train_log.jsonl``
    and, when the accelerator has trackers (``train.report_to``), sent to them with the recipe."""
    inner: Reporter = reporter or SilentReporter()
    if accelerator.log_with:
        config = tracker_config(recipe.model_dump()) if recipe is not None else {}
        inner = TrackerReporter(inner, accelerator, config=config)
    return JsonlLogReporter(RunFolder(run_dir).train_log, inner, accelerator.is_main_process)


def tracker_dir(run_dir: Path) -> Path:
    """Where a run's trackers write (TensorBoard event files): ``RUN/trackers``."""
    return RunFolder(run_dir).trackers


def write_run_inputs(run_dir: Path, recipe: Recipe, manifest: dict[str, Any], accelerator: Any) -> None:
    """``config.toml`` (the resolved recipe) and ``data_manifest.json`` (what was read), once."""
    if accelerator.is_main_process:
        write_text(run_dir / "config.toml", dump_recipe(recipe))
        write_json(run_dir / "data_manifest.json", manifest)


# ------------------------------------------------------------------ sharing: the card and the Hub


def hub_repo_id(recipe: Recipe, run_dir: Path) -> str | None:
    """The repository ``train.push_to_hub`` names: its id, the run folder's name for ``true``, or None."""
    push = recipe.train.push_to_hub
    if push is False:
        return None
    return push if isinstance(push, str) else Path(run_dir).resolve().name


def check_push(recipe: Recipe) -> None:
    """Before training: a run that is to be pushed needs a Hub login (else it fails only at the end)."""
    if recipe.train.push_to_hub is not False:
        check_login()


def refuse_push(recipe: Recipe, why: str, which: str) -> None:
    """``train.push_to_hub`` names one repository for one model: refused where a job makes several."""
    if recipe.train.push_to_hub is not False:
        raise ConfigError(
            f"train.push_to_hub: {why}; train without it, then upload the one you want "
            f"with `nertool push {which} REPO_ID`"
        )


def share_run(run_dir: Path, recipe: Recipe, accelerator: Any) -> PushResult | None:
    """At a run's end (main process): the card beside the model, and the upload ``push_to_hub`` asks for."""
    if not accelerator.is_main_process:
        return None
    write_run_card(run_dir)
    repo_id = hub_repo_id(recipe, run_dir)
    return None if repo_id is None else push_run(run_dir, repo_id, private=recipe.train.hub_private)


def push_run(run: str | Path, repo_id: str, *, private: bool = False, api: Any = None) -> PushResult:
    """``nertool push``: upload a run's ``model/`` (or a model folder) with its card to ``repo_id``.

    A run's card is (re)written to name the repository, unless someone edited it since nertool
    wrote it: an edited card is uploaded as it is.
    """
    model_dir = model_folder(Path(run))
    if not re.fullmatch(HUB_REPO_ID, repo_id):
        raise ConfigError(f"{repo_id!r} is not a Hub repository id; give name or namespace/name")
    repo = open_repo(repo_id, private=private, api=api)
    run_dir = model_dir.parent
    if RunFolder(run_dir).config.is_file() and _card_is_ours(run_dir):
        write_run_card(run_dir, model_name=repo.repo_id)
    return upload_model(repo, model_dir)


def model_folder(run: Path) -> Path:
    """The model folder to push: ``RUN/model``, or the folder itself when it is one."""
    for folder in (RunFolder(run).model, run):
        if (folder / "config.json").is_file():
            return folder
    raise ModelError(
        f"{run}: no model here (no model/config.json); give a run folder with model/ "
        "(a multi-seed run keeps one in each seed-<n>/) or a model folder"
    )


def _card_is_ours(run_dir: Path) -> bool:
    """No card yet, or the card exactly as nertool writes it for this run (not edited by hand)."""
    from huggingface_hub import ModelCard

    path = RunFolder(run_dir).model / CARD
    if not path.is_file():
        return True
    text = path.read_text(encoding="utf-8")
    try:
        name = ModelCard(text).data.get("model_name")
    except ValueError:  # a damaged header is someone else's text
        return False
    return isinstance(name, str) and text == card_text(run_card_facts(run_dir, model_name=name))
