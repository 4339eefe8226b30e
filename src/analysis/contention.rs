//! `bench check` on deployments: each role's contention (together / alone, paired by round)
//! today against the baseline's, judged as the speedups are: the ratio of the two with its
//! interval (a ratio of two paired ratios, degrees of freedom by Welch-Satterthwaite) passes
//! when it rules out a drop beyond the tolerance. A role is matched by its name, deployed
//! mode and load.

use super::stats::{decide_by, Decision, Rule};
use crate::driver::deploy::summary::{summarize, RoleSummary};
use crate::measure::paired_log_estimate;
use crate::results::load::LoadedFile;

/// The check of one role's contention (`bench check` makes it one of its findings).
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// `deployment frontdoor baseline concurrency 1`.
    pub cell: String,
    /// Pass, regressed, improved or inconclusive.
    pub decision: Decision,
    /// Baseline -> current contention and the ratio with its interval.
    pub detail: String,
    /// False when a side had fewer than two paired rounds.
    pub has_ci: bool,
    /// The point ratio lies below 1 - tolerance.
    pub drop_beyond_tolerance: bool,
}

/// One finding per role of the baseline's deployments that the current results deployed.
pub fn findings(
    baseline: &LoadedFile,
    current: &LoadedFile,
    tolerance: f64,
    rule: Rule,
) -> Vec<Finding> {
    let now: Vec<RoleSummary> = summarize(&current.rows)
        .into_iter()
        .flat_map(|d| d.roles)
        .collect();
    let mut out = Vec::new();
    for b in summarize(&baseline.rows).into_iter().flat_map(|d| d.roles) {
        let Some(c) = now
            .iter()
            .find(|c| c.role == b.role && c.mode == b.mode && c.load == b.load)
        else {
            continue;
        };
        out.push(finding(&b, c, tolerance, rule));
    }
    out
}

fn finding(b: &RoleSummary, c: &RoleSummary, tolerance: f64, rule: Rule) -> Finding {
    let cell = format!("deployment {} {} {}", c.role, c.mode, c.load);
    let estimate = |r: &RoleSummary| paired_log_estimate(&r.paired.0, &r.paired.1).ok();
    let value = |r: &RoleSummary| r.contention.as_ref().map_or(f64::NAN, |c| c.ratio);
    match (estimate(b), estimate(c)) {
        (Some(eb), Some(ec)) => {
            let ratio = ec.div(&eb).ci95();
            Finding {
                cell,
                decision: decide_by(rule, &ratio, tolerance),
                detail: format!(
                    "{:.3} -> {:.3} (current/baseline {:.3} [{:.3}, {:.3}])",
                    value(b),
                    value(c),
                    ratio.ratio,
                    ratio.low,
                    ratio.high
                ),
                has_ci: ratio.has_ci(),
                drop_beyond_tolerance: ratio.ratio < 1.0 - tolerance,
            }
        }
        _ => Finding {
            cell,
            decision: Decision::Inconclusive,
            detail: format!(
                "fewer than two paired rounds (baseline {}, current {})",
                b.pairs, c.pairs
            ),
            has_ci: false,
            drop_beyond_tolerance: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{ResultRow, Status};

    fn file(together: &[f64]) -> LoadedFile {
        let mut rows = Vec::new();
        for (k, t) in together.iter().enumerate() {
            for (phase, tps) in [("alone", 20.0), ("together", *t)] {
                rows.push(ResultRow {
                    deployment_id: "deploy-1".into(),
                    role: "frontdoor".into(),
                    load: "concurrency 1".into(),
                    deploy_phase: phase.into(),
                    deploy_round: Some(k as u32 + 1),
                    status: Status::Ok,
                    decode_tps_mean: Some(tps),
                    ..ResultRow::default()
                });
            }
        }
        LoadedFile::of_rows("x.csv", rows)
    }

    #[test]
    fn a_contention_that_fell_by_half_regresses_and_an_unchanged_one_passes() {
        // Baseline contention 0.90-0.92 over four rounds; the same again passes at 25%; at
        // 0.45-0.46 (half) the interval of the ratio lies far below 0.75.
        let base = file(&[18.0, 18.4, 18.2, 18.1]);
        let same = file(&[18.1, 18.3, 18.0, 18.2]);
        let half = file(&[9.0, 9.2, 9.1, 9.05]);
        let pass = findings(&base, &same, 0.25, Rule::Strict);
        assert_eq!(pass.len(), 1);
        assert_eq!(pass[0].decision, Decision::Pass, "{:?}", pass[0]);
        let fail = findings(&base, &half, 0.25, Rule::Strict);
        assert_eq!(fail[0].decision, Decision::Regressed, "{:?}", fail[0]);
        assert!(
            fail[0].detail.contains("current/baseline 0.50"),
            "{:?}",
            fail[0]
        );
    }
}
