//! The figures of one phase, computed afterwards from its raw record by a pure function
//! (oha's and criterion's rule: nothing is computed on the hot path), in vllm's words:
//! TTFT, TPOT, ITL, E2EL, request and token throughput, goodput.
//!
//! Every latency counts from the instant a request was due ([`RequestOutcome::scheduled`]),
//! not from when it went out (wrk2: no coordinated omission). The queue wait and the
//! service split the time to first token where the server reports its prefill time.
//! Percentiles come from an HdrHistogram at 3 significant digits (0.1 %), means are exact.

use super::pattern::Pattern;
use super::run::{PhaseRecord, RequestOutcome};
use super::saturation::{self, Waited};
use super::slo::Slo;
use crate::engine::backend::TIMED_OUT;
use crate::engine::request::CompletionRecord;
use hdrhistogram::Histogram;
use std::time::Duration;

/// A latency's distribution over the requests of a phase (milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Percentiles {
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
}

/// The figures of one phase. Shares are of every request sent, failed ones included.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoadSummary {
    /// Requests sent (answered, failed and timed out).
    pub sent: u32,
    /// Requests answered.
    pub completed: u32,
    /// Requests that failed other than by a timeout.
    pub failed: u32,
    /// Requests that timed out (no first token in time, a stalled stream).
    pub timed_out: u32,
    /// Phase start to the last request finished, and at least the phase's sending duration
    /// when it ran its course (seconds): a rate is counted over the window it was offered
    /// in, not up to its last arrival.
    pub wall_s: f64,
    /// Requests answered per second of wall time (vllm's request throughput).
    pub achieved_rps: f64,
    /// Output tokens per second of wall time, by the server's own counts.
    pub output_tps: f64,
    /// Prompt and output tokens per second of wall time.
    pub total_tps: f64,
    /// Due instant to first token.
    pub ttft: Option<Percentiles>,
    /// (Last token - first token) / (output tokens - 1), of requests with 2 tokens or more.
    pub tpot: Option<Percentiles>,
    /// Gaps between token events.
    pub itl: Option<Percentiles>,
    /// Due instant to the end of the answer (vllm's E2EL).
    pub e2e: Option<Percentiles>,
    /// Due instant to first token minus the server's prefill time: the wait for a slot.
    pub queue_wait: Option<Percentiles>,
    /// The server's prefill time (`timings.prompt_ms`), where reported.
    pub service: Option<Percentiles>,
    /// Requests meeting every SLO target per second of wall time (`None`: no SLO).
    pub goodput_rps: Option<f64>,
    /// Requests meeting every SLO target / requests sent (`None`: no SLO).
    pub goodput_share: Option<f64>,
    /// (Failed + timed out) / sent.
    pub error_share: f64,
    /// The latest any request went out after it was due (milliseconds).
    pub max_send_lag_ms: f64,
    /// The open loop could not send on time, with the figure (see [`behind_schedule`]).
    pub behind_schedule: Option<String>,
    /// The whole process's CPU time over the phase per request sent (milliseconds).
    pub generator_cpu_ms_per_request: Option<f64>,
    /// That CPU time / wall time (1.0 = one core busy throughout).
    pub generator_core_share: Option<f64>,
    /// The queue grew through the phase instead of settling (see [`saturated`]).
    pub saturated: bool,
}

/// The figures of `record`, goodput against `slo`.
pub fn summarize(record: &PhaseRecord, slo: &Slo) -> LoadSummary {
    let outcomes = &record.outcomes;
    let done: Vec<(&RequestOutcome, &CompletionRecord)> = outcomes
        .iter()
        .filter_map(|o| Some((o, o.result.as_ref().ok()?)))
        .collect();
    let wall_s = window(record).as_secs_f64();
    let per_s = |n: f64| if wall_s > 0.0 { n / wall_s } else { 0.0 };
    let sent = outcomes.len() as u32;
    let timed_out = outcomes.iter().filter(|o| is_timeout(o)).count() as u32;
    let completed = done.len() as u32;
    let failed = sent - completed - timed_out;
    let output: u64 = done.iter().map(|(_, r)| r.timings.predicted_n).sum();
    let prompt: u64 = done.iter().map(|(_, r)| r.timings.prompt_n).sum();
    let good = (!slo.is_empty()).then(|| done.iter().filter(|(o, r)| meets(slo, o, r)).count());
    let cpu = record.generator_cpu.map(|d| d.as_secs_f64() * 1e3);
    LoadSummary {
        sent,
        completed,
        failed,
        timed_out,
        wall_s,
        achieved_rps: per_s(completed as f64),
        output_tps: per_s(output as f64),
        total_tps: per_s((output + prompt) as f64),
        ttft: percentiles(done.iter().map(|(o, r)| ttft(o, r))),
        tpot: percentiles(done.iter().filter_map(|(_, r)| tpot(r))),
        itl: percentiles(done.iter().flat_map(|(_, r)| itl(r))),
        e2e: percentiles(done.iter().map(|(o, r)| e2e(o, r))),
        queue_wait: percentiles(done.iter().filter_map(|(o, r)| queue_wait(o, r))),
        service: percentiles(done.iter().filter_map(|(_, r)| prefill(r))),
        goodput_rps: good.map(|g| per_s(g as f64)),
        goodput_share: good.map(|g| share(g as u32, sent)),
        error_share: share(sent - completed, sent),
        max_send_lag_ms: lags(outcomes).fold(0.0, f64::max),
        behind_schedule: behind_schedule(record),
        generator_cpu_ms_per_request: cpu.filter(|_| sent > 0).map(|c| c / sent as f64),
        generator_core_share: cpu.filter(|_| wall_s > 0.0).map(|c| c / 1e3 / wall_s),
        saturated: saturated(&done),
    }
}

