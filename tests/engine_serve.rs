//! Serving under load with the real llama-server: `bench run -m FILE --rate ...` and
//! `--concurrency ...` on a tiny synthetic model, and a profile role's `load` table. What is
//! checked comes from the rows and raw lines the run wrote, recomputed here from the raw
//! JSON (counts, the schedule's seed, the latencies measured from the scheduled send).

mod common;

use assert_cmd::cargo::CommandCargoExt;
use std::path::Path;
use std::process::Command;
use tpsbench::results::{read_results, ResultRow, Status};

fn bench(args: &[&str], out: &Path) -> std::process::Output {
    let engine = common::engine();
    Command::cargo_bin("bench")
        .unwrap()
        .args(args)
        .arg("--out")
        .arg(out)
        .args(["--bw-seconds", "0.2", "--quiet"])
        .env("LLAMA_SERVER", &engine.server_bin)
        .env(
            "XDG_CACHE_HOME",
            tpsbench::util::cache_root().parent().unwrap(),
        )
        .output()
        .unwrap()
}

/// `bench run -m` on the tiny model's chat prompt, 16 tokens a request, with `load`'s flags.
fn serve(load: &[&str], csv: &Path) -> std::process::Output {
    let model = common::tiny_model();
    let mut args = vec!["run", "-m", model.to_str().unwrap()];
    args.extend(["--workloads", "chat", "--n-predict", "16"]);
    args.extend(load);
    bench(&args, csv)
}

fn raw_lines(csv: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(csv.with_extension("jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn rows(csv: &Path) -> Vec<ResultRow> {
    read_results(csv).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn engine_serve_a_rate_sweep_writes_a_row_per_rate_and_every_completed_request() {
    let _lock = common::llama_server_lock();
    let dir = common::temp_dir();
    let csv = dir.path().join("serve.csv");
    let load = [
        "--rate",
        "1,4",
        "--requests",
        "12",
        "--seed",
        "7",
        "--slo",
        "ttft=5s,tpot=1s",
    ];
    let out = serve(&load, &csv);
    let stdout = common::stdout_of_success(&out);
    let rows = rows(&csv);
    let served: Vec<&ResultRow> = rows.iter().filter(|r| !r.load.is_empty()).collect();
    assert_eq!(served.len(), 2, "{stdout}");
    assert_eq!(served[0].load, "rate 1 rps");
    assert_eq!(served[1].load, "rate 4 rps");
    for r in &served {
        assert_eq!(r.status, Status::Ok, "{r:?}");
        assert_eq!(r.requests_sent, Some(12), "{r:?}");
        assert_eq!(r.requests_completed, Some(12), "{r:?}");
        assert_eq!(r.load_seed, Some(7));
        assert_eq!(r.slo, "ttft=5000ms,tpot=1000ms");
        // The machine's other load while the phase ran.
        assert!(r.foreign_cpu_pct.is_some_and(|f| f >= 0.0), "{r:?}");
        assert!(r.steal_pct.is_some(), "{r:?}");
        let lines: Vec<_> = raw_lines(&csv)
            .into_iter()
            .filter(|l| l["load"] == r.load.as_str())
            .collect();
        assert_eq!(lines.len(), 12, "one raw line per completed request");
        // The row's TTFT p99 counts from the scheduled send: no request's own TTFT (from
        // its actual send) plus its send lag exceeds it by more than rounding.
        let worst = lines
            .iter()
            .map(|l| {
                let lag = l["send_lag_ns"].as_u64().unwrap() as f64 / 1e6;
                let first = l["request"]["chunks"][0]["at_ns"].as_u64().unwrap() as f64 / 1e6;
                lag + first
            })
            .fold(0.0, f64::max);
        assert!(
            r.load_ttft_ms_p99.unwrap() <= worst * 1.01 + 1.0,
            "{r:?} worst {worst}"
        );
        assert!(r.goodput_share.unwrap() > 0.0);
    }
    // The schedule is the seed's: the offsets of the rate-4 phase are a quarter of the
    // rate-1 phase's (the same exponential draws over a rate four times higher).
    let offsets = |load: &str| -> Vec<f64> {
        let mut v: Vec<f64> = raw_lines(&csv)
            .iter()
            .filter(|l| l["load"] == load)
            .map(|l| l["scheduled_ns"].as_u64().unwrap() as f64)
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let (slow, fast) = (offsets("rate 1 rps"), offsets("rate 4 rps"));
    for (a, b) in slow.iter().zip(&fast) {
        assert!((a / 4.0 - b).abs() <= 1e3, "{a} / 4 vs {b}");
    }
    assert!(stdout.contains("rate 4 rps"), "{stdout}");
    assert!(stdout.contains("goodput"), "{stdout}");
}

#[test]
fn engine_serve_closed_loop_clients_get_their_own_slots() {
    let _lock = common::llama_server_lock();
    let dir = common::temp_dir();
    let csv = dir.path().join("closed.csv");
    let out = serve(&["--concurrency", "1,2", "--requests", "8"], &csv);
    common::stdout_of_success(&out);
    let rows = rows(&csv);
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(r.status, Status::Ok, "{r:?}");
        assert_eq!(
            r.parallel, 2,
            "the server has a slot per client of the largest point"
        );
        assert_eq!(r.requests_completed, Some(8));
    }
    assert_eq!(rows[1].load_clients, Some(2));
}

#[test]
fn engine_serve_bad_serving_flags_fail_before_any_launch() {
    let dir = common::temp_dir();
    let model = common::tiny_model();
    let csv = dir.path().join("bad.csv");
    let out = bench(&["run", "-m", model.to_str().unwrap(), "--rate", "0"], &csv);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--rate 0"), "{stderr}");
    assert!(!csv.exists());
}

/// A child process that is killed if the test fails before it ends.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn engine_serve_ctrl_c_stops_sending_keeps_completed_requests_and_the_server_goes() {
    let _lock = common::llama_server_lock();
    let dir = common::temp_dir();
    let model = common::tiny_model();
    let csv = dir.path().join("int.csv");
    let engine = common::engine();
    let mut child = Reaped(
        Command::cargo_bin("bench")
            .unwrap()
            .args(["run", "-m", model.to_str().unwrap(), "--workloads", "chat"])
            .args(["--n-predict", "16", "--rate", "4", "--duration", "120s"])
            .args(["--bw-seconds", "0.2", "--quiet", "--out"])
            .arg(&csv)
            .env("LLAMA_SERVER", &engine.server_bin)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Ctrl-C a few seconds into the phase, once the server is up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while servers_of(&model).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no server appeared");
        assert!(child.0.try_wait().unwrap().is_none(), "bench exited early");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_secs(4));
    let pid = nix::unistd::Pid::from_raw(child.0.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let rows = rows(&csv);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, Status::Interrupted, "{:?}", rows[0]);
    let lines = raw_lines(&csv).len() as u32;
    assert!(lines >= 1, "requests completed in 4 s at 4 rps are kept");
    assert_eq!(
        rows[0].requests_completed,
        Some(lines),
        "every completed request kept"
    );
    assert!(
        servers_of(&model).is_empty(),
        "a llama-server of the run is left"
    );
}

/// Pids of the llama-server processes whose command line names `model`.
fn servers_of(model: &Path) -> Vec<u32> {
    let name = model.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.starts_with("llama-server"))
        })
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&name))
        })
        .filter(|pid| common::alive(*pid))
        .collect()
}
