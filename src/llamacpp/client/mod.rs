//! The HTTP client of llama-server: streaming `/completion` requests with raw instants.
//!
//! Every request does the same work on every repetition: streaming on, fixed `n_predict`,
//! `ignore_eos`, temperature 0, no prompt cache, a fixed seed, and the generated token ids
//! returned. The client records raw instants only (sent, response headers, first body byte,
//! each token-carrying event, end) plus the server's own `timings`; statistics are
//! computed later from the [`CompletionRecord`]. The receive loop allocates nothing per
//! event beyond growing the token and text buffers reserved up front.

pub mod sse;

use std::time::{Duration, Instant};

use crate::engine::request::{CompletionRecord, CompletionRequest};
#[cfg(test)]
use crate::engine::request::{Prompt, PromptPart};
use crate::measure::ServerTimingsRaw;

/// llama-server's body for one request: the streamed, greedy, repeatable request of the
/// module docs, then the request's extra fields.
fn body(req: &CompletionRequest) -> serde_json::Value {
    let mut body = serde_json::json!({
        "prompt": req.prompt,
        "n_predict": req.n_predict,
        "stream": true,
        "ignore_eos": true,
        "temperature": 0.0,
        "cache_prompt": false,
        "seed": req.seed,
        "return_tokens": true,
    });
    if let Some(map) = body.as_object_mut() {
        map.extend(req.extra.clone());
    }
    body
}

/// Errors of one request; the driver records the kind as the cell's failure reason.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
    #[error("request to {url} failed: {source}")]
    Connect {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("server answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("stream stalled: nothing received for {after:?} after {tokens} tokens")]
    Stalled { after: Duration, tokens: usize },
    #[error("connection dropped after {tokens} tokens: {detail}")]
    Disconnected { tokens: usize, detail: String },
    #[error("server reported an error mid-stream: {message}")]
    Server { message: String },
    #[error("malformed stream event ({detail}): {event}")]
    BadEvent { detail: String, event: String },
}

/// A client of one server's HTTP API.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    completion_url: String,
}

