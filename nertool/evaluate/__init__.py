"""Evaluation: score blocks, conventions, confusion matrices, bootstrap, subword losses, reports.

``scores`` (seqeval blocks, strict/partial conventions, confusion), ``split`` (a language's split
scored from word-level predictions), ``bootstrap``, ``losses`` and ``error_analysis`` (the
per-subword loss pass and its aggregation), ``report``, ``markdown`` and ``plots`` (files a report
folder holds).
"""

from nertool._lazy import exports

__all__, __getattr__ = exports(
    __name__,
    {
        "score_block": "scores",
        "token_accuracy": "scores",
        "label_stats": "scores",
        "partial_scores": "conventions",
        "scoring_table": "conventions",
        "ConfusionMatrix": "confusion",
        "word_confusion": "confusion",
        "span_confusion": "confusion",
        "SplitEvaluation": "split",
        "evaluate_split": "split",
        "metrics_document": "split",
        "bootstrap_f1": "bootstrap",
        "paired_bootstrap": "bootstrap",
        "subword_losses": "losses",
        "LossRecord": "error_analysis",
        "error_report": "error_analysis",
        "ReportOptions": "report",
        "write_report": "report",
    },
)
