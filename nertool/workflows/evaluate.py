"""The evaluation jobs: score a trained model on a data source (``evaluate``), compare two (``compare``).

A trained run is loaded once (``records.load_trained_run``: model, labels and the label strategy
it was trained with), each requested split is scored (``evaluate.split``), and the scores travel
as an ``EvaluationRecord`` (what ``metrics.json`` holds) to the report writers and the CLI.
A ``progress`` callback hears of each split before it is scored (the library itself never prints).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nertool.data.harmonise import TypeMap, UnknownTypes, drop_unknown_in_corpus
from nertool.data.sources import SPLITS, Corpus, load_corpus, locate
from nertool.errors import DataError
from nertool.evaluate.error_analysis import LossRecord
from nertool.evaluate.losses import subword_losses
from nertool.evaluate.report import (
    ReportOptions,
    comparison_document,
    error_reports,
    split_name,
    with_confidence_intervals,
    write_errors,
    write_report,
)
from nertool.evaluate.split import SplitEvaluation, evaluate_split, evaluation_record, predictions_conll
from nertool.files import output_folder, safe_child, write_json, write_text
from nertool.labels import LabelMap
from nertool.records import Comparison, EvaluationRecord, TrainedRun, load_trained_run
from nertool.run_folder import RunFolder
from nertool.workflows.training_data import resolve_source

__all__ = [
    "EvaluationProgress",
    "EvaluationResult",
    "EvaluationStep",
    "ReportOptions",
    "compare_models",
    "evaluate_corpus",
    "evaluate_model",
    "write_evaluation_report",
]

log = logging.getLogger("nertool")


@dataclass
class EvaluationResult:
    """Scores of one model on one data source, per language and split."""

    record: EvaluationRecord
    evaluations: list[SplitEvaluation]
    report_dir: Path | None

    @property
    def metrics(self) -> dict[str, Any]:
        """The ``metrics.json`` document."""
        return self.record.to_json()

    @property
    def report(self) -> Path | None:
        """``report.md`` when one was written."""
        return None if self.report_dir is None else RunFolder(self.report_dir).report


@dataclass(frozen=True)
class EvaluationStep:
    """One split about to be worked on, for a progress display.

    ``stage`` is ``scoring`` (predict and score the split) or ``losses`` (the per-subword loss pass
    behind ``errors.md``); ``done`` and ``total`` count sentences over every step of the call, so a
    bar over them moves at the pace of the work, whatever the sizes of the splits. A last ``report``
    step (no language or split, ``done == total``) says the report files are being written.
    """

    stage: str
    language: str
    split: str
    sentences: int
    done: int
    total: int


EvaluationProgress = Callable[[EvaluationStep], None]
OnSplit = Callable[[str, str, int], None]  # (language, split, sentences), before the split is worked on


class _Steps:
    """Turns ``on_split`` calls into ``EvaluationStep`` events with running sentence counts."""

    def __init__(self, progress: EvaluationProgress | None, total: int):
        self.progress, self.total, self.done = progress, total, 0

    def stage(self, name: str) -> OnSplit | None:
        progress = self.progress
        if progress is None:
            return None

        def on_split(language: str, split: str, sentences: int) -> None:
            progress(EvaluationStep(name, language, split, sentences, self.done, self.total))
            self.done += sentences

        return on_split

    def report(self) -> None:
        if self.progress is not None:
            self.progress(EvaluationStep("report", "", "", 0, self.done, self.total))


def _sentence_count(corpus: Corpus, splits: Sequence[str]) -> int:
    return sum(len(corpus.get(language, split) or ()) for language in corpus.languages for split in splits)


def check_splits_found(
    corpus: Corpus, splits: Sequence[str], *, languages: Sequence[str], spec: str, source: str
) -> None:
    """A split that no language of the source has is an error naming the splits it does have.

    (A language without a split another one has is only skipped, with a warning.) A folder's
    splits are looked up by ``locate``, which only lists file names; a file is the one split it
    was read as; a hub dataset without the split has failed to load already.
    """
    found = [s for s in SPLITS if any(s in corpus.splits[language] for language in corpus.languages)]
    missing = [split for split in splits if split not in found]
    if not missing:
        return
    if Path(source).is_dir():
        refs = locate(source, languages, SPLITS)
        found = [s for s in SPLITS if any(ref.split == s for ref in refs)]
    has = ", ".join(found) or "none of train, validation, test"
    kind = "a file is one split, here read as" if Path(source).is_file() else "it has"
    raise DataError(f"no {missing[0]} split in this source ({kind}: {has}); choose --split from those", spec)


def evaluate_model(
    model_dir: str,
    spec: str,
    languages: Sequence[str],
    *,
    splits: Sequence[str],
    report_dir: Path | None = None,
    file_format: str = "auto",
    strict_tags: bool = False,
    options: ReportOptions | None = None,
    progress: EvaluationProgress | None = None,
    label_map: dict[str, str] | None = None,
    unknown_types: UnknownTypes = "error",
) -> EvaluationResult:
    """Score a trained model on a data source; write metrics, predictions and the report when asked.

    ``options.bootstrap`` adds seeded 95 % intervals to every headline F1; the per-subword loss
    pass behind ``errors.md`` runs only when a report folder is written. ``progress`` is called
    before each split is scored (and before its loss pass), with sentence counts.
    ``label_map`` (``--label-map``) renames or drops gold types as the files are read;
    ``unknown_types="drop"`` turns gold types the model does not know into ``O`` (else they are an
    error). Both are counted per file and type under ``label_changes`` in metrics and report.
    """
    options = options or ReportOptions()
    if report_dir is not None:
        output_folder(report_dir, create=False)  # a file or unwritable path fails now, not after scoring
    run = load_trained_run(model_dir)
    source = resolve_source(spec)
    corpus = load_corpus(
        source,
        languages,
        splits,
        file_format=file_format,
        strict_tags=strict_tags,
        type_map=TypeMap(label_map or {}, "--label-map"),
    )
    check_splits_found(corpus, splits, languages=languages, spec=spec, source=source)
    if unknown_types == "drop":
        drop_unknown_in_corpus(corpus, run.label_map)
    losses = report_dir is not None and options.errors
    steps = _Steps(progress, _sentence_count(corpus, splits) * (2 if losses else 1))
    evaluations = evaluate_corpus(
        run.model,
        run.tokenizer,
        run.label_map,
        corpus=corpus,
        splits=splits,
        spec=spec,
        on_split=steps.stage("scoring"),
    )
    record = evaluation_record(evaluations, _record_extra(model_dir, spec, corpus))
    if options.bootstrap > 0:
        metrics = with_confidence_intervals(
            record.to_json(), evaluations, options.bootstrap, seed=options.seed
        )
        record = EvaluationRecord.from_json(metrics)
    if report_dir is not None:
        records = _loss_records(run, evaluations, steps.stage("losses")) if losses else None
        steps.report()
        write_evaluation_report(report_dir, record, evaluations, records=records, options=options)
    return EvaluationResult(record, evaluations, report_dir)


def _record_extra(model_dir: str, spec: str, corpus: Corpus) -> dict[str, Any]:
    """``model``/``data`` of metrics.json, and ``label_changes`` when any gold entity was mapped."""
    extra: dict[str, Any] = {"model": str(model_dir), "data": spec}
    if corpus.changes.counts:
        extra["label_changes"] = corpus.changes.to_json()
    return extra


def _loss_records(
    run: TrainedRun, evaluations: Sequence[SplitEvaluation], on_split: OnSplit | None = None
) -> dict[str, list[LossRecord]]:
    """Per-subword losses of every split, on the labels the run was trained with."""
    records = {}
    for e in evaluations:
        if on_split is not None:
            on_split(e.language, e.split, len(e.sentences))
        records[split_name(e)] = subword_losses(
            run.model, run.tokenizer, run.label_map, sentences=e.sentences, strategy=run.label_strategy
        )
    return records


def write_evaluation_report(
    report_dir: Path,
    metrics: EvaluationRecord | dict[str, Any],
    evaluations: Sequence[SplitEvaluation],
    *,
    records: dict[str, list[LossRecord]] | None = None,
    options: ReportOptions | None = None,
) -> None:
    """metrics.json and predictions always; errors.md/json with loss records; report.md unless turned off."""
    options = options or ReportOptions()
    document = metrics.to_json() if isinstance(metrics, EvaluationRecord) else metrics
    folder = RunFolder(report_dir)
    write_json(folder.metrics, document)
    for evaluation in evaluations:
        name = f"{evaluation.language}-{evaluation.split}"
        write_text(safe_child(folder.predictions, f"{name}.conll"), predictions_conll(evaluation))
    errors = error_reports(records, options) if records else None
    if errors is not None:
        write_errors(report_dir, errors)
    if options.report:
        write_report(report_dir, document, evaluations, errors=errors)


def evaluate_corpus(
    model: Any,
    tokenizer: Any,
    label_map: LabelMap,
    *,
    corpus: Corpus,
    splits: Sequence[str],
    spec: str,
    on_split: OnSplit | None = None,
) -> list[SplitEvaluation]:
    """Every requested split of every language the source has (missing ones logged and skipped);
    ``on_split(language, split, sentences)`` is called before each is scored."""
    evaluations = []
    for language in corpus.languages:
        for split in splits:
            sentences = corpus.get(language, split)
            if sentences is None:
                log.warning("%s has no %s split in %s; skipped", language, split, spec)
                continue
            where = corpus.sources[language][split]
            if on_split is not None:
                on_split(language, split, len(sentences))
            evaluation = evaluate_split(
                model, tokenizer, label_map, sentences=sentences, language=language, split=split, where=where
            )
            evaluations.append(evaluation)
    if not evaluations:
        found = ", ".join(corpus.languages) or "any language"
        raise DataError(f"nothing to evaluate: no split {', '.join(splits)} found for {found}", spec)
    return evaluations


def compare_models(
    model_a: str,
    model_b: str,
    spec: str,
    *,
    languages: Sequence[str],
    split: str = "test",
    n: int = 1000,
    seed: int = 0,
    output: Path | None = None,
    file_format: str = "auto",
) -> Comparison:
    """Paired bootstrap per language: would A still beat B on other sentences drawn like these?"""
    source = resolve_source(spec)
    corpus = load_corpus(source, languages, [split], file_format=file_format)
    check_splits_found(corpus, [split], languages=languages, spec=spec, source=source)
    first, second = (
        evaluate_corpus(run.model, run.tokenizer, run.label_map, corpus=corpus, splits=[split], spec=spec)
        for run in (load_trained_run(m) for m in (model_a, model_b))
    )
    test = comparison_document(first, second, n, seed=seed)
    result = Comparison(model_a, model_b, spec, split, test["n"], test["seed"], test["languages"])
    if output is not None:
        write_json(output, result.to_json())
    return result
