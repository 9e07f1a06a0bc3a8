"""The evaluation report: what the scores are made of, as JSON, CSV, PNG and one Markdown page.

A headline F1 hides the things that decide what to do next: how imbalanced the data is (most
words are ``O``), which types are confused with which, how much the scoring convention
matters, which tokens and sentences the model finds hardest, and how much the score would
move on another sample of sentences. Functions here turn evaluations (``evaluate``) and
subword losses (``losses``) into plain data; ``markdown`` turns that data into Markdown, and
``write_*`` functions put files in a report folder. Nothing here runs a model.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nertool.evaluate.bootstrap import bootstrap_f1, paired_bootstrap
from nertool.evaluate.confusion import span_confusion, span_type_confusion, word_confusion
from nertool.evaluate.conventions import scoring_table
from nertool.evaluate.error_analysis import LossRecord, error_report
from nertool.evaluate.markdown import render_all_errors_markdown, render_report_markdown
from nertool.evaluate.plots import Normalize, plot_confusion
from nertool.evaluate.scores import label_stats
from nertool.evaluate.split import SplitEvaluation
from nertool.files import safe_child, write_json, write_text
from nertool.run_folder import RunFolder, seed_folder

SEED_KEYS = ("f1", "strict_f1", "precision", "recall", "macro_f1", "token_accuracy")
NORMALIZATIONS: tuple[tuple[Normalize, str], ...] = (
    ("none", "counts"),
    ("row", "row-normalised, diagonal = recall"),
    ("column", "column-normalised, diagonal = precision"),
)


@dataclass(frozen=True)
class ReportOptions:
    """What ``evaluate`` adds to metrics and predictions; defaults match the command line."""

    bootstrap: int = 0
    seed: int = 0
    errors: bool = True
    report: bool = True
    top_tokens: int = 20
    worst_sentences: int = 10
    min_count: int = 3


def split_name(evaluation: SplitEvaluation) -> str:
    return f"{evaluation.language}-{evaluation.split}"


# ---------------------------------------------------------------- data


def with_confidence_intervals(
    metrics: dict[str, Any], evaluations: Sequence[SplitEvaluation], n: int, *, seed: int = 0
) -> dict[str, Any]:
    """A copy of ``metrics`` whose every headline block has ``f1_ci: {low, high, n, seed}`` (95 %)."""
    languages = {
        lang: {split: dict(block) for split, block in splits.items()}
        for lang, splits in metrics["languages"].items()
    }
    for evaluation in evaluations:
        interval = bootstrap_f1(evaluation.gold, evaluation.predicted, n=n, seed=seed)
        languages[evaluation.language][evaluation.split]["f1_ci"] = {
            "low": interval["low"],
            "high": interval["high"],
            "n": n,
            "seed": seed,
        }
    return {**metrics, "languages": languages}


def confusion_document(evaluation: SplitEvaluation) -> dict[str, Any]:
    """Word-tag confusion (top-level keys) with the span-level entity-type confusion beside it."""
    spans = span_confusion(evaluation.gold, evaluation.predicted)
    return {
        **word_confusion(evaluation.gold, evaluation.predicted).to_json(),
        "rows": "true",
        "columns": "predicted",
        "entity_types": spans["type_confusion"],
        "span_outcomes": {"per_type": spans["per_type"], "totals": spans["totals"]},
    }


def imbalance_row(evaluation: SplitEvaluation) -> dict[str, Any]:
    """Gold label statistics of a split, with the predicted entity counts beside the gold ones."""
    gold, predicted = label_stats(evaluation.gold), label_stats(evaluation.predicted)
    return {
        "language": evaluation.language,
        "split": evaluation.split,
        **gold,
        "predicted_entity_counts": predicted["entity_counts"],
    }


def _interval_text(block: Mapping[str, Any]) -> str:
    interval = block.get("f1_ci")
    return f"{interval['low']:.3f}–{interval['high']:.3f}" if interval else ""


def score_rows(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per language and split: micro and macro F1 side by side, token accuracy beside them."""
    keys = {
        "micro_f1": "f1",
        "macro_f1": "macro_f1",
        "strict_f1": "strict_f1",
        "precision": "precision",
        "recall": "recall",
        "token_accuracy": "token_accuracy",
    }
    return [
        {
            "language": language,
            "split": split,
            "sentences": block["sentences"],
            "f1_ci": _interval_text(block),
            **{column: block.get(key) for column, key in keys.items()},
        }
        for language, splits in metrics["languages"].items()
        for split, block in splits.items()
    ]


def per_type_rows(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {"language": language, "split": split, "type": kind, **row}
        for language, splits in metrics["languages"].items()
        for split, block in splits.items()
        for kind, row in block.get("per_type", {}).items()
    ]


def convention_rows(evaluations: Sequence[SplitEvaluation]) -> list[dict[str, Any]]:
    """The three scoring conventions per split; ``disagrees`` marks an F1 off the headline."""
    return [
        {"language": e.language, "split": e.split, **row}
        for e in evaluations
        for row in scoring_table(e.gold, e.predicted)
    ]


