//! Whole deployments with the real llama-server: `bench run --profile deploy-smoke
//! --deployment` launches its two roles at once (one thread each, the workers with their
//! draft), serves each alone and both together in rounds, and writes a row per role, phase
//! and round; a role whose server is killed mid-deployment fails its own rows while the
//! other finishes; SIGTERM stops every server of the deployment and keeps finished phases.

mod common;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tpsbench::results::{read_results, ResultRow, Status};

/// `bench run --profile deploy-smoke --deployment` with `extra`, started in the background.
fn start(csv: &Path, extra: &[&str]) -> Child {
    let engine = common::engine();
    Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["run", "--profile", "deploy-smoke", "--deployment"])
        .args(extra)
        .arg("--out")
        .arg(csv)
        .args(["--bw-seconds", "0.2", "--quiet"])
        .env("LLAMA_SERVER", &engine.server_bin)
        .env(
            "XDG_CACHE_HOME",
            tpsbench::util::cache_root().parent().unwrap(),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The llama-server processes whose parent is `parent`, with their command lines.
fn servers_of(parent: u32) -> Vec<(u32, String)> {
    common::server_children(parent)
        .into_iter()
        .map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            (pid, String::from_utf8_lossy(&cmdline).replace('\0', " "))
        })
        .collect()
}

