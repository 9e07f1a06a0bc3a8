"""nertool's score block as a Hugging Face ``evaluate`` metric: ``evaluate.load(nertool.metric_path())``.

The metric script (``nertool_seqeval.py``) is loaded by ``evaluate`` from its file, never imported
by nertool itself, so this package pulls in nothing.
"""