def error_reports(records: Mapping[str, Sequence[LossRecord]], options: ReportOptions) -> dict[str, Any]:
    """``error_analysis.error_report`` per split name."""
    return {
        name: error_report(
            split_records, options.top_tokens, options.worst_sentences, min_count=options.min_count
        )
        for name, split_records in records.items()
    }


def report_document(
    metrics: Mapping[str, Any], evaluations: Sequence[SplitEvaluation], errors: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Everything ``report.md`` shows, as data (written as ``report.json``)."""
    return {
        "model": metrics.get("model"),
        "data": metrics.get("data"),
        "scores": score_rows(metrics),
        "per_type": per_type_rows(metrics),
        "conventions": convention_rows(evaluations),
        "imbalance": [imbalance_row(e) for e in evaluations],
        "label_changes": list(metrics.get("label_changes", [])),
        "errors": {
            name: {"by_total": r["top_tokens"]["by_total"][:5], "loss_per_label": r["loss_per_label"]}
            for name, r in (errors or {}).items()
        },
    }


def comparison_document(
    a: Sequence[SplitEvaluation], b: Sequence[SplitEvaluation], n: int, *, seed: int = 0
) -> dict[str, Any]:
    """Paired bootstrap of F1(A) - F1(B) per language and split, over the same gold sentences."""
    others = {(e.language, e.split): e for e in b}
    languages: dict[str, Any] = {}
    for first in a:
        second = others[(first.language, first.split)]
        test = paired_bootstrap(first.gold, first.predicted, second.predicted, n=n, seed=seed)
        languages.setdefault(first.language, {})[first.split] = {**test, "sentences": len(first.sentences)}
    return {"n": n, "seed": seed, "languages": languages}


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0.0 for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def seed_block(blocks: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """Mean and std over seeds of one language split.

    ``f1``, ``strict_f1``, ... hold the means, so code that reads one-run blocks reads these too.
    """
    summary: dict[str, Any] = {}
    for key in SEED_KEYS:
        values = [block[key] for block in blocks.values() if key in block]
        if values:
            summary[key], summary[f"{key}_std"] = _mean_std(values)
            summary[f"{key}_mean"] = summary[key]
    first = next(iter(blocks.values()))
    return {
        **summary,
        "sentences": first["sentences"],
        "seqeval_mode": first.get("seqeval_mode"),
        "seeds": list(blocks),
        "per_seed": {str(seed): dict(block) for seed, block in blocks.items()},
    }


def seed_summary(per_seed: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """Top-level ``metrics.json`` of a multi-seed run: per language and split, mean and std over seeds."""
    pairs = dict.fromkeys(
        (lang, split)
        for m in per_seed.values()
        for lang, splits in m["languages"].items()
        for split in splits
    )
    languages: dict[str, dict[str, Any]] = {}
    for lang, split in pairs:
        blocks = {
            s: m["languages"][lang][split]
            for s, m in per_seed.items()
            if split in m["languages"].get(lang, {})
        }
        languages.setdefault(lang, {})[split] = seed_block(blocks)
    return {
        "languages": languages,
        "seeds": list(per_seed),
        "runs": {str(s): seed_folder(s) for s in per_seed},
    }


# ---------------------------------------------------------------- files


def write_confusions(report_dir: Path, evaluation: SplitEvaluation) -> list[str]:
    """``confusion/<name>.json`` and CSVs, and six heatmaps; returns PNG paths relative to ``report_dir``."""
    name, folder = split_name(evaluation), report_dir / "confusion"
    write_json(safe_child(folder, f"{name}.json"), confusion_document(evaluation))
    tags = word_confusion(evaluation.gold, evaluation.predicted)
    types = span_type_confusion(evaluation.gold, evaluation.predicted)
    write_text(safe_child(folder, f"{name}.csv"), tags.to_csv())
    write_text(safe_child(folder, f"{name}-types.csv"), types.to_csv())
    images = []
    for kind, matrix in (("tags", tags), ("types", types)):
        for normalize, description in NORMALIZATIONS:
            path = safe_child(folder, f"{name}-{kind}-{normalize if normalize != 'none' else 'counts'}.png")
            title = f"{name}: {'word tags' if kind == 'tags' else 'entity types'}, {description}"
            plot_confusion(matrix, path, normalize, title=title)
            images.append(path.relative_to(report_dir).as_posix())
    return images


def write_errors(report_dir: Path, errors: Mapping[str, Any]) -> None:
    write_json(report_dir / "errors.json", errors)
    write_text(report_dir / "errors.md", render_all_errors_markdown(errors))


def write_report(
    report_dir: Path,
    metrics: Mapping[str, Any],
    evaluations: Sequence[SplitEvaluation],
    *,
    errors: Mapping[str, Any] | None,
) -> Path:
    """Confusion files, ``report.json`` and ``report.md`` (PNGs beside it); returns the Markdown path."""
    images = {split_name(e): write_confusions(report_dir, e) for e in evaluations}
    document = report_document(metrics, evaluations, errors)
    write_json(report_dir / "report.json", document)
    page = RunFolder(report_dir).report
    write_text(page, render_report_markdown(document, images))
    return page
