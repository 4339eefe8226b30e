//! Exact model figures read from a GGUF file (through `gguf::Model::facts`), in the form
//! the size and plan reports need: parameters, bytes, quant mix, KV bytes per token, active
//! bytes per token, and the quant name of `general.file_type`.

use crate::gguf::{GgmlType, Model};
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

/// Reads the exact figures of a GGUF model (a sharded model through any of its shards).
pub fn read(path: &Path) -> anyhow::Result<ExactModel> {
    let model = Model::open(path).context("reading GGUF")?;
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
    ExactModel {
        path: path.to_path_buf(),
        shards: facts.n_shards as usize,
        quant: facts.quant.clone(),
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
