//! Unit tests of the derived model facts and of sharded models.

use std::io::{self, Read, Write};

use super::*;
use crate::gguf::{ValueType, Writer};

fn zeros(_: usize, info: &TensorInfo, w: &mut dyn Write) -> io::Result<()> {
    io::copy(&mut io::repeat(0).take(info.n_bytes), w).map(|_| ())
}

fn model_of(w: &Writer) -> Model {
    let mut buf = Vec::new();
    w.write_to(&mut buf, zeros).unwrap();
    Model::from_file(GgufFile::from_bytes(Path::new("m.gguf"), &buf).unwrap())
}

const N_EMBD: u64 = 64;
const N_VOCAB: u64 = 100;

/// A two-layer llama-like model: 4 heads of 16, 2 KV heads.
fn dense(tied: bool) -> Writer {
    let mut w = Writer::new();
    w.metadata("general.architecture", Value::String("llama".into()));
    w.metadata("general.name", Value::String("Tiny".into()));
    w.metadata("llama.block_count", Value::U32(2));
    w.metadata("llama.embedding_length", Value::U32(N_EMBD as u32));
    w.metadata("llama.attention.head_count", Value::U32(4));
    w.metadata("llama.attention.head_count_kv", Value::U32(2));
    w.metadata("llama.context_length", Value::U32(4096));
    w.tensor(TOKEN_EMBD, &[N_EMBD, N_VOCAB], GgmlType::F16);
    for i in 0..2 {
        w.tensor(
            &format!("blk.{i}.attn_norm.weight"),
            &[N_EMBD],
            GgmlType::F32,
        );
        w.tensor(
            &format!("blk.{i}.ffn_up.weight"),
            &[N_EMBD, 128],
            GgmlType::Q8_0,
        );
    }
    if !tied {
        w.tensor(OUTPUT, &[N_EMBD, N_VOCAB], GgmlType::Q8_0);
    }
    w
}

#[test]
fn dense_untied_counts_one_embedding_row() {
    let f = model_of(&dense(false)).facts();
    let embd_bytes = N_EMBD * N_VOCAB * 2;
    let blk_bytes = 2 * (N_EMBD * 4 + N_EMBD * 128 / 32 * 34);
    let out_bytes = N_EMBD * N_VOCAB / 32 * 34;
    assert_eq!(f.architecture.as_deref(), Some("llama"));
    assert_eq!(f.name.as_deref(), Some("Tiny"));
    assert_eq!(f.n_tensors, 6);
    assert_eq!(
        f.n_params,
        2 * N_EMBD * N_VOCAB + 2 * (N_EMBD + N_EMBD * 128)
    );
    assert_eq!(f.tensor_bytes, embd_bytes + blk_bytes + out_bytes);
    assert!(!f.tied_embeddings);
    assert_eq!(f.embedding_row_bytes, N_EMBD * 2);
    assert_eq!(f.active_bytes_per_token, blk_bytes + out_bytes + N_EMBD * 2);
    assert_eq!(f.active_params, f.n_params - N_EMBD * N_VOCAB + N_EMBD);
    assert_eq!(
        (f.block_count, f.embedding_length, f.context_length),
        (2, 64, 4096)
    );
    assert_eq!((f.head_count, f.head_count_kv, f.head_dim), (4, 2, 16));
    assert_eq!(f.vocab_size, N_VOCAB, "from token_embd rows");
    assert_eq!(f.expert_count, None);
    let expect_bpw = f.tensor_bytes as f64 * 8.0 / f.n_params as f64;
    assert!((f.bits_per_weight - expect_bpw).abs() < 1e-12);
}

#[test]
fn tied_embedding_is_read_whole() {
    let f = model_of(&dense(true)).facts();
    assert!(f.tied_embeddings);
    assert_eq!(f.active_params, f.n_params);
    assert_eq!(f.active_bytes_per_token, f.tensor_bytes);
}

#[test]
fn kv_cache_bytes_follow_the_formula() {
    let f = model_of(&dense(false)).facts();
    // n_layer x n_kv_heads x head_dim x 2 x bytes
    assert_eq!(f.kv_bytes_per_token(GgmlType::F16), 2 * 2 * 16 * 2 * 2);
    assert_eq!(f.kv_bytes_per_token(GgmlType::F32), 2 * 2 * 16 * 2 * 4);
    assert_eq!(
        f.kv_bytes_per_token(GgmlType::Q8_0),
        2 * 2 * 16 * 2 / 32 * 34
    );
}

