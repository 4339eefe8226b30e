//! One request's raw record and the metrics derived from it.
//!
//! [`RequestRaw`] is a plain copy of what the client saw (instants as offsets from the moment
//! the request was sent) and what the server reported in `timings`; the driver converts the
//! client's `CompletionRecord` into it, so this module does not depend on the client. It is
//! also what the JSON Lines file stores, one per repetition.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One streamed chunk: when it arrived and how many tokens it carried (0 for the final
/// chunk that only carries `timings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRaw {
    /// Arrival, offset from the moment the request was sent (nanoseconds in JSON).
    #[serde(rename = "at_ns", with = "duration_ns")]
    pub at: Duration,
    /// Tokens carried by this chunk.
    pub tokens: u32,
}

/// The server's `timings` object of the final chunk.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ServerTimingsRaw {
    /// Prompt tokens processed (tokens; cached tokens excluded).
    pub prompt_n: u64,
    /// Prompt processing time (milliseconds).
    pub prompt_ms: f64,
    /// Tokens generated (tokens).
    pub predicted_n: u64,
    /// Generation time (milliseconds).
    pub predicted_ms: f64,
    /// Tokens drafted by speculative decoding, when the server reports it.
    pub draft_n: Option<u64>,
    /// Drafted tokens accepted by the target, when the server reports it.
    pub draft_n_accepted: Option<u64>,
}

/// What one `/completion` request produced, as raw as possible.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RequestRaw {
    /// First response byte, offset from sent (nanoseconds in JSON).
    #[serde(rename = "first_byte_ns", with = "duration_ns")]
    pub first_byte: Duration,
    /// Every streamed chunk in arrival order.
    pub chunks: Vec<ChunkRaw>,
    /// End of the stream, offset from sent (nanoseconds in JSON).
    #[serde(rename = "end_ns", with = "duration_ns")]
    pub end: Duration,
    /// The server's timings.
    pub timings: ServerTimingsRaw,
    /// Generated token ids, in order.
    pub token_ids: Vec<u32>,
    /// The two most probable tokens at each generated position, when the request asked for
    /// them (`n_probs`: the baseline's reference request); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_two: Vec<TopTwo>,
}

/// The model's two most probable tokens at one generated position, before sampling.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TopTwo {
    /// The most probable token (the greedy choice).
    pub first: u32,
    /// The second most probable token.
    pub second: u32,
    /// Probability of `first` minus that of `second` (fraction 0..1).
    pub margin: f64,
}

/// Metrics derived from one [`RequestRaw`]. A metric whose inputs are missing or zero is
/// `None` rather than a division by zero.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RequestMetrics {
    /// Sent to the first chunk carrying a token.
    pub ttft: Option<Duration>,
    /// Server prompt_n / prompt_ms (tokens/s).
    pub prefill_tps: Option<f64>,
    /// Server (predicted_n - 1) / predicted_ms (tokens/s): llama.cpp starts `predicted_ms`
    /// after the first token, which comes from the prompt's logits
    /// (`server_slot_stats::t_gen_us` and `n_gen_steps` in tools/server of the pinned build), so
    /// the first token is excluded as on the client side.
    pub decode_tps_server: Option<f64>,
    /// Client view: tokens after the first token chunk / (last token chunk - first token chunk) (tokens/s).
    pub decode_tps_client: Option<f64>,
    /// Sent to end of stream.
    pub e2e: Duration,
    /// Tokens counted over the chunks.
    pub tokens: u64,
    /// Drafted tokens (server).
    pub draft_n: Option<u64>,
    /// Accepted drafted tokens (server).
    pub draft_accepted: Option<u64>,
    /// draft_accepted / draft_n; `None` when nothing was drafted.
    pub acceptance: Option<f64>,
}

impl RequestRaw {
    /// Chunks that carry at least one token, in arrival order.
    fn token_chunks(&self) -> impl Iterator<Item = &ChunkRaw> {
        self.chunks.iter().filter(|c| c.tokens > 0)
    }

    /// All derived metrics of this request.
    pub fn metrics(&self) -> RequestMetrics {
        let t = &self.timings;
        RequestMetrics {
            ttft: self.token_chunks().next().map(|c| c.at),
            prefill_tps: per_second(t.prompt_n as f64, t.prompt_ms / 1000.0),
            decode_tps_server: per_second(
                t.predicted_n.saturating_sub(1) as f64,
                t.predicted_ms / 1000.0,
            ),
            decode_tps_client: self.client_decode_tps(),
            e2e: self.end,
            tokens: self.token_chunks().map(|c| u64::from(c.tokens)).sum(),
            draft_n: t.draft_n,
            draft_accepted: t.draft_n_accepted,
            acceptance: acceptance(t.draft_n, t.draft_n_accepted),
        }
    }

