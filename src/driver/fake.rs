//! An in-process stand-in for llama-server behind the [`Backend`] seam, for the run loop's
//! unit tests: it answers every batch at once with records shaped like a real server's
//! (token ids, timings, drafted counts) and fails on cue ([`Script`]), so each branch of
//! `execute` runs in milliseconds without an engine.

use super::interrupt::Interrupt;
use crate::engine::backend::{Backend, CpuTimes, ServerHandle};
use crate::engine::request::{CompletionRecord, CompletionRequest, Prompt};
use crate::engine::LaunchSpec;
use crate::measure::ServerTimingsRaw;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// What the fake does, and when it fails.
#[derive(Debug, Clone)]
pub struct Script {
    /// MemAvailable and MemTotal (bytes) the guard sees; `Err` is an unreadable meminfo.
    pub memory: Result<(u64, u64), String>,
    /// Every launch fails with this reason (exited at start-up, never healthy).
    pub launch_error: Option<String>,
    /// On every server, batch number N (0-based, warm-up and probe included) fails with
    /// this reason (a crash, a stalled stream, a refused request).
    pub fail_at_batch: Option<(usize, String)>,
    /// Over the whole run, batch number N (0-based) triggers Ctrl-C and never answers.
    pub interrupt_at_batch: Option<(usize, Interrupt)>,
    /// The server honours `speculative.n_max` per request (drafts 4 x n_max when set).
    pub per_request_draft: bool,
    /// Speculative servers draft nothing.
    pub no_drafts: bool,
    /// The expert count the server log reports for a MoE override (`None`: as asked).
    pub experts_in_log: Option<u32>,
    /// Accelerated servers emit a different token at this position.
    pub lossy_at: Option<usize>,
    /// Decode rate of a baseline server (tokens/s); accelerated servers decode twice as fast.
    pub decode_tps: f64,
    /// A slot holds this many tokens: generation stops when prompt and output fill it.
    pub slot_context: Option<u64>,
    /// The server of launch number L (0-based, in launch order) fails its batch N (0-based,
    /// warm-up included) with this reason: one server dying, the others healthy.
    pub fail_server: Option<(usize, usize, String)>,
    /// Memory each running server takes from MemAvailable (its private KV cache and buffers).
    pub memory_per_server: u64,
    /// Servers started as partners ([`Backend::launch_partner`]: the A side of `bench ab`)
    /// decode at this share of the speed of the others.
    pub partner_speed: f64,
    /// The machine slows down by this share per batch sent over the run (a shared machine
    /// drifting): batch N runs at `1 - drift * N` of the speed.
    pub drift_per_batch: f64,
    /// Launch number L (0-based, in launch order) runs at `launch_speed[L]` times the speed
    /// (launches past the end at 1): a machine whose speed moves from launch to launch.
    pub launch_speed: Vec<f64>,
    /// With `n_probs` in a request, the margin between the top token and the second, which
    /// is the token a lossy accelerated server emits (`lossy_at`'s token).
    pub reference_margin: f64,
    /// The backend refuses every speculative launch with this reason (as a running server
    /// without speculation does, `--server-url`).
    pub refuse_speculative: Option<String>,
    /// The memory guard applies (false: a running server, nothing launched).
    pub guards_memory: bool,
    /// A service model for single requests ([`ServerHandle::request`]): each waits for one
    /// of `slots` (first come, first served), then takes exactly this long on the tokio
    /// clock, its first tenth as prefill ([`FAKE_PREFILL_SHARE`]). `None`: answers at once.
    pub service_time: Option<Duration>,
    /// Every batch takes this long of wall time (default: none, it answers at once).
    pub batch_time: Option<Duration>,
    /// Requests served at once under `service_time` (a server's slots).
    pub slots: u32,
    /// On every server, single request number N (0-based) fails with this reason.
    pub fail_request: Option<(usize, String)>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            memory: Ok((64 << 30, 64 << 30)),
            launch_error: None,
            fail_at_batch: None,
            interrupt_at_batch: None,
            per_request_draft: false,
            no_drafts: false,
            experts_in_log: None,
            lossy_at: None,
            decode_tps: 100.0,
            slot_context: None,
            fail_server: None,
            memory_per_server: 0,
            drift_per_batch: 0.0,
            partner_speed: 1.0,
            reference_margin: 0.5,
            launch_speed: Vec::new(),
            refuse_speculative: None,
            guards_memory: true,
            service_time: None,
            batch_time: None,
            slots: 1,
            fail_request: None,
        }
    }
}

