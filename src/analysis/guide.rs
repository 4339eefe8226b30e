//! The parts of the model sizing guide (/work/shared/model-sizing-guide.md, "Performance
//! Expectations" and "Model Size Estimation") that calibration predicts or checks, with what
//! the guide leaves implicit made explicit: the active parameters per token of each row of
//! "Inference Speed by Model Size", and the effective bits per weight of each quant.
//!
//! Why a separate view: `profile::guide` (sizing branch) holds the guide's tables as data for
//! the driver; calibration additionally needs active bytes per token for rows that were never
//! measured. The expected ranges here are the guide's numbers verbatim.

use serde::Serialize;

/// One row of the guide's "Inference Speed by Model Size" table, plus its active parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpeedRow {
    /// The guide's "Model Size" cell, e.g. "235B MoE".
    pub size_label: &'static str,
    /// The guide's "Quant" cell ("Q8" or "Q4").
    pub quant_label: &'static str,
    /// The quant the row stands for in llama.cpp terms.
    pub quant: &'static str,
    /// Total parameters, billions.
    pub params_b: f64,
    /// Parameters read per decoded token, billions (see [`SPEED_ROWS`] for the derivation).
    pub active_params_b: f64,
    /// Experts used per token for MoE rows (the row's reduction), `None` for dense rows.
    pub experts_used: Option<u32>,
    /// The guide's expected decode rate, tokens/s, low end.
    pub expected_low_tps: f64,
    /// The guide's expected decode rate, tokens/s, high end.
    pub expected_high_tps: f64,
    /// The guide's "Notes" cell.
    pub note: &'static str,
}

impl SpeedRow {
    /// Active bytes per decoded token: active params x effective bits per weight / 8.
    pub fn active_bytes_per_token(&self) -> f64 {
        self.active_params_b * 1e9 * effective_bits_per_weight(self.quant) / 8.0
    }

    /// True for MoE rows.
    pub fn is_moe(&self) -> bool {
        self.experts_used.is_some()
    }
}

/// Active parameters of a MoE model when `used` experts run per token: the always-active part
/// (attention, router, output head) plus `used` experts' FFNs over all layers.
pub fn moe_active_params_b(always_b: f64, per_expert_b: f64, used: u32) -> f64 {
    always_b + per_expert_b * used as f64
}

// Qwen3-235B-A22B (config.json: hidden 4096, 94 layers, 64 q / 4 kv heads of 128, 128 experts,
// moe_intermediate 1536, vocab 151936): per expert 3*4096*1536*94 = 1.774B; attention
// (2*4096*8192 + 2*4096*512)*94 = 6.70B plus output head 0.62B = 7.32B always active.
// With 8 experts that is 21.5B ("A22B"); the guide's row runs MoE4.
const QWEN3_235B_ALWAYS_B: f64 = 7.32;
const QWEN3_235B_PER_EXPERT_B: f64 = 1.774;
// Qwen3-Coder-480B-A35B (hidden 6144, 62 layers, 96 q / 8 kv heads of 128, 160 experts,
// moe_intermediate 2560): per expert 3*6144*2560*62 = 2.926B; attention
// (2*6144*12288 + 2*6144*1024)*62 = 10.14B plus output head 0.93B = 11.07B always active.
// With 8 experts that is 34.5B ("A35B"); the guide's row runs MoE3.
const QWEN3_480B_ALWAYS_B: f64 = 11.07;
const QWEN3_480B_PER_EXPERT_B: f64 = 2.926;

