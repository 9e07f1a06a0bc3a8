"""Benchmarks: nertool against the Hugging Face baselines, measured in the same run.

Each scenario (``bench/<name>.py``) times a baseline (``transformers.Trainer``, the transformers
example's ``tokenize_and_align_labels``, ``transformers.pipeline``) and nertool on the same data,
model and settings, back to back in one process, checks that both produce the same (or equally
good) output, and writes ``bench/results/<scenario>.json``. Run ``python -m bench.run`` (``make
bench``) or ``python -m bench.run --quick`` (``make bench-quick``, a minute on 2 CPU cores).
"""
