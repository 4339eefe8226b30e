//! Executes the launches of a run: one server per launch, a warm-up, the cells measured on
//! it with adaptive repetitions, and a row written (and fsynced) the moment each cell ends.
//! A failure ends the launch, never the run; Ctrl-C ends both, after the current cell is
//! recorded as interrupted.
//!
//! The loop talks to a [`Backend`] (the real one launches llama-server, the tests' fake
//! answers in-process), so every branch below has a unit test without an engine; and it is
//! handed a [`PairingPolicy`] that decides everything about the server beside a launch
//! (`bench run` hands it [`super::pairing::RunPairing`], `bench ab` its own). Its steps, in
//! order: [`Executor::run_all`] (launch by launch, replanning once the per-request probe
//! says draft lengths can share a server), [`Executor::run_launch`] (memory guard, start,
//! measure, stop; this file), `measure_cells` (probe, warm-up, then each cell) and the
//! unpaired repetitions in `cells.rs`, the partner and the paired repetitions in
//! `paired.rs`, a cell's repetitions so far in `reps.rs`, and `finish` (the row) in
//! `finish.rs`.

mod cells;
mod paired;
mod record;
mod reps;

use super::guard::{self, Fit};
use super::interrupt::Interrupt;
use super::launch;
use super::outcome::CellOutcome;
use super::pairing::{self, Group, PairingPolicy, Side};
use super::plan::{self, Cell, Launch, RoleCells};
use super::progress::Progress;
use super::resolve::ResolvedRole;
use crate::driver::settings::RunSettings;
use crate::engine::backend::{Backend, ServerHandle};
use crate::results::{CellKey, RawRepetition, ResultRow, ResultWriter, Status};
use record::{Pass, Recorder, INTERRUPTED};
use std::collections::HashSet;

/// Why a cell ended without a measurement.
#[derive(Debug)]
enum Stop {
    /// Ctrl-C.
    Interrupted,
    /// The server or a request failed; the text is the row's reason.
    Failed(String),
    /// This cell cannot be measured on this server (its context ran out), but the server
    /// is fine: the launch goes on with its next cell.
    CellFailed(String),
}

impl Stop {
    fn outcome(self) -> CellOutcome {
        match self {
            Stop::Interrupted => CellOutcome::NotMeasured(Status::Interrupted, INTERRUPTED.into()),
            Stop::Failed(reason) | Stop::CellFailed(reason) => {
                CellOutcome::NotMeasured(Status::Failed, reason)
            }
        }
    }

    /// Ends the launch (the server failed, or Ctrl-C).
    fn is_fatal(&self) -> bool {
        !matches!(self, Stop::CellFailed(_))
    }
}

/// Runs launches through a backend and collects their rows.
pub struct Executor<'a, B: Backend> {
    backend: B,
    settings: &'a RunSettings,
    roles: &'a [ResolvedRole],
    progress: &'a Progress,
    interrupt: Interrupt,
    /// Raw lines and rows, baselines, the pairing policy (whether a launch gets a server
    /// beside it, how it is launched, what its pairs mean).
    rec: Recorder<'a>,
    /// Servers launched.
    pub launches: usize,
    /// Whether the server honours `speculative.n_max` per request (`None` until probed).
    pub per_request_spec_k: Option<bool>,
    /// The server up beside the launches its pairing policy says it serves.
    partner: Option<Partner<B::Server>>,
}

/// A server up beside the launches of its group (a baseline beside accelerated launches of
/// its role and slot count, in `bench run`).
struct Partner<S> {
    /// Role index, slots and threads it serves ([`pairing::group`]).
    group: Group,
    /// The server.
    server: S,
}

/// What a launch gets beside it.
#[derive(Debug, Clone, PartialEq)]
enum PairPlan {
    /// Nothing: the pairing gives this launch no partner (a baseline launch, a run without
    /// pairing).
    Off,
    /// The partner is up.
    Ready,
    /// Pairing was wanted and is impossible; why.
    Impossible(String),
}

