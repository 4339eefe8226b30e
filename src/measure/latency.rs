//! Inter-token latency percentiles, and the one percentile definition of tpsbench.
//!
//! [`percentile`] is the nearest-rank percentile (the smallest value with at least a share
//! `q` of the values at or below it), exact, with no interpolation. The result row's ITL
//! percentiles pool the gaps of all repetitions of a cell; `compare` and `check` read the
//! same pooled p99, with an interval from how much the p99 varies between repetitions.

use std::time::Duration;

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

/// Nearest-rank percentile (`q` in 0..1) of unsorted values: the value of rank
/// `ceil(q * n)` (at least 1) in ascending order; `None` when empty.
pub fn percentile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

/// p50/p90/p99 of the gaps, or `None` when there are none.
pub fn itl_percentiles(gaps: &[Duration]) -> Option<ItlPercentiles> {
    let ms: Vec<f64> = gaps.iter().map(|g| g.as_secs_f64() * 1e3).collect();
    Some(ItlPercentiles {
        p50_ms: percentile(&ms, 0.50)?,
        p90_ms: percentile(&ms, 0.90)?,
        p99_ms: percentile(&ms, 0.99)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        // Nearest rank (numpy.percentile(..., method="inverted_cdf") gives the same).
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(50.0));
        assert_eq!(percentile(&v, 0.99), Some(99.0));
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 1.0), Some(3.0));
        // rank ceil(0.5 * 5) = 3 of 1, 2, 3, 4, 10
        assert_eq!(percentile(&[10.0, 1.0, 3.0, 2.0, 4.0], 0.5), Some(3.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn percentiles_of_one_to_a_hundred_ms() {
        let gaps: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = itl_percentiles(&gaps).unwrap();
        assert_eq!((p.p50_ms, p.p90_ms, p.p99_ms), (50.0, 90.0, 99.0));
    }

    #[test]
    fn a_rare_stall_shows_only_in_p99() {
        let mut gaps = vec![Duration::from_millis(20); 98];
        gaps.extend([Duration::from_millis(500); 2]);
        let p = itl_percentiles(&gaps).unwrap();
        assert_eq!((p.p50_ms, p.p90_ms, p.p99_ms), (20.0, 20.0, 500.0));
    }

    #[test]
    fn no_gaps_no_percentiles_and_zero_gaps_are_fine() {
        assert_eq!(itl_percentiles(&[]), None);
        let p = itl_percentiles(&[Duration::ZERO; 3]).unwrap();
        assert_eq!(p.p99_ms, 0.0);
    }
}
