"""nertool: multilingual named-entity recognition with XLM-R on PAN-X/WikiANN and local IOB2 files."""

__version__ = "0.1.0"
