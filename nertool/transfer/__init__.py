"""Cross-lingual transfer: the source × target table, the sample-size curve, the plan of runs, plots."""
