//! `bench run`: turns a profile into cells, launches llama-server once per distinct launch
//! configuration, measures every cell, and writes each row the moment its cell ends.
//!
//! The steps are named functions: [`prepare`] (profile, engine, machine fingerprint, model
//! resolution; everything that can fail on bad input fails here, before any launch),
//! [`plan::plan_launches`] (cells grouped into launches), [`execute::Executor`] (servers and
//! measurements, through the [`backend::Backend`] seam) and [`table::render`] (reporting).
//!
//! Words used the same way throughout `driver/`:
//! - **role**: a profile role with its resolved model (and draft), [`resolve::ResolvedRole`].
//! - **cell**: one measured combination of a role's model, a mode, a workload, a slot
//!   count, a thread count and a context depth ([`plan::Cell`]); one row of the results CSV.
//! - **launch**: one llama-server process and the cells measured on it, grouped by the part
//!   of the mode the server fixes at start, its slots and its threads ([`plan::Launch`],
//!   [`plan::LaunchKey`]).
//! - **depth**: tokens of filler already in the context when a cell's decode is measured
//!   (llama-bench's `-d`); a per-request prompt, so depths share a launch.
//! - **request**: one `/completion` call; the stopping rule counts requests, and the row's
//!   `n_reps` is the number of timed requests.
//! - **batch**: the `parallel` identical requests sent at once, one per slot; a cell runs
//!   batches until the stopping rule has enough requests.
//! - **repetition**: one timed request, as the stopping rule (`min_repetitions`,
//!   `max_repetitions` of the profile) and the row's `n_reps` count them. The JSONL's `rep`
//!   field is older than this word list and numbers batches (the requests of one batch share
//!   it and differ in `slot`); with one slot the two agree.
//! - **warm-up**: one untimed request per launch before its first cell.

pub mod ab;
pub mod backend;
pub mod baselines;
pub mod cellrow;
pub mod execute;
#[cfg(test)]
mod fake;
pub mod guard;
pub mod interrupt;
pub mod launch;
pub mod outcome;
pub mod pairing;
pub mod plan;
pub mod progress;
pub mod remote;
pub mod resolve;
pub mod table;
pub mod validate;
pub mod workload;

pub use ab::AbArgs;
pub use validate::{validate_command, ValidateArgs};

use crate::guide::Expectations;
use crate::hardware::{self, AssessOptions, Hardware};
use crate::llamacpp::{self, Engine, EngineOptions, ServerArgs};
use crate::measure::Adaptive;
use crate::profile::{self, Profile};
use crate::results::{CellKey, ResultRow, ResultWriter, Status, SCHEMA_VERSION};
use anyhow::Context;
use backend::LlamaBackend;
use execute::Executor;
use interrupt::Interrupt;
use plan::{plan_launches, RoleCells};
use progress::Progress;
use resolve::{ResolveOptions, ResolvedRole};
use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

