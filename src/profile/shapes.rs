//! The synthetic presets a profile may name (`synthetic = "qwen2.5-7b"`) with the public
//! shape facts the planner needs before any file exists: parameter counts and the
//! attention shape that sets the KV cache (from each model's published `config.json`).
//!
//! The synth module builds the stand-in models themselves; this table only lets a profile
//! be validated and planned without them. A test in the synth module can cross-check it.

use serde::Serialize;

/// Shape facts of one synthetic preset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PresetShape {
    /// Preset name (`qwen2.5-7b`).
    pub name: &'static str,
    /// Total parameters, billions.
    pub params_b: f64,
    /// Active parameters per token, billions (MoE only).
    pub active_params_b: Option<f64>,
    /// Transformer blocks.
    pub n_layer: u32,
    /// KV heads (grouped-query attention).
    pub n_head_kv: u32,
    /// Dimension of one attention head.
    pub head_dim: u32,
    /// Experts per MoE layer and experts used per token by default.
    pub experts: Option<(u32, u32)>,
    /// The model's native context length, tokens.
    pub context_length: u32,
}

impl PresetShape {
    /// True for a mixture-of-experts preset.
    pub fn is_moe(&self) -> bool {
        self.experts.is_some()
    }

    /// KV-cache bytes per token of context with an f16 cache: layers x KV heads x head
    /// dim x 2 (K and V) x 2 bytes.
    pub fn kv_bytes_per_token_f16(&self) -> u64 {
        u64::from(self.n_layer) * u64::from(self.n_head_kv) * u64::from(self.head_dim) * 2 * 2
    }
}

const fn dense(
    name: &'static str,
    params_b: f64,
    n_layer: u32,
    n_head_kv: u32,
    head_dim: u32,
    ctx: u32,
) -> PresetShape {
    PresetShape {
        name,
        params_b,
        active_params_b: None,
        n_layer,
        n_head_kv,
        head_dim,
        experts: None,
        context_length: ctx,
    }
}

const fn moe(
    name: &'static str,
    params_b: f64,
    active_b: f64,
    n_layer: u32,
    n_head_kv: u32,
    experts: (u32, u32),
    ctx: u32,
) -> PresetShape {
    PresetShape {
        name,
        params_b,
        active_params_b: Some(active_b),
        n_layer,
        n_head_kv,
        head_dim: 128,
        experts: Some(experts),
        context_length: ctx,
    }
}

/// Every synthetic preset (the synth module's list), with its shape.
pub const PRESETS: [PresetShape; 11] = [
    dense("qwen2.5-0.5b", 0.49, 24, 2, 64, 32_768),
    dense("qwen2.5-1.5b", 1.54, 28, 2, 128, 131_072),
    dense("qwen2.5-3b", 3.09, 36, 2, 128, 32_768),
    dense("qwen2.5-7b", 7.61, 28, 4, 128, 131_072),
    dense("qwen2.5-14b", 14.7, 48, 8, 128, 131_072),
    dense("qwen2.5-32b", 32.5, 64, 8, 128, 131_072),
    dense("qwen2.5-72b", 72.7, 80, 8, 128, 131_072),
    dense("qwen2.5-coder-0.5b", 0.49, 24, 2, 64, 32_768),
    moe("qwen3-30b-a3b", 30.5, 3.3, 48, 4, (128, 8), 40_960),
    moe("qwen3-235b-a22b", 235.0, 22.0, 94, 4, (128, 8), 40_960),
    moe(
        "qwen3-coder-480b-a35b",
        480.0,
        35.0,
        62,
        8,
        (160, 8),
        262_144,
    ),
];

/// The preset of that name.
pub fn preset(name: &str) -> Option<&'static PresetShape> {
    PRESETS.iter().find(|p| p.name == name)
}

/// The preset names, comma-separated, for error messages.
pub fn preset_names() -> String {
    PRESETS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_bytes_per_token_match_the_published_shapes() {
        // Qwen2.5-7B: 28 layers x 4 KV heads x 128 x 2 x 2 bytes = 56 KiB per token.
        assert_eq!(
            preset("qwen2.5-7b").unwrap().kv_bytes_per_token_f16(),
            57_344
        );
        // Qwen2.5-0.5B: 24 x 2 x 64 x 4 = 12 KiB.
        assert_eq!(
            preset("qwen2.5-0.5b").unwrap().kv_bytes_per_token_f16(),
            12_288
        );
        assert!(preset("qwen3-235b-a22b").unwrap().is_moe());
        assert!(preset("qwen2.5-72b").map(|p| !p.is_moe()).unwrap());
        assert!(preset("llama-7b").is_none());
    }
}
