//! `bench run` before its first launch: the profile, the engine, the machine, the models,
//! the results file. Everything that can fail on bad input fails here, before any server
//! starts. Every step takes the command's settings ([`RunConfig`]) or the values it needs.

use super::args::{Output, RunConfig, Source};
use super::resolve::{self, ResolveOptions, ResolvedRole};
use super::settings::{RunEnv, Sweep};
use super::workload::{self, Workload};
use crate::hardware::{self, AssessOptions, Hardware};
use crate::llamacpp::{self, Engine, EngineOptions, ServerArgs};
use crate::measure::Adaptive;
use crate::profile::{self, Profile};
use crate::results::ResultWriter;
use anyhow::Context;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Loads everything and checks every input before any server is launched.
pub(super) fn prepare(
    config: &RunConfig,
) -> anyhow::Result<(RunEnv, Vec<ResolvedRole>, ResultWriter)> {
    let profile = load_profile(&config.source, config.ctx)?;
    let expectations = profile.load_expectations()?;
    let selected = resolve::select_roles(&profile, config.roles.as_deref())?;
    let roles = resolve::resolve_roles(&profile, &selected, &resolve_options(config))?;
    let engine = engine(config, &profile)?;
    let n_predict = config.n_predict.unwrap_or(profile.run.n_predict);
    let sweep = sweep(config, &profile, &engine)?;
    let workloads = workloads(config.workloads.as_deref(), &profile);
    check_depths(&roles, &sweep.depths, n_predict, &workloads)?;
    let hardware = assess_hardware(&config.models_dir, config.bw_budget)?;
    let host = host_name();
    let writer = open_writer(&config.output, config.db.as_deref(), &profile.name, &host)?;
    let logs_dir = writer.csv_path().with_extension("logs");
    std::fs::create_dir_all(&logs_dir)
        .with_context(|| format!("creating {}", logs_dir.display()))?;
    let mut sweep = sweep;
    if sweep.threads.is_empty() {
        sweep.threads = vec![hardware.physical_cores.max(1) as u32];
    }
    let adaptive = adaptive(config.max_reps, &profile);
    let env = RunEnv {
        profile,
        engine,
        hardware,
        expectations,
        sweep,
        workloads,
        n_predict,
        adaptive,
        logs_dir,
        host,
        pair: config.pair,
        baseline_launches: config.baseline_launches,
        noise: config.noise,
    };
    Ok((env, roles, writer))
}

/// The engine (`--server-bin`, else the profile's, else discovery), installed when absent
/// and self-tested.
fn engine(config: &RunConfig, profile: &Profile) -> anyhow::Result<Engine> {
    crate::util::error::check_server_bin(config.server_bin.as_deref())?;
    llamacpp::ensure(
        &EngineOptions {
            server_bin: config.server_bin.clone(),
            profile_server_bin: profile.engine.server_bin.clone(),
            allow_install: true,
            skip_self_test: config.skip_self_test,
        },
        &crate::selftest::SelfTest::default(),
    )
    .map_err(crate::util::error::environment)
}

/// Where the roles' model files are looked for, and whether stand-ins may be written.
pub(super) fn resolve_options(config: &RunConfig) -> ResolveOptions {
    ResolveOptions {
        models_dir: config.models_dir.clone(),
        synthetic: config.synthetic,
        synth_cache: crate::synth::cache_dir(),
    }
}

/// This machine's facts and a short bandwidth measurement (`--bw-seconds`).
pub(super) fn assess_hardware(models_dir: &Path, bw_budget: Duration) -> anyhow::Result<Hardware> {
    hardware::assess(&AssessOptions {
        models_dir: models_dir.to_path_buf(),
        bw_budget,
        ..AssessOptions::default()
    })
}

/// This machine's host name (`host` when it cannot be read).
pub(super) fn host_name() -> String {
    nix::unistd::gethostname().map_or_else(|_| "host".into(), |h| h.to_string_lossy().into_owned())
}

/// The repetition rule: the profile's, with `--max-reps`.
pub(super) fn adaptive(max_reps: Option<u32>, profile: &Profile) -> Adaptive {
    let run = &profile.run;
    Adaptive {
        min_reps: run.min_repetitions as usize,
        max_reps: max_reps.unwrap_or(run.max_repetitions) as usize,
        target_pct: run.ci_target_pct,
        budget: run.cell_time_budget,
    }
}

/// The profile named by `--profile`, or the one `-m` files make; `--ctx` applied.
fn load_profile(source: &Source, ctx: Option<u32>) -> anyhow::Result<Profile> {
    let mut profile = match source {
        Source::Profile(name) => profile::load(name)?,
        Source::Models {
            models,
            draft,
            modes,
        } => profile::from_models(&profile::ModelsSpec {
            models: models.clone(),
            draft: draft.clone(),
            modes: modes.clone(),
            ctx,
        })?,
    };
    if let Some(ctx) = ctx {
        for role in &mut profile.roles {
            role.ctx = ctx;
        }
    }
    Ok(profile)
}

/// The results file: the one to resume, a new one, or the default path for the profile;
/// with `--db`, its rows go to that database too.
pub(super) fn open_writer(
    output: &Output,
    db: Option<&Path>,
    profile: &str,
    host: &str,
) -> anyhow::Result<ResultWriter> {
    let writer = match output {
        Output::Resume(path) => ResultWriter::append_to(path),
        Output::Create(path) => ResultWriter::create(path),
        Output::Default => {
            let path = crate::results::default_path(
                &crate::results::default_dir(),
                profile,
                host,
                SystemTime::now(),
            );
            ResultWriter::create(&path)
        }
    };
    let mut writer = writer.map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(db) = db {
        writer = writer
            .with_db(db, "run")
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    for w in writer.warnings() {
        eprintln!("warning: {w}");
    }
    Ok(writer)
}

/// The run's workloads: `--workloads`, else the profile's.
pub(super) fn workloads(chosen: Option<&[Workload]>, profile: &Profile) -> Vec<Workload> {
    chosen.map_or_else(|| profile.run.workloads.clone(), <[_]>::to_vec)
}

/// Thread counts, depths and server arguments: the command line's, else the profile's
/// (threads stay empty for the physical core count); the server arguments checked against
/// the engine's `--help`.
fn sweep(config: &RunConfig, profile: &Profile, engine: &Engine) -> anyhow::Result<Sweep> {
    let threads = config
        .threads
        .clone()
        .unwrap_or(profile.engine.threads.clone());
    let depths = config.depths.clone().unwrap_or(profile.run.depths.clone());
    for (what, values, min) in [("--threads", &threads, 1), ("--depth", &depths, 0)] {
        if let Some(problem) = profile::sweep_problem(what, values, min) {
            anyhow::bail!(problem);
        }
    }
    let server_args = match config.server_args.is_empty() {
        true => profile.engine.args.clone(),
        false => ServerArgs::parse(&config.server_args).map_err(|e| anyhow::anyhow!("{e}"))?,
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
pub(super) fn check_depths(
    roles: &[ResolvedRole],
    depths: &[u32],
    n_predict: u32,
    workloads: &[Workload],
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
}