/// Exit code when cells failed or a mode did not take effect.
pub const EXIT_CELLS_FAILED: u8 = 1;
/// Exit code after Ctrl-C (128 + SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Arguments of `bench run`.
#[derive(Debug, Clone, PartialEq, clap::Args)]
#[command(group = clap::ArgGroup::new("what").required(true).multiple(true).args(["profile", "model", "server_url"]))]
pub struct RunArgs {
    /// Profile name (profiles/NAME.toml or the embedded copy; `bench profile list`) or path
    /// to a profile file.
    #[arg(long)]
    pub profile: Option<String>,
    /// A GGUF model to measure without a profile (repeatable): its quant, parameters and
    /// MoE shape are read from the file.
    #[arg(
        short = 'm',
        long = "model",
        value_name = "FILE",
        conflicts_with = "profile"
    )]
    pub model: Vec<PathBuf>,
    /// Draft model of the -m models' spec:K modes (measured on its own too).
    #[arg(long, value_name = "FILE", conflicts_with = "profile")]
    pub draft: Option<PathBuf>,
    /// Modes of the -m models, comma-separated: baseline, spec:K, lookup[:TYPE], moe:N, and
    /// combinations joined with `+` [default: baseline, and spec:8 with --draft].
    #[arg(long, value_delimiter = ',', conflicts_with = "profile")]
    pub modes: Option<Vec<crate::mode::Mode>>,
    /// Context per slot, tokens [default: the profile's; with -m 4096, or the model's own
    /// when smaller].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub ctx: Option<u32>,
    /// Directory the profile's model files are relative to.
    #[arg(long, env = "BENCH_MODELS_DIR", default_value = ".")]
    pub models_dir: PathBuf,
    /// Measure shape-exact synthetic stand-ins for roles whose model files are absent.
    #[arg(long)]
    pub synthetic: bool,
    /// Run only these roles of the profile, comma-separated (their drafts are still used).
    #[arg(long, value_delimiter = ',', conflicts_with = "model")]
    pub roles: Option<Vec<String>>,
    /// Result CSV (default: results/<profile>-<host>-<UTC timestamp>.csv).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Finish an interrupted run: append to this CSV, skipping cells it already holds.
    #[arg(long, conflicts_with = "out")]
    pub resume: Option<PathBuf>,
    /// Server thread counts, comma-separated (`1,2`); each is its own launch [default: the
    /// profile's `[engine] threads`, else the physical core count].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<Vec<u32>>,
    /// Context depths, comma-separated (`0,4096`): decode is measured after that many tokens
    /// of context, as llama-bench's -d [default: the profile's `[run] depth`, else 0].
    #[arg(long, value_delimiter = ',')]
    pub depth: Option<Vec<u32>>,
    /// An extra llama-server argument, checked against the engine's --help and passed
    /// verbatim after tpsbench's own (repeatable; split on whitespace, so `--server-arg
    /// "--numa distribute"` works); replaces the profile's `[engine] args`.
    #[arg(long = "server-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub server_arg: Vec<String>,
    /// Measure with an engine that fails the self-test (every row then says so).
    #[arg(long)]
    pub skip_self_test: bool,
    /// llama-server binary (wins over LLAMA_SERVER, the profile and discovery).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// Tokens generated per request (default: the profile's `[run] n_predict`).
    #[arg(long)]
    pub n_predict: Option<u32>,
    /// Workloads to run, comma-separated (default: the profile's `[run] workloads`).
    #[arg(long, value_delimiter = ',')]
    pub workloads: Option<Vec<workload::Workload>>,
    /// Most timed repetitions per cell (default: the profile's).
    #[arg(long)]
    pub max_reps: Option<u32>,
    /// Seconds spent measuring memory bandwidth for the roofline.
    #[arg(long, default_value_t = DEFAULT_BW_SECONDS)]
    pub bw_seconds: f64,
    /// No progress display and no per-cell lines.
    #[arg(long, short)]
    pub quiet: bool,
    /// Measure speedups from separate launches (Welch over independent samples) instead of
    /// pairing each accelerated server with a baseline server beside it.
    #[arg(long)]
    pub unpaired: bool,
    /// Launch every baseline cell's server this many times in a row and pool their
    /// repetitions: the spread of the launches' means is the `between_launch_cv` column, and
    /// every speedup interval includes it. 1 measures one launch (no launch variation known).
    #[arg(long, default_value_t = DEFAULT_BASELINE_LAUNCHES, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub baseline_launches: u32,
    /// Measure an already-running llama-server at this URL (http://127.0.0.1:PORT) instead
    /// of launching one: nothing is launched or stopped; its build, model, slots and context
    /// come from its /props and /slots; modes it was not started with are skipped. Loopback
    /// hosts only, unless --allow-remote-host.
    #[arg(long, value_name = "URL", conflicts_with_all = ["threads", "server_arg", "server_bin", "skip_self_test", "unpaired", "synthetic", "baseline_launches"])]
    pub server_url: Option<String>,
    /// Accept a --server-url host that is not loopback (127.0.0.1, ::1, localhost): the
    /// measurement then includes the network between here and there.
    #[arg(long, requires = "server_url")]
    pub allow_remote_host: bool,
}

/// `--baseline-launches` when not given.
pub const DEFAULT_BASELINE_LAUNCHES: u32 = 2;

/// `--bw-seconds` when not given.
pub const DEFAULT_BW_SECONDS: f64 = 1.0;

