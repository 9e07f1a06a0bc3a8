"""Cross-lingual transfer: the source × target table, the sample-size curve, the plan of runs, plots."""

from nertool._lazy import exports

__all__, __getattr__ = exports(
    __name__,
    {
        "TransferTable": "table",
        "Setting": "table",
        "build_table": "table",
        "expand_sources": "table",
        "to_markdown": "render",
        "to_csv": "render",
        "to_json": "render",
        "crossover": "curve",
        "curve_json": "curve",
        "PlannedRun": "plan",
        "RunOutcome": "plan",
        "plan_runs": "plan",
        "TransferResult": "report",
        "build_tables": "report",
        "plot_table": "plots",
        "plot_curve": "plots",
    },
)
