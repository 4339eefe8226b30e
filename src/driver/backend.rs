//! The seam under the run loop: what the loop needs from the outside world (the machine's
//! free memory, a server to launch, batches of requests to it, its log and CPU time), as two
//! small traits. [`LlamaBackend`] is the real one: llama-server processes and the streaming
//! HTTP client. The unit tests of `execute` use an in-process fake (`driver/fake.rs`) that
//! answers at once and fails on cue, in the spirit of hyperfine's `Executor` /
//! `MockExecutor`.

use crate::llamacpp::client::{Client, CompletionRecord, CompletionRequest};
use crate::llamacpp::server::{self, LaunchOptions, Server};
use crate::llamacpp::{Engine, LaunchSpec};
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

/// CPU time of the harness and of the server at one moment.
pub type CpuTimes = Option<(Duration, Duration)>;

/// Launches servers and reports the memory the guard checks against.
pub trait Backend {
    /// A running server.
    type Server: ServerHandle;

    /// MemAvailable and MemTotal now (bytes); the error is the reason a skipped row records.
    fn memory(&self) -> Result<(u64, u64), String>;

    /// Whether a launch's memory is checked before it starts: false for a server that is
    /// already running (`--server-url`), where nothing is launched.
    fn guards_memory(&self) -> bool {
        true
    }

    /// Why this backend cannot serve `spec` at all, if it cannot (a running server serves
    /// only what it was launched with): the cells of that launch are recorded `skipped`
    /// with the reason.
    fn refuses(&self, _spec: &LaunchSpec) -> Option<String> {
        None
    }

    /// Starts a server for `spec` and waits until it is ready. `log_name` names this
    /// launch's log file, `model_bytes` (model and draft) sizes the start-up timeout. The
    /// error (launch failed, exited at start-up, never became healthy) is the row's reason.
    fn launch(
        &mut self,
        spec: &LaunchSpec,
        log_name: &str,
        model_bytes: u64,
    ) -> Result<Self::Server, String>;

    /// Starts the server beside a launch: the A side in `bench ab` (another engine); the
    /// same as [`Backend::launch`] otherwise.
    fn launch_partner(
        &mut self,
        spec: &LaunchSpec,
        log_name: &str,
        model_bytes: u64,
    ) -> Result<Self::Server, String> {
        self.launch(spec, log_name, model_bytes)
    }
}

/// One running server.
pub trait ServerHandle {
    /// Launch-to-ready and the server's own model-load time (milliseconds).
    fn startup_ms(&self) -> (Option<f64>, Option<f64>);

    /// Sends `parallel` copies of `req` at once and waits for all of them. Fails, with the
    /// reason and the tail of the server's log, when the server has exited or exits
    /// meanwhile, or a request fails (refused, HTTP error, stalled stream).
    fn batch(
        &self,
        req: &CompletionRequest,
        parallel: u32,
    ) -> impl Future<Output = Result<Vec<CompletionRecord>, String>>;

    /// The server's log so far (what it printed at start-up proves a MoE override).
    fn log_text(&self) -> String;

    /// CPU time of the harness and of the server so far, when readable.
    fn cpu_times(&self) -> CpuTimes;

    /// Stops the server (whatever became of it).
    fn stop(self);
}

/// The real backend: llama-server processes of `engine`, logs in `logs_dir`.
pub struct LlamaBackend<'a> {
    /// The engine whose server is launched.
    pub engine: &'a Engine,
    /// Where each launch's log goes.
    pub logs_dir: PathBuf,
}

impl Backend for LlamaBackend<'_> {
    type Server = LlamaServer;

    fn memory(&self) -> Result<(u64, u64), String> {
        crate::hardware::memory::read_meminfo()
            .map(|m| (m.available_bytes, m.total_bytes))
            .map_err(|e| format!("cannot read /proc/meminfo for the memory guard: {e}"))
    }

    fn launch(
        &mut self,
        spec: &LaunchSpec,
        log_name: &str,
        model_bytes: u64,
    ) -> Result<LlamaServer, String> {
        let log = self.logs_dir.join(log_name);
        let opts = LaunchOptions::new(&log, server::startup_timeout_for(model_bytes));
        let server = Server::launch_engine(self.engine, spec, &opts)
            .map_err(|e| format!("launch failed: {e}{}", e.engine_advice(self.engine)))?;
        let client = Client::new(&server.base_url()).map_err(|e| format!("launch failed: {e}"))?;
        Ok(LlamaServer {
            server,
            client,
            sigill_advice: server::sigill_advice(self.engine),
        })
    }
}

/// Between SIGTERM and SIGKILL when stopping a server after Ctrl-C.
const INTERRUPTED_STOP_GRACE: Duration = Duration::from_millis(300);

/// A llama-server process and a client for it.
pub struct LlamaServer {
    server: Server,
    client: Client,
    /// [`server::ServerError::engine_advice`] for a crash by SIGILL.
    sigill_advice: String,
}

impl LlamaServer {
    /// The engine advice for a crash by SIGILL, else nothing.
    fn advice(&self, e: &server::ServerError) -> &str {
        if e.is_sigill() {
            &self.sigill_advice
        } else {
            ""
        }
    }

    /// `what`, then the tail of the server's log.
    fn failure(&self, what: &str) -> String {
        format!(
            "{what}\n--- tail of {} ---\n{}",
            self.server.log_path().display(),
            self.server.log_tail(20)
        )
    }
}

impl ServerHandle for LlamaServer {
    fn startup_ms(&self) -> (Option<f64>, Option<f64>) {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        (
            Some(ms(self.server.launch_to_ready())),
            self.server.load_time().map(ms),
        )
    }

    async fn batch(
        &self,
        req: &CompletionRequest,
        parallel: u32,
    ) -> Result<Vec<CompletionRecord>, String> {
        self.server
            .check()
            .map_err(|e| self.failure(&e.to_string()))?;
        let mut watch = self.server.exit_watch();
        let all = futures_util::future::join_all((0..parallel).map(|_| self.client.complete(req)));
        tokio::select! {
            biased;
            e = watch.exited() => Err(self.failure(&format!("{e}{}", self.advice(&e)))),
            results = all => results
                .into_iter()
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.failure(&format!("request failed: {}", error_chain(&e)))),
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.server.log_path()).unwrap_or_default()
    }

    fn cpu_times(&self) -> CpuTimes {
        Some((
            server::cpu::self_cpu_time().ok()?,
            server::cpu::process_cpu_time(self.server.pid()).ok()?,
        ))
    }

    fn stop(self) {
        // After Ctrl-C a server mid-request can take the whole 10 s grace to honour SIGTERM
        // (a 30B MoE stand-in took 11 s, two of them 22.6 s): the user waits, nothing is
        // measured any more, so SIGKILL follows after INTERRUPTED_STOP_GRACE.
        let _ = match super::interrupt::process_interrupted() {
            true => self.server.stop_within(INTERRUPTED_STOP_GRACE),
            false => self.server.stop(),
        };
    }
}

/// An error with its sources, `outer: inner: innermost`.
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(&format!(": {s}"));
        source = s.source();
    }
    out
}
