"""The text sections of a model card (``nertool.hub.card``): model, results, usage, data, limitations.

Each function turns ``CardFacts`` into a few lines of Markdown. What the card says about usage
follows from how the run labelled subwords (``model.label_strategy``): the ``transformers``
pipeline with ``aggregation_strategy="first"`` reads each word's first subword, which is right
for ``first`` and ``all`` and wrong for any strategy that labels another subword.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nertool.config import Recipe
from nertool.langcode import language_of
from nertool.records import EvaluationRecord

if TYPE_CHECKING:
    from nertool.hub.card import CardFacts

FIRST_SUBWORD_STRATEGIES = ("first", "all")  # the pipeline's "first" aggregation reads these right
_EXAMPLE = "Angela Merkel besuchte im Mai die Universität Oxford."


@dataclass(frozen=True)
class CardDataset:
    """How a card's YAML names the data a language was scored on (``EvalResult.dataset_*``)."""

    type: str
    name: str
    config: str | None


def dataset_of(recipe: Recipe, name: str) -> CardDataset:
    """The Hub data set (``hub:NAME[:CONFIG]``), the bundled sample, or a local corpus by its name.

    ``name`` is a language of ``data.source`` or a ``corpus:language`` set of ``data.eval_sources``.
    """
    entries = {column: entry.source for entry in recipe.data.eval_sources or [] for column in entry.columns}
    return _dataset(entries.get(name, recipe.data.source), language_of(name))


def _dataset(source: str, language: str) -> CardDataset:
    from nertool.data.sources import is_hub_spec, parse_hub_spec

    if source == "sample":
        return CardDataset("nertool-sample", f"nertool sample ({language})", language)
    if is_hub_spec(source):
        name, config = parse_hub_spec(source)
        config = None if config is None else config.replace("{lang}", language)
        return CardDataset(name, f"{name} {config or ''}".strip(), config)
    local = Path(source.split("{lang}")[0]).name or "corpus"
    return CardDataset(local, f"local corpus {local} ({language})", language)


def reported_split(metrics: EvaluationRecord, language: str) -> tuple[str, Any] | None:
    """(split, scores) a card reports for a language: test, else validation, else nothing."""
    for split in ("test", "validation"):
        block = metrics.block(language, split)
        if block is not None:
            return split, block
    return None


def is_panx(recipe: Recipe) -> bool:
    """PAN-X (WikiANN) data: silver labels from Wikipedia links."""
    source = recipe.data.source.lower()
    return recipe.data.format == "panx" or any(mark in source for mark in ("pan-x", "panx", "wikiann"))


# ---------------------------------------------------------------- the model


def model_line(facts: CardFacts) -> str:
    """Where the weights came from: a scratch encoder, a Hub model, or a local model folder."""
    from nertool.model.build import is_scratch, scratch_size

    name = facts.recipe.model.name
    verb = "fine-tuned from" if facts.kind == "ner" else "pre-trained further from"
    if is_scratch(name):
        size = scratch_size(name)
        return (
            f"The encoder is a randomly initialised XLM-R-style encoder of size `{name[len('scratch:') :]}` "
            f"({size.layers} layers, hidden size {size.hidden}, {size.heads} heads) with a Unigram tokenizer "
            "trained on the run's text; it has no pre-trained base model."
        )
    if Path(name).exists() or name.startswith((".", "/")):
        return f"It was {verb} a local model (`{Path(name).name}`)."
    return f"It was {verb} [`{name}`](https://huggingface.co/{name})."


def results_table(facts: CardFacts) -> str:
    """Entity-level scores per language; languages the model never saw labelled are zero-shot."""
    if facts.metrics is None or not facts.metrics.languages:
        return "No scores were recorded."
    modes: set[str] = set()
    rows = [
        "| Language | Split | F1 | Precision | Recall | Sentences | Seen in training |",
        "|---|---|---|---|---|---|---|",
    ]
    for language in facts.metrics.languages:
        found = reported_split(facts.metrics, language)
        if found is None:
            continue
        split, block = found
        modes.add(str(block.get("seqeval_mode", "default")))
        seen = "yes" if language_of(language) in facts.train_languages else "no (zero-shot)"
        cells = [f"{float(block[m]):.4f}" for m in ("f1", "precision", "recall")]
        rows.append(f"| {language} | {split} | {' | '.join(cells)} | {block.get('sentences', '')} | {seen} |")
    note = (
        f"Entity-level micro scores (seqeval, {', '.join(sorted(modes))} mode: an entity counts when its "
        "span and type match exactly) of the kept model, from `metrics.json`."
    )
    return "\n".join(rows) + "\n\n" + note


# ---------------------------------------------------------------- usage


