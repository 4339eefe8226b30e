//! Model shapes: the guide's models as presets, each copied from its public Hugging Face
//! `config.json` (cited per preset), plus custom shapes from the command line.
//!
//! A shape fixes every tensor dimension of the GGUF file; with the quant mix it fixes the
//! bytes llama.cpp reads per token, which is all that decode throughput depends on.

use serde::Serialize;

/// The llama.cpp architecture a synthetic model is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Arch {
    /// `qwen2`: dense Qwen2.5 (q/k/v biases, SwiGLU FFN).
    Qwen2,
    /// `qwen3moe`: Qwen3 mixture of experts (q/k norms, router, stacked expert tensors).
    Qwen3Moe,
}

impl Arch {
    /// The `general.architecture` string llama.cpp knows this architecture by.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3Moe => "qwen3moe",
        }
    }
}

/// Every dimension of a decoder-only transformer as llama.cpp's loader sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shape {
    pub arch: Arch,
    pub n_layer: u32,
    pub n_embd: u64,
    pub n_head: u32,
    pub n_head_kv: u32,
    /// Per-head dimension of q/k/v (`head_dim`; `n_embd / n_head` when the config has none).
    pub head_dim: u64,
    /// Dense FFN width (`intermediate_size`); unused by the MoE layers.
    pub n_ff: u64,
    pub n_vocab: u64,
    /// Routed experts per layer (0 for dense).
    pub n_expert: u32,
    /// Experts used per token (0 for dense).
    pub n_expert_used: u32,
    /// Width of one expert's FFN (`moe_intermediate_size`; 0 for dense).
    pub n_ff_exp: u64,
    /// Whether the published model shares token_embd with the output matrix.
    pub tied_embeddings: bool,
    pub context_length: u32,
    pub rope_freq_base: f32,
    pub rms_norm_eps: f32,
}

/// A named shape with the parameter count its publisher states.
#[derive(Debug, Clone, Serialize)]
pub struct Preset {
    pub name: &'static str,
    pub shape: Shape,
    /// Total parameters as published on the model card (rounded as published).
    pub published_params: u64,
    /// Parameters active per token as published (MoE only).
    pub published_active_params: Option<u64>,
    /// Where the shape comes from.
    pub source: &'static str,
}

/// Qwen2.5 dense shape from a config.json's fields; all Qwen2.5 use rope_theta 1e6, eps 1e-6.
#[allow(clippy::too_many_arguments)]
fn qwen2(
    n_layer: u32,
    n_embd: u64,
    n_head: u32,
    n_head_kv: u32,
    n_ff: u64,
    n_vocab: u64,
    tied: bool,
    context_length: u32,
) -> Shape {
    Shape {
        arch: Arch::Qwen2,
        n_layer,
        n_embd,
        n_head,
        n_head_kv,
        head_dim: n_embd / n_head as u64,
        n_ff,
        n_vocab,
        n_expert: 0,
        n_expert_used: 0,
        n_ff_exp: 0,
        tied_embeddings: tied,
        context_length,
        rope_freq_base: 1_000_000.0,
        rms_norm_eps: 1e-6,
    }
}

/// Qwen3-MoE shape; all three use head_dim 128, vocab 151936, untied output, rope_theta 1e6.
#[allow(clippy::too_many_arguments)]
fn qwen3moe(
    n_layer: u32,
    n_embd: u64,
    n_head: u32,
    n_head_kv: u32,
    n_ff: u64,
    n_expert: u32,
    n_expert_used: u32,
    n_ff_exp: u64,
    context_length: u32,
) -> Shape {
    Shape {
        arch: Arch::Qwen3Moe,
        n_layer,
        n_embd,
        n_head,
        n_head_kv,
        head_dim: 128,
        n_ff,
        n_vocab: 151_936,
        n_expert,
        n_expert_used,
        n_ff_exp,
        tied_embeddings: false,
        context_length,
        rope_freq_base: 1_000_000.0,
        rms_norm_eps: 1e-6,
    }
}

