"""The ``export`` job: a trained run's model as a self-contained folder for another runtime (ONNX)."""

from __future__ import annotations

from pathlib import Path

from nertool.model.export import ExportResult, export_onnx
from nertool.model.onnx_backend import ExportFormat


def export_model(
    run: str | Path,
    output: str | Path | None = None,
    *,
    format: ExportFormat = "onnx",
    quantize: bool = False,
    overwrite: bool = False,
) -> ExportResult:
    """Export the model of a run (or model) folder; ONNX is the one format so far."""
    if format != "onnx":  # the CLI offers only the formats there are; a Python caller may not
        raise ValueError(f"unknown export format {format!r}; use 'onnx'")
    return export_onnx(run, output, quantize=quantize, overwrite=overwrite)