    /// Decode speed the client sees: the tokens that arrived after the first token chunk,
    /// over the time from that chunk to the last token chunk. The first chunk's tokens are
    /// excluded because their time is prefill (TTFT), and the final timings-only chunk is
    /// excluded because its delay is the server assembling the response, not decoding.
    fn client_decode_tps(&self) -> Option<f64> {
        let mut chunks = self.token_chunks();
        let first = chunks.next()?;
        let (tokens, last) = chunks.fold((0u64, first.at), |(n, _), c| {
            (n + u64::from(c.tokens), c.at)
        });
        per_second(tokens as f64, last.saturating_sub(first.at).as_secs_f64())
    }

    /// Decoding steps after the first token: for each, the time since the previous step
    /// began and the tokens it delivered. A speculative step delivers its accepted tokens plus
    /// one, streamed as separate events microseconds apart, so events are grouped into steps:
    /// the server's counts say how many steps there were (`tokens after the first - accepted`,
    /// see [`crate::analysis::specmodel::DraftCounts`]), and the step boundaries are that many
    /// largest gaps between token events (the earliest wins a tie), plus any gap at least half
    /// their median. Without drafting every token event is a step.
    pub fn decode_steps(&self) -> Vec<(Duration, u32)> {
        let mut chunks = self.token_chunks();
        let Some(first) = chunks.next() else {
            return Vec::new();
        };
        let rest: Vec<&ChunkRaw> = chunks.collect();
        let mut previous = first.at;
        let gaps: Vec<Duration> = rest
            .iter()
            .map(|c| {
                let gap = c.at.saturating_sub(previous);
                previous = c.at;
                gap
            })
            .collect();
        let tokens: u64 = rest.iter().map(|c| u64::from(c.tokens)).sum();
        let accepted = self.timings.draft_n_accepted.unwrap_or(0);
        let steps = (tokens.saturating_sub(accepted) as usize).clamp(1, gaps.len().max(1));
        let mut order: Vec<usize> = (0..gaps.len()).collect();
        order.sort_by(|&i, &j| gaps[j].cmp(&gaps[i]).then(i.cmp(&j)));
        let mut starts = vec![false; gaps.len()];
        for &i in order.iter().take(steps) {
            starts[i] = true;
        }
        // Counts that disagree with the stream (an event gap as long as a step's is a step
        // whatever the counts say): any gap at least half the median boundary gap starts one.
        let mut boundary: Vec<Duration> = order.iter().take(steps).map(|&i| gaps[i]).collect();
        boundary.sort();
        if let Some(median) = boundary.get(boundary.len() / 2) {
            for (start, gap) in starts.iter_mut().zip(&gaps) {
                *start |= *gap * 2 >= *median;
            }
        }
        let mut out: Vec<(Duration, u32)> = Vec::new();
        let mut step_start = first.at;
        for (i, c) in rest.iter().enumerate() {
            match out.last_mut() {
                Some(last) if !starts[i] => last.1 += c.tokens,
                _ => {
                    out.push((c.at.saturating_sub(step_start), c.tokens));
                    step_start = c.at;
                }
            }
        }
        out
    }

    /// Inter-token latency, one value per token after the first: a decoding step's latency
    /// spread evenly over the tokens it delivered (a step of k tokens after g gives k gaps of
    /// g/k), so that tokens of one speculative step are not zero gaps by construction. The
    /// first token has no gap (its wait is the TTFT).
    pub fn itl_gaps(&self) -> Vec<Duration> {
        self.decode_steps()
            .into_iter()
            .flat_map(|(gap, k)| std::iter::repeat_n(gap / k.max(1), k as usize))
            .collect()
    }
}

/// `count / seconds`, or `None` when either is not positive.
fn per_second(count: f64, seconds: f64) -> Option<f64> {
    (count > 0.0 && seconds > 0.0).then(|| count / seconds)
}

/// accepted / drafted, or `None` when nothing was drafted.
fn acceptance(draft_n: Option<u64>, accepted: Option<u64>) -> Option<f64> {
    match (draft_n, accepted) {
        (Some(n), Some(a)) if n > 0 => Some(a as f64 / n as f64),
        _ => None,
    }
}

/// Serde helper: a `Duration` as integer nanoseconds.
mod duration_ns {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// Sent at 0; first token at 100 ms; then 1 token at 150, 3 tokens at 180, 1 at 200;
    /// a timings-only chunk at 205; end at 210.
    fn record() -> RequestRaw {
        let chunk = |at, tokens| ChunkRaw { at: ms(at), tokens };
        RequestRaw {
            first_byte: ms(90),
            chunks: vec![
                chunk(100, 1),
                chunk(150, 1),
                chunk(180, 3),
                chunk(200, 1),
                chunk(205, 0),
            ],
            end: ms(210),
            timings: ServerTimingsRaw {
                prompt_n: 50,
                prompt_ms: 95.0,
                predicted_n: 6,
                predicted_ms: 110.0,
                draft_n: Some(8),
                draft_n_accepted: Some(6),
            },
            token_ids: vec![1, 2, 3, 4, 5, 6],
            top_two: Vec::new(),
        }
    }

