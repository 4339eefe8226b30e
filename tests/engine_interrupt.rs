//! SIGINT and SIGTERM during an engine build: the harness stops pip and everything it
//! started (its process group), deletes the build directory and the partial prefix, tries
//! no other variant, and exits 130 or 143 within seconds.
//!
//! The build is a stand-in for `python3 -m pip install` that starts a grandchild (as cmake
//! starts compilers) and waits; everything before it (the pinned source package, its
//! extraction and the AMX patch) is the real thing, from the managed engine's cache.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tpsbench::llamacpp::install::ManagedLayout;

/// The pinned source package, where `bench engine install` left it.
fn real_sdist() -> PathBuf {
    let sdist = ManagedLayout::default().sdist();
    assert!(
        sdist.is_file(),
        "{} is missing: run `bench engine install` first (CI's .ci/run does)",
        sdist.display()
    );
    sdist
}

/// A `python3` whose `-m pip install` writes a build-log line, starts a grandchild and
/// records both pids in `pids/`, then waits.
fn stand_in_python(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let pids = dir.join("pids");
    std::fs::create_dir_all(&pids).unwrap();
    let python = dir.join("python3");
    std::fs::write(
        &python,
        format!(
            r#"#!/bin/sh
case "$3" in
  --version) echo "pip 0 (stand-in)" ;;
  install) echo "[  1%] Building CXX object stand-in.o"
       sleep 300 & echo $! > {pids}/grandchild.tmp; mv {pids}/grandchild.tmp {pids}/grandchild
       echo $$ > {pids}/pip
       wait ;;
  *) exit 8 ;;
esac
"#,
            pids = pids.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
    python
}

fn alive(pid: i32) -> bool {
    // A zombie still answers kill(0); /proc says whether it has exited.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.split_whitespace()
            .nth(2)
            .is_some_and(|state| state != "Z")
    })
}

fn interrupt_the_build(signal: Signal, code: i32) {
    let dir = common::temp_dir();
    let cache = dir.path().join("cache");
    let layout = ManagedLayout::in_engine_dir(&cache.join("tpsbench/engine"));
    std::fs::create_dir_all(&layout.dir).unwrap();
    std::os::unix::fs::symlink(real_sdist(), layout.sdist()).unwrap();
    let python = stand_in_python(dir.path());
    let mut bench = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["engine", "install", "--variant", "portable"])
        .env("XDG_CACHE_HOME", &cache)
        .env("TPSBENCH_PYTHON", &python)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let grandchild_file = dir.path().join("pids/grandchild");
    let started = Instant::now();
    while !grandchild_file.is_file() {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the stand-in build never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let read_pid = |name: &str| -> i32 {
        let text = std::fs::read_to_string(dir.path().join("pids").join(name)).unwrap();
        text.trim().parse().unwrap()
    };
    let grandchild = read_pid("grandchild");
    while !dir.path().join("pids/pip").is_file() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let pip = read_pid("pip");
    assert!(alive(grandchild) && alive(pip));
    assert!(
        layout.dir.join("build-src").is_dir(),
        "the build is under way"
    );

    let sent = Instant::now();
    kill(Pid::from_raw(bench.id() as i32), signal).unwrap();
    let status = bench.wait().unwrap();
    let took = sent.elapsed();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut bench.stderr.take().unwrap(), &mut stderr).unwrap();
    eprintln!("{signal}: exited {status} after {took:?}");
    assert_eq!(status.code(), Some(code), "{stderr}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(stderr.contains("interrupted by"), "{stderr}");
    assert!(
        !stderr.contains("variant `native`"),
        "no other variant after an interrupt: {stderr}"
    );
    assert!(!alive(pip), "pip outlived the harness");
    assert!(!alive(grandchild), "pip's child outlived the harness");
    for leftover in [
        "build-src",
        "prefix.partial",
        "prefix.partial.json",
        "prefix",
    ] {
        assert!(
            !layout.dir.join(leftover).exists(),
            "{leftover} left behind"
        );
    }
}

#[test]
fn sigterm_during_the_engine_build_stops_it_and_exits_143() {
    interrupt_the_build(Signal::SIGTERM, 143);
}

#[test]
fn sigint_during_the_engine_build_stops_it_and_exits_130() {
    interrupt_the_build(Signal::SIGINT, 130);
}
