//! Server-sent events of llama-server's streaming `/completion`: splitting the byte stream
//! into `data: {...}` lines and decoding each event without heap allocation in the common
//! case (borrowed text, inline token ids).

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::measure::ServerTimingsRaw;

/// Splits a byte stream into complete lines; keeps an incomplete tail for the next feed.
#[derive(Default)]
pub struct LineBuffer {
    buf: Vec<u8>,
}

impl LineBuffer {
    /// Appends `bytes` and calls `on_line` for each complete line (without its `\n` / `\r\n`).
    pub fn feed<E>(
        &mut self,
        bytes: &[u8],
        mut on_line: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(pos) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let line = &self.buf[start..start + pos];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Err(e) = on_line(line) {
                self.buf.drain(..start + pos + 1);
                return Err(e);
            }
            start += pos + 1;
        }
        self.buf.drain(..start);
        Ok(())
    }

    /// Bytes of an incomplete last line.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// The JSON payload of a `data:` line, or `None` for other lines (blank separators,
/// `event:`, comments, `[DONE]`).
pub fn data_payload(line: &[u8]) -> Option<&[u8]> {
    let payload = line.strip_prefix(b"data:")?;
    let payload = payload.strip_prefix(b" ").unwrap_or(payload);
    (payload != b"[DONE]").then_some(payload)
}

/// One streamed event. Unknown fields (`generation_settings`, `prompt`, ...) are skipped.
#[derive(Deserialize)]
pub struct Event<'a> {
    #[serde(borrow, default)]
    pub content: Option<Cow<'a, str>>,
    #[serde(default)]
    pub tokens: TokenIds,
    #[serde(default)]
    pub stop: bool,
    #[serde(default)]
    pub timings: Option<ServerTimingsRaw>,
    #[serde(default)]
    pub error: Option<serde_json::Value>,
    /// Per generated token, the most probable tokens (only when the request set `n_probs`).
    #[serde(default)]
    pub completion_probabilities: Vec<TokenProbs>,
}

/// One generated token's `completion_probabilities` entry.
#[derive(Deserialize)]
pub struct TokenProbs {
    /// The most probable tokens, most probable first (`top_logprobs`, or `top_probs` with
    /// `post_sampling_probs`).
    #[serde(default, alias = "top_probs")]
    pub top_logprobs: Vec<Candidate>,
}

/// One candidate token and its probability.
#[derive(Deserialize)]
pub struct Candidate {
    pub id: u32,
    /// Natural log of the probability (without `post_sampling_probs`).
    #[serde(default)]
    pub logprob: Option<f64>,
    /// The probability (with `post_sampling_probs`).
    #[serde(default)]
    pub prob: Option<f64>,
}

impl TokenProbs {
    /// The two most probable candidates and their probability margin; `None` without any.
    pub fn top_two(&self) -> Option<crate::measure::TopTwo> {
        let p = |c: &Candidate| c.prob.or(c.logprob.map(f64::exp)).unwrap_or(0.0);
        let mut ranked: Vec<(u32, f64)> = self.top_logprobs.iter().map(|c| (c.id, p(c))).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let first = *ranked.first()?;
        let second = ranked.get(1).copied().unwrap_or((first.0, 0.0));
        Some(crate::measure::TopTwo {
            first: first.0,
            second: second.0,
            margin: first.1 - second.1,
        })
    }
}

const INLINE_TOKENS: usize = 8;

/// Token ids of one event: inline up to 8 (one per event without speculation), spilled to
/// the heap beyond.
#[derive(Default)]
pub struct TokenIds {
    inline: [u32; INLINE_TOKENS],
    len: usize,
    spill: Vec<u32>,
}

impl TokenIds {
    pub fn as_slice(&self) -> &[u32] {
        if self.spill.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spill
        }
    }

    fn push(&mut self, id: u32) {
        if self.spill.is_empty() && self.len < INLINE_TOKENS {
            self.inline[self.len] = id;
            self.len += 1;
            return;
        }
        if self.spill.is_empty() {
            self.spill.extend_from_slice(&self.inline[..self.len]);
        }
        self.spill.push(id);
    }
}