/// What the fake saw: launches and requests, shared with the test.
#[derive(Debug, Default)]
pub struct Seen {
    /// Every launch attempted, in order.
    pub launches: RefCell<Vec<LaunchSpec>>,
    /// Log names of those launches.
    pub log_names: RefCell<Vec<String>>,
    /// Batches sent over the run.
    pub batches: Cell<usize>,
    /// Requests that asked for probabilities (`n_probs`).
    pub with_probs: Cell<usize>,
    /// Servers stopped.
    pub stopped: Cell<usize>,
    /// Launches that failed (no server to stop).
    pub failed: Cell<usize>,
    /// The launch number (0-based) of the server of every batch, in order.
    pub batch_servers: RefCell<Vec<usize>>,
}

/// The fake backend.
pub struct FakeBackend {
    /// The behaviour.
    pub script: Rc<Script>,
    /// What happened.
    pub seen: Rc<Seen>,
}

impl FakeBackend {
    /// A fake following `script`, and what it will see.
    pub fn new(script: Script) -> (FakeBackend, Rc<Seen>) {
        let seen = Rc::new(Seen::default());
        let backend = FakeBackend {
            script: Rc::new(script),
            seen: seen.clone(),
        };
        (backend, seen)
    }
}

impl Backend for FakeBackend {
    type Server = FakeServer;

    fn memory(&self) -> Result<(u64, u64), String> {
        let live =
            self.seen.launches.borrow().len() - self.seen.stopped.get() - self.seen.failed.get();
        let taken = live as u64 * self.script.memory_per_server;
        let (available, total) = self.script.memory.clone()?;
        Ok((available.saturating_sub(taken), total))
    }

    fn guards_memory(&self) -> bool {
        self.script.guards_memory
    }

    fn refuses(&self, spec: &LaunchSpec) -> Option<String> {
        self.script
            .refuse_speculative
            .clone()
            .filter(|_| spec.spec.is_some())
    }

    fn launch(&mut self, spec: &LaunchSpec, log_name: &str, _: u64) -> Result<FakeServer, String> {
        self.start(spec, log_name, 1.0)
    }

    fn launch_partner(
        &mut self,
        spec: &LaunchSpec,
        log_name: &str,
        _: u64,
    ) -> Result<FakeServer, String> {
        let speed = self.script.partner_speed;
        self.start(spec, log_name, speed)
    }
}

impl FakeBackend {
    /// A fake server at `speed` times the script's rates.
    fn start(
        &mut self,
        spec: &LaunchSpec,
        log_name: &str,
        speed: f64,
    ) -> Result<FakeServer, String> {
        self.seen.launches.borrow_mut().push(spec.clone());
        self.seen.log_names.borrow_mut().push(log_name.to_string());
        if let Some(reason) = &self.script.launch_error {
            self.seen.failed.set(self.seen.failed.get() + 1);
            return Err(reason.clone());
        }
        let launch = self.seen.launches.borrow().len() - 1;
        Ok(FakeServer {
            speed: speed * self.script.launch_speed.get(launch).copied().unwrap_or(1.0),
            launch,
            spec: spec.clone(),
            script: self.script.clone(),
            seen: self.seen.clone(),
            batches: Cell::new(0),
            requests: Cell::new(0),
            slots: tokio::sync::Semaphore::new(self.script.slots as usize),
        })
    }
}