const B: u64 = 1_000_000_000;

/// Every preset. Field values are those of the cited config.json
/// (num_hidden_layers, hidden_size, num_attention_heads, num_key_value_heads,
/// intermediate_size, vocab_size, tie_word_embeddings, max_position_embeddings;
/// for MoE also head_dim, num_experts, num_experts_per_tok, moe_intermediate_size).
pub fn all() -> Vec<Preset> {
    vec![
        Preset {
            name: "qwen2.5-0.5b",
            shape: qwen2(24, 896, 14, 2, 4864, 151_936, true, 32_768),
            published_params: 490_000_000,
            published_active_params: None,
            source: "https://huggingface.co/Qwen/Qwen2.5-0.5B/blob/main/config.json (card: 0.49B)",
        },
        Preset {
            name: "qwen2.5-1.5b",
            shape: qwen2(28, 1536, 12, 2, 8960, 151_936, true, 131_072),
            published_params: 1_540_000_000,
            published_active_params: None,
            source: "https://huggingface.co/Qwen/Qwen2.5-1.5B/blob/main/config.json (card: 1.54B)",
        },
        Preset {
            name: "qwen2.5-3b",
            shape: qwen2(36, 2048, 16, 2, 11008, 151_936, true, 32_768),
            published_params: 3_090_000_000,
            published_active_params: None,
            source: "https://huggingface.co/Qwen/Qwen2.5-3B/blob/main/config.json (card: 3.09B)",
        },
        Preset {
            name: "qwen2.5-7b",
            shape: qwen2(28, 3584, 28, 4, 18944, 152_064, false, 131_072),
            published_params: 7_610_000_000,
            published_active_params: None,
            source: "https://huggingface.co/Qwen/Qwen2.5-7B/blob/main/config.json (card: 7.61B)",
        },
        Preset {
            name: "qwen2.5-14b",
            shape: qwen2(48, 5120, 40, 8, 13824, 152_064, false, 131_072),
            published_params: 14_700_000_000,
            published_active_params: None,
            source: "https://huggingface.co/Qwen/Qwen2.5-14B/blob/main/config.json (card: 14.7B)",
        },
        Preset {
            name: "qwen2.5-32b",
            shape: qwen2(64, 5120, 40, 8, 27648, 152_064, false, 131_072),
            published_params: 32_500_000_000,
            published_active_params: None,
            source: "https://huggingface.co/Qwen/Qwen2.5-32B/blob/main/config.json (card: 32.5B)",
        },
        Preset {
            name: "qwen2.5-72b",
            shape: qwen2(80, 8192, 64, 8, 29568, 152_064, false, 131_072),
            published_params: 72_700_000_000,
            published_active_params: None,
            source: "https://huggingface.co/Qwen/Qwen2.5-72B/blob/main/config.json (card: 72.7B)",
        },
        Preset {
            name: "qwen2.5-coder-0.5b",
            shape: qwen2(24, 896, 14, 2, 4864, 151_936, true, 32_768),
            published_params: 490_000_000,
            published_active_params: None,
            source: "https://huggingface.co/Qwen/Qwen2.5-Coder-0.5B/blob/main/config.json (card: 0.49B); the guide's draft model",
        },
        Preset {
            name: "qwen3-30b-a3b",
            shape: qwen3moe(48, 2048, 32, 4, 6144, 128, 8, 768, 40_960),
            published_params: 30_500_000_000,
            published_active_params: Some(3_300_000_000),
            source: "https://huggingface.co/Qwen/Qwen3-30B-A3B/blob/main/config.json (card: 30.5B total, 3.3B activated)",
        },
        Preset {
            name: "qwen3-235b-a22b",
            shape: qwen3moe(94, 4096, 64, 4, 12288, 128, 8, 1536, 40_960),
            published_params: 235 * B,
            published_active_params: Some(22 * B),
            source: "https://huggingface.co/Qwen/Qwen3-235B-A22B/blob/main/config.json (card: 235B total, 22B activated)",
        },
        Preset {
            name: "qwen3-coder-480b-a35b",
            shape: qwen3moe(62, 6144, 96, 8, 8192, 160, 8, 2560, 262_144),
            published_params: 480 * B,
            published_active_params: Some(35 * B),
            source: "https://huggingface.co/Qwen/Qwen3-Coder-480B-A35B-Instruct/blob/main/config.json (card: 480B total, 35B activated)",
        },
    ]
}

