"""PNG pictures of analysis results: annotated heatmaps for confusion matrices and transfer tables.

matplotlib is imported inside each function, with the non-interactive Agg backend, so importing
``nertool`` stays fast and plotting works on machines without a display. Figures are built with
``matplotlib.figure.Figure`` rather than pyplot, so nothing lingers in a global figure registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from nertool.evaluate.confusion import ConfusionMatrix

if TYPE_CHECKING:
    from matplotlib.axes import Axes

Normalize = Literal["none", "row", "column"]
_MISSING_COLOUR = "lightgrey"


def _figure_size(rows: int, cols: int) -> tuple[float, float]:
    """Room for every cell label: about 0.7 inch per column and 0.5 per row, never tiny."""
    return max(4.5, 1.8 + 0.7 * cols), max(3.5, 1.5 + 0.5 * rows)


def _annotate(axes: Axes, values: Sequence[Sequence[float | None]], texts: Sequence[Sequence[str]]) -> None:
    """Write each cell's text, white on the darker half of the colour scale, black elsewhere."""
    low, high = axes.images[0].get_clim()
    middle = (low + high) / 2
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            dark = value is not None and high > low and value > middle
            axes.text(
                j, i, texts[i][j], ha="center", va="center", fontsize=8, color="white" if dark else "black"
            )


def _draw(
    values: Sequence[Sequence[float | None]],
    texts: Sequence[Sequence[str]],
    axis_labels: tuple[Sequence[str], Sequence[str]],
    titles: tuple[str, str, str],
    path: str | Path,
    limits: tuple[float | None, float | None] = (None, None),
) -> Path:
    """One heatmap, ``None`` cells grey; ``titles``: (title, xlabel, ylabel); ``limits``: colour range."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib.figure import Figure

    rows, cols = axis_labels
    grid = np.ma.masked_invalid(
        np.array([[np.nan if v is None else v for v in row] for row in values], float)
    )
    cmap = matplotlib.colormaps["Blues"].with_extremes(bad=_MISSING_COLOUR)
    figure = Figure(figsize=_figure_size(len(rows), len(cols)), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(grid, cmap=cmap, aspect="auto", vmin=limits[0], vmax=limits[1])
    figure.colorbar(image, ax=axes)
    axes.set_xticks(range(len(cols)), labels=list(cols), rotation=45, ha="right")
    axes.set_yticks(range(len(rows)), labels=list(rows))
    axes.set_title(titles[0])
    axes.set_xlabel(titles[1])
    axes.set_ylabel(titles[2])
    _annotate(axes, values, texts)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, format="png", dpi=120)
    return target


def _check_grid(rows: Sequence[str], cols: Sequence[str], values: Sequence[Sequence[object]]) -> None:
    if not rows or not cols:
        raise ValueError("a heatmap needs at least one row and one column")
    if len(values) != len(rows) or any(len(row) != len(cols) for row in values):
        raise ValueError(
            f"values must be {len(rows)} rows of {len(cols)} cells, one per row and column label"
        )


def plot_heatmap(
    rows: Sequence[str],
    cols: Sequence[str],
    values: Sequence[Sequence[float | None]],
    path: str | Path,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    *,
    vmin: float | None = None,
    vmax: float | None = None,
) -> Path:
    """A generic annotated heatmap (transfer tables, per-type scores); ``None`` cells are grey and blank.

    Values are annotated with two decimals; ``vmin``/``vmax`` fix the colour range (0 and 1 for
    scores, so that pictures of different runs compare). Returns the path of the written PNG.
    """
    _check_grid(rows, cols, values)
    texts = [["" if v is None else f"{v:.2f}" for v in row] for row in values]
    return _draw(values, texts, (rows, cols), (title, xlabel, ylabel), path, (vmin, vmax))


def _matrix_values(matrix: ConfusionMatrix, normalize: Normalize) -> list[list[float]]:
    if normalize == "row":
        return matrix.row_normalized()
    if normalize == "column":
        return matrix.column_normalized()
    if normalize == "none":
        return [[float(cell) for cell in row] for row in matrix.counts]
    raise ValueError(f"normalize must be 'none', 'row' or 'column', not {normalize!r}")


def plot_confusion(
    matrix: ConfusionMatrix, path: str | Path, normalize: Normalize = "none", *, title: str = ""
) -> Path:
    """Confusion-matrix heatmap: true labels down the y axis, predicted labels along the x axis.

    ``normalize="row"`` puts per-label recall on the diagonal, ``"column"`` per-label precision;
    ``"none"`` shows raw counts. Returns the path of the written PNG.
    """
    values = _matrix_values(matrix, normalize)
    labels = list(matrix.labels)
    _check_grid(labels, labels, values)
    texts = [[f"{v:.0f}" if normalize == "none" else f"{v:.2f}" for v in row] for row in values]
    heading = title or (
        "confusion matrix" if normalize == "none" else f"confusion matrix ({normalize}-normalised)"
    )
    limits = (None, None) if normalize == "none" else (0.0, 1.0)
    return _draw(values, texts, (labels, labels), (heading, "predicted", "true"), path, limits)
