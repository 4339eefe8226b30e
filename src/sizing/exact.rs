//! Exact model figures read from a GGUF file (through the `gguf` reader), in the form the
//! size and plan reports need: parameters, bytes, quant mix, KV bytes per token, active
//! bytes per token.

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

/// Reads the exact figures of a GGUF model (a sharded model through its first shard).
pub fn read(path: &Path) -> anyhow::Result<ExactModel> {
    anyhow::bail!(
        "{}: the GGUF reader (branch gguf) has not been merged yet",
        path.display()
    )
}