impl RunArgs {
    /// `bench run --profile NAME` with every other option at its default (the models
    /// directory from `BENCH_MODELS_DIR`, as on the command line).
    pub fn for_profile(name: &str) -> RunArgs {
        let models_dir = std::env::var_os("BENCH_MODELS_DIR")
            .filter(|d| !d.is_empty())
            .map_or_else(|| PathBuf::from("."), PathBuf::from);
        RunArgs {
            profile: Some(name.to_string()),
            model: Vec::new(),
            draft: None,
            modes: None,
            ctx: None,
            models_dir,
            synthetic: false,
            roles: None,
            out: None,
            resume: None,
            threads: None,
            depth: None,
            server_arg: Vec::new(),
            server_bin: None,
            skip_self_test: false,
            n_predict: None,
            workloads: None,
            max_reps: None,
            bw_seconds: DEFAULT_BW_SECONDS,
            quiet: false,
            unpaired: false,
            baseline_launches: DEFAULT_BASELINE_LAUNCHES,
            server_url: None,
            allow_remote_host: false,
        }
    }
}

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
fn stamp_machine(row: &mut ResultRow, hw: &Hardware) {
    row.cpu_model = hw.cpu_model.clone();
    row.physical_cores = hw.physical_cores as u32;
    row.logical_cores = hw.logical_cores as u32;
    row.ram_gib = (hw.ram_total_gib * 10.0).round() / 10.0;
    row.isa = hw.isa.present().join(" ");
    row.bandwidth_gbps = (hw.best_bandwidth_gbps > 0.0).then_some(hw.best_bandwidth_gbps);
}

/// Fills the harness and profile columns of a row.
fn stamp_harness(row: &mut ResultRow, profile: &Profile) {
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

/// What the run loop plans cells from: the profile and the sweeps.
pub struct RunPlan<'a> {
    /// The profile (its roles' modes and slots, its workloads).
    pub profile: &'a Profile,
    /// Threads, depths and server arguments.
    pub sweep: &'a Sweep,
}

impl RunEnv {
    /// What the run loop plans cells from.
    pub fn run_plan(&self) -> RunPlan<'_> {
        RunPlan {
            profile: &self.profile,
            sweep: &self.sweep,
        }
    }
}

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

/// Runs `bench run`.
pub fn command(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let outcome = run_profile(args)?;
    println!("{}", table::render(&outcome.rows));
    let servers = match &args.server_url {
        Some(url) => format!("on the running server at {url} (nothing launched)"),
        None => format!("in {} launches", outcome.launches),
    };
    println!(
        "{} cells {servers}; results: {} (raw repetitions: {})",
        outcome.cells,
        outcome.csv.display(),
        crate::results::jsonl_path_for(&outcome.csv).display()
    );
    Ok(ExitCode::from(outcome.exit_code()))
}

/// Runs a profile end to end and returns its rows; the CSV is complete when this returns.
pub fn run_profile(args: &RunArgs) -> anyhow::Result<RunOutcome> {
    if args.server_url.is_some() {
        return remote::run(args);
    }
    let (env, roles, mut writer) = prepare(args)?;
    let settings = env.settings();
    let backend = LlamaBackend {
        engine: &env.engine,
        logs_dir: env.logs_dir.clone(),
    };
    let (outcome, _) = execute(
        args,
        &env.run_plan(),
        &roles,
        &mut writer,
        &settings,
        backend,
        None,
    )?;
    Ok(outcome)
}

/// A's rows and every cell's B / A of `bench ab`.
type AbResults = (Vec<ResultRow>, Vec<ab::AbRatio>);

