//! `bench run --server-url URL`: measures a llama-server that is already running, through
//! the same run loop as a launched one. [`RemoteBackend`] launches nothing and never stops
//! the server: its "launch" is a handle to the URL, and it refuses (cells `skipped`, with
//! the reason) every launch configuration the running server was not started with: another
//! model, more slots than it has, speculation it lacks or has, expert reduction. What it is
//! is read once, before any cell, from `/health`, `/props` and `/slots` ([`connect`]); its
//! model's facts from `-m FILE`, else from the file `/props` names when it is readable here.
//!
//! Losslessness compares each accelerated cell with the baseline requests sent to the same
//! server (same prompt, greedy), as for launched servers; in the pinned build a server that
//! speculates cannot serve a baseline, so its accelerated rows say that no baseline was
//! measured. There is no pairing (one server) and no memory guard (nothing is launched).
//!
//! Files: [`server`] (what the server is and can serve), [`backend`] (the seam's
//! implementation), this one (the run: profile, sweeps, row stamp).

pub mod backend;
pub mod server;

pub use backend::{RemoteBackend, RemoteServer};
pub use server::{connect, server_mode, serves, RemoteServerInfo};

use super::args::{RemoteTarget, RunConfig, Source};
use super::pairing::RunPairing;
use super::prepare;
use super::run_loop::{self, RunOutcome};
use super::settings::{self, RunPlan, RunSettings, Sweep};
use crate::llamacpp::client::Client;
use crate::llamacpp::server::remote::{ServerProps, ServerUrl};
use crate::llamacpp::ServerArgs;
use crate::profile::{self, Profile};
use crate::results::{ResultRow, SCHEMA_VERSION};
use anyhow::Context;
use server::file_name;
use std::path::{Path, PathBuf};

/// The thread count rows record for a running server: not known (`/props` does not say).
pub const UNKNOWN_THREADS: u32 = 0;

/// Everything a `--server-url` run needs, read and checked before the first request.
pub struct RemoteRun {
    /// The server.
    pub info: RemoteServerInfo,
    /// The profile (`-m` and `--modes`, or `--profile`) with every role's context set to
    /// the server's slot context.
    pub profile: Profile,
    /// The local file standing for the server's model.
    pub served: PathBuf,
}

