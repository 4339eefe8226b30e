//! The tensor plan: every tensor a shape needs (names and dimensions as llama.cpp's
//! `llama_model_qwen2` / `llama_model_qwen3moe::load_arch_tensors` create them), and the
//! type each gets under a quant mix, following `src/llama-quant.cpp` of the pinned engine.
//!
//! The mix rules reproduced (`llama_tensor_get_type_impl`, `tensor_type_fallback`):
//! - 1-D tensors (norms, biases) and the router `ffn_gate_inp` stay F32 (the converter
//!   writes them F32 and the quantizer never touches them);
//! - `output.weight` (or `token_embd.weight` when there is no output): Q8_0 if `n_embd` is
//!   not a multiple of the default type's block, else Q6_K unless the default is Q8_0;
//! - `token_embd.weight` with a separate output: the default type;
//! - Q4_K_M: `attn_v` and `ffn_down` get Q6_K on the layers where `use_more_bits` holds
//!   (first and last eighth, and every third in between); on a "70B" (80-layer qwen2)
//!   the remaining Q4_K `attn_v` become Q5_K;
//! - 8 experts (Mixtral's rules): `attn_v` and `attn_k` in Q8_0, with Q4_K_M `attn_output` Q5_K;
//! - a row length not divisible by the type's block falls back
//!   (Q4_K→Q5_0, Q5_K→Q5_1, Q6_K→Q8_0, and F16 when even that does not fit).

use super::presets::{Arch, Shape};
use crate::gguf::GgmlType;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// A llama.cpp file type (`llama-quantize` target) we can write directly.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum QuantMix {
    F16,
    Q8_0,
    Q4_0,
    Q4_1,
    Q4_K_M,
    Q5_K_M,
    Q6_K,
}

impl QuantMix {
    /// All mixes, in the order `--help` lists them.
    pub const ALL: [QuantMix; 7] = [
        QuantMix::F16,
        QuantMix::Q8_0,
        QuantMix::Q4_0,
        QuantMix::Q4_1,
        QuantMix::Q4_K_M,
        QuantMix::Q5_K_M,
        QuantMix::Q6_K,
    ];

    /// The name `llama-quantize` uses.
    pub fn name(self) -> &'static str {
        match self {
            QuantMix::F16 => "F16",
            QuantMix::Q8_0 => "Q8_0",
            QuantMix::Q4_0 => "Q4_0",
            QuantMix::Q4_1 => "Q4_1",
            QuantMix::Q4_K_M => "Q4_K_M",
            QuantMix::Q5_K_M => "Q5_K_M",
            QuantMix::Q6_K => "Q6_K",
        }
    }

    /// `general.file_type` value (`enum llama_ftype` in include/llama.h).
    pub fn file_type(self) -> u32 {
        match self {
            QuantMix::F16 => 1,
            QuantMix::Q8_0 => 7,
            QuantMix::Q4_0 => 2,
            QuantMix::Q4_1 => 3,
            QuantMix::Q4_K_M => 15,
            QuantMix::Q5_K_M => 17,
            QuantMix::Q6_K => 18,
        }
    }

    /// The type most weight matrices get (`llama_ftype_get_default_type`).
    pub fn default_type(self) -> GgmlType {
        match self {
            QuantMix::F16 => GgmlType::F16,
            QuantMix::Q8_0 => GgmlType::Q8_0,
            QuantMix::Q4_0 => GgmlType::Q4_0,
            QuantMix::Q4_1 => GgmlType::Q4_1,
            QuantMix::Q4_K_M => GgmlType::Q4_K,
            QuantMix::Q5_K_M => GgmlType::Q5_K,
            QuantMix::Q6_K => GgmlType::Q6_K,
        }
    }
}

impl fmt::Display for QuantMix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for QuantMix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        QuantMix::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<_> = QuantMix::ALL.iter().map(|m| m.name()).collect();
                format!("unknown quant mix {s:?}; known: {}", names.join(", "))
            })
    }
}

/// What a tensor is for: decides its content (random, zero, embedding rows, ...) and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TensorRole {
    TokenEmbd,
    Output,
    OutputNorm,
    AttnNorm,
    AttnQ,
    AttnK,
    AttnV,
    AttnQBias,
    AttnKBias,
    AttnVBias,
    AttnQNorm,
    AttnKNorm,
    AttnOut,
    FfnNorm,
    FfnGate,
    FfnUp,
    FfnDown,
    FfnGateInp,
    FfnGateExps,
    FfnUpExps,
    FfnDownExps,
}

