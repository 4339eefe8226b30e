//! `bench synth` on the command line: a custom shape is written and readable, a preset can
//! be shrunk with --layers, and bad input is an error naming what is wrong (no panic).

use assert_cmd::Command;
use predicates::str::contains;
use tpsbench::gguf::{GgmlType, GgufFile};

fn bench() -> Command {
    Command::cargo_bin("bench").unwrap()
}

#[test]
fn custom_moe_shape_is_written_with_the_requested_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("moe.gguf");
    bench()
        .args([
            "synth",
            "--embd",
            "256",
            "--heads",
            "4",
            "--kv-heads",
            "2",
            "--experts",
            "8",
        ])
        .args([
            "--experts-used",
            "2",
            "--expert-ff",
            "256",
            "--layers",
            "2",
            "--n-vocab",
            "1024",
        ])
        .args(["--quant", "Q8_0", "-o"])
        .arg(&out)
        .assert()
        .success()
        .stdout(contains("custom Q8_0 (qwen3moe), 2 layers"));
    let f = GgufFile::open(&out).unwrap();
    assert_eq!(
        f.get("general.architecture").unwrap().as_str(),
        Some("qwen3moe")
    );
    assert_eq!(
        f.get("qwen3moe.expert_used_count").unwrap().as_u64(),
        Some(2)
    );
    let exps = f.tensor("blk.1.ffn_down_exps.weight").unwrap();
    assert_eq!(
        (exps.dims.clone(), exps.ggml_type),
        (vec![256, 256, 8], GgmlType::Q8_0)
    );
    assert_eq!(
        f.tensor("blk.0.ffn_gate_inp.weight").unwrap().ggml_type,
        GgmlType::F32
    );
    assert_eq!(
        f.get("tokenizer.ggml.tokens")
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1024
    );
}

#[test]
fn preset_with_fewer_layers_keeps_its_widths() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("q.gguf");
    bench()
        .args([
            "synth",
            "--preset",
            "qwen2.5-1.5b",
            "--layers",
            "1",
            "--quant",
            "Q4_K_M",
            "--sparse",
            "-o",
        ])
        .arg(&out)
        .assert()
        .success();
    let f = GgufFile::open(&out).unwrap();
    assert_eq!(f.get("qwen2.block_count").unwrap().as_u64(), Some(1));
    let up = f.tensor("blk.0.ffn_up.weight").unwrap();
    assert_eq!(up.dims, vec![1536, 8960]);
    assert_eq!(f.tensor("output.weight").unwrap().ggml_type, GgmlType::Q6_K);
}

#[test]
fn bad_input_is_reported_not_panicked() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["--preset", "qwen9-1b"],
            "unknown preset \"qwen9-1b\"; known: qwen2.5-0.5b",
        ),
        (
            &["--embd", "256", "--heads", "3", "--kv-heads", "2"],
            "multiple of kv-heads",
        ),
        (
            &["--preset", "qwen2.5-0.5b", "--quant", "Q3_K_XL"],
            "unknown quant mix",
        ),
        (
            &["--preset", "qwen2.5-0.5b", "--diverge", "1.5"],
            "--diverge must be in 0..=1",
        ),
    ];
    for (args, message) in cases {
        bench()
            .arg("synth")
            .args(args)
            .args(["-o", "/nonexistent/never-written.gguf"])
            .assert()
            .code(2)
            .stderr(contains(message));
    }
}

/// SIGINT and SIGTERM during the write of a big stand-in stop it at once, delete the
/// temporary file (gigabytes otherwise) and exit with 128 + the signal; with `-o FILE` too,
/// where neither a temporary file nor a partial FILE may stay.
#[test]
fn an_interrupted_write_leaves_no_temporary_file() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    use std::time::{Duration, Instant};
    let cases = [
        (Signal::SIGINT, 130, false),
        (Signal::SIGTERM, 143, false),
        (Signal::SIGINT, 130, true),
    ];
    for (sig, code, explicit) in cases {
        let dir = tempfile::tempdir().unwrap();
        let models = match explicit {
            true => dir.path().join("out"),
            false => dir.path().join("tpsbench").join("models"),
        };
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("bench"));
        cmd.args(["synth", "--preset", "qwen2.5-7b", "--quant", "Q8_0"]);
        if explicit {
            std::fs::create_dir_all(&models).unwrap();
            cmd.arg("-o").arg(models.join("m.gguf"));
        }
        let mut child = cmd
            .env("XDG_CACHE_HOME", dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let tmp_bytes = || -> u64 {
            std::fs::read_dir(&models)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        };
        let start = Instant::now();
        while tmp_bytes() < 1 << 20 {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no write started"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        kill(Pid::from_raw(child.id() as i32), sig).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "{sig}");
        let left: Vec<_> = std::fs::read_dir(&models)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{sig} (-o: {explicit}) left {left:?}");
    }
}

#[test]
fn a_stand_in_the_disk_cannot_hold_is_refused_before_a_byte_is_written() {
    // Qwen3-Coder-480B-A35B in F16 is 480e9 parameters x 2 bytes, about 960 GB: more than
    // this machine's (or CI's) disk has free.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("huge.gguf");
    let free = nix::sys::statvfs::statvfs(dir.path()).unwrap();
    let free_gb = free.blocks_available() as f64 * free.fragment_size() as f64 / 1e9;
    assert!(
        free_gb < 900.0,
        "this test needs less than 900 GB free, has {free_gb:.0}"
    );
    let assert = bench()
        .args([
            "synth",
            "--preset",
            "qwen3-coder-480b-a35b",
            "--quant",
            "F16",
            "-o",
        ])
        .arg(&out)
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("not enough disk space"), "{stderr}");
    assert!(
        stderr.contains("needs 9") && stderr.contains("GB free"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing written");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
