//! The cost model end to end: result rows whose rates come from known coefficients (computed
//! here from each model's published shape with the formula written out by hand), `bench
//! calibrate --json` recovering those coefficients with no leave-one-model-out error, and
//! `bench predict` of a model that was never "measured" matching the same hand computation,
//! on this machine and on another one given by a `bench hw --json`.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;
use tpsbench::gguf::{GgmlType, Model};
use tpsbench::results::{ResultRow, ResultWriter, Status, SCHEMA_VERSION};

/// Decode: 1/0.7 of the bandwidth for weights from DRAM, 1/1.4 for weights that fit in the
/// last-level cache, 1/0.5 for the KV cache, 20 Gflop/s per thread for the weights'
/// arithmetic and 10 for attention's, 30 ns per attention head-position, 20 us per
/// transformer block, 0.2 ms fixed. Prefill:
/// weights at full bandwidth, 100 Gflop/s per thread, 0.05 ms per prompt token.
const DECODE: [f64; 8] = [1.0 / 0.7, 1.0 / 1.4, 2.0, 0.05, 0.1, 30.0, 2e-5, 2e-4];
const PREFILL: [f64; 3] = [1.0, 0.01, 5e-5];
const BW: f64 = 30.0;
const THREADS: f64 = 2.0;
const N_PREDICT: f64 = 64.0;
/// The measured host's last-level cache: m0, m2 and m4 (19, 64 and 61 MB of weights) fit,
/// m1, m3 and m5 (95 MB to 0.7 GB) do not.
const LLC: f64 = 80.0 * 1024.0 * 1024.0;

/// Custom shapes: (embd, heads, kv heads, ff, layers, vocab, quant). Heads of 64 and of 128
/// elements, so that attention's arithmetic and its head-positions differ with any one model
/// left out.
const SHAPES: [(&str, &str, &str, &str, &str, &str, &str); 6] = [
    ("256", "4", "4", "512", "2", "32000", "F16"),
    ("512", "4", "2", "1536", "4", "151936", "Q8_0"),
    ("768", "12", "4", "2048", "6", "65536", "Q4_K_M"),
    ("1024", "8", "4", "2816", "8", "262144", "F16"),
    ("384", "6", "2", "1024", "12", "100000", "Q8_0"),
    ("1536", "12", "2", "4096", "4", "32000", "Q4_K_M"),
];

fn synth(dir: &Path, i: usize) -> PathBuf {
    let (embd, heads, kv, ff, layers, vocab, quant) = SHAPES[i];
    let out = dir.join(format!("m{i}.gguf"));
    Command::cargo_bin("bench")
        .unwrap()
        .args([
            "synth",
            "--embd",
            embd,
            "--heads",
            heads,
            "--kv-heads",
            kv,
            "--ff",
            ff,
        ])
        .args([
            "--layers",
            layers,
            "--n-vocab",
            vocab,
            "--quant",
            quant,
            "--sparse",
            "-o",
        ])
        .arg(&out)
        .assert()
        .success();
    out
}

/// Seconds per token by the formula of docs/readme/analysis.md, from the header's numbers.
fn seconds(path: &Path, depth: f64) -> (f64, f64, u64, String) {
    let f = Model::open(path).unwrap().facts();
    let (w, p) = (f.active_bytes_per_token as f64, f.active_params as f64);
    let kv = (f.block_count * f.head_count_kv * (f.head_dim + f.value_dim) * 2) as f64;
    assert_eq!(kv as u64, f.kv_bytes_per_token(GgmlType::F16));
    let attn = (f.block_count * f.head_count * f.head_dim) as f64;
    let c = depth + N_PREDICT / 2.0;
    let weights = if w <= LLC { DECODE[1] } else { DECODE[0] };
    let decode = weights * w / (BW * 1e9)
        + DECODE[2] * kv * c / (BW * 1e9)
        + DECODE[3] * 2.0 * p / THREADS / 1e9
        + DECODE[4] * 4.0 * attn * c / THREADS / 1e9
        + DECODE[5] * (f.block_count * f.head_count) as f64 * c / THREADS / 1e9
        + DECODE[6] * f.block_count as f64
        + DECODE[7];
    let batches = (depth / 512.0).ceil();
    let prefill = PREFILL[0] * w * batches / depth / (BW * 1e9)
        + PREFILL[1] * (2.0 * p + 4.0 * attn * depth / 2.0) / THREADS / 1e9
        + PREFILL[2];
    (decode, prefill, f.n_params, f.quant.unwrap_or_default())
}

