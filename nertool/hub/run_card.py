"""A run folder's model card: the facts read from what the run wrote, the card written beside the model.

Everything comes from the folder itself (``config.toml``, ``metrics.json``, ``model/config.json``,
``train_log.jsonl``), so the card a run writes at its end and the one ``nertool push`` writes for
an older run that has none say the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nertool.errors import ModelError
from nertool.files import write_text
from nertool.hub.card import CardFacts, CardKind, card_text
from nertool.records import EvaluationRecord, read_run_recipe
from nertool.run_folder import RunFolder

CARD = "README.md"


def write_run_card(run_dir: Path, *, model_name: str | None = None) -> Path:
    """Write ``run_dir/model/README.md`` atomically; returns its path."""
    path = RunFolder(run_dir).model / CARD
    write_text(path, card_text(run_card_facts(run_dir, model_name=model_name)))
    return path


def run_card_facts(run_dir: Path, *, model_name: str | None = None) -> CardFacts:
    """The facts of a run folder's card; ``model_name`` defaults to the recipe's repository or the folder."""
    folder = RunFolder(run_dir)
    recipe = read_run_recipe(run_dir)
    if recipe is None:
        raise ModelError(f"{folder.config}: no readable recipe here; a card needs the run's config.toml")
    config = _model_config(folder.model)
    kind: CardKind = "mlm" if _is_masked_lm(config) else "ner"
    push = recipe.train.push_to_hub
    name = model_name or (push if isinstance(push, str) else Path(run_dir).resolve().name)
    labels = [label for _, label in sorted((int(k), v) for k, v in config.get("id2label", {}).items())]
    metrics = EvaluationRecord.read(folder.metrics) if folder.metrics.is_file() else None
    heldout = last_heldout(folder.train_log) if kind == "mlm" else None
    return CardFacts(recipe, kind, name, labels if kind == "ner" else [], metrics, heldout)


def _model_config(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "config.json"
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        raise ModelError(f"{path}: cannot read the model's configuration ({error})") from None


def _is_masked_lm(config: dict[str, Any]) -> bool:
    return any(str(name).endswith("ForMaskedLM") for name in config.get("architectures", []))


def last_heldout(log_path: Path) -> dict[str, Any] | None:
    """``step``, ``heldout_loss`` and ``perplexity`` of a pre-training run's last held-out evaluation."""
    if not log_path.is_file():
        return None
    last = None
    for line in log_path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line) if line.strip() else {}
        if "heldout_loss" in record.get("eval", {}):
            last = {"step": record["step"], **record["eval"]}
    return last