/// The guide's "Inference Speed by Model Size" table (stated "with AVX-512"). Dense rows read
/// all their parameters per token; MoE rows are computed with [`moe_active_params_b`].
pub fn speed_rows() -> Vec<SpeedRow> {
    let dense = |size_label, quant_label, quant, params_b, low, high, note| SpeedRow {
        size_label,
        quant_label,
        quant,
        params_b,
        active_params_b: params_b,
        experts_used: None,
        expected_low_tps: low,
        expected_high_tps: high,
        note,
    };
    vec![
        dense("0.5B", "Q8", "Q8_0", 0.5, 80.0, 120.0, "Draft models"),
        dense("1.5B", "Q4", "Q4_K_M", 1.5, 50.0, 70.0, "Fast workers"),
        dense("7B", "Q4", "Q4_K_M", 7.0, 25.0, 40.0, "Workers"),
        dense("14B", "Q4", "Q4_K_M", 14.0, 15.0, 25.0, ""),
        dense("32B", "Q4", "Q4_K_M", 32.0, 8.0, 15.0, ""),
        dense("70B", "Q4", "Q4_K_M", 70.0, 4.0, 8.0, ""),
        SpeedRow {
            size_label: "235B MoE",
            quant_label: "Q4",
            quant: "Q4_K_M",
            params_b: 235.0,
            active_params_b: moe_active_params_b(QWEN3_235B_ALWAYS_B, QWEN3_235B_PER_EXPERT_B, 4),
            experts_used: Some(4),
            expected_low_tps: 5.0,
            expected_high_tps: 7.0,
            note: "With MoE4 reduction",
        },
        SpeedRow {
            size_label: "480B MoE",
            quant_label: "Q4",
            quant: "Q4_K_M",
            params_b: 480.0,
            active_params_b: moe_active_params_b(QWEN3_480B_ALWAYS_B, QWEN3_480B_PER_EXPERT_B, 3),
            experts_used: Some(3),
            expected_low_tps: 8.0,
            expected_high_tps: 12.0,
            note: "With MoE3 reduction",
        },
    ]
}

/// One row of the guide's "Acceleration Methods" table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccelRow {
    /// The guide's method name.
    pub method: &'static str,
    /// Mode kind this row stands for: "spec", "lookup", "moe", "spec+lookup".
    pub kind: &'static str,
    /// Typical speedup, low end.
    pub low: f64,
    /// Typical speedup, high end.
    pub high: f64,
}

/// The guide's "Acceleration Methods" table.
pub fn accel_rows() -> Vec<AccelRow> {
    vec![
        AccelRow {
            method: "Speculative Decoding",
            kind: "spec",
            low: 3.0,
            high: 11.0,
        },
        AccelRow {
            method: "Prompt Lookup",
            kind: "lookup",
            low: 1.5,
            high: 12.0,
        },
        AccelRow {
            method: "MoE Expert Reduction",
            kind: "moe",
            low: 1.5,
            high: 2.0,
        },
        AccelRow {
            method: "Combined Spec+Lookup",
            kind: "spec+lookup",
            low: 5.0,
            high: 12.0,
        },
    ]
}

/// The guide's "Quantization Impact" multiplier (GB per billion parameters before the 1.1
/// factor); `None` for a quant the table does not list.
pub fn quant_multiplier(quant: &str) -> Option<f64> {
    let q = quant.to_ascii_uppercase();
    let m = match family(&q).as_str() {
        "F16" | "BF16" => 2.0,
        "Q8" => 1.0,
        "Q6" => 0.75,
        "Q5" => 0.625,
        "Q4" => 0.5,
        "Q3" => 0.375,
        "Q2" => 0.25,
        _ => return None,
    };
    Some(m)
}

/// The guide's "Size Formula": GB = params (B) x multiplier x 1.1.
pub fn guide_size_gb(params_b: f64, quant: &str) -> Option<f64> {
    Some(params_b * quant_multiplier(quant)? * 1.1)
}

/// Effective bits per weight of a llama.cpp quant as written to GGUF, block scales included
/// (ggml block sizes: Q8_0 34 bytes / 32 weights = 8.5; Q6_K 6.5625; Q4_K 4.5; K-quant "_M"
/// mixes keep some tensors at a higher type: llama.cpp reports about 4.85 for Q4_K_M and 5.7
/// for Q5_K_M on 7B-class models). Unknown quants fall back to the family's nominal bits.
pub fn effective_bits_per_weight(quant: &str) -> f64 {
    match quant.to_ascii_uppercase().as_str() {
        "F32" => 32.0,
        "F16" | "BF16" => 16.0,
        "Q8_0" => 8.5,
        "Q6_K" => 6.5625,
        "Q5_K_M" => 5.7,
        "Q5_0" | "Q5_K_S" => 5.5,
        "Q4_K_M" => 4.85,
        "Q4_0" | "Q4_K_S" | "Q4_K" => 4.5,
        "Q3_K_M" => 3.9,
        "Q2_K" => 3.35,
        other => family_bits(&family(other)).unwrap_or(16.0),
    }
}

