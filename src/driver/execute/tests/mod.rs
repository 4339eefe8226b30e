//! The run loop against the in-process fake (`driver/fake.rs`): every branch of `execute`
//! without llama-server. Expected figures come from the fake's script (an accelerated fake
//! server decodes twice as fast as a baseline one, and agrees token for token unless told
//! otherwise), not from the code under test.
//!
//! This file holds the fixtures (the profile, its roles, the settings, a run against the
//! fake); the tests are in one file per concern: [`cells`] (what a measured cell's row
//! says), [`failures`] (what goes wrong), [`launches`] (a baseline launched several times,
//! resume), [`paired`] (pairing) and [`ab`] (`bench ab`'s policy).

mod ab;
mod cells;
mod failures;
mod launches;
mod paired;

use super::cells::moe_effective;
use super::*;
use crate::driver::ab::AbSide;
use crate::driver::fake::{FakeBackend, Script, Seen};
use crate::driver::pairing::RunPairing;
use crate::driver::plan::plan_launches;
use crate::driver::resolve::ResolvedModel;
use crate::driver::run_loop::role_cells;
use crate::driver::settings::Sweep;
use crate::gguf::ModelFacts;
use crate::guide::Expectations;
use crate::measure::Adaptive;
use crate::profile::{self, ProfileSource};
use crate::results::{read_raw, read_results, Difference, SCHEMA_VERSION};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

const PROFILE: &str = r#"
name = "fake"

[run]
n_predict = 16
workloads = ["chat", "code-edit"]
min_repetitions = 3
max_repetitions = 4
ci_target_pct = 2.0
cell_time_budget_s = 30

[[roles]]
name = "target"
kind = "workers"
model = "target.gguf"
quant = "F16"
tier = "HOT"
draft = "draft"
modes = ["spec:4", "spec:8", "spec:16", "lookup"]
ctx = 512

[[roles]]
name = "draft"
kind = "draft"
model = "draft.gguf"
quant = "F16"
tier = "HOT"
ctx = 512

[[roles]]
name = "moe"
kind = "ingest"
model = "moe.gguf"
quant = "F16"
tier = "WARM"
params_b = 1.0
active_params_b = 0.5
modes = ["moe:2"]
ctx = 512
"#;

fn model(file: &str, experts: Option<u32>) -> ResolvedModel {
    ResolvedModel {
        path: PathBuf::from(file),
        facts: ModelFacts {
            architecture: Some("qwen2".into()),
            n_params: 10_000_000,
            file_bytes: 20_000_000,
            tensor_bytes: 20_000_000,
            kv_elements_per_token: 4096,
            expert_count: experts,
            expert_used_count: experts.map(|_| 4),
            ..ModelFacts::default()
        },
        synthetic: false,
        stand_in: false,
        behavior: None,
    }
}

/// The profile's roles named in `names`, with fake model facts.
fn roles(names: &[&str]) -> Vec<ResolvedRole> {
    let profile = profile::parse(PROFILE, ProfileSource::Embedded("fake".into())).unwrap();
    names
        .iter()
        .map(|name| {
            let role = profile.role(name).unwrap().clone();
            let draft = (*name == "target").then(|| model("draft.gguf", None));
            let experts = (*name == "moe").then_some(8);
            ResolvedRole {
                model: model(&format!("{name}.gguf"), experts),
                role,
                draft,
                skip: None,
                skip_spec: None,
            }
        })
        .collect()
}

fn settings(pair: bool) -> RunSettings {
    RunSettings {
        server_args: crate::llamacpp::ServerArgs::none(),
        n_predict: 16,
        adaptive: Adaptive {
            min_reps: 3,
            max_reps: 4,
            target_pct: 2.0,
            budget: Duration::from_secs(30),
        },
        pair,
        baseline_launches: 1,
        expectations: Expectations::guide(),
        noise: None,
        stamp: ResultRow {
            schema_version: SCHEMA_VERSION,
            host: "fakehost".into(),
            ..ResultRow::default()
        },
    }
}

