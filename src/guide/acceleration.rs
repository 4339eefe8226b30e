//! The guide's "Acceleration Methods" table (`docs/model-sizing-guide.md`, "Performance
//! Expectations > Acceleration Methods"): typical speedups per method, with the profile modes
//! that implement each.

use serde::Serialize;

/// One row of the guide's acceleration table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AccelerationRow {
    /// Method as the guide names it.
    pub method: &'static str,
    /// The profile mode(s) that implement it, as a profile writes them.
    pub modes: &'static str,
    /// Mode kind this row stands for: "spec", "lookup", "moe", "spec+lookup".
    pub kind: &'static str,
    /// Lower end of the typical speedup (x).
    pub low_speedup: f64,
    /// Upper end of the typical speedup (x).
    pub high_speedup: f64,
    /// "Best For" column.
    pub best_for: &'static str,
}

/// The guide's acceleration table, in its order.
pub const ACCELERATIONS: [AccelerationRow; 4] = [
    AccelerationRow {
        method: "Speculative Decoding",
        modes: "spec:K",
        kind: "spec",
        low_speedup: 3.0,
        high_speedup: 11.0,
        best_for: "Dense models with compatible drafts",
    },
    AccelerationRow {
        method: "Prompt Lookup",
        modes: "lookup[:TYPE]",
        kind: "lookup",
        low_speedup: 1.5,
        high_speedup: 12.0,
        best_for: "Tasks with repeated context",
    },
    AccelerationRow {
        method: "MoE Expert Reduction",
        modes: "moe:N",
        kind: "moe",
        low_speedup: 1.5,
        high_speedup: 2.0,
        best_for: "MoE models only",
    },
    AccelerationRow {
        method: "Combined Spec+Lookup",
        modes: "spec:K+lookup",
        kind: "spec+lookup",
        low_speedup: 5.0,
        high_speedup: 12.0,
        best_for: "Best results",
    },
];