fn family_bits(family: &str) -> Option<f64> {
    let digits: String = family.chars().filter(|c| c.is_ascii_digit()).collect();
    digits.parse::<f64>().ok()
}

/// Quant family used to group fits: "F32", "F16", "BF16", or "Q<bits>" (Q4_K_M, IQ4_XS and
/// MXFP4 are all "Q4"); anything else is returned upper-cased.
pub fn family(quant: &str) -> String {
    let q = quant.trim().to_ascii_uppercase();
    if q == "F32" || q == "F16" || q == "BF16" {
        return q;
    }
    if q == "MXFP4" {
        return "Q4".into();
    }
    let rest = q
        .strip_prefix("IQ")
        .or_else(|| q.strip_prefix('Q'))
        .or_else(|| q.strip_prefix("TQ"));
    match rest
        .and_then(|r| r.chars().next())
        .filter(|c| c.is_ascii_digit())
    {
        Some(d) => format!("Q{d}"),
        None => q,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moe_rows_reproduce_the_model_names() {
        // At the models' default 8 experts the derivation gives A22B and A35B.
        let a22 = moe_active_params_b(QWEN3_235B_ALWAYS_B, QWEN3_235B_PER_EXPERT_B, 8);
        let a35 = moe_active_params_b(QWEN3_480B_ALWAYS_B, QWEN3_480B_PER_EXPERT_B, 8);
        assert!((a22 - 21.5).abs() < 0.3, "{a22}");
        assert!((a35 - 34.5).abs() < 0.3, "{a35}");
        let rows = speed_rows();
        assert_eq!(rows.len(), 8);
        assert!((rows[6].active_params_b - 14.4).abs() < 0.1);
        assert!((rows[7].active_params_b - 19.85).abs() < 0.1);
    }

    #[test]
    fn ranges_match_the_profile_guide_tables() {
        use crate::profile::guide as pg;
        let ours = speed_rows();
        assert_eq!(ours.len(), pg::SPEEDS.len());
        for (o, t) in ours.iter().zip(pg::SPEEDS.iter()) {
            assert_eq!(format!("{} {}", o.size_label, o.quant_label), t.label);
            assert_eq!((o.params_b, o.is_moe()), (t.params_b, t.moe));
            assert_eq!(
                (o.expected_low_tps, o.expected_high_tps),
                (t.low_tps, t.high_tps)
            );
        }
        for (o, t) in accel_rows().iter().zip(pg::ACCELERATIONS.iter()) {
            assert_eq!(
                (o.method, o.low, o.high),
                (t.method, t.low_speedup, t.high_speedup)
            );
        }
        for q in [
            "F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "IQ4_XS", "Q3_K_M", "Q2_K",
        ] {
            assert_eq!(guide_size_gb(7.0, q), pg::formula_size_gb(7.0, q), "{q}");
        }
    }

    #[test]
    fn active_bytes_use_effective_bits() {
        let r = &speed_rows()[2]; // 7B Q4_K_M
        assert!((r.active_bytes_per_token() - 7e9 * 4.85 / 8.0).abs() < 1.0);
    }

    #[test]
    fn families_and_size_formula() {
        assert_eq!(family("Q4_K_M"), "Q4");
        assert_eq!(family("iq4_xs"), "Q4");
        assert_eq!(family("MXFP4"), "Q4");
        assert_eq!(family("Q8_0"), "Q8");
        assert_eq!(family("F16"), "F16");
        // Guide example: Qwen2.5-32B Q4_K_M -> 32 x 0.5 x 1.1 = 17.6 (~18 GB).
        assert!((guide_size_gb(32.0, "Q4_K_M").unwrap() - 17.6).abs() < 1e-9);
        assert!(guide_size_gb(1.0, "weird").is_none());
        assert_eq!(effective_bits_per_weight("Q8_0"), 8.5);
        assert_eq!(effective_bits_per_weight("IQ3_XXS"), 3.0);
    }
}