#[test]
fn key_length_and_per_layer_kv_heads_are_honoured() {
    let mut w = dense(false);
    w.metadata("llama.attention.key_length", Value::U32(128));
    w.metadata("llama.attention.value_length", Value::U32(64));
    let kv = vec![Value::I32(2), Value::I32(0)];
    w.metadata(
        "llama.attention.head_count_kv",
        Value::Array(ValueType::I32, kv),
    );
    let f = model_of(&w).facts();
    assert_eq!((f.head_dim, f.value_dim, f.head_count_kv), (128, 64, 2));
    assert_eq!(f.kv_bytes_per_token(GgmlType::F16), 2 * (128 + 64) * 2);
}

#[test]
fn vocab_size_prefers_the_token_list() {
    let mut w = dense(false);
    let tokens = (0..7).map(|i| Value::String(format!("t{i}"))).collect();
    w.metadata(
        "tokenizer.ggml.tokens",
        Value::Array(ValueType::String, tokens),
    );
    assert_eq!(model_of(&w).facts().vocab_size, 7);
}

fn moe() -> Writer {
    let mut w = dense(false);
    w.metadata("llama.expert_count", Value::U32(8));
    w.metadata("llama.expert_used_count", Value::U32(2));
    w.tensor("blk.0.ffn_up_exps.weight", &[N_EMBD, 32, 8], GgmlType::Q4_0);
    w.tensor("blk.0.ffn_up_shexp.weight", &[N_EMBD, 32], GgmlType::Q4_0);
    w
}

#[test]
fn moe_reads_used_over_total_of_the_experts() {
    let dense_facts = model_of(&dense(false)).facts();
    let f = model_of(&moe()).facts();
    let exps_bytes = N_EMBD * 32 * 8 / 32 * 18;
    let shexp_bytes = N_EMBD * 32 / 32 * 18;
    assert_eq!((f.expert_count, f.expert_used_count), (Some(8), Some(2)));
    assert_eq!(f.expert_bytes, exps_bytes);
    assert_eq!(
        f.active_bytes_per_token,
        dense_facts.active_bytes_per_token + shexp_bytes + exps_bytes * 2 / 8
    );
    assert_eq!(
        f.active_params,
        dense_facts.active_params + N_EMBD * 32 + N_EMBD * 32 * 8 * 2 / 8
    );
    let four = f.with_experts_used(4);
    assert_eq!(four.expert_used_count, Some(4));
    assert_eq!(
        four.active_bytes_per_token - f.active_bytes_per_token,
        exps_bytes * 2 / 8
    );
    let all = f.with_experts_used(99);
    assert_eq!(
        all.active_bytes_per_token,
        all.tensor_bytes - all.embedding_bytes + all.embedding_row_bytes
    );
}

#[test]
fn experts_used_on_a_dense_model_changes_nothing() {
    let f = model_of(&dense(false)).facts();
    assert_eq!(f.with_experts_used(4), f);
}

#[test]
fn quant_mix_is_sorted_by_bytes_and_sums_up() {
    let f = model_of(&dense(false)).facts();
    let names: Vec<&str> = f.by_type.iter().map(|s| s.ggml_type.name()).collect();
    assert_eq!(names, ["Q8_0", "F16", "F32"]);
    assert_eq!(
        f.by_type.iter().map(|s| s.bytes).sum::<u64>(),
        f.tensor_bytes
    );
    assert_eq!(
        f.by_type.iter().map(|s| s.n_params).sum::<u64>(),
        f.n_params
    );
    assert_eq!(f.by_type.iter().map(|s| s.n_tensors).sum::<u64>(), 6);
    assert!((f.by_type[1].bits_per_weight() - 16.0).abs() < 1e-12);
}

#[test]
fn shard_names_are_recognised() {
    let p = Path::new("/m/Qwen3-235B-Q4_K_M-00002-of-00004.gguf");
    let paths = shard_paths(p).unwrap();
    assert_eq!(paths.len(), 4);
    assert_eq!(
        paths[0],
        Path::new("/m/Qwen3-235B-Q4_K_M-00001-of-00004.gguf")
    );
    assert_eq!(shard_paths(Path::new("/m/model.gguf")), None);
    assert_eq!(shard_paths(Path::new("/m/x-00005-of-00004.gguf")), None);
    assert_eq!(shard_paths(Path::new("/m/x-1-of-2.gguf")), None);
}

fn write_shards(dir: &Path, n: u16) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for i in 0..n {
        let mut w = if i == 0 { dense(false) } else { Writer::new() };
        w.metadata("split.no", Value::U16(i));
        w.metadata("split.count", Value::U16(n));
        w.tensor(&format!("extra.{i}.weight"), &[N_EMBD, 4], GgmlType::F32);
        let path = dir.join(format!("tiny-{:05}-of-{n:05}.gguf", i + 1));
        w.write_to(std::fs::File::create(&path).unwrap(), zeros)
            .unwrap();
        paths.push(path);
    }
    paths
}

