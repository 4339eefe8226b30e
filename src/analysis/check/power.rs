//! The gate's power and false-alarm rate, from the gate's own functions (`gate`, `pool`,
//! `gate_with_remeasure`, the Welch log-ratio interval, `decide`) on simulated repetitions:
//! decode t/s with normal noise of a given coefficient of variation, a baseline of 6
//! repetitions (the smoke profile's cap, as in the committed baseline), a first current run
//! of 3 (the profile's minimum), and re-measurement rounds of 10 repetitions, as
//! `bench check --profile` does. The figures are in docs/readme/analysis.md.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::results::load::RepValues;

/// A normal deviate by Box-Muller.
fn normal(rng: &mut SmallRng, mean: f64, sd: f64) -> f64 {
    let (u1, u2): (f64, f64) = (rng.gen_range(f64::EPSILON..1.0), rng.gen());
    mean + sd * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn cell_file(path: &str, values: Vec<f64>) -> LoadedFile {
    let row = ResultRow {
        schema_version: 1,
        role: "dense".into(),
        model_file: "m.gguf".into(),
        mode: crate::mode::Mode::Baseline,
        workload: "chat".into(),
        parallel: 1,
        ..ResultRow::default()
    };
    let raw = HashMap::from([(
        row.key(),
        RepValues {
            decode_tps: values,
            ..RepValues::default()
        },
    )]);
    LoadedFile {
        path: path.into(),
        rows: vec![row],
        raw,
        raw_note: None,
        name: None,
    }
}

/// One simulated scenario.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// True relative drop of the current mean (0.3 = 30% slower).
    pub drop: f64,
    /// Coefficient of variation of one repetition.
    pub cv: f64,
    /// Gate tolerance.
    pub tolerance: f64,
    /// Re-measurement rounds (0: the plain `--current` gate).
    pub rounds: u32,
    /// How a check passes.
    pub rule: Rule,
}

/// Shares of trials that ended (pass, regressed, inconclusive).
pub fn simulate(s: Scenario, trials: u32, seed: u64) -> (f64, f64, f64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let (mut pass, mut regressed, mut open) = (0u32, 0u32, 0u32);
    let mean = 100.0 * (1.0 - s.drop);
    for _ in 0..trials {
        let mut draw = |n: usize, m: f64| -> Vec<f64> {
            (0..n).map(|_| normal(&mut rng, m, m * s.cv)).collect()
        };
        let baseline = cell_file("b.csv", draw(6, 100.0));
        let first = cell_file("c.csv", draw(3, mean));
        let more: Vec<LoadedFile> = (0..s.rounds)
            .map(|_| cell_file("c.csv", draw(10, mean)))
            .collect();
        let g = gate_with_remeasure(
            &baseline,
            first,
            s.tolerance,
            MetricSet::Absolute,
            s.rule,
            s.rounds,
            |round| Ok(more[round as usize - 1].clone()),
        )
        .unwrap();
        match g.outcome() {
            Outcome::Pass => pass += 1,
            Outcome::Regressed => regressed += 1,
            Outcome::Inconclusive => open += 1,
        }
    }
    let share = |k: u32| f64::from(k) / f64::from(trials);
    (share(pass), share(regressed), share(open))
}

#[test]
fn a_30_percent_drop_at_10_percent_cv_is_caught_and_an_unchanged_cell_passes() {
    let trials = 4000;
    let at = |drop, tolerance, rounds| {
        simulate(
            Scenario {
                drop,
                cv: 0.10,
                tolerance,
                rounds,
                rule: Rule::Strict,
            },
            trials,
            11,
        )
    };
    for (tolerance, rounds) in [(0.25, 3), (0.25, 0), (0.10, 3), (0.05, 3), (0.05, 0)] {
        let (dp, dr, di) = at(0.30, tolerance, rounds);
        let (up, ur, ui) = at(0.0, tolerance, rounds);
        eprintln!(
            "tolerance {tolerance}, {rounds} rounds: 30% drop pass {dp:.4} regressed {dr:.4} inconclusive {di:.4}; unchanged pass {up:.4} regressed {ur:.4} inconclusive {ui:.4}"
        );
    }
    // The CI gate's tolerance with re-measurement: a 30% drop never passes (flagged:
    // regressed or inconclusive, both fail CI), an unchanged cell passes.
    let (drop_pass, _, _) = at(0.30, 0.25, 3);
    let (same_pass, same_regressed, _) = at(0.0, 0.25, 3);
    assert!(drop_pass <= 0.05, "30% drop passed in {drop_pass}");
    assert!(
        1.0 - same_pass <= 0.01,
        "unchanged flagged in {}",
        1.0 - same_pass
    );
    assert!(same_regressed <= 0.01);
    // At 5%, a 30% drop is called a regression, and an unchanged cell is never called one.
    let (_, drop_regressed, _) = at(0.30, 0.05, 3);
    let (_, same_regressed, _) = at(0.0, 0.05, 3);
    assert!(
        drop_regressed >= 0.95,
        "30% drop regressed in {drop_regressed}"
    );
    assert!(
        same_regressed <= 0.01,
        "unchanged regressed in {same_regressed}"
    );
}

#[test]
fn by_the_estimate_at_10_percent_a_30_percent_drop_never_passes_and_noise_does() {
    let trials = 4000;
    let at = |drop, rounds| {
        let s = Scenario {
            drop,
            cv: 0.10,
            tolerance: 0.10,
            rounds,
            rule: Rule::Estimate,
        };
        simulate(s, trials, 12)
    };
    let (dp, dr, di) = at(0.30, 0);
    let (_, drr, _) = at(0.30, 3);
    let (up, ur, ui) = at(0.0, 0);
    let (rp, rr, ri) = at(0.0, 3);
    eprintln!(
        "estimate rule, tolerance 10%, cv 10%: 30% drop pass {dp:.4} regressed {dr:.4} \
         inconclusive {di:.4} (after 3 rounds regressed {drr:.4}); unchanged pass {up:.4} \
         regressed {ur:.4} inconclusive {ui:.4}; unchanged after 3 rounds pass {rp:.4} \
         regressed {rr:.4} inconclusive {ri:.4}"
    );
    // A 30% drop: its estimate lies beyond 10% in all but a vanishing share of trials
    // (z = ln(0.9 / 0.7) / 0.071 = 3.5): flagged at once (regressed or inconclusive, both
    // fail CI), and shown to be a regression once re-measured.
    assert!(dp <= 0.005, "30% drop passed in {dp}");
    assert!(
        drr >= 0.95,
        "30% drop regressed after re-measuring in {drr}"
    );
    // Unchanged: one run of 3 against 6 repetitions passes unless its estimate falls
    // below 0.9 (z = -1.48, 7%); never regressed; re-measuring settles nearly all.
    assert!(
        up >= 0.90 && ur <= 0.005,
        "unchanged: pass {up}, regressed {ur}"
    );
    assert!(
        rp >= 0.99 && rr <= 0.005,
        "after rounds: pass {rp}, regressed {rr}"
    );
}
