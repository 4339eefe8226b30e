//! What became of one cell: measured (its requests, rates and how its speedup was
//! measured) or not (a status and a reason), and how the outcomes of a baseline's several
//! launches pool into one. Its own module because the baselines are made from it and the
//! row is built from it: both import it, neither imports the other.

use crate::engine::request::Prompt;
use crate::hardware::foreign::ForeignLoad;
use crate::measure::{self, CellMetrics, RequestRaw};
use crate::results::Status;

/// How an accelerated cell's speedup was measured.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Pairing {
    /// Not paired by design: a baseline cell, or a run without pairing (`--unpaired`).
    #[default]
    Off,
    /// (own decode t/s, partner decode t/s) of each complete pair, in order.
    Paired(Vec<(f64, f64)>),
    /// Pairing was wanted and was impossible (memory guard, partner failed); the text says why.
    /// Pairs completed before a partner failed are kept, but the speedup is unpaired.
    Unpaired(String),
}

impl Pairing {
    /// Number of pairs behind the speedup interval (the schema-3 `speedup_pairs`); `None`
    /// when the speedup came from separate launches.
    pub fn pair_count(&self) -> Option<u32> {
        match self {
            Pairing::Paired(pairs) => Some(pairs.len() as u32),
            _ => None,
        }
    }
}

/// What became of a cell.
#[derive(Debug)]
pub enum CellOutcome {
    /// Repetitions ran.
    Measured(Box<Measured>),
    /// The cell has no measurement; the status and the reason say why.
    NotMeasured(Status, String),
}

/// The measurements of one cell.
#[derive(Debug)]
pub struct Measured {
    /// Statistics over the timed requests.
    pub metrics: CellMetrics,
    /// Aggregate t/s of each repetition of a parallel cell.
    pub aggregate: Vec<f64>,
    /// Token ids of each slot's first timed request.
    pub first_tokens: Vec<Vec<u32>>,
    /// Harness CPU time as a share of the server's (percent).
    pub client_cpu_pct: Option<f64>,
    /// The prompt sent.
    pub prompt: Prompt,
    /// How the speedup is measured: paired with a baseline server beside this one, or not.
    pub pairing: Pairing,
    /// CPU time of the idle baseline server beside this one while this cell's requests ran
    /// (milliseconds); `None` unpaired or unreadable.
    pub partner_cpu_ms: Option<f64>,
    /// Every timed request, in order (the input of `metrics`; launches merge through it).
    pub requests: Vec<RequestRaw>,
    /// Decode t/s of each repetition, per launch: one list per server launch whose
    /// repetitions this measurement pools.
    pub launch_decode: Vec<Vec<f64>>,
    /// Timed batches sent (the next launch numbers its repetitions from here).
    pub batches: u32,
    /// Notes for the row's reason (a launch that failed, launches that disagree).
    pub notes: Vec<String>,
    /// Other processes' CPU and the hypervisor's steal while the repetitions ran; `None`
    /// when not sampled.
    pub foreign: Option<ForeignLoad>,
}

impl Measured {
    /// Server launches pooled.
    pub fn launches(&self) -> u32 {
        self.launch_decode.len().max(1) as u32
    }

    /// The launch-to-launch variation of the mean decode speed (coefficient of variation);
    /// `None` with one launch.
    pub fn between_launch_cv(&self) -> Option<f64> {
        measure::between_launch_cv(&self.launch_decode)
    }
}

/// The outcome of a cell measured in several launches of its server (a baseline): `earlier`
/// is what the launches before launch number `launch` (1-based) gave, `later` that launch's.
/// Repetitions of launches that measured pool (statistics over all of them, the launch
/// variation from their per-launch means). A launch that failed (a crash, a stall) fails the
/// cell, whatever the others measured (their repetitions stay in the raw file); one that
/// measured nothing for another reason (Ctrl-C) leaves a note beside the others'
/// measurement; when none measured, the latest reason stands.
pub fn merge_launches(
    earlier: CellOutcome,
    later: CellOutcome,
    launch: u32,
    parallel: usize,
) -> CellOutcome {
    let earlier_launches = match launch {
        2 => "launch 1".to_string(),
        n => format!("launches 1-{}", n - 1),
    };
    let note = |which: &str, status: Status, why: &str| {
        format!(
            "{which} of this cell: {status} ({})",
            why.lines().next().unwrap_or("")
        )
    };
    match (earlier, later) {
        (CellOutcome::Measured(mut a), CellOutcome::Measured(b)) => {
            if a.first_tokens != b.first_tokens {
                a.notes.push(format!(
                    "launch {launch} generated other tokens than launch 1 (the baseline is not deterministic across launches)"
                ));
            }
            a.requests.extend(b.requests);
            a.metrics = measure::cell_metrics(&a.requests, parallel);
            a.aggregate.extend(b.aggregate);
            a.launch_decode.extend(b.launch_decode);
            a.batches += b.batches;
            a.client_cpu_pct = match (a.client_cpu_pct, b.client_cpu_pct) {
                (Some(x), Some(y)) => Some((x + y) / 2.0),
                (x, y) => x.or(y),
            };
            a.notes.extend(b.notes);
            // The noisier launch: a cell is as trustworthy as its worst launch.
            a.foreign = match (a.foreign, b.foreign) {
                (Some(x), Some(y)) if y.foreign_cpu_pct > x.foreign_cpu_pct => Some(y),
                (x, y) => x.or(y),
            };
            CellOutcome::Measured(a)
        }
        (CellOutcome::NotMeasured(Status::Failed, why), _) => {
            CellOutcome::NotMeasured(Status::Failed, format!("{earlier_launches}: {why}"))
        }
        (_, CellOutcome::NotMeasured(Status::Failed, why)) => {
            CellOutcome::NotMeasured(Status::Failed, format!("launch {launch}: {why}"))
        }
        (CellOutcome::Measured(mut a), CellOutcome::NotMeasured(status, why)) => {
            a.notes
                .push(note(&format!("launch {launch}"), status, &why));
            CellOutcome::Measured(a)
        }
        (CellOutcome::NotMeasured(status, why), CellOutcome::Measured(mut b)) => {
            b.notes.push(note(&earlier_launches, status, &why));
            CellOutcome::Measured(b)
        }
        (CellOutcome::NotMeasured(..), later) => later,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paired_speedups_count_pairs() {
        assert_eq!(Pairing::Off.pair_count(), None);
        assert_eq!(Pairing::Unpaired("x".into()).pair_count(), None);
        assert_eq!(
            Pairing::Paired(vec![(2.0, 1.0), (2.1, 1.0)]).pair_count(),
            Some(2)
        );
    }
}