impl TensorRole {
    /// Norm weights: written as ones so the norms are identities up to scale.
    pub fn is_norm(self) -> bool {
        matches!(
            self,
            TensorRole::OutputNorm
                | TensorRole::AttnNorm
                | TensorRole::AttnQNorm
                | TensorRole::AttnKNorm
                | TensorRole::FfnNorm
        )
    }

    /// Projections whose output is added to the residual stream: all-zero in `cycle`.
    pub fn writes_residual(self) -> bool {
        matches!(
            self,
            TensorRole::AttnOut | TensorRole::FfnDown | TensorRole::FfnDownExps
        )
    }
}

/// One tensor of the plan.
#[derive(Debug, Clone)]
pub struct PlannedTensor {
    pub name: String,
    /// ggml order: `dims[0]` is the row length.
    pub dims: Vec<u64>,
    pub role: TensorRole,
    /// Layer index, for block tensors.
    pub layer: Option<u32>,
    pub ty: GgmlType,
}

impl PlannedTensor {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Bytes of data (types are only chosen where the row length fits the block).
    pub fn n_bytes(&self) -> u64 {
        self.ty.tensor_bytes(self.n_elements()).unwrap_or(0)
    }
}

/// The tensors of `shape` in file order, typed by `mix`. With `write_output` the model gets a
/// separate `output.weight` even where the published model ties it to `token_embd`.
pub fn plan(shape: &Shape, mix: QuantMix, write_output: bool) -> Vec<PlannedTensor> {
    let has_output = write_output || !shape.tied_embeddings;
    let mut raw = vec![t(
        "token_embd.weight",
        &[shape.n_embd, shape.n_vocab],
        TensorRole::TokenEmbd,
        None,
    )];
    for il in 0..shape.n_layer {
        block_tensors(shape, il, &mut raw);
    }
    raw.push(t(
        "output_norm.weight",
        &[shape.n_embd],
        TensorRole::OutputNorm,
        None,
    ));
    if has_output {
        raw.push(t(
            "output.weight",
            &[shape.n_embd, shape.n_vocab],
            TensorRole::Output,
            None,
        ));
    }
    let mut typer = Typer::new(shape, mix, has_output);
    raw.into_iter()
        .map(|r| {
            let ty = typer.type_of(&r);
            PlannedTensor {
                name: r.name,
                dims: r.dims,
                role: r.role,
                layer: r.layer,
                ty,
            }
        })
        .collect()
}

/// A tensor before typing.
struct Raw {
    name: String,
    dims: Vec<u64>,
    role: TensorRole,
    layer: Option<u32>,
}

fn t(name: &str, dims: &[u64], role: TensorRole, layer: Option<u32>) -> Raw {
    Raw {
        name: name.to_string(),
        dims: dims.to_vec(),
        role,
        layer,
    }
}

/// The tensors of block `il` (`blk.N.*`), in the order the converter writes them.
fn block_tensors(s: &Shape, il: u32, out: &mut Vec<Raw>) {
    let b = |suffix: &str, dims: &[u64], role: TensorRole| {
        t(&format!("blk.{il}.{suffix}"), dims, role, Some(il))
    };
    let (e, q, kv) = (s.n_embd, s.q_dim(), s.kv_dim());
    out.push(b("attn_norm.weight", &[e], TensorRole::AttnNorm));
    out.push(b("attn_q.weight", &[e, q], TensorRole::AttnQ));
    out.push(b("attn_k.weight", &[e, kv], TensorRole::AttnK));
    out.push(b("attn_v.weight", &[e, kv], TensorRole::AttnV));
    match s.arch {
        Arch::Qwen2 => {
            out.push(b("attn_q.bias", &[q], TensorRole::AttnQBias));
            out.push(b("attn_k.bias", &[kv], TensorRole::AttnKBias));
            out.push(b("attn_v.bias", &[kv], TensorRole::AttnVBias));
        }
        Arch::Qwen3Moe => {
            out.push(b(
                "attn_q_norm.weight",
                &[s.head_dim],
                TensorRole::AttnQNorm,
            ));
            out.push(b(
                "attn_k_norm.weight",
                &[s.head_dim],
                TensorRole::AttnKNorm,
            ));
        }
    }
    out.push(b("attn_output.weight", &[q, e], TensorRole::AttnOut));
    out.push(b("ffn_norm.weight", &[e], TensorRole::FfnNorm));
    match s.arch {
        Arch::Qwen2 => {
            out.push(b("ffn_gate.weight", &[e, s.n_ff], TensorRole::FfnGate));
            out.push(b("ffn_up.weight", &[e, s.n_ff], TensorRole::FfnUp));
            out.push(b("ffn_down.weight", &[s.n_ff, e], TensorRole::FfnDown));
        }
        Arch::Qwen3Moe => {
            let (f, x) = (s.n_ff_exp, s.n_expert as u64);
            out.push(b("ffn_gate_inp.weight", &[e, x], TensorRole::FfnGateInp));
            out.push(b(
                "ffn_gate_exps.weight",
                &[e, f, x],
                TensorRole::FfnGateExps,
            ));
            out.push(b("ffn_up_exps.weight", &[e, f, x], TensorRole::FfnUpExps));
            out.push(b(
                "ffn_down_exps.weight",
                &[f, e, x],
                TensorRole::FfnDownExps,
            ));
        }
    }
}

