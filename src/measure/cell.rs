//! A cell's metrics from its timed repetitions: the numbers that go into one result row.

use std::time::Duration;

use super::latency::{itl_percentiles, ItlPercentiles};
use super::request::{RequestMetrics, RequestRaw};
use super::sample::{Sample, Summary};

/// Aggregates over the timed repetitions of one cell (warm-up excluded by the caller).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CellMetrics {
    /// Server-reported decode t/s of each repetition (batch) that reported one, in order.
    pub decode_tps: Vec<f64>,
    /// Summary of `decode_tps`; `None` when no repetition reported a decode speed.
    pub decode: Option<Summary>,
    /// Mean client-seen decode speed (tokens/s).
    pub client_decode_tps_mean: Option<f64>,
    /// Mean prefill speed (tokens/s).
    pub prefill_tps_mean: Option<f64>,
    /// Mean time to first token (milliseconds).
    pub ttft_ms_mean: Option<f64>,
    /// Mean end-to-end latency (milliseconds).
    pub e2e_ms_mean: Option<f64>,
    /// Inter-token latency percentiles over the pooled gaps of all repetitions.
    pub itl: Option<ItlPercentiles>,
    /// Decoding-step latency percentiles: the gaps between stream chunks, one per step
    /// whatever its token count, pooled over all repetitions.
    pub step: Option<ItlPercentiles>,
    /// Drafted tokens summed over repetitions; `None` when no repetition reported drafting.
    pub draft_n: Option<u64>,
    /// Accepted drafted tokens summed over repetitions.
    pub draft_accepted: Option<u64>,
    /// draft_accepted / draft_n; `None` when nothing was drafted.
    pub acceptance: Option<f64>,
    /// Prompt tokens as the server counted them (first repetition).
    pub prompt_tokens: Option<u64>,
}

/// Derives every request's metrics and aggregates them. `requests` holds the repetitions in
/// order, `parallel` requests each (the slots of one batch ran at the same time, so they are
/// one repetition: the decode sample has one value per batch, the mean over its slots).
pub fn cell_metrics(requests: &[RequestRaw], parallel: usize) -> CellMetrics {
    let per: Vec<RequestMetrics> = requests.iter().map(RequestRaw::metrics).collect();
    let decode_tps: Vec<f64> = requests
        .chunks(parallel.max(1))
        .filter_map(batch_decode_tps)
        .collect();
    let gaps: Vec<_> = requests.iter().flat_map(RequestRaw::itl_gaps).collect();
    let steps: Vec<_> = requests
        .iter()
        .flat_map(|r| r.decode_steps().into_iter().map(|(gap, _)| gap))
        .collect();
    let draft_n = sum_present(per.iter().map(|m| m.draft_n));
    let draft_accepted = sum_present(per.iter().map(|m| m.draft_accepted));
    CellMetrics {
        decode: Sample::new(&decode_tps).ok().map(|s| s.summary()),
        decode_tps,
        client_decode_tps_mean: mean_present(per.iter().map(|m| m.decode_tps_client)),
        prefill_tps_mean: mean_present(per.iter().map(|m| m.prefill_tps)),
        ttft_ms_mean: mean_present(per.iter().map(|m| m.ttft.map(|d| d.as_secs_f64() * 1e3))),
        e2e_ms_mean: mean_present(per.iter().map(|m| Some(m.e2e.as_secs_f64() * 1e3))),
        itl: itl_percentiles(&gaps),
        step: itl_percentiles(&steps),
        acceptance: match (draft_n, draft_accepted) {
            (Some(n), Some(a)) if n > 0 => Some(a as f64 / n as f64),
            _ => None,
        },
        draft_n,
        draft_accepted,
        prompt_tokens: requests.first().map(|r| r.timings.prompt_n),
    }
}

/// Decode t/s of one repetition: the mean of the server-reported rates of its requests (the
/// slots of one batch), `None` when none reported one.
pub fn batch_decode_tps(batch: &[RequestRaw]) -> Option<f64> {
    mean_present(batch.iter().map(|r| r.metrics().decode_tps_server))
}

/// Aggregate decode speed of one repetition of a parallel cell: the tokens the server
/// generated for all its concurrent requests (sum of `predicted_n`) over the wall time from
/// the first request sent to the last stream ended (tokens/s). `None` for a zero wall time.
pub fn aggregate_tps(batch: &[RequestRaw], wall: Duration) -> Option<f64> {
    let tokens: u64 = batch.iter().map(|r| r.timings.predicted_n).sum();
    let seconds = wall.as_secs_f64();
    (tokens > 0 && seconds > 0.0).then(|| tokens as f64 / seconds)
}