def ner_usage(facts: CardFacts) -> str:
    """The ``transformers`` pipeline (and why ``first``), then nertool's ``Tagger``."""
    name = facts.model_name
    lines = [
        "```python",
        "from transformers import pipeline",
        "",
        f'ner = pipeline("token-classification", model="{name}", aggregation_strategy="first")',
        f'ner("{_EXAMPLE}")',
        "```",
        "",
        '`aggregation_strategy="first"` gives each word the label of its first subword, the subword '
        'the model was trained to label; with `"simple"` the pipeline groups subwords by their own '
        "labels and returns fragments of words.",
        *strategy_note(facts.recipe.model.label_strategy),
        "",
        "With nertool (`pip install nertool`), on text, whole files or word lists:",
        "",
        "```python",
        "from nertool.predict import Tagger",
        "",
        f'tagger = Tagger.load("{name}")',
        f'tagger.tag("{_EXAMPLE}")',
        "```",
    ]
    return "\n".join(lines)


def strategy_note(strategy: str) -> list[str]:
    if strategy == "first":
        return []
    if strategy in FIRST_SUBWORD_STRATEGIES:
        return [
            "",
            f'This model was trained with `label_strategy = "{strategy}"` (every subword labelled: the '
            "first with the word's tag, the rest with its `I-` tag), so the first subword's label is still "
            "the word's: the pipeline reads it right.",
        ]
    return [
        "",
        f'**Warning:** this model was trained with `label_strategy = "{strategy}"`, which does not label a '
        f"word on its first subword{_STRATEGY_DETAIL.get(strategy, '')}: "
        '`pipeline(aggregation_strategy="first")` does not read this model correctly (it reads the wrong '
        "subword, and the pipeline's entities will be wrong). Decode with the strategy the model was "
        "trained with: nertool's `Tagger` reads it from `config.json` (`nertool_label_strategy`).",
    ]


# Where a strategy puts a word's label, for the card's warning.
_STRATEGY_DETAIL = {
    "first_content": ' but on its first subword that is not a bare "▁" piece (the word-start marker '
    "standing alone)",
}


def mlm_usage(facts: CardFacts) -> str:
    """Fill a mask, or fine-tune the encoder for NER with nertool."""
    name = facts.model_name
    return "\n".join(
        [
            "```python",
            "from transformers import pipeline",
            "",
            f'fill = pipeline("fill-mask", model="{name}")',
            'fill("Paris ist die Hauptstadt von <mask>.")',
            "```",
            "",
            f'To fine-tune it for NER with nertool, set `model.name = "{name}"` in a `train` recipe; the '
            "saved tokenizer declares the encoder's full position limit, so any `model.max_length` up to "
            "it works.",
        ]
    )


# ---------------------------------------------------------------- data and limitations


def data_lines(facts: CardFacts) -> str:
    """Where the training sentences (or text) came from, per language."""
    recipe = facts.recipe
    if facts.kind == "mlm":
        p = recipe.pretrain
        sources = ", ".join(f"`{s}`" for s in (p.text or [recipe.data.source]))
        length = f"{p.steps} steps" if p.steps else f"{recipe.train.epochs:g} epochs"
        lines = [
            f"Text: {sources}; languages: {', '.join(facts.train_languages) or 'all in the sources'}.",
            f"Masked-LM objective: {p.mlm_probability:g} of subwords masked"
            f"{' (whole words)' if p.whole_word_masking else ''}, blocks of {p.block_size}, {length}.",
        ]
        return "\n".join(f"- {line}" for line in lines)
    counts = facts.metrics.train_sentences if facts.metrics is not None else {}
    trained = ", ".join(
        f"{lang} ({counts[lang]} sentences)" if lang in counts else lang for lang in facts.train_languages
    )
    lines = [
        f"Source: `{recipe.data.source}`.",
        f"Training languages: {trained}.",
        f"Evaluation languages: {', '.join(recipe.eval_languages)}.",
        f"Subword labels: `{recipe.model.label_strategy}`; windows of at most {recipe.model.max_length} "
        "subwords.",
    ]
    return "\n".join(f"- {line}" for line in lines)


def limitation_lines(facts: CardFacts) -> list[str]:
    """Where the card's numbers stop being true, for this run's data and model."""
    from nertool.model.build import is_scratch

    recipe, lines = facts.recipe, []
    if facts.kind == "ner" and is_panx(recipe):
        lines.append(
            "PAN-X (WikiANN) labels are silver: made automatically from Wikipedia links, not by "
            "annotators. Some are wrong, and the scores measure agreement with them."
        )
        lines.append("The text is Wikipedia: expect lower scores on news, social media or other domains.")
    if recipe.data.source == "sample" and facts.kind == "ner":
        lines.append("The bundled sample is a few hundred sentences: this is a demonstration model.")
    unseen = [lang for lang in facts.languages if lang not in facts.train_languages]
    if facts.kind == "ner" and unseen:
        lines.append(
            f"Scores for {', '.join(unseen)} are zero-shot: the model saw no labelled sentence in "
            "them. They measure cross-lingual transfer and vary with the seed and the checkpoint kept."
        )
    if is_scratch(recipe.model.name):
        lines.append(
            "A small scratch encoder is not XLM-R: it has read only the run's own text, knows few words "
            "and transfers poorly across languages; expect far lower scores than a pre-trained encoder's."
        )
    if facts.kind == "ner":
        lines.append(
            "The model knows only the entity types listed above, and text unlike its test split "
            "(domain, spelling, era) scores lower."
        )
    else:
        lines.append("A held-out loss says how well masked words are predicted, not how well a task will go.")
    return lines
