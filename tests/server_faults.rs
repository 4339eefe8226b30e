//! Faults of the server launcher and the client that the real llama-server cannot be made
//! to produce on demand: a server that never becomes healthy, one that exits at start-up,
//! one that ignores SIGTERM, a port lost to a race, a stream that stalls or drops, and the
//! harness itself being SIGKILLed. Fake servers are this test binary re-executed in a
//! "fake mode" (see `fake_server_entry`); fake HTTP streams are in-process listeners.
//! None of these tests need the engine.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tpsbench::engine::request::{CompletionRequest, Prompt};
use tpsbench::llamacpp::client::{Client, ClientError};
use tpsbench::llamacpp::server::{LaunchCommand, LaunchOptions, PortChoice, Server, ServerError};

mod fake {
    //! The fake llama-server: what a re-executed test binary does in a fake mode.
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::path::Path;
    use std::time::{Duration, Instant};

    use tpsbench::llamacpp::server::{LaunchCommand, LaunchOptions, Server};

    /// Runs the fake described by `mode`; never returns.
    pub fn run(mode: &str, args: &[String]) -> ! {
        let port = flag_value(args, "--port").and_then(|p| p.parse::<u16>().ok());
        let start = Instant::now();
        println!(); // libtest has printed "test fake_server_entry ... " without a newline
        let log = |msg: &str| {
            let us = start.elapsed().as_micros() as u64;
            let (m, s, ms, u) = (
                us / 60_000_000,
                us / 1_000_000 % 60,
                us / 1000 % 1000,
                us % 1000,
            );
            println!("{m}.{s:02}.{ms:03}.{u:03} I srv  fake: {msg}");
        };
        let (kind, param) = mode.split_once('=').unwrap_or((mode, ""));
        match kind {
            "503" => serve(port.expect("--port"), &log, 503, false),
            "ready" => serve(port.expect("--port"), &log, 200, false),
            "ready-ignore-term" => serve(port.expect("--port"), &log, 200, true),
            "exit3" => {
                log("fatal: fake failure before binding");
                std::process::exit(3)
            }
            "bindfail-once" => {
                if std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(param)
                    .is_ok()
                {
                    let port = port.expect("--port");
                    log(&format!(
                        "couldn't bind HTTP server socket, hostname: 127.0.0.1, port: {port}"
                    ));
                    std::process::exit(1)
                }
                serve(port.expect("--port"), &log, 200, false)
            }
            "harness" => harness(Path::new(param)),
            other => panic!("unknown fake mode {other}"),
        }
    }

    fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
        let i = args.iter().position(|a| a == flag)?;
        args.get(i + 1).map(String::as_str)
    }

    fn serve(port: u16, log: &dyn Fn(&str), status: u16, ignore_term: bool) -> ! {
        if ignore_term {
            // SAFETY: installs SIG_IGN, no handler code runs.
            unsafe {
                nix::sys::signal::signal(
                    nix::sys::signal::Signal::SIGTERM,
                    nix::sys::signal::SigHandler::SigIgn,
                )
                .expect("ignore SIGTERM");
            }
        }
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("fake bind");
        log("loading model 'fake.gguf'");
        if status == 200 {
            std::thread::sleep(Duration::from_millis(100));
            log("model loaded");
            log(&format!("listening on http://127.0.0.1:{port}"));
        }
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let reason = if status == 200 {
                "OK"
            } else {
                "Service Unavailable"
            };
            let body = if status == 200 {
                r#"{"status":"ok"}"#
            } else {
                r#"{"error":{"message":"Loading model"}}"#
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        unreachable!("incoming() never ends")
    }

    /// A stand-in for `bench`: launches a fake server from a thread that then ends, writes
    /// the server's pid to `pid_file` and waits to be killed.
    fn harness(pid_file: &Path) -> ! {
        let dir = pid_file.parent().expect("pid file has a parent");
        let log_path = dir.join("server.log");
        let launcher = std::thread::spawn(move || {
            let opts = LaunchOptions::new(log_path, Duration::from_secs(20));
            let server = Server::launch(&super::fake_command("ready"), &opts).expect("launch fake");
            let pid = server.pid();
            std::mem::forget(server); // keep it running; only the harness's death may end it
            pid
        });
        let pid = launcher.join().expect("launcher thread");
        std::thread::sleep(Duration::from_millis(300)); // the launching thread is gone by now
        std::fs::write(pid_file, pid.to_string()).expect("write pid file");
        loop {
            std::thread::sleep(Duration::from_secs(60));
        }
    }

    #[allow(dead_code)]
    fn unused(_: LaunchCommand) {}
}