/// What a run against the fake left behind.
struct Run {
    rows: Vec<ResultRow>,
    launches: usize,
    per_request_spec_k: Option<bool>,
    interrupted: bool,
    seen: Rc<Seen>,
    csv: PathBuf,
    _dir: tempfile::TempDir,
}

impl Run {
    fn row(&self, role: &str, mode: &str, workload: &str) -> &ResultRow {
        self.rows
            .iter()
            .find(|r| r.role == role && r.mode == mode && r.workload == workload)
            .unwrap_or_else(|| panic!("no row {role} {mode} {workload}: {:?}", self.rows))
    }

    fn statuses(&self) -> Vec<(String, String, Status)> {
        let row = |r: &ResultRow| (r.mode.to_string(), r.workload.clone(), r.status);
        self.rows.iter().map(row).collect()
    }
}

fn measure(script: Script, names: &[&str]) -> Run {
    measure_with(script, names, true)
}

/// As [`measure`], paired (`pair`) or with separate launches only (`--unpaired`).
fn measure_with(script: Script, names: &[&str], pair: bool) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("run.csv");
    let writer = ResultWriter::create(&csv).unwrap();
    let mut run = resume_roles(script, roles(names), writer, false, pair);
    run._dir = dir;
    run
}

/// Runs the profile's roles `names` against the fake, writing to `writer`; with `resume`,
/// the cells the file already holds are skipped and its baselines recovered.
fn resume(script: Script, names: &[&str], writer: ResultWriter, resume: bool) -> Run {
    resume_roles(script, roles(names), writer, resume, true)
}

/// No sweep: two threads, depth 0, no server arguments.
fn one_point() -> Sweep {
    Sweep {
        threads: vec![2],
        depths: vec![0],
        server_args: crate::llamacpp::ServerArgs::none(),
    }
}

fn resume_roles(
    script: Script,
    roles: Vec<ResolvedRole>,
    writer: ResultWriter,
    resume: bool,
    pair: bool,
) -> Run {
    run_swept(script, roles, writer, resume, settings(pair), &one_point())
}

/// Runs `roles` against the fake with the thread counts, depths and server arguments of
/// `sweep`.
fn run_swept(
    script: Script,
    roles: Vec<ResolvedRole>,
    mut writer: ResultWriter,
    resume: bool,
    mut settings: RunSettings,
    sweep: &Sweep,
) -> Run {
    settings.server_args = sweep.server_args.clone();
    let cell_sets = cell_sets(&roles, sweep);
    let launches = plan_launches(&cell_sets, false);
    let progress = Progress::new(plan::cell_count(&launches), true);
    let done = writer.finished().clone();
    let earlier = match resume {
        true => read_raw(writer.jsonl_path()).unwrap(),
        false => Vec::new(),
    };
    let csv = writer.csv_path().to_path_buf();
    let interrupt = script
        .interrupt_at_batch
        .as_ref()
        .map_or_else(Interrupt::default, |(_, i)| i.clone());
    let (backend, seen) = FakeBackend::new(script);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut pairing = RunPairing::of(&settings);
    let mut exec = Executor::new(
        backend,
        &settings,
        &roles,
        &mut writer,
        &progress,
        interrupt,
        &mut pairing,
    );
    exec.recover_baselines(&earlier);
    runtime
        .block_on(exec.run_all(launches, &cell_sets, &done))
        .unwrap();
    Run {
        rows: exec.take_rows(),
        launches: exec.launches,
        per_request_spec_k: exec.per_request_spec_k,
        interrupted: exec.interrupted(),
        seen,
        csv,
        _dir: tempfile::tempdir().unwrap(),
    }
}

/// The cells of `roles` with the profile's workloads and `sweep`'s threads and depths.
fn cell_sets(roles: &[ResolvedRole], sweep: &Sweep) -> Vec<RoleCells> {
    let profile = profile::parse(PROFILE, ProfileSource::Embedded("fake".into())).unwrap();
    roles
        .iter()
        .map(|r| role_cells(sweep, r, &profile.run.workloads))
        .collect()
}

fn assert_close(got: Option<f64>, want: f64) {
    let got = got.unwrap_or_else(|| panic!("no value, want {want}"));
    assert!((got - want).abs() < 0.02 * want, "{got} vs {want}");
}
