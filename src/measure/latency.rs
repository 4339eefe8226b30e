//! Inter-token latency percentiles with an HDR histogram.
//!
//! Gaps are recorded in nanoseconds with three significant digits (a relative error of at
//! most 0.1%), from 1 ns to one hour; longer gaps are clamped to an hour. The gaps of all
//! repetitions of a cell are pooled before the percentiles are read.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Largest gap recorded exactly (longer ones are clamped): one hour, in nanoseconds.
const MAX_GAP_NS: u64 = 3_600_000_000_000;

/// Inter-token latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ItlPercentiles {
    /// Median gap (milliseconds).
    pub p50_ms: f64,
    /// 90th percentile gap (milliseconds).
    pub p90_ms: f64,
    /// 99th percentile gap (milliseconds).
    pub p99_ms: f64,
}

/// p50/p90/p99 of the gaps, or `None` when there are none.
pub fn itl_percentiles(gaps: &[Duration]) -> Option<ItlPercentiles> {
    if gaps.is_empty() {
        return None;
    }
    let mut histogram = Histogram::<u64>::new_with_bounds(1, MAX_GAP_NS, 3)
        .expect("constant histogram bounds are valid");
    for gap in gaps {
        let ns = u64::try_from(gap.as_nanos()).unwrap_or(u64::MAX);
        histogram.saturating_record(ns.min(MAX_GAP_NS));
    }
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1e6;
    Some(ItlPercentiles {
        p50_ms: ms(0.50),
        p90_ms: ms(0.90),
        p99_ms: ms(0.99),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within_hdr_precision(got: f64, want: f64) -> bool {
        (got - want).abs() <= want * 1e-3
    }

    #[test]
    fn percentiles_of_one_to_a_hundred_ms() {
        let gaps: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = itl_percentiles(&gaps).unwrap();
        assert!(within_hdr_precision(p.p50_ms, 50.0), "{p:?}");
        assert!(within_hdr_precision(p.p90_ms, 90.0), "{p:?}");
        assert!(within_hdr_precision(p.p99_ms, 99.0), "{p:?}");
    }

    #[test]
    fn a_rare_stall_shows_only_in_p99() {
        let mut gaps = vec![Duration::from_millis(20); 98];
        gaps.extend([Duration::from_millis(500); 2]);
        let p = itl_percentiles(&gaps).unwrap();
        assert!(within_hdr_precision(p.p50_ms, 20.0) && within_hdr_precision(p.p90_ms, 20.0));
        assert!(within_hdr_precision(p.p99_ms, 500.0), "{p:?}");
    }

    #[test]
    fn no_gaps_no_percentiles_and_zero_gaps_are_fine() {
        assert_eq!(itl_percentiles(&[]), None);
        let p = itl_percentiles(&[Duration::ZERO; 3]).unwrap();
        assert_eq!(p.p99_ms, 0.0);
    }
}