impl<'a, B: Backend> Executor<'a, B> {
    /// An executor launching through `backend`, pairing as `pairing` decides, and writing
    /// to `writer`.
    pub fn new(
        backend: B,
        settings: &'a RunSettings,
        roles: &'a [ResolvedRole],
        writer: &'a mut ResultWriter,
        progress: &'a Progress,
        interrupt: Interrupt,
        pairing: &'a mut dyn PairingPolicy,
    ) -> Self {
        Executor {
            backend,
            settings,
            roles,
            progress,
            interrupt,
            rec: Recorder::new(settings, roles, progress, writer, pairing),
            launches: 0,
            per_request_spec_k: None,
            partner: None,
        }
    }

    /// Baselines measured by an earlier, interrupted run of the same file (`--resume`).
    pub fn recover_baselines(&mut self, raw: &[RawRepetition]) {
        let roles = self.roles;
        self.rec
            .baselines
            .recover(raw, |name| roles.iter().position(|r| r.role.name == name));
    }

    /// The rows written so far, in order (taken: the executor keeps none).
    pub fn take_rows(&mut self) -> Vec<ResultRow> {
        std::mem::take(&mut self.rec.rows)
    }

    /// True once Ctrl-C was pressed.
    pub fn interrupted(&self) -> bool {
        self.interrupt.is_set()
    }

    /// Runs `launches` in order, skipping cells `done` holds. When the first speculative
    /// server shows that draft lengths are honoured per request, the launches not yet run
    /// are planned again from `cell_sets` so that `spec:K` cells share a server.
    pub async fn run_all(
        &mut self,
        launches: Vec<Launch>,
        cell_sets: &[RoleCells],
        done: &HashSet<CellKey>,
    ) -> anyhow::Result<()> {
        let result = self.run_launches(launches, cell_sets, done).await;
        self.release_partner();
        let flushed = self.rec.flush_pending(self.interrupted());
        result.and(flushed)
    }

    /// Each launch in turn, every one as many times as the pairing says (a baseline's
    /// repetitions pool over its launches); the launches not yet run are planned again once
    /// the probe shows that draft lengths are honoured per request.
    async fn run_launches(
        &mut self,
        mut launches: Vec<Launch>,
        cell_sets: &[RoleCells],
        done: &HashSet<CellKey>,
    ) -> anyhow::Result<()> {
        let mut i = 0;
        while i < launches.len() && !self.interrupted() {
            let probed_before = self.per_request_spec_k.is_some();
            let is_done = |c: &Cell| done.contains(&self.rec.key(&self.roles[c.role], c));
            let keep = self.rec.pairing.keep_as_partner(&launches, i, &is_done);
            // The rows of a server launched several times in a row wait for its last launch,
            // which stays up as the partner.
            let times = self.rec.pairing.launches_of(&launches[i].key);
            for index in 0..times {
                self.rec.pass = Pass { index, of: times };
                let last = index + 1 == times;
                self.run_launch(&launches[i], done, keep && last).await?;
            }
            self.rec.pass = Pass::ONLY;
            if !probed_before && self.per_request_spec_k == Some(true) {
                launches = plan::replan(cell_sets, &launches, i);
            }
            i += 1;
        }
        Ok(())
    }