/// The run loop over every launch of the run through `backend` (with the A side of `bench
/// ab` when given), Ctrl-C watched; the rows and the A side afterwards.
fn execute<'a, Bk: backend::Backend>(
    args: &RunArgs,
    env: &RunPlan,
    roles: &'a [ResolvedRole],
    writer: &'a mut ResultWriter,
    settings: &'a RunSettings,
    backend: Bk,
    ab: Option<ab::AbSide<'a>>,
) -> anyhow::Result<(RunOutcome, Option<AbResults>)> {
    let cell_sets: Vec<RoleCells> = roles
        .iter()
        .map(|r| role_cells(env.profile, env.sweep, r, args.workloads.as_deref()))
        .collect();
    let launches = plan_launches(&cell_sets, false);
    let cells = plan::cell_count(&launches);
    let progress = Progress::new(cells, args.quiet);
    let done: HashSet<CellKey> = writer.finished().clone();
    let interrupt = Interrupt::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let csv = writer.csv_path().to_path_buf();
    let earlier = match args.resume {
        Some(_) => crate::results::read_raw(writer.jsonl_path()).unwrap_or_default(),
        None => Vec::new(),
    };
    let (rows, n_launches, ab) = runtime.block_on(async {
        let watcher = interrupt::spawn_ctrl_c(interrupt.clone());
        let mut exec = Executor::new(
            backend,
            settings,
            roles,
            writer,
            &progress,
            interrupt.clone(),
        );
        if let Some(ab) = ab {
            exec = exec.with_ab(ab);
        }
        exec.recover_baselines(&earlier);
        let result = exec.run_all(launches, &cell_sets, &done).await;
        watcher.abort();
        result?;
        let ab = exec.take_ab().map(ab::AbSide::into_results);
        anyhow::Ok((std::mem::take(&mut exec.rows), exec.launches, ab))
    })?;
    progress.finish();
    let outcome = RunOutcome {
        csv,
        rows,
        cells,
        launches: n_launches,
        interrupted: interrupt.is_set(),
    };
    Ok((outcome, ab))
}

/// Loads everything and checks every input before any server is launched.
fn prepare(args: &RunArgs) -> anyhow::Result<(RunEnv, Vec<ResolvedRole>, ResultWriter)> {
    let profile = load_profile(args)?;
    let expectations = profile.load_expectations()?;
    let selected = resolve::select_roles(&profile, args.roles.as_deref())?;
    let roles = resolve::resolve_roles(&profile, &selected, &resolve_options(args))?;
    crate::util::error::check_server_bin(args.server_bin.as_deref())?;
    let engine = llamacpp::ensure(
        &EngineOptions {
            server_bin: args.server_bin.clone(),
            profile_server_bin: profile.engine.server_bin.clone(),
            allow_install: true,
            skip_self_test: args.skip_self_test,
        },
        &crate::selftest::SelfTest::default(),
    )
    .map_err(crate::util::error::environment)?;
    let n_predict = args.n_predict.unwrap_or(profile.run.n_predict);
    let sweep = sweep(args, &profile, &engine)?;
    check_depths(&roles, &sweep.depths, n_predict, &workloads(args, &profile))?;
    let hardware = assess_hardware(args)?;
    let host = host_name();
    let writer = open_writer(args, &profile, &host)?;
    let logs_dir = writer.csv_path().with_extension("logs");
    std::fs::create_dir_all(&logs_dir)
        .with_context(|| format!("creating {}", logs_dir.display()))?;
    let mut sweep = sweep;
    if sweep.threads.is_empty() {
        sweep.threads = vec![hardware.physical_cores.max(1) as u32];
    }
    let adaptive = adaptive(args, &profile);
    let env = RunEnv {
        profile,
        engine,
        hardware,
        expectations,
        sweep,
        n_predict,
        adaptive,
        logs_dir,
        host,
        pair: !args.unpaired,
        baseline_launches: args.baseline_launches,
    };
    Ok((env, roles, writer))
}

/// Where the roles' model files are looked for, and whether stand-ins may be written.
fn resolve_options(args: &RunArgs) -> ResolveOptions {
    ResolveOptions {
        models_dir: args.models_dir.clone(),
        synthetic: args.synthetic,
        synth_cache: crate::synth::cache_dir(),
    }
}

/// This machine's facts and a short bandwidth measurement (`--bw-seconds`).
fn assess_hardware(args: &RunArgs) -> anyhow::Result<Hardware> {
    hardware::assess(&AssessOptions {
        models_dir: args.models_dir.clone(),
        bw_budget: Duration::from_secs_f64(args.bw_seconds.clamp(0.1, 60.0)),
        ..AssessOptions::default()
    })
}

/// This machine's host name (`host` when it cannot be read).
fn host_name() -> String {
    nix::unistd::gethostname().map_or_else(|_| "host".into(), |h| h.to_string_lossy().into_owned())
}

/// The repetition rule: the profile's, with `--max-reps`.
fn adaptive(args: &RunArgs, profile: &Profile) -> Adaptive {
    let run = &profile.run;
    Adaptive {
        min_reps: run.min_repetitions as usize,
        max_reps: args.max_reps.unwrap_or(run.max_repetitions) as usize,
        target_pct: run.ci_target_pct,
        budget: run.cell_time_budget,
    }
}

