//! `bench check` on the fixture CSVs and the committed smoke baseline: exit 0 when every check
//! passed, 1 with every regression (and every missing cell) listed with its numbers, 2 on bad
//! input, 3 when a check is inconclusive; a run that measured nothing never passes.

#[path = "fixtures/results/gen.rs"]
mod gen;

use assert_cmd::Command;
use predicates::prelude::*;

fn fixture(name: &str) -> String {
    gen::dir().join(name).display().to_string()
}

fn check(current: &str, extra: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("bench")
        .unwrap()
        .args([
            "check",
            "--baseline",
            &fixture("smoke-baseline.csv"),
            "--current",
            &fixture(current),
        ])
        .args(extra)
        .assert()
}

#[test]
fn noise_within_tolerance_passes() {
    check("smoke-current-ok.csv", &["--metrics", "all"])
        .code(0)
        .stdout(
            predicate::str::contains("0 regressed")
                .and(predicate::str::contains("REGRESSED").not()),
        );
}

#[test]
fn broken_acceleration_fails_with_numbers() {
    let out = check(
        "smoke-current-regressed.csv",
        &["--metrics", "ratio", "--tolerance", "5%"],
    )
    .code(1);
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.contains("REGRESSED dense [qwen2 0.32B F16] spec:16 chat np=1: speedup: 2.39 -> 1.06 x (current/baseline 0.442 ["), "{text}");
    assert!(
        text.contains("spec:4 chat np=1: status: ok -> mode-not-effective"),
        "{text}"
    );
    assert!(
        text.contains("lookup chat np=1: lossless: true -> false"),
        "{text}"
    );
    assert!(text.contains("acceptance: 1.00 -> 0.52"), "{text}");
    assert!(text.contains("4 regressed"), "{text}");
    // Short enough for a CI log.
    assert!(text.lines().count() <= 12, "{text}");
}

#[test]
fn a_huge_tolerance_lets_the_speedup_through_but_not_lossless() {
    let out = check(
        "smoke-current-regressed.csv",
        &["--metrics", "ratio", "--tolerance", "0.6"],
    )
    .code(1);
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(!text.contains("speedup: 2.39"), "{text}");
    assert!(text.contains("lossless: true -> false"), "{text}");
}

#[test]
fn faster_machine_improves_absolute_warns_and_cannot_judge_point_values() {
    // big-box has no JSONL: decode has an interval from the rows' summaries and improved;
    // prefill, TTFT and ITL are point values, which prove nothing: inconclusive, exit 3.
    check("big-box.csv", &["--metrics", "absolute"])
        .code(3)
        .stdout(
            predicate::str::contains("WARNING: inputs differ in threads")
                .and(predicate::str::contains("improved  dense"))
                .and(predicate::str::contains("... and 5 more"))
                .and(predicate::str::contains(
                    "INCONCLUSIVE dense [qwen2 0.32B F16] baseline chat np=1: ttft: 120 -> 70.6 ms",
                ))
                .and(predicate::str::contains("check: INCONCLUSIVE (exit 3)")),
        );
}

