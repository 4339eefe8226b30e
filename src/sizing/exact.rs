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
    let shards = interim::open_shards(path)?;
    Ok(interim::facts(path, &shards))
}

/// Derivations on `gguf::GgufFile` until `gguf::Model::facts` (branch gguf) lands; then
/// `read` takes its figures from there and this module goes.
mod interim {
    use super::{ftype_name, ExactModel, TypeBytes};
    use crate::gguf::{GgufFile, TensorInfo};
    use anyhow::Context;
    use std::path::{Path, PathBuf};

    /// The shard paths of `path` (`NAME-00001-of-00003.gguf` -> all three), else itself.
    pub fn shard_paths(path: &Path) -> Vec<PathBuf> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let Some(stem) = name.strip_suffix(".gguf") else {
            return vec![path.to_path_buf()];
        };
        let parts: Vec<&str> = stem.rsplitn(4, '-').collect();
        let (Some(total), Some(&"of"), Some(first), Some(base)) =
            (parts.first(), parts.get(1), parts.get(2), parts.get(3))
        else {
            return vec![path.to_path_buf()];
        };
        let (Ok(n), Ok(1)) = (total.parse::<u32>(), first.parse::<u32>()) else {
            return vec![path.to_path_buf()];
        };
        let width = total.len();
        (1..=n)
            .map(|i| path.with_file_name(format!("{base}-{i:0width$}-of-{total}.gguf")))
            .collect()
    }

    pub fn open_shards(path: &Path) -> anyhow::Result<Vec<GgufFile>> {
        shard_paths(path)
            .iter()
            .map(|p| GgufFile::open(p).with_context(|| format!("reading GGUF {}", p.display())))
            .collect()
    }

    fn meta_u64(first: &GgufFile, key: &str) -> Option<u64> {
        first.get(key).and_then(|v| v.as_u64())
    }

    /// A per-layer array (`head_count_kv` of hybrid models) summed, or the scalar times layers.
    fn per_layer_sum(first: &GgufFile, key: &str, layers: u64) -> u64 {
        match first.get(key) {
            Some(v) => match v.as_array() {
                Some(items) => items.iter().filter_map(|i| i.as_u64()).sum(),
                None => v.as_u64().unwrap_or(0) * layers,
            },
            None => 0,
        }
    }

    fn kv_bytes_per_token_f16(first: &GgufFile, arch: &str) -> u64 {
        let key = |k: &str| format!("{arch}.{k}");
        let layers = meta_u64(first, &key("block_count")).unwrap_or(0);
        let embd = meta_u64(first, &key("embedding_length")).unwrap_or(0);
        let heads = meta_u64(first, &key("attention.head_count")).unwrap_or(0);
        let head_dim = embd.checked_div(heads).unwrap_or(0);
        let k_len = meta_u64(first, &key("attention.key_length")).unwrap_or(head_dim);
        let v_len = meta_u64(first, &key("attention.value_length")).unwrap_or(head_dim);
        per_layer_sum(first, &key("attention.head_count_kv"), layers) * (k_len + v_len) * 2
    }

    /// Elements and bytes of one tensor read per generated token.
    fn active_share(t: &TensorInfo, experts: Option<(u32, u32)>) -> (u64, u64) {
        if t.name == "token_embd.weight" && t.dims.len() >= 2 && t.dims[1] > 0 {
            return (t.n_elements / t.dims[1], t.n_bytes / t.dims[1]);
        }
        match experts {
            Some((n, used)) if n > 0 && t.name.contains("_exps") => {
                let scale = |x: u64| (u128::from(x) * u128::from(used) / u128::from(n)) as u64;
                (scale(t.n_elements), scale(t.n_bytes))
            }
            _ => (t.n_elements, t.n_bytes),
        }
    }

    fn by_type(tensors: &[&TensorInfo]) -> Vec<TypeBytes> {
        let mut out: Vec<TypeBytes> = Vec::new();
        for t in tensors {
            let name = t.ggml_type.name();
            let i = out
                .iter()
                .position(|m| m.ggml_type == name)
                .unwrap_or_else(|| {
                    out.push(TypeBytes {
                        ggml_type: name.to_string(),
                        n_tensors: 0,
                        n_elements: 0,
                        bytes: 0,
                    });
                    out.len() - 1
                });
            out[i].n_tensors += 1;
            out[i].n_elements += t.n_elements;
            out[i].bytes += t.n_bytes;
        }
        out.sort_by_key(|m| std::cmp::Reverse(m.bytes));
        out
    }

    fn experts(first: &GgufFile, arch: &str) -> Option<(u32, u32)> {
        let n = meta_u64(first, &format!("{arch}.expert_count"))?;
        let used = meta_u64(first, &format!("{arch}.expert_used_count"))?;
        (n > 0).then_some((n as u32, used as u32))
    }

    pub fn facts(path: &Path, shards: &[GgufFile]) -> ExactModel {
        let first = &shards[0];
        let arch = first
            .get("general.architecture")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        let a = arch.clone().unwrap_or_default();
        let tensors: Vec<&TensorInfo> = shards.iter().flat_map(|s| &s.tensors).collect();
        let experts = experts(first, &a);
        let mix = by_type(&tensors);
        let n_params: u64 = tensors.iter().map(|t| t.n_elements).sum();
        let tensor_bytes: u64 = tensors.iter().map(|t| t.n_bytes).sum();
        let active: Vec<(u64, u64)> = tensors.iter().map(|t| active_share(t, experts)).collect();
        let quant = meta_u64(first, "general.file_type")
            .and_then(ftype_name)
            .map(str::to_string)
            .or_else(|| mix.first().map(|m| m.ggml_type.clone()));
        ExactModel {
            path: path.to_path_buf(),
            shards: shards.len(),
            name: first
                .get("general.name")
                .and_then(|v| v.as_str())
                .map(str::to_string),
            quant,
            n_params,
            file_bytes: shards.iter().map(|s| s.file_bytes).sum(),
            tensor_bytes,
            bits_per_weight: tensor_bytes as f64 * 8.0 / n_params.max(1) as f64,
            by_type: mix,
            context_length: meta_u64(first, &format!("{a}.context_length")),
            kv_bytes_per_token_f16: kv_bytes_per_token_f16(first, &a),
            experts,
            active_params: active.iter().map(|x| x.0).sum(),
            active_bytes_per_token: active.iter().map(|x| x.1).sum(),
            architecture: arch,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn shard_names_expand_to_every_shard() {
            let got = shard_paths(Path::new("/m/Qwen3-235B-Q4_K_M-00001-of-00003.gguf"));
            assert_eq!(got.len(), 3);
            assert_eq!(
                got[2],
                Path::new("/m/Qwen3-235B-Q4_K_M-00003-of-00003.gguf")
            );
            assert_eq!(
                shard_paths(Path::new("/m/a-b.gguf")),
                vec![PathBuf::from("/m/a-b.gguf")]
            );
            assert_eq!(shard_paths(Path::new("/m/x-00002-of-00003.gguf")).len(), 1);
        }
    }
}
