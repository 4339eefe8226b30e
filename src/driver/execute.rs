//! Executes the launches of a run: one server per launch, a warm-up, the cells measured on
//! it with adaptive repetitions, and a row written (and fsynced) the moment each cell ends.
//! A failure ends the launch, never the run; Ctrl-C ends both, after the current cell is
//! recorded as interrupted.
//!
//! The loop talks to a [`Backend`] (the real one launches llama-server, the tests' fake
//! answers in-process), so every branch below has a unit test without an engine. Its steps,
//! in order: [`Executor::run_all`] (launch by launch, replanning once the per-request probe
//! says draft lengths can share a server), [`Executor::run_launch`] (memory guard, start,
//! measure, stop), `measure_cells` (probe, warm-up, then each cell), `repetitions` (timed
//! batches until the stopping rule is satisfied) and `finish` (the row).

use super::ab::AbSide;
use super::backend::{Backend, CpuTimes, ServerHandle};
use super::baselines::{Baseline, BaselineKey, Baselines};
use super::cellrow;
use super::guard::{self, Fit};
use super::interrupt::Interrupt;
use super::launch;
use super::outcome::{self, CellOutcome, Measured};
use super::pairing::{self, Pairing};
use super::plan::{self, Cell, Launch, RoleCells};
use super::progress::Progress;
use super::resolve::ResolvedRole;
use super::workload;
use super::RunSettings;
use crate::llamacpp::client::{CompletionRecord, CompletionRequest};
use crate::measure::{self, RequestRaw};
use crate::results::{CellKey, RawRepetition, ResultRow, ResultWriter, Status};
use std::collections::HashSet;
use std::time::{Duration, Instant};

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

const INTERRUPTED: &str = "interrupted (Ctrl-C)";

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
    writer: &'a mut ResultWriter,
    progress: &'a Progress,
    interrupt: Interrupt,
    baselines: Baselines,
    /// Rows written by this run, in order.
    pub rows: Vec<ResultRow>,
    /// Servers launched.
    pub launches: usize,
    /// Whether the server honours `speculative.n_max` per request (`None` until probed).
    pub per_request_spec_k: Option<bool>,
    /// Launch-to-ready and the server's own model-load time of the current launch (ms).
    startup_ms: (Option<f64>, Option<f64>),
    /// The baseline server kept up beside the accelerated launches of its group (or, in
    /// `bench ab`, the A server beside each B launch).
    partner: Option<Partner<B::Server>>,
    /// `bench ab`: the A side, whose server is the partner of every launch.
    ab: Option<AbSide<'a>>,
    /// Which launch of its cells the current server is (a baseline is launched
    /// `baseline_launches` times in a row).
    pass: Pass,
    /// Outcomes of baseline cells from the earlier launches of the current baseline launch,
    /// waiting for its last launch; written with one launch fewer if the run ends first.
    pending: Vec<Pending>,
}

/// The launch number of the current server among the launches of its cells.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Pass {
    /// 0-based.
    index: u32,
    /// How many launches its cells get.
    of: u32,
}

impl Pass {
    const ONLY: Pass = Pass { index: 0, of: 1 };

    fn is_last(self) -> bool {
        self.index + 1 >= self.of
    }
}

/// A cell's outcome from the earlier launches of its server.
struct Pending {
    key: CellKey,
    cell: Cell,
    outcome: CellOutcome,
}

/// A baseline server up beside accelerated launches of its role and slot count.
struct Partner<S> {
    /// Role index and slots it serves ([`pairing::group`]).
    group: (usize, u32, u32),
    /// The server.
    server: S,
}

impl<'a, B: Backend> Executor<'a, B> {
    /// An executor launching through `backend` and writing to `writer`.
    pub fn new(
        backend: B,
        settings: &'a RunSettings,
        roles: &'a [ResolvedRole],
        writer: &'a mut ResultWriter,
        progress: &'a Progress,
        interrupt: Interrupt,
    ) -> Self {
        Executor {
            backend,
            settings,
            roles,
            writer,
            progress,
            interrupt,
            baselines: Baselines::default(),
            rows: Vec::new(),
            launches: 0,
            per_request_spec_k: None,
            startup_ms: (None, None),
            partner: None,
            ab: None,
            pass: Pass::ONLY,
            pending: Vec::new(),
        }
    }

    /// `bench ab`: every launch gets the A side's server beside it (engine A, A's server
    /// arguments) with the same settings; this executor's own servers are the B side.
    pub fn with_ab(mut self, ab: AbSide<'a>) -> Self {
        self.ab = Some(ab);
        self
    }

