//! `bench run --server-url` against a real llama-server that the test starts itself (the
//! way someone else would): the rows are measured and name the URL, speculation the server
//! was not started with is skipped with its reason, and the server is the same process,
//! untouched and healthy, afterwards (the test stops it by its pid; a failed assertion drops
//! the `Server`, which stops it too). Without an engine: a host that
//! is not loopback is refused (exit 2) and a URL where nothing answers is an environment
//! failure (exit 4) naming the URL.

mod common;

use assert_cmd::Command;
use std::path::Path;
use std::time::Duration;
use tpsbench::engine::LaunchSpec;
use tpsbench::llamacpp::server::{net, LaunchOptions, Server};
use tpsbench::results::{read_results, Status};

/// `bench run ARGS --out CSV` with the test's cache and little bandwidth measurement.
fn bench(args: &[&str], out: &Path) -> std::process::Output {
    Command::cargo_bin("bench")
        .unwrap()
        .arg("run")
        .args(args)
        .arg("--out")
        .arg(out)
        .args(["--bw-seconds", "0.2", "--quiet"])
        .env(
            "XDG_CACHE_HOME",
            tpsbench::util::cache_root().parent().unwrap(),
        )
        .output()
        .unwrap()
}

#[test]
fn engine_remote_measures_a_running_server_and_leaves_it_running() {
    let engine = common::engine();
    let _lock = common::llama_server_lock();
    let dir = common::temp_dir();
    let model = common::tiny_model();
    let mut spec = LaunchSpec::new(&model);
    spec.threads = 2;
    spec.ctx = 1024;
    let opts = LaunchOptions::new(dir.path().join("server.log"), Duration::from_secs(60));
    // Someone else's server, as far as bench is concerned: started here, stopped here.
    let server = Server::launch_engine(engine, &spec, &opts).expect("llama-server starts");
    let (pid, port) = (server.pid(), server.port());
    let url = format!("http://127.0.0.1:{port}");
    let csv = dir.path().join("remote.csv");
    let out = bench(
        &[
            "--server-url",
            &url,
            "--modes",
            "baseline,lookup",
            "--workloads",
            "chat,code-edit",
            "--n-predict",
            "32",
            "--max-reps",
            "3",
        ],
        &csv,
    );
    let stdout = common::stdout_of_success(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}\n{stdout}");
    assert!(
        stderr.contains(&format!("server at {url}: llama-server build"))
            && stderr.contains("memory guard: off"),
        "{stderr}"
    );
    assert!(stdout.contains(&format!(
        "on the running server at {url} (nothing launched)"
    )));

    let rows = read_results(&csv).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows.len(), 4, "{rows:?}");
    for r in &rows {
        assert_eq!(r.server_url, url);
        assert_eq!(r.engine_variant, "remote");
        assert_eq!(r.engine_sha256, "unknown");
        assert!(
            r.engine_version.contains("(remote)"),
            "{}",
            r.engine_version
        );
        assert_eq!(r.threads, 0);
        assert_eq!(r.ctx, 1024, "the server's slot context");
        assert_eq!(r.model_file, model.file_name().unwrap().to_str().unwrap());
        if r.mode.is_baseline() {
            assert_eq!(r.status, Status::Ok, "{}", r.reason);
            assert!(r.decode_tps_mean.is_some_and(|t| t > 0.0));
            assert!(r.n_reps >= 3);
            // The synthetic model's known greedy sequence held (no note in the reason).
            assert_eq!(r.reason, "");
        } else {
            assert_eq!(r.status, Status::Skipped);
            assert!(
                r.reason.contains("was started without it") && r.reason.contains(&url),
                "{}",
                r.reason
            );
        }
    }

    // Untouched: the same process, still serving.
    assert!(
        common::alive(pid),
        "bench must not stop a server it did not launch"
    );
    assert_eq!(net::health_status(port, Duration::from_secs(5)), Some(200));
    assert_eq!(server.pid(), pid);
    server.check().expect("the server is still running");
    server.stop().expect("the test stops its server");
    assert!(common::gone_within(pid, Duration::from_secs(5)));
}

#[test]
fn engine_remote_refuses_a_host_that_is_not_loopback_without_the_flag() {
    let dir = common::temp_dir();
    // 192.0.2.0/24 is TEST-NET-1: never routed, and refused before any connection anyway.
    let out = bench(
        &["--server-url", "http://192.0.2.1:8080"],
        &dir.path().join("r.csv"),
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("192.0.2.1 is not a loopback address")
            && stderr.contains("--allow-remote-host"),
        "{stderr}"
    );
    let bad = bench(
        &["--server-url", "127.0.0.1:8080"],
        &dir.path().join("r.csv"),
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a URL"));
}

#[test]
fn engine_remote_nothing_answering_is_an_environment_failure_naming_the_url() {
    let dir = common::temp_dir();
    let port = net::free_port().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let out = bench(&["--server-url", &url], &dir.path().join("r.csv"));
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("no llama-server answers at {url}")),
        "{stderr}"
    );
    assert!(
        !dir.path().join("r.csv").exists(),
        "no results file for a run that never began"
    );
}

#[test]
fn engine_remote_a_lookup_server_measures_its_own_mode_and_skips_the_baseline() {
    let engine = common::engine();
    let _lock = common::llama_server_lock();
    let dir = common::temp_dir();
    let mut spec = LaunchSpec::new(common::tiny_model());
    spec.threads = 2;
    spec.ctx = 1024;
    spec.spec = Some(tpsbench::engine::SpeculativeArgs {
        types: vec!["ngram-simple".into()],
        draft_n_max: None,
    });
    let opts = LaunchOptions::new(dir.path().join("server.log"), Duration::from_secs(60));
    let server = Server::launch_engine(engine, &spec, &opts).expect("llama-server starts");
    let (pid, port) = (server.pid(), server.port());
    let url = format!("http://127.0.0.1:{port}");
    let csv = dir.path().join("remote.csv");
    // No --modes: baseline and the server's own speculation, read from /slots.
    let args = [
        "--server-url",
        &url,
        "--workloads",
        "code-edit",
        "--n-predict",
        "32",
        "--max-reps",
        "3",
    ];
    let out = bench(&args, &csv);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    common::stdout_of_success(&out);
    assert!(stderr.contains("speculation: ngram-simple"), "{stderr}");
    let rows = read_results(&csv).unwrap_or_else(|e| panic!("{e}"));
    let modes: Vec<String> = rows.iter().map(|r| r.mode.to_string()).collect();
    assert_eq!(modes, ["baseline", "lookup:ngram-simple"], "{rows:?}");
    assert_eq!(rows[0].status, Status::Skipped);
    assert!(
        rows[0]
            .reason
            .contains("speculates on every request (ngram-simple)"),
        "{}",
        rows[0].reason
    );
    let lookup = &rows[1];
    assert_eq!(lookup.status, Status::Ok, "{}", lookup.reason);
    assert!(lookup.acceptance.is_some(), "the server drafted");
    assert_eq!(
        lookup.reason,
        "no baseline of this cell was measured: no speedup, losslessness not checked"
    );
    assert_eq!(lookup.server_url, url);
    assert!(common::alive(pid));
    assert_eq!(net::health_status(port, Duration::from_secs(5)), Some(200));
    server.stop().expect("the test stops its server");
    assert!(common::gone_within(pid, Duration::from_secs(5)));
}
