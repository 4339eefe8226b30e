//! `bench run` against the real llama-server: a tiny profile end to end, and the faults of
//! issue "The driver" (harness SIGKILLed, Ctrl-C, server killed mid-cell, bad inputs).

mod common;

use assert_cmd::cargo::CommandCargoExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tpsbench::results::{read_results, ResultRow, Status};

/// A tiny profile: one dense synthetic target with a draft, modes baseline, spec:4, lookup.
fn tiny_profile(dir: &Path, n_predict: u32, modes: &str, extra_role: bool) -> PathBuf {
    let mut text = format!(
        r#"name = "tiny"
[run]
n_predict = {n_predict}
workloads = ["code-edit"]
min_repetitions = 3
max_repetitions = 3
cell_time_budget_s = 60

[[roles]]
name = "target"
kind = "workers"
quant = "F16"
tier = "HOT"
draft = "draft"
modes = [{modes}]
ctx = 4096
[roles.synth]
layers = 4
embd = 256
heads = 4
ff = 512
n_vocab = 4096
cycle_len = 32

[[roles]]
name = "draft"
kind = "draft"
quant = "F16"
tier = "HOT"
ctx = 4096
[roles.synth]
layers = 1
embd = 128
heads = 2
ff = 256
n_vocab = 4096
cycle_len = 32
"#
    );
    if extra_role {
        text.push_str(
            r#"
[[roles]]
name = "second"
kind = "frontdoor"
quant = "F16"
tier = "HOT"
ctx = 4096
[roles.synth]
layers = 2
embd = 256
heads = 4
ff = 512
n_vocab = 4096
"#,
        );
    }
    let path = dir.join("tiny.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn bench(args: &[&str], out: &Path) -> Command {
    let mut cmd = bench_loud(args, out);
    cmd.arg("--quiet");
    cmd
}

/// As [`bench`], with the per-cell lines on stderr.
fn bench_loud(args: &[&str], out: &Path) -> Command {
    let engine = common::engine();
    let mut cmd = Command::cargo_bin("bench").unwrap();
    cmd.args(args)
        .arg("--out")
        .arg(out)
        .args(["--bw-seconds", "0.2"])
        .env("LLAMA_SERVER", &engine.server_bin)
        .env(
            "XDG_CACHE_HOME",
            tpsbench::util::cache_root().parent().unwrap(),
        );
    cmd
}

/// `bench run --profile PROFILE --out CSV` in the background, output discarded.
fn spawn_run(profile: &Path, csv: &Path) -> Child {
    bench(&["run", "--profile", profile.to_str().unwrap()], csv)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Sends `signal` to `pid`.
fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).unwrap();
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// Waits until `child` has a llama-server child that is generating (its CSV has at least
/// `rows` rows), returning the server pid.
fn wait_for_server(child: &mut Child, csv: &Path, rows: usize) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(240);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("bench exited early: {status}");
        }
        let have = std::fs::read_to_string(csv)
            .map(|t| t.lines().count().saturating_sub(1))
            .unwrap_or(0);
        let servers = common::server_children(child.id());
        if have >= rows && !servers.is_empty() {
            return servers[0];
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no llama-server appeared under bench pid {}", child.id());
}

