//! Pure statistics for the analysis commands: a ratio of means with its Welch confidence
//! interval (log-delta method, so that ratios of ratios combine), least squares on logarithms,
//! and the verdicts drawn from an interval.
//!
//! Why log-delta: the ratio of two means is skewed, its logarithm is close to normal. The
//! variance of `ln(mean)` is `sd^2 / (n * mean^2)`; the variances of independent terms add, and
//! the degrees of freedom come from Welch-Satterthwaite over the terms. The same code then gives
//! the CI of `b / a`, and of `(b1 / b0) / (a1 / a0)` (a speedup measured today against the same
//! speedup measured in the baseline run).

use distrs::StudentsT;
use serde::Serialize;

/// Summary of one sample: what is needed for a Welch interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Moments {
    /// Number of repetitions.
    pub n: usize,
    /// Arithmetic mean, in the metric's unit.
    pub mean: f64,
    /// Sample standard deviation (n - 1 denominator), in the metric's unit.
    pub sd: f64,
}

impl Moments {
    /// Moments of raw values; `None` when empty or not finite.
    pub fn of(values: &[f64]) -> Option<Moments> {
        if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let sd = if n > 1 {
            let ss: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
            (ss / (n as f64 - 1.0)).sqrt()
        } else {
            0.0
        };
        Some(Moments { n, mean, sd })
    }

    /// The log-scale estimate of this mean, `None` when the mean is not positive.
    pub fn log_estimate(&self) -> Option<LogEstimate> {
        if self.mean <= 0.0 || !self.mean.is_finite() {
            return None;
        }
        let var = if self.n > 0 {
            self.sd.powi(2) / (self.n as f64 * self.mean.powi(2))
        } else {
            f64::INFINITY
        };
        Some(LogEstimate {
            log_value: self.mean.ln(),
            terms: vec![(var, self.n.saturating_sub(1) as f64)],
        })
    }
}

/// `ln` of a positive quantity built from means by products and quotients, with the variance
/// terms (variance of ln(mean), degrees of freedom) of every mean involved.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEstimate {
    /// Natural logarithm of the point estimate.
    pub log_value: f64,
    /// One (variance, degrees of freedom) term per independent mean.
    pub terms: Vec<(f64, f64)>,
}

impl LogEstimate {
    /// The quotient `self / other`.
    pub fn div(&self, other: &LogEstimate) -> LogEstimate {
        let mut terms = self.terms.clone();
        terms.extend_from_slice(&other.terms);
        LogEstimate {
            log_value: self.log_value - other.log_value,
            terms,
        }
    }

    /// Total variance of the logarithm.
    pub fn variance(&self) -> f64 {
        self.terms.iter().map(|t| t.0).sum()
    }

    /// Welch-Satterthwaite degrees of freedom; infinite when every term has zero variance.
    pub fn welch_df(&self) -> f64 {
        let var = self.variance();
        let denom: f64 = self
            .terms
            .iter()
            .map(|&(v, df)| if df > 0.0 { v * v / df } else { f64::INFINITY })
            .sum();
        if var == 0.0 {
            f64::INFINITY
        } else {
            var * var / denom
        }
    }

    /// The point estimate and its two-sided 95% interval.
    pub fn ci95(&self) -> RatioCi {
        let ratio = self.log_value.exp();
        let df = self.welch_df();
        let var = self.variance();
        if df.is_nan() || df < 1.0 || !var.is_finite() {
            return RatioCi {
                ratio,
                low: f64::NAN,
                high: f64::NAN,
                df,
            };
        }
        let half = t_quantile_975(df) * var.sqrt();
        RatioCi {
            ratio,
            low: (self.log_value - half).exp(),
            high: (self.log_value + half).exp(),
            df,
        }
    }
}

/// 97.5% quantile of Student's t (the multiplier of a two-sided 95% interval).
pub fn t_quantile_975(df: f64) -> f64 {
    if df.is_infinite() {
        1.959_963_984_540_054
    } else {
        StudentsT::ppf(0.975, df)
    }
}

/// A ratio with its 95% confidence interval; `low`/`high` are NaN when not computable
/// (fewer than two repetitions on a side).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatioCi {
    /// Point estimate (dimensionless).
    pub ratio: f64,
    /// Lower bound of the 95% interval.
    pub low: f64,
    /// Upper bound of the 95% interval.
    pub high: f64,
    /// Welch-Satterthwaite degrees of freedom.
    pub df: f64,
}

impl RatioCi {
    /// True when the interval could be computed.
    pub fn has_ci(&self) -> bool {
        self.low.is_finite() && self.high.is_finite()
    }

