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

    /// Inter-token gaps. Between consecutive token chunks the gap is divided evenly over the
    /// tokens of the later chunk: a chunk of k tokens arriving g after the previous one gives
    /// k gaps of g/k (speculative decoding delivers several tokens at once). The tokens of the
    /// first chunk have no gap (their wait is the TTFT).
    pub fn itl_gaps(&self) -> Vec<Duration> {
        let mut gaps = Vec::with_capacity(self.token_ids.len());
        let mut chunks = self.token_chunks();
        let Some(first) = chunks.next() else {
            return gaps;
        };
        let mut previous = first.at;
        for chunk in chunks {
            let share = chunk.at.saturating_sub(previous) / chunk.tokens;
            gaps.extend(std::iter::repeat_n(share, chunk.tokens as usize));
            previous = chunk.at;
        }
        gaps
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
        assert_eq!(
            record().itl_gaps(),
            vec![ms(50), ms(10), ms(10), ms(10), ms(20)]
        );
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
