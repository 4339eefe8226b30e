//! What the run loop sends an engine and what it gets back: one completion request (a
//! prompt of text and/or token ids, the tokens to generate, the seed and timeouts) and the
//! raw record of its answer (the instants it was sent, answered and streamed, every token
//! id, and the engine's own timings). An engine's protocol (llama.cpp's in
//! `llamacpp::client`) turns a streamed response into this record; statistics come later,
//! from [`CompletionRecord::to_raw`].

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::measure::{ChunkRaw, RequestRaw, ServerTimingsRaw};

/// The prompt: text for the server to tokenize, token ids used as they are, or token ids
/// followed by text (llama-server's mixed prompt, `[12, 34, "text"]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Prompt {
    Text(String),
    Tokens(Vec<u32>),
    Mixed(Vec<PromptPart>),
}

/// One element of a mixed prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum PromptPart {
    Token(u32),
    Text(String),
}

/// One `/completion` request.
#[derive(Debug, Clone)]
pub struct CompletionRequest {
    pub prompt: Prompt,
    /// Tokens to generate (the server is told to ignore end-of-sequence).
    pub n_predict: u32,
    pub seed: u64,
    /// Extra body fields merged last (e.g. `speculative.n_max` for the per-request probe).
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Longest wait for the response and the first token (covers prefill of long prompts).
    pub first_token_timeout: Duration,
    /// Longest silence between events once tokens flow: beyond it the request is `Stalled`.
    pub stall_timeout: Duration,
}

impl CompletionRequest {
    /// Seed 42, 10 min to the first token, 30 s stall timeout, no extra fields.
    pub fn new(prompt: Prompt, n_predict: u32) -> Self {
        Self {
            prompt,
            n_predict,
            seed: 42,
            extra: serde_json::Map::new(),
            first_token_timeout: Duration::from_secs(600),
            stall_timeout: Duration::from_secs(30),
        }
    }
}

/// Raw record of one completed request.
#[derive(Debug, Clone)]
pub struct CompletionRecord {
    /// Just before the request was written.
    pub sent: Instant,
    /// Response headers received (the server sends them when it starts the task).
    pub headers: Instant,
    /// First body byte received (the first event; normally the first token).
    pub first_byte: Instant,
    /// Each event that carried tokens: the instant its bytes were read and how many token
    /// ids it carried. Events that arrived in one read share that read's instant.
    pub chunks: Vec<(Instant, u32)>,
    /// The final event (with `stop: true` and the timings) received.
    pub end: Instant,
    /// Every generated token id, in order.
    pub token_ids: Vec<u32>,
    /// The two most probable tokens per generated position, when the request set `n_probs`.
    pub top_two: Vec<crate::measure::TopTwo>,
    /// The engine's own counts and times (llama.cpp's `timings` of the final event).
    pub timings: ServerTimingsRaw,
    /// The generated text.
    pub text: String,
}

impl CompletionRecord {
    /// The record as offsets from `sent`, for the statistics and the JSON Lines file.
    pub fn to_raw(&self) -> RequestRaw {
        let since_sent = |t: Instant| t.saturating_duration_since(self.sent);
        RequestRaw {
            first_byte: since_sent(self.first_byte),
            chunks: self
                .chunks
                .iter()
                .map(|&(at, tokens)| ChunkRaw {
                    at: since_sent(at),
                    tokens,
                })
                .collect(),
            end: since_sent(self.end),
            timings: self.timings,
            token_ids: self.token_ids.clone(),
            top_two: self.top_two.clone(),
        }
    }
}