/// The profile named by `--profile`, or the one `-m` files make; `--ctx` applied.
fn load_profile(args: &RunArgs) -> anyhow::Result<Profile> {
    let mut profile = match &args.profile {
        Some(name) => profile::load(name)?,
        None => profile::from_models(&profile::ModelsSpec {
            models: args.model.clone(),
            draft: args.draft.clone(),
            modes: args.modes.clone(),
            ctx: args.ctx,
        })?,
    };
    if let Some(ctx) = args.ctx {
        for role in &mut profile.roles {
            role.ctx = ctx;
        }
    }
    Ok(profile)
}

fn open_writer(args: &RunArgs, profile: &Profile, host: &str) -> anyhow::Result<ResultWriter> {
    let writer = match (&args.resume, &args.out) {
        (Some(path), _) => ResultWriter::append_to(path),
        (None, Some(path)) => ResultWriter::create(path),
        (None, None) => {
            let path = crate::results::default_path(
                &crate::results::default_dir(),
                &profile.name,
                host,
                SystemTime::now(),
            );
            ResultWriter::create(&path)
        }
    };
    let writer = writer.map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in writer.warnings() {
        eprintln!("warning: {w}");
    }
    Ok(writer)
}

/// The cells of one role: its modes, the run's workloads, the role's slot counts, the
/// run's thread counts and depths.
fn role_cells(
    profile: &Profile,
    sweep: &Sweep,
    role: &ResolvedRole,
    workloads: Option<&[workload::Workload]>,
) -> RoleCells {
    RoleCells {
        modes: role.role.expanded_modes(),
        workloads: workloads.map_or_else(|| profile.run.workloads.clone(), <[_]>::to_vec),
        parallel: role.role.parallel.clone(),
        threads: sweep.threads.clone(),
        depths: sweep.depths.clone(),
    }
}

/// The run's workloads: `--workloads`, else the profile's.
fn workloads(args: &RunArgs, profile: &Profile) -> Vec<workload::Workload> {
    args.workloads
        .clone()
        .unwrap_or_else(|| profile.run.workloads.clone())
}