fn row(path: &Path, depth: f64) -> ResultRow {
    let (decode, prefill, n_params, quant) = seconds(path, depth);
    let f = Model::open(path).unwrap().facts();
    ResultRow {
        active_params: f.active_params,
        active_bytes_per_token: f.active_bytes_per_token,
        schema_version: SCHEMA_VERSION,
        status: Status::Ok,
        role: "r".into(),
        model_file: path.file_name().unwrap().to_string_lossy().into_owned(),
        model_arch: "qwen2".into(),
        model_n_params: n_params,
        model_quant: quant,
        mode: "baseline".parse().unwrap(),
        workload: format!("w{depth}"),
        parallel: 1,
        ctx: 4096,
        threads: THREADS as u32,
        decode_tps_mean: Some(1.0 / decode),
        prefill_tps_mean: Some(1.0 / prefill),
        n_reps: 5,
        host: "test-box".into(),
        cpu_model: "test cpu".into(),
        bandwidth_gbps: Some(BW),
        prompt_tokens: Some(depth as u32),
        n_predict: N_PREDICT as u32,
        ..ResultRow::default()
    }
}

fn calibrate(dir: &Path) -> Value {
    let csv = dir.join("known.csv");
    let mut w = ResultWriter::create(&csv).unwrap();
    for i in 0..SHAPES.len() {
        let path = synth(dir, i);
        for depth in [24.0, 320.0, 1024.0] {
            w.push(&row(&path, depth)).unwrap();
        }
    }
    // A row naming a file whose parameter count is not the row's: its GGUF is not used.
    let mut other = row(&dir.join("m0.gguf"), 24.0);
    other.model_n_params += 1;
    w.push(&other).unwrap();
    drop(w);
    let host_hw = dir.join("host.hw.json");
    let facts = serde_json::json!({"hw_schema_version": 1, "cpu_model": "test cpu",
        "physical_cores": 2, "best_bandwidth_gbps": BW, "llc_bytes": LLC as u64});
    std::fs::write(&host_hw, facts.to_string()).unwrap();
    let out = Command::cargo_bin("bench")
        .unwrap()
        .arg("calibrate")
        .arg(&csv)
        .arg("--models-dir")
        .arg(dir)
        .arg("--host-hw")
        .arg(&host_hw)
        .arg("--out")
        .arg(dir.join("cal"))
        .args(["--hw", "docs/readme/epyc-512g.hw.json", "--json"])
        .assert()
        .success();
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

fn close(got: f64, want: f64, tol: f64) -> bool {
    (got / want - 1.0).abs() < tol
}

#[test]
fn calibrate_recovers_known_costs_and_predict_matches_the_hand_formula() {
    let dir = tempfile::tempdir().unwrap();
    let cal = calibrate(dir.path());
    let cost = &cal["cost"];
    let terms = cost["model"]["decode"]["terms"].as_array().unwrap();
    for (t, want) in terms.iter().zip(DECODE) {
        let got = t["value"].as_f64().unwrap();
        assert!(close(got, want, 1e-6), "{}: {got} vs {want}", t["name"]);
    }
    let pre = cost["model"]["prefill"]["terms"].as_array().unwrap();
    for (t, want) in pre.iter().zip(PREFILL) {
        assert!(close(t["value"].as_f64().unwrap(), want, 1e-6), "{t}");
    }
    assert!(cost["lomo_decode"]["worst_abs_error"].as_f64().unwrap() < 1e-6);
    assert_eq!(cost["cells"]["missing"], serde_json::json!(["m0.gguf"]));
    assert_eq!(cost["lomo_decode"]["rows"].as_array().unwrap().len(), 18);
    // Every guide row, MoE rows with and without reduction: 6 dense + 2 x 2 MoE.
    assert_eq!(cost["this_machine"].as_array().unwrap().len(), 10);
    let other = &cost["other_machines"][0];
    assert_eq!(other[0]["threads"], 96);
    assert_eq!(other[1].as_array().unwrap().len(), 10);

    // The profile expectations take the guide's rows from the cost model.
    let e = tpsbench::guide::Expectations::load(&dir.path().join("cal/test-box.toml")).unwrap();
    let seven = e.rows.iter().find(|r| r.label == "7B Q4").unwrap();
    assert!(
        seven.note.starts_with("cost model, extrapolated"),
        "{seven:?}"
    );
    let want = &cost["this_machine"][2]["decode"];
    assert_eq!(
        seven.high_tps,
        (want["high"].as_f64().unwrap() * 100.0).round() / 100.0
    );

    // A model never measured: the 7th shape, predicted at depth 512 with 128 generated.
    let fits = dir.path().join("cal/test-box.fits.toml");
    let unseen = dir.path().join("unseen.gguf");
    Command::cargo_bin("bench")
        .unwrap()
        .args([
            "synth",
            "--embd",
            "2048",
            "--heads",
            "16",
            "--kv-heads",
            "8",
        ])
        .args([
            "--ff",
            "5632",
            "--layers",
            "6",
            "--n-vocab",
            "50000",
            "--quant",
            "Q8_0",
        ])
        .args(["--sparse", "-o"])
        .arg(&unseen)
        .assert()
        .success();
    let predict = |extra: &[&str]| -> Value {
        let out = Command::cargo_bin("bench")
            .unwrap()
            .args(["predict", "-m"])
            .arg(&unseen)
            .arg("--machine")
            .arg(&fits)
            .args(["--depth", "512", "--n-predict", "64", "--json"])
            .args(extra)
            .assert()
            .success();
        serde_json::from_slice(&out.get_output().stdout).unwrap()
    };
    let p = predict(&[]);
    // A cost model with other terms (an older calibrate's) is refused, not misapplied.
    let old = dir.path().join("old.fits.toml");
    let text = std::fs::read_to_string(&fits).unwrap();
    std::fs::write(
        &old,
        text.replace("name = \"weights_llc\"", "name = \"vocab\""),
    )
    .unwrap();
    let out = Command::cargo_bin("bench")
        .unwrap()
        .args(["predict", "-m"])
        .arg(&unseen)
        .arg("--machine")
        .arg(&old)
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("calibrate again"), "{err}");
    let (decode, prefill, _, _) = seconds(&unseen, 512.0);
    assert!(
        close(p["decode"]["tps"].as_f64().unwrap(), 1.0 / decode, 1e-6),
        "{p}"
    );
    assert!(
        close(p["prefill"]["tps"].as_f64().unwrap(), 1.0 / prefill, 1e-6),
        "{p}"
    );
    // Another machine: more bandwidth and 96 threads make it faster.
    let epyc = predict(&["--hw", "docs/readme/epyc-512g.hw.json"]);
    assert!(epyc["decode"]["tps"].as_f64().unwrap() > 1.0 / decode);
    assert_eq!(epyc["machine"]["threads"], 96);
    // spec:4 with a free-ish draft at acceptance 1: 5 tokens per step.
    let spec = predict(&[
        "--mode",
        "spec:4",
        "--draft",
        dir.path().join("m0.gguf").to_str().unwrap(),
        "--acceptance",
        "1",
    ]);
    assert_eq!(spec["tokens_per_step"], 5.0);
    // One step: a target token plus 4 draft tokens, each costed by the formula.
    let (draft, _, _, _) = seconds(&dir.path().join("m0.gguf"), 512.0);
    let want = 5.0 / (decode + 4.0 * draft);
    assert!(
        close(spec["accelerated"]["tps"].as_f64().unwrap(), want, 1e-6),
        "{spec}"
    );
    // Lookup at a hit rate of 0.5 with 16 drafted: (1 - 0.5^17) / 0.5 tokens per target step.
    let lookup = predict(&["--mode", "lookup", "--hit-rate", "0.5"]);
    let e = (1.0 - 0.5f64.powi(17)) / 0.5;
    assert!(close(
        lookup["accelerated"]["tps"].as_f64().unwrap(),
        e / decode,
        1e-6
    ));
}

#[test]
fn predict_refuses_bad_input_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.fits.toml");
    let out = Command::cargo_bin("bench")
        .unwrap()
        .args(["predict", "-m", "x.gguf", "--machine"])
        .arg(&missing)
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("none.fits.toml"), "{err}");
    let out = Command::cargo_bin("bench")
        .unwrap()
        .args(["predict", "-m", "x.gguf", "--mode", "spec:4", "--machine"])
        .arg(&missing)
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("--draft"), "{err}");
}
