//! The standard model of speculative decoding (Leviathan et al. 2023, "Fast Inference from
//! Transformers via Speculative Decoding", section 3): with per-token acceptance `a` and `K`
//! drafted tokens per step, one verification step yields on average
//! `E = (1 - a^(K+1)) / (1 - a)` tokens, and costs `1 + K c` target steps, where `c` is the cost
//! of one draft step relative to one target step. Speedup = `E / (1 + K c)`.
//!
//! `fit_draft_cost` finds the `c` that best explains measured (a, K, speedup) triples by least
//! squares on the logarithms of the speedups (a one-dimensional convex-enough search).

use serde::Serialize;

/// Expected tokens per verification step for acceptance `a` in [0, 1] and draft length `k`.
pub fn expected_tokens(a: f64, k: u32) -> f64 {
    let a = a.clamp(0.0, 1.0);
    if (1.0 - a).abs() < 1e-12 {
        return k as f64 + 1.0;
    }
    (1.0 - a.powi(k as i32 + 1)) / (1.0 - a)
}

/// Modelled speedup over plain decoding.
pub fn speedup(a: f64, k: u32, draft_cost: f64) -> f64 {
    expected_tokens(a, k) / (1.0 + k as f64 * draft_cost)
}

/// The draft cost that would explain one measurement exactly (may be negative when the measured
/// speedup exceeds what a free draft could give).
pub fn implied_draft_cost(a: f64, k: u32, measured_speedup: f64) -> f64 {
    (expected_tokens(a, k) / measured_speedup - 1.0) / k as f64
}

/// One measured speculative cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpecPoint {
    /// Draft acceptance (accepted / drafted), 0..1.
    pub acceptance: f64,
    /// Drafted tokens per step.
    pub k: u32,
    /// Measured speedup over the baseline cell of the same run.
    pub speedup: f64,
}

/// The fitted draft cost with the residuals of each point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DraftCostFit {
    /// Cost of a draft step relative to a target step.
    pub draft_cost: f64,
    /// `ln(measured) - ln(model)` per point, in input order.
    pub log_residuals: Vec<f64>,
}

fn sse(points: &[SpecPoint], c: f64) -> f64 {
    points
        .iter()
        .map(|p| (p.speedup.ln() - speedup(p.acceptance, p.k, c).ln()).powi(2))
        .sum()
}

/// Fits `c` in [0, 4] by golden-section search on the sum of squared log residuals.
/// `None` without a usable point (speedup > 0, k > 0).
pub fn fit_draft_cost(points: &[SpecPoint]) -> Option<DraftCostFit> {
    let pts: Vec<SpecPoint> = points
        .iter()
        .filter(|p| p.speedup > 0.0 && p.k > 0 && p.acceptance.is_finite())
        .cloned()
        .collect();
    if pts.is_empty() {
        return None;
    }
    let (mut lo, mut hi) = (0.0f64, 4.0f64);
    let g = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..200 {
        let m1 = hi - g * (hi - lo);
        let m2 = lo + g * (hi - lo);
        if sse(&pts, m1) <= sse(&pts, m2) {
            hi = m2;
        } else {
            lo = m1;
        }
    }
    let c = (lo + hi) / 2.0;
    let log_residuals = points
        .iter()
        .map(|p| p.speedup.ln() - speedup(p.acceptance, p.k, c).ln())
        .collect();
    Some(DraftCostFit {
        draft_cost: c,
        log_residuals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_tokens_known_answers() {
        assert!((expected_tokens(0.5, 1) - 1.5).abs() < 1e-12);
        // a = 0.8, K = 4: (1 - 0.8^5) / 0.2 = (1 - 0.32768) / 0.2 = 3.3616.
        assert!((expected_tokens(0.8, 4) - 3.3616).abs() < 1e-12);
        assert_eq!(expected_tokens(1.0, 16), 17.0);
        assert_eq!(expected_tokens(0.0, 16), 1.0);
    }

    #[test]
    fn speedup_model_known_answer() {
        // a = 0.8, K = 4, c = 0.05: 3.3616 / 1.2 = 2.80133...
        assert!((speedup(0.8, 4, 0.05) - 3.3616 / 1.2).abs() < 1e-12);
        assert!((implied_draft_cost(0.8, 4, 3.3616 / 1.2) - 0.05).abs() < 1e-12);
    }

    #[test]
    fn fit_recovers_draft_cost() {
        let c = 0.07;
        let points: Vec<SpecPoint> = [(0.6, 4), (0.8, 8), (0.95, 16), (1.0, 24)]
            .iter()
            .map(|&(a, k)| SpecPoint {
                acceptance: a,
                k,
                speedup: speedup(a, k, c),
            })
            .collect();
        let fit = fit_draft_cost(&points).unwrap();
        assert!((fit.draft_cost - c).abs() < 1e-6, "{fit:?}");
        assert!(fit.log_residuals.iter().all(|r| r.abs() < 1e-6));
    }

    #[test]
    fn fit_with_noise_lands_between_implied_costs() {
        let points = vec![
            SpecPoint {
                acceptance: 1.0,
                k: 16,
                speedup: 2.4,
            },
            SpecPoint {
                acceptance: 1.0,
                k: 4,
                speedup: 2.0,
            },
        ];
        let fit = fit_draft_cost(&points).unwrap();
        let c1 = implied_draft_cost(1.0, 16, 2.4);
        let c2 = implied_draft_cost(1.0, 4, 2.0);
        assert!(
            fit.draft_cost > c1.min(c2) && fit.draft_cost < c1.max(c2),
            "{fit:?}"
        );
        assert!(fit_draft_cost(&[]).is_none());
    }
}
