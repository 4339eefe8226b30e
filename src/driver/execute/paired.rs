//! The paired half of the run loop (the decisions are its [`PairingPolicy`]'s): the
//! partner beside a launch (memory guard, launch, warm-up) and the paired repetitions of a
//! cell, one batch on each server in turn, never two at once, in the order the policy says.

use super::reps::Reps;
use super::{Executor, PairPlan, Partner, Stop, INTERRUPTED};
use crate::driver::cellrow;
use crate::driver::guard::{self, Fit};
use crate::driver::launch;
use crate::driver::outcome::{Measured, Pairing};
use crate::driver::pairing::{self, PairVerdict, PairedCell, Side};
use crate::driver::plan::{Cell, Launch, LaunchKey};
use crate::driver::resolve::ResolvedRole;
use crate::engine::backend::{Backend, CpuTimes, ServerHandle};
use crate::engine::request::CompletionRecord;
use crate::measure::{self, RequestRaw};
use std::time::{Duration, Instant};

/// What became of the partner's half of a pair.
enum Half {
    /// It ran; its decode t/s, when the server reported timings.
    Done(Option<f64>),
    /// The partner failed (crashed, stalled, refused); the reason.
    Lost(String),
}

/// The partner's CPU time while the cell's own server worked: what an idle server costs.
#[derive(Default)]
struct IdleCost {
    /// Partner CPU time during own batches (`None` once unreadable).
    cpu: Option<Duration>,
    /// Wall time of those batches.
    wall: Duration,
}

