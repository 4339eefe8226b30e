//! The cells of one launch on its server: the per-request probe, the warm-up, then each
//! cell's timed batches until the stopping rule is satisfied (the unpaired repetitions; the
//! paired ones are `paired.rs`'s), every request raced against Ctrl-C and recorded raw.

use super::reps::Reps;
use super::{Executor, PairPlan, Stop};
use crate::driver::baselines::BaselineKey;
use crate::driver::outcome::{CellOutcome, Measured, Pairing};
use crate::driver::plan::{Cell, Launch};
use crate::driver::quiet;
use crate::driver::resolve::ResolvedRole;
use crate::driver::workload;
use crate::engine::backend::{Backend, ServerHandle};
use crate::engine::request::{CompletionRecord, CompletionRequest};
use crate::hardware::foreign::Snapshot;
use crate::measure::{self, RequestRaw};
use crate::results::{RawRepetition, Status};
use std::time::Instant;

impl<B: Backend> Executor<'_, B> {
    /// Probe (the first speculative launch), warm-up, then each cell, its row written as it
    /// ends; a failure of the server ends the launch, its remaining cells recorded as not run.
    pub(super) async fn measure_cells(
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
            let (outcome, fatal) = match (&warmup, &moe_check) {
                (Err(Stop::Interrupted), _) => (Stop::Interrupted.outcome(), true),
                (Err(Stop::Failed(reason) | Stop::CellFailed(reason)), _) => {
                    (Stop::Failed(reason.clone()).outcome(), true)
                }
                (Ok(()), Some(Err(why))) => (
                    CellOutcome::NotMeasured(Status::ModeNotEffective, why.clone()),
                    false,
                ),
                (Ok(()), _) if !self.quiet_before(server, role, cell).await => {
                    (Stop::Interrupted.outcome(), true)
                }
                (Ok(()), _) => self.cell_outcome(server, role, cell, i, plan).await,
            };
            self.rec.finish(role, cell, outcome)?;
            if fatal {
                return self.rec.abandon(role, &cells[i + 1..], self.interrupted());
            }
        }
        Ok(())
    }

    /// With `--when-noisy wait`, waits until the machine is quiet before a cell; false
    /// when Ctrl-C ended the wait.
    async fn quiet_before(&self, server: &B::Server, role: &ResolvedRole, cell: &Cell) -> bool {
        let what = format!(
            "{} {} {} np={}",
            role.role.name, cell.mode, cell.workload, cell.parallel
        );
        let pids = self.our_pids(server);
        let rule = self.settings.noise.as_ref();
        quiet::until_quiet(rule, &pids, &self.interrupt, self.progress, &what).await
    }

    /// Our servers' pids: the cell's and the partner's beside it.
    pub(super) fn our_pids(&self, server: &B::Server) -> Vec<u32> {
        let partner = self.partner.as_ref().and_then(|p| p.server.pid());
        server.pid().into_iter().chain(partner).collect()
    }

    /// The outcome of one cell on a warm server, and whether it ends the launch.
    async fn cell_outcome(
        &mut self,
        server: &B::Server,
        role: &ResolvedRole,
        cell: &Cell,
        index_in_launch: usize,
        plan: &PairPlan,
    ) -> (CellOutcome, bool) {
        match self
            .reference_then_measure(server, role, cell, index_in_launch, plan)
            .await
        {
            Ok(measured) => (CellOutcome::Measured(Box::new(measured)), false),
            Err(stop) => {
                let fatal = stop.is_fatal();
                (stop.outcome(), fatal)
            }
        }
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
    pub(super) async fn repetitions(
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
    pub(super) fn new_reps(&self, server: &B::Server, role: &ResolvedRole, cell: &Cell) -> Reps {
        let key = self.rec.key(role, cell);
        let rep_offset = self.rec.rep_offset(&key);
        Reps {
            rep_offset,
            launch: self.rec.pass.index,
            req: self.request(role, cell),
            key,
            label: format!(
                "{} {} {} np={}",
                role.role.name, cell.mode, cell.workload, cell.parallel
            ),
            cpu_start: server.cpu_times(),
            load_start: self
                .settings
                .noise
                .and_then(|_| Snapshot::take(&self.our_pids(server)).ok()),
            pids: self.our_pids(server),
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
    pub(super) async fn more_repetitions(
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
    pub(super) async fn own_batch(
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
            self.rec.push_raw(&line).map_err(Stop::Failed)?;
            reps.requests.push(line.request);
        }
        reps.batch += 1;
        Ok(decode)
    }

    /// `parallel` identical requests at once, raced against Ctrl-C (the backend races them
    /// against a server crash).
    pub(super) async fn batch(
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
    pub(super) async fn warm_up(
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
    pub(super) async fn untimed(
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
        let key = self.rec.key(role, cell);
        for rec in &records {
            let mut line = RawRepetition::new(&key, 0, true, rec.to_raw());
            line.launch = self.rec.pass.index;
            self.rec.push_raw(&line).map_err(Stop::Failed)?;
        }
        if let (true, Some(rec)) = (cell.mode.is_baseline(), records.first()) {
            self.rec
                .baselines
                .set_reference(BaselineKey::of(cell), rec.top_two.clone());
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

    /// The request of `cell`: its prompt, and its draft length when the server takes it
    /// per request.
    pub(super) fn request(&self, role: &ResolvedRole, cell: &Cell) -> CompletionRequest {
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

/// The server log must report the overridden expert count (`print_info: n_expert_used = N`).
pub(super) fn moe_effective(log: &str, n: u32) -> Result<(), String> {
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
