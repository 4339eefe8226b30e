//! `bench run -m FILE`: a model file measured without a profile, against the real
//! llama-server; and its bad inputs, which fail before any server starts.

mod common;

use assert_cmd::cargo::CommandCargoExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use tpsbench::results::{read_results, Status};
use tpsbench::synth::{self, SynthArgs};

/// A small synthetic `cycle` model (F16, 2 layers) in `dir`, and its parameter count as
/// `bench synth` plans it.
fn small_model(dir: &Path) -> (PathBuf, u64) {
    let mut args = SynthArgs::for_role("F16", None, &Default::default());
    args.layers = Some(2);
    args.embd = Some(256);
    args.heads = Some(4);
    args.ff = Some(512);
    args.n_vocab = Some(4096);
    args.cycle_len = 32;
    let recipe = args.recipe().unwrap();
    let params = synth::plan::n_params(&recipe.plan());
    (synth::ensure_model(&recipe, dir).unwrap(), params)
}

fn bench(args: &[&str]) -> Command {
    let engine = common::engine();
    let mut cmd = Command::cargo_bin("bench").unwrap();
    cmd.args(args)
        .env("LLAMA_SERVER", &engine.server_bin)
        .env_remove("BENCH_MODELS_DIR");
    cmd
}

#[test]
fn engine_run_dash_m_measures_a_file_without_a_profile() {
    let _lock = common::llama_server_lock();
    let dir = common::temp_dir();
    let (model, params) = small_model(dir.path());
    let csv = dir.path().join("m.csv");
    let out = bench(&["run", "-m", model.to_str().unwrap()])
        .args(["--modes", "baseline,lookup", "--workloads", "code-edit"])
        .args([
            "--n-predict",
            "16",
            "--bw-seconds",
            "0.2",
            "--quiet",
            "--out",
        ])
        .arg(&csv)
        .output()
        .unwrap();
    let stdout = common::stdout_of_success(&out);
    let rows = read_results(&csv).unwrap_or_else(|e| panic!("{e}"));
    let modes: Vec<String> = rows.iter().map(|r| r.mode.to_string()).collect();
    assert_eq!(modes, ["baseline", "lookup"]);
    let stem = model.file_stem().unwrap().to_string_lossy().into_owned();
    for r in &rows {
        assert_eq!(r.status, Status::Ok, "{r:?}");
        assert_eq!(r.role, stem);
        assert_eq!(r.workload, "code-edit");
        assert_eq!(r.n_predict, 16);
        // Read from the file: the quant it was written with and its exact parameters.
        assert_eq!(r.model_quant, "F16");
        assert_eq!(r.model_n_params, params);
        // The file carries its recipe: a token prompt, and the known sequence followed.
        assert!(r.synthetic);
        let reason = common::reason_besides_noise(&r.reason);
        assert!(reason.is_empty(), "{}", r.reason);
    }
    let lookup = &rows[1];
    assert!(lookup.draft_n.unwrap() > 0, "{lookup:?}");
    assert_eq!(lookup.lossless, Some(true), "{lookup:?}");
    assert!(stdout.contains("2 cells in"), "{stdout}");
}

#[test]
fn engine_run_dash_m_bad_inputs_fail_before_any_launch() {
    let dir = common::temp_dir();
    let (model, _) = small_model(dir.path());
    let m = model.to_str().unwrap();
    let absent = dir.path().join("absent.gguf");
    let cases: [(&[&str], &str); 4] = [
        (
            &["run", "-m", absent.to_str().unwrap()],
            "absent.gguf: no such file",
        ),
        (
            &["run", "-m", m, "--modes", "spec:8"],
            "needs a draft model (--draft FILE)",
        ),
        (&["run", "-m", m, "--modes", "moe:2"], "mixture-of-experts"),
        (
            &["run", "-m", m, "--modes", "lokup"],
            "unknown mode `lokup`",
        ),
    ];
    for (args, message) in cases {
        let out = bench(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let out = bench(&["run", "-m", m, "--profile", "smoke"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // A flag naming no file is bad input; an engine that cannot be had is exit 3.
    let out = bench(&["run", "-m", m, "--server-bin", "/nonexistent/llama-server"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = bench(&["run", "-m", m])
        .env("LLAMA_SERVER", dir.path().join("not-a-server"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("not-a-server"), "{stderr}");
    let out = bench(&["run"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--profile") && stderr.contains("--model"),
        "{stderr}"
    );
}