/// Looks a preset up by name (case-insensitive).
pub fn by_name(name: &str) -> Option<Preset> {
    all()
        .into_iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
}

/// Names of all presets, for error messages and `--help`.
pub fn names() -> Vec<&'static str> {
    all().iter().map(|p| p.name).collect()
}

impl Shape {
    /// Whether this shape is a mixture of experts.
    pub fn is_moe(&self) -> bool {
        self.n_expert > 0
    }

    /// Width of all query heads together.
    pub fn q_dim(&self) -> u64 {
        self.head_dim * self.n_head as u64
    }

    /// Width of all key (or value) heads together.
    pub fn kv_dim(&self) -> u64 {
        self.head_dim * self.n_head_kv as u64
    }

    /// Checks the constraints llama.cpp's loader and our writer rely on.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("layers", self.n_layer as u64),
            ("embd", self.n_embd),
            ("heads", self.n_head as u64),
            ("kv-heads", self.n_head_kv as u64),
            ("head_dim", self.head_dim),
            ("vocab", self.n_vocab),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} must be positive"));
        }
        if self.n_vocab < 512 {
            return Err(format!("vocab ({}) must be at least 512", self.n_vocab));
        }
        if !self.n_head.is_multiple_of(self.n_head_kv) {
            return Err(format!(
                "heads ({}) must be a multiple of kv-heads ({})",
                self.n_head, self.n_head_kv
            ));
        }
        if !self.n_embd.is_multiple_of(32) {
            return Err(format!("embd ({}) must be a multiple of 32", self.n_embd));
        }
        self.validate_ffn()
    }

    fn validate_ffn(&self) -> Result<(), String> {
        match self.arch {
            Arch::Qwen2 if self.n_ff == 0 || !self.n_ff.is_multiple_of(32) => Err(format!(
                "ff ({}) must be a positive multiple of 32",
                self.n_ff
            )),
            Arch::Qwen3Moe if self.n_expert == 0 || self.n_expert_used == 0 => {
                Err("a MoE shape needs experts and experts-used > 0".into())
            }
            Arch::Qwen3Moe if self.n_expert_used > self.n_expert => Err(format!(
                "experts-used ({}) exceeds experts ({})",
                self.n_expert_used, self.n_expert
            )),
            Arch::Qwen3Moe if self.n_ff_exp == 0 || !self.n_ff_exp.is_multiple_of(32) => {
                Err(format!(
                    "expert-ff ({}) must be a positive multiple of 32",
                    self.n_ff_exp
                ))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_valid_and_found_by_name() {
        for p in all() {
            p.shape.validate().unwrap();
            assert_eq!(by_name(&p.name.to_uppercase()).unwrap().name, p.name);
        }
        assert!(by_name("qwen2.5-8b").is_none());
    }

    #[test]
    fn invalid_shapes_are_rejected() {
        let mut s = by_name("qwen2.5-0.5b").unwrap().shape;
        s.n_head_kv = 3;
        assert!(s.validate().unwrap_err().contains("multiple of kv-heads"));
        let mut m = by_name("qwen3-30b-a3b").unwrap().shape;
        m.n_expert_used = 200;
        assert!(m.validate().unwrap_err().contains("exceeds"));
    }
}
