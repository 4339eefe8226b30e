//! `bench run`: turns a profile into cells, launches llama-server once per distinct launch
//! configuration, measures every cell, and writes each row the moment its cell ends.
//!
//! The steps are named and each has its file: [`args`] (the command line, turned once into
//! the settings every later step takes), [`prepare`] (profile, engine, machine fingerprint,
//! model resolution; everything that can fail on bad input fails here, before any launch;
//! what it fixes for the run is in [`settings`]), [`plan::plan_launches`] (cells grouped into
//! launches), [`run_loop`] and [`execute::Executor`] (servers and measurements, through the
//! [`crate::engine::Backend`] seam, pairing as a [`pairing::PairingPolicy`] decides) and
//! [`table::render`] (reporting).
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
pub mod args;
pub mod baselines;
pub mod cellrow;
pub mod deploy;
pub mod execute;
#[cfg(test)]
mod fake;
pub mod guard;
pub mod interrupt;
pub mod launch;
pub mod load;
pub mod outcome;
pub mod pairing;
pub mod plan;
pub mod prepare;
pub mod progress;
pub mod quiet;
pub mod remote;
pub mod resolve;
pub mod run_loop;
pub mod serve;
pub mod settings;
pub mod table;
pub mod validate;
pub mod validate_rows;
pub mod workload;

pub use ab::AbArgs;
pub use args::{RunArgs, RunConfig, DEFAULT_BASELINE_LAUNCHES, DEFAULT_BW_SECONDS};
pub use run_loop::{RunOutcome, EXIT_CELLS_FAILED, EXIT_INTERRUPTED};
pub use settings::{stamp_engine, RunEnv, RunPlan, RunSettings, Sweep};
pub use validate::{validate_command, ValidateArgs};

use crate::llamacpp::backend::LlamaBackend;
use pairing::RunPairing;
use std::process::ExitCode;

/// Runs `bench run`.
pub fn command(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let config = args.config();
    let outcome = run(&config)?;
    if outcome.rows.iter().any(|r| !r.deployment_id.is_empty()) {
        println!("{}", deploy::table::render(&outcome.rows));
    } else if outcome.rows.iter().any(|r| !r.load.is_empty()) {
        println!("{}", serve::table::render(&outcome.rows));
    } else {
        println!("{}", table::render(&outcome.rows));
    }
    let servers = match &config.remote {
        Some(remote) => format!("on the running server at {} (nothing launched)", remote.url),
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

/// Runs a profile end to end from `bench run`'s arguments and returns its rows; the CSV is
/// complete when this returns.
pub fn run_profile(args: &RunArgs) -> anyhow::Result<RunOutcome> {
    run(&args.config())
}

/// Runs `bench run` with these settings: a running server's (`--server-url`), or servers
/// launched here, each accelerated one paired with a baseline beside it unless
/// `--unpaired`.
pub fn run(config: &RunConfig) -> anyhow::Result<RunOutcome> {
    if let Some(problem) = &config.load_problem {
        anyhow::bail!("{problem}");
    }
    if let Some(target) = &config.remote {
        return remote::run(config, target);
    }
    let (env, roles, mut writer) = prepare::prepare(config)?;
    let settings = env.settings();
    let backend = LlamaBackend {
        engine: &env.engine,
        logs_dir: env.logs_dir.clone(),
    };
    let mut pairing = RunPairing::of(&settings);
    let plan = env.run_plan(config.quiet, config.output.resumes(), config.load.as_ref());
    if let Some(deployment) = &config.deploy {
        return deploy::deploy(
            deployment,
            &plan,
            &roles,
            &mut writer,
            &settings,
            backend,
            &env.hardware,
        );
    }
    if serve::is_serving(&plan, &roles) {
        return serve::serve(&plan, &roles, &mut writer, &settings, backend);
    }
    run_loop::run_loop(&plan, &roles, &mut writer, &settings, backend, &mut pairing)
}
