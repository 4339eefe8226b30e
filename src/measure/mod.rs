//! Statistics over raw measurements: summaries, confidence intervals, outliers, speedups.
//!
//! Everything here is a pure function over recorded values, never on the hot path: the driver
//! records raw instants and counts, these functions turn them into numbers, and the results
//! module writes them. Definitions, in short (the README's results section has them in full):
//! - [`Summary`]: mean, median, sample sd (n-1), 95% Student-t CI of the mean, min, max, and
//!   outliers by the modified z-score `|x - median| > 3.5 * 1.4826 * MAD`.
//! - [`Adaptive`]: at least 3 repetitions, stop when the CI half-width is within 2% of the
//!   mean, or at 10 repetitions, or when the time budget is spent.
//! - [`ratio_ci`] / [`ratio_of`]: ratio of means (numerator first) with a Welch CI on the log
//!   scale; [`LogEstimate`] combines ratios of ratios. The analysis commands use the same.
//! - [`paired_ratio_ci`]: the ratio of paired samples (an accelerated and a baseline request
//!   back to back, alternating): geometric mean of the pair ratios, t interval over the pairs.
//! - [`percentile`]: nearest rank, the one percentile definition.
//! - [`nnls`]: least squares with non-negative coefficients (Lawson-Hanson), for the cost
//!   model; [`case_bootstrap`]: intervals of a fit by resampling its cases, seeded.
//! - [`RequestRaw::itl_gaps`]: a decoding step (its streamed events grouped by the server's
//!   counts) spreads its latency evenly over the tokens it delivered.

mod adaptive;
mod agreement;
mod bootstrap;
mod cell;
mod latency;
mod launches;
mod nnls;
mod ratio;
mod request;
mod sample;

pub use adaptive::{Adaptive, Decision};
pub use agreement::{agreement, divergence, Agreement, Difference, Divergence, NEAR_TIE_MARGIN};
pub use bootstrap::{case_bootstrap, percentile_interval, SplitMix64};
pub use cell::{aggregate_tps, batch_decode_tps, cell_metrics, CellMetrics};
pub use latency::{itl_percentiles, percentile, ItlPercentiles};
pub use launches::{
    between_launch_cv, launch_variance, mean_launch_variance, with_launch_variation,
};
pub use nnls::{invert, lstsq, nnls};
pub use ratio::{
    paired_log_estimate, paired_ratio_ci, ratio_ci, ratio_of, LogEstimate, Moments, RatioCi,
};
pub use request::{ChunkRaw, RequestMetrics, RequestRaw, ServerTimingsRaw, TopTwo};
pub use sample::{
    mad_outliers, median_of, t_quantile_975, Sample, SampleError, Summary, MAD_SCALE,
    MEAN_AD_SCALE, OUTLIER_Z,
};
