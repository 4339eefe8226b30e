//! `bench ab`: two engines, or two sets of llama-server arguments, on the same cells, with
//! the paired measurement of `bench run`: for every launch the A server (the reference) and
//! the B server are up together, their requests alternate one batch at a time, and each
//! cell gets the ratio B / A with a paired 95% interval. The way to test an engine upgrade on
//! a noisy machine: a slow phase of the machine slows both members of a pair.
//!
//! The run loop is `bench run`'s, handed the A side ([`side::AbSide`]) as its pairing
//! policy: B's servers are the cells' own, A's the partners. Each side's rows go to its own CSV (and
//! JSONL), `<out stem>-a.csv` and `<out stem>-b.csv`, stamped with its engine and its server
//! arguments, so `bench compare A.csv B.csv` reads them like two runs.

mod side;

pub use side::{AbRatio, AbSide};

use super::args::{Output, RunArgs};
use super::prepare;
use super::run_loop::run_loop;
use super::settings::{stamp_engine, RunEnv, RunSettings};
use crate::engine::backend::Backend;
use crate::engine::LaunchSpec;
use crate::llamacpp::backend::{LlamaBackend, LlamaServer};
use crate::llamacpp::{Engine, EngineOptions, ServerArgs};
use crate::results::{ResultRow, ResultWriter};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `bench ab`: those of `bench run`, and what differs between the two sides.
#[derive(Debug, Clone, clap::Args)]
pub struct AbArgs {
    /// What to measure, as for `bench run` (`--out` names both files: `<stem>-a.csv` and
    /// `<stem>-b.csv`).
    #[command(flatten)]
    pub run: RunArgs,
    /// llama-server of side A, the reference [default: the engine `bench run` would use].
    #[arg(long, value_name = "PATH")]
    pub engine_a: Option<PathBuf>,
    /// llama-server of side B [default: the engine `bench run` would use].
    #[arg(long, value_name = "PATH")]
    pub engine_b: Option<PathBuf>,
    /// Extra llama-server arguments of side A, one string split at spaces
    /// (`--args-a="--poll 0"`).
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub args_a: Option<String>,
    /// Extra llama-server arguments of side B, one string split at spaces.
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub args_b: Option<String>,
}

/// The backend of `bench ab`: cells' own servers from engine B, partners from engine A.
struct AbBackend<'e> {
    a: LlamaBackend<'e>,
    b: LlamaBackend<'e>,
}

impl Backend for AbBackend<'_> {
    type Server = LlamaServer;

    fn memory(&self) -> Result<(u64, u64), String> {
        self.b.memory()
    }

    fn launch(&mut self, spec: &LaunchSpec, log: &str, bytes: u64) -> Result<LlamaServer, String> {
        self.b.launch(spec, &format!("b-{log}"), bytes)
    }

    fn launch_partner(
        &mut self,
        spec: &LaunchSpec,
        log: &str,
        bytes: u64,
    ) -> Result<LlamaServer, String> {
        self.a.launch(spec, &format!("a-{log}"), bytes)
    }
}

/// Runs `bench ab`.
pub fn command(args: &AbArgs) -> anyhow::Result<ExitCode> {
    let mut config = args.run.config();
    anyhow::ensure!(
        config.remote.is_none(),
        "bench ab launches both servers; to measure a running server use bench run --server-url"
    );
    anyhow::ensure!(
        !config.output.resumes(),
        "bench ab does not resume: run it again with --out"
    );
    let (a_csv, b_csv) = out_paths(args.run.out.as_deref());
    config.output = Output::Create(b_csv);
    // Both sides go to the database as runs of `ab`, each with its own engine.
    let db = config.db.take();
    config.server_bin = args.engine_b.clone().or(config.server_bin);
    let (env, roles, b_writer) = prepare::prepare(&config)?;
    let engine_a = engine_a(args, &env.engine)?;
    let (a_settings, b_settings) = side_settings(args, &env, &engine_a)?;
    let mut a_writer = ResultWriter::create(&a_csv).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut b_writer = b_writer;
    if let Some(db) = &db {
        let attach = |w: ResultWriter| w.with_db(db, "ab").map_err(|e| anyhow::anyhow!("{e}"));
        a_writer = attach(a_writer)?;
        b_writer = attach(b_writer)?;
    }
    let backend = AbBackend {
        a: LlamaBackend {
            engine: &engine_a,
            logs_dir: env.logs_dir.clone(),
        },
        b: LlamaBackend {
            engine: &env.engine,
            logs_dir: env.logs_dir.clone(),
        },
    };
    let mut a_side = AbSide::new(&a_settings, &mut a_writer);
    let plan = env.run_plan(config.quiet, false, None);
    let outcome = run_loop(
        &plan,
        &roles,
        &mut b_writer,
        &b_settings,
        backend,
        &mut a_side,
    )?;
    let (a_rows, ratios) = a_side.into_results();
    println!("{}", render(&outcome.rows, &a_rows, &ratios));
    println!(
        "{} cells in {} launches; results: A {}, B {}",
        outcome.cells,
        outcome.launches,
        a_csv.display(),
        outcome.csv.display()
    );
    Ok(ExitCode::from(outcome.exit_code()))
}

