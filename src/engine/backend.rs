//! The seam under the run loop: what the loop needs from an engine and the machine (the
//! free memory, a server to launch from a typed [`LaunchSpec`], batches of requests to it,
//! its log and CPU time), as two small traits. The real one is llama.cpp's
//! (`llamacpp::backend`: llama-server processes and the streaming HTTP client); a running
//! server (`--server-url`) is another; the run loop's unit tests use an in-process fake
//! (`driver/fake.rs`) that answers at once and fails on cue, in the spirit of hyperfine's
//! `Executor` / `MockExecutor`. A fork of llama.cpp given with `--server-bin`, or an RPC
//! worker beside a server, is another implementation of these traits, not a change to the
//! loop.

use super::request::{CompletionRecord, CompletionRequest};
use super::LaunchSpec;
use std::future::Future;
use std::time::Duration;

/// How the reason of a request that timed out (no first token in time, a stalled
/// stream) begins, so that the load summary counts timeouts apart from other failures.
pub const TIMED_OUT: &str = "timed out: ";

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

    /// Sends one request and waits for its answer, raced against the server's exit as
    /// [`ServerHandle::batch`] is: the load generator's unit, many of them in flight at
    /// once. The error is the reason (a timeout's begins with [`TIMED_OUT`]).
    fn request(
        &self,
        req: &CompletionRequest,
    ) -> impl Future<Output = Result<CompletionRecord, String>>;

    /// The server's log so far (what it printed at start-up proves a MoE override).
    fn log_text(&self) -> String;

    /// CPU time of the harness and of the server so far, when readable.
    fn cpu_times(&self) -> CpuTimes;

    /// The server's process id when it is a process of ours (its CPU time is then not
    /// foreign load); `None` for a server this harness did not start.
    fn pid(&self) -> Option<u32> {
        None
    }

    /// Stops the server (whatever became of it).
    fn stop(self);
}
