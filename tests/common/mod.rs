//! Shared helpers for integration tests: the engine (provisioned like `bench run` does),
//! a cross-process lock for tests that start llama-server, and temp dirs.
//!
//! A test that needs the engine and cannot get one FAILS (panics with the reason); it
//! never skips silently. [`skip_or_fail`] is for the tests that only read the engine's
//! files: outside CI they skip with a note, under CI (`CI=true` or `CI=1`) they fail.
#![allow(dead_code)] // each test binary uses a different subset

use std::sync::OnceLock;
use tpsbench::llamacpp::{self, Engine, EngineOptions};
use tpsbench::util::measure_lock::{MeasureLock, Wait};
use tpsbench::util::FileLock;

/// True when running under CI (`CI=true` or `CI=1`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn ensured() -> &'static Result<Engine, String> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let opts = EngineOptions {
            allow_install: true,
            ..EngineOptions::default()
        };
        // The first use of an engine self-tests it with real servers: one test at a time.
        let _lock = llama_server_lock();
        llamacpp::ensure(&opts, &tpsbench::selftest::SelfTest::default())
            .map_err(|e| format!("{e:#}"))
    })
}

/// The engine `bench run` would use (discovery, else the managed install, built if
/// needed). Panics with the reason when there is none.
pub fn engine() -> &'static Engine {
    match ensured() {
        Ok(e) => e,
        Err(why) => panic!(
            "this test needs llama-server and none could be had: {why}\n\
             (set LLAMA_SERVER=/path/to/llama-server or run `bench engine install`)"
        ),
    }
}

/// A test that cannot get what it needs: under CI ([`in_ci`]) it fails with `why`; a local
/// run notes on stderr that it skipped, and why.
pub fn skip_or_fail(why: &str) {
    assert!(!in_ci(), "{why}");
    eprintln!("SKIPPED (not in CI): {why}");
}

/// Held by every test that starts llama-server, across test binaries and processes, so
/// two servers never share the two cores (and the timings stay meaningful). Reentrant on
/// one thread: a test holding it may call [`engine`], whose first use self-tests the engine
/// under the same lock (a second `flock` on the same file would wait for itself).
///
/// It also holds the machine-wide measurement lock that `bench run` takes
/// (`util::measure_lock`), so that a test's server never runs beside a user's measurement;
/// a `bench` the test spawns sees its ancestor holding that lock and measures under it.
pub fn llama_server_lock() -> ServerLock {
    HELD.with(|held| {
        let mut held = held.borrow_mut();
        if held.0 == 0 {
            let path = tpsbench::util::cache_root()
                .join("locks")
                .join("llama-server-tests.lock");
            let lock = FileLock::exclusive(&path, || {
                eprintln!(
                    "waiting for another test's llama-server ({})",
                    path.display()
                )
            })
            .unwrap_or_else(|e| panic!("cannot take the llama-server test lock: {e:#}"));
            let measuring = MeasureLock::acquire(Wait::Wait)
                .unwrap_or_else(|e| panic!("cannot take the measurement lock: {e:#}"));
            held.1 = Some((lock, measuring));
        }
        held.0 += 1;
    });
    ServerLock(())
}

thread_local! {
    /// How many [`ServerLock`]s this thread holds, and the two locks while any is held.
    static HELD: std::cell::RefCell<(usize, Option<(FileLock, MeasureLock)>)> =
        const { std::cell::RefCell::new((0, None)) };
}

/// The llama-server test lock; released when the last guard of the thread is dropped.
pub struct ServerLock(());

impl Drop for ServerLock {
    fn drop(&mut self) {
        HELD.with(|held| {
            let mut held = held.borrow_mut();
            held.0 -= 1;
            if held.0 == 0 {
                held.1 = None;
            }
        });
    }
}

/// A row's reason without its `noisy: ...` note: the machine was busy while the cell was
/// measured (other tests, another user), which is not what a test of the engine checks.
pub fn reason_besides_noise(reason: &str) -> String {
    reason
        .split("; ")
        .filter(|n| !n.starts_with(tpsbench::results::NOISY_NOTE))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A fresh temporary directory, removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("tpsbench-test-")
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"))
}

/// The stdout of a command that must have succeeded; panics with both streams otherwise.
pub fn stdout_of_success(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A tiny synthetic dense model (2 layers, 128 wide, F16, about 4 MB), written once into
/// the synthetic-model cache.
pub fn tiny_model() -> std::path::PathBuf {
    use tpsbench::synth::{self, Arch, BehaviorSpec, QuantMix, Recipe, Shape};
    let shape = Shape {
        arch: Arch::Qwen2,
        n_layer: 2,
        n_embd: 128,
        n_head: 4,
        n_head_kv: 2,
        head_dim: 32,
        n_ff: 256,
        n_vocab: 8192,
        n_expert: 0,
        n_expert_used: 0,
        n_ff_exp: 0,
        tied_embeddings: false,
        context_length: 8192,
        rope_freq_base: 1e6,
        rms_norm_eps: 1e-6,
    };
    let behaviour = BehaviorSpec::Cycle {
        cycle_len: 32,
        seed: 5,
        diverge: 0.0,
    };
    let recipe = Recipe::new("server-test", shape, QuantMix::F16, behaviour, None)
        .unwrap_or_else(|e| panic!("tiny model recipe: {e:#}"));
    synth::ensure_model(&recipe, &synth::cache_dir())
        .unwrap_or_else(|e| panic!("writing the tiny model: {e:#}"))
}

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].trim_start().chars().next());
    !matches!(state, Some('Z') | Some('X') | None)
}

/// Waits up to `limit` for `pid` to be gone; whether it is.
pub fn gone_within(pid: u32, limit: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while alive(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    !alive(pid)
}

/// Pids of llama-server processes whose parent is `parent`.
pub fn server_children(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let comm = &stat[stat.find('(').unwrap_or(0) + 1..close];
        let ppid: u32 = stat[close + 2..]
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if comm.starts_with("llama-server") && ppid == parent {
            out.push(pid);
        }
    }
    out
}
