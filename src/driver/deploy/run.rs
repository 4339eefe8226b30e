//! A deployment's phases: every server launched and warmed, then rounds of phases, each role
//! served alone (the others resident and idle) and all of them together, the order turning
//! each round (alone then together, then together then alone) so that a drift of the
//! machine falls on both sides. Each phase of each role is one row, written when it ends.
//!
//! A role whose server cannot start, or dies, fails its own rows with the reason; the
//! others go on. Ctrl-C or SIGTERM stops sending at once, keeps the rows of finished phases
//! (and the requests of the interrupted one) and stops every server.

use super::phase::{phases_of, Phase};
use super::plan::Member;
use super::warm;
use crate::driver::interrupt::Interrupt;
use crate::driver::launch;
use crate::driver::load::{self, LoadSpec, Mix, PhaseRecord};
use crate::driver::progress::Progress;
use crate::driver::quiet;
use crate::driver::serve::row;
use crate::driver::settings::RunSettings;
use crate::driver::workload::Workload;
use crate::engine::backend::{Backend, ServerHandle};
use crate::engine::LaunchSpec;
use crate::hardware::foreign::{ForeignLoad, Snapshot};
use crate::hardware::pagecache::ColdRead;
use crate::profile::Residency;
use crate::results::{ResultRow, ResultWriter, Status};
use futures_util::future::join_all;
use std::time::Instant;

/// The deployment's identity on every row.
pub struct Stamp {
    /// `deploy-<UTC timestamp>`.
    pub id: String,
    /// The roles joined with `+`.
    pub roles: String,
    /// The machine's read bandwidth with the deployment's threads (GB/s).
    pub bandwidth_gbps: Option<f64>,
}

/// One member while the deployment runs: its server, or why it has none.
struct Slot<'m, S> {
    member: &'m Member<'m>,
    mix: Mix,
    server: Option<S>,
    down: Option<(Status, String)>,
}

/// What a deployment keeps while it runs.
pub struct Deploying<'a, B: Backend> {
    pub backend: B,
    pub settings: &'a RunSettings,
    pub workloads: &'a [Workload],
    pub writer: &'a mut ResultWriter,
    pub progress: Progress,
    pub interrupt: Interrupt,
    pub stamp: Stamp,
    pub rows: Vec<ResultRow>,
    pub launches: usize,
    /// The deployment's servers (theirs is not foreign load).
    pub pids: Vec<u32>,
}

