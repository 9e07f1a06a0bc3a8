"""Evaluation: score blocks, conventions, confusion matrices, bootstrap, subword losses, reports.

``scores`` (seqeval blocks, strict/partial conventions, confusion), ``split`` (a language's split
scored from word-level predictions), ``bootstrap``, ``losses`` and ``error_analysis`` (the
per-subword loss pass and its aggregation), ``report``, ``markdown`` and ``plots`` (files a report
folder holds).
"""
