//! The guide's "Inference Speed by Model Size" table (`docs/model-sizing-guide.md`,
//! "Performance Expectations > Inference Speed by Model Size"), stated "with AVX-512 (AMD EPYC
//! or Intel Xeon)", with the active parameters per token the guide leaves implicit: dense rows
//! read all their parameters per token, MoE rows are derived from the models' configurations
//! ([`moe_active_params_b`]). `bench calibrate` predicts these rows for a machine; the
//! replaceable expected ranges a run judges cells against are [`super::Expectations`].

use serde::Serialize;

/// One row of the guide's speed table, plus its active parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpeedRow {
    /// The guide's "Model Size" cell, e.g. "235B MoE".
    pub size_label: &'static str,
    /// The guide's "Quant" cell ("Q8" or "Q4"), the quant family of [`super::quant_family`].
    pub quant_label: &'static str,
    /// The quant the row stands for in llama.cpp terms.
    pub quant: &'static str,
    /// Total parameters, billions.
    pub params_b: f64,
    /// Parameters read per decoded token, billions.
    pub active_params_b: f64,
    /// Experts used per token for MoE rows (the row's reduction), `None` for dense rows.
    pub experts_used: Option<u32>,
    /// Parameters of one expert over all layers, billions (0 for dense rows).
    pub per_expert_b: f64,
    /// Lower end of the expected decode rate, tokens per second.
    pub low_tps: f64,
    /// Upper end of the expected decode rate, tokens per second.
    pub high_tps: f64,
    /// The guide's "Notes" cell (`Draft models`, `With MoE4 reduction`).
    pub note: &'static str,
}

impl SpeedRow {
    /// The row's label as a table cell: size and quant (`7B Q4`, `235B MoE Q4`).
    pub fn label(&self) -> String {
        format!("{} {}", self.size_label, self.quant_label)
    }

    /// Active bytes per decoded token: active params x effective bits per weight / 8.
    pub fn active_bytes_per_token(&self) -> f64 {
        self.active_params_b * 1e9 * super::effective_bits_per_weight(self.quant) / 8.0
    }

    /// True for MoE rows.
    pub fn is_moe(&self) -> bool {
        self.experts_used.is_some()
    }

    /// Active parameters per token (billions) with `used` experts instead of the row's
    /// reduction; a dense row's own figure.
    pub fn active_params_b_with(&self, used: u32) -> f64 {
        match self.experts_used {
            Some(own) => {
                self.active_params_b + (f64::from(used) - f64::from(own)) * self.per_expert_b
            }
            None => self.active_params_b,
        }
    }

    /// Active bytes per decoded token with `used` experts (see [`Self::active_bytes_per_token`]).
    pub fn active_bytes_with(&self, used: u32) -> f64 {
        self.active_params_b_with(used) * 1e9 * super::effective_bits_per_weight(self.quant) / 8.0
    }
}

/// Active parameters of a MoE model when `used` experts run per token: the always-active part
/// (attention, router, output head) plus `used` experts' FFNs over all layers.
pub const fn moe_active_params_b(always_b: f64, per_expert_b: f64, used: u32) -> f64 {
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

const fn dense(
    size_label: &'static str,
    quant_label: &'static str,
    quant: &'static str,
    params_b: f64,
    range: (f64, f64),
    note: &'static str,
) -> SpeedRow {
    SpeedRow {
        size_label,
        quant_label,
        quant,
        params_b,
        active_params_b: params_b,
        experts_used: None,
        per_expert_b: 0.0,
        low_tps: range.0,
        high_tps: range.1,
        note,
    }
}

const fn moe(
    size_label: &'static str,
    params_b: f64,
    (always_b, per_expert_b, used): (f64, f64, u32),
    range: (f64, f64),
    note: &'static str,
) -> SpeedRow {
    SpeedRow {
        size_label,
        quant_label: "Q4",
        quant: "Q4_K_M",
        params_b,
        active_params_b: moe_active_params_b(always_b, per_expert_b, used),
        experts_used: Some(used),
        per_expert_b,
        low_tps: range.0,
        high_tps: range.1,
        note,
    }
}

/// The guide's speed table, in its order.
pub static SPEEDS: [SpeedRow; 8] = [
    dense("0.5B", "Q8", "Q8_0", 0.5, (80.0, 120.0), "Draft models"),
    dense("1.5B", "Q4", "Q4_K_M", 1.5, (50.0, 70.0), "Fast workers"),
    dense("7B", "Q4", "Q4_K_M", 7.0, (25.0, 40.0), "Workers"),
    dense("14B", "Q4", "Q4_K_M", 14.0, (15.0, 25.0), ""),
    dense("32B", "Q4", "Q4_K_M", 32.0, (8.0, 15.0), ""),
    dense("70B", "Q4", "Q4_K_M", 70.0, (4.0, 8.0), ""),
    moe(
        "235B MoE",
        235.0,
        (QWEN3_235B_ALWAYS_B, QWEN3_235B_PER_EXPERT_B, 4),
        (5.0, 7.0),
        "With MoE4 reduction",
    ),
    moe(
        "480B MoE",
        480.0,
        (QWEN3_480B_ALWAYS_B, QWEN3_480B_PER_EXPERT_B, 3),
        (8.0, 12.0),
        "With MoE3 reduction",
    ),
];

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
        assert_eq!(SPEEDS.len(), 8);
        assert!((SPEEDS[6].active_params_b - 14.4).abs() < 0.1);
        assert!((SPEEDS[7].active_params_b - 19.85).abs() < 0.1);
        // Without the reduction (8 experts, the models' default) the rows are A22B and A35B.
        assert!((SPEEDS[6].active_params_b_with(8) - a22).abs() < 1e-9);
        assert!((SPEEDS[7].active_params_b_with(8) - a35).abs() < 1e-9);
        assert_eq!(SPEEDS[2].active_params_b_with(8), 7.0);
    }

    #[test]
    fn active_bytes_use_effective_bits() {
        let r = &SPEEDS[2]; // 7B Q4_K_M
        assert!((r.active_bytes_per_token() - 7e9 * 4.85 / 8.0).abs() < 1.0);
        assert_eq!(r.label(), "7B Q4");
        assert_eq!(SPEEDS[6].label(), "235B MoE Q4");
    }
}
