//! The repetitions of one cell so far (its request, its timed requests, the decode rate of
//! each batch) and the raw line of each request; finished, they are the cell's
//! [`Measured`].

use crate::driver::outcome::{Measured, Pairing};
use crate::engine::backend::CpuTimes;
use crate::engine::request::CompletionRequest;
use crate::hardware::foreign::Snapshot;
use crate::measure::{self, RequestRaw};
use crate::results::{CellKey, RawRepetition};
use std::time::{Duration, Instant};

/// Harness CPU time as a percentage of the server's over the same interval.
fn cpu_share(start: CpuTimes, end: CpuTimes) -> Option<f64> {
    let ((h0, s0), (h1, s1)) = (start?, end?);
    let server = s1.checked_sub(s0)?.as_secs_f64();
    (server > 0.0).then(|| h1.saturating_sub(h0).as_secs_f64() / server * 100.0)
}

/// The repetitions of one cell so far, and what its requests need.
pub(super) struct Reps {
    /// The request of every timed batch.
    pub(super) req: CompletionRequest,
    /// The cell's key, for the raw lines.
    pub(super) key: CellKey,
    /// `role mode workload np=N`, for the progress line.
    pub(super) label: String,
    /// CPU times when the cell started.
    pub(super) cpu_start: CpuTimes,
    /// When the cell started (the time budget).
    pub(super) started: Instant,
    /// Every timed request.
    pub(super) requests: Vec<RequestRaw>,
    /// Aggregate t/s of each batch of a parallel cell.
    pub(super) aggregate: Vec<f64>,
    /// Token ids of each slot's first timed request.
    pub(super) first_tokens: Vec<Vec<u32>>,
    /// Decode t/s of each batch (the stopping rule's input for unpaired cells).
    pub(super) decode: Vec<f64>,
    /// Batches done (the next batch's index in the raw lines).
    pub(super) batch: u32,
    /// Requests per batch (the cell's slots).
    pub(super) parallel: u32,
    /// The raw lines' `rep` of batch 0: the batches of the cell's earlier launches.
    pub(super) rep_offset: u32,
    /// The launch of the cell's server (0-based) for the raw lines.
    pub(super) launch: u32,
    /// Our servers' pids (the cell's and its partner's): their CPU is not foreign load.
    pub(super) pids: Vec<u32>,
    /// The machine's CPU counters when the cell started; `None` when the run does not
    /// sample foreign load.
    pub(super) load_start: Option<Snapshot>,
}

impl Reps {
    /// A raw line of this cell's batch `batch`, slot `slot`.
    pub(super) fn line(
        &self,
        batch: u32,
        slot: usize,
        wall: Duration,
        raw: RequestRaw,
    ) -> RawRepetition {
        let mut line = RawRepetition::new(&self.key, self.rep_offset + batch, false, raw);
        line.slot = slot as u32;
        line.batch_wall_ns = Some(wall.as_nanos() as u64);
        line.launch = self.launch;
        line
    }

    /// The cell's measurements.
    pub(super) fn finish(self, cpu_end: CpuTimes, pairing: Pairing) -> Measured {
        let foreign = self
            .load_start
            .as_ref()
            .and_then(|start| start.until(&Snapshot::take(&self.pids).ok()?));
        Measured {
            foreign,
            metrics: measure::cell_metrics(&self.requests, self.parallel as usize),
            aggregate: self.aggregate,
            first_tokens: self.first_tokens,
            client_cpu_pct: cpu_share(self.cpu_start, cpu_end),
            prompt: self.req.prompt.clone(),
            pairing,
            partner_cpu_ms: None,
            requests: self.requests,
            launch_decode: vec![self.decode],
            batches: self.batch,
            notes: Vec::new(),
        }
    }
}
