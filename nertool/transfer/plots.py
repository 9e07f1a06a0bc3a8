"""PNG figures for transfer experiments: the source × target heatmap and the sample-size curve.

Kept apart from ``transfer.py`` so that building and rendering tables never imports matplotlib.
The heatmap is the shared ``plots.plot_heatmap``; the curve is drawn here on a bare ``Figure`` with
the Agg canvas, not through ``pyplot``: no global state, no GUI backend, safe in worker processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nertool.evaluate.plots import plot_heatmap
from nertool.transfer.table import TransferTable

__all__ = ["plot_curve", "plot_table"]


def plot_table(table: TransferTable, path: str | Path) -> Path:
    """Heatmap of test F1, rows = training settings, columns = test languages; missing cells grey.

    The colour scale is fixed at [0, 1] (wider only if scores are percentages) so that pictures of
    different experiments compare.
    """
    values = [list(row.scores) for row in table.rows]
    present = [v for row in values for v in row if v is not None]
    return plot_heatmap(
        [row.name for row in table.rows],
        list(table.eval_languages),
        values,
        path,
        title=f"Test F1 (selection: {table.selection})",
        xlabel="test language",
        ylabel="training languages",
        vmin=0.0,
        vmax=max([1.0, *present]),
    )


def plot_curve(
    sizes: Sequence[int],
    f1s: Sequence[float],
    zero_shot: float,
    *,
    crossover: float | None,
    path: str | Path,
    target_lang: str,
    source_name: str,
) -> Path:
    """In-language F1 against training-set size (log x), with the zero-shot level and the crossover.

    The dashed line is what a model trained on ``source_name`` scores on ``target_lang`` with no
    target-language labels; the marker shows how many such labels match it.
    """
    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(list(sizes), list(f1s), marker="o", label=f"trained on {target_lang}")
    ax.axhline(zero_shot, linestyle="--", color="grey", label=f"zero-shot from {source_name}")
    if crossover is not None:
        label = f"crossover ≈ {crossover:,.0f} sentences"
        ax.plot(
            [crossover], [zero_shot], marker="*", markersize=14, color="red", linestyle="none", label=label
        )
    ax.set_xscale("log")
    ax.set_xlabel("training sentences (target language)")
    ax.set_ylabel("test F1")
    ax.set_title(f"{target_lang}: in-language training vs zero-shot transfer")
    ax.legend(loc="lower right")
    return _save(fig, path)


def _save(fig: Figure, path: str | Path) -> Path:
    """Write the figure as PNG, creating the folder; returns the path written."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(out, format="png", dpi=120)
    return out
