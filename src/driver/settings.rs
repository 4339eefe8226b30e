//! What stays fixed for a whole run, made once from the command's settings before any
//! launch: [`RunEnv`] (profile, engine, machine, sweeps), [`RunSettings`] (what the run
//! loop needs of it, with the row stamp every cell's row starts from) and [`RunPlan`]
//! (what the loop plans cells from); and the stamping of the machine, engine, harness and
//! profile columns.

use super::workload::Workload;
use crate::guide::Expectations;
use crate::hardware::Hardware;
use crate::llamacpp::{Engine, ServerArgs};
use crate::measure::Adaptive;
use crate::profile::Profile;
use crate::results::{ResultRow, SCHEMA_VERSION};
use std::path::PathBuf;

/// Everything fixed for the whole run; rows are stamped from it.
pub struct RunEnv {
    /// The profile.
    pub profile: Profile,
    /// The engine.
    pub engine: Engine,
    /// The machine.
    pub hardware: Hardware,
    /// Expected speed table (the guide's or a calibration).
    pub expectations: Expectations,
    /// The sweeps and extra server arguments of this run.
    pub sweep: Sweep,
    /// The run's workloads (`--workloads`, else the profile's).
    pub workloads: Vec<Workload>,
    /// Tokens per request.
    pub n_predict: u32,
    /// Repetition rule.
    pub adaptive: Adaptive,
    /// Server logs of this run.
    pub logs_dir: PathBuf,
    /// Host name.
    pub host: String,
    /// Pair speedups with a baseline server beside the accelerated one.
    pub pair: bool,
    /// Launches of every baseline cell's server.
    pub baseline_launches: u32,
    /// What counts as a noisy cell and what to do about it.
    pub noise: super::quiet::QuietRule,
}

/// What a run varies beyond the profile's roles, modes, workloads and slots, and the extra
/// server arguments every launch gets: from the command line, else the profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    /// Server thread counts, each its own launch.
    pub threads: Vec<u32>,
    /// Context depths, each its own cell.
    pub depths: Vec<u32>,
    /// Extra llama-server arguments (checked against the engine before any launch).
    pub server_args: ServerArgs,
}

/// What the run loop needs of the run: fixed for the whole run.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Extra llama-server arguments of every launch.
    pub server_args: ServerArgs,
    /// Tokens per request.
    pub n_predict: u32,
    /// Repetition rule.
    pub adaptive: Adaptive,
    /// Pair each accelerated cell with a baseline server beside it (the speedup's interval
    /// over A/B pairs); false: separate launches only.
    pub pair: bool,
    /// Launches of every baseline cell's server, one after the other (at least 1; 2 and
    /// more measure the launch-to-launch variation).
    pub baseline_launches: u32,
    /// Expected speed table (the guide's or a calibration).
    pub expectations: Expectations,
    /// The foreign load of each cell is sampled and judged by this rule; `None`: not
    /// sampled (a running server that is not ours, whose CPU would count as foreign; the
    /// unit tests).
    pub noise: Option<super::quiet::QuietRule>,
    /// A row with the machine, engine, harness and profile columns filled: every cell's row
    /// starts from it.
    pub stamp: ResultRow,
}

impl RunEnv {
    /// The settings the run loop works with.
    pub fn settings(&self) -> RunSettings {
        let mut stamp = ResultRow {
            schema_version: SCHEMA_VERSION,
            ..ResultRow::default()
        };
        self.stamp(&mut stamp);
        RunSettings {
            server_args: self.sweep.server_args.clone(),
            n_predict: self.n_predict,
            adaptive: self.adaptive,
            pair: self.pair,
            baseline_launches: self.baseline_launches,
            expectations: self.expectations.clone(),
            noise: Some(self.noise),
            stamp,
        }
    }

    /// Fills the machine, engine, harness and profile columns of a row.
    pub fn stamp(&self, row: &mut ResultRow) {
        row.host = self.host.clone();
        stamp_machine(row, &self.hardware);
        stamp_engine(row, &self.engine);
        stamp_harness(row, &self.profile);
    }
}

/// Fills the machine columns of a row (the host's name is the caller's).
pub(super) fn stamp_machine(row: &mut ResultRow, hw: &Hardware) {
    row.cpu_model = hw.cpu_model.clone();
    row.physical_cores = hw.physical_cores as u32;
    row.logical_cores = hw.logical_cores as u32;
    row.ram_gib = (hw.ram_total_gib * 10.0).round() / 10.0;
    row.isa = hw.isa.present().join(" ");
    row.bandwidth_gbps = (hw.best_bandwidth_gbps > 0.0).then_some(hw.best_bandwidth_gbps);
    let steady = hw.centre_bandwidth_gbps > 0.0;
    row.bandwidth_centre_gbps = steady.then_some(hw.centre_bandwidth_gbps);
    row.bandwidth_spread_pct = steady.then_some(hw.centre_bandwidth_spread_pct);
}

/// Fills the harness and profile columns of a row.
pub(super) fn stamp_harness(row: &mut ResultRow, profile: &Profile) {
    row.harness_version = env!("CARGO_PKG_VERSION").to_string();
    row.harness_git_commit = option_env!("TPSBENCH_GIT_COMMIT").unwrap_or("").to_string();
    row.profile = profile.name.clone();
    row.profile_hash = profile.content_hash.clone();
}

/// Fills the engine columns of a row (`bench ab` stamps its two sides with two engines).
pub fn stamp_engine(row: &mut ResultRow, engine: &Engine) {
    {
        let id = &engine.identity;
        row.engine_version = id.version_line.clone();
        row.engine_package_version = id.package_version.clone().unwrap_or_default();
        row.engine_server_sha256 = id.server_sha256.clone();
        row.engine_system_info = id
            .system_info
            .clone()
            .unwrap_or_else(|| id.build_flags.join(" "));
        row.engine_sha256 = id.engine_sha256.clone();
        row.engine_variant = id.variant.clone().unwrap_or_default();
        row.engine_self_test = id.self_test.clone();
    }
}

/// What the run loop plans cells from, and how it runs them.
pub struct RunPlan<'a> {
    /// Threads, depths and server arguments.
    pub sweep: &'a Sweep,
    /// The workloads of every role.
    pub workloads: &'a [Workload],
    /// No progress display and no per-cell lines.
    pub quiet: bool,
    /// The results file holds an interrupted run: its baselines are recovered.
    pub resume: bool,
    /// Serving under load instead of repeated batches.
    pub load: Option<&'a super::serve::args::LoadPlan>,
}

impl RunEnv {
    /// What the run loop plans cells from.
    pub fn run_plan<'a>(
        &'a self,
        quiet: bool,
        resume: bool,
        load: Option<&'a super::serve::args::LoadPlan>,
    ) -> RunPlan<'a> {
        RunPlan {
            sweep: &self.sweep,
            workloads: &self.workloads,
            quiet,
            resume,
            load,
        }
    }
}
