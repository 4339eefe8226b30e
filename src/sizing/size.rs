//! The `bench size` report: per model, the guide's formula next to the exact figures of the
//! GGUF file, the formula's error, KV cache at a context, active bytes per token and the
//! quant mix.

use super::exact::{ExactModel, TypeBytes};
use super::plan::formula_bytes;
use crate::guide;
use crate::util::output::Table;
use serde::Serialize;

/// Context used for the KV figure when `--ctx` is not given: the model's own context
/// length, capped here (a 128k-context model would otherwise report a KV cache no bench
/// run allocates; the profiles use 4096-32768).
pub const DEFAULT_CTX_CAP: u64 = 4096;

/// One model's size report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizeReport {
    /// Exact figures of the file.
    pub exact: ExactModel,
    /// Parameters, billions (exact count / 10^9).
    pub params_b: f64,
    /// The quant the formula was applied with.
    pub formula_quant: Option<String>,
    /// The guide row's nominal bits per weight for that quant.
    pub guide_bits_per_weight: Option<f64>,
    /// The guide's formula estimate, bytes (`params x multiplier x 1.1` x 10^9).
    pub formula_bytes: Option<u64>,
    /// (formula - file bytes) / file bytes x 100.
    pub formula_error_pct: Option<f64>,
    /// Context of the KV figure, tokens.
    pub kv_ctx: u64,
    /// KV-cache bytes at `kv_ctx` with an f16 cache.
    pub kv_bytes: u64,
    /// The guide's expected decode range for this size and quant (low, high, row).
    pub guide_expected_tps: Option<(f64, f64, String)>,
}

/// Builds the report of one model; `ctx` overrides the default KV context.
pub fn report(exact: ExactModel, ctx: Option<u64>) -> SizeReport {
    let params_b = exact.n_params as f64 / 1e9;
    let quant = exact
        .quant
        .clone()
        .filter(|q| guide::quant_row(q).is_some());
    // A file without tensors (a vocab-only GGUF) has nothing for the formula to estimate.
    let formula = quant
        .as_deref()
        .filter(|_| exact.n_params > 0)
        .and_then(|q| formula_bytes(params_b, q));
    let error =
        formula.map(|f| (f as f64 - exact.file_bytes as f64) / exact.file_bytes as f64 * 100.0);
    let kv_ctx = ctx.unwrap_or_else(|| {
        exact
            .context_length
            .filter(|&c| c > 0)
            .unwrap_or(DEFAULT_CTX_CAP)
            .min(DEFAULT_CTX_CAP)
    });
    let moe = exact.experts.is_some();
    let expected = quant
        .as_deref()
        .and_then(|q| guide::Expectations::guide().expected(params_b, q, moe));
    SizeReport {
        params_b,
        guide_bits_per_weight: quant
            .as_deref()
            .and_then(guide::quant_row)
            .map(|r| r.bits_per_weight),
        formula_quant: quant,
        formula_bytes: formula,
        formula_error_pct: error,
        kv_ctx,
        kv_bytes: exact.kv_bytes_per_token_f16 * kv_ctx,
        guide_expected_tps: expected.map(|r| (r.low_tps, r.high_tps, r.label)),
        exact,
    }
}

/// Bytes in the largest binary unit that keeps the figure above 1 (`4.36 GiB`, `2.84 MiB`).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

/// Exact bytes, the guide's decimal GB, and the binary unit.
fn exact_bytes(bytes: u64) -> String {
    format!(
        "{bytes} B = {:.3} GB = {}",
        bytes as f64 / 1e9,
        human_bytes(bytes)
    )
}

fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map_or_else(|| "-".to_string(), f)
}

/// The tables of one report: its facts (titled with the file) and its quant mix.
pub fn tables(r: &SizeReport) -> [Table; 2] {
    let e = &r.exact;
    let mut t = Table::new(["", "value"]).titled(e.path.display().to_string());
    for (k, v) in fact_rows(r) {
        t.push(vec![k.to_string(), v]);
    }
    [t, mix_table(&e.by_type, e.tensor_bytes)]
}

