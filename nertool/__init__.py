"""nertool: multilingual named-entity recognition with XLM-R on PAN-X/WikiANN and local IOB2 files."""

__version__ = "0.1.0"


def metric_path() -> str:
    """The file of nertool's ``evaluate`` metric: ``evaluate.load(nertool.metric_path())`` works offline."""
    from pathlib import Path

    return str(Path(__file__).resolve().parent / "metric" / "nertool_seqeval.py")