impl<B: Backend> Executor<'_, B> {
    /// Prepares the partner of a launch: none when the pairing gives it none; else the one
    /// already up, or a new one, when the guard says both fit ([`guard::check_pair`]). A
    /// pair that does not fit, or a partner that does not start, makes the launch unpaired,
    /// with the reason.
    pub(super) async fn pair_plan(
        &mut self,
        role: &ResolvedRole,
        launch: &Launch,
        first: &Cell,
    ) -> PairPlan {
        let Some(base_key) = self.rec.pairing.partner_key(&launch.key) else {
            return PairPlan::Off;
        };
        let base_need = launch::memory_need(role, &base_key);
        let need = launch::memory_need(role, &launch.key);
        let running = self.partner.is_some();
        let fit = match self.backend.memory() {
            Ok((available, total)) => {
                guard::check_pair(&base_need, &need, running, available, total)
            }
            Err(why) => Fit::Skip(why),
        };
        if let Fit::Skip(why) = fit {
            self.release_partner();
            return PairPlan::Impossible(format!("unpaired: {why}"));
        }
        if running {
            return PairPlan::Ready;
        }
        self.launch_partner(role, launch, base_key, first).await
    }

    /// Starts and warms up the partner for the group of `launch`.
    async fn launch_partner(
        &mut self,
        role: &ResolvedRole,
        launch: &Launch,
        base_key: LaunchKey,
        first: &Cell,
    ) -> PairPlan {
        let base_launch = Launch {
            role: launch.role,
            key: base_key,
            cells: Vec::new(),
        };
        let server = match self.start_side(role, &base_launch, Side::Partner) {
            Ok(server) => server,
            Err(why) => {
                return PairPlan::Impossible(format!(
                    "unpaired: the baseline server beside it did not start: {}",
                    first_line(&why)
                ))
            }
        };
        let twin = self.rec.pairing.partner_cell(first);
        if let Err(stop) = self.warm_up(&server, role, &twin).await {
            server.stop();
            let why = match stop {
                Stop::Failed(why) | Stop::CellFailed(why) => first_line(&why).to_string(),
                Stop::Interrupted => INTERRUPTED.to_string(),
            };
            return PairPlan::Impossible(format!(
                "unpaired: the baseline server beside it failed its warm-up: {why}"
            ));
        }
        self.partner = Some(Partner {
            group: pairing::group(launch),
            server,
        });
        PairPlan::Ready
    }

    /// The repetitions of one cell: paired when its partner is up, else unpaired (the row
    /// says why when pairing was wanted).
    pub(super) async fn measure_cell(
        &mut self,
        server: &B::Server,
        role: &ResolvedRole,
        cell: &Cell,
        plan: &PairPlan,
    ) -> Result<Measured, Stop> {
        let pairing = match plan {
            PairPlan::Off => Pairing::Off,
            PairPlan::Impossible(why) => Pairing::Unpaired(why.clone()),
            PairPlan::Ready => match self.partner.take() {
                Some(partner) => return self.paired_cell(server, partner, role, cell).await,
                None => Pairing::Unpaired(
                    "unpaired: the baseline server beside this launch failed in an earlier cell"
                        .into(),
                ),
            },
        };
        let mut m = self.repetitions(server, role, cell).await?;
        m.pairing = pairing;
        Ok(m)
    }

    /// A paired cell; the partner is kept for the next cell unless it failed.
    async fn paired_cell(
        &mut self,
        server: &B::Server,
        partner: Partner<B::Server>,
        role: &ResolvedRole,
        cell: &Cell,
    ) -> Result<Measured, Stop> {
        let result = self
            .paired_repetitions(server, &partner.server, role, cell)
            .await;
        match &result {
            Ok(m) if matches!(m.pairing, Pairing::Unpaired(_)) => partner.server.stop(),
            _ => self.partner = Some(partner),
        }
        result
    }

    /// Pairs until the adaptive rule on the pair ratios is satisfied; a partner that fails
    /// leaves the cell to finish unpaired on its own server. The pairing says what the pairs
    /// mean.
    async fn paired_repetitions(
        &mut self,
        server: &B::Server,
        partner: &B::Server,
        role: &ResolvedRole,
        cell: &Cell,
    ) -> Result<Measured, Stop> {
        let mut reps = self.new_reps(server, role, cell);
        let mut partner_reps = self.new_reps(partner, role, &self.rec.pairing.partner_cell(cell));
        // The partner's lines go under the cell's key on the partner's side.
        let partner_settings = self.rec.pairing.partner_settings().unwrap_or(self.settings);
        partner_reps.key = cellrow::key(partner_settings, role, cell);
        let mut idle = IdleCost {
            cpu: Some(Duration::ZERO),
            ..IdleCost::default()
        };
        let (pairs, lost) = self
            .pairs(
                server,
                partner,
                cell,
                &mut reps,
                &mut partner_reps,
                &mut idle,
            )
            .await?;
        if lost.is_some() {
            self.more_repetitions(server, cell, &mut reps).await?;
        }
        let verdict = self.rec.pairing.conclude(PairedCell {
            key: &reps.key,
            pairs,
            lost: lost.as_deref().map(|why| first_line(why).to_string()),
            partner: partner_reps.finish(partner.cpu_times(), Pairing::Off),
        });
        let PairVerdict { pairing, idle_cost } = verdict;
        if idle_cost {
            self.report_idle_cost(&reps, &pairing, &idle);
        }
        let mut m = reps.finish(server.cpu_times(), pairing);
        if idle_cost {
            m.partner_cpu_ms = idle.cpu.map(|d| d.as_secs_f64() * 1e3);
        }
        Ok(m)
    }

    /// Pairs until the adaptive rule on their ratios is satisfied, or the partner fails
    /// (then the reason).
    async fn pairs(
        &mut self,
        server: &B::Server,
        partner: &B::Server,
        cell: &Cell,
        reps: &mut Reps,
        partner_reps: &mut Reps,
        idle: &mut IdleCost,
    ) -> Result<(Vec<(f64, f64)>, Option<String>), Stop> {
        let mut pairs: Vec<(f64, f64)> = Vec::new();
        let adaptive = self.settings.adaptive;
        while (reps.batch as usize) < adaptive.max_reps.max(1)
            && (reps.batch == 0
                || adaptive.should_continue(&ratios(&pairs), reps.started.elapsed()))
        {
            match self
                .pair(server, partner, cell, reps, partner_reps, idle)
                .await?
            {
                Ok(pair) => pairs.extend(pair),
                Err(why) => return Ok((pairs, Some(why))),
            }
        }
        Ok((pairs, None))
    }

    /// One pair: a batch on each server in the pairing's order ([`pairing::order`]). `Ok(Err(why))` when the
    /// partner failed; `Ok(Ok(None))` when a side reported no timings.
    async fn pair(
        &mut self,
        server: &B::Server,
        partner: &B::Server,
        cell: &Cell,
        reps: &mut Reps,
        partner_reps: &mut Reps,
        idle: &mut IdleCost,
    ) -> Result<Result<Option<(f64, f64)>, String>, Stop> {
        let index = reps.batch;
        let (mut own, mut base) = (None, None);
        for side in self.rec.pairing.order(index as usize) {
            match side {
                Side::Own => {
                    let (before, start) = (partner.cpu_times(), Instant::now());
                    own = self.own_batch(server, cell, reps).await?;
                    idle.wall += start.elapsed();
                    let spent = server_cpu(before, partner.cpu_times());
                    idle.cpu = idle.cpu.zip(spent).map(|(sum, d)| sum + d);
                }
                Side::Partner => {
                    let label = reps.label.clone();
                    let batch = self.partner_batch(partner, cell, partner_reps, &label, index);
                    match batch.await? {
                        Half::Done(tps) => base = tps,
                        Half::Lost(why) => return Ok(Err(why)),
                    }
                }
            }
        }
        Ok(Ok(own.zip(base)))
    }

    /// The partner's batch of pair `index`, recorded in `reps` and, as the pairing says,
    /// on disk (partner lines under the cell's key, or the other side's own lines in its
    /// file).
    async fn partner_batch(
        &mut self,
        partner: &B::Server,
        cell: &Cell,
        reps: &mut Reps,
        label: &str,
        index: u32,
    ) -> Result<Half, Stop> {
        self.progress
            .phase(format!("{label}: pair {}, the server beside it", index + 1));
        let start = Instant::now();
        let records = match self.batch(partner, &reps.req, cell.parallel).await {
            Ok(records) => records,
            Err(Stop::Failed(why)) => return Ok(Half::Lost(why)),
            Err(stop) => return Err(stop),
        };
        let wall = start.elapsed();
        let raws: Vec<RequestRaw> = records.iter().map(CompletionRecord::to_raw).collect();
        let tps = measure::batch_decode_tps(&raws);
        if index == 0 {
            reps.first_tokens = raws.iter().map(|r| r.token_ids.clone()).collect();
        }
        reps.decode.extend(tps);
        for (slot, raw) in raws.into_iter().enumerate() {
            let mut line = reps.line(index, slot, wall, raw);
            let rec = &mut self.rec;
            rec.pairing
                .partner_line(&mut line, rec.writer)
                .map_err(Stop::Failed)?;
            reps.requests.push(line.request);
        }
        reps.batch += 1;
        Ok(Half::Done(tps))
    }

    /// A progress line: how many pairs, and the partner's CPU while the cell's server worked.
    fn report_idle_cost(&self, reps: &Reps, pairing: &Pairing, idle: &IdleCost) {
        let pairs = pairing
            .pair_count()
            .map_or("unpaired".to_string(), |n| format!("{n} A/B pairs"));
        let cpu = idle.cpu.map_or("unreadable".to_string(), |d| {
            format!("{:.0} ms", d.as_secs_f64() * 1e3)
        });
        self.progress.line(format!(
            "{}: {pairs}; the idle server beside it (the baseline, or side A) used {cpu} CPU during {:.0} ms of this cell's requests",
            reps.label,
            idle.wall.as_secs_f64() * 1e3
        ));
    }
}

/// Own / partner decode t/s of each pair: the stopping rule's input.
fn ratios(pairs: &[(f64, f64)]) -> Vec<f64> {
    pairs.iter().map(|(own, base)| own / base).collect()
}

/// Server CPU time between two readings.
fn server_cpu(before: CpuTimes, after: CpuTimes) -> Option<Duration> {
    after?.1.checked_sub(before?.1)
}

/// The first line of a reason (the rest is the tail of a log).
fn first_line(why: &str) -> &str {
    why.lines().next().unwrap_or("")
}
