//! Pure statistics for the analysis commands: least squares on logarithms, and the verdicts
//! drawn from an interval. The ratio interval, the t quantile and the sample moments are the
//! measurement's ([`crate::measure`]: one statistics home, one t quantile, one ratio interval
//! with the numerator first), re-exported here for the analysis code.

use serde::Serialize;

pub use crate::measure::{ratio_of, t_quantile_975, LogEstimate, Moments, RatioCi};

/// Verdict of an interval of a ratio against an equivalence margin `[1 - m, 1 + m]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The whole interval lies above `1 + m`.
    Better,
    /// The whole interval lies below `1 - m`.
    Worse,
    /// The whole interval lies within `[1 - m, 1 + m]`: equivalent within the margin.
    Same,
    /// Otherwise (the interval reaches across a margin's edge), or no interval.
    Undecided,
}

/// Verdict of a "higher is better" ratio against an equivalence margin (0.05 for 5%).
pub fn verdict(ci: &RatioCi, margin: f64) -> Verdict {
    if !ci.has_ci() {
        Verdict::Undecided
    } else if ci.high < 1.0 - margin {
        Verdict::Worse
    } else if ci.low > 1.0 + margin {
        Verdict::Better
    } else if ci.low >= 1.0 - margin && ci.high <= 1.0 + margin {
        Verdict::Same
    } else {
        Verdict::Undecided
    }
}

/// What the regression gate concludes from an interval of `current / baseline` (oriented so
/// that below 1 is worse) against the floor `1 - tolerance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// The whole interval lies above `1 + tolerance`.
    Improved,
    /// The interval rules out a drop beyond the tolerance: its low end is at or above the floor.
    Pass,
    /// The interval shows a drop beyond the tolerance: its high end is below the floor.
    Regressed,
    /// The interval straddles the floor, or there is no interval: the data cannot tell.
    Inconclusive,
}

/// The gate's rule: a metric passes only when its 95% interval rules out a drop beyond
/// `tolerance` (0.05 for 5%), regresses when the interval lies wholly below `1 - tolerance`,
/// and is inconclusive otherwise (also without an interval: a point value proves nothing).
pub fn decide(ci: &RatioCi, tolerance: f64) -> Decision {
    let floor = 1.0 - tolerance;
    if !ci.has_ci() {
        Decision::Inconclusive
    } else if ci.high < floor {
        Decision::Regressed
    } else if ci.low > 1.0 + tolerance {
        Decision::Improved
    } else if ci.low >= floor {
        Decision::Pass
    } else {
        Decision::Inconclusive
    }
}

/// How a check passes (`bench check --strict` or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// The default: a check passes when its estimate lies within the tolerance; one whose
    /// estimate is a drop beyond the tolerance regresses when the interval shows it (lies
    /// wholly below `1 - tolerance`) and is inconclusive when it does not. No drop beyond
    /// the tolerance ever passes, and noise inside the tolerance never fails.
    #[default]
    Estimate,
    /// `--strict`: a check passes only when its 95% interval rules out a drop beyond the
    /// tolerance ([`decide`]); within the tolerance but with a wider interval it is
    /// inconclusive.
    Strict,
}

/// The gate's decision by `rule` (see [`Rule`]); without an interval, inconclusive.
pub fn decide_by(rule: Rule, ci: &RatioCi, tolerance: f64) -> Decision {
    let strict = decide(ci, tolerance);
    match (rule, strict) {
        (Rule::Strict, d) | (Rule::Estimate, d @ (Decision::Regressed | Decision::Improved)) => d,
        (Rule::Estimate, d) if !ci.has_ci() => d,
        (Rule::Estimate, _) if ci.ratio >= 1.0 - tolerance => Decision::Pass,
        (Rule::Estimate, _) => Decision::Inconclusive,
    }
}

/// Ordinary least squares line `y = intercept + slope * x`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineFit {
    /// Slope.
    pub slope: f64,
    /// Intercept.
    pub intercept: f64,
    /// Residuals `y - fitted`, in input order.
    pub residuals: Vec<f64>,
    /// Coefficient of determination (NaN when y has no variance).
    pub r2: f64,
}