fn fact_rows(r: &SizeReport) -> Vec<(&'static str, String)> {
    let e = &r.exact;
    vec![
        (
            "architecture",
            e.architecture.clone().unwrap_or_else(|| "-".into()),
        ),
        ("name", e.name.clone().unwrap_or_else(|| "-".into())),
        ("shards", e.shards.to_string()),
        (
            "quant (file type)",
            e.quant.clone().unwrap_or_else(|| "-".into()),
        ),
        (
            "parameters (exact)",
            format!("{} ({:.3} billion)", e.n_params, r.params_b),
        ),
        ("file bytes (exact)", exact_bytes(e.file_bytes)),
        ("tensor bytes (exact)", exact_bytes(e.tensor_bytes)),
        (
            "bits per weight",
            format!(
                "{:.3} (guide: {})",
                e.bits_per_weight,
                opt(r.guide_bits_per_weight, |b| format!("{b}"))
            ),
        ),
        ("guide formula", opt(r.formula_bytes, exact_bytes)),
        (
            "formula error",
            opt(r.formula_error_pct, |p| format!("{p:+.1}% of the file")),
        ),
        (
            "KV cache (f16)",
            format!(
                "{} at ctx {} ({} B/token)",
                human_bytes(r.kv_bytes),
                r.kv_ctx,
                e.kv_bytes_per_token_f16
            ),
        ),
        (
            "experts (total/used)",
            opt(e.experts, |(n, u)| format!("{n}/{u}")),
        ),
        (
            "active params/token",
            format!(
                "{} ({:.3} billion)",
                e.active_params,
                e.active_params as f64 / 1e9
            ),
        ),
        ("active bytes/token", exact_bytes(e.active_bytes_per_token)),
        (
            "guide expected t/s",
            opt(r.guide_expected_tps.as_ref(), |(lo, hi, l)| {
                format!("{lo}-{hi} (row {l})")
            }),
        ),
    ]
}

fn mix_table(mix: &[TypeBytes], tensor_bytes: u64) -> Table {
    let mut t = Table::new([
        "type",
        "tensors",
        "weights",
        "bytes",
        "share",
        "bits/weight",
    ]);
    for m in mix {
        let share = m.bytes as f64 / tensor_bytes.max(1) as f64 * 100.0;
        let bpw = m.bytes as f64 * 8.0 / m.n_elements.max(1) as f64;
        t.push(vec![
            m.ggml_type.clone(),
            m.n_tensors.to_string(),
            m.n_elements.to_string(),
            human_bytes(m.bytes),
            format!("{share:.1}%"),
            format!("{bpw:.3}"),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn q4_7b() -> ExactModel {
        ExactModel {
            path: PathBuf::from("m.gguf"),
            shards: 1,
            architecture: Some("qwen2".into()),
            name: None,
            quant: Some("Q4_K_M".into()),
            n_params: 7_615_616_512,
            file_bytes: 4_683_073_504,
            tensor_bytes: 4_677_000_000,
            bits_per_weight: 4.91,
            by_type: vec![TypeBytes {
                ggml_type: "Q4_K".into(),
                n_tensors: 1,
                n_elements: 8,
                bytes: 4,
            }],
            context_length: Some(32_768),
            kv_bytes_per_token_f16: 57_344,
            experts: None,
            active_params: 7_000_000_000,
            active_bytes_per_token: 4_000_000_000,
        }
    }

    #[test]
    fn formula_error_is_relative_to_the_file() {
        let r = report(q4_7b(), None);
        // 7.6156 x 0.5 x 1.1 = 4.1886 GB against a 4.683 GB file: about -10.6%.
        let err = r.formula_error_pct.unwrap();
        assert!((-10.7..-10.5).contains(&err), "{err}");
        assert_eq!(r.kv_ctx, DEFAULT_CTX_CAP);
        assert_eq!(r.kv_bytes, 57_344 * 4096);
        assert_eq!(r.guide_expected_tps.as_ref().unwrap().2, "7B Q4");
        assert_eq!(report(q4_7b(), Some(100)).kv_bytes, 5_734_400);
    }

    #[test]
    fn human_bytes_picks_the_unit() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(2_974_240), "2.84 MiB");
        assert_eq!(human_bytes(4_683_073_504), "4.36 GiB");
    }

    #[test]
    fn a_quant_outside_the_guide_has_no_formula() {
        let mut m = q4_7b();
        m.quant = Some("F32".into());
        let r = report(m, None);
        assert_eq!(r.formula_bytes, None);
        let [facts, _] = tables(&r);
        assert!(facts
            .rows
            .iter()
            .any(|row| row[0] == "guide formula" && row[1] == "-"));
    }
}