/// The window rates are counted over: the phase's wall time, at least its sending
/// duration unless Ctrl-C cut it short (with Poisson arrivals the last one can come well
/// before the duration ends; counting up to it would overstate the rate).
fn window(record: &PhaseRecord) -> Duration {
    match (record.spec.bounds.duration, record.interrupted) {
        (Some(d), false) => record.wall.max(d),
        _ => record.wall,
    }
}

fn share(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn is_timeout(o: &RequestOutcome) -> bool {
    o.result.as_ref().is_err_and(|e| e.starts_with(TIMED_OUT))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// How late the request went out after it was due.
fn send_lag(o: &RequestOutcome) -> Duration {
    o.sent.saturating_sub(o.scheduled)
}

fn lags(outcomes: &[RequestOutcome]) -> impl Iterator<Item = f64> + '_ {
    outcomes.iter().map(|o| ms(send_lag(o)))
}

/// Due instant to an instant of the record (milliseconds): the send lag plus the record's
/// own offset from its `sent`.
fn since_due(o: &RequestOutcome, r: &CompletionRecord, at: std::time::Instant) -> f64 {
    ms(send_lag(o) + at.saturating_duration_since(r.sent))
}

fn ttft(o: &RequestOutcome, r: &CompletionRecord) -> f64 {
    let first_token = r.chunks.first().map_or(r.first_byte, |c| c.0);
    since_due(o, r, first_token)
}

fn e2e(o: &RequestOutcome, r: &CompletionRecord) -> f64 {
    since_due(o, r, r.end)
}

fn tpot(r: &CompletionRecord) -> Option<f64> {
    let (first, last) = (r.chunks.first()?.0, r.chunks.last()?.0);
    let steps = r.timings.predicted_n.checked_sub(1).filter(|&s| s > 0)?;
    Some(ms(last.saturating_duration_since(first)) / steps as f64)
}

fn itl(r: &CompletionRecord) -> Vec<f64> {
    let gaps = r.chunks.windows(2);
    gaps.map(|w| ms(w[1].0.saturating_duration_since(w[0].0)))
        .collect()
}

/// The server's prefill time, when it reports one.
fn prefill(r: &CompletionRecord) -> Option<f64> {
    Some(r.timings.prompt_ms).filter(|&p| p > 0.0)
}

fn queue_wait(o: &RequestOutcome, r: &CompletionRecord) -> Option<f64> {
    Some((ttft(o, r) - prefill(r)?).max(0.0))
}

/// Whether the request succeeded within every target set.
fn meets(slo: &Slo, o: &RequestOutcome, r: &CompletionRecord) -> bool {
    let within = |target: Option<Duration>, value: Option<f64>| match (target, value) {
        (Some(t), Some(v)) => v <= ms(t),
        // A one-token answer has no TPOT: nothing to miss.
        _ => true,
    };
    within(slo.ttft, Some(ttft(o, r)))
        && within(slo.tpot, tpot(r))
        && within(slo.e2e, Some(e2e(o, r)))
}

/// Mean (exact) and percentiles (HdrHistogram, microsecond units) of `values` in ms.
fn percentiles(values: impl Iterator<Item = f64>) -> Option<Percentiles> {
    let mut hist = Histogram::<u64>::new(3).expect("3 significant digits is valid");
    let (mut sum, mut n) = (0.0, 0u64);
    for v in values {
        // `record`, not `saturating_record`: only `record` grows an auto-resizing
        // histogram; the other clamps to its current top (2 us when it starts on a zero).
        let us = (v * 1e3).round().max(0.0) as u64;
        if hist.record(us).is_err() {
            hist.saturating_record(us); // beyond u64::MAX / 2 us: not a latency
        }
        sum += v;
        n += 1;
    }
    let at = |q: f64| hist.value_at_quantile(q) as f64 / 1e3;
    (n > 0).then(|| Percentiles {
        mean_ms: sum / n as f64,
        p50_ms: at(0.5),
        p90_ms: at(0.9),
        p99_ms: at(0.99),
    })
}

/// The open loop fell behind its schedule when the 99th percentile of send lag exceeds
/// max(1 ms, 10 % of the mean gap): the rate offered was then lower than asked, which the
/// row must say rather than report the asked rate.
fn behind_schedule(record: &PhaseRecord) -> Option<String> {
    let Pattern::Rate { rps, .. } = record.spec.pattern else {
        return None;
    };
    let threshold = f64::max(1.0, 0.1 * 1e3 / rps);
    let p99 = percentiles(lags(&record.outcomes))?.p99_ms;
    (p99 > threshold).then(|| {
        format!(
            "the generator sent late: p99 send lag {p99:.1} ms, above {threshold:.1} ms \
             (10% of the mean gap at {rps} rps): the offered rate was below the asked one"
        )
    })
}

/// Whether the phase was over-saturated (see [`super::saturation`]): each completed
/// request as due time, queue wait (the time to first token where no prefill time is
/// reported) and the time it then held its slot, in milliseconds.
fn saturated(done: &[(&RequestOutcome, &CompletionRecord)]) -> bool {
    let requests: Vec<Waited> = done
        .iter()
        .map(|(o, r)| {
            let wait = queue_wait(o, r).unwrap_or_else(|| ttft(o, r));
            Waited {
                due_ms: ms(o.scheduled),
                wait_ms: wait,
                held_ms: e2e(o, r) - wait,
            }
        })
        .collect();
    saturation::saturated(requests)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::load::pattern::{Bounds, LoadSpec};
    use crate::measure::ServerTimingsRaw;
    use std::time::Instant;

    fn ms(n: f64) -> Duration {
        Duration::from_secs_f64(n / 1e3)
    }

    /// Request `i` (1-based): due at 10 i ms, sent `lag` ms late, first token i ms after it
    /// was sent, then 4 more tokens 2 ms apart; prefill 1 ms, 10 prompt tokens.
    fn answered(i: u32, lag: f64, base: Instant) -> RequestOutcome {
        let scheduled = ms(10.0 * i as f64);
        let sent_at = base + scheduled + ms(lag);
        let first = sent_at + ms(i as f64);
        let chunks: Vec<(Instant, u32)> = (0..5).map(|k| (first + ms(2.0 * k as f64), 1)).collect();
        let record = CompletionRecord {
            sent: sent_at,
            headers: first,
            first_byte: first,
            end: chunks[4].0,
            chunks,
            token_ids: vec![1; 5],
            top_two: Vec::new(),
            timings: ServerTimingsRaw {
                prompt_n: 10,
                prompt_ms: 1.0,
                predicted_n: 5,
                predicted_ms: 8.0,
                draft_n: None,
                draft_n_accepted: None,
            },
            text: String::new(),
        };
        RequestOutcome {
            index: i - 1,
            pick: 0,
            scheduled,
            sent: scheduled + ms(lag),
            result: Ok(record),
        }
    }

    fn failed(index: u32, reason: String) -> RequestOutcome {
        let at = ms(10.0 * index as f64);
        RequestOutcome {
            index,
            pick: 0,
            scheduled: at,
            sent: at,
            result: Err(reason),
        }
    }

    /// 100 answers with TTFT 1..=100 ms, one failure, one timeout; 2 s of wall time.
    fn record(late: usize) -> PhaseRecord {
        let base = Instant::now();
        let mut outcomes: Vec<RequestOutcome> = (1..=100)
            .map(|i| answered(i, if i as usize <= late { 5.0 } else { 0.0 }, base))
            .collect();
        outcomes.push(failed(100, "HTTP 500".into()));
        outcomes.push(failed(101, format!("{TIMED_OUT}stream stalled")));
        let bounds = Bounds {
            duration: None,
            requests: Some(102),
        };
        let pattern = Pattern::Rate {
            rps: 100.0,
            burstiness: 1.0,
        };
        PhaseRecord {
            spec: LoadSpec {
                pattern,
                bounds,
                seed: 0,
            },
            outcomes,
            wall: Duration::from_secs(2),
            generator_cpu: Some(Duration::from_millis(204)),
            interrupted: false,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-3 * b.abs().max(1e-9)
    }

    fn assert_percentiles(p: Option<Percentiles>, mean: f64, p50: f64, p90: f64, p99: f64) {
        let p = p.unwrap();
        let got = [p.mean_ms, p.p50_ms, p.p90_ms, p.p99_ms];
        let want = [mean, p50, p90, p99];
        assert!(
            got.iter().zip(want).all(|(&g, w)| close(g, w)),
            "{got:?} vs {want:?}"
        );
    }

    #[test]
    fn counts_rates_and_shares_include_the_failures() {
        let s = summarize(&record(0), &"ttft=50ms".parse().unwrap());
        assert_eq!(
            (s.sent, s.completed, s.failed, s.timed_out),
            (102, 100, 1, 1)
        );
        assert!(close(s.error_share, 2.0 / 102.0));
        assert!(
            close(s.achieved_rps, 50.0) && close(s.output_tps, 250.0) && close(s.total_tps, 750.0)
        );
        // TTFT <= 50 ms: requests 1..=50, over the 102 sent.
        assert!(close(s.goodput_share.unwrap(), 50.0 / 102.0));
        assert!(close(s.goodput_rps.unwrap(), 25.0));
        assert!(close(s.generator_cpu_ms_per_request.unwrap(), 2.0));
        assert!(close(s.generator_core_share.unwrap(), 0.102));
        assert!(summarize(&record(0), &Slo::default())
            .goodput_share
            .is_none());
    }

    #[test]
    fn latencies_count_from_the_due_instant() {
        let s = summarize(&record(0), &Slo::default());
        assert_percentiles(s.ttft, 50.5, 50.0, 90.0, 99.0);
        assert_percentiles(s.e2e, 58.5, 58.0, 98.0, 107.0);
        assert_percentiles(s.queue_wait, 49.5, 49.0, 89.0, 98.0);
        assert_percentiles(s.service, 1.0, 1.0, 1.0, 1.0);
        assert_percentiles(s.tpot, 2.0, 2.0, 2.0, 2.0);
        assert_percentiles(s.itl, 2.0, 2.0, 2.0, 2.0);
        // Sent 5 ms late: 5 ms more, from when it was due.
        let late = summarize(&record(1), &Slo::default());
        assert!(close(late.ttft.unwrap().mean_ms, 50.55));
        assert!(close(late.max_send_lag_ms, 5.0));
    }

    #[test]
    fn late_sends_are_reported_with_their_figure() {
        assert!(summarize(&record(1), &Slo::default())
            .behind_schedule
            .is_none());
        let behind = summarize(&record(5), &Slo::default())
            .behind_schedule
            .unwrap();
        assert!(
            behind.contains("5.0 ms") && behind.contains("100 rps"),
            "{behind}"
        );
    }

    #[test]
    fn a_burst_the_server_clears_at_the_end_is_not_saturation() {
        // 80 requests 10 ms apart wait 0-2 ms; then 20 arrive together near the end and wait
        // 10, 20, ... 200 ms: the last third waits far longer than the first, but requests
        // waited during well under 80% of the second half.
        let base = Instant::now();
        let mut burst = record(0);
        burst.outcomes = (0..100u32)
            .map(|k| {
                let mut o = answered(if k < 80 { 1 + k % 3 } else { 10 * (k - 79) }, 0.0, base);
                o.scheduled = ms(if k < 80 {
                    10.0 * k as f64
                } else {
                    950.0 + k as f64 / 10.0
                });
                o.sent = o.scheduled;
                o
            })
            .collect();
        assert!(!summarize(&burst, &Slo::default()).saturated);
    }

    #[test]
    fn a_growing_queue_is_saturated_a_settled_one_not() {
        // TTFT grows 1 -> 100 ms over the phase while a request holds its slot 8 ms.
        assert!(summarize(&record(0), &Slo::default()).saturated);
        let mut flat = record(0);
        let base = Instant::now();
        flat.outcomes = (1..=100).map(|i| answered(1 + i % 7, 0.0, base)).collect();
        for (i, o) in flat.outcomes.iter_mut().enumerate() {
            o.scheduled += ms(10.0 * i as f64);
            o.sent = o.scheduled;
        }
        assert!(!summarize(&flat, &Slo::default()).saturated);
    }

    #[test]
    fn an_empty_phase_has_no_figures() {
        let mut empty = record(0);
        empty.outcomes.clear();
        let s = summarize(&empty, &"e2e=1s".parse().unwrap());
        assert_eq!(
            (s.sent, s.error_share, s.goodput_share),
            (0, 0.0, Some(0.0))
        );
        assert!(s.ttft.is_none() && s.generator_cpu_ms_per_request.is_none() && !s.saturated);
    }
}
