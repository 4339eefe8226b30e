//! `bench import` and `bench export` against real llama-bench output: the fixtures in
//! tests/fixtures/llama-bench were written by the pinned engine's llama-bench
//! (`-p 32 -n 16 -r 3 -t 1,2 -o json`, `-p 32 -n 16 -r 3 -d 0,64 -o jsonl`, and
//! `-p 32 -n 16 -r 3 -t 2 -d 0,64 -o sql -oe jsonl`: one run in two layouts, on the
//! self-test's Q8_0 synthetic model), so the expected values are llama-bench's own
//! records, `avg_ts` and `stddev_ts` and SQL text, not this code's.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tpsbench::results::{read_results, Source};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/llama-bench")
        .join(name)
}

fn bench() -> Command {
    Command::cargo_bin("bench").unwrap()
}

/// llama-bench's own records of a fixture, as plain JSON.
fn records(name: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    if name.ends_with(".json") {
        serde_json::from_str(&text).unwrap()
    } else {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn import(name: &str, out: &Path) {
    bench()
        .arg("import")
        .arg(fixture(name))
        .arg("-o")
        .arg(out)
        .args(["--host", "lab1"])
        .assert()
        .success();
}

#[test]
fn generation_and_prompt_tests_become_decode_and_prefill_rows() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("lb.csv");
    import("selftest-q8_0-t1-t2.json", &csv);
    let rows = read_results(&csv).unwrap();
    let lb = records("selftest-q8_0-t1-t2.json");
    assert_eq!(rows.len(), lb.len());
    for (row, rec) in rows.iter().zip(&lb) {
        assert_eq!(row.source, Source::LlamaBench);
        assert_eq!(
            (row.host.as_str(), row.role.as_str()),
            ("lab1", "llama-bench")
        );
        assert_eq!(u64::from(row.threads), rec["n_threads"].as_u64().unwrap());
        assert_eq!(row.model_file, "selftest-Q8_0-cycle64-2228453c8e18.gguf");
        assert_eq!(
            (row.model_arch.as_str(), row.model_quant.as_str()),
            ("qwen2", "Q8_0")
        );
        assert_eq!(row.model_tensor_bytes, rec["model_size"].as_u64().unwrap());
        let avg = rec["avg_ts"].as_f64().unwrap();
        if rec["n_gen"].as_u64().unwrap() > 0 {
            assert_eq!(row.workload, "tg16");
            // llama-bench's mean and sample standard deviation of samples_ts, to the six
            // decimals it prints (its samples are rounded).
            let mean = row.decode_tps_mean.unwrap();
            assert!((mean - avg).abs() / avg < 1e-5, "{mean} vs {avg}");
            let sd = row.decode_tps_sd.unwrap();
            let lb_sd = rec["stddev_ts"].as_f64().unwrap();
            assert!((sd - lb_sd).abs() / lb_sd < 1e-4, "{sd} vs {lb_sd}");
            assert_eq!(row.n_reps, 3);
            assert!(row.prefill_tps_mean.is_none());
        } else {
            assert_eq!(row.workload, "pp32");
            let prefill = row.prefill_tps_mean.unwrap();
            assert!((prefill - avg).abs() / avg < 1e-5, "{prefill} vs {avg}");
            assert_eq!(row.prompt_tokens, Some(32));
            assert!(row.decode_tps_mean.is_none());
        }
    }
}

#[test]
fn depth_is_a_column_and_compare_calibrate_report_read_the_import() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("depth.csv");
    // the machine's facts from a `bench hw --json` file, so calibrate has a bandwidth
    let hw = dir.path().join("hw.json");
    std::fs::write(
        &hw,
        r#"{"hw_schema_version":1,"cpu_model":"AMD EPYC","physical_cores":2,"logical_cores":2,
            "ram_total_gib":23.4,"best_bandwidth_gbps":36.1,"bandwidth":[]}"#,
    )
    .unwrap();
    bench()
        .arg("import")
        .arg(fixture("selftest-q8_0-d0-d64.jsonl"))
        .arg("-o")
        .arg(&csv)
        .arg("--hw")
        .arg(&hw)
        .assert()
        .success();
    let rows = read_results(&csv).unwrap();
    assert!(rows.iter().all(|r| r.bandwidth_gbps == Some(36.1)));
    // roofline = 36.1e9 / bytes per token (the GGUF's active bytes when the model file is
    // still where llama-bench read it, else the whole tensor size)
    let bytes = rows[1].active_bytes_per_token;
    assert!(bytes > 0 && bytes <= 6_980_608, "{bytes}");
    let roof = rows[1].roofline_tps.unwrap();
    assert!((roof - 36.1e9 / bytes as f64).abs() < 1e-6, "{roof}");
    let depths: Vec<u32> = rows.iter().map(|r| r.depth).collect();
    assert_eq!(depths, [0, 0, 64, 64]);
    assert!(rows
        .iter()
        .all(|r| r.ctx == r.depth + 32 || r.ctx == r.depth + 16));
    let out = bench()
        .arg("compare")
        .arg(&csv)
        .arg(&csv)
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("tg16"), "{text}");
    bench()
        .arg("report")
        .arg(&csv)
        .arg("--out")
        .arg(dir.path().join("report"))
        .assert()
        .success();
    bench()
        .arg("calibrate")
        .arg(&csv)
        .arg("--out")
        .arg(dir.path().join("cal"))
        .assert()
        .success();
}