    /// Measures the cells of one launch that `done` does not hold yet; a baseline launch
    /// whose server stays healthy is kept up as the partner of later launches when `keep`.
    async fn run_launch(
        &mut self,
        launch: &Launch,
        done: &HashSet<CellKey>,
        keep: bool,
    ) -> anyhow::Result<()> {
        let role = &self.roles[launch.role];
        let cells: Vec<&Cell> = launch
            .cells
            .iter()
            .filter(|c| !done.contains(&self.rec.key(role, c)))
            .collect();
        if cells.is_empty() || self.interrupted() {
            return Ok(());
        }
        if self
            .partner
            .as_ref()
            .is_some_and(|p| !self.rec.pairing.partner_serves(p.group, launch))
        {
            self.release_partner();
        }
        if let Some(reason) = role.skip_reason(&launch.cells).or_else(|| {
            let spec = launch::launch_spec(role, &launch.key, &self.settings.server_args);
            self.backend.refuses(&spec)
        }) {
            let outcome = || CellOutcome::NotMeasured(Status::Skipped, reason.clone());
            return self.rec.finish_all(role, &cells, outcome);
        }
        let plan = self.pair_plan(role, launch, cells[0]).await;
        if let Fit::Skip(reason) = self.memory_fit(role, launch) {
            let outcome = || CellOutcome::NotMeasured(Status::Skipped, reason.clone());
            return self.rec.finish_all(role, &cells, outcome);
        }
        let server = match self.start_side(role, launch, Side::Own) {
            Ok(server) => server,
            Err(reason) => {
                let outcome = || CellOutcome::NotMeasured(Status::Failed, reason.clone());
                return self.rec.finish_all(role, &cells, outcome);
            }
        };
        let rows_before = self.rec.rows.len();
        let result = self
            .measure_cells(&server, role, launch, &cells, &plan)
            .await;
        if self.rec.pairing.partner_per_launch() {
            self.release_partner();
        }
        let healthy = result.is_ok()
            && self.rec.rows[rows_before..]
                .iter()
                .all(|r| !matches!(r.status, Status::Failed | Status::Interrupted));
        self.keep_or_stop(server, role, launch, keep && healthy);
        result
    }

    /// Keeps a launch's server up as the partner of the launches that follow, or stops it.
    fn keep_or_stop(
        &mut self,
        server: B::Server,
        role: &ResolvedRole,
        launch: &Launch,
        keep: bool,
    ) {
        if keep {
            self.partner = Some(Partner {
                group: pairing::group(launch),
                server,
            });
        } else {
            self.progress
                .phase(format!("{}: stopping server", role.role.name));
            server.stop();
        }
    }

    /// Stops the partner, if one is up.
    fn release_partner(&mut self) {
        if let Some(p) = self.partner.take() {
            p.server.stop();
        }
    }

    /// Whether the launch's server fits in memory now (always, when nothing is launched).
    fn memory_fit(&self, role: &ResolvedRole, launch: &Launch) -> Fit {
        if !self.backend.guards_memory() {
            return Fit::Fits;
        }
        let need = launch::memory_need(role, &launch.key);
        match self.backend.memory() {
            Ok((available, total)) => guard::check(&need, available, total),
            Err(reason) => Fit::Skip(reason),
        }
    }

    /// Starts the server of `launch` for one side of a pair: a partner gets the settings of
    /// its side (in `bench ab` A's engine and server arguments).
    fn start_side(
        &mut self,
        role: &ResolvedRole,
        launch: &Launch,
        side: Side,
    ) -> Result<B::Server, String> {
        self.progress.phase(format!(
            "{}: launching {}",
            role.role.name,
            launch.key.label()
        ));
        self.rec.startup_ms = (None, None);
        let settings = match side {
            Side::Partner => self.rec.pairing.partner_settings().unwrap_or(self.settings),
            Side::Own => self.settings,
        };
        let spec = launch::launch_spec(role, &launch.key, &settings.server_args);
        self.launches += 1;
        let log_name = launch::log_name(self.launches, &role.role.name, &launch.key);
        let bytes =
            role.model.facts.tensor_bytes + role.draft.as_ref().map_or(0, |d| d.facts.tensor_bytes);
        let server = match side {
            Side::Partner => self.backend.launch_partner(&spec, &log_name, bytes)?,
            Side::Own => self.backend.launch(&spec, &log_name, bytes)?,
        };
        self.rec.startup_ms = server.startup_ms();
        Ok(server)
    }
}

#[cfg(test)]
mod tests;
