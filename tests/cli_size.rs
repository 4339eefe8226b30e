//! `bench size` on small GGUF files written with `gguf::Writer`: exact bytes, the guide's
//! formula and its error, KV cache, active bytes per token, quant mix, shards.

use assert_cmd::Command;
use predicates::str::contains;
use serde_json::Value as Json;
use std::io::Write;
use std::path::Path;
use tpsbench::gguf::{GgmlType, Value, Writer};

/// A one-block qwen2-shaped model with a Q4_K_M-like mix of tensor types.
fn tiny_model() -> Writer {
    let mut w = Writer::new();
    w.metadata("general.architecture", Value::String("qwen2".into()));
    w.metadata("general.name", Value::String("tiny".into()));
    w.metadata("general.file_type", Value::U32(15)); // LLAMA_FTYPE_MOSTLY_Q4_K_M
    w.metadata("qwen2.block_count", Value::U32(1));
    w.metadata("qwen2.context_length", Value::U32(32_768));
    w.metadata("qwen2.embedding_length", Value::U32(256));
    w.metadata("qwen2.attention.head_count", Value::U32(4));
    w.metadata("qwen2.attention.head_count_kv", Value::U32(2));
    w.tensor("token_embd.weight", &[256, 512], GgmlType::Q8_0);
    w.tensor("blk.0.attn_norm.weight", &[256], GgmlType::F32);
    w.tensor("blk.0.attn_q.weight", &[256, 256], GgmlType::Q4_K);
    w.tensor("blk.0.ffn_down.weight", &[256, 256], GgmlType::Q6_K);
    w.tensor("output.weight", &[256, 512], GgmlType::Q6_K);
    w
}

fn write(w: &Writer, path: &Path) -> u64 {
    let file = std::fs::File::create(path).unwrap();
    w.write_to(file, |_, info, out: &mut dyn Write| {
        out.write_all(&vec![0u8; info.n_bytes as usize])
    })
    .unwrap()
}

fn size_json(args: &[&str]) -> Json {
    let out = Command::cargo_bin("bench")
        .unwrap()
        .arg("size")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn exact_figures_formula_and_kv_of_a_written_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny-Q4_K_M.gguf");
    let file_bytes = write(&tiny_model(), &path);
    let json = size_json(&[path.to_str().unwrap()]);
    let r = &json[0];
    let e = &r["exact"];
    // 131072 + 256 + 65536 + 65536 + 131072 weights.
    assert_eq!(e["n_params"], 393_472);
    // Q8_0 34 B/32, F32 4 B, Q4_K 144 B/256, Q6_K 210 B/256.
    assert_eq!(
        e["tensor_bytes"],
        139_264 + 1_024 + 36_864 + 53_760 + 107_520
    );
    assert_eq!(e["file_bytes"], file_bytes);
    assert_eq!(e["quant"], "Q4_K_M");
    // One layer x 2 KV heads x (64 + 64) x 2 bytes; default context min(32768, 4096).
    assert_eq!(e["kv_bytes_per_token_f16"], 512);
    assert_eq!(r["kv_ctx"], 4096);
    assert_eq!(r["kv_bytes"], 512 * 4096);
    // The token embedding counts one row: 139264 / 512 = 272 bytes.
    assert_eq!(
        e["active_bytes_per_token"],
        272 + 1_024 + 36_864 + 53_760 + 107_520
    );
    let formula = (393_472.0_f64 * 0.5 * 1.1).round();
    assert_eq!(r["formula_bytes"], formula as u64);
    let err = r["formula_error_pct"].as_f64().unwrap();
    let want = (formula - file_bytes as f64) / file_bytes as f64 * 100.0;
    assert!((err - want).abs() < 1e-6, "{err} vs {want}");
    let mix: Vec<&str> = e["by_type"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["ggml_type"].as_str().unwrap())
        .collect();
    assert_eq!(mix, ["Q6_K", "Q8_0", "Q4_K", "F32"]);
}