/// The launch-to-launch CV of `row`'s cell, recomputed from the raw JSON Lines as plain JSON
/// (not through the harness's types): each timed repetition's server decode rate
/// ((predicted_n - 1) tokens over predicted_ms, averaged over the repetition's slots), each
/// launch's mean and the within-launch variance of its log mean (sd^2 / (n mean^2)), then the
/// method of moments on the log scale: sqrt(max(0, S^2 - mean within)), S^2 the sample
/// variance of the launches' log means.
fn launch_cv_from_raw_lines(jsonl: &Path, row: &ResultRow) -> f64 {
    use std::collections::BTreeMap;
    let text = std::fs::read_to_string(jsonl).unwrap();
    let mut reps: BTreeMap<(u64, u64), Vec<f64>> = BTreeMap::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let is = |k: &str, want: &str| v[k].as_str() == Some(want);
        let mine = is("role", &row.role)
            && is("mode", &row.mode.to_string())
            && is("workload", &row.workload)
            && v["parallel"].as_u64() == Some(u64::from(row.parallel))
            && v["warmup"] == false
            && v["partner"] != true;
        if !mine {
            continue;
        }
        let t = &v["request"]["timings"];
        let tokens = t["predicted_n"].as_f64().unwrap() - 1.0;
        let seconds = t["predicted_ms"].as_f64().unwrap() / 1000.0;
        let launch = v["launch"].as_u64().unwrap_or(0);
        let rep = v["rep"].as_u64().unwrap();
        reps.entry((launch, rep))
            .or_default()
            .push(tokens / seconds);
    }
    let mut launches: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for ((launch, _), slots) in reps {
        let mean = slots.iter().sum::<f64>() / slots.len() as f64;
        launches.entry(launch).or_default().push(mean);
    }
    assert!(launches.len() >= 2, "{launches:?}");
    let logs: Vec<(f64, f64)> = launches
        .values()
        .map(|x| {
            let n = x.len() as f64;
            let mean = x.iter().sum::<f64>() / n;
            let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
            (mean.ln(), var / (n * mean * mean))
        })
        .collect();
    let k = logs.len() as f64;
    let grand = logs.iter().map(|l| l.0).sum::<f64>() / k;
    let spread = logs.iter().map(|l| (l.0 - grand).powi(2)).sum::<f64>() / (k - 1.0);
    let within = logs.iter().map(|l| l.1).sum::<f64>() / k;
    (spread - within).max(0.0).sqrt()
}

