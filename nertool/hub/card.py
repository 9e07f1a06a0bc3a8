"""The model card: ``RUN/model/README.md``, a Hub-ready description of a trained or pre-trained model.

A model folder is meant to be shared, and on the Hub its ``README.md`` is what a reader sees
first: the YAML header (``huggingface_hub.ModelCardData``: languages, base model, data sets,
per-language ``EvalResult``s) makes the scores searchable, the text says how the model was made
(the recipe itself, embedded), how to use it, and where its numbers stop being true.

``CardFacts`` is everything a card says; ``card_text`` is pure (a test builds a card from a
hand-made record); ``nertool.hub.run_card`` gathers the facts from a run folder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from nertool.config import Recipe, dump_recipe
from nertool.hub.sections import (
    data_lines,
    limitation_lines,
    mlm_usage,
    model_line,
    ner_usage,
    results_table,
)
from nertool.langcode import language_of
from nertool.records import EvaluationRecord

CardKind = Literal["ner", "mlm"]
TAGS = {"ner": ["token-classification", "ner", "nertool"], "mlm": ["fill-mask", "nertool"]}
PIPELINE = {"ner": "token-classification", "mlm": "fill-mask"}


@dataclass(frozen=True)
class CardFacts:
    """What a card states: the recipe, the model's labels, its scores (fine-tuned) or held-out loss.

    ``model_name`` is the Hub repository id where one is known (``train.push_to_hub``, ``push``),
    else the run folder's name; ``heldout`` is a pre-training run's last held-out evaluation
    (``step``, ``heldout_loss``, ``perplexity``).
    """

    recipe: Recipe
    kind: CardKind
    model_name: str
    labels: Sequence[str] = ()
    metrics: EvaluationRecord | None = None
    heldout: Mapping[str, Any] | None = field(default=None)

    @property
    def train_languages(self) -> list[str]:
        if self.kind == "mlm":
            return list(self.recipe.pretrain.languages) or list(self.recipe.data.train_languages)
        return list(self.recipe.data.train_languages)

    @property
    def languages(self) -> list[str]:
        """Every language the model was trained or scored on, training languages first (a
        ``corpus:language`` evaluation set counts as its language)."""
        evaluated = [language_of(n) for n in self.metrics.languages] if self.metrics is not None else []
        return list(dict.fromkeys([*self.train_languages, *evaluated]))


# ---------------------------------------------------------------- the YAML header


def hub_sources(facts: CardFacts) -> list[str]:
    """The Hub data sets the model learnt from (``hub:NAME[:CONFIG]`` sources), in recipe order."""
    from nertool.data.sources import is_hub_spec, parse_hub_spec

    specs = list(facts.recipe.pretrain.text) if facts.kind == "mlm" else []
    specs = specs or [facts.recipe.data.source]
    return list(dict.fromkeys(parse_hub_spec(spec)[0] for spec in specs if is_hub_spec(spec)))


def base_model(recipe: Recipe) -> str | None:
    """The Hub model fine-tuned (``model.name``); None for a scratch model or a local folder."""
    from pathlib import Path

    from nertool.model.build import is_scratch

    name = recipe.model.name
    if is_scratch(name) or Path(name).exists() or name.startswith((".", "/")):
        return None
    return name


def eval_results(facts: CardFacts) -> list[Any]:
    """One ``EvalResult`` per language and metric (F1, precision, recall) of its test scores.

    A language without a test split is reported on its validation split, and says so.
    """
    from huggingface_hub import EvalResult

    from nertool.hub.sections import dataset_of, reported_split

    results = []
    for language in facts.metrics.languages if facts.metrics is not None else {}:
        found = reported_split(facts.metrics, language) if facts.metrics is not None else None
        if found is None:
            continue
        split, block = found
        dataset = dataset_of(facts.recipe, language)
        for metric in ("f1", "precision", "recall"):
            results.append(
                EvalResult(
                    task_type="token-classification",
                    task_name="Named-entity recognition",
                    dataset_type=dataset.type,
                    dataset_name=dataset.name,
                    dataset_config=dataset.config,
                    dataset_split=split,
                    metric_type=metric,
                    metric_name=f"{metric} ({language}, entity level, seqeval)",
                    metric_value=round(float(block[metric]), 4),
                )
            )
    return results


def card_data(facts: CardFacts) -> Any:
    """The card's YAML header as ``huggingface_hub.ModelCardData``."""
    from huggingface_hub import ModelCardData

    return ModelCardData(
        language=facts.languages or None,
        library_name="transformers",
        pipeline_tag=PIPELINE[facts.kind],
        tags=TAGS[facts.kind],
        datasets=hub_sources(facts) or None,
        base_model=base_model(facts.recipe),
        model_name=facts.model_name,
        eval_results=eval_results(facts) or None,
    )


# ---------------------------------------------------------------- the text


def card_body(facts: CardFacts) -> str:
    """The Markdown under the header: what, results, labels, use, data, limits, recipe."""
    what = "Named-entity recognition" if facts.kind == "ner" else "Masked-language model"
    parts = [f"# {facts.model_name}", f"{what} trained with nertool. {model_line(facts)}"]
    if facts.kind == "ner":
        parts += ["## Results", results_table(facts)]
        parts += ["## Labels", _labels(facts.labels)]
        parts += ["## Usage", ner_usage(facts)]
    else:
        parts += ["## Held-out score", _heldout(facts.heldout)]
        parts += ["## Usage", mlm_usage(facts)]
    parts += ["## Training data", data_lines(facts)]
    parts += ["## Limitations", "\n".join(f"- {line}" for line in limitation_lines(facts))]
    parts += ["## Recipe", "The resolved recipe (`config.toml`) that made this model:"]
    parts.append(f"```toml\n{dump_recipe(facts.recipe).rstrip()}\n```")
    return "\n\n".join(parts) + "\n"


def _labels(labels: Sequence[str]) -> str:
    if not labels:
        return "The model's configuration lists no labels."
    listed = ", ".join(f"`{index}` {label}" for index, label in enumerate(labels))
    return f"{len(labels)} IOB2 labels (`id2label` in `config.json`): {listed}."


def _heldout(heldout: Mapping[str, Any] | None) -> str:
    if not heldout:
        return "The run held no text out, so there is no held-out score."
    return (
        f"Held-out masked-token loss {heldout['heldout_loss']} (perplexity {heldout['perplexity']}) "
        f"at step {heldout['step']}, the last evaluation of the run."
    )


def card_text(facts: CardFacts) -> str:
    """The whole ``README.md``: the YAML header between ``---`` lines, then the text."""
    return f"---\n{card_data(facts).to_yaml()}\n---\n\n{card_body(facts)}"
