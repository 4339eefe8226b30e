//! One measurement at a time: two `bench` processes that measure contend for the
//! machine-wide lock. The holder is a real `bench run --server-url` against a local socket
//! that accepts and never answers (it takes the lock, launches nothing and waits); the
//! second is `bench run --profile no-such-profile`, which takes the lock before it reads its
//! profile and then fails on it (exit 2), so getting past the lock is visible without a
//! server. Every test uses its own lock file (`TPSBENCH_LOCK`) and stops what it started
//! by pid.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed (SIGKILL) and reaped when dropped, whatever the test did.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port that accepts connections and never answers; the listener thread holds
/// them until the test process ends.
fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

fn bench(lock: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("bench"));
    cmd.env("TPSBENCH_LOCK", lock)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Starts the holder and waits until its pid is in the lock file.
fn holder(lock: &Path) -> Proc {
    let url = format!("http://127.0.0.1:{}", silent_server());
    let child = bench(lock)
        .args(["run", "--server-url", &url])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let holder = Proc(child);
    let start = Instant::now();
    while !std::fs::read_to_string(lock).is_ok_and(|t| t.starts_with(&format!("pid {pid}\n"))) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the holder never wrote its pid into {}",
            lock.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    holder
}

/// The second measurement: takes the lock, then fails on its absent profile (exit 2).
fn second(lock: &Path, extra: &[&str]) -> Command {
    let mut cmd = bench(lock);
    cmd.args(["run", "--profile", "no-such-profile"])
        .args(extra);
    cmd
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

fn lock_file(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("measure.lock")
}

#[test]
fn a_second_measurement_waits_until_the_first_lets_go_and_names_it() {
    let dir = common::temp_dir();
    let lock = lock_file(&dir);
    let mut first = holder(&lock);
    let first_pid = first.0.id();
    let mut waiter = Proc(second(&lock, &[]).spawn().unwrap());
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        waiter.0.try_wait().unwrap().is_none(),
        "the second measurement must wait while the first holds the lock"
    );
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = waiter.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the waiter did not go on after the holder died"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = stderr_of(&mut waiter.0);
    assert_eq!(
        status.code(),
        Some(2),
        "past the lock, the bad profile: {err}"
    );
    assert!(
        err.contains(&format!("held by pid {first_pid} (")) && err.contains("--server-url"),
        "{err}"
    );
    assert!(err.contains("waited 0 s so far"), "{err}");
    assert!(err.contains("no profile `no-such-profile`"), "{err}");
}

#[test]
fn no_wait_exits_4_naming_the_holder() {
    let dir = common::temp_dir();
    let lock = lock_file(&dir);
    let first = holder(&lock);
    let pid = first.0.id();
    for extra in [
        vec!["run", "--profile", "no-such-profile", "--no-wait"],
        vec![
            "check",
            "--baseline",
            "x.csv",
            "--profile",
            "smoke",
            "--no-wait",
        ],
    ] {
        let out = bench(&lock).args(&extra).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{extra:?}: {err}");
        assert!(
            err.contains(&format!("pid {pid} (")) && err.contains("not waiting (--no-wait)"),
            "{err}"
        );
    }
    drop(first);
}

#[test]
fn a_holder_killed_with_sigkill_blocks_nobody() {
    let dir = common::temp_dir();
    let lock = lock_file(&dir);
    let mut first = holder(&lock);
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    // The dead holder's lines are still in the file; the lock is free all the same.
    assert!(std::fs::read_to_string(&lock).unwrap().starts_with("pid "));
    let out = second(&lock, &["--no-wait"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("holds the lock"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap(),
        "",
        "the next taker empties the file when it lets go"
    );
}