#[test]
fn ctx_flag_sets_the_kv_context_and_the_table_shows_the_mix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    write(&tiny_model(), &path);
    assert_eq!(
        size_json(&["--ctx", "100", path.to_str().unwrap()])[0]["kv_bytes"],
        51_200
    );
    Command::cargo_bin("bench")
        .unwrap()
        .args(["size", path.to_str().unwrap()])
        .assert()
        .success()
        .stdout(contains("formula error"))
        .stdout(contains("Q6_K"))
        .stdout(contains("qwen2"));
}

#[test]
fn a_sharded_model_is_sized_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Writer::new();
    a.metadata("general.architecture", Value::String("qwen2".into()));
    a.tensor("token_embd.weight", &[256, 512], GgmlType::Q8_0);
    let mut b = Writer::new();
    b.tensor("output.weight", &[256, 512], GgmlType::Q6_K);
    let first = dir.path().join("m-00001-of-00002.gguf");
    let bytes = write(&a, &first) + write(&b, &dir.path().join("m-00002-of-00002.gguf"));
    let e = &size_json(&[first.to_str().unwrap()])[0]["exact"];
    assert_eq!(e["shards"], 2);
    assert_eq!(e["n_params"], 262_144);
    assert_eq!(e["file_bytes"], bytes);
}

#[test]
fn a_missing_or_broken_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.gguf");
    std::fs::write(&bad, b"GGUF\x03\x00").unwrap();
    Command::cargo_bin("bench")
        .unwrap()
        .args(["size", bad.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(contains(bad.display().to_string()));
    Command::cargo_bin("bench")
        .unwrap()
        .args(["size", "/nonexistent/x.gguf"])
        .assert()
        .code(2)
        .stderr(contains("/nonexistent/x.gguf"));
}

fn size_out(args: &[&str]) -> String {
    let out = Command::cargo_bin("bench")
        .unwrap()
        .arg("size")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn json_is_an_alias_of_format_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny-Q4_K_M.gguf");
    write(&tiny_model(), &path);
    let p = path.to_str().unwrap();
    assert_eq!(size_out(&[p, "--json"]), size_out(&[p, "--format", "json"]));
    Command::cargo_bin("bench")
        .unwrap()
        .args(["size", p, "--json", "--format", "csv"])
        .assert()
        .code(2)
        .stderr(contains("cannot be used with"));
}

#[test]
fn table_markdown_csv_and_json_hold_the_same_facts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny-Q4_K_M.gguf");
    write(&tiny_model(), &path);
    let p = path.to_str().unwrap();
    let json = size_json(&[p]);
    let md = size_out(&[p, "--format", "markdown"]);
    assert!(md.contains("|---|---|\n"), "{md}");
    let rows = tpsbench::util::output::markdown_cells(&md);
    let fact = |k: &str| rows.iter().find(|r| r[0] == k).unwrap()[1].clone();
    let e = &json[0]["exact"];
    assert_eq!(fact("quant (file type)"), e["quant"].as_str().unwrap());
    assert!(fact("parameters (exact)").starts_with(&format!("{} (", e["n_params"])));
    assert!(fact("file bytes (exact)").starts_with(&format!("{} B", e["file_bytes"])));
    // The quant mix: one row per type with its tensor count, as in the JSON.
    for t in e["by_type"].as_array().unwrap() {
        let row = rows
            .iter()
            .find(|r| r[0] == t["ggml_type"].as_str().unwrap())
            .unwrap();
        assert_eq!(row[1], t["n_tensors"].to_string(), "{row:?}");
        assert_eq!(row[2], t["n_elements"].to_string(), "{row:?}");
    }
    // CSV holds the same cells as the Markdown, and the terminal table shows each of them.
    let csv = size_out(&[p, "--format", "csv"]);
    let csv_rows: Vec<Vec<String>> = csv
        .split("\n\n")
        .flat_map(|part| {
            let mut r = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(part.as_bytes());
            r.records()
                .map(|rec| rec.unwrap().iter().map(String::from).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(csv_rows, rows);
    let table = size_out(&[p]);
    for cell in rows.iter().flatten() {
        assert!(table.contains(cell.as_str()), "{cell:?} not in\n{table}");
    }
}