/// Not a test of its own: when this binary is re-executed with a `fake-mode=...` argument
/// it becomes a fake server (or harness) and never returns; otherwise it does nothing.
#[test]
fn fake_server_entry() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(mode) = args.iter().find_map(|a| a.strip_prefix("fake-mode=")) {
        fake::run(mode, &args);
    }
}

/// The command that re-executes this binary as a fake server in `mode`. Arguments after
/// `--` are test-name filters to libtest, so the launcher's `--host/--port` pass through.
fn fake_command(mode: &str) -> LaunchCommand {
    LaunchCommand {
        bin: std::env::current_exe().expect("current exe"),
        args: [
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "--",
            "fake_server_entry",
        ]
        .iter()
        .map(Into::into)
        .chain([format!("fake-mode={mode}").into()])
        .collect(),
        cpus: None,
    }
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("tpsbench-faults-")
        .tempdir()
        .expect("temp dir")
}

/// True while `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].trim_start().chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
    }
}

fn gone_within(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    !alive(pid)
}

fn options(dir: &Path, timeout: Duration) -> LaunchOptions {
    LaunchOptions::new(dir.join("server.log"), timeout)
}

#[test]
fn never_healthy_server_times_out_with_its_log_tail() {
    let dir = temp_dir();
    let start = Instant::now();
    let err = Server::launch(
        &fake_command("503"),
        &options(dir.path(), Duration::from_secs(1)),
    )
    .err()
    .expect("a server that answers 503 forever must not be ready");
    let took = start.elapsed();
    match &err {
        ServerError::StartupTimeout {
            pid,
            after,
            log_tail,
        } => {
            assert_eq!(*after, Duration::from_secs(1));
            assert!(!alive(*pid), "the never-ready server was left running");
            assert!(
                log_tail.contains("loading model 'fake.gguf'"),
                "tail: {log_tail}"
            );
        }
        other => panic!("expected StartupTimeout, got {other}"),
    }
    assert!(took < Duration::from_secs(5), "timeout took {took:?}");
    assert!(
        err.to_string()
            .contains("did not become ready within 1s and was stopped"),
        "{err}"
    );
}

#[test]
fn server_exiting_at_startup_reports_its_exit_code_and_log_at_once() {
    let dir = temp_dir();
    let start = Instant::now();
    let err = Server::launch(
        &fake_command("exit3"),
        &options(dir.path(), Duration::from_secs(30)),
    )
    .err()
    .expect("exit 3 is a failure");
    let ServerError::Exited { exit, log_tail, .. } = &err else {
        panic!("expected Exited, got {err}");
    };
    assert_eq!(exit.code, Some(3));
    assert!(log_tail.contains("fatal: fake failure"), "tail: {log_tail}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "not detected at once"
    );
    assert!(err.to_string().contains("exit code 3"), "{err}");
}

#[test]
fn a_taken_port_is_an_error_naming_the_port() {
    let dir = temp_dir();
    let holder = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = holder.local_addr().unwrap().port();
    let mut opts = options(dir.path(), Duration::from_secs(10));
    opts.port = PortChoice::Fixed(port);
    let err = Server::launch(&fake_command("ready"), &opts)
        .err()
        .expect("port is taken");
    assert!(
        matches!(err, ServerError::PortInUse { port: p } if p == port),
        "{err}"
    );
    assert!(err.to_string().contains(&port.to_string()), "{err}");
}

#[test]
fn a_port_lost_to_a_race_is_picked_again() {
    let dir = temp_dir();
    let marker = dir.path().join("failed-once");
    let mode = format!("bindfail-once={}", marker.display());
    let server = Server::launch(
        &fake_command(&mode),
        &options(dir.path(), Duration::from_secs(20)),
    )
    .expect("second attempt binds");
    assert_eq!(server.readiness().attempts, 2);
    assert!(marker.exists());
    server.stop().expect("stop");
}

