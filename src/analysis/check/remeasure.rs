//! Re-measurement for `check --profile`: while checks are inconclusive, a fresh run of the
//! profile, its repetitions pooled with every earlier one, and the open checks decided again
//! on the pool; decided checks keep their answer.

use std::collections::HashMap;

use super::{gate, Finding, Gate, MetricSet};
use crate::analysis::stats::{Decision, Rule};
use crate::results::load::LoadedFile;

/// Adds the raw repetitions of `more` (a fresh run of the same profile) to `into`, cell by
/// cell, so that the next gate sees every repetition of every round. Rows (statuses,
/// summaries) stay those of the first run.
///
/// `into` already pools `runs` runs. Each run launched every cell afresh, so the pooled means
/// average `runs + 1` launches of each side and the launch variation in their intervals
/// shrinks with them: each row's `between_launch_cv` is rescaled to `cv_1 / sqrt(runs + 1)`.
pub fn pool(into: &mut LoadedFile, more: &LoadedFile, runs: u32) {
    let shrink = (f64::from(runs) / f64::from(runs + 1)).sqrt();
    for row in &mut into.rows {
        row.between_launch_cv = row.between_launch_cv.map(|cv| cv * shrink);
    }
    for (key, values) in &more.raw {
        let v = into.raw.entry(key.clone()).or_default();
        v.decode_tps.extend_from_slice(&values.decode_tps);
        v.prefill_tps.extend_from_slice(&values.prefill_tps);
        v.ttft_ms.extend_from_slice(&values.ttft_ms);
        v.itl_p99_ms.extend_from_slice(&values.itl_p99_ms);
        v.acceptance.extend_from_slice(&values.acceptance);
        v.itl_gaps_ms.extend_from_slice(&values.itl_gaps_ms);
        v.pairs.extend_from_slice(&values.pairs);
    }
}

/// The gate after a re-measurement round: checks decided before keep their decision, the
/// inconclusive ones take the decision of `fresh` (computed on the pooled repetitions).
pub fn settle(previous: Gate, fresh: Gate) -> Gate {
    let mut fresh_by: HashMap<(String, String), Finding> = fresh
        .findings
        .into_iter()
        .map(|f| ((f.cell.clone(), f.what.clone()), f))
        .collect();
    let findings = previous
        .findings
        .into_iter()
        .map(|f| match f.decision {
            Decision::Inconclusive => fresh_by
                .remove(&(f.cell.clone(), f.what.clone()))
                .unwrap_or(f),
            _ => f,
        })
        .collect();
    Gate {
        findings,
        ..previous
    }
}

/// How `check --profile` re-measures inconclusive cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remeasure {
    /// Re-runs of the profile at most (0: none).
    pub rounds: u32,
    /// Repetition cap per cell in a re-run (`bench run --max-reps`).
    pub max_reps: u32,
}

impl Default for Remeasure {
    fn default() -> Self {
        Remeasure {
            rounds: 3,
            max_reps: 10,
        }
    }
}

/// The gate on `first`, then while something is inconclusive and rounds remain: one more run
/// from `more` (fresh launches), its repetitions pooled with all earlier ones, the
/// inconclusive checks decided again. `more` is the real profile run in `command` and a
/// simulation in the tests.
pub fn gate_with_remeasure(
    baseline: &LoadedFile,
    first: LoadedFile,
    tolerance: f64,
    set: MetricSet,
    rule: Rule,
    rounds: u32,
    mut more: impl FnMut(u32) -> anyhow::Result<LoadedFile>,
) -> anyhow::Result<Gate> {
    let mut current = first;
    let mut g = gate(baseline, &current, tolerance, set, rule);
    for round in 1..=rounds {
        let open = g.with(Decision::Inconclusive).count();
        if open == 0 || current.rows.is_empty() {
            break;
        }
        pool(&mut current, &more(round)?, round);
        g = settle(g, gate(baseline, &current, tolerance, set, rule));
        let still = g.with(Decision::Inconclusive).count();
        g.notes.push(format!(
            "re-measurement round {round}: {open} check(s) were inconclusive, {still} still are"
        ));
    }
    Ok(g)
}
