//! What a result row says about its model beyond its columns: whether it is a
//! mixture-of-experts model, read from its mode, architecture and parameter counts.

use super::row::ResultRow;

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
}
