//! One JSON line per request: the raw values behind every row's statistics.
//!
//! The analysis recomputes confidence intervals from these (Welch ratios need the
//! repetitions, not the means), so nothing here is rounded or summarized.

use serde::{Deserialize, Serialize};

use super::row::{CellKey, SCHEMA_VERSION};
use crate::measure::RequestRaw;

/// One request of a cell: the warm-up or a timed repetition (one line of the `.jsonl` file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawRepetition {
    /// Layout version (integer; same as the CSV's).
    pub schema_version: u32,
    /// The cell this request belongs to (its fields appear at the top level of the line).
    #[serde(flatten)]
    pub key: CellKey,
    /// Repetition index within the cell, 0-based; the warm-up has its own index 0.
    pub rep: u32,
    /// The untimed warm-up request of the launch (excluded from all statistics).
    pub warmup: bool,
    /// Client slot for parallel > 1 (0-based; 0 with one slot). Requests of one repetition
    /// share `rep` and differ in `slot`.
    pub slot: u32,
    /// Wall time of the whole repetition across all slots, from the first request sent to the
    /// last stream ended (nanoseconds); the aggregate t/s of parallel cells comes from it.
    pub batch_wall_ns: Option<u64>,
    /// The raw record: instants as offsets from sent (ns), chunks, server timings, token ids.
    pub request: RequestRaw,
    /// The request went to the baseline server kept up beside this accelerated cell's server:
    /// the denominator of pair `rep` of a paired speedup (the line of the same `rep` without
    /// this flag is its numerator). Absent, meaning false, on every other line; such lines
    /// belong to no cell's own statistics.
    #[serde(default, skip_serializing_if = "is_false")]
    pub partner: bool,
    /// Which launch of the cell's server this request went to, 0-based: a baseline cell is
    /// measured in several launches (`--baseline-launches`), whose repetitions are numbered on
    /// across them (`rep` stays unique in a cell). Absent, meaning 0, on every other line.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub launch: u32,
    /// A serving cell's request: when it was due, as an offset from the phase's start
    /// (nanoseconds); its latencies count from there. Absent on every other line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_ns: Option<u64>,
    /// A serving cell's request: how late the generator sent it after it was due
    /// (nanoseconds). Absent on every other line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_lag_ns: Option<u64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !b
}

impl RawRepetition {
    /// A timed repetition (or warm-up) of `key` with the schema version set.
    pub fn new(key: &CellKey, rep: u32, warmup: bool, request: RequestRaw) -> RawRepetition {
        RawRepetition {
            schema_version: SCHEMA_VERSION,
            key: key.clone(),
            rep,
            warmup,
            slot: 0,
            batch_wall_ns: None,
            request,
            launch: 0,
            scheduled_ns: None,
            send_lag_ns: None,
            partner: false,
        }
    }
}