/// Thread counts, depths and server arguments: the command line's, else the profile's
/// (threads stay empty for the physical core count); the server arguments checked against
/// the engine's `--help`.
fn sweep(args: &RunArgs, profile: &Profile, engine: &Engine) -> anyhow::Result<Sweep> {
    let threads = args
        .threads
        .clone()
        .unwrap_or(profile.engine.threads.clone());
    let depths = args.depth.clone().unwrap_or(profile.run.depths.clone());
    for (what, values, min) in [("--threads", &threads, 1), ("--depth", &depths, 0)] {
        if let Some(problem) = profile::sweep_problem(what, values, min) {
            anyhow::bail!(problem);
        }
    }
    let server_args = match args.server_arg.is_empty() {
        true => profile.engine.args.clone(),
        false => ServerArgs::parse(&args.server_arg).map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    server_args.validate(&engine.caps).with_context(|| {
        format!(
            "checking the server arguments against {}",
            engine.server_bin.display()
        )
    })?;
    Ok(Sweep {
        threads,
        depths,
        server_args,
    })
}

/// Refuses a depth the context cannot hold: every role's `ctx` (tokens per slot) must fit
/// the depth, the workload's prompt and `n_predict`.
fn check_depths(
    roles: &[ResolvedRole],
    depths: &[u32],
    n_predict: u32,
    workloads: &[workload::Workload],
) -> anyhow::Result<()> {
    let Some(&deepest) = depths.iter().max().filter(|&&d| d > 0) else {
        return Ok(());
    };
    for role in roles.iter().filter(|r| r.skip.is_none()) {
        for &w in workloads {
            let behavior = role.model.behavior.as_ref();
            let (prompt, exact) = workload::prompt_tokens(behavior, w, deepest);
            let need = prompt + u64::from(n_predict);
            if need > u64::from(role.role.ctx) {
                let about = if exact { "" } else { "about " };
                anyhow::bail!(
                    "role `{}`: a context of {} tokens cannot hold depth {deepest} plus the {w} prompt and \
                     {n_predict} generated tokens ({about}{need} tokens); give --ctx {need} or more, or a smaller depth",
                    role.role.name,
                    role.role.ctx,
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn sweeps_and_server_args_parse_from_the_command_line() {
        let args = Cli::try_parse_from([
            "run",
            "-m",
            "a.gguf",
            "--threads",
            "1,2",
            "--depth",
            "0,4096",
            "--server-arg",
            "-fa",
            "--server-arg",
            "on",
            "--server-arg=--numa distribute",
        ])
        .unwrap()
        .args;
        assert_eq!(args.threads, Some(vec![1, 2]));
        assert_eq!(args.depth, Some(vec![0, 4096]));
        let words = ServerArgs::parse(&args.server_arg).unwrap();
        assert_eq!(words.to_string(), "-fa on --numa distribute");
    }

    #[test]
    fn a_depth_the_context_cannot_hold_is_refused_with_the_context_it_needs() {
        let profile = profile::parse(
            "name = \"d\"\n[[roles]]\nname = \"workers\"\nparams_b = 1.0\ntier = \"HOT\"\nctx = 512\n",
            profile::ProfileSource::Embedded("d".into()),
        )
        .unwrap();
        let cycle = crate::synth::Cycle::new(32, 1, 0.0, (0, 4000), 4096);
        let role = ResolvedRole {
            role: profile.roles[0].clone(),
            model: resolve::ResolvedModel {
                path: "m.gguf".into(),
                facts: Default::default(),
                synthetic: true,
                stand_in: false,
                behavior: Some(crate::synth::Behavior::Cycle(cycle)),
            },
            draft: None,
            skip: None,
            skip_spec: None,
        };
        let chat = [workload::Workload::Chat];
        // The synthetic chat prompt is 24 tokens: 256 + 24 + 64 = 344 fits 512.
        check_depths(std::slice::from_ref(&role), &[0, 256], 64, &chat).unwrap();
        // 500 + 24 + 64 = 588 does not.
        let err = check_depths(&[role], &[0, 500], 64, &chat).unwrap_err();
        assert_eq!(
            err.to_string(),
            "role `workers`: a context of 512 tokens cannot hold depth 500 plus the chat prompt and \
             64 generated tokens (588 tokens); give --ctx 588 or more, or a smaller depth"
        );
    }

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: RunArgs,
    }

    #[test]
    fn run_args_for_a_profile_are_what_the_bare_command_line_gives() {
        let parsed = Cli::try_parse_from(["run", "--profile", "smoke"])
            .unwrap()
            .args;
        assert_eq!(RunArgs::for_profile("smoke"), parsed);
        assert_eq!(parsed.bw_seconds, 1.0);
    }

    #[test]
    fn model_flags_need_model_files_and_roles_needs_a_profile() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|c| c.args);
        for bad in [
            &["run", "--profile", "smoke", "--draft", "d.gguf"][..],
            &["run", "--profile", "smoke", "--modes", "baseline"],
            &["run", "-m", "a.gguf", "--roles", "x"],
            &["run", "-m", "a.gguf", "--profile", "smoke"],
            &["run"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} must be refused");
        }
        for bad in [
            &["run", "-m", "a.gguf", "--threads", "0"][..],
            &["run", "-m", "a.gguf", "--depth", "-1"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} must be refused");
        }
        let remote = |more: &[&str]| {
            let mut line = vec!["run", "--server-url", "http://127.0.0.1:1"];
            line.extend(more);
            parse(&line)
        };
        for bad in [
            &["--threads", "2"][..],
            &["--server-arg", "-fa"],
            &["--server-bin", "x"],
        ] {
            assert!(
                remote(bad).is_err(),
                "{bad:?} must be refused with --server-url"
            );
        }
        for ok in [&[][..], &["-m", "a.gguf"], &["--profile", "smoke"]] {
            assert!(
                remote(ok).is_ok(),
                "{ok:?} must be accepted with --server-url"
            );
        }
        assert!(parse(&["run", "-m", "a.gguf", "--allow-remote-host"]).is_err());
        assert!(parse(&["run", "--server-url", "http://h:1", "--allow-remote-host"]).is_ok());
        let ok = parse(&["run", "-m", "a.gguf", "--modes", "baseline,spec:4"]).unwrap();
        assert_eq!(
            ok.modes,
            Some(vec![
                crate::mode::Mode::Baseline,
                crate::mode::Mode::Spec { k: 4 }
            ])
        );
    }
}