    /// The reciprocal ratio (for metrics where lower is better), interval flipped.
    pub fn recip(&self) -> RatioCi {
        RatioCi {
            ratio: 1.0 / self.ratio,
            low: 1.0 / self.high,
            high: 1.0 / self.low,
            df: self.df,
        }
    }
}

/// Welch 95% CI of `mean(b) / mean(a)` by the log-delta method.
pub fn welch_ratio(a: &Moments, b: &Moments) -> Option<RatioCi> {
    Some(b.log_estimate()?.div(&a.log_estimate()?).ci95())
}

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
    fn moments_known_answer() {
        let m = Moments::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!(m.n, 8);
        assert!(close(m.mean, 5.0, 1e-12));
        // Sample variance 32/7.
        assert!(close(m.sd, (32.0f64 / 7.0).sqrt(), 1e-12));
        assert!(Moments::of(&[]).is_none());
        assert!(Moments::of(&[1.0, f64::NAN]).is_none());
    }

    #[test]
    fn t_quantiles_match_tables() {
        assert!(close(t_quantile_975(1.0), 12.706, 1e-3));
        assert!(close(t_quantile_975(4.0), 2.776, 1e-3));
        assert!(close(t_quantile_975(10.0), 2.228, 1e-3));
        assert!(close(t_quantile_975(f64::INFINITY), 1.960, 1e-3));
    }

    #[test]
    fn welch_ratio_known_answer() {
        // a: mean 100, sd 10, n 5 ; b: mean 120, sd 6, n 5.
        let a = Moments {
            n: 5,
            mean: 100.0,
            sd: 10.0,
        };
        let b = Moments {
            n: 5,
            mean: 120.0,
            sd: 6.0,
        };
        let ci = welch_ratio(&a, &b).unwrap();
        // var_a = 100/(5*10000) = 0.002 ; var_b = 36/(5*14400) = 0.0005 ; total 0.0025.
        // df = 0.0025^2 / (0.002^2/4 + 0.0005^2/4) = 6.25e-6 / 1.0625e-6 = 5.882...
        assert!(close(ci.ratio, 1.2, 1e-12));
        assert!(close(ci.df, 6.25 / 1.0625, 1e-9));
        let half = t_quantile_975(ci.df) * 0.05;
        assert!(close(ci.low, 1.2 * (-half).exp(), 1e-9));
        assert!(close(ci.high, 1.2 * half.exp(), 1e-9));
        // t(5.88) ~ 2.45 -> half ~ 0.1226 -> [1.061, 1.356].
        assert!(close(ci.low, 1.061, 2e-3), "{ci:?}");
        assert!(close(ci.high, 1.356, 2e-3), "{ci:?}");
    }

    #[test]
    fn agrees_with_measure_ratio_ci() {
        let a = [15.2, 15.9, 15.5, 16.1, 15.4];
        let b = [10.1, 10.3, 10.0, 10.4];
        let theirs = crate::measure::ratio_ci(&a, &b).unwrap();
        let ours = welch_ratio(&Moments::of(&b).unwrap(), &Moments::of(&a).unwrap()).unwrap();
        for (x, y) in [
            (ours.ratio, theirs.ratio),
            (ours.low, theirs.low),
            (ours.high, theirs.high),
        ] {
            assert!(close(x, y, 1e-9), "{ours:?} vs {theirs:?}");
        }
    }

    #[test]
    fn welch_ratio_needs_two_repetitions() {
        let a = Moments {
            n: 1,
            mean: 100.0,
            sd: 0.0,
        };
        let b = Moments {
            n: 3,
            mean: 120.0,
            sd: 6.0,
        };
        let ci = welch_ratio(&a, &b).unwrap();
        assert!(close(ci.ratio, 1.2, 1e-12));
        assert!(!ci.has_ci());
        assert_eq!(verdict(&ci, 0.05), Verdict::Undecided);
    }

    #[test]
    fn ratio_of_ratios_adds_variances() {
        let m = |mean: f64| Moments {
            n: 4,
            mean,
            sd: mean * 0.02,
        };
        let s_base = m(200.0)
            .log_estimate()
            .unwrap()
            .div(&m(100.0).log_estimate().unwrap());
        let s_now = m(150.0)
            .log_estimate()
            .unwrap()
            .div(&m(100.0).log_estimate().unwrap());
        let r = s_now.div(&s_base);
        assert!(close(r.log_value.exp(), 0.75, 1e-12));
        assert_eq!(r.terms.len(), 4);
        // Four equal terms of (0.02^2/4, 3 df): df = 4 * 3 = 12.
        assert!(close(r.welch_df(), 12.0, 1e-9));
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
