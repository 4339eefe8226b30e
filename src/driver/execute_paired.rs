//! The paired half of the run loop (the decisions are in [`super::super::pairing`]): the
//! partner beside an accelerated launch (memory guard, launch, warm-up) and the A/B
//! repetitions of a cell, one batch on each server in turn, never two at once.

use super::*;
use crate::driver::ab::AbRatio;
use crate::driver::pairing::Side;
use crate::driver::plan::LaunchKey;
use crate::mode::Mode;

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
    /// Prepares the partner of a launch: none for a baseline launch or a run without
    /// pairing; else the one already up, or a new baseline server, when the guard says both
    /// fit ([`guard::check_pair`]). A pair that does not fit, or a partner that does not
    /// start, makes the launch unpaired, with the reason.
    pub(super) async fn pair_plan(
        &mut self,
        role: &ResolvedRole,
        launch: &Launch,
        first: &Cell,
    ) -> PairPlan {
        let ab = self.ab.is_some();
        if !ab && (launch.key.mode.is_baseline() || !self.settings.pair) {
            return PairPlan::Off;
        }
        let base_key = match ab {
            true => launch.key.clone(),
            false => LaunchKey::for_cell(&Mode::Baseline, launch.key.parallel, false)
                .at_threads(launch.key.threads),
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

    /// Starts and warms up a baseline server for the group of `launch`.
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
        let twin = self.partner_cell(first);
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
    /// leaves the cell to finish unpaired on its own server.
    async fn paired_repetitions(
        &mut self,
        server: &B::Server,
        partner: &B::Server,
        role: &ResolvedRole,
        cell: &Cell,
    ) -> Result<Measured, Stop> {
        let mut reps = self.new_reps(server, role, cell);
        let mut partner_reps = self.new_reps(partner, role, &self.partner_cell(cell));
        // Partner lines go under the cell's own key (flagged), or under A's key in `bench ab`.
        partner_reps.key = match &self.ab {
            Some(ab) => cellrow::key(ab.settings, role, cell),
            None => reps.key.clone(),
        };
        let mut pairs: Vec<(f64, f64)> = Vec::new();
        let mut idle = IdleCost {
            cpu: Some(Duration::ZERO),
            ..IdleCost::default()
        };
        let adaptive = self.settings.adaptive;
        let mut lost = None;
        while lost.is_none()
            && (reps.batch as usize) < adaptive.max_reps.max(1)
            && (reps.batch == 0
                || adaptive.should_continue(&ratios(&pairs), reps.started.elapsed()))
        {
            match self
                .pair(
                    server,
                    partner,
                    cell,
                    &mut reps,
                    &mut partner_reps,
                    &mut idle,
                )
                .await?
            {
                Ok(pair) => pairs.extend(pair),
                Err(why) => lost = Some(why),
            }
        }
        if self.ab.is_some() {
            return self
                .ab_paired(server, partner, cell, reps, partner_reps, pairs, lost)
                .await;
        }
        let pairing = match lost {
            None => Pairing::Paired(pairs),
            Some(why) => {
                self.more_repetitions(server, cell, &mut reps).await?;
                Pairing::Unpaired(format!(
                    "unpaired: the baseline server beside it failed after {} pairs: {}",
                    pairs.len(),
                    first_line(&why)
                ))
            }
        };
        self.report_idle_cost(&reps, &pairing, &idle);
        let mut m = reps.finish(server.cpu_times(), pairing);
        m.partner_cpu_ms = idle.cpu.map(|d| d.as_secs_f64() * 1e3);
        Ok(m)
    }

    /// `bench ab`: B's measurements of the cell (its speedup against B's own baseline, as in
    /// a run without pairing), A's kept for A's row, and B / A over the pairs.
    #[allow(clippy::too_many_arguments)]
    async fn ab_paired(
        &mut self,
        server: &B::Server,
        partner: &B::Server,
        cell: &Cell,
        mut reps: Reps,
        partner_reps: Reps,
        pairs: Vec<(f64, f64)>,
        lost: Option<String>,
    ) -> Result<Measured, Stop> {
        if lost.is_some() {
            self.more_repetitions(server, cell, &mut reps).await?;
        }
        let (b, a): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
        let ratio = measure::paired_ratio_ci(&b, &a)
            .ok()
            .filter(|_| lost.is_none());
        let a_side = partner_reps.finish(partner.cpu_times(), Pairing::Off);
        if let Some(ab) = &mut self.ab {
            if let Some(ci) = ratio {
                ab.ratios.push(AbRatio {
                    key: reps.key.clone(),
                    ci,
                    pairs: pairs.len() as u32,
                });
            }
            ab.pending = Some(match &lost {
                None => Ok(a_side),
                Some(why) => Err(first_line(why).to_string()),
            });
        }
        // A lost A server is stopped by the caller, which looks for `Unpaired`.
        let pairing = match lost {
            None => Pairing::Off,
            Some(why) => Pairing::Unpaired(format!(
                "the A server beside it failed after {} pairs: {}",
                pairs.len(),
                first_line(&why)
            )),
        };
        Ok(reps.finish(server.cpu_times(), pairing))
    }

    /// One pair: a batch on each server in [`pairing::order`]. `Ok(Err(why))` when the
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
        for side in pairing::order(index as usize) {
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

    /// The partner's batch of pair `index`, recorded in `reps`: as partner lines under the
    /// cell's key, or in `bench ab` as the A side's own lines in its file.
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
            match &mut self.ab {
                Some(ab) => ab.push_raw(&line).map_err(Stop::Failed)?,
                None => {
                    line.partner = true;
                    self.push_raw(&line)?;
                }
            }
            reps.requests.push(line.request);
        }
        reps.batch += 1;
        Ok(Half::Done(tps))
    }

    /// The cell the partner serves: the baseline of the same role, workload and slots, or
    /// in `bench ab` the same cell (on the A side).
    fn partner_cell(&self, cell: &Cell) -> Cell {
        match self.ab {
            Some(_) => cell.clone(),
            None => Cell {
                mode: Mode::Baseline,
                ..cell.clone()
            },
        }
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
