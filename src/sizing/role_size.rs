//! The size of one profile role for `bench plan`: GGUF-exact weights where the file is
//! present and reads, else the guide's formula (or the synthetic preset's layout), and its
//! KV cache at the role's context.
//!
//! Units: model and KV sizes are bytes, shown in GiB; the guide's formula (`params x
//! multiplier x 1.1`, in 10^9 bytes) is turned into bytes.

use super::exact::{self, ExactModel};
use crate::guide;
use crate::profile::{Located, Role};
use crate::synth;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Bytes per GiB.
pub const GIB: f64 = (1u64 << 30) as f64;

/// Where a role's weight bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SizeSource {
    /// The GGUF file's exact bytes.
    GgufExact,
    /// The guide's formula from the profile's `params_b` (or the preset's) and quant.
    GuideFormula,
    /// The synthetic layout ([`layout_bytes`]): with `--layout`, or when a role has no
    /// other size (a custom `[roles.synth]` shape).
    SynthLayout,
    /// Neither: no file and no parameter count.
    Unknown,
}

/// Where a role's KV-cache bytes per token come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KvSource {
    /// The GGUF file's attention shape.
    GgufExact,
    /// The synthetic preset's published shape, or the `[roles.synth]` shape.
    SynthShape,
    /// The role's `kv_bytes_per_token` in the profile.
    Profile,
    /// No shape known: [`KV_ESTIMATE_BYTES_PER_B`] per billion parameters, capped.
    Estimate,
}

/// KV bytes per token per billion parameters when no shape is known (fits the Qwen2.5
/// 7B-72B shapes within a factor of two), floored at a 0.5B model's and capped at a 72B's.
pub const KV_ESTIMATE_BYTES_PER_B: f64 = 8192.0;
const KV_ESTIMATE_MIN: u64 = 12_288;
const KV_ESTIMATE_MAX: u64 = 327_680;

/// The size of one role.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoleSize {
    /// The model path: the file found (by its name, or a case or publisher variant of
    /// it), else the path looked for (models dir joined with `model`).
    pub model_path: Option<PathBuf>,
    /// True when the file exists.
    pub model_found: bool,
    /// Why the present file could not be read (then the formula is used).
    pub read_error: Option<String>,
    /// The file's own quant (`general.file_type`), when the file was read.
    pub file_quant: Option<String>,
    /// Weight bytes (GGUF file bytes, or the formula's estimate).
    pub weights_bytes: Option<u64>,
    /// Where `weights_bytes` comes from.
    pub weights_source: SizeSource,
    /// The guide's formula for comparison, bytes.
    pub formula_bytes: Option<u64>,
    /// Tensor bytes of the synthetic preset's llama-quantize layout ([`layout_bytes`]).
    pub layout_bytes: Option<u64>,
    /// KV-cache bytes per token (f16 cache).
    pub kv_bytes_per_token: u64,
    /// Where the KV figure comes from.
    pub kv_source: KvSource,
    /// KV-cache bytes at the role's `ctx` (llama-server's `-c`, shared by its slots).
    pub kv_bytes: u64,
    /// Weights plus KV, bytes (weights 0 when unknown).
    pub total_bytes: u64,
}

/// The guide's formula in bytes (`params_b x multiplier x 1.1` x 10^9).
pub fn formula_bytes(params_b: f64, quant: &str) -> Option<u64> {
    guide::formula_size_gb(params_b, quant).map(|gb| (gb * 1e9).round() as u64)
}

fn estimate_kv_per_token(params_b: Option<f64>) -> u64 {
    let est = (params_b.unwrap_or(7.0) * KV_ESTIMATE_BYTES_PER_B) as u64;
    est.clamp(KV_ESTIMATE_MIN, KV_ESTIMATE_MAX)
}

/// The stand-in `bench run --synthetic` would write for a role with a `[roles.synth]`
/// table, validated as `bench synth` validates its options.
fn synth_recipe(role: &Role) -> Option<synth::Recipe> {
    let overrides = role.synth.as_ref()?;
    synth::SynthArgs::for_role(role.quant.as_deref()?, role.synthetic.as_deref(), overrides)
        .recipe()
        .ok()
}