impl Client {
    /// A client for `base_url` (`http://127.0.0.1:PORT`), bypassing any proxy. Each request
    /// opens its own connection: llama-server closes a connection after a stream, and a
    /// pooled one could be found dead at the next request (hyper `IncompleteMessage`). A
    /// loopback connect costs about 0.1 ms, inside the time to first token.
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(0)
            .build()
            .map_err(ClientError::Build)?;
        let base_url = base_url.trim_end_matches('/').to_string();
        Ok(Self {
            http,
            completion_url: format!("{base_url}/completion"),
            base_url,
        })
    }

    /// `GET {base_url}{path}` as JSON, within `timeout`: what a running server says about
    /// itself (`/health`, `/props`, `/slots`). A status other than 2xx is
    /// [`ClientError::Status`] with the body.
    pub async fn get_json(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<serde_json::Value, ClientError> {
        let url = format!("{}{path}", self.base_url);
        let connect = |source| ClientError::Connect {
            url: url.clone(),
            source,
        };
        let response = self
            .http
            .get(&url)
            .timeout(timeout)
            .send()
            .await
            .map_err(connect)?;
        let status = response.status();
        let body = response.text().await.map_err(connect)?;
        if !status.is_success() {
            return Err(ClientError::Status {
                status: status.as_u16(),
                body,
            });
        }
        serde_json::from_str(&body).map_err(|e| ClientError::BadEvent {
            detail: format!("{url} answered with something other than JSON: {e}"),
            event: body.chars().take(200).collect(),
        })
    }

    /// Runs one streaming completion and returns its raw record.
    pub async fn complete(&self, req: &CompletionRequest) -> Result<CompletionRecord, ClientError> {
        let body = serde_json::to_vec(&body(req)).expect("a JSON value always serializes");
        let request = self
            .http
            .post(&self.completion_url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let sent = Instant::now();
        let response = match tokio::time::timeout(req.first_token_timeout, request.send()).await {
            Err(_) => return Err(stalled(req.first_token_timeout, 0)),
            Ok(Err(source)) => return Err(self.connect_error(source)),
            Ok(Ok(response)) => response,
        };
        let headers = Instant::now();
        if !response.status().is_success() {
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            return Err(ClientError::Status { status, body });
        }
        let mut rec = Receiving::new(sent, headers, req.n_predict as usize);
        read_stream(response, req, &mut rec).await?;
        rec.finish()
    }

    fn connect_error(&self, source: reqwest::Error) -> ClientError {
        ClientError::Connect {
            url: self.completion_url.clone(),
            source,
        }
    }
}

impl ClientError {
    /// The reason a failed request records: its whole chain, led by
    /// [`crate::engine::backend::TIMED_OUT`] when it timed out (no first token in time, a
    /// stalled stream), so that a load summary counts timeouts apart.
    pub fn reason(&self) -> String {
        let chain = crate::util::error::error_chain(self);
        match self {
            ClientError::Stalled { .. } => format!("{}{chain}", crate::engine::backend::TIMED_OUT),
            _ => chain,
        }
    }
}

fn stalled(after: Duration, tokens: usize) -> ClientError {
    ClientError::Stalled { after, tokens }
}

/// Reads body chunks until the final event (then briefly drains the rest so the server
/// sees a clean end), timing each read.
async fn read_stream(
    mut response: reqwest::Response,
    req: &CompletionRequest,
    rec: &mut Receiving,
) -> Result<(), ClientError> {
    let mut lines = sse::LineBuffer::default();
    loop {
        let wait = match (rec.end, rec.token_ids.is_empty()) {
            (Some(_), _) => Duration::from_secs(1),
            (None, true) => req.first_token_timeout,
            (None, false) => req.stall_timeout,
        };
        let chunk = match tokio::time::timeout(wait, response.chunk()).await {
            Err(_) if rec.end.is_some() => return Ok(()),
            Err(_) => return Err(stalled(wait, rec.token_ids.len())),
            Ok(Err(_)) | Ok(Ok(None)) if rec.end.is_some() => return Ok(()),
            Ok(Err(e)) => return Err(rec.disconnected(&e.to_string())),
            Ok(Ok(None)) => return Err(rec.disconnected("stream ended before the final event")),
            Ok(Ok(Some(chunk))) => chunk,
        };
        let now = Instant::now();
        rec.first_byte.get_or_insert(now);
        lines.feed(&chunk, |line| rec.on_line(line, now))?;
    }
}

/// A record being filled.
struct Receiving {
    sent: Instant,
    headers: Instant,
    first_byte: Option<Instant>,
    chunks: Vec<(Instant, u32)>,
    end: Option<Instant>,
    token_ids: Vec<u32>,
    top_two: Vec<crate::measure::TopTwo>,
    timings: Option<ServerTimingsRaw>,
    text: String,
}

impl Receiving {
    fn new(sent: Instant, headers: Instant, n_predict: usize) -> Self {
        Self {
            sent,
            headers,
            first_byte: None,
            chunks: Vec::with_capacity(n_predict + 1),
            end: None,
            token_ids: Vec::with_capacity(n_predict),
            top_two: Vec::new(),
            timings: None,
            text: String::with_capacity(n_predict * 8),
        }
    }

    fn on_line(&mut self, line: &[u8], now: Instant) -> Result<(), ClientError> {
        let Some(payload) = sse::data_payload(line) else {
            return Ok(());
        };
        let event: sse::Event =
            serde_json::from_slice(payload).map_err(|e| bad_event(&e, payload))?;
        if let Some(error) = event.error {
            let message = error
                .get("message")
                .map_or_else(|| error.to_string(), |m| m.to_string());
            return Err(ClientError::Server { message });
        }
        let ids = event.tokens.as_slice();
        if !ids.is_empty() {
            self.chunks.push((now, ids.len() as u32));
            self.token_ids.extend_from_slice(ids);
        }
        self.top_two.extend(
            event
                .completion_probabilities
                .iter()
                .filter_map(sse::TokenProbs::top_two),
        );
        if let Some(content) = event.content {
            self.text.push_str(&content);
        }
        if event.stop {
            self.end = Some(now);
            self.timings = event.timings;
        }
        Ok(())
    }

    fn disconnected(&self, detail: &str) -> ClientError {
        ClientError::Disconnected {
            tokens: self.token_ids.len(),
            detail: detail.to_string(),
        }
    }

    fn finish(self) -> Result<CompletionRecord, ClientError> {
        let end = self
            .end
            .ok_or_else(|| self.disconnected("no final event"))?;
        let timings = self.timings.ok_or_else(|| ClientError::BadEvent {
            detail: "final event without timings".into(),
            event: String::new(),
        })?;
        Ok(CompletionRecord {
            sent: self.sent,
            headers: self.headers,
            first_byte: self.first_byte.unwrap_or(end),
            chunks: self.chunks,
            end,
            token_ids: self.token_ids,
            top_two: self.top_two,
            timings,
            text: self.text,
        })
    }
}

fn bad_event(e: &serde_json::Error, payload: &[u8]) -> ClientError {
    let shown = &payload[..payload.len().min(200)];
    ClientError::BadEvent {
        detail: e.to_string(),
        event: String::from_utf8_lossy(shown).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_reason_is_marked_for_the_load_summary() {
        let timed_out = stalled(Duration::from_secs(30), 12).reason();
        assert!(
            timed_out.starts_with(crate::engine::backend::TIMED_OUT),
            "{timed_out}"
        );
        assert!(timed_out.contains("after 12 tokens"));
        let refused = ClientError::Status {
            status: 503,
            body: "busy".into(),
        };
        assert_eq!(refused.reason(), "server answered HTTP 503: busy");
    }

    #[test]
    fn body_has_the_fixed_work_fields() {
        let mut req = CompletionRequest::new(Prompt::Tokens(vec![1, 2, 3]), 64);
        req.extra.insert("speculative.n_max".into(), 4.into());
        let sent = body(&req);
        assert_eq!(sent["prompt"], serde_json::json!([1, 2, 3]));
        assert_eq!(sent["n_predict"], 64);
        assert_eq!(sent["stream"], true);
        assert_eq!(sent["ignore_eos"], true);
        assert_eq!(sent["temperature"], 0.0);
        assert_eq!(sent["cache_prompt"], false);
        assert_eq!(sent["return_tokens"], true);
        assert_eq!(sent["seed"], 42);
        assert_eq!(sent["speculative.n_max"], 4);
        let text = body(&CompletionRequest::new(Prompt::Text("hi".into()), 1));
        assert_eq!(text["prompt"], "hi");
        let parts = vec![PromptPart::Token(7), PromptPart::Text("hi".into())];
        let mixed = body(&CompletionRequest::new(Prompt::Mixed(parts), 1));
        assert_eq!(mixed["prompt"], serde_json::json!([7, "hi"]));
    }

    #[test]
    fn receiving_counts_tokens_per_event_and_keeps_final_timings() {
        let t0 = Instant::now();
        let mut rec = Receiving::new(t0, t0, 3);
        let t1 = t0 + Duration::from_millis(5);
        rec.on_line(br#"data: {"content":"a","tokens":[7],"stop":false}"#, t1)
            .unwrap();
        rec.on_line(b"", t1).unwrap();
        rec.on_line(br#"data: {"content":"bc","tokens":[8,9],"stop":false}"#, t1)
            .unwrap();
        let t2 = t1 + Duration::from_millis(5);
        rec.on_line(
            br#"data: {"content":"","tokens":[],"stop":true,"timings":{"prompt_n":3,"prompt_ms":1.0,"predicted_n":3,"predicted_ms":4.0}}"#,
            t2,
        )
        .unwrap();
        let done = rec.finish().unwrap();
        assert_eq!(done.chunks, [(t1, 1), (t1, 2)]);
        assert_eq!(done.token_ids, [7, 8, 9]);
        assert_eq!(done.text, "abc");
        assert_eq!(done.end, t2);
        assert_eq!(done.timings.predicted_n, 3);
        assert_eq!(done.timings.draft_n, None);
        let raw = done.to_raw();
        assert_eq!(raw.chunks.len(), 2);
        assert_eq!(raw.chunks[1].at, Duration::from_millis(5));
        assert_eq!(raw.chunks[1].tokens, 2);
        assert_eq!(raw.end, Duration::from_millis(10));
        assert_eq!(raw.timings.predicted_ms, 4.0);
        assert_eq!(raw.token_ids, [7, 8, 9]);
    }

    #[test]
    fn error_events_and_garbage_are_errors() {
        let t0 = Instant::now();
        let mut rec = Receiving::new(t0, t0, 1);
        let err = rec
            .on_line(br#"data: {"error":{"code":500,"message":"boom"}}"#, t0)
            .unwrap_err();
        assert!(matches!(err, ClientError::Server { ref message } if message.contains("boom")));
        let err = rec.on_line(b"data: {not json", t0).unwrap_err();
        assert!(matches!(err, ClientError::BadEvent { .. }));
        assert!(matches!(
            rec.finish(),
            Err(ClientError::Disconnected { .. })
        ));
    }
}