/// Mean of the values that are present, `None` if none is.
fn mean_present(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let present: Vec<f64> = values.flatten().filter(|v| v.is_finite()).collect();
    (!present.is_empty()).then(|| present.iter().sum::<f64>() / present.len() as f64)
}

/// Sum of the values that are present, `None` if none is.
fn sum_present(values: impl Iterator<Item = Option<u64>>) -> Option<u64> {
    values
        .flatten()
        .fold(None, |acc, v| Some(acc.unwrap_or(0) + v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::request::{ChunkRaw, ServerTimingsRaw};

    fn rep(predicted_ms: f64, draft: Option<(u64, u64)>) -> RequestRaw {
        let ms = Duration::from_millis;
        RequestRaw {
            first_byte: ms(10),
            chunks: vec![
                ChunkRaw {
                    at: ms(20),
                    tokens: 1,
                },
                ChunkRaw {
                    at: ms(30),
                    tokens: 1,
                },
                ChunkRaw {
                    at: ms(40),
                    tokens: 2,
                },
            ],
            end: ms(50),
            timings: ServerTimingsRaw {
                prompt_n: 10,
                prompt_ms: 10.0,
                predicted_n: 4,
                predicted_ms,
                draft_n: draft.map(|d| d.0),
                draft_n_accepted: draft.map(|d| d.1),
            },
            token_ids: vec![1, 2, 3, 4],
            top_two: Vec::new(),
        }
    }

    #[test]
    fn step_latency_counts_steps_not_tokens() {
        // Events 10 ms apart, the last carrying two tokens: two steps of 10 ms, and per
        // token 10, 5 and 5 ms.
        let m = cell_metrics(&[rep(40.0, None)], 1);
        let (step, itl) = (m.step.unwrap(), m.itl.unwrap());
        assert!((step.p50_ms - 10.0).abs() < 1e-9 && (step.p99_ms - 10.0).abs() < 1e-9);
        assert!((itl.p50_ms - 5.0).abs() < 1e-9, "{itl:?}");
    }

    #[test]
    fn aggregates_repetitions() {
        let m = cell_metrics(&[rep(40.0, Some((10, 5))), rep(20.0, Some((6, 3)))], 1);
        // 4 tokens, the first from the prompt: 3 over 40 ms and over 20 ms.
        assert_eq!(m.decode_tps, vec![75.0, 150.0]);
        assert_eq!(m.decode.as_ref().unwrap().mean, 112.5);
        assert_eq!(m.prefill_tps_mean, Some(1000.0));
        assert_eq!(m.ttft_ms_mean, Some(20.0));
        assert_eq!(m.e2e_ms_mean, Some(50.0));
        // 3 tokens over 20 ms
        assert!((m.client_decode_tps_mean.unwrap() - 150.0).abs() < 1e-9);
        assert_eq!(
            (m.draft_n, m.draft_accepted, m.acceptance),
            (Some(16), Some(8), Some(0.5))
        );
        // gaps 10, 5, 5 ms per repetition
        let itl = m.itl.unwrap();
        assert!(
            (itl.p50_ms - 5.0).abs() < 0.01 && (itl.p99_ms - 10.0).abs() < 0.01,
            "{itl:?}"
        );
        assert_eq!(m.prompt_tokens, Some(10));
    }

    #[test]
    fn slots_of_one_batch_are_one_repetition() {
        // Two batches of two slots: 3 tokens over 40 and 20 ms, then over 30 and 30 ms.
        let m = cell_metrics(
            &[
                rep(40.0, None),
                rep(20.0, None),
                rep(30.0, None),
                rep(30.0, None),
            ],
            2,
        );
        assert_eq!(m.decode_tps, vec![(75.0 + 150.0) / 2.0, 100.0]);
        assert_eq!(m.decode.as_ref().unwrap().n, 2);
    }

    #[test]
    fn aggregate_is_all_slots_tokens_over_the_batch_wall_time() {
        let batch = [rep(40.0, None), rep(40.0, None)];
        assert_eq!(
            aggregate_tps(&batch, Duration::from_millis(80)),
            Some(100.0)
        );
        assert_eq!(aggregate_tps(&batch, Duration::ZERO), None);
    }

    #[test]
    fn no_drafting_and_no_requests_leave_columns_empty() {
        let m = cell_metrics(&[rep(40.0, None)], 1);
        assert_eq!((m.draft_n, m.acceptance), (None, None));
        let empty = cell_metrics(&[], 1);
        assert!(empty.decode.is_none() && empty.itl.is_none() && empty.e2e_ms_mean.is_none());
    }
}