fn read_rows(csv: &Path) -> Vec<ResultRow> {
    read_results(csv).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn engine_run_tiny_profile_measures_every_mode_losslessly() {
    let _lock = common::llama_server_lock();
    let dir = common::temp_dir();
    let profile = tiny_profile(dir.path(), 48, r#""spec:4", "lookup""#, false);
    let csv = dir.path().join("tiny.csv");
    let out = bench(&["run", "--profile", profile.to_str().unwrap()], &csv)
        .output()
        .unwrap();
    let stdout = common::stdout_of_success(&out);
    let rows = read_rows(&csv);
    let labels: Vec<String> = rows.iter().map(|r| r.mode.to_string()).collect();
    let modes: Vec<(&str, &str)> = rows
        .iter()
        .zip(&labels)
        .map(|(r, label)| (r.role.as_str(), label.as_str()))
        .collect();
    assert_eq!(
        modes,
        [
            ("target", "baseline"),
            ("target", "spec:4"),
            ("target", "lookup"),
            ("draft", "baseline")
        ]
    );
    for r in &rows {
        assert_eq!(r.status, Status::Ok, "{r:?}");
        assert!(r.decode_tps_mean.unwrap() > 1.0, "{r:?}");
        assert!(r.n_reps >= 3);
        assert!(r.synthetic);
        assert!(
            common::reason_besides_noise(&r.reason).is_empty(),
            "baseline must follow the known sequence: {}",
            r.reason
        );
        // The machine's other load while the cell ran, sampled by every launched run.
        assert!(r.foreign_cpu_pct.is_some_and(|f| f >= 0.0), "{r:?}");
        assert!(
            r.steal_pct.is_some_and(|s| (0.0..=100.0).contains(&s)),
            "{r:?}"
        );
    }
    for r in &rows[1..3] {
        assert_eq!(
            r.lossless,
            Some(true),
            "{} must not change the output",
            r.mode
        );
        assert!(r.draft_n.unwrap() > 0 && r.speedup.is_some(), "{r:?}");
    }
    // The draft agrees with the target by construction.
    assert_eq!(rows[1].acceptance, Some(1.0), "{:?}", rows[1]);
    // Each baseline is launched twice (the launch-to-launch variation); spec:4 and lookup once.
    assert!(stdout.contains("4 cells in 6 launches"), "{stdout}");
    for r in rows.iter().filter(|r| r.mode.is_baseline()) {
        assert_eq!(r.launches, 2, "{r:?}");
        // Its size is the machine's: the 1-layer draft at ~3000 t/s varied 1000-4900 t/s
        // between requests on an idle CI run and read 0.66.
        let cv = r
            .between_launch_cv
            .expect("two launches give a launch variation");
        let expected = launch_cv_from_raw_lines(&csv.with_extension("jsonl"), r);
        assert!(
            (cv - expected).abs() <= 1e-9 * expected.max(1.0),
            "between_launch_cv {cv} against {expected} from the raw lines: {r:?}"
        );
    }
    for r in &rows[1..3] {
        assert_eq!(r.launches, 1, "{r:?}");
        assert_eq!(
            r.between_launch_cv, rows[0].between_launch_cv,
            "the baseline's"
        );
    }
    // The baselines' untimed reference requests carry the server's top-two probabilities:
    // at temperature 0 the emitted token is the most probable one, so `first` is the token.
    let raw = tpsbench::results::read_raw(&csv.with_extension("jsonl")).unwrap();
    let references: Vec<_> = raw
        .iter()
        .filter(|r| r.warmup && r.key.mode.is_baseline())
        .collect();
    assert_eq!(references.len(), 4, "one per launch of each baseline cell");
    for r in references {
        let top: Vec<u32> = r.request.top_two.iter().map(|t| t.first).collect();
        assert_eq!(top, r.request.token_ids, "the greedy token is the top one");
        assert!(r
            .request
            .top_two
            .iter()
            .all(|t| t.second != t.first && (0.0..=1.0).contains(&t.margin)));
    }
    assert!(raw
        .iter()
        .filter(|r| !r.warmup)
        .all(|r| r.request.top_two.is_empty()));
    assert!(csv.with_extension("jsonl").exists());
    assert!(common::server_children(std::process::id()).is_empty());
}

#[test]
fn engine_run_pairs_the_speedup_with_the_baseline_server_beside_it_which_idles_at_no_cost() {
    let _lock = common::llama_server_lock();
    let dir = common::temp_dir();
    let profile = tiny_profile(dir.path(), 48, r#""lookup""#, false);
    let csv = dir.path().join("p.csv");
    let out = bench_loud(&["run", "--profile", profile.to_str().unwrap()], &csv)
        .output()
        .unwrap();
    let stdout = common::stdout_of_success(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The baseline's second launch stays up beside lookup's: no launch is added for the pair
    // (two per baseline, one for lookup).
    assert!(stdout.contains("3 cells in 5 launches"), "{stdout}");
    let rows = read_rows(&csv);
    let lookup = rows.iter().find(|r| r.mode == "lookup").unwrap();
    assert_eq!(lookup.status, Status::Ok, "{lookup:?}");
    assert_eq!(
        common::reason_besides_noise(&lookup.reason),
        "",
        "paired, no note"
    );
    assert_eq!(lookup.speedup_pairs, Some(lookup.n_reps), "{lookup:?}");
    let (low, x, high) = (
        lookup.speedup_ci95_low.unwrap(),
        lookup.speedup.unwrap(),
        lookup.speedup_ci95_high.unwrap(),
    );
    // Only the interval's shape: on a machine shared with compilers a 48-token lookup cell
    // has read anywhere from 0.5x to 3x.
    assert!(low <= x && x <= high && x > 0.0, "{low} {x} {high}");
    // The JSONL holds the baseline half of every pair, flagged as the partner's.
    let raw = tpsbench::results::read_raw(&csv.with_extension("jsonl")).unwrap();
    let partner = raw.iter().filter(|r| r.partner && !r.warmup).count();
    assert_eq!(partner as u32, lookup.n_reps);
    // While lookup's server worked, the idle baseline server beside it took (almost) no CPU:
    // `... used N ms CPU during M ms of this cell's requests`; /proc counts 10 ms ticks. The
    // server's threads finish their own batch just before each of lookup's (its OpenMP
    // threads wind down for a few ms), so every pair may carry one tick into the window: an
    // idle CI run read 30 ms over 3 pairs and 194 ms of requests.
    let line = stderr
        .lines()
        .find(|l| l.contains("the idle server beside it"))
        .unwrap_or_else(|| panic!("no idle-cost line: {stderr}"));
    let numbers: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let (cpu_ms, wall_ms) = (numbers[numbers.len() - 2], numbers[numbers.len() - 1]);
    let pairs = f64::from(lookup.speedup_pairs.unwrap());
    assert!(cpu_ms <= 10.0 * (pairs + 1.0) + 0.02 * wall_ms, "{line}");
    assert!(common::server_children(std::process::id()).is_empty());
}

#[test]
fn engine_ab_interleaves_two_servers_per_launch_and_writes_a_file_per_side() {
    let _lock = common::llama_server_lock();
    let dir = common::temp_dir();
    let profile = tiny_profile(dir.path(), 32, "", false);
    let out = dir.path().join("ab.csv");
    let engine = common::engine();
    let bin = engine.server_bin.to_str().unwrap();
    let run = bench(
        &[
            "ab",
            "--profile",
            profile.to_str().unwrap(),
            "--engine-a",
            bin,
            "--engine-b",
            bin,
            // Prompt threads: decode is untouched (`--poll 0` instead halved the target's
            // decode rate here: B / A 0.46).
            "--args-b=-tb 2",
        ],
        &out,
    )
    .output()
    .unwrap();
    let stdout = common::stdout_of_success(&run);
    let (a, b) = (
        read_rows(&dir.path().join("ab-a.csv")),
        read_rows(&dir.path().join("ab-b.csv")),
    );
    assert_eq!((a.len(), b.len()), (2, 2), "target and draft baselines");
    assert!(a.iter().chain(&b).all(|r| r.status == Status::Ok));
    assert!(b.iter().all(|r| r.server_args == "-tb 2"), "{b:?}");
    assert!(a.iter().all(|r| r.server_args.is_empty()));
    // One B / A line per cell, from the pairs: the same engine on both sides, so the ratio
    // is near 1 and its interval holds it.
    let ratios: Vec<Vec<f64>> = stdout
        .lines()
        .filter(|l| l.contains("baseline"))
        .map(|l| {
            l.split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == '-')
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .collect();
    assert_eq!(ratios.len(), 2, "{stdout}");
    for numbers in &ratios {
        // np, A t/s, B t/s, ratio, low, high, pairs
        let (x, low, high) = (numbers[3], numbers[4], numbers[5]);
        assert!(
            low <= x && x <= high && (0.33..3.0).contains(&x),
            "{stdout}"
        );
    }
    assert!(stdout.contains("2 cells in 4 launches"), "{stdout}");
}

#[test]
fn engine_run_sigkilled_harness_leaves_no_server() {
    let _lock = common::llama_server_lock();
    let dir = common::temp_dir();
    let profile = tiny_profile(dir.path(), 4000, "", false);
    let csv = dir.path().join("k.csv");
    let mut child = spawn_run(&profile, &csv);
    let server = wait_for_server(&mut child, &csv, 0);
    assert!(alive(server));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(server) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !alive(server),
        "llama-server {server} outlived the SIGKILLed harness"
    );
}

#[test]
fn engine_run_ctrl_c_keeps_finished_rows_and_exits_130() {
    let _lock = common::llama_server_lock();
    let dir = common::temp_dir();
    let profile = tiny_profile(dir.path(), 600, r#""spec:4", "lookup""#, false);
    let csv = dir.path().join("c.csv");
    let mut child = spawn_run(&profile, &csv);
    // Interrupt during the second launch, after the baseline row is written.
    let server = wait_for_server(&mut child, &csv, 1);
    std::thread::sleep(Duration::from_millis(300));
    signal(child.id(), nix::sys::signal::Signal::SIGINT);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(!alive(server), "the server must be stopped on Ctrl-C");
    let rows = read_rows(&csv);
    assert_eq!(rows[0].status, Status::Ok);
    assert_eq!(rows[1].status, Status::Interrupted, "{:?}", rows[1]);
    // --resume finishes the run without repeating the finished baseline.
    let engine = common::engine();
    let resumed = Command::cargo_bin("bench")
        .unwrap()
        .args([
            "run",
            "--profile",
            profile.to_str().unwrap(),
            "--bw-seconds",
            "0.2",
            "--quiet",
            "--n-predict",
            "32",
            "--resume",
        ])
        .arg(&csv)
        .env("LLAMA_SERVER", &engine.server_bin)
        .output()
        .unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let after = read_rows(&csv);
    let keys: Vec<_> = after
        .iter()
        .map(|r| (r.role.clone(), r.mode.clone()))
        .collect();
    assert_eq!(
        keys.iter()
            .filter(|k| k.1 == "baseline" && k.0 == "target")
            .count(),
        1,
        "{keys:?}"
    );
    assert!(after.iter().all(|r| r.status == Status::Ok), "{after:?}");
    // The baseline of the interrupted run still serves the resumed cells.
    let spec = after.iter().find(|r| r.mode == "spec:4").unwrap();
    assert!(spec.speedup.is_some(), "{spec:?}");
    assert_eq!(after.len(), 4);
}

#[test]
fn engine_run_server_killed_mid_cell_fails_that_cell_and_goes_on() {
    let _lock = common::llama_server_lock();
    let dir = common::temp_dir();
    let profile = tiny_profile(dir.path(), 2000, "", true);
    let csv = dir.path().join("f.csv");
    let mut child = spawn_run(&profile, &csv);
    let server = wait_for_server(&mut child, &csv, 0);
    std::thread::sleep(Duration::from_millis(500));
    signal(server, nix::sys::signal::Signal::SIGKILL);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "failed cells give exit code 1");
    let rows = read_rows(&csv);
    assert_eq!(rows[0].status, Status::Failed, "{:?}", rows[0]);
    assert!(
        rows[0].reason.contains("tail of"),
        "the reason carries the server log tail: {}",
        rows[0].reason
    );
    let second = rows
        .iter()
        .find(|r| r.role == "second")
        .expect("the run went on to the next role");
    assert_eq!(second.status, Status::Ok);
}

#[test]
fn engine_run_finds_a_publisher_variant_and_skips_an_absent_model() {
    let _lock = common::llama_server_lock();
    let dir = common::temp_dir();
    // A small synthetic F16 model, saved under a publisher's spelling of the profile's name.
    let mut args = tpsbench::synth::SynthArgs::for_role("F16", None, &Default::default());
    (args.layers, args.embd, args.heads, args.ff) = (Some(2), Some(256), Some(4), Some(512));
    args.n_vocab = Some(4096);
    let cache = dir.path().join("cache");
    let written = tpsbench::synth::ensure_model(&args.recipe().unwrap(), &cache).unwrap();
    std::fs::rename(written, dir.path().join("tiny.F16.gguf")).unwrap();
    let profile = dir.path().join("m.toml");
    std::fs::write(
        &profile,
        r#"name = "m"
[run]
n_predict = 8
workloads = ["code-edit"]
max_repetitions = 3
[[roles]]
name = "workers"
model = "Tiny-Instruct-F16.gguf"
quant = "Q4_K_M"
tier = "HOT"
[[roles]]
name = "frontdoor"
model = "nowhere.gguf"
quant = "Q4_K_M"
params_b = 7.0
tier = "HOT"
"#,
    )
    .unwrap();
    let csv = dir.path().join("m.csv");
    let out = bench(
        &[
            "run",
            "--profile",
            profile.to_str().unwrap(),
            "--models-dir",
            dir.path().to_str().unwrap(),
        ],
        &csv,
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("tiny.F16.gguf for Tiny-Instruct-F16.gguf (publisher variant"),
        "{err}"
    );
    assert!(err.contains("the profile says quant Q4_K_M but"), "{err}");
    let rows = read_rows(&csv);
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (workers, front) = (&rows[0], &rows[1]);
    assert_eq!(
        (workers.role.as_str(), workers.status),
        ("workers", Status::Ok)
    );
    assert_eq!(workers.model_file, "tiny.F16.gguf");
    assert_eq!(
        workers.model_quant, "F16",
        "the file's own type, not the label"
    );
    assert_eq!(
        (front.role.as_str(), front.status),
        ("frontdoor", Status::Skipped)
    );
    assert_eq!(
        front.reason,
        format!(
            "model file absent (looked for nowhere.gguf in {}; near matches: none)",
            dir.path().display()
        )
    );
}

#[test]
fn engine_run_draft_with_another_vocabulary_is_refused_before_any_launch() {
    let dir = common::temp_dir();
    for (name, vocab) in [("target.gguf", "4096"), ("draft.gguf", "8192")] {
        let out = Command::cargo_bin("bench")
            .unwrap()
            .args([
                "synth",
                "--embd",
                "128",
                "--heads",
                "2",
                "--layers",
                "1",
                "--quant",
                "F16",
                "--n-vocab",
                vocab,
                "-o",
            ])
            .arg(dir.path().join(name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let profile = dir.path().join("v.toml");
    std::fs::write(
        &profile,
        r#"name = "v"
[[roles]]
name = "workers"
model = "target.gguf"
quant = "F16"
tier = "HOT"
draft = "draft"
modes = ["spec:4"]
[[roles]]
name = "draft"
model = "draft.gguf"
quant = "F16"
tier = "HOT"
"#,
    )
    .unwrap();
    let csv = dir.path().join("v.csv");
    let out = Command::cargo_bin("bench")
        .unwrap()
        .args([
            "run",
            "--profile",
            profile.to_str().unwrap(),
            "--models-dir",
            dir.path().to_str().unwrap(),
            "--out",
        ])
        .arg(&csv)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("draft.gguf") && err.contains("target.gguf") && err.contains("vocabulary"),
        "{err}"
    );
    assert!(!csv.exists());
}

#[test]
fn engine_run_sweeps_threads_and_depth_with_a_server_arg() {
    let _lock = common::llama_server_lock();
    let dir = common::temp_dir();
    let profile = tiny_profile(dir.path(), 32, "", false);
    let csv = dir.path().join("s.csv");
    let out = bench(
        &[
            "run",
            "--profile",
            profile.to_str().unwrap(),
            "--roles",
            "target",
            "--threads",
            "1,2",
            "--depth",
            "0,256",
            "--server-arg",
            "-kvu",
            "--server-arg",
            "-b 256",
        ],
        &csv,
    )
    .output()
    .unwrap();
    let stdout = common::stdout_of_success(&out);
    assert!(stdout.contains("4 cells in 4 launches"), "{stdout}");
    let rows = read_rows(&csv);
    let cells: Vec<(u32, u32)> = rows.iter().map(|r| (r.threads, r.depth)).collect();
    assert_eq!(cells, [(1, 0), (1, 256), (2, 0), (2, 256)]);
    for r in &rows {
        assert_eq!(r.status, Status::Ok, "{r:?}");
        assert_eq!(r.server_args, "-kvu -b 256");
        assert!(r.decode_tps_mean.unwrap() > 1.0, "{r:?}");
        // The filler does not move the synthetic model off its known sequence.
        let reason = common::reason_besides_noise(&r.reason);
        assert!(reason.is_empty(), "{}", r.reason);
    }
    // The synthetic code-edit prompt is 320 token ids (workload::synthetic_prompt_tokens);
    // at depth 256 the server must have counted 256 more before decoding.
    let raw = tpsbench::results::read_raw(&csv.with_extension("jsonl")).unwrap();
    for line in raw.iter().filter(|l| !l.warmup) {
        let want = 320 + u64::from(line.key.depth);
        assert_eq!(line.request.timings.prompt_n, want, "{:?}", line.key);
        assert_eq!(line.key.server_args, "-kvu -b 256");
    }
    assert!(raw.iter().any(|l| !l.warmup && l.key.depth == 256));
    // Each launch ran with its thread count and took the extra arguments: llama.cpp logs
    // its threadpool size and whether the KV cache is unified (-kvu).
    let mut logs: Vec<std::path::PathBuf> = std::fs::read_dir(csv.with_extension("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    logs.sort();
    // Two launches per thread count: the baseline is launched twice.
    assert_eq!(logs.len(), 4);
    for (log, threads) in logs.iter().zip([1, 1, 2, 2]) {
        let text = std::fs::read_to_string(log).unwrap();
        assert!(text.contains(&format!("n_threads = {threads}")), "{text}");
        assert!(text.contains("kv_unified = 'true'"), "{text}");
    }
    assert!(common::server_children(std::process::id()).is_empty());
}

#[test]
fn engine_run_refuses_a_server_arg_that_tpsbench_sets_before_any_launch() {
    let _lock = common::llama_server_lock();
    let dir = common::temp_dir();
    let profile = tiny_profile(dir.path(), 8, "", false);
    let csv = dir.path().join("r.csv");
    for (arg, says) in [
        ("--threads 4", "use --threads"),
        ("--flash-atn on", "the nearest it knows is `--flash-attn`"),
    ] {
        let out = bench(
            &[
                "run",
                "--profile",
                profile.to_str().unwrap(),
                "--server-arg",
                arg,
            ],
            &csv,
        )
        .output()
        .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
        assert!(!csv.exists());
    }
}