#[test]
fn bad_input_exits_2() {
    check("malformed.csv", &[])
        .code(2)
        .stderr(predicate::str::contains("malformed.csv:2:"));
    // An absent current file is a run that wrote nothing (exit 1); an absent baseline is bad
    // input.
    check("does-not-exist.csv", &[])
        .code(1)
        .stdout(predicate::str::contains("does-not-exist.csv: not found"));
    Command::cargo_bin("bench")
        .unwrap()
        .args([
            "check",
            "--baseline",
            &fixture("no-baseline.csv"),
            "--current",
        ])
        .arg(fixture("smoke-current-ok.csv"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no-baseline.csv"));
    check("bad-schema.csv", &[]).code(2);
    check("smoke-current-ok.csv", &["--tolerance", "lots"]).code(2);
}

#[test]
fn profile_runs_through_the_driver_and_bad_names_exit_2() {
    // `--profile` runs the profile with the driver first; an unknown profile is bad input and
    // nothing is launched.
    let dir = tempfile::tempdir().unwrap();
    Command::cargo_bin("bench")
        .unwrap()
        .args([
            "check",
            "--baseline",
            &fixture("smoke-baseline.csv"),
            "--profile",
            "no-such-profile",
        ])
        // `check --profile` takes the machine's measurement lock first: a lock of this
        // test's own, so that a measurement running on the machine does not hold it up.
        .env("TPSBENCH_LOCK", dir.path().join("measure.lock"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no profile `no-such-profile`"));
}

/// The committed smoke baseline and the CI gate's options.
fn smoke_gate(current: &std::path::Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    let baseline =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results/baseline/smoke.csv");
    Command::cargo_bin("bench")
        .unwrap()
        .args(["check", "--baseline"])
        .arg(&baseline)
        .arg("--current")
        .arg(current)
        .args(["--metrics", "ratio", "--tolerance", "25%", "--strict"])
        .args(extra)
        .assert()
}

fn committed(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("results/baseline")
        .join(name)
}

#[test]
fn a_run_that_measured_nothing_fails_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let header_only = dir.path().join("header.csv");
    let baseline = std::fs::read_to_string(committed("smoke.csv")).unwrap();
    std::fs::write(
        &header_only,
        format!("{}\n", baseline.lines().next().unwrap()),
    )
    .unwrap();
    let absent = dir.path().join("never-written.csv");
    for current in [
        empty.as_path(),
        header_only.as_path(),
        std::path::Path::new("/dev/null"),
        absent.as_path(),
    ] {
        let out = smoke_gate(current, &[]).code(1);
        let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        assert!(text.contains("11 missing"), "{}: {text}", current.display());
        assert!(text.contains("MISSING   target"), "{text}");
        assert!(text.contains("check: REGRESSED"), "{text}");
    }
    // --allow-missing tolerates some missing cells, never a run that measured nothing.
    smoke_gate(&empty, &["--allow-missing"]).code(1);
}

#[test]
fn the_committed_baseline_passes_against_itself() {
    let out = smoke_gate(&committed("smoke.csv"), &[]).code(0);
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.contains("0 regressed, 0 inconclusive"), "{text}");
    assert!(text.contains("check: PASS"), "{text}");
    let out = smoke_gate(&committed("smoke.csv"), &["--json"]).code(0);
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["outcome"], "pass");
    assert!(v["gate"]["missing"].as_array().unwrap().is_empty());
}

#[test]
fn a_halved_speedup_fails_the_gate() {
    // A copy of the baseline whose lookup cell decodes at half the speed: every lookup
    // repetition's server generation time doubled in the raw JSONL, the row's columns halved.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("halved.csv");
    let mut reader = csv::Reader::from_path(committed("smoke.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let mut writer = csv::Writer::from_path(&csv).unwrap();
    writer.write_record(&headers).unwrap();
    for record in reader.records() {
        let mut fields: Vec<String> = record.unwrap().iter().map(String::from).collect();
        if fields[col("mode")] == "lookup" {
            for name in ["decode_tps_mean", "decode_tps_median", "speedup"] {
                let v: f64 = fields[col(name)].parse().unwrap();
                fields[col(name)] = (v / 2.0).to_string();
            }
        }
        writer.write_record(&fields).unwrap();
    }
    writer.flush().unwrap();
    let mut jsonl = String::new();
    for line in std::fs::read_to_string(committed("smoke.jsonl"))
        .unwrap()
        .lines()
    {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["mode"] == "lookup" {
            let ms = v["request"]["timings"]["predicted_ms"].as_f64().unwrap();
            v["request"]["timings"]["predicted_ms"] = (ms * 2.0).into();
        }
        jsonl += &format!("{v}\n");
    }
    std::fs::write(dir.path().join("halved.jsonl"), jsonl).unwrap();
    let out = smoke_gate(&csv, &[]).code(1);
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.contains("REGRESSED target"), "{text}");
    assert!(text.contains("lookup code-edit np=1: speedup:"), "{text}");
    assert!(text.contains("1 regressed"), "{text}");
    // The same verdict as JSON, for tools: the outcome, its exit code, the regressed finding.
    let out = smoke_gate(&csv, &["--json"]).code(1);
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["outcome"], "regressed");
    assert_eq!(v["exit_code"], 1);
    let regressed: Vec<&serde_json::Value> = v["gate"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["decision"] == "regressed")
        .collect();
    assert_eq!(regressed.len(), 1, "{v:#}");
    assert!(
        regressed[0]["cell"].as_str().unwrap().contains("lookup"),
        "{v:#}"
    );
    // The verdict table holds the same finding, with the same exit code.
    let cell = regressed[0]["cell"].as_str().unwrap();
    let out = smoke_gate(&csv, &["--format", "markdown"]).code(1);
    let md = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        md.contains("| decision | cell | check | detail |\n|---|---|---|---|\n"),
        "{md}"
    );
    assert!(
        md.contains(&format!("| regressed | {cell} | speedup |")),
        "{md}"
    );
    assert!(md.contains("check: REGRESSED (exit 1)"), "{md}");
    let out = smoke_gate(&csv, &["--format", "csv"]).code(1);
    let csv_text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        csv_text.contains(&format!("regressed,{cell},speedup,")),
        "{csv_text}"
    );
}