#[test]
fn a_sharded_model_is_read_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_shards(dir.path(), 3);
    let model = Model::open(&paths[1]).unwrap();
    assert_eq!(model.shards.len(), 3);
    assert_eq!(model.path(), paths[0]);
    assert_eq!(model.architecture(), Some("llama"));
    let f = model.facts();
    let single = model_of(&dense(false)).facts();
    assert_eq!(f.n_shards, 3);
    assert_eq!(f.n_tensors, single.n_tensors + 3);
    assert_eq!(f.n_params, single.n_params + 3 * N_EMBD * 4);
    let on_disk: u64 = paths.iter().map(|p| p.metadata().unwrap().len()).sum();
    assert_eq!(f.file_bytes, on_disk);
}

#[test]
fn a_missing_shard_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_shards(dir.path(), 3);
    std::fs::remove_file(&paths[2]).unwrap();
    let err = Model::open(&paths[0]).unwrap_err().to_string();
    assert!(err.contains("shard 3 of 3"), "{err}");
    assert!(err.contains("tiny-00003-of-00003.gguf"), "{err}");
}

#[test]
fn mismatched_split_metadata_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_shards(dir.path(), 2);
    let renamed = dir.path().join("tiny-00001-of-00003.gguf");
    std::fs::rename(&paths[0], &renamed).unwrap();
    std::fs::rename(&paths[1], dir.path().join("tiny-00002-of-00003.gguf")).unwrap();
    let mut w = Writer::new();
    w.tensor("x", &[4], GgmlType::F32);
    let third = dir.path().join("tiny-00003-of-00003.gguf");
    w.write_to(std::fs::File::create(third).unwrap(), zeros)
        .unwrap();
    let err = Model::open(&renamed).unwrap_err().to_string();
    assert!(
        err.contains("split.count says Some(2) shards, found 3 files"),
        "{err}"
    );
}

/// A header-only model of `arch` with `n_layer` blocks and the given extra keys.
fn arch_model(arch: &str, n_layer: u32, extra: Vec<(&str, Value)>) -> ModelFacts {
    let mut w = Writer::new();
    w.metadata("general.architecture", Value::String(arch.into()));
    w.metadata(&format!("{arch}.block_count"), Value::U32(n_layer));
    w.metadata(&format!("{arch}.embedding_length"), Value::U32(64));
    w.metadata(&format!("{arch}.attention.head_count"), Value::U32(4));
    for (k, v) in extra {
        w.metadata(&format!("{arch}.{k}"), v);
    }
    w.tensor(TOKEN_EMBD, &[N_EMBD, N_VOCAB], GgmlType::F16);
    model_of(&w).facts()
}

#[test]
fn sliding_window_layers_follow_the_architecture() {
    let window = || ("attention.sliding_window", Value::U32(512));
    // Gemma 3 interleaves five local layers with one global layer (Gemma 3 technical
    // report, section 2.2): 18 layers (the 270M model) have 3 global and 15 local ones.
    let g3 = arch_model("gemma3", 18, vec![window()]);
    assert_eq!((g3.sliding_window, g3.sliding_window_layers), (512, 15));
    // Gemma 2 alternates local and global layers, with a 4096-token window when the header
    // has none (Gemma 2 report, table 1).
    let g2 = arch_model("gemma2", 26, vec![]);
    assert_eq!((g2.sliding_window, g2.sliding_window_layers), (4096, 13));
    // A pattern in the header wins: every layer flagged true slides.
    let flags = [true, false, true, true]
        .into_iter()
        .map(Value::Bool)
        .collect();
    let pattern = (
        "attention.sliding_window_pattern",
        Value::Array(ValueType::Bool, flags),
    );
    let g = arch_model("gemma3", 4, vec![window(), pattern]);
    assert_eq!(g.sliding_window_layers, 3);
    // An architecture llama.cpp runs with full attention ignores the key (Qwen2 headers
    // carry a sliding_window that the engine does not use), and so does a window of 0.
    let q = arch_model("qwen2", 24, vec![window()]);
    assert_eq!((q.sliding_window, q.sliding_window_layers), (0, 0));
    let off = arch_model(
        "gemma3",
        18,
        vec![("attention.sliding_window", Value::U32(0))],
    );
    assert_eq!(off.sliding_window_layers, 0);
}
