//! Whole deployments (`bench run --profile production --deployment`): the profile's roles
//! of the chosen tiers resident at once on one machine, as the guide deploys them, each
//! with its deployed mode (`deploy`), its share of the cores (`threads`, else the cores split
//! by bytes per token) and its CPUs (`cpus`), each served under its own load by the load
//! generator ([`crate::driver::load`]). Every role is measured alone (the other servers
//! resident and idle: the same memory state) and together, in rounds whose phase order
//! turns, so that what sharing the machine costs a role (its contention, together / alone)
//! has an interval.
//!
//! Before anything starts the whole set is checked against the memory available, a file
//! two servers map counted once ([`plan::check_memory`]): a set that does not fit launches
//! nothing and the error names the role to drop in the guide's Scaling Down order.
//!
//! A WARM role in the set (`--tier HOT,WARM`) is first started with its model's pages
//! evicted and then with them cached ([`warm`]): what a user waits when it is called.
//!
//! Files: [`args`] (flags), [`phase`] (the phases' words), [`plan`] (members, threads,
//! loads, memory), [`run`] (phases), [`warm`] (cold and warm starts), [`predict`] (the
//! contention model), [`summary`] (contention and the machine's figures from rows),
//! [`table`] (output).

pub mod args;
pub mod phase;
pub mod plan;
pub mod predict;
pub mod run;
pub mod summary;
pub mod table;
pub mod warm;

use super::interrupt::Interrupt;
use super::plan::LaunchKey;
use super::progress::Progress;
use super::resolve::ResolvedRole;
use super::run_loop::RunOutcome;
use super::settings::{RunPlan, RunSettings};
use crate::engine::backend::Backend;
use crate::hardware::Hardware;
use crate::results::ResultWriter;
use anyhow::Context;
use args::DeployConfig;
use plan::Member;

/// Plans the deployment of `roles`, checks its memory, and runs its phases; the CSV is
/// complete when this returns. The threads are split from `hardware`'s physical cores, and
/// its read bandwidth at each role's threads and at the deployment's goes on the rows (the
/// contention model's inputs).
pub fn deploy<B: Backend>(
    config: &DeployConfig,
    run: &RunPlan,
    roles: &[ResolvedRole],
    writer: &mut ResultWriter,
    settings: &RunSettings,
    backend: B,
    hardware: &Hardware,
) -> anyhow::Result<RunOutcome> {
    let (kept, left_out) = plan::select(roles, config);
    for (name, why) in &left_out {
        eprintln!("deployment: role `{name}` left out: {why}");
    }
    anyhow::ensure!(
        !kept.is_empty(),
        "the deployment has no role to launch (tiers {:?}; roles left out: {})",
        config.tiers,
        left_out.len()
    );
    let members = members(&kept, config, run, hardware);
    let total_threads: u32 = members.iter().map(|m| m.key.threads).sum();
    let cores = hardware.physical_cores.max(1) as u32;
    let warning = table::oversubscribed((total_threads, cores));
    if !warning.is_empty() {
        eprintln!("deployment: {warning}");
    }
    let (available, total) = backend
        .memory()
        .map_err(|e| anyhow::anyhow!("reading the memory available: {e}"))?;
    if backend.guards_memory() {
        plan::check_memory(&members, available, total).map_err(anyhow::Error::msg)?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let csv = writer.csv_path().to_path_buf();
    let warm = members
        .iter()
        .filter(|m| m.role.role.tier == crate::profile::Residency::Warm)
        .count();
    let phases = members.len() * config.rounds as usize * 2 + warm * 2;
    let mut deploying = run::Deploying {
        backend,
        settings,
        workloads: run.workloads,
        writer,
        progress: Progress::new(phases, run.quiet),
        interrupt: Interrupt::default(),
        stamp: run::Stamp {
            id: format!(
                "deploy-{}",
                crate::results::utc_timestamp(std::time::SystemTime::now())
            ),
            roles: members
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join("+"),
            bandwidth_gbps: bandwidth_at(hardware, total_threads.min(cores)),
        },
        rows: Vec::new(),
        launches: 0,
        pids: Vec::new(),
    };
    runtime.block_on(async {
        let watcher = spawn_stop_signals(deploying.interrupt.clone());
        let result = deploying.run(&members, config.rounds).await;
        watcher.abort();
        result
    })?;
    deploying.progress.finish();
    Ok(RunOutcome {
        csv,
        cells: deploying.rows.len(),
        rows: deploying.rows,
        launches: deploying.launches,
        interrupted: deploying.interrupt.is_set(),
    })
}

/// The members: each kept role's deployed mode, slots, threads (split from `cores`), CPUs
/// and load.
fn members<'a>(
    kept: &[&'a ResolvedRole],
    config: &DeployConfig,
    run: &RunPlan,
    hardware: &Hardware,
) -> Vec<Member<'a>> {
    let cores = hardware.physical_cores.max(1) as u32;
    let fixed: Vec<Option<u32>> = kept.iter().map(|r| r.role.deploy.threads).collect();
    let weights: Vec<u64> = kept
        .iter()
        .map(|r| {
            let f = &r.model.facts;
            match r.role.deploy.mode.moe_n() {
                Some(n) => f.with_experts_used(n).active_bytes_per_token,
                None => f.active_bytes_per_token,
            }
        })
        .collect();
    let threads = plan::split_threads(cores, &fixed, &weights);
    let seed = run
        .load
        .map_or(crate::driver::serve::args::DEFAULT_SEED, |l| l.seed);
    kept.iter()
        .zip(threads)
        .map(|(role, threads)| {
            let (load, slots) = plan::member_load(role, run.load, config.phase, seed);
            Member {
                role,
                key: LaunchKey::for_cell(&role.role.deploy.mode, slots, false).at_threads(threads),
                cpus: role.role.deploy.cpus.clone(),
                load,
                bandwidth_gbps: bandwidth_at(hardware, threads),
            }
        })
        .collect()
}

/// The machine's read bandwidth with `threads` readers (GB/s); `None` when nothing was
/// measured.
fn bandwidth_at(hardware: &Hardware, threads: u32) -> Option<f64> {
    Some(hardware.bandwidth_at(threads as usize)).filter(|b| *b > 0.0)
}

/// Triggers `interrupt` on Ctrl-C or SIGTERM: a deployment stops every server and keeps
/// its finished phases either way.
fn spawn_stop_signals(interrupt: Interrupt) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
        let term = async {
            match term {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        eprintln!(
            "\ninterrupted: stopping every server of the deployment, keeping finished phases"
        );
        crate::util::interrupt::note_process_interrupted();
        interrupt.trigger();
    })
}
