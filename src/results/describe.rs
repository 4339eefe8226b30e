//! What a result row says beyond its columns: whether its model is a mixture of experts
//! (read from its mode, architecture and parameter counts), and how its output compared with
//! the baseline's, in the few words the run's table and the report show.

use super::row::{Difference, ResultRow};

/// GGUF architectures of mixture-of-experts models whose name does not say `moe`.
const MOE_ARCHS: [&str; 10] = [
    "deepseek",
    "deepseek2",
    "dbrx",
    "arctic",
    "grok",
    "jamba",
    "gpt-oss",
    "llama4",
    "qwen3next",
    "minimax-m2",
];

impl ResultRow {
    /// Whether a row is a MoE model: an expert-reduction mode, an architecture that is MoE, or
    /// fewer than half the parameters active per token (Mixtral-like models under `llama`). The
    /// active count of a dense model is below its total too (the token embedding is not read
    /// whole), by up to about a third for tiny drafts, hence the one-half threshold.
    pub fn is_moe(&self) -> bool {
        let arch = self.model_arch.to_ascii_lowercase();
        self.mode.moe_n().is_some()
            || arch.contains("moe")
            || MOE_ARCHS.contains(&arch.as_str())
            || (self.active_params > 0
                && (self.active_params as f64) < 0.5 * self.model_n_params as f64)
    }

    /// How the output compares with the baseline's, in a few words: `lossless`, `near-tie at
    /// 73 (margin 0.017)`, `LOSSY 72% at 73` or, for expert reduction, `agree 72%`.
    pub fn quality(&self) -> String {
        let at = self
            .first_difference
            .map_or(String::new(), |p| format!(" at {p}"));
        match (self.lossless, self.agreement_share, self.difference) {
            (Some(true), _, _) => "lossless".to_string(),
            (Some(false), _, Some(Difference::NearTie)) => format!(
                "near-tie{at} (margin {:.3})",
                self.first_difference_margin.unwrap_or(0.0)
            ),
            (Some(false), Some(a), _) => format!("LOSSY {:.0}%{at}", a * 100.0),
            (None, Some(a), _) => format!("agree {:.0}%", a * 100.0),
            _ => "-".into(),
        }
    }
}