/// The settings of side A and side B. Each starts from the run's own settings
/// (`--server-arg` included); `--args-a` and `--args-b` replace that side's server
/// arguments, and A's rows are stamped with A's engine.
fn side_settings(
    args: &AbArgs,
    env: &RunEnv,
    engine_a: &Engine,
) -> anyhow::Result<(RunSettings, RunSettings)> {
    let mut b_settings = env.settings();
    let mut a_settings = b_settings.clone();
    if let Some(text) = &args.args_b {
        b_settings.server_args = side_args("--args-b", text, &env.engine)?;
    }
    stamp_engine(&mut a_settings.stamp, engine_a);
    if let Some(text) = &args.args_a {
        a_settings.server_args = side_args("--args-a", text, engine_a)?;
    }
    Ok((a_settings, b_settings))
}

/// The engine of side A: `--engine-a`, else the one side B uses.
fn engine_a(args: &AbArgs, b: &Engine) -> anyhow::Result<Engine> {
    let Some(path) = &args.engine_a else {
        return Ok(b.clone());
    };
    crate::util::error::check_server_bin(Some(path)).context("--engine-a")?;
    crate::llamacpp::ensure(
        &EngineOptions {
            server_bin: Some(path.clone()),
            profile_server_bin: None,
            allow_install: false,
            skip_self_test: args.run.skip_self_test,
        },
        &crate::selftest::SelfTest::default(),
    )
    .map_err(crate::util::error::environment)
}

/// `--args-a "--poll 0 -tb 2"` as arguments.
/// One side's server arguments (replacing the run's `--server-arg`), checked against that
/// side's engine like `--server-arg`.
fn side_args(flag: &str, text: &str, engine: &Engine) -> anyhow::Result<ServerArgs> {
    let args = ServerArgs::parse(&[text]).with_context(|| format!("{flag} {text:?}"))?;
    args.validate(&engine.caps)
        .with_context(|| format!("{flag} {text:?} for {}", engine.server_bin.display()))?;
    Ok(args)
}

/// `<stem>-a.csv` and `<stem>-b.csv` beside `--out` (default `results/ab-<host>-<UTC>.csv`).
fn out_paths(out: Option<&Path>) -> (PathBuf, PathBuf) {
    let base = out.map_or_else(
        || {
            let host = nix::unistd::gethostname()
                .map_or_else(|_| "host".into(), |h| h.to_string_lossy().into_owned());
            let now = std::time::SystemTime::now();
            crate::results::default_path(&crate::results::default_dir(), "ab", &host, now)
        },
        Path::to_path_buf,
    );
    let stem = base.with_extension("");
    let side = |s: &str| PathBuf::from(format!("{}-{s}.csv", stem.display()));
    (side("a"), side("b"))
}

/// One line per cell: both sides' decode t/s and B / A with its paired interval.
pub fn render(b_rows: &[ResultRow], a_rows: &[ResultRow], ratios: &[AbRatio]) -> String {
    let mut out = format!(
        "{:<10} {:<16} {:<10} {:>3} {:>12} {:>12} {:>24} {:>6}\n",
        "role", "mode", "workload", "np", "A t/s", "B t/s", "B / A (95% CI)", "pairs"
    );
    for (b, a) in b_rows.iter().zip(a_rows) {
        let tps = |r: &ResultRow| {
            r.decode_tps_mean
                .map_or_else(|| r.status.to_string(), |t| format!("{t:.1}"))
        };
        let key = b.key();
        let (ratio, pairs) = match ratios.iter().find(|r| r.key == key) {
            Some(r) => (
                format!("{:.3} ({:.3}-{:.3})", r.ci.ratio, r.ci.low, r.ci.high),
                r.pairs.to_string(),
            ),
            None => ("-".to_string(), "-".to_string()),
        };
        out.push_str(&format!(
            "{:<10} {:<16} {:<10} {:>3} {:>12} {:>12} {:>24} {:>6}\n",
            b.role,
            b.mode.to_string(),
            b.workload,
            b.parallel,
            tps(a),
            tps(b),
            ratio,
            pairs
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_files_sit_beside_out() {
        let (a, b) = out_paths(Some(Path::new("results/upgrade.csv")));
        assert_eq!(a, Path::new("results/upgrade-a.csv"));
        assert_eq!(b, Path::new("results/upgrade-b.csv"));
        let (a, _) = out_paths(None);
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("ab-") && name.ends_with("-a.csv"),
            "{name}"
        );
    }
}