/// Parses `--server-url`, reads the server, and builds the profile of the run.
pub fn prepare(
    config: &RunConfig,
    target: &RemoteTarget,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<RemoteRun> {
    let url = ServerUrl::parse(&target.url, target.allow_remote_host)?;
    let client = Client::new(&url.base)?;
    let info = runtime
        .block_on(connect(&client, &url))
        .map_err(crate::util::error::environment)?;
    eprintln!("{}", info.describe());
    let models = match &config.source {
        Source::Models { models, .. } => models.as_slice(),
        Source::Profile(_) => &[],
    };
    let served = served_model(models, &info.props)?;
    let profile = remote_profile(config, &info, &served)?;
    Ok(RemoteRun {
        info,
        profile,
        served,
    })
}

/// The local file that stands for the server's model: `-m FILE` (a warning when its name
/// differs from the server's), else the file `/props` names, when it can be read here.
fn served_model(models: &[PathBuf], props: &ServerProps) -> anyhow::Result<PathBuf> {
    if models.len() > 1 {
        anyhow::bail!(
            "--server-url measures one server, which serves one model: give at most one -m"
        );
    }
    if let Some(m) = models.first() {
        let theirs = props.model_file_name();
        if !theirs.is_empty() && file_name(m) != theirs {
            eprintln!(
                "warning: -m {} is named differently from the server's model {}; its facts describe \
                 the rows, so make sure it is the same file",
                m.display(),
                props.model_path
            );
        }
        return Ok(std::path::absolute(m).unwrap_or_else(|_| m.clone()));
    }
    let path = PathBuf::from(&props.model_path);
    if props.model_path.is_empty() || !path.is_file() {
        anyhow::bail!(
            "the server's model {} cannot be read here; give -m FILE (the same GGUF) so that its \
             quant, parameters and shape can be recorded",
            if props.model_path.is_empty() {
                "(not named in /props)"
            } else {
                &props.model_path
            }
        );
    }
    Ok(path)
}

/// The run's profile: `--profile`, or one built from the model file (and `--draft`) with
/// `--modes` or the server's own modes; every role's context is the server's slot context.
fn remote_profile(
    config: &RunConfig,
    info: &RemoteServerInfo,
    served: &Path,
) -> anyhow::Result<Profile> {
    let slot_ctx = info.props.slot_ctx;
    if let Some(ctx) = config.ctx.filter(|&c| c != slot_ctx) {
        anyhow::bail!(
            "--ctx {ctx}: the server at {} gives each slot {slot_ctx} tokens, fixed at its launch; \
             leave --ctx out",
            info.url.base
        );
    }
    let mut profile = match &config.source {
        Source::Profile(name) => profile::load(name)?,
        Source::Models { draft, modes, .. } => profile::from_models(&profile::ModelsSpec {
            models: vec![served.to_path_buf()],
            draft: draft.clone(),
            modes: Some(modes.clone().unwrap_or_else(|| info.default_modes())),
            ctx: Some(slot_ctx),
        })?,
    };
    let slots = info.props.total_slots;
    for role in &mut profile.roles {
        if config.source.profile().is_none() {
            // One request alone, and the server's slots all busy.
            role.parallel = if slots > 1 { vec![1, slots] } else { vec![1] };
        }
        if role.ctx != slot_ctx {
            eprintln!(
                "note: role `{}`: context {} per slot in the profile; the server's slots hold {slot_ctx}, \
                 which the rows record",
                role.name, role.ctx
            );
            role.ctx = slot_ctx;
        }
    }
    let spec_k = profile
        .roles
        .iter()
        .flat_map(|r| &r.modes)
        .any(|m| m.spec_k().is_some());
    if spec_k {
        eprintln!(
            "note: no endpoint of llama-server tells its draft length (--spec-draft-n-max): a spec:K \
             row records the K given here, not one read from the server"
        );
    }
    let engine = &profile.engine;
    if !engine.threads.is_empty() || !engine.args.words().is_empty() {
        eprintln!(
            "note: the profile's [engine] threads and args are launch options; the running server \
             keeps its own (rows record threads as {UNKNOWN_THREADS}: not known)"
        );
    }
    Ok(profile)
}

/// The sweeps of a `--server-url` run: the depths only (threads and server arguments were
/// fixed when the server was launched).
pub fn sweep(depths: Option<&[u32]>, profile: &Profile) -> anyhow::Result<Sweep> {
    let depths = depths.map_or_else(|| profile.run.depths.clone(), <[_]>::to_vec);
    if let Some(problem) = profile::sweep_problem("--depth", &depths, 0) {
        anyhow::bail!(problem);
    }
    Ok(Sweep {
        threads: vec![UNKNOWN_THREADS],
        depths,
        server_args: ServerArgs::default(),
    })
}

/// Fills the engine columns from what the server says: its build (`build_info`), and
/// `unknown` / `remote` where a local engine would have its hashes and variant.
pub fn stamp_engine(row: &mut ResultRow, info: &RemoteServerInfo) {
    row.server_url = info.url.base.clone();
    row.engine_version = info.props.engine_version();
    row.engine_package_version = String::new();
    row.engine_server_sha256 = "unknown".into();
    row.engine_system_info = String::new();
    row.engine_sha256 = "unknown".into();
    row.engine_variant = "remote".into();
    row.engine_self_test = "not run (a running server)".into();
}

/// A row with every column fixed for the run filled: the machine (this one, when the server
/// is on loopback; only the host's name otherwise), the server, the harness, the profile.
pub fn stamp(
    info: &RemoteServerInfo,
    hardware: Option<&crate::hardware::Hardware>,
    host: &str,
    profile: &Profile,
) -> ResultRow {
    let mut row = ResultRow {
        schema_version: SCHEMA_VERSION,
        ..ResultRow::default()
    };
    match hardware {
        Some(hw) => {
            row.host = host.to_string();
            settings::stamp_machine(&mut row, hw);
        }
        None => row.host = info.url.host.clone(),
    }
    stamp_engine(&mut row, info);
    settings::stamp_harness(&mut row, profile);
    row
}

/// The run loop's settings: no server arguments, no pairing (one server), every row
/// stamped with the server and, when it runs on this machine, this machine.
fn settings(
    config: &RunConfig,
    info: &RemoteServerInfo,
    profile: &Profile,
    n_predict: u32,
    host: &str,
) -> anyhow::Result<RunSettings> {
    // The machine columns (and the roofline) describe the server's machine only when it is
    // this one.
    let hardware = match info.url.loopback {
        true => Some(prepare::assess_hardware(
            &config.models_dir,
            config.bw_budget,
        )?),
        false => None,
    };
    Ok(RunSettings {
        server_args: ServerArgs::default(),
        n_predict,
        adaptive: prepare::adaptive(config.max_reps, profile),
        pair: false,
        // One server that tpsbench does not start: there is no second launch to measure.
        baseline_launches: 1,
        expectations: profile.load_expectations()?,
        // The server is not ours: its CPU time would count as foreign load.
        noise: None,
        stamp: stamp(info, hardware.as_ref(), host, profile),
    })
}

/// Runs `bench run --server-url URL` end to end.
pub fn run(config: &RunConfig, target: &RemoteTarget) -> anyhow::Result<RunOutcome> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let remote = prepare(config, target, &runtime)?;
    drop(runtime);
    let profile = &remote.profile;
    let selected = super::resolve::select_roles(profile, config.roles.as_deref())?;
    let roles =
        super::resolve::resolve_roles(profile, &selected, &prepare::resolve_options(config))?;
    let n_predict = config.n_predict.unwrap_or(profile.run.n_predict);
    let sweep = sweep(config.depths.as_deref(), profile)?;
    let workloads = prepare::workloads(config.workloads.as_deref(), profile);
    prepare::check_depths(&roles, &sweep.depths, n_predict, &workloads)?;
    let host = prepare::host_name();
    let settings = settings(config, &remote.info, profile, n_predict, &host)?;
    let mut writer =
        prepare::open_writer(&config.output, config.db.as_deref(), &profile.name, &host)?;
    let backend = RemoteBackend {
        info: remote.info.clone(),
        served: remote.served.clone(),
    };
    // One server: no partner, and no second launch of a baseline (`settings` says so).
    let mut pairing = RunPairing::of(&settings);
    let plan = RunPlan {
        sweep: &sweep,
        workloads: &workloads,
        quiet: config.quiet,
        resume: config.output.resumes(),
        load: config.load.as_ref(),
    };
    if super::serve::is_serving(&plan, &roles) {
        return super::serve::serve(&plan, &roles, &mut writer, &settings, backend);
    }
    run_loop::run_loop(&plan, &roles, &mut writer, &settings, backend, &mut pairing)
}

#[cfg(test)]
mod tests;
