//! Exact model figures read from a GGUF file (through `gguf::Model::facts`), in the form
//! the size and plan reports need: parameters, bytes, quant mix, KV bytes per token, active
//! bytes per token, and the quant name of `general.file_type`.

use crate::gguf::{GgmlType, Model, Value};
use anyhow::Context;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Bytes of one tensor type in a model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeBytes {
    /// ggml type name (`Q4_K`).
    pub ggml_type: String,
    /// Tensors of this type.
    pub n_tensors: usize,
    /// Elements (weights) of this type.
    pub n_elements: u64,
    /// Bytes of this type.
    pub bytes: u64,
}

/// The exact figures of one model (all shards).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExactModel {
    /// The path given (first shard).
    pub path: PathBuf,
    /// Number of shard files.
    pub shards: usize,
    /// `general.architecture`.
    pub architecture: Option<String>,
    /// `general.name`.
    pub name: Option<String>,
    /// The quant of `general.file_type` (`Q4_K_M`), else the type holding most bytes.
    pub quant: Option<String>,
    /// Parameters (sum of tensor elements).
    pub n_params: u64,
    /// Bytes of all shard files.
    pub file_bytes: u64,
    /// Bytes of tensor data.
    pub tensor_bytes: u64,
    /// Tensor bits per weight.
    pub bits_per_weight: f64,
    /// Bytes per tensor type, largest first.
    pub by_type: Vec<TypeBytes>,
    /// `<arch>.context_length`, tokens.
    pub context_length: Option<u64>,
    /// KV-cache bytes per token of context with an f16 cache.
    pub kv_bytes_per_token_f16: u64,
    /// Experts per MoE layer and experts used per token.
    pub experts: Option<(u32, u32)>,
    /// Parameters read per generated token.
    pub active_params: u64,
    /// Bytes read per generated token.
    pub active_bytes_per_token: u64,
}

/// `llama_ftype` names by id (`include/llama.h` of the pinned llama.cpp).
pub fn ftype_name(id: u64) -> Option<&'static str> {
    const NAMES: [(u64, &str); 35] = [
        (0, "F32"),
        (1, "F16"),
        (2, "Q4_0"),
        (3, "Q4_1"),
        (7, "Q8_0"),
        (8, "Q5_0"),
        (9, "Q5_1"),
        (10, "Q2_K"),
        (11, "Q3_K_S"),
        (12, "Q3_K_M"),
        (13, "Q3_K_L"),
        (14, "Q4_K_S"),
        (15, "Q4_K_M"),
        (16, "Q5_K_S"),
        (17, "Q5_K_M"),
        (18, "Q6_K"),
        (19, "IQ2_XXS"),
        (20, "IQ2_XS"),
        (21, "Q2_K_S"),
        (22, "IQ3_XS"),
        (23, "IQ3_XXS"),
        (24, "IQ1_S"),
        (25, "IQ4_NL"),
        (26, "IQ3_S"),
        (27, "IQ3_M"),
        (28, "IQ2_S"),
        (29, "IQ2_M"),
        (30, "IQ4_XS"),
        (31, "IQ1_M"),
        (32, "BF16"),
        (36, "TQ1_0"),
        (37, "TQ2_0"),
        (38, "MXFP4_MOE"),
        (39, "NVFP4"),
        (40, "Q1_0"),
    ];
    NAMES.iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
}

/// Reads the exact figures of a GGUF model (a sharded model through any of its shards).
pub fn read(path: &Path) -> anyhow::Result<ExactModel> {
    let model = Model::open(path).with_context(|| format!("reading GGUF {}", path.display()))?;
    Ok(from_model(path, &model))
}

/// The figures of an opened model.
pub fn from_model(path: &Path, model: &Model) -> ExactModel {
    let facts = model.facts();
    let mut by_type: Vec<TypeBytes> = facts
        .by_type
        .iter()
        .map(|t| TypeBytes {
            ggml_type: t.ggml_type.name().to_string(),
            n_tensors: t.n_tensors as usize,
            n_elements: t.n_params,
            bytes: t.bytes,
        })
        .collect();
    by_type.sort_by_key(|m| std::cmp::Reverse(m.bytes));
    let quant = model
        .get("general.file_type")
        .and_then(Value::as_u64)
        .and_then(ftype_name)
        .map(str::to_string)
        .or_else(|| by_type.first().map(|m| m.ggml_type.clone()));
    ExactModel {
        path: path.to_path_buf(),
        shards: facts.n_shards as usize,
        quant,
        n_params: facts.n_params,
        file_bytes: facts.file_bytes,
        tensor_bytes: facts.tensor_bytes,
        bits_per_weight: facts.bits_per_weight,
        by_type,
        context_length: Some(facts.context_length).filter(|&c| c > 0),
        kv_bytes_per_token_f16: facts.kv_bytes_per_token(GgmlType::F16),
        experts: facts.expert_count.zip(facts.expert_used_count),
        active_params: facts.active_params,
        active_bytes_per_token: facts.active_bytes_per_token,
        architecture: facts.architecture,
        name: facts.name,
    }
}