    /// The A side, after the run.
    pub fn take_ab(&mut self) -> Option<AbSide<'a>> {
        self.ab.take()
    }

    /// Baselines measured by an earlier, interrupted run of the same file (`--resume`).
    pub fn recover_baselines(&mut self, raw: &[RawRepetition]) {
        let roles = self.roles;
        self.baselines
            .recover(raw, |name| roles.iter().position(|r| r.role.name == name));
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
        let flushed = self.flush_pending();
        result.and(flushed)
    }

    /// Writes the cells whose later launches never ran (Ctrl-C, an error): what the earlier
    /// launches measured, with a note.
    fn flush_pending(&mut self) -> anyhow::Result<()> {
        self.pass = Pass::ONLY;
        for p in std::mem::take(&mut self.pending) {
            let why = match self.interrupted() {
                true => INTERRUPTED,
                false => "the run ended first",
            };
            let outcome = outcome::merge_launches(
                p.outcome,
                CellOutcome::NotMeasured(Status::Interrupted, why.into()),
                self.settings.baseline_launches,
                p.cell.parallel as usize,
            );
            let role = &self.roles[p.cell.role];
            self.finish(role, &p.cell, outcome)?;
        }
        Ok(())
    }

    async fn run_launches(
        &mut self,
        mut launches: Vec<Launch>,
        cell_sets: &[RoleCells],
        done: &HashSet<CellKey>,
    ) -> anyhow::Result<()> {
        let mut i = 0;
        while i < launches.len() && !self.interrupted() {
            let probed_before = self.per_request_spec_k.is_some();
            let is_done = |c: &Cell| done.contains(&self.key(&self.roles[c.role], c));
            let keep = self.settings.pair
                && self.ab.is_none()
                && pairing::keep_as_partner(&launches, i, is_done);
            // A baseline is launched `baseline_launches` times in a row (its rows wait for
            // the last launch, which stays up as the partner): the launch-to-launch variation.
            let times = match launches[i].key.mode.is_baseline() && self.ab.is_none() {
                true => self.settings.baseline_launches.max(1),
                false => 1,
            };
            for index in 0..times {
                self.pass = Pass { index, of: times };
                let last = index + 1 == times;
                self.run_launch(&launches[i], done, keep && last).await?;
            }
            self.pass = Pass::ONLY;
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
            .filter(|c| !done.contains(&self.key(role, c)))
            .collect();
        if cells.is_empty() || self.interrupted() {
            return Ok(());
        }
        if self.ab.is_some()
            || self
                .partner
                .as_ref()
                .is_some_and(|p| p.group != pairing::group(launch))
        {
            self.release_partner();
        }
        if let Some(reason) = role.skip_reason(&launch.cells).or_else(|| {
            let spec = launch::launch_spec(role, &launch.key, &self.settings.server_args);
            self.backend.refuses(&spec)
        }) {
            let outcome = || CellOutcome::NotMeasured(Status::Skipped, reason.clone());
            return self.finish_all(role, &cells, outcome);
        }
        let plan = self.pair_plan(role, launch, cells[0]).await;
        if let Fit::Skip(reason) = self.memory_fit(role, launch) {
            let outcome = || CellOutcome::NotMeasured(Status::Skipped, reason.clone());
            return self.finish_all(role, &cells, outcome);
        }
        let server = match self.start(role, launch) {
            Ok(server) => server,
            Err(reason) => {
                let outcome = || CellOutcome::NotMeasured(Status::Failed, reason.clone());
                return self.finish_all(role, &cells, outcome);
            }
        };
        let rows_before = self.rows.len();
        let result = self
            .measure_cells(&server, role, launch, &cells, &plan)
            .await;
        if self.ab.is_some() {
            self.release_partner();
        }
        let healthy = result.is_ok()
            && self.rows[rows_before..]
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

    fn start(&mut self, role: &ResolvedRole, launch: &Launch) -> Result<B::Server, String> {
        self.start_side(role, launch, pairing::Side::Own)
    }

    /// Starts the server of `launch` for one side of a pair: a partner in `bench ab` is the A
    /// side's (its engine, its server arguments).
    fn start_side(
        &mut self,
        role: &ResolvedRole,
        launch: &Launch,
        side: pairing::Side,
    ) -> Result<B::Server, String> {
        self.progress.phase(format!(
            "{}: launching {}",
            role.role.name,
            launch.key.label()
        ));
        self.startup_ms = (None, None);
        let a_side = self.ab.as_ref().filter(|_| side == pairing::Side::Partner);
        let settings = a_side.map_or(self.settings, |ab| ab.settings);
        let spec = launch::launch_spec(role, &launch.key, &settings.server_args);
        self.launches += 1;
        let log_name = launch::log_name(self.launches, &role.role.name, &launch.key);
        let bytes =
            role.model.facts.tensor_bytes + role.draft.as_ref().map_or(0, |d| d.facts.tensor_bytes);
        let server = match a_side {
            Some(_) => self.backend.launch_partner(&spec, &log_name, bytes)?,
            None => self.backend.launch(&spec, &log_name, bytes)?,
        };
        self.startup_ms = server.startup_ms();
        Ok(server)
    }

    async fn measure_cells(
        &mut self,
        server: &B::Server,
        role: &ResolvedRole,
        launch: &Launch,
        cells: &[&Cell],
        plan: &PairPlan,
    ) -> anyhow::Result<()> {
        let moe_check = launch
            .key
            .mode
            .moe_n()
            .map(|n| moe_effective(&server.log_text(), n));
        if launch.key.mode.spec_k().is_some() && self.per_request_spec_k.is_none() {
            self.per_request_spec_k = Some(self.probe_per_request(server, role, cells[0]).await);
        }
        let warmup = self.warm_up(server, role, cells[0]).await;
        for (i, cell) in cells.iter().enumerate() {
            let (outcome, fatal) = match &warmup {
                Err(Stop::Interrupted) => (Stop::Interrupted.outcome(), true),
                Err(Stop::Failed(reason) | Stop::CellFailed(reason)) => {
                    (Stop::Failed(reason.clone()).outcome(), true)
                }
                Ok(()) => match &moe_check {
                    Some(Err(why)) => (
                        CellOutcome::NotMeasured(Status::ModeNotEffective, why.clone()),
                        false,
                    ),
                    _ => match self
                        .reference_then_measure(server, role, cell, i, plan)
                        .await
                    {
                        Ok(measured) => (CellOutcome::Measured(Box::new(measured)), false),
                        Err(stop) => {
                            let fatal = stop.is_fatal();
                            (stop.outcome(), fatal)
                        }
                    },
                },
            };
            self.finish(role, cell, outcome)?;
            if fatal {
                return self.abandon(role, &cells[i + 1..]);
            }
        }
        Ok(())
    }

    /// Records the cells a failed or interrupted launch did not reach.
    fn abandon(&mut self, role: &ResolvedRole, rest: &[&Cell]) -> anyhow::Result<()> {
        let (status, why) = if self.interrupted() {
            (Status::Interrupted, INTERRUPTED)
        } else {
            (Status::Failed, "not run: the server of this launch failed")
        };
        self.finish_all(role, rest, || CellOutcome::NotMeasured(status, why.into()))
    }

    /// A baseline cell other than the launch's first (whose warm-up was its reference) gets
    /// its untimed reference request first; then the timed repetitions, paired or not.
    async fn reference_then_measure(
        &mut self,
        server: &B::Server,
        role: &ResolvedRole,
        cell: &Cell,
        index_in_launch: usize,
        plan: &PairPlan,
    ) -> Result<Measured, Stop> {
        if index_in_launch > 0 && cell.mode.is_baseline() {
            self.untimed(server, role, cell).await?;
        }
        self.measure_cell(server, role, cell, plan).await
    }

    /// Timed batches until the adaptive rule is satisfied.
    async fn repetitions(
        &mut self,
        server: &B::Server,
        role: &ResolvedRole,
        cell: &Cell,
    ) -> Result<Measured, Stop> {
        let mut reps = self.new_reps(server, role, cell);
        self.more_repetitions(server, cell, &mut reps).await?;
        Ok(reps.finish(server.cpu_times(), Pairing::Off))
    }

    /// The repetitions of a cell before its first batch.
    fn new_reps(&self, server: &B::Server, role: &ResolvedRole, cell: &Cell) -> Reps {
        let key = self.key(role, cell);
        let rep_offset =
            self.pending
                .iter()
                .find(|p| p.key == key)
                .map_or(0, |p| match &p.outcome {
                    CellOutcome::Measured(m) => m.batches,
                    CellOutcome::NotMeasured(..) => 0,
                });
        Reps {
            rep_offset,
            launch: self.pass.index,
            req: self.request(role, cell),
            key,
            label: format!(
                "{} {} {} np={}",
                role.role.name, cell.mode, cell.workload, cell.parallel
            ),
            cpu_start: server.cpu_times(),
            started: Instant::now(),
            requests: Vec::new(),
            aggregate: Vec::new(),
            first_tokens: Vec::new(),
            decode: Vec::new(),
            batch: 0,
            parallel: cell.parallel,
        }
    }

    /// Own batches until the adaptive rule on decode t/s is satisfied.
    async fn more_repetitions(
        &mut self,
        server: &B::Server,
        cell: &Cell,
        reps: &mut Reps,
    ) -> Result<(), Stop> {
        let adaptive = self.settings.adaptive;
        while reps.batch == 0 || adaptive.should_continue(&reps.decode, reps.started.elapsed()) {
            self.own_batch(server, cell, reps).await?;
        }
        Ok(())
    }

    /// One timed batch on the cell's own server, recorded; its decode t/s (the mean over its
    /// slots), when the server reported timings.
    async fn own_batch(
        &mut self,
        server: &B::Server,
        cell: &Cell,
        reps: &mut Reps,
    ) -> Result<Option<f64>, Stop> {
        let max = self.settings.adaptive.max_reps;
        self.progress.phase(format!(
            "{}: batch {}, {} of at most {max} repetitions done{}",
            reps.label,
            reps.batch + 1,
            reps.decode.len(),
            reps.decode
                .last()
                .map_or(String::new(), |t| format!(", last {t:.1} t/s"))
        ));
        let batch_start = Instant::now();
        let records = self.batch(server, &reps.req, cell.parallel).await?;
        let wall = batch_start.elapsed();
        let raws: Vec<RequestRaw> = records.iter().map(CompletionRecord::to_raw).collect();
        context_held(&raws, cell.depth, reps.req.n_predict).map_err(Stop::CellFailed)?;
        if reps.batch == 0 {
            reps.first_tokens = raws.iter().map(|r| r.token_ids.clone()).collect();
        }
        if cell.parallel > 1 {
            reps.aggregate.extend(measure::aggregate_tps(&raws, wall));
        }
        // The slots of a batch ran together: one repetition, their mean rate.
        let decode = measure::batch_decode_tps(&raws);
        reps.decode.extend(decode);
        for (slot, raw) in raws.into_iter().enumerate() {
            let line = reps.line(reps.batch, slot, wall, raw);
            self.push_raw(&line)?;
            reps.requests.push(line.request);
        }
        reps.batch += 1;
        Ok(decode)
    }

    fn push_raw(&mut self, line: &RawRepetition) -> Result<(), Stop> {
        self.writer
            .push_raw(line)
            .map_err(|e| Stop::Failed(format!("writing raw repetitions: {e}")))
    }

    /// `parallel` identical requests at once, raced against Ctrl-C (the backend races them
    /// against a server crash).
    async fn batch(
        &self,
        server: &B::Server,
        req: &CompletionRequest,
        parallel: u32,
    ) -> Result<Vec<CompletionRecord>, Stop> {
        if self.interrupted() {
            return Err(Stop::Interrupted);
        }
        tokio::select! {
            biased;
            _ = self.interrupt.wait() => Err(Stop::Interrupted),
            result = server.batch(req, parallel) => result.map_err(Stop::Failed),
        }
    }

    /// One untimed request per launch, so the timed ones find warm caches; for a baseline
    /// cell it is also the reference request (see [`Executor::untimed`]).
    async fn warm_up(
        &mut self,
        server: &B::Server,
        role: &ResolvedRole,
        cell: &Cell,
    ) -> Result<(), Stop> {
        self.progress.phase(format!("{}: warm-up", role.role.name));
        self.untimed(server, role, cell).await
    }

    /// An untimed request of `cell`, written as a warm-up line. For a baseline cell it asks
    /// for the two most probable tokens at each position (`n_probs`; never in a timed
    /// request, where it would cost a vocabulary sort per token): the reference that tells a
    /// near-tie flip of an accelerated cell from a lossy one.
    async fn untimed(
        &mut self,
        server: &B::Server,
        role: &ResolvedRole,
        cell: &Cell,
    ) -> Result<(), Stop> {
        let mut req = self.request(role, cell);
        if cell.mode.is_baseline() {
            req.extra.insert("n_probs".into(), 2.into());
        }
        let records = self.batch(server, &req, 1).await?;
        let key = self.key(role, cell);
        for rec in &records {
            let mut line = RawRepetition::new(&key, 0, true, rec.to_raw());
            line.launch = self.pass.index;
            self.push_raw(&line)?;
        }
        if let (true, Some(rec)) = (cell.mode.is_baseline(), records.first()) {
            self.baselines
                .set_reference(baseline_key(cell), rec.top_two.clone());
        }
        Ok(())
    }

    /// Does the server honour `speculative.n_max` per request? Two short requests with
    /// different draft lengths on a speculative server: equal drafted counts mean no.
    async fn probe_per_request(
        &self,
        server: &B::Server,
        role: &ResolvedRole,
        cell: &Cell,
    ) -> bool {
        let mut drafted = Vec::new();
        for n_max in [1u32, 8] {
            let mut req = self.request(role, cell);
            req.n_predict = req.n_predict.min(64);
            req.extra.insert("speculative.n_max".into(), n_max.into());
            req.extra.insert("speculative.n_min".into(), 0.into());
            match self.batch(server, &req, 1).await {
                Ok(r) => drafted.push(r[0].timings.draft_n.unwrap_or(0)),
                Err(_) => return false,
            }
        }
        let honoured = drafted[0] != drafted[1];
        self.progress.line(format!(
            "probe: drafted {} tokens with speculative.n_max=1 and {} with 8 per request: the draft \
             length is {}",
            drafted[0],
            drafted[1],
            if honoured { "honoured per request" } else { "a launch option in this build" }
        ));
        honoured
    }

    fn request(&self, role: &ResolvedRole, cell: &Cell) -> CompletionRequest {
        let prompt = workload::prompt(
            role.model.behavior.as_ref(),
            cell.workload,
            cell.depth,
            role.model.facts.vocab_size,
        );
        let mut req = CompletionRequest::new(prompt, self.settings.n_predict);
        if self.per_request_spec_k == Some(true) {
            if let Some(k) = cell.mode.spec_k() {
                req.extra.insert("speculative.n_max".into(), k.into());
            }
        }
        req
    }

    fn finish_all(
        &mut self,
        role: &ResolvedRole,
        cells: &[&Cell],
        outcome: impl Fn() -> CellOutcome,
    ) -> anyhow::Result<()> {
        cells
            .iter()
            .try_for_each(|cell| self.finish(role, cell, outcome()))
    }

    /// Writes the row of a finished cell and remembers baselines.
    fn finish(
        &mut self,
        role: &ResolvedRole,
        cell: &Cell,
        outcome: CellOutcome,
    ) -> anyhow::Result<()> {
        let key = self.key(role, cell);
        let earlier = self.pending.iter().position(|p| p.key == key);
        let outcome = match earlier {
            Some(i) => {
                let p = self.pending.remove(i);
                let launch = self.pass.index + 1;
                outcome::merge_launches(p.outcome, outcome, launch, cell.parallel as usize)
            }
            None => outcome,
        };
        if !self.pass.is_last() {
            let so_far = match &outcome {
                CellOutcome::Measured(m) => m
                    .metrics
                    .decode
                    .as_ref()
                    .map_or("measured".into(), |d| format!("{:.1} t/s", d.mean)),
                CellOutcome::NotMeasured(status, _) => status.to_string(),
            };
            self.progress.line(format!(
                "{} {} {} np={}: launch {} of {}: {so_far}",
                role.role.name,
                cell.mode,
                cell.workload,
                cell.parallel,
                self.pass.index + 1,
                self.pass.of
            ));
            self.pending.push(Pending {
                key,
                cell: cell.clone(),
                outcome,
            });
            return Ok(());
        }
        let baseline_key = baseline_key(cell);
        let baseline = self.baselines.get(&baseline_key);
        let mut row = cellrow::build(self.settings, role, cell, &key, &outcome, baseline);
        (row.launch_to_ready_ms, row.server_load_ms) = self.startup_ms;
        if let (true, CellOutcome::Measured(m)) = (cell.mode.is_baseline(), &outcome) {
            self.baselines.insert(baseline_key.clone(), Baseline::of(m));
        }
        self.writer
            .push(&row)
            .map_err(|e| anyhow::anyhow!("writing the results: {e}"))?;
        self.progress.cell_done(cellrow::one_line(&row));
        self.rows.push(row);
        if let Some(ab) = &mut self.ab {
            ab.finish(role, cell, &outcome, baseline_key)?;
        }
        Ok(())
    }

    fn key(&self, role: &ResolvedRole, cell: &Cell) -> CellKey {
        cellrow::key(self.settings, role, cell)
    }
}

/// Every request had the cell's depth in its context (the server counted at least `depth`
/// prompt tokens) and generated all `n_predict` tokens: a server whose slot context runs out
/// stops generating early, which would time fewer tokens than asked.
fn context_held(raws: &[RequestRaw], depth: u32, n_predict: u32) -> Result<(), String> {
    for t in raws.iter().map(|r| &r.timings) {
        if t.prompt_n < u64::from(depth) {
            return Err(format!(
                "the server counted {} prompt tokens, fewer than the depth {depth}",
                t.prompt_n
            ));
        }
        if t.predicted_n < u64::from(n_predict) {
            return Err(format!(
                "the server generated {} of {n_predict} tokens after a {}-token prompt: the slot's \
                 context ran out; give --ctx {} or more",
                t.predicted_n,
                t.prompt_n,
                t.prompt_n + u64::from(n_predict)
            ));
        }
    }
    Ok(())
}

/// The baseline a cell compares with: same role, workload, slots, threads and depth.
fn baseline_key(cell: &Cell) -> BaselineKey {
    BaselineKey {
        role: cell.role,
        workload: cell.workload.to_string(),
        parallel: cell.parallel,
        threads: cell.threads,
        depth: cell.depth,
    }
}

/// The server log must report the overridden expert count (`print_info: n_expert_used = N`).
fn moe_effective(log: &str, n: u32) -> Result<(), String> {
    let seen: Vec<u32> = log
        .lines()
        .filter_map(|l| l.split("n_expert_used").nth(1))
        .filter_map(|rest| {
            rest.trim_start_matches([' ', '='])
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    match seen.last() {
        Some(&used) if used == n => Ok(()),
        Some(&used) => Err(format!("the server used {used} experts per token, not {n}")),
        None => Err(format!(
            "the server log never reported n_expert_used (expected {n})"
        )),
    }
}

/// Harness CPU time as a percentage of the server's over the same interval.
fn cpu_share(start: CpuTimes, end: CpuTimes) -> Option<f64> {
    let ((h0, s0), (h1, s1)) = (start?, end?);
    let server = s1.checked_sub(s0)?.as_secs_f64();
    (server > 0.0).then(|| h1.saturating_sub(h0).as_secs_f64() / server * 100.0)
}

/// The repetitions of one cell so far, and what its requests need.
struct Reps {
    /// The request of every timed batch.
    req: CompletionRequest,
    /// The cell's key, for the raw lines.
    key: CellKey,
    /// `role mode workload np=N`, for the progress line.
    label: String,
    /// CPU times when the cell started.
    cpu_start: CpuTimes,
    /// When the cell started (the time budget).
    started: Instant,
    /// Every timed request.
    requests: Vec<RequestRaw>,
    /// Aggregate t/s of each batch of a parallel cell.
    aggregate: Vec<f64>,
    /// Token ids of each slot's first timed request.
    first_tokens: Vec<Vec<u32>>,
    /// Decode t/s of each batch (the stopping rule's input for unpaired cells).
    decode: Vec<f64>,
    /// Batches done (the next batch's index in the raw lines).
    batch: u32,
    /// Requests per batch (the cell's slots).
    parallel: u32,
    /// The raw lines' `rep` of batch 0: the batches of the cell's earlier launches.
    rep_offset: u32,
    /// The launch of the cell's server (0-based) for the raw lines.
    launch: u32,
}

impl Reps {
    /// A raw line of this cell's batch `batch`, slot `slot`.
    fn line(&self, batch: u32, slot: usize, wall: Duration, raw: RequestRaw) -> RawRepetition {
        let mut line = RawRepetition::new(&self.key, self.rep_offset + batch, false, raw);
        line.slot = slot as u32;
        line.batch_wall_ns = Some(wall.as_nanos() as u64);
        line.launch = self.launch;
        line
    }
}

impl Reps {
    /// The cell's measurements.
    fn finish(self, cpu_end: CpuTimes, pairing: Pairing) -> Measured {
        Measured {
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

/// What an accelerated launch gets beside it.
#[derive(Debug, Clone, PartialEq)]
enum PairPlan {
    /// Nothing: a baseline launch, or a run without pairing.
    Off,
    /// The partner is up.
    Ready,
    /// Pairing was wanted and is impossible; why.
    Impossible(String),
}

#[cfg(test)]
#[path = "execute_tests.rs"]
mod tests;

#[path = "execute_paired.rs"]
mod paired;
