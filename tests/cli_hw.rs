//! CLI tests of `bench hw`: the JSON report's stable fields, the models directory option and
//! its environment variable, and the errors a user can provoke.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

/// `bench hw` with a short bandwidth budget, so each test takes well under a second of CPU.
fn hw() -> Command {
    let mut cmd = Command::cargo_bin("bench").unwrap();
    cmd.env_remove("BENCH_MODELS_DIR")
        .args(["hw", "--bw-seconds", "0.3"]);
    cmd
}

fn json_of(cmd: &mut Command) -> Value {
    let out = cmd
        .arg("--json")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).expect("bench hw --json prints one JSON document")
}

const TOP_LEVEL: [&str; 20] = [
    "ram_total_gib",
    "ram_available_gib",
    "cpu_model",
    "sockets",
    "physical_cores",
    "logical_cores",
    "isa",
    "numa",
    "storage",
    "llc_bytes",
    "bandwidth_buffer_bytes",
    "bandwidth",
    "best_bandwidth_gbps",
    "best_bandwidth_threads",
    "centre_bandwidth_gbps",
    "centre_bandwidth_threads",
    "centre_bandwidth_spread_pct",
    "tier",
    "tier_reason",
    "hw_schema_version",
];

#[test]
fn json_report_has_every_documented_field() {
    let dir = tempfile::tempdir().unwrap();
    let v = json_of(hw().arg("--models-dir").arg(dir.path()));
    for key in TOP_LEVEL {
        assert!(v.get(key).is_some(), "missing {key} in {v:#}");
    }
    let logical = v["logical_cores"].as_u64().unwrap();
    assert!(v["physical_cores"].as_u64().unwrap() <= logical);
    assert!(v["ram_available_gib"].as_f64().unwrap() <= v["ram_total_gib"].as_f64().unwrap());
    let isa = v["isa"].as_object().unwrap();
    for key in [
        "avx2",
        "avx512f",
        "avx512_vnni",
        "avx_vnni",
        "amx_tile",
        "amx_int8",
        "amx_bf16",
    ] {
        assert!(isa[key].is_boolean(), "isa.{key}");
    }
    let storage = &v["storage"];
    let canonical = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(
        storage["models_dir"].as_str().unwrap(),
        canonical.to_str().unwrap()
    );
    assert!(storage["free_bytes"].as_u64().unwrap() <= storage["total_bytes"].as_u64().unwrap());
    let tiers = [
        "dev_only",
        "minimal",
        "basic",
        "standard",
        "production",
        "full",
    ];
    assert!(
        tiers.contains(&v["tier"].as_str().unwrap()),
        "{}",
        v["tier"]
    );
}

#[test]
fn json_bandwidth_has_one_point_per_thread_count() {
    let v = json_of(&mut hw());
    let points = v["bandwidth"].as_array().unwrap();
    let logical = v["logical_cores"].as_u64().unwrap();
    let counts: Vec<u64> = points
        .iter()
        .map(|p| p["threads"].as_u64().unwrap())
        .collect();
    if logical <= 16 {
        assert_eq!(counts, (1..=logical).collect::<Vec<_>>());
    } else {
        assert_eq!((counts[0], counts.last().copied()), (1, Some(logical)));
    }
    let best = v["best_bandwidth_gbps"].as_f64().unwrap();
    for p in points {
        let gbps = p["bandwidth_gbps"].as_f64().unwrap();
        assert!(gbps > 0.0 && gbps <= best, "{p}");
        assert!(p["median_bandwidth_gbps"].as_f64().unwrap() <= gbps);
        // A block's rate is a mean of passes, never above the best single pass.
        let centre = p["centre_gbps"].as_f64().unwrap();
        assert!(centre > 0.0 && centre <= gbps, "{p}");
        assert!(p["blocks"].as_u64().unwrap() >= 1, "{p}");
        assert!(p["spread_pct"].as_f64().unwrap() >= 0.0, "{p}");
        assert!(p["passes"].as_u64().unwrap() >= 3);
    }
}

#[test]
fn chosen_thread_counts_and_buffer_size_are_used() {
    let v = json_of(hw().args(["--threads", "2,1", "--bw-buffer-mib", "64"]));
    let counts: Vec<u64> = v["bandwidth"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["threads"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, vec![2, 1]);
    assert_eq!(v["bandwidth_buffer_bytes"].as_u64().unwrap(), 64 << 20);
}

#[test]
fn models_dir_comes_from_the_environment_when_not_given() {
    let dir = tempfile::tempdir().unwrap();
    let v = json_of(hw().env("BENCH_MODELS_DIR", dir.path()));
    let canonical = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(
        v["storage"]["models_dir"].as_str().unwrap(),
        canonical.to_str().unwrap()
    );
}

#[test]
fn missing_models_dir_is_a_clear_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-models-here");
    hw().arg("--models-dir")
        .arg(&missing)
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains(missing.to_str().unwrap()))
        .stderr(predicate::str::contains("models directory"));
}

#[test]
fn a_file_as_models_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("model.gguf");
    std::fs::write(&file, b"GGUF").unwrap();
    hw().arg("--models-dir")
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a directory"));
}

#[test]
fn zero_threads_and_zero_seconds_are_rejected_by_the_parser() {
    hw().args(["--threads", "0"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--threads"));
    Command::cargo_bin("bench")
        .unwrap()
        .args(["hw", "--bw-seconds", "0"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("seconds"));
}

#[test]
fn human_output_is_a_table_with_tier_and_bandwidth() {
    hw().args(["--threads", "1"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Tier"))
        .stdout(predicate::str::contains("read GB/s"))
        .stdout(predicate::str::contains("Models dir"));
}