    #[test]
    fn derives_every_metric() {
        let m = record().metrics();
        assert_eq!(m.ttft, Some(ms(100)));
        assert!((m.prefill_tps.unwrap() - 50.0 / 0.095).abs() < 1e-9);
        // 6 tokens, the first from the prompt: 5 over 110 ms (llama.cpp's own
        // predicted_per_second for these timings).
        assert!((m.decode_tps_server.unwrap() - 5.0 / 0.110).abs() < 1e-9);
        // 5 tokens after the first chunk, over 200 - 100 ms
        assert!((m.decode_tps_client.unwrap() - 50.0).abs() < 1e-9);
        assert_eq!(m.e2e, ms(210));
        assert_eq!(m.tokens, 6);
        assert_eq!(m.acceptance, Some(0.75));
    }

    #[test]
    fn multi_token_chunks_spread_their_gap() {
        // Without draft counts every chunk is a step.
        let mut r = record();
        r.timings.draft_n_accepted = None;
        assert_eq!(r.itl_gaps(), vec![ms(50), ms(10), ms(10), ms(10), ms(20)]);
        // 5 tokens after the first with 6 accepted claimed (inconsistent counts): one step by
        // the counts (the 50 ms gap), plus every gap of at least 25 ms (the 30 ms one); the
        // 20 ms gap joins the step before it: 3 + 1 tokens over 30 ms.
        assert_eq!(
            record().itl_gaps(),
            vec![
                ms(50),
                Duration::from_micros(7500),
                Duration::from_micros(7500),
                Duration::from_micros(7500),
                Duration::from_micros(7500)
            ]
        );
    }

    /// A speculative stream: first token at 100 ms, then steps of 3 tokens each streamed as
    /// three events 10 us apart, 30 ms after the previous step.
    fn speculative() -> RequestRaw {
        let us = Duration::from_micros;
        let mut chunks = vec![ChunkRaw {
            at: ms(100),
            tokens: 1,
        }];
        for step in 1..=3u64 {
            for i in 0..3u64 {
                chunks.push(ChunkRaw {
                    at: ms(100 + 30 * step) + us(10 * i),
                    tokens: 1,
                });
            }
        }
        RequestRaw {
            chunks,
            timings: ServerTimingsRaw {
                predicted_n: 10,
                predicted_ms: 90.0,
                draft_n: Some(9),
                draft_n_accepted: Some(6),
                ..Default::default()
            },
            ..RequestRaw::default()
        }
    }

    #[test]
    fn events_of_one_speculative_step_are_one_step_not_zero_gaps() {
        // 9 tokens after the first, 6 accepted: 3 steps of 3 tokens.
        let r = speculative();
        let us = Duration::from_micros;
        assert_eq!(
            r.decode_steps(),
            vec![(ms(30), 3), (ms(30), 3), (ms(30), 3)]
        );
        // The second and third steps start 30 ms after the previous step's first event.
        assert_eq!(r.decode_steps()[1].0, ms(160) - ms(130));
        // Per token: 10 ms each, never 0.01 ms.
        let gaps = r.itl_gaps();
        assert_eq!(gaps.len(), 9);
        assert!(gaps.iter().all(|g| *g == ms(10)), "{gaps:?}");
        assert!(gaps.iter().all(|g| *g > us(10)));
    }

    #[test]
    fn missing_inputs_give_none_not_infinity() {
        let raw = RequestRaw::default();
        let m = raw.metrics();
        assert_eq!(
            (m.ttft, m.prefill_tps, m.decode_tps_server),
            (None, None, None)
        );
        assert_eq!((m.decode_tps_client, m.acceptance), (None, None));
        assert!(raw.itl_gaps().is_empty());
        let no_draft = ServerTimingsRaw {
            draft_n: Some(0),
            draft_n_accepted: Some(0),
            ..Default::default()
        };
        assert_eq!(
            RequestRaw {
                timings: no_draft,
                ..raw
            }
            .metrics()
            .acceptance,
            None
        );
    }

    #[test]
    fn json_keeps_nanoseconds() {
        let raw = record();
        let json = serde_json::to_string(&raw).unwrap();
        assert!(json.contains("\"first_byte_ns\":90000000"), "{json}");
        assert!(
            json.contains("{\"at_ns\":180000000,\"tokens\":3}"),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<RequestRaw>(&json).unwrap(), raw);
    }
}