/// The quantizer's per-tensor type choice, with its running counters.
struct Typer {
    mix: QuantMix,
    has_output: bool,
    n_layer: u32,
    /// `qs.model.type == LLM_TYPE_70B`: qwen2 with 80 layers.
    is_70b: bool,
    /// `n_expert == 8` (Mixtral's rules): attn_v and attn_k in Q8_0, attn_output Q5_K.
    eight_experts: bool,
    i_attention_wv: u32,
    i_ffn_down: u32,
}

/// `use_more_bits` of llama-quant.cpp.
pub fn use_more_bits(i_layer: u32, n_layers: u32) -> bool {
    let (i, n) = (i_layer as i64, n_layers as i64);
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

impl Typer {
    fn new(shape: &Shape, mix: QuantMix, has_output: bool) -> Typer {
        Typer {
            mix,
            has_output,
            n_layer: shape.n_layer,
            is_70b: shape.arch == Arch::Qwen2 && shape.n_layer == 80,
            eight_experts: shape.n_expert == 8,
            i_attention_wv: 0,
            i_ffn_down: 0,
        }
    }

    fn type_of(&mut self, r: &Raw) -> GgmlType {
        if r.dims.len() < 2 || r.role == TensorRole::FfnGateInp {
            return GgmlType::F32;
        }
        if self.mix == QuantMix::F16 {
            return GgmlType::F16;
        }
        let chosen = self.mixed_type(r);
        fallback(chosen, r.dims[0])
    }

    fn mixed_type(&mut self, r: &Raw) -> GgmlType {
        let default = self.mix.default_type();
        let is_output =
            r.role == TensorRole::Output || (!self.has_output && r.role == TensorRole::TokenEmbd);
        if is_output {
            return output_type(default, r.dims[0]);
        }
        // llama-quant.cpp gives Q4_K_M and Q5_K_M the same "more bits" rules.
        let k_m = matches!(self.mix, QuantMix::Q4_K_M | QuantMix::Q5_K_M);
        let q4_k_m = self.mix == QuantMix::Q4_K_M;
        match r.role {
            TensorRole::AttnV => {
                let more = use_more_bits(self.i_attention_wv, self.n_layer);
                self.i_attention_wv += 1;
                match (k_m, more) {
                    _ if self.eight_experts => GgmlType::Q8_0,
                    (true, true) => GgmlType::Q6_K,
                    (true, false) if self.is_70b && q4_k_m => GgmlType::Q5_K,
                    _ => default,
                }
            }
            TensorRole::AttnK if self.eight_experts => GgmlType::Q8_0,
            TensorRole::AttnOut if self.eight_experts && q4_k_m => GgmlType::Q5_K,
            TensorRole::FfnDown | TensorRole::FfnDownExps => {
                // MoE: the layer comes from the name; dense: the running counter. Same here.
                let i_layer = r.layer.unwrap_or(self.i_ffn_down);
                self.i_ffn_down += 1;
                if k_m && use_more_bits(i_layer, self.n_layer) {
                    GgmlType::Q6_K
                } else {
                    default
                }
            }
            _ => default,
        }
    }
}

/// Type of `output.weight` (or a tied `token_embd`) under a quantized default type.
fn output_type(default: GgmlType, row_len: u64) -> GgmlType {
    if !row_len.is_multiple_of(default.block_size()) {
        GgmlType::Q8_0
    } else if default != GgmlType::Q8_0 {
        GgmlType::Q6_K
    } else {
        GgmlType::Q8_0
    }
}

/// `tensor_type_fallback`: a compatible type when the row length does not fit the block.
fn fallback(ty: GgmlType, row_len: u64) -> GgmlType {
    if row_len.is_multiple_of(ty.block_size()) {
        return ty;
    }
    let alt = match ty {
        GgmlType::Q4_K => GgmlType::Q5_0,
        GgmlType::Q5_K => GgmlType::Q5_1,
        GgmlType::Q6_K => GgmlType::Q8_0,
        other => other,
    };
    if row_len.is_multiple_of(alt.block_size()) {
        alt
    } else {
        GgmlType::F16
    }
}

/// Total data bytes of a plan.
pub fn tensor_bytes(plan: &[PlannedTensor]) -> u64 {
    plan.iter().map(|p| p.n_bytes()).sum()
}

/// Total elements (parameters) of a plan.
pub fn n_params(plan: &[PlannedTensor]) -> u64 {
    plan.iter().map(|p| p.n_elements()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::presets::by_name;

    fn types_of(plan: &[PlannedTensor], suffix: &str) -> Vec<GgmlType> {
        plan.iter()
            .filter(|p| p.name == suffix || p.name.ends_with(&format!(".{suffix}")))
            .map(|p| p.ty)
            .collect()
    }

    #[test]
    fn q4_k_m_on_7b_matches_llama_quantize_layout() {
        let shape = by_name("qwen2.5-7b").unwrap().shape;
        let p = plan(&shape, QuantMix::Q4_K_M, false);
        assert_eq!(types_of(&p, "output.weight"), vec![GgmlType::Q6_K]);
        assert_eq!(types_of(&p, "token_embd.weight"), vec![GgmlType::Q4_K]);
        assert_eq!(types_of(&p, "attn_q.bias"), vec![GgmlType::F32; 28]);
        // 28 layers: use_more_bits holds for 0..3, 24..28 and (i-3)%3==2 in between.
        let v = types_of(&p, "attn_v.weight");
        let q6: Vec<usize> = (0..28).filter(|&i| v[i] == GgmlType::Q6_K).collect();
        assert_eq!(q6, vec![0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27]);
        assert_eq!(types_of(&p, "ffn_down.weight"), v);
        assert!(types_of(&p, "ffn_up.weight")
            .iter()
            .all(|&t| t == GgmlType::Q4_K));
    }

    #[test]
    fn tied_0_5b_uses_q8_0_and_q5_0_fallbacks() {
        // n_embd 896 is not a multiple of 256: output Q8_0, Q4_K rows of 896 fall back to Q5_0.
        let shape = by_name("qwen2.5-0.5b").unwrap().shape;
        let tied = plan(&shape, QuantMix::Q4_K_M, false);
        assert_eq!(types_of(&tied, "token_embd.weight"), vec![GgmlType::Q8_0]);
        assert!(types_of(&tied, "output.weight").is_empty());
        assert_eq!(types_of(&tied, "attn_q.weight")[3], GgmlType::Q5_0);
        let untied = plan(&shape, QuantMix::Q4_K_M, true);
        assert_eq!(types_of(&untied, "token_embd.weight"), vec![GgmlType::Q5_0]);
        assert_eq!(types_of(&untied, "output.weight"), vec![GgmlType::Q8_0]);
    }

    #[test]
    fn moe_router_stays_f32_and_experts_are_3d() {
        let shape = by_name("qwen3-30b-a3b").unwrap().shape;
        let p = plan(&shape, QuantMix::Q8_0, false);
        assert!(types_of(&p, "ffn_gate_inp.weight")
            .iter()
            .all(|&t| t == GgmlType::F32));
        let down = p
            .iter()
            .find(|t| t.name == "blk.0.ffn_down_exps.weight")
            .unwrap();
        assert_eq!(down.dims, vec![768, 2048, 128]);
        assert_eq!(types_of(&p, "output.weight"), vec![GgmlType::Q8_0]);
    }

    #[test]
    fn plan_params_match_published_counts() {
        for preset in crate::synth::presets::all() {
            let n = n_params(&plan(&preset.shape, QuantMix::F16, false)) as f64;
            let rel = (n / preset.published_params as f64 - 1.0).abs();
            assert!(
                rel < 0.01,
                "{}: {n} vs {}",
                preset.name,
                preset.published_params
            );
        }
    }

    #[test]
    fn mix_names_round_trip() {
        for m in QuantMix::ALL {
            assert_eq!(m.name().parse::<QuantMix>().unwrap(), m);
        }
        assert!("Q3_K_XL"
            .parse::<QuantMix>()
            .unwrap_err()
            .contains("Q4_K_M"));
    }
}
