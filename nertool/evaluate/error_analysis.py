"""Error analysis over subword losses: which tokens, labels and sentences the model finds hardest.

A single F1 says how often the model is wrong, not where. ``nertool.evaluate.losses`` gives every labelled
subword its own cross-entropy loss; this module groups those losses by token, by gold label and by
sentence into JSON-able tables and renders them as Markdown. It needs neither a model nor files,
and it works on ``LossRecord``s rather than on tag sequences, which is why it lives apart from the
scores and confusion matrices of ``nertool.evaluate.scores``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from nertool.tables import markdown_rows


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / denominator if denominator else 0.0


@dataclass(frozen=True)
class LossRecord:
    """One sentence's subword losses and labels, with its word-level tags.

    ``losses[i]`` is NaN where the subword carries no label (special tokens, non-first subwords
    under first-subword labelling); such subwords are shown in tables but never aggregated.
    ``gold_labels``/``pred_labels`` are label names per subword (any placeholder where ignored).
    """

    tokens: tuple[str, ...]
    losses: tuple[float, ...]
    gold_labels: tuple[str, ...]
    pred_labels: tuple[str, ...]
    word_gold: tuple[str, ...] = ()
    word_pred: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    index: int | None = None

    def __post_init__(self) -> None:
        subword = {len(self.tokens), len(self.losses), len(self.gold_labels), len(self.pred_labels)}
        if len(subword) != 1:
            raise ValueError(
                f"sentence {self.index}: tokens, losses, gold_labels, pred_labels differ in length"
            )
        if len(self.word_gold) != len(self.word_pred) or len(self.words) not in (0, len(self.word_gold)):
            raise ValueError(f"sentence {self.index}: words, word_gold, word_pred differ in length")

    def scored(self) -> Iterator[tuple[str, float, str, str]]:
        """(token, loss, gold, pred) for every subword with a finite loss."""
        for token, loss, gold, pred in zip(
            self.tokens, self.losses, self.gold_labels, self.pred_labels, strict=True
        ):
            if not math.isnan(loss):
                yield token, float(loss), gold, pred

    @property
    def total_loss(self) -> float:
        return sum(loss for _, loss, _, _ in self.scored())


def _loss_rows(groups: dict[str, list[float]], key: str) -> list[dict[str, Any]]:
    return [
        {key: name, "count": len(losses), "total_loss": sum(losses), "mean_loss": sum(losses) / len(losses)}
        for name, losses in groups.items()
    ]


def top_tokens(records: Sequence[LossRecord], k: int = 20, min_count: int = 1) -> dict[str, list[dict]]:
    """Subword tokens with the highest total loss (frequent trouble) and mean loss (hard cases).

    ``min_count`` keeps one-off tokens out of the by-mean ranking, where they would dominate.
    """
    groups: dict[str, list[float]] = defaultdict(list)
    for record in records:
        for token, loss, _, _ in record.scored():
            groups[token].append(loss)
    rows = _loss_rows(groups, "token")
    by_total = sorted(rows, key=lambda row: -row["total_loss"])[:k]
    frequent = [row for row in rows if row["count"] >= min_count]
    return {"by_total": by_total, "by_mean": sorted(frequent, key=lambda row: -row["mean_loss"])[:k]}


def loss_per_label(records: Sequence[LossRecord]) -> list[dict[str, Any]]:
    """Loss and error count per gold subword label, highest mean loss first."""
    groups: dict[str, list[float]] = defaultdict(list)
    errors: Counter[str] = Counter()
    for record in records:
        for _, loss, gold, pred in record.scored():
            groups[gold].append(loss)
            errors[gold] += gold != pred
    rows = [{**row, "errors": errors[row["label"]]} for row in _loss_rows(groups, "label")]
    return sorted(rows, key=lambda row: -row["mean_loss"])


def _sentence_view(position: int, record: LossRecord) -> dict[str, Any]:
    scored = list(record.scored())
    return {
        "index": position if record.index is None else record.index,
        "total_loss": record.total_loss,
        "mean_loss": _ratio(record.total_loss, len(scored)),
        "rows": [
            {"token": token, "gold": gold, "pred": pred, "loss": None if math.isnan(loss) else float(loss)}
            for token, loss, gold, pred in zip(
                record.tokens, record.losses, record.gold_labels, record.pred_labels, strict=True
            )
        ],
        "words": list(record.words),
        "word_gold": list(record.word_gold),
        "word_pred": list(record.word_pred),
    }


def worst_sentences(records: Sequence[LossRecord], n: int = 10) -> list[dict[str, Any]]:
    """The ``n`` sentences with the highest total loss, each with its subword table."""
    ranked = sorted(enumerate(records), key=lambda item: -item[1].total_loss)[:n]
    return [_sentence_view(position, record) for position, record in ranked]


def error_report(
    records: Sequence[LossRecord], k: int = 20, n: int = 10, *, min_count: int = 1
) -> dict[str, Any]:
    """All error-analysis tables as one JSON-able dict (what ``render_errors_markdown`` renders)."""
    return {
        "top_tokens": top_tokens(records, k, min_count),
        "loss_per_label": loss_per_label(records),
        "worst_sentences": worst_sentences(records, n),
    }


def _markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    return markdown_rows(headers, rows, missing="")


def _sentence_markdown(sentence: dict[str, Any]) -> list[str]:
    title = f"### Sentence {sentence['index']}: total loss {sentence['total_loss']:.3f}"
    lines = [title + f" (mean {sentence['mean_loss']:.3f})", ""]
    rows = [(r["token"], r["gold"], r["pred"], r["loss"]) for r in sentence["rows"]]
    lines += _markdown_table(("token", "gold", "pred", "loss"), rows)
    if sentence["words"]:
        words = zip(sentence["words"], sentence["word_gold"], sentence["word_pred"], strict=True)
        lines += ["", *_markdown_table(("word", "gold", "pred"), words)]
    return [*lines, ""]


def _section(title: str, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> list[str]:
    return [f"## {title}", "", *_markdown_table(columns, ([row[c] for c in columns] for row in rows)), ""]


def render_errors_markdown(report: dict[str, Any]) -> str:
    """Markdown for an ``error_report``: token and label tables, then one table per worst sentence."""
    token_columns = ("token", "count", "total_loss", "mean_loss")
    label_columns = ("label", "count", "errors", "total_loss", "mean_loss")
    lines = [
        *_section("Subword tokens by total loss", token_columns, report["top_tokens"]["by_total"]),
        *_section("Subword tokens by mean loss", token_columns, report["top_tokens"]["by_mean"]),
        *_section("Loss per gold label", label_columns, report["loss_per_label"]),
        "## Sentences with the highest loss",
        "",
    ]
    for sentence in report["worst_sentences"]:
        lines += _sentence_markdown(sentence)
    return "\n".join(lines).rstrip() + "\n"
