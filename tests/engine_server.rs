//! The server launcher and the client against the real llama-server with a tiny model:
//! launch to ready (with the readiness figures), a streamed completion with token ids and
//! timings, a clean stop (no process left, port free), the server killed mid-request, and
//! the harness SIGKILLed while a server runs.

mod common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tpsbench::engine::request::{CompletionRequest, Prompt};
use tpsbench::engine::LaunchSpec;
use tpsbench::llamacpp::client::{Client, ClientError};
use tpsbench::llamacpp::server::{
    net, LaunchCommand, LaunchOptions, PortChoice, Server, ServerError,
};

fn spec(model: &Path) -> LaunchSpec {
    let mut spec = LaunchSpec::new(model);
    spec.threads = 2;
    spec.ctx = 1024;
    spec
}

fn options(dir: &Path) -> LaunchOptions {
    LaunchOptions::new(dir.join("server.log"), Duration::from_secs(60))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

#[test]
fn launch_stream_and_stop_against_the_real_server() {
    let engine = common::engine();
    let _lock = common::llama_server_lock();
    let dir = common::temp_dir();
    let server = Server::launch_engine(engine, &spec(&common::tiny_model()), &options(dir.path()))
        .expect("llama-server becomes ready");
    let r = server.readiness();
    eprintln!(
        "readiness: launch_to_ready {:?}, server load time {:?}, listening line at {:?} (server clock), \
         ready {:?} after the harness saw the line, detection bound {:?}",
        r.launch_to_ready,
        r.load_time,
        r.listening_ts,
        r.ready_after_listening_line,
        r.detection_delay_bound()
    );
    assert!(
        r.load_time.is_some(),
        "model-load time not found in the log"
    );
    let lag = r.ready_after_listening_line.expect("listening line seen");
    assert!(
        lag < Duration::from_millis(50),
        "ready {lag:?} after the listening line"
    );
    let bound = r.detection_delay_bound().expect("server timestamps");
    assert!(
        bound < Duration::from_millis(250),
        "launch-to-ready exceeds the log's time by {bound:?}"
    );
    let (pid, port) = (server.pid(), server.port());
    assert!(common::alive(pid));

    let prompt: Vec<u32> = (100..132).collect();
    let req = CompletionRequest::new(Prompt::Tokens(prompt.clone()), 48);
    let client = Client::new(&server.base_url()).expect("client");
    let (first, second) =
        runtime().block_on(async { (client.complete(&req).await, client.complete(&req).await) });
    let first = first.expect("first completion");
    let second = second.expect("second completion");
    assert_eq!(first.token_ids.len(), 48);
    let streamed: u32 = first.chunks.iter().map(|c| c.1).sum();
    assert_eq!(streamed, 48, "tokens counted over the streamed chunks");
    assert_eq!(first.timings.predicted_n, 48);
    assert_eq!(first.timings.prompt_n, prompt.len() as u64);
    assert!(first.timings.predicted_ms > 0.0 && first.timings.draft_n.is_none());
    assert!(first.sent < first.first_byte && first.first_byte <= first.chunks[0].0);
    assert!(first.chunks.windows(2).all(|w| w[0].0 <= w[1].0));
    assert!(first.chunks.last().unwrap().0 <= first.end);
    assert_eq!(
        first.token_ids, second.token_ids,
        "temperature 0 must repeat itself"
    );
    let m = second.to_raw().metrics();
    eprintln!(
        "request: ttft {:?}, decode t/s server {:?} client {:?}, e2e {:?}, {} chunks",
        m.ttft,
        m.decode_tps_server,
        m.decode_tps_client,
        m.e2e,
        second.chunks.len()
    );
    assert_eq!(m.tokens, 48);
    let server_cpu = server.cpu_time().expect("server cpu time");
    assert!(server_cpu > Duration::ZERO, "the server computed 96 tokens");

    let text = CompletionRequest::new(Prompt::Text("The quick brown fox".into()), 8);
    let rec = runtime()
        .block_on(client.complete(&text))
        .expect("text prompt");
    assert_eq!(rec.token_ids.len(), 8);
    assert!(
        rec.timings.prompt_n > 0,
        "the server tokenized the text prompt"
    );

    let report = server.stop().expect("stop");
    eprintln!("stop: {report:?}");
    assert!(!report.killed, "llama-server should exit on SIGTERM");
    assert!(
        !common::alive(pid),
        "llama-server {pid} still running after stop"
    );
    assert!(net::port_is_free(port));
}

#[test]
fn a_server_killed_mid_request_fails_the_request_and_reports_its_log() {
    let engine = common::engine();
    let _lock = common::llama_server_lock();
    let dir = common::temp_dir();
    let mut launch = spec(&common::tiny_model());
    launch.ctx = 4096;
    let server = Server::launch_engine(engine, &launch, &options(dir.path())).expect("ready");
    let client = Client::new(&server.base_url()).expect("client");
    let req = CompletionRequest::new(Prompt::Tokens(vec![1, 2, 3, 4]), 4000);
    let pid = server.pid();
    let mut watch = server.exit_watch();
    let (result, exited) = runtime().block_on(async {
        let request = tokio::spawn(async move { client.complete(&req).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let killed_at = Instant::now();
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("kill llama-server");
        let exited = tokio::time::timeout(Duration::from_secs(2), watch.exited()).await;
        eprintln!(
            "crash seen by the exit watch {:?} after the kill",
            killed_at.elapsed()
        );
        (request.await.expect("request task"), exited)
    });
    match result {
        Err(ClientError::Disconnected { tokens, .. }) => assert!(tokens < 4000),
        other => panic!("expected Disconnected, got {other:?}"),
    }
    let exited = exited.expect("exit seen at once");
    assert!(
        matches!(&exited, ServerError::Exited { exit, log_tail, .. }
        if exit.signal == Some(nix::libc::SIGKILL) && log_tail.contains("listening on")),
        "{exited}"
    );
    assert!(matches!(server.check(), Err(ServerError::Exited { .. })));
    server.stop().expect("stopping a dead server is fine");
}

#[test]
fn a_second_server_on_a_taken_port_is_refused_naming_the_port() {
    let engine = common::engine();
    let _lock = common::llama_server_lock();
    let dir = common::temp_dir();
    let model = common::tiny_model();
    let first = Server::launch_engine(engine, &spec(&model), &options(dir.path())).expect("ready");
    let mut opts = LaunchOptions::new(dir.path().join("second.log"), Duration::from_secs(60));
    opts.port = PortChoice::Fixed(first.port());
    let err = Server::launch_engine(engine, &spec(&model), &opts)
        .err()
        .expect("port taken");
    assert!(
        matches!(err, ServerError::PortInUse { port } if port == first.port()),
        "{err}"
    );
    assert!(err.to_string().contains(&first.port().to_string()));
    first.stop().expect("stop");
}

#[test]
fn a_real_server_not_ready_in_time_is_stopped_and_reported() {
    let engine = common::engine();
    let _lock = common::llama_server_lock();
    let dir = common::temp_dir();
    let opts = LaunchOptions::new(dir.path().join("server.log"), Duration::from_millis(30));
    let err = Server::launch_engine(engine, &spec(&common::tiny_model()), &opts)
        .err()
        .expect("30 ms is too short to load a model");
    let ServerError::StartupTimeout { pid, after, .. } = &err else {
        panic!("expected StartupTimeout, got {err}");
    };
    assert_eq!(*after, Duration::from_millis(30));
    assert!(
        !common::alive(*pid),
        "llama-server {pid} left running after the timeout"
    );
}

/// Not a test of its own: re-executed with `harness=PIDFILE bin=BIN model=MODEL` it acts
/// as `bench` would, launching a real llama-server and waiting to be killed.
#[test]
fn harness_child_entry() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |key: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(key))
            .map(PathBuf::from)
    };
    let (Some(pid_file), Some(bin), Some(model)) = (arg("harness="), arg("bin="), arg("model="))
    else {
        return;
    };
    let cmd = LaunchCommand {
        bin,
        args: [
            "-m".into(),
            OsString::from(model),
            "-c".into(),
            "512".into(),
            "-t".into(),
            "1".into(),
        ]
        .into(),
        cpus: None,
    };
    let opts = LaunchOptions::new(pid_file.with_extension("log"), Duration::from_secs(60));
    let server = Server::launch(&cmd, &opts).expect("launch llama-server");
    std::fs::write(&pid_file, server.pid().to_string()).expect("pid file");
    std::mem::forget(server);
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

#[test]
fn harness_killed_with_sigkill_leaves_no_llama_server() {
    let engine = common::engine();
    let _lock = common::llama_server_lock();
    let dir = common::temp_dir();
    let pid_file = dir.path().join("server.pid");
    let mut harness = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "--",
            "harness_child_entry",
        ])
        .arg(format!("harness={}", pid_file.display()))
        .arg(format!("bin={}", engine.server_bin.display()))
        .arg(format!("model={}", common::tiny_model().display()))
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn harness");
    let deadline = Instant::now() + Duration::from_secs(60);
    let server_pid: u32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break pid;
        }
        if let Ok(Some(status)) = harness.try_wait() {
            panic!(
                "harness exited early ({status}); log: {}",
                pid_file.with_extension("log").display()
            );
        }
        assert!(
            Instant::now() < deadline,
            "harness never launched its server"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let cmdline = std::fs::read(format!("/proc/{server_pid}/cmdline")).unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("llama-server"),
        "pid {server_pid} is not a llama-server"
    );
    assert!(common::alive(server_pid));
    kill(Pid::from_raw(harness.id() as i32), Signal::SIGKILL).expect("kill harness");
    harness.wait().expect("reap harness");
    assert!(
        common::gone_within(server_pid, Duration::from_secs(1)),
        "llama-server {server_pid} survived the harness"
    );
}