#[test]
fn readiness_is_detected_soon_after_the_listening_line_and_stop_frees_everything() {
    let dir = temp_dir();
    let server = Server::launch(
        &fake_command("ready"),
        &options(dir.path(), Duration::from_secs(20)),
    )
    .expect("fake server becomes ready");
    let r = server.readiness();
    let lag = r.ready_after_listening_line.expect("listening line seen");
    assert!(
        lag < Duration::from_millis(50),
        "readiness {lag:?} after the listening line"
    );
    assert_eq!(
        r.load_time.map(|d| d >= Duration::from_millis(100)),
        Some(true),
        "{r:?}"
    );
    let (pid, port) = (server.pid(), server.port());
    assert!(alive(pid));
    let report = server.stop().expect("stop");
    assert!(!report.killed, "SIGTERM should have been enough");
    assert!(!alive(pid), "server still alive after stop");
    assert!(tpsbench::llamacpp::server::net::port_is_free(port));
}

#[test]
fn stop_escalates_to_sigkill_when_sigterm_is_ignored() {
    let dir = temp_dir();
    let mut opts = options(dir.path(), Duration::from_secs(20));
    opts.stop_grace = Duration::from_millis(300);
    let server = Server::launch(&fake_command("ready-ignore-term"), &opts).expect("ready");
    let pid = server.pid();
    let report = server.stop().expect("stop");
    assert!(report.killed);
    assert_eq!(report.exit.signal, Some(nix::libc::SIGKILL));
    assert!(report.took >= Duration::from_millis(300));
    assert!(!alive(pid));
}

#[test]
fn dropping_a_server_stops_it() {
    let dir = temp_dir();
    let server = Server::launch(
        &fake_command("ready"),
        &options(dir.path(), Duration::from_secs(20)),
    )
    .expect("ready");
    let pid = server.pid();
    drop(server);
    assert!(!alive(pid));
}

#[test]
fn a_crash_is_seen_by_check_and_by_the_exit_watch() {
    let dir = temp_dir();
    let server = Server::launch(
        &fake_command("ready"),
        &options(dir.path(), Duration::from_secs(20)),
    )
    .expect("ready");
    let mut watch = server.exit_watch();
    assert!(server.check().is_ok());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.pid() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(2), watch.exited()).await })
        .expect("the watch resolves at once");
    assert!(
        matches!(&err, ServerError::Exited { exit, log_tail, .. }
        if exit.signal == Some(nix::libc::SIGKILL) && log_tail.contains("listening on")),
        "{err}"
    );
    assert!(matches!(server.check(), Err(ServerError::Exited { .. })));
    server.stop().expect("stopping a dead server is fine");
}

#[test]
fn harness_sigkill_takes_the_server_down_even_when_a_finished_thread_launched_it() {
    let dir = temp_dir();
    let pid_file = dir.path().join("server.pid");
    let mut harness = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "--",
            "fake_server_entry",
        ])
        .arg(format!("fake-mode=harness={}", pid_file.display()))
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn harness");
    let server_pid = wait_for_pid_file(&pid_file, Duration::from_secs(20));
    assert!(
        alive(server_pid),
        "the server died when its launching thread ended"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(harness.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    harness.wait().unwrap();
    assert!(
        gone_within(server_pid, Duration::from_secs(1)),
        "server {server_pid} survived the harness"
    );
}

fn wait_for_pid_file(path: &PathBuf, limit: Duration) -> u32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "harness never wrote {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---- the client against fake HTTP streams ----

mod stream {
    //! In-process HTTP servers that answer one `/completion` with scripted SSE chunks.
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    pub enum Step {
        Chunk(&'static str),
        Sleep(Duration),
        Close,
    }

    /// Serves one connection with `status`, then `steps`; returns the base URL.
    pub async fn serve(status: u16, steps: Vec<Step>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            read_request(&mut sock).await;
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            );
            sock.write_all(head.as_bytes()).await.unwrap();
            for step in steps {
                match step {
                    Step::Chunk(data) => {
                        let framed = format!("{:x}\r\n{data}\r\n", data.len());
                        sock.write_all(framed.as_bytes()).await.unwrap();
                    }
                    Step::Sleep(d) => tokio::time::sleep(d).await,
                    Step::Close => return,
                }
            }
            sock.write_all(b"0\r\n\r\n").await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        url
    }

    async fn read_request(sock: &mut tokio::net::TcpStream) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = sock.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf);
            if let Some(end) = text.find("\r\n\r\n") {
                let len: usize = text
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len || n == 0 {
                    return;
                }
            }
        }
    }
}