impl<B: Backend> Deploying<'_, B> {
    /// Launches every member, runs `rounds` rounds, and stops every server.
    pub async fn run(&mut self, members: &[Member<'_>], rounds: u32) -> anyhow::Result<()> {
        let mut slots = Vec::new();
        for member in members {
            let slot = self.start(member).await?;
            slots.push(slot);
            if self.interrupt.is_set() {
                break;
            }
        }
        self.pids = slots
            .iter()
            .filter_map(|s| s.server.as_ref()?.pid())
            .collect();
        let result = self.rounds(&mut slots, rounds).await;
        for slot in slots {
            if let Some(server) = slot.server {
                server.stop();
            }
        }
        result
    }

    async fn rounds(
        &mut self,
        slots: &mut [Slot<'_, B::Server>],
        rounds: u32,
    ) -> anyhow::Result<()> {
        for round in 1..=rounds {
            for phase in phases_of(round) {
                if self.interrupt.is_set() {
                    return Ok(());
                }
                if phase == Phase::Alone {
                    for slot in slots.iter_mut() {
                        self.alone(slot, round).await?;
                    }
                } else {
                    self.together(slots, round).await?;
                }
            }
        }
        Ok(())
    }

    /// Starts a member's server (confined to its CPUs) and sends one untimed request; a
    /// WARM member is first started cold and stopped, and its two starts are rows.
    async fn start<'m>(&mut self, member: &'m Member<'m>) -> anyhow::Result<Slot<'m, B::Server>> {
        let mix = crate::driver::serve::request_mix(
            member.role,
            &member.load,
            self.workloads,
            self.settings.n_predict,
        );
        let mut slot = Slot {
            member,
            mix,
            server: None,
            down: None,
        };
        let mut spec = launch::launch_spec(member.role, &member.key, &self.settings.server_args);
        spec.cpus = member.cpus.clone();
        if let Some(why) = self.backend.refuses(&spec) {
            slot.down = Some((Status::Skipped, why));
            return Ok(slot);
        }
        let is_warm = member.role.role.tier == Residency::Warm;
        if is_warm {
            self.cold_start(&slot, &spec).await?;
        }
        let resident = is_warm
            .then(|| warm::resident(&member.role.model.path))
            .flatten();
        let launched = Instant::now();
        match self.launch(member, &spec, "") {
            Ok(server) => match server.request(&slot.mix.entries[0].request).await {
                Ok(first) => {
                    if is_warm {
                        let start = warm::Start::of(&server, launched, &first, resident);
                        self.start_row(&slot, Phase::WarmStart, &start, None)?;
                    }
                    slot.server = Some(server);
                }
                Err(why) => {
                    server.stop();
                    slot.down = Some((Status::Failed, format!("warm-up request: {why}")));
                }
            },
            Err(why) => slot.down = Some((Status::Failed, why)),
        }
        Ok(slot)
    }

    /// Launches a member's server with `spec`; `what` tells a cold start apart in the log's
    /// name and the progress line.
    fn launch(
        &mut self,
        member: &Member<'_>,
        spec: &LaunchSpec,
        what: &str,
    ) -> Result<B::Server, String> {
        self.launches += 1;
        self.progress.phase(format!(
            "{}: launching {}{what}",
            member.name(),
            member.key.label()
        ));
        let log_name = launch::log_name(self.launches, member.name(), &member.key);
        let role = member.role;
        let bytes =
            role.model.facts.tensor_bytes + role.draft.as_ref().map_or(0, |d| d.facts.tensor_bytes);
        self.backend.launch(spec, &log_name, bytes)
    }

    /// A WARM member started with its files' pages evicted: the storage's read rate for
    /// the model first, then the launch, the first request, and the stop.
    async fn cold_start(
        &mut self,
        slot: &Slot<'_, B::Server>,
        spec: &LaunchSpec,
    ) -> anyhow::Result<()> {
        let member = slot.member;
        let draft = spec.draft.as_deref();
        let storage = match warm::prepare_cold(&member.role.model.path, draft) {
            Ok(read) => Some(read),
            Err(why) => {
                self.progress
                    .line(format!("{}: cold start: {why}", member.name()));
                None
            }
        };
        let resident = warm::resident(&member.role.model.path);
        let launched = Instant::now();
        let server = match self.launch(member, spec, " (cold)") {
            Ok(server) => server,
            Err(why) => return self.start_failed(slot, Phase::ColdStart, why),
        };
        let first = server.request(&slot.mix.entries[0].request).await;
        let result = match first {
            Ok(first) => {
                let start = warm::Start::of(&server, launched, &first, resident);
                self.start_row(slot, Phase::ColdStart, &start, storage.as_ref())
            }
            Err(why) => self.start_failed(slot, Phase::ColdStart, why),
        };
        server.stop();
        result
    }

    /// The row of a WARM member's start.
    fn start_row(
        &mut self,
        slot: &Slot<'_, B::Server>,
        phase: Phase,
        start: &warm::Start,
        storage: Option<&ColdRead>,
    ) -> anyhow::Result<()> {
        let key = self.key(slot, phase, None);
        let mut built = row::base(self.settings, slot.member.role, &key, Status::Ok);
        start.fill(&mut built, slot.member.role.model.facts.file_bytes, storage);
        self.stamp_row(&mut built, slot.member);
        self.push(built)
    }

    fn start_failed(
        &mut self,
        slot: &Slot<'_, B::Server>,
        phase: Phase,
        why: String,
    ) -> anyhow::Result<()> {
        let key = self.key(slot, phase, None);
        let mut built = row::base(self.settings, slot.member.role, &key, Status::Failed);
        built.reason = why;
        self.stamp_row(&mut built, slot.member);
        self.push(built)
    }

    /// One role served while the others stay idle.
    async fn alone(&mut self, slot: &mut Slot<'_, B::Server>, round: u32) -> anyhow::Result<()> {
        if self.interrupt.is_set() {
            return Ok(());
        }
        let Some(server) = slot.server.as_ref().filter(|_| slot.down.is_none()) else {
            return self.not_served(slot, Phase::Alone, round);
        };
        let label = format!(
            "round {round}: {} alone, {}",
            slot.member.name(),
            slot.member.load.points[0]
        );
        let start = self.before_phase(label).await;
        let spec = spec_of(slot.member);
        let record = load::run_phase(server, &spec, &slot.mix, &self.interrupt).await;
        let foreign = start.and_then(|s| s.until(&Snapshot::take(&self.pids).ok()?));
        self.record(slot, Phase::Alone, round, &record, foreign.as_ref())
    }

    /// Waits for a quiet machine when the run asks to, shows the phase, and takes the
    /// snapshot its foreign load is measured from (the deployment's servers are ours).
    async fn before_phase(&mut self, label: String) -> Option<Snapshot> {
        let rule = self.settings.noise.as_ref();
        quiet::until_quiet(rule, &self.pids, &self.interrupt, &self.progress, &label).await;
        self.progress.phase(label);
        rule.and_then(|_| Snapshot::take(&self.pids).ok())
    }

    /// Every role that is up served at once, each under its own load.
    async fn together(
        &mut self,
        slots: &mut [Slot<'_, B::Server>],
        round: u32,
    ) -> anyhow::Result<()> {
        let start = self
            .before_phase(format!("round {round}: every role together"))
            .await;
        let interrupt = self.interrupt.clone();
        let phases = slots.iter().map(|slot| {
            let server = slot.server.as_ref().filter(|_| slot.down.is_none());
            let spec = spec_of(slot.member);
            let interrupt = &interrupt;
            async move {
                match server {
                    Some(server) => {
                        Some(load::run_phase(server, &spec, &slot.mix, interrupt).await)
                    }
                    None => None,
                }
            }
        });
        let records = join_all(phases).await;
        let foreign = start.and_then(|s| s.until(&Snapshot::take(&self.pids).ok()?));
        for (slot, record) in slots.iter_mut().zip(records) {
            match record {
                Some(record) => {
                    self.record(slot, Phase::Together, round, &record, foreign.as_ref())?
                }
                None => self.not_served(slot, Phase::Together, round)?,
            }
        }
        Ok(())
    }

    /// The row of a phase that ran; a phase in which no request of a role completed marks
    /// the role down (its server died or refuses), with the first error as the reason.
    fn record(
        &mut self,
        slot: &mut Slot<'_, B::Server>,
        phase: Phase,
        round: u32,
        record: &PhaseRecord,
        foreign: Option<&ForeignLoad>,
    ) -> anyhow::Result<()> {
        let member = slot.member;
        let plan = &member.load;
        let summary = load::summarize(record, &plan.slo);
        let key = self.key(slot, phase, Some(round));
        let mut built = row::build(self.settings, member.role, &key, record, &summary, plan);
        self.stamp_row(&mut built, member);
        // No request answered: the server is gone or refuses (a noisy phase refused by
        // --when-noisy refuse fails only its row).
        if built.status == Status::Failed {
            slot.down = Some((Status::Failed, built.reason.clone()));
        }
        quiet::judge(&mut built, foreign, self.settings.noise.as_ref());
        for raw in row::raw_lines(&key, record) {
            self.writer.push_raw(&raw)?;
        }
        self.push(built)
    }

    /// The row of a phase a member could not serve (it is down), with the reason.
    fn not_served(
        &mut self,
        slot: &Slot<'_, B::Server>,
        phase: Phase,
        round: u32,
    ) -> anyhow::Result<()> {
        let (status, reason) = slot
            .down
            .clone()
            .unwrap_or((Status::Failed, "the server is not running".into()));
        let key = self.key(slot, phase, Some(round));
        let mut built = row::base(self.settings, slot.member.role, &key, status);
        built.reason = reason;
        self.stamp_row(&mut built, slot.member);
        self.push(built)
    }

    /// The cell key of a member's row: its serving key with the phase and, for a round's
    /// phase, the round.
    fn key(
        &self,
        slot: &Slot<'_, B::Server>,
        phase: Phase,
        round: Option<u32>,
    ) -> crate::results::CellKey {
        let member = slot.member;
        let mut key = row::key(
            self.settings,
            member.role,
            &member.key,
            &slot.mix,
            &member.load.points[0],
        );
        key.deploy_phase = phase.to_string();
        key.deploy_round = round;
        key
    }

    fn stamp_row(&self, row: &mut ResultRow, member: &Member<'_>) {
        row.deployment_id = self.stamp.id.clone();
        row.deploy_roles = self.stamp.roles.clone();
        row.cpus = member
            .cpus
            .as_ref()
            .map_or_else(String::new, |c| c.to_string());
        row.role_bandwidth_gbps = member.bandwidth_gbps;
        row.deploy_bandwidth_gbps = self.stamp.bandwidth_gbps;
    }

    fn push(&mut self, built: ResultRow) -> anyhow::Result<()> {
        self.writer.push(&built)?;
        self.progress.cell_done(super::table::line(&built));
        self.rows.push(built);
        Ok(())
    }
}

/// The load spec of a member's one point.
fn spec_of(member: &Member<'_>) -> LoadSpec {
    LoadSpec {
        pattern: member.load.points[0],
        bounds: member.load.bounds,
        seed: member.load.seed,
    }
}
