//! The machine a cost model was fitted on or is predicted for, and the fitted models' places
//! in weight bytes: what the fit records and the guide's table is compared against, apart
//! from both so that neither imports the other.

use serde::{Deserialize, Serialize};

use crate::hardware::HwFacts;

/// A machine the table is predicted for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Host or description.
    pub name: String,
    /// CPU model.
    pub cpu_model: String,
    /// Read bandwidth the predictions use (GB/s).
    pub bandwidth_gbps: f64,
    /// Threads the predictions use.
    pub threads: u32,
    /// ISA summary.
    pub isa: String,
    /// Total last-level cache (bytes), when known: weights that fit are costed as cached.
    #[serde(default)]
    pub llc_bytes: Option<u64>,
    /// Where these facts come from.
    pub source: String,
}

/// What a prediction for another machine assumes.
pub const CARRY_OVER: &str = "assumed: the fitted machine's per-byte and per-flop efficiencies, its arithmetic rate per thread and its per-token overhead carry over";

impl Machine {
    /// Another machine from its `bench hw --json`: its bandwidth with as many readers as it
    /// has physical cores (else its best), and that many threads.
    pub fn from_hw(f: &HwFacts, origin: &str) -> Machine {
        Machine {
            name: origin.to_string(),
            cpu_model: f.cpu_model.clone(),
            bandwidth_gbps: f.bandwidth_at(f.physical_cores),
            threads: u32::try_from(f.physical_cores).unwrap_or(u32::MAX),
            isa: f.isa.present().join(" "),
            llc_bytes: f.llc_bytes,
            source: format!(
                "{origin} (bench hw --json, {:.0} GiB RAM); {CARRY_OVER}",
                f.ram_total_gib
            ),
        }
    }
}

/// A fitted model's place in weight bytes: what the table's rows are compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Covered {
    /// Model file.
    pub model: String,
    /// Quant group.
    pub family: String,
    /// MoE.
    pub moe: bool,
    /// Weight bytes per token (bytes).
    pub weight_bytes: f64,
}