/// One fake server.
pub struct FakeServer {
    /// Its speed relative to the script's rates.
    speed: f64,
    /// Its launch number (0-based).
    launch: usize,
    spec: LaunchSpec,
    script: Rc<Script>,
    seen: Rc<Seen>,
    batches: Cell<usize>,
    /// Single requests received.
    requests: Cell<usize>,
    /// The slots of the service model; tokio's semaphore is fair, so waiters are served
    /// in arrival order as a server's queue serves them.
    slots: tokio::sync::Semaphore,
}

/// The share of [`Script::service_time`] before the first token (the prefill the fake
/// reports as `timings.prompt_ms`); the rest is decode.
pub const FAKE_PREFILL_SHARE: f64 = 0.1;

/// Now on tokio's clock, so that a test on a paused clock sees virtual instants.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl FakeServer {
    /// The reference probabilities when the request asked for them: the second choice is
    /// always the token `lossy_at` swaps in.
    fn top_two(&self, req: &CompletionRequest, tokens: &[u32]) -> Vec<crate::measure::TopTwo> {
        if !req.extra.contains_key("n_probs") {
            return Vec::new();
        }
        self.seen.with_probs.set(self.seen.with_probs.get() + 1);
        tokens
            .iter()
            .map(|&t| crate::measure::TopTwo {
                first: t,
                second: t + 1000,
                margin: self.script.reference_margin,
            })
            .collect()
    }

    fn accelerated(&self) -> bool {
        self.spec.spec.is_some() || self.spec.moe_experts_used.is_some()
    }

    fn record(&self, req: &CompletionRequest, batch: usize, overall: usize) -> CompletionRecord {
        let prompt_n = prompt_tokens(&req.prompt);
        let room = self
            .script
            .slot_context
            .map_or(u64::MAX, |c| c.saturating_sub(prompt_n));
        let n = (req.n_predict as usize).min(room as usize);
        let mut token_ids: Vec<u32> = (0..n as u32).map(|i| i % 64).collect();
        if let Some(at) = self
            .script
            .lossy_at
            .filter(|&at| at < n && self.accelerated())
        {
            token_ids[at] += 1000;
        }
        let speed = self.speed * if self.accelerated() { 2.0 } else { 1.0 };
        // A little spread, so the interval is finite and the stopping rule converges.
        let drift = 1.0 - self.script.drift_per_batch * overall as f64;
        let tps = self.script.decode_tps * speed * drift * (1.0 + 0.002 * (batch % 3) as f64);
        // llama.cpp times decoding from the first generated token on: n - 1 steps.
        let predicted_ms = n.saturating_sub(1) as f64 / tps * 1e3;
        let drafted = match (&self.spec.spec, req.extra.get("speculative.n_max")) {
            (None, _) => None,
            _ if self.script.no_drafts => None,
            (Some(_), Some(n_max)) if self.script.per_request_draft => {
                Some(4 * n_max.as_u64().unwrap_or(0))
            }
            (Some(_), _) => Some(n as u64),
        };
        let top_two = self.top_two(req, &token_ids);
        let sent = now();
        let first_byte = sent + Duration::from_millis(1);
        let per_token = Duration::from_secs_f64(predicted_ms / 1e3 / n.max(1) as f64);
        CompletionRecord {
            sent,
            headers: sent,
            first_byte,
            chunks: (0..n as u32)
                .map(|i| (first_byte + per_token * i, 1))
                .collect(),
            end: first_byte + per_token * n as u32,
            token_ids,
            top_two,
            timings: ServerTimingsRaw {
                prompt_n,
                prompt_ms: 1.0,
                predicted_n: n as u64,
                predicted_ms,
                draft_n: drafted,
                draft_n_accepted: drafted,
            },
            text: String::new(),
        }
    }
}