#[test]
fn export_writes_llama_bench_records_that_import_back() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = Path::new(env!("CARGO_MANIFEST_DIR")).join("results/baseline/smoke.csv");
    let jsonl = dir.path().join("smoke.jsonl");
    bench()
        .arg("export")
        .arg(&baseline)
        .arg("-o")
        .arg(&jsonl)
        .assert()
        .success();
    let harness = read_results(&baseline).unwrap();
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let exported: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // baseline rows with one slot are llama-bench's kind of test; the rest are left out
    let kept: Vec<_> = harness
        .iter()
        .filter(|r| r.decode_tps_mean.is_some() && r.mode.is_baseline() && r.parallel == 1)
        .collect();
    let measured = kept.len();
    assert!(measured >= 3 && measured < harness.len());
    let generation: Vec<_> = exported.iter().filter(|e| e["n_gen"] != 0).collect();
    assert_eq!(generation.len(), measured);
    for (e, row) in generation.iter().zip(kept) {
        // decoding followed the prompt: llama-bench's depth
        assert_eq!(e["n_depth"].as_u64(), row.prompt_tokens.map(u64::from));
        let avg = e["avg_ts"].as_f64().unwrap();
        assert!((avg / row.decode_tps_mean.unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(e["n_gen"].as_u64(), Some(u64::from(row.n_predict)));
        assert_eq!(e["model_filename"].as_str(), Some(row.model_file.as_str()));
        // the samples are the repetitions of the raw file: their mean is the row's mean
        let samples: Vec<f64> = e["samples_ts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(samples.len() as u32, row.n_reps);
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        assert!((mean / row.decode_tps_mean.unwrap() - 1.0).abs() < 1e-9);
    }
    // and llama-bench's layout reads back into rows with the same decode rates
    let back = dir.path().join("back.csv");
    bench()
        .arg("import")
        .arg(&jsonl)
        .arg("-o")
        .arg(&back)
        .assert()
        .success();
    let rows = read_results(&back).unwrap();
    let decode: Vec<f64> = rows.iter().filter_map(|r| r.decode_tps_mean).collect();
    assert_eq!(decode.len(), measured);
}

#[test]
fn a_bad_record_names_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("selftest-q8_0-d0-d64.jsonl")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[2] = r#"{"model_filename": "m.gguf", "n_threads": "two"}"#;
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let out = bench()
        .arg("import")
        .arg(&bad)
        .arg("-o")
        .arg(dir.path().join("x.csv"))
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("bad.jsonl:3:"), "{stderr}");
    assert!(
        !dir.path().join("x.csv").exists(),
        "nothing written on bad input"
    );
}

/// The settings llama-bench wrote at its defaults in the fixtures (they ran with no option
/// but `-p -n -r -t -d`): what an export gives for a setting the harness did not vary.
const DEFAULTED: [&str; 25] = [
    "gpu_info",
    "backends",
    "n_batch",
    "n_ubatch",
    "cpu_mask",
    "cpu_strict",
    "poll",
    "type_k",
    "type_v",
    "n_gpu_layers",
    "n_cpu_moe",
    "split_mode",
    "main_gpu",
    "no_kv_offload",
    "flash_attn",
    "devices",
    "tensor_split",
    "tensor_buft_overrides",
    "load_mode",
    "lazy_mode",
    "embeddings",
    "no_op_offload",
    "no_host",
    "repack",
    "fit_target",
];

