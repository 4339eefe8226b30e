//! A cost model per machine: what a decoded token and a prompt token cost, fitted from every
//! measured cell, so that a model the machine never ran can be predicted (`bench predict`,
//! the guide's table in `bench calibrate`), and another machine from its `bench hw --json`.
//!
//! Decode, seconds per generated token at a mean context of `c` tokens (the depth before
//! decoding plus half the generated tokens):
//!
//! ```text
//! t = k_w * weight bytes / B   (0 when they fit in the last-level cache)
//!   + k_c * weight bytes / B   (0 when they do not)
//!   + k_kv * KV bytes per token * c / B
//!   + k_f * 2 * active params / threads
//!   + k_a * 4 * n_layer * n_head * head_dim * c / threads
//!   + k_l * transformer blocks + k_0
//! ```
//!
//! with `B` the host's median measured read bandwidth. `1 / k_w` is the share of the measured
//! bandwidth the weights stream at from DRAM, `1 / k_c` the same for a model that fits in the
//! cache, `1 / k_f` and `1 / k_a` the arithmetic rates per thread,
//! `k_l` the per-token cost of a block's graph nodes (each ends in a barrier of the worker
//! threads), `k_0` the rest of the server's loop (sampling included; a vocabulary term was not
//! identifiable, see [`terms`]). Prefill, seconds per prompt token of an `n`-token prompt: the weights once per
//! 512-token micro-batch, the same arithmetic at a mean context of `n / 2`, and a constant.
//!
//! Inputs are exact: weight bytes, active parameters, KV bytes per token, the attention shape
//! and the block count come from the GGUF header ([`crate::gguf::ModelFacts`], with `moe:N`
//! applied) and depth and threads from the result row, the bandwidth from the host's runs,
//! the cache size from the host's `bench hw --json` (`--host-hw`, or this machine's when it
//! is the host). The coefficients are fitted
//! by non-negative least squares on relative residuals ([`crate::measure::nnls`]), with 95%
//! intervals from a bootstrap that resamples whole models, and every term the data cannot
//! pin down is named ([`fit::Identifiability`]).
//!
//! Files: [`cells`] (the measured cells and their GGUF facts), [`terms`] (the design
//! columns), [`fit`] (the fit, its intervals and predictions), [`validate`] (leave one model
//! out), [`table`] (the guide's rows for this or another machine), [`render`] (Markdown).

pub mod cells;
pub mod fit;
pub mod machine;
pub mod render;
pub mod table;
pub mod terms;
pub mod validate;

pub use cells::{cells_from_files, Cell, CellSet};
pub use fit::{fit_model, CostModel, Identifiability, PartFit, Prediction, TermFit};
pub use machine::{Covered, Machine};
pub use table::{guide_table, RowStatus, TableRow};
pub use terms::{Part, Setting, Shape};
pub use validate::{leave_one_model_out, Lomo, LomoRow};

use serde::Serialize;

/// Everything `bench calibrate` shows of the cost model.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The cells fitted, and the models left out for want of their GGUF.
    pub cells: CellSet,
    /// The fit (absent when no cell could be used).
    pub model: Option<CostModel>,
    /// Leave one model out, decode.
    pub lomo_decode: Lomo,
    /// Leave one model out, prefill.
    pub lomo_prefill: Lomo,
    /// The guide's rows predicted for the fitted machine.
    pub this_machine: Vec<TableRow>,
    /// The guide's rows predicted for other machines (`--hw FILE`).
    pub other_machines: Vec<(Machine, Vec<TableRow>)>,
}

impl Report {
    /// Fits, validates and predicts the guide's table for `machine` and every `other`.
    pub fn build(set: CellSet, machine: Machine, others: &[Machine]) -> Report {
        let model = set.fit(machine.clone());
        let this_machine = model
            .as_ref()
            .map_or_else(Vec::new, |m| guide_table(m, &machine));
        let other_machines = others
            .iter()
            .map(|o| {
                (
                    o.clone(),
                    model.as_ref().map_or_else(Vec::new, |m| guide_table(m, o)),
                )
            })
            .collect();
        Report {
            lomo_decode: leave_one_model_out(Part::Decode, &set.cells),
            lomo_prefill: leave_one_model_out(Part::Prefill, &set.cells),
            cells: set,
            model,
            this_machine,
            other_machines,
        }
    }
}

impl CellSet {
    /// The fitted models by weight bytes: one entry per model and expert count.
    pub fn covered(&self) -> Vec<Covered> {
        let mut out: Vec<Covered> = Vec::new();
        for c in &self.cells {
            if !out
                .iter()
                .any(|o| o.model == c.model && o.weight_bytes == c.shape.weight_bytes)
            {
                out.push(Covered {
                    model: c.model.clone(),
                    family: c.family.clone(),
                    moe: c.moe,
                    weight_bytes: c.shape.weight_bytes,
                });
            }
        }
        out
    }

    /// The cost model of these cells, on `machine`.
    pub fn fit(&self, machine: Machine) -> Option<CostModel> {
        fit_model(
            &self.obs(Part::Decode),
            &self.obs(Part::Prefill),
            self.covered(),
            machine,
        )
    }
}