/// `bench check` with every flag at its default.
fn default_check(
    baseline: &std::path::Path,
    current: &std::path::Path,
) -> assert_cmd::assert::Assert {
    Command::cargo_bin("bench")
        .unwrap()
        .args(["check", "--baseline"])
        .arg(baseline)
        .arg("--current")
        .arg(current)
        .assert()
}

#[test]
fn a_committed_baseline_checked_against_itself_with_default_flags_passes() {
    for name in ["smoke.csv", "smoke-intel.csv"] {
        let out = default_check(&committed(name), &committed(name)).code(0);
        let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        assert!(
            text.contains("0 regressed, 0 inconclusive"),
            "{name}: {text}"
        );
        assert!(text.contains("0 missing"), "{name}: {text}");
        assert!(text.contains("tolerance 10.0%"), "{name}: {text}");
        assert!(text.ends_with("check: PASS\n"), "{name}: {text}");
        // Decode, prefill, TTFT, speedup and acceptance of every cell: nothing left out,
        // since both sides carry their repetitions.
        assert!(!text.contains("left out"), "{name}: {text}");
    }
}

/// A copy of committed `name` (CSV and JSON Lines) in `dir` whose `dense2` baseline cell
/// with one slot decodes 40% slower: its rows' decode columns times 0.6 and every one of
/// its repetitions' server generation time divided by 0.6.
fn with_one_decode_cut(name: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let is_cell = |role: &str, mode: &str, parallel: &str| {
        role == "dense2" && mode == "baseline" && parallel == "1"
    };
    let csv = dir.join(name);
    let mut reader = csv::Reader::from_path(committed(name)).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let mut writer = csv::Writer::from_path(&csv).unwrap();
    writer.write_record(&headers).unwrap();
    let mut cut = 0;
    for record in reader.records() {
        let mut f: Vec<String> = record.unwrap().iter().map(String::from).collect();
        if is_cell(&f[col("role")], &f[col("mode")], &f[col("parallel")]) {
            for c in [
                "decode_tps_mean",
                "decode_tps_median",
                "decode_tps_min",
                "decode_tps_max",
            ] {
                let v: f64 = f[col(c)].parse().unwrap();
                f[col(c)] = (v * 0.6).to_string();
            }
            cut += 1;
        }
        writer.write_record(&f).unwrap();
    }
    writer.flush().unwrap();
    assert_eq!(cut, 1, "{name} has one dense2 baseline cell with one slot");
    let jsonl = committed(name).with_extension("jsonl");
    let mut out = String::new();
    for line in std::fs::read_to_string(jsonl).unwrap().lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        let parallel = v["parallel"].to_string();
        if is_cell(
            v["role"].as_str().unwrap(),
            v["mode"].as_str().unwrap(),
            &parallel,
        ) {
            let ms = v["request"]["timings"]["predicted_ms"].as_f64().unwrap();
            v["request"]["timings"]["predicted_ms"] = (ms / 0.6).into();
        }
        out += &format!("{v}\n");
    }
    std::fs::write(csv.with_extension("jsonl"), out).unwrap();
    csv
}

#[test]
fn one_decode_figure_cut_by_40_percent_fails_the_default_check_naming_its_cell() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["smoke.csv", "smoke-intel.csv"] {
        let current = with_one_decode_cut(name, dir.path());
        let out = default_check(&committed(name), &current).code(1);
        let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        let regressed: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("REGRESSED"))
            .collect();
        assert_eq!(regressed.len(), 1, "{name}: {text}");
        assert!(
            regressed[0].starts_with("REGRESSED dense2 [")
                && regressed[0].contains("] baseline code-edit np=1: decode: ")
                && regressed[0].contains("(current/baseline 0.600 ["),
            "{name}: {text}"
        );
        assert!(
            text.ends_with("check: REGRESSED (exit 1)\n"),
            "{name}: {text}"
        );
    }
}