/// `bench export CSV [--format FORMAT]` to a file, read back as JSON records.
fn export(csv: &Path, format: &str, out: &Path) -> Vec<serde_json::Value> {
    bench()
        .arg("export")
        .arg(csv)
        .args(["--format", format, "-o"])
        .arg(out)
        .assert()
        .success();
    let text = std::fs::read_to_string(out).unwrap();
    if format == "llama-bench-json" {
        serde_json::from_str(&text).unwrap()
    } else {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

#[test]
fn import_then_export_gives_back_every_key_and_value() {
    for (name, format) in [
        ("selftest-q8_0-t1-t2.json", "llama-bench-json"),
        ("selftest-q8_0-d0-d64.jsonl", "llama-bench"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("lb.csv");
        import(name, &csv);
        let back = export(&csv, format, &dir.path().join("back.out"));
        let theirs = records(name);
        assert_eq!(back.len(), theirs.len(), "{name}");
        for (ours, rec) in back.iter().zip(&theirs) {
            let (ours, rec) = (ours.as_object().unwrap(), rec.as_object().unwrap());
            assert_eq!(
                rec.len(),
                44,
                "{name}: the pinned llama-bench writes 44 keys"
            );
            for (key, value) in rec {
                assert_eq!(ours.get(key), Some(value), "{name}: {key}");
            }
            assert_eq!(ours.len(), rec.len(), "{name}: no key added");
        }
    }
}

#[test]
fn a_key_this_version_does_not_know_survives_the_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("selftest-q8_0-d0-d64.jsonl")).unwrap();
    let newer: String = text
        .lines()
        .map(|l| l.replacen('{', r#"{"n_future": [1, "two"], "#, 1) + "\n")
        .collect();
    let file = dir.path().join("newer.jsonl");
    std::fs::write(&file, newer).unwrap();
    let csv = dir.path().join("lb.csv");
    bench()
        .arg("import")
        .arg(&file)
        .arg("-o")
        .arg(&csv)
        .assert()
        .success();
    let back = export(&csv, "llama-bench", &dir.path().join("back.jsonl"));
    assert_eq!(back.len(), 4);
    assert!(back
        .iter()
        .all(|r| r["n_future"] == serde_json::json!([1, "two"])));
}

#[test]
fn exported_harness_rows_carry_every_llama_bench_key_and_name_the_engine_build() {
    let dir = tempfile::tempdir().unwrap();
    let csv =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results/smoke-baseline.csv");
    let rows = read_results(&csv).unwrap();
    let lb = records("selftest-q8_0-d0-d64.jsonl");
    for format in ["llama-bench", "llama-bench-json"] {
        let exported = export(&csv, format, &dir.path().join("out"));
        assert_eq!(
            exported.len(),
            6,
            "{format}: 3 one-slot baseline rows, tg and pp each"
        );
        for e in &exported {
            for key in lb[0].as_object().unwrap().keys() {
                assert!(e.get(key).is_some(), "{format}: {key} missing");
            }
            for key in DEFAULTED {
                assert_eq!(e[key], lb[0][key], "{format}: {key}");
            }
            // the engine's identity, not the harness's commit, names the build
            assert_eq!(e["build_commit"], rows[0].engine_sha256[..8]);
            let package = rows[0].engine_package_version.split('.').next().unwrap();
            assert_eq!(e["build_number"].to_string(), package);
            assert_eq!(e["tpsbench_commit"], rows[0].harness_git_commit.as_str());
        }
    }
}

#[test]
fn export_refuses_to_overwrite_the_raw_file_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results");
    let csv = dir.path().join("smoke.csv");
    std::fs::copy(src.join("smoke-baseline.csv"), &csv).unwrap();
    std::fs::copy(
        src.join("smoke-baseline.jsonl"),
        dir.path().join("smoke.jsonl"),
    )
    .unwrap();
    let before = std::fs::read(dir.path().join("smoke.jsonl")).unwrap();
    bench()
        .arg("export")
        .arg(&csv)
        .arg("-o")
        .arg(dir.path().join("smoke.jsonl"))
        .assert()
        .failure();
    assert_eq!(
        std::fs::read(dir.path().join("smoke.jsonl")).unwrap(),
        before
    );
}

/// The `-o sql` and `-oe jsonl` output of one llama-bench run (`-p 32 -n 16 -r 3 -t 2 -d 0,64`
/// on the self-test's Q8_0 model): the same four tests in both layouts.
const SQL_RUN: &str = "selftest-q8_0-t2-d0-d64.sql";
const SQL_RUN_JSONL: &str = "selftest-q8_0-t2-d0-d64-oe.jsonl";

fn export_text(csv: &Path, format: &str) -> String {
    let out = bench()
        .arg("export")
        .arg(csv)
        .args(["--format", format])
        .assert()
        .success();
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

#[test]
fn llama_benchs_sql_of_a_run_is_what_we_write_from_its_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("lb.csv");
    import(SQL_RUN_JSONL, &csv);
    let theirs = std::fs::read_to_string(fixture(SQL_RUN)).unwrap();
    assert_eq!(export_text(&csv, "llama-bench-sql"), theirs);
}

#[test]
fn llama_benchs_sql_imports_and_exports_back_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("lb.csv");
    import(SQL_RUN, &csv);
    let theirs = std::fs::read_to_string(fixture(SQL_RUN)).unwrap();
    assert_eq!(export_text(&csv, "llama-bench-sql"), theirs);
    // -o sql has no samples: each row is the test's mean, as the same run's jsonl says
    let rows = read_results(&csv).unwrap();
    let lb = records(SQL_RUN_JSONL);
    assert_eq!(rows.len(), lb.len());
    for (row, rec) in rows.iter().zip(&lb) {
        let mean = row.decode_tps_mean.or(row.prefill_tps_mean).unwrap();
        assert_eq!(mean, rec["avg_ts"].as_f64().unwrap(), "{}", row.workload);
        assert_eq!(u64::from(row.depth), rec["n_depth"].as_u64().unwrap());
    }
}