use stream::Step::{Chunk, Close, Sleep};

const TOKEN_1: &str = "data: {\"content\":\"a\",\"tokens\":[11],\"stop\":false}\n\n";
const TOKEN_2: &str = "data: {\"content\":\"b\",\"tokens\":[12],\"stop\":false}\n\n";
const TWO_TOKENS: &str = "data: {\"content\":\"cd\",\"tokens\":[13,14],\"stop\":false}\n\n";
const FINAL: &str = "data: {\"content\":\"\",\"tokens\":[],\"stop\":true,\"timings\":{\"prompt_n\":3,\"prompt_ms\":2.0,\"predicted_n\":4,\"predicted_ms\":30.0,\"draft_n\":2,\"draft_n_accepted\":1}}\n\n";

fn request(stall: Duration) -> CompletionRequest {
    let mut req = CompletionRequest::new(Prompt::Tokens(vec![1, 2, 3]), 4);
    req.stall_timeout = stall;
    req.first_token_timeout = Duration::from_secs(5);
    req
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_complete_stream_yields_instants_token_ids_and_timings() {
    let rec = runtime().block_on(async {
        let steps = vec![
            Chunk(TOKEN_1),
            Sleep(Duration::from_millis(30)),
            Chunk(TOKEN_2),
            Sleep(Duration::from_millis(30)),
            Chunk(TWO_TOKENS),
            Chunk(FINAL),
        ];
        let url = stream::serve(200, steps).await;
        Client::new(&url)
            .unwrap()
            .complete(&request(Duration::from_secs(5)))
            .await
    });
    let rec = rec.expect("complete stream");
    assert_eq!(rec.token_ids, [11, 12, 13, 14]);
    assert_eq!(rec.text, "abcd");
    let counts: Vec<u32> = rec.chunks.iter().map(|c| c.1).collect();
    assert_eq!(counts, [1, 1, 2]);
    assert!(rec.chunks[1].0 - rec.chunks[0].0 >= Duration::from_millis(25));
    assert!(rec.sent <= rec.headers && rec.headers <= rec.first_byte && rec.first_byte <= rec.end);
    assert_eq!(rec.timings.predicted_n, 4);
    assert_eq!(rec.timings.draft_n_accepted, Some(1));
}

#[test]
fn a_stream_that_stalls_mid_way_is_reported_as_stalled() {
    let start = Instant::now();
    let err = runtime().block_on(async {
        let steps = vec![
            Chunk(TOKEN_1),
            Chunk(TOKEN_2),
            Sleep(Duration::from_secs(30)),
        ];
        let url = stream::serve(200, steps).await;
        Client::new(&url)
            .unwrap()
            .complete(&request(Duration::from_millis(300)))
            .await
    });
    let err = err.expect_err("stall");
    assert!(
        matches!(err, ClientError::Stalled { tokens: 2, after } if after == Duration::from_millis(300)),
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_dropped_connection_is_reported_as_disconnected() {
    let err = runtime().block_on(async {
        let url = stream::serve(200, vec![Chunk(TOKEN_1), Chunk(TOKEN_2), Close]).await;
        Client::new(&url)
            .unwrap()
            .complete(&request(Duration::from_secs(5)))
            .await
    });
    let err = err.expect_err("disconnect");
    assert!(
        matches!(err, ClientError::Disconnected { tokens: 2, .. }),
        "{err}"
    );
}

#[test]
fn an_http_error_status_is_reported_with_its_body() {
    let err = runtime().block_on(async {
        let url = stream::serve(400, vec![Chunk("{\"error\":\"bad prompt\"}")]).await;
        Client::new(&url)
            .unwrap()
            .complete(&request(Duration::from_secs(5)))
            .await
    });
    let err = err.expect_err("400");
    assert!(
        matches!(&err, ClientError::Status { status: 400, body } if body.contains("bad prompt")),
        "{err}"
    );
}

#[test]
fn nothing_listening_is_a_connect_error_naming_the_url() {
    let port = tpsbench::llamacpp::server::net::free_port().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let err = runtime().block_on(async {
        Client::new(&url)
            .unwrap()
            .complete(&request(Duration::from_secs(1)))
            .await
    });
    let err = err.expect_err("refused");
    assert!(matches!(err, ClientError::Connect { .. }), "{err}");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
}