/// The synthetic layout of a role: with `[roles.synth]`, the tensors of the stand-in that
/// would be written; else the `synthetic` preset as published. `None` when synth knows
/// neither (or not the quant mix).
fn synth_layout(role: &Role) -> Option<(u64, u64)> {
    let (shape, tensors) = match synth_recipe(role) {
        Some(recipe) => (recipe.shape.clone(), recipe.plan()),
        None => {
            let preset = synth::presets::by_name(role.synthetic.as_deref()?)?;
            let mix: synth::QuantMix = role.quant.as_deref()?.parse().ok()?;
            let tensors = synth::plan::plan(&preset.shape, mix, false);
            (preset.shape, tensors)
        }
    };
    let kv_per_token =
        u64::from(shape.n_layer) * u64::from(shape.n_head_kv) * shape.head_dim * 2 * 2;
    Some((synth::plan::tensor_bytes(&tensors), kv_per_token))
}

/// Exact tensor bytes of the role's synthetic layout ([`synth_layout`]): the preset's
/// tensors typed by llama-quantize's rules for the role's quant (`synth::plan`), or the
/// custom `[roles.synth]` stand-in's. Unlike the formula this counts the Q6_K/Q8_0 tensors
/// of a K-quant mix and the embedding and output matrices as they are stored.
pub fn layout_bytes(role: &Role) -> Option<u64> {
    synth_layout(role).map(|(bytes, _)| bytes)
}

/// Sizes one role: GGUF-exact when `models_dir/model` exists and reads, else the formula
/// (or, with `by_layout`, the preset's layout where there is one).
pub fn size_role(role: &Role, models_dir: &Path, by_layout: bool) -> RoleSize {
    let (model_path, model_found) = match role.locate_model(models_dir) {
        Some(Located::Found(path, _)) => (Some(path), true),
        Some(Located::Absent { looked_for, .. }) => (Some(looked_for), false),
        None => (None, false),
    };
    let (exact, read_error) = match (&model_path, model_found) {
        (Some(p), true) => match exact::read(p) {
            Ok(m) => (Some(m), None),
            Err(e) => (None, Some(format!("{e:#}"))),
        },
        _ => (None, None),
    };
    let size = size_from(role, model_path, model_found, exact.as_ref(), read_error);
    let formula_only = size.weights_source == SizeSource::GuideFormula;
    let use_layout = (by_layout && formula_only) || size.weights_source == SizeSource::Unknown;
    match size.layout_bytes {
        Some(layout) if use_layout => RoleSize {
            weights_bytes: Some(layout),
            weights_source: SizeSource::SynthLayout,
            total_bytes: layout + size.kv_bytes,
            ..size
        },
        _ => size,
    }
}

fn size_from(
    role: &Role,
    model_path: Option<PathBuf>,
    model_found: bool,
    exact: Option<&ExactModel>,
    read_error: Option<String>,
) -> RoleSize {
    let params_b = exact
        .map(|m| m.n_params as f64 / 1e9)
        .or(role.nominal_params_b());
    // The file's own type when there is a file; the profile's label only sizes a role without.
    let quant = exact
        .and_then(|m| m.quant.clone())
        .or_else(|| role.quant.clone());
    let formula = params_b.zip(quant).and_then(|(p, q)| formula_bytes(p, &q));
    let (weights_bytes, weights_source) = match (exact, formula) {
        (Some(m), _) => (Some(m.file_bytes), SizeSource::GgufExact),
        (None, Some(f)) => (Some(f), SizeSource::GuideFormula),
        (None, None) => (None, SizeSource::Unknown),
    };
    let layout = synth_layout(role);
    let (kv_bytes_per_token, kv_source) = match (exact, layout, role.kv_bytes_per_token) {
        (Some(m), _, _) => (m.kv_bytes_per_token_f16, KvSource::GgufExact),
        (None, Some((_, kv)), _) => (kv, KvSource::SynthShape),
        (None, None, Some(k)) => (k, KvSource::Profile),
        (None, None, None) => (estimate_kv_per_token(params_b), KvSource::Estimate),
    };
    let kv_bytes = kv_bytes_per_token * u64::from(role.ctx);
    RoleSize {
        model_path,
        model_found,
        read_error,
        file_quant: exact.and_then(|m| m.quant.clone()),
        weights_bytes,
        weights_source,
        formula_bytes: formula,
        layout_bytes: layout.map(|(bytes, _)| bytes),
        kv_bytes_per_token,
        kv_source,
        kv_bytes,
        total_bytes: weights_bytes.unwrap_or(0) + kv_bytes,
    }
}