/// Least squares line through points; `None` with fewer than two distinct x.
pub fn least_squares(x: &[f64], y: &[f64]) -> Option<LineFit> {
    let n = x.len();
    if n < 2 || y.len() != n {
        return None;
    }
    let mx = x.iter().sum::<f64>() / n as f64;
    let my = y.iter().sum::<f64>() / n as f64;
    let sxx: f64 = x.iter().map(|v| (v - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let residuals: Vec<f64> = x
        .iter()
        .zip(y)
        .map(|(a, b)| b - intercept - slope * a)
        .collect();
    let syy: f64 = y.iter().map(|v| (v - my).powi(2)).sum();
    let sse: f64 = residuals.iter().map(|r| r * r).sum();
    Some(LineFit {
        slope,
        intercept,
        residuals,
        r2: if syy > 0.0 { 1.0 - sse / syy } else { f64::NAN },
    })
}

/// Least squares of `ln y = ln k + ln x` with the slope fixed at 1: the factor `k` that best
/// scales `x` to `y` on the logarithms (`k` = geometric mean of `y / x`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScaleFit {
    /// The fitted factor `k`.
    pub factor: f64,
    /// Residuals `ln y - ln(k x)`, in input order.
    pub log_residuals: Vec<f64>,
    /// Standard deviation of the log residuals (n - 1 denominator; 0 for one point).
    pub log_sd: f64,
}

/// Fits `y ≈ k x` on the logarithms; `None` without a positive pair.
pub fn fit_scale(x: &[f64], y: &[f64]) -> Option<ScaleFit> {
    let logs: Vec<f64> = x
        .iter()
        .zip(y)
        .filter(|(a, b)| **a > 0.0 && **b > 0.0)
        .map(|(a, b)| b.ln() - a.ln())
        .collect();
    let m = Moments::of(&logs)?;
    let log_residuals = logs.iter().map(|l| l - m.mean).collect();
    Some(ScaleFit {
        factor: m.mean.exp(),
        log_residuals,
        log_sd: m.sd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn verdicts_use_whole_interval() {
        let ci = |low, high| RatioCi {
            ratio: (low + high) / 2.0,
            low,
            high,
            df: 5.0,
        };
        assert_eq!(verdict(&ci(0.80, 0.94), 0.05), Verdict::Worse);
        assert_eq!(verdict(&ci(0.80, 0.96), 0.05), Verdict::Undecided);
        assert_eq!(verdict(&ci(1.06, 1.30), 0.05), Verdict::Better);
        assert_eq!(verdict(&ci(0.97, 1.04), 0.05), Verdict::Same);
        assert_eq!(verdict(&ci(1.01, 1.04), 0.05), Verdict::Same);
        assert_eq!(verdict(&ci(1.01, 1.30), 0.0), Verdict::Better);
        assert_eq!(verdict(&ci(0.5, 0.8).recip(), 0.05), Verdict::Better);
    }

    #[test]
    fn gate_decisions_need_the_interval_to_rule_out_the_drop() {
        let ci = |low, high| RatioCi {
            ratio: (low + high) / 2.0,
            low,
            high,
            df: 5.0,
        };
        // floor 0.95
        assert_eq!(decide(&ci(0.96, 1.04), 0.05), Decision::Pass);
        assert_eq!(decide(&ci(0.95, 1.04), 0.05), Decision::Pass);
        assert_eq!(decide(&ci(0.80, 1.20), 0.05), Decision::Inconclusive);
        assert_eq!(decide(&ci(0.80, 0.949), 0.05), Decision::Regressed);
        assert_eq!(decide(&ci(1.06, 1.20), 0.05), Decision::Improved);
        let point = RatioCi {
            ratio: 1.0,
            low: f64::NAN,
            high: f64::NAN,
            df: 0.0,
        };
        assert_eq!(decide(&point, 0.05), Decision::Inconclusive);
    }

    #[test]
    fn by_the_estimate_noise_within_the_tolerance_passes_and_a_drop_beyond_never_does() {
        let ci = |ratio, low, high| RatioCi {
            ratio,
            low,
            high,
            df: 5.0,
        };
        let by = |c: &RatioCi| decide_by(Rule::Estimate, c, 0.10);
        // floor 0.90: a file against itself (ratio 1) passes however wide its interval.
        assert_eq!(by(&ci(1.0, 0.42, 2.39)), Decision::Pass);
        assert_eq!(by(&ci(0.90, 0.70, 1.15)), Decision::Pass);
        assert_eq!(by(&ci(0.89, 0.70, 1.13)), Decision::Inconclusive);
        assert_eq!(by(&ci(0.60, 0.45, 0.80)), Decision::Regressed);
        assert_eq!(by(&ci(1.30, 1.15, 1.47)), Decision::Improved);
        assert_eq!(by(&ci(1.30, 1.05, 1.60)), Decision::Pass);
        let point = ci(1.0, f64::NAN, f64::NAN);
        assert_eq!(by(&point), Decision::Inconclusive);
        // --strict: the interval must rule the drop out.
        assert_eq!(
            decide_by(Rule::Strict, &ci(1.0, 0.42, 2.39), 0.10),
            Decision::Inconclusive
        );
    }

    #[test]
    fn least_squares_known_answer() {
        // y = 1 + 2x exactly, then one perturbed point.
        let x = [0.0, 1.0, 2.0, 3.0];
        let fit = least_squares(&x, &[1.0, 3.0, 5.0, 7.0]).unwrap();
        assert!(close(fit.slope, 2.0, 1e-12) && close(fit.intercept, 1.0, 1e-12));
        assert!(close(fit.r2, 1.0, 1e-12));
        // Textbook: x 1..5, y 2,4,5,4,5 -> slope 0.6, intercept 2.2.
        let fit = least_squares(&[1.0, 2.0, 3.0, 4.0, 5.0], &[2.0, 4.0, 5.0, 4.0, 5.0]).unwrap();
        assert!(close(fit.slope, 0.6, 1e-12) && close(fit.intercept, 2.2, 1e-12));
        assert!(close(fit.residuals[0], -0.8, 1e-12));
        assert!(least_squares(&[1.0, 1.0], &[2.0, 3.0]).is_none());
    }

    #[test]
    fn scale_fit_is_geometric_mean() {
        // y / x = 0.5 and 0.8 -> k = sqrt(0.4).
        let fit = fit_scale(&[100.0, 10.0], &[50.0, 8.0]).unwrap();
        assert!(close(fit.factor, 0.4f64.sqrt(), 1e-12));
        assert!(close(fit.log_residuals[0], -fit.log_residuals[1], 1e-12));
        assert!(fit_scale(&[0.0], &[1.0]).is_none());
    }
}