impl<'de> Deserialize<'de> for TokenIds {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct Ids;
        impl<'de> Visitor<'de> for Ids {
            type Value = TokenIds;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of token ids")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TokenIds, A::Error> {
                let mut ids = TokenIds::default();
                while let Some(id) = seq.next_element::<u32>()? {
                    ids.push(id);
                }
                Ok(ids)
            }
        }
        de.deserialize_seq(Ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_two_of_an_n_probs_event() {
        // An event as the pinned llama-server streams it with `n_probs: 2`
        // (completion_token_output::probs_vector_to_json in tools/server/server-task.cpp):
        // log-probabilities -0.728 and -0.693 are 0.483 and 0.500.
        let line = br#"{"index":0,"content":" Paris","tokens":[9079],"stop":false,"completion_probabilities":[{"id":9079,"token":" Paris","bytes":[32],"logprob":-0.693,"top_logprobs":[{"id":812,"token":" a","bytes":[32],"logprob":-0.728},{"id":9079,"token":" Paris","bytes":[32],"logprob":-0.693}]}]}"#;
        let event: Event = serde_json::from_slice(line).unwrap();
        let t = event.completion_probabilities[0].top_two().unwrap();
        assert_eq!((t.first, t.second), (9079, 812));
        let expected = (-0.693f64).exp() - (-0.728f64).exp(); // 0.50007 - 0.48287
        assert!((t.margin - expected).abs() < 1e-12 && (t.margin - 0.0172).abs() < 1e-3);
        // post_sampling_probs names them `top_probs` and `prob`
        let post = br#"{"tokens":[1],"completion_probabilities":[{"id":1,"prob":0.9,"top_probs":[{"id":1,"prob":0.9},{"id":2,"prob":0.1}]}]}"#;
        let event: Event = serde_json::from_slice(post).unwrap();
        let t = event.completion_probabilities[0].top_two().unwrap();
        assert!((t.first, t.second) == (1, 2) && (t.margin - 0.8).abs() < 1e-12);
    }

    fn lines(chunks: &[&[u8]]) -> Vec<String> {
        let mut buf = LineBuffer::default();
        let mut out = Vec::new();
        for chunk in chunks {
            buf.feed(chunk, |l| {
                out.push(String::from_utf8_lossy(l).into_owned());
                Ok::<(), ()>(())
            })
            .unwrap();
        }
        out
    }

    #[test]
    fn lines_split_across_chunks_are_joined() {
        let got = lines(&[b"data: {\"a\"", b":1}\n\ndata: {}\r\n", b"\ndata: x"]);
        assert_eq!(got, ["data: {\"a\":1}", "", "data: {}", ""]);
    }

    #[test]
    fn only_data_lines_carry_payloads() {
        assert_eq!(data_payload(b"data: {}"), Some(&b"{}"[..]));
        assert_eq!(data_payload(b"data:{}"), Some(&b"{}"[..]));
        assert_eq!(data_payload(b"data: [DONE]"), None);
        assert_eq!(data_payload(b": ping"), None);
        assert_eq!(data_payload(b""), None);
    }

    #[test]
    fn decodes_partial_and_final_events() {
        let partial = br#"{"index":0,"content":"he\"y","tokens":[42],"stop":false,"id_slot":0}"#;
        let ev: Event = serde_json::from_slice(partial).unwrap();
        assert_eq!(ev.content.as_deref(), Some("he\"y"));
        assert_eq!(ev.tokens.as_slice(), [42]);
        assert!(!ev.stop && ev.timings.is_none());

        let last = br#"{"content":"","tokens":[],"stop":true,"generation_settings":{"n_predict":4},
            "timings":{"cache_n":0,"prompt_n":5,"prompt_ms":1.5,"prompt_per_token_ms":0.3,
            "prompt_per_second":3333.3,"predicted_n":4,"predicted_ms":8.0,
            "predicted_per_token_ms":2.0,"predicted_per_second":500.0,"draft_n":6,"draft_n_accepted":3}}"#;
        let ev: Event = serde_json::from_slice(last).unwrap();
        assert!(ev.stop && ev.tokens.as_slice().is_empty());
        let t = ev.timings.unwrap();
        assert_eq!((t.prompt_n, t.predicted_n), (5, 4));
        assert_eq!((t.draft_n, t.draft_n_accepted), (Some(6), Some(3)));
    }

    #[test]
    fn many_tokens_spill_in_order() {
        let ev: Event = serde_json::from_slice(br#"{"tokens":[1,2,3,4,5,6,7,8,9,10]}"#).unwrap();
        assert_eq!(ev.tokens.as_slice(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    }

    #[test]
    fn error_events_are_recognised() {
        let ev: Event =
            serde_json::from_slice(br#"{"error":{"code":500,"message":"boom"}}"#).unwrap();
        assert_eq!(ev.error.unwrap()["message"], "boom");
    }
}