/// Waits until the CSV holds `n` rows (or panics after `limit`).
fn wait_rows(csv: &Path, n: usize, limit: Duration) -> Vec<ResultRow> {
    let started = Instant::now();
    loop {
        let rows = read_results(csv).unwrap_or_default();
        if rows.len() >= n {
            return rows;
        }
        assert!(started.elapsed() < limit, "{n} rows never came");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn finish(child: Child) -> (std::process::ExitStatus, String, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn engine_deploy_serves_each_role_alone_and_together_in_turning_rounds() {
    let _lock = common::llama_server_lock();
    let dir = common::temp_dir();
    let csv = dir.path().join("deploy.csv");
    let child = start(&csv, &["--rounds", "2", "--duration", "3s"]);
    let (status, stdout, stderr) = finish(child);
    assert!(status.success(), "{stdout}\n{stderr}");
    let rows = read_results(&csv).unwrap();
    // 2 roles x 2 rounds x 2 phases, in the order the phases ran: round 1 alone (frontdoor,
    // workers) then together; round 2 together first.
    let order: Vec<(String, String, u32)> = rows
        .iter()
        .map(|r| {
            (
                r.role.clone(),
                r.deploy_phase.clone(),
                r.deploy_round.unwrap(),
            )
        })
        .collect();
    let expect = |role: &str, phase: &str, round| (role.to_string(), phase.to_string(), round);
    assert_eq!(
        order,
        [
            expect("frontdoor", "alone", 1),
            expect("workers", "alone", 1),
            expect("frontdoor", "together", 1),
            expect("workers", "together", 1),
            expect("frontdoor", "together", 2),
            expect("workers", "together", 2),
            expect("frontdoor", "alone", 2),
            expect("workers", "alone", 2),
        ]
    );
    let id = &rows[0].deployment_id;
    assert!(id.starts_with("deploy-"), "{id}");
    for r in &rows {
        assert_eq!(r.status, Status::Ok, "{r:?}");
        assert_eq!(&r.deployment_id, id);
        assert_eq!(r.deploy_roles, "frontdoor+workers");
        // The profile gives each role one thread.
        assert_eq!(r.threads, 1, "{r:?}");
        assert_eq!(r.load, "concurrency 1");
        assert!(r.requests_completed.unwrap() >= 1, "{r:?}");
        assert!(r.decode_tps_mean.unwrap() > 0.0, "{r:?}");
        // The contention model's inputs and the phase's foreign load are on every row.
        assert!(r.role_bandwidth_gbps.unwrap() > 0.0, "{r:?}");
        assert!(r.deploy_bandwidth_gbps.unwrap() > 0.0, "{r:?}");
        assert!(r.foreign_cpu_pct.is_some(), "{r:?}");
    }
    // The workers are deployed with their draft (deploy = "spec:8"), and it drafted.
    let workers = rows.iter().find(|r| r.role == "workers").unwrap();
    assert_eq!(workers.mode.to_string(), "spec:8");
    assert!(!workers.draft_model_file.is_empty(), "{workers:?}");
    // The frontdoor answers chat, the workers code-edit (the profile's defaults by role).
    assert_eq!(rows[0].workload, "chat");
    assert_eq!(workers.workload, "code-edit");
    // The table: a line per role with its contention and one for the machine.
    assert!(stdout.contains("contention"), "{stdout}");
    for role in ["frontdoor", "workers", "machine"] {
        assert!(
            stdout.lines().any(|l| l.starts_with(&format!("│ {role} "))),
            "{role}: {stdout}"
        );
    }
}

#[test]
fn engine_deploy_a_killed_role_fails_its_rows_and_the_other_finishes() {
    let _lock = common::llama_server_lock();
    let dir = common::temp_dir();
    let csv = dir.path().join("deploy.csv");
    let child = start(&csv, &["--rounds", "2", "--duration", "3s"]);
    // After the first row (frontdoor alone, round 1) both servers are up: kill the
    // frontdoor's (the one without a draft model).
    wait_rows(&csv, 1, Duration::from_secs(240));
    let servers = servers_of(child.id());
    assert_eq!(servers.len(), 2, "{servers:?}");
    let (frontdoor, _) = servers
        .iter()
        .find(|(_, cmd)| !cmd.contains("-md ") && !cmd.contains("--model-draft"))
        .unwrap_or_else(|| panic!("no server without a draft: {servers:?}"));
    kill(Pid::from_raw(*frontdoor as i32), Signal::SIGKILL).unwrap();
    let (status, stdout, stderr) = finish(child);
    let rows = read_results(&csv).unwrap();
    assert_eq!(rows.len(), 8, "{stdout}\n{stderr}");
    let workers: Vec<&ResultRow> = rows.iter().filter(|r| r.role == "workers").collect();
    assert!(
        workers.iter().all(|r| r.status == Status::Ok),
        "the workers finish: {workers:?}"
    );
    let failed: Vec<&ResultRow> = rows
        .iter()
        .filter(|r| r.role == "frontdoor" && r.status == Status::Failed)
        .collect();
    assert!(!failed.is_empty(), "{rows:?}");
    assert!(
        failed
            .iter()
            .all(|r| r.reason.contains("SIGKILL") || r.reason.contains("exited")),
        "{failed:?}"
    );
    // A failed cell makes the run's exit say so.
    assert!(!status.success(), "{stdout}");
}

/// Sends `signal` to a deployment once two phases are written; every server is gone within
/// 2 s and the finished phases stay in the CSV.
fn stop_with(signal: Signal) {
    let _lock = common::llama_server_lock();
    let dir = common::temp_dir();
    let csv = dir.path().join("deploy.csv");
    let mut child = start(&csv, &["--rounds", "3", "--duration", "4s"]);
    wait_rows(&csv, 2, Duration::from_secs(240));
    let servers = servers_of(child.id());
    assert_eq!(servers.len(), 2, "{servers:?}");
    let sent = Instant::now();
    kill(Pid::from_raw(child.id() as i32), signal).unwrap();
    let status = child.wait().unwrap();
    for (pid, _) in &servers {
        assert!(
            common::gone_within(*pid, Duration::from_secs(2).saturating_sub(sent.elapsed())),
            "llama-server {pid} outlived the deployment ({signal})"
        );
    }
    let took = sent.elapsed();
    eprintln!("{signal}: the harness and both servers gone after {took:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let rows = read_results(&csv).unwrap();
    assert!(rows.len() >= 2, "finished phases kept: {}", rows.len());
    assert!(rows.len() < 12, "it stopped early");
    assert!(rows[..2].iter().all(|r| r.status == Status::Ok), "{rows:?}");
    assert!(!status.success());
}

#[test]
fn engine_deploy_sigterm_stops_every_server_and_keeps_finished_phases() {
    stop_with(Signal::SIGTERM);
}

#[test]
fn engine_deploy_sigkill_of_the_harness_leaves_no_server() {
    stop_with(Signal::SIGKILL);
}
