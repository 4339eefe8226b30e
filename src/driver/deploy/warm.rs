//! What a user waits when a WARM role (the architect) is called: its server's launch to
//! ready with the model file's pages evicted from the page cache (cold) and with them
//! cached (warm), the read rate the cold start achieved against the storage's own read rate
//! for that file, and the first request's wait from launch to its first token. Each start
//! is a row (`cold start`, `warm start`); the warm start's server then stays up as the
//! role's server of the deployment.

use crate::engine::backend::ServerHandle;
use crate::engine::request::CompletionRecord;
use crate::hardware::pagecache::{self, ColdRead};
use crate::results::ResultRow;
use std::path::Path;
use std::time::{Duration, Instant};

/// One start of a WARM role's server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Start {
    /// Launch to ready (milliseconds).
    pub ready_ms: Option<f64>,
    /// The server's own model-load time (milliseconds).
    pub load_ms: Option<f64>,
    /// Launch to the first token of the first request (milliseconds).
    pub first_token_ms: Option<f64>,
    /// The first request's time to first token (milliseconds).
    pub ttft_ms: Option<f64>,
    /// Share of the model's pages resident when the launch began (0 to 1).
    pub resident_before: Option<f64>,
}

impl Start {
    /// The start's figures from its server and its first request.
    pub fn of<S: ServerHandle>(
        server: &S,
        launched: Instant,
        first: &CompletionRecord,
        resident_before: Option<f64>,
    ) -> Start {
        let (ready_ms, load_ms) = server.startup_ms();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        Start {
            ready_ms,
            load_ms,
            first_token_ms: Some(ms(first.first_byte.saturating_duration_since(launched))),
            ttft_ms: Some(ms(first.first_byte.saturating_duration_since(first.sent))),
            resident_before,
        }
    }

    /// Fills a start row: the startup columns and, for a cold start, the read rates.
    pub fn fill(&self, row: &mut ResultRow, file_bytes: u64, storage: Option<&ColdRead>) {
        row.launch_to_ready_ms = self.ready_ms;
        row.server_load_ms = self.load_ms;
        row.ttft_ms_mean = self.ttft_ms;
        row.first_token_after_launch_ms = self.first_token_ms;
        row.resident_before = self.resident_before;
        row.load_read_gbps = self
            .ready_ms
            .filter(|ms| *ms > 0.0)
            .map(|ms| file_bytes as f64 / (ms / 1e3) / 1e9);
        row.storage_read_gbps = storage.map(ColdRead::gbps);
    }
}

/// Evicts the model (and draft) files and reads the model once cold: the storage's rate for
/// it. The files are evicted again afterwards, ready for a cold start.
pub fn prepare_cold(model: &Path, draft: Option<&Path>) -> Result<ColdRead, String> {
    let read = pagecache::cold_read(model).map_err(|e| format!("{}: {e}", model.display()))?;
    for file in std::iter::once(model).chain(draft) {
        pagecache::evict(file).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(read)
}

/// The share of `model`'s pages resident now, when readable.
pub fn resident(model: &Path) -> Option<f64> {
    pagecache::resident_share(model).ok()
}