impl FakeServer {
    /// One request under the service model: queue for a slot, prefill, decode.
    async fn serve(&self, req: &CompletionRequest, service: Duration) -> CompletionRecord {
        let sent = now();
        let _slot = self
            .slots
            .acquire()
            .await
            .expect("the fake never closes its slots");
        let start = now();
        // One sleep for the whole service (a timer per request, not two, keeps thousands of
        // virtual arrivals fast); the first byte is placed after the prefill share.
        tokio::time::sleep(service).await;
        let prefill = service.mul_f64(FAKE_PREFILL_SHARE);
        let first_byte = start + prefill;
        let decode = service - prefill;
        let n = req.n_predict.max(1);
        // Tokens evenly from the first byte to the end: TPOT = decode / (n - 1).
        let chunk = |i: u32| first_byte + decode.mul_f64(i as f64 / (n - 1).max(1) as f64);
        CompletionRecord {
            sent,
            headers: first_byte,
            first_byte,
            chunks: (0..n).map(|i| (chunk(i), 1)).collect(),
            // Now, not start + service: tokio's timers wake on whole milliseconds, and the
            // slot is held until this instant.
            end: now(),
            token_ids: (0..n).map(|i| i % 64).collect(),
            top_two: Vec::new(),
            timings: ServerTimingsRaw {
                prompt_n: prompt_tokens(&req.prompt),
                prompt_ms: prefill.as_secs_f64() * 1e3,
                predicted_n: n as u64,
                predicted_ms: decode.as_secs_f64() * 1e3,
                draft_n: None,
                draft_n_accepted: None,
            },
            text: String::new(),
        }
    }
}

/// Tokens of a prompt as the fake counts them: one per id, one per four bytes of text.
fn prompt_tokens(prompt: &Prompt) -> u64 {
    let text = |t: &str| (t.len() as u64).div_ceil(4);
    match prompt {
        Prompt::Text(t) => text(t),
        Prompt::Tokens(ids) => ids.len() as u64,
        Prompt::Mixed(parts) => parts
            .iter()
            .map(|p| match p {
                crate::engine::request::PromptPart::Token(_) => 1,
                crate::engine::request::PromptPart::Text(t) => text(t),
            })
            .sum(),
    }
}

impl ServerHandle for FakeServer {
    fn startup_ms(&self) -> (Option<f64>, Option<f64>) {
        (Some(5.0), Some(2.0))
    }

    async fn batch(
        &self,
        req: &CompletionRequest,
        parallel: u32,
    ) -> Result<Vec<CompletionRecord>, String> {
        let here = self.batches.replace(self.batches.get() + 1);
        let overall = self.seen.batches.replace(self.seen.batches.get() + 1);
        self.seen.batch_servers.borrow_mut().push(self.launch);
        if let Some((at, reason)) = &self.script.fail_at_batch {
            if here == *at {
                return Err(reason.clone());
            }
        }
        if let Some((launch, at, reason)) = &self.script.fail_server {
            if (*launch, *at) == (self.launch, here) {
                return Err(reason.clone());
            }
        }
        if let Some((at, interrupt)) = &self.script.interrupt_at_batch {
            if overall == *at {
                interrupt.trigger();
                std::future::pending::<()>().await;
            }
        }
        if let Some(t) = self.script.batch_time {
            tokio::time::sleep(t).await;
        }
        Ok((0..parallel)
            .map(|_| self.record(req, here, overall))
            .collect())
    }

    async fn request(&self, req: &CompletionRequest) -> Result<CompletionRecord, String> {
        let here = self.requests.replace(self.requests.get() + 1);
        if let Some((at, reason)) = &self.script.fail_request {
            if here == *at {
                return Err(reason.clone());
            }
        }
        match self.script.service_time {
            None => Ok(self.record(req, here, self.seen.batches.get())),
            Some(service) => Ok(self.serve(req, service).await),
        }
    }

    fn log_text(&self) -> String {
        match &self.spec.moe_experts_used {
            Some((_, asked)) => format!(
                "print_info: n_expert_used    = {}\n",
                self.script.experts_in_log.unwrap_or(*asked)
            ),
            None => String::new(),
        }
    }

    fn cpu_times(&self) -> CpuTimes {
        None
    }

    fn stop(self) {
        self.seen.stopped.set(self.seen.stopped.get() + 1);
    }
}
