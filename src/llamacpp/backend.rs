//! llama.cpp behind the engine seam ([`crate::engine::backend`]): a launch is a
//! llama-server process of the chosen engine, a batch is that many streaming `/completion`
//! requests at once, raced against the server's exit.

use super::client::Client;
use super::server::{self, LaunchOptions, Server};
use super::Engine;
use crate::engine::backend::{Backend, CpuTimes, ServerHandle};
use crate::engine::request::{CompletionRecord, CompletionRequest};
use crate::engine::LaunchSpec;
use crate::util::error::error_chain;
use std::path::PathBuf;
use std::time::Duration;

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

    async fn request(&self, req: &CompletionRequest) -> Result<CompletionRecord, String> {
        self.server
            .check()
            .map_err(|e| self.failure(&e.to_string()))?;
        let mut watch = self.server.exit_watch();
        // A failed request under load is one outcome among many: its reason only (no log
        // tail, which a server that stays up does not explain); a crash keeps the tail.
        tokio::select! {
            biased;
            e = watch.exited() => Err(self.failure(&format!("{e}{}", self.advice(&e)))),
            result = self.client.complete(req) => result.map_err(|e| e.reason()),
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.server.log_path()).unwrap_or_default()
    }

    fn pid(&self) -> Option<u32> {
        Some(self.server.pid())
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
        let _ = match crate::util::interrupt::process_interrupted() {
            true => self.server.stop_within(INTERRUPTED_STOP_GRACE),
            false => self.server.stop(),
        };
    }
}
