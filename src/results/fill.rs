//! Copying measured statistics into a row, so the driver does not repeat the mapping.

use super::row::ResultRow;
use crate::measure::{Agreement, CellMetrics, RatioCi};

impl ResultRow {
    /// Fills the decode statistics and per-request means from a cell's metrics.
    pub fn fill_metrics(&mut self, m: &CellMetrics) {
        if let Some(d) = &m.decode {
            self.decode_tps_mean = Some(d.mean);
            self.decode_tps_median = Some(d.median);
            self.decode_tps_sd = d.sd;
            self.decode_tps_ci95_low = d.ci95_low;
            self.decode_tps_ci95_high = d.ci95_high;
            self.decode_tps_min = Some(d.min);
            self.decode_tps_max = Some(d.max);
            self.n_outliers = d.outliers.len() as u32;
        }
        self.n_reps = m.decode_tps.len() as u32;
        self.client_decode_tps_mean = m.client_decode_tps_mean;
        self.prefill_tps_mean = m.prefill_tps_mean;
        self.ttft_ms_mean = m.ttft_ms_mean;
        self.e2e_ms_mean = m.e2e_ms_mean;
        self.itl_p50_ms = m.itl.map(|p| p.p50_ms);
        self.itl_p90_ms = m.itl.map(|p| p.p90_ms);
        self.itl_p99_ms = m.itl.map(|p| p.p99_ms);
        self.step_ms_p50 = m.step.map(|p| p.p50_ms);
        self.step_ms_p99 = m.step.map(|p| p.p99_ms);
        self.launches = 1;
        self.draft_n = m.draft_n;
        self.draft_accepted = m.draft_accepted;
        self.acceptance = m.acceptance;
        self.prompt_tokens = m.prompt_tokens.and_then(|n| u32::try_from(n).ok());
    }

    /// Fills the speedup columns against the baseline.
    pub fn fill_speedup(&mut self, speedup: &RatioCi) {
        self.speedup = Some(speedup.ratio);
        self.speedup_ci95_low = Some(speedup.low);
        self.speedup_ci95_high = Some(speedup.high);
    }

    /// Fills `lossless`, `agreement_share` and `first_difference` from a comparison with
    /// the baseline's tokens.
    pub fn fill_agreement(&mut self, a: &Agreement) {
        self.lossless = Some(a.lossless);
        self.agreement_share = Some(a.identical_share);
        self.first_difference = a.first_difference.map(|i| i as u64);
    }

    /// Fills the roofline columns from the bandwidth and active bytes per token already in
    /// the row: roofline t/s = bandwidth_gbps * 1e9 / active_bytes_per_token, share =
    /// decode_tps_mean / roofline t/s.
    pub fn fill_roofline(&mut self) {
        let roofline = match (self.bandwidth_gbps, self.active_bytes_per_token) {
            (Some(gbps), bytes) if gbps > 0.0 && bytes > 0 => Some(gbps * 1e9 / bytes as f64),
            _ => None,
        };
        self.roofline_tps = roofline;
        self.roofline_share = roofline.zip(self.decode_tps_mean).map(|(r, d)| d / r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{agreement, cell_metrics, ChunkRaw, RequestRaw, ServerTimingsRaw};
    use std::time::Duration;

    #[test]
    fn roofline_from_bandwidth_and_bytes() {
        let mut row = ResultRow {
            bandwidth_gbps: Some(20.0),
            active_bytes_per_token: 4_000_000_000,
            decode_tps_mean: Some(4.0),
            ..ResultRow::default()
        };
        row.fill_roofline();
        assert_eq!(row.roofline_tps, Some(5.0));
        assert_eq!(row.roofline_share, Some(0.8));
        row.bandwidth_gbps = None;
        row.fill_roofline();
        assert_eq!((row.roofline_tps, row.roofline_share), (None, None));
    }

    #[test]
    fn metrics_and_agreement_land_in_their_columns() {
        let rep = |ms: f64| RequestRaw {
            chunks: vec![
                ChunkRaw {
                    at: Duration::from_millis(10),
                    tokens: 1,
                },
                ChunkRaw {
                    at: Duration::from_millis(20),
                    tokens: 1,
                },
            ],
            end: Duration::from_millis(25),
            timings: ServerTimingsRaw {
                predicted_n: 2,
                predicted_ms: ms,
                prompt_n: 7,
                prompt_ms: 7.0,
                ..Default::default()
            },
            ..RequestRaw::default()
        };
        let mut row = ResultRow::default();
        row.fill_metrics(&cell_metrics(&[rep(20.0), rep(25.0), rep(40.0)], 1));
        assert_eq!(row.n_reps, 3);
        // 2 tokens, the first from the prompt: 1 over 20, 25 and 40 ms.
        assert_eq!(row.decode_tps_median, Some(40.0));
        assert_eq!(
            (row.decode_tps_min, row.decode_tps_max),
            (Some(25.0), Some(50.0))
        );
        assert!(row.decode_tps_ci95_low.unwrap() < row.decode_tps_mean.unwrap());
        assert_eq!(row.prompt_tokens, Some(7));
        row.fill_agreement(&agreement(&[1, 2, 3, 4], &[1, 2, 0, 4]));
        assert_eq!(
            (row.lossless, row.agreement_share, row.first_difference),
            (Some(false), Some(0.75), Some(2))
        );
    }
}
