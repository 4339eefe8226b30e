//! Statistics over raw measurements: summaries, confidence intervals, outliers, speedups.


