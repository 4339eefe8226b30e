//! The run loop from the outside: the launches planned from the roles' cells, the
//! [`Executor`] driven over them on a single-threaded runtime with Ctrl-C watched, and what
//! the run produced. `bench run`, `--server-url` and `bench ab` all enter here, each with its
//! backend and its pairing policy.

use super::execute::Executor;
use super::interrupt::{self, Interrupt};
use super::pairing::PairingPolicy;
use super::plan::{self, plan_launches, RoleCells};
use super::progress::Progress;
use super::resolve::ResolvedRole;
use super::settings::{RunPlan, RunSettings, Sweep};
use super::workload::Workload;
use crate::engine::backend::Backend;
use crate::results::{CellKey, ResultRow, ResultWriter, Status};
use anyhow::Context;
use std::collections::HashSet;
use std::path::PathBuf;

/// Exit code when cells failed or a mode did not take effect.
pub const EXIT_CELLS_FAILED: u8 = 1;
/// Exit code after Ctrl-C (128 + SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;

/// What a run produced.
pub struct RunOutcome {
    /// The result CSV.
    pub csv: PathBuf,
    /// Rows written by this invocation.
    pub rows: Vec<ResultRow>,
    /// Cells planned (before resume filtering).
    pub cells: usize,
    /// Servers launched.
    pub launches: usize,
    /// Ctrl-C ended the run.
    pub interrupted: bool,
}

impl RunOutcome {
    /// 130 after Ctrl-C, 1 when a cell failed or a mode did not take effect, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            EXIT_INTERRUPTED
        } else if self
            .rows
            .iter()
            .any(|r| matches!(r.status, Status::Failed | Status::ModeNotEffective))
        {
            EXIT_CELLS_FAILED
        } else {
            0
        }
    }
}

/// The cells of one role: its modes, the run's workloads, the role's slot counts, the
/// run's thread counts and depths.
pub fn role_cells(sweep: &Sweep, role: &ResolvedRole, workloads: &[Workload]) -> RoleCells {
    RoleCells {
        modes: role.role.expanded_modes(),
        workloads: workloads.to_vec(),
        parallel: role.role.parallel.clone(),
        threads: sweep.threads.clone(),
        depths: sweep.depths.clone(),
    }
}

/// The run loop over every launch of the run through `backend`, paired as `pairing`
/// decides, Ctrl-C watched; the CSV is complete when this returns.
pub fn run_loop<Bk: Backend>(
    run: &RunPlan,
    roles: &[ResolvedRole],
    writer: &mut ResultWriter,
    settings: &RunSettings,
    backend: Bk,
    pairing: &mut dyn PairingPolicy,
) -> anyhow::Result<RunOutcome> {
    let cell_sets: Vec<RoleCells> = roles
        .iter()
        .map(|r| role_cells(run.sweep, r, run.workloads))
        .collect();
    let launches = plan_launches(&cell_sets, false);
    let cells = plan::cell_count(&launches);
    let progress = Progress::new(cells, run.quiet);
    let done: HashSet<CellKey> = writer.finished().clone();
    let interrupt = Interrupt::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let csv = writer.csv_path().to_path_buf();
    let earlier = match run.resume {
        true => crate::results::read_raw(writer.jsonl_path()).unwrap_or_default(),
        false => Vec::new(),
    };
    let (rows, n_launches) = runtime.block_on(async {
        let watcher = interrupt::spawn_ctrl_c(interrupt.clone());
        let mut exec = Executor::new(
            backend,
            settings,
            roles,
            writer,
            &progress,
            interrupt.clone(),
            pairing,
        );
        exec.recover_baselines(&earlier);
        let result = exec.run_all(launches, &cell_sets, &done).await;
        watcher.abort();
        result?;
        anyhow::Ok((exec.take_rows(), exec.launches))
    })?;
    progress.finish();
    Ok(RunOutcome {
        csv,
        rows,
        cells,
        launches: n_launches,
        interrupted: interrupt.is_set(),
    })
}
