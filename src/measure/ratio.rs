//! Ratio of two means with a 95% confidence interval: speedups, machine comparisons, the
//! regression gate. The one home of ratio intervals in tpsbench; the numerator always comes
//! first. Two sampling designs, two intervals: independent samples (Welch, below) and paired
//! samples ([`paired_ratio_ci`], further below), where repetition `i` of the numerator and of
//! the denominator ran back to back on one machine.
//!
//! Method: Welch's t on the log scale with the delta method. `ln(mean)` has variance
//! `sd^2 / (n * mean^2)`; the variances of independent means add ([`LogEstimate`] keeps one
//! term per mean, so that ratios of ratios combine: a speedup today over the same speedup in a
//! baseline run is four means), and the degrees of freedom come from Welch-Satterthwaite over
//! the terms. For two samples `a` and `b`:
//!
//! ```text
//! ratio = ma / mb
//! va    = sa^2 / (na * ma^2)          (variance of ln ma, delta method)
//! vb    = sb^2 / (nb * mb^2)
//! se    = sqrt(va + vb)
//! df    = (va + vb)^2 / (va^2 / (na - 1) + vb^2 / (nb - 1))   (Welch-Satterthwaite)
//! CI    = ratio * exp(-+ t(0.975, df) * se)
//! ```
//!
//! Why this and not Fieller: the log-scale interval is always finite and positive, is
//! symmetric in the sense that swapping `a` and `b` inverts it exactly, and agrees with
//! Fieller to well under a percent when the coefficients of variation are a few percent,
//! which is where decode t/s lives. It needs positive means and at least two values each.

use serde::Serialize;

use super::sample::{t_quantile_975, Sample, SampleError};

// Paired samples. When numerator and denominator were measured in pairs (one request to each
// server, back to back, alternating), a slow phase of a shared machine slows both members of
// a pair, and the pair's ratio keeps what the two servers differ by. The interval is the
// one-sample t interval of the per-pair log ratios:
//
//   d_i   = ln(a_i / b_i)
//   ratio = exp(mean(d))                      (geometric mean of the pair ratios)
//   se    = sd(d) / sqrt(n)                   (n pairs, sd with n - 1)
//   CI    = exp(mean(d) -+ t(0.975, n - 1) * se)
//
// Its point estimate is the geometric mean of the pair ratios, not the ratio of the arithmetic
// means that the Welch interval reports; the two agree to within the square of the
// coefficient of variation (a few parts in ten thousand for decode t/s).

/// `ln` of the paired ratio of `numerator[i] / denominator[i]` as a [`LogEstimate`] with one
/// term (variance of the mean log ratio, n - 1 degrees of freedom), so that it combines with
/// other estimates like a Welch one (a paired speedup of today over a paired speedup of a
/// baseline run). Errors: sides of different lengths, fewer than two pairs, a value that is
/// not finite or not positive.
pub fn paired_log_estimate(
    numerator: &[f64],
    denominator: &[f64],
) -> Result<LogEstimate, SampleError> {
    if numerator.len() != denominator.len() {
        return Err(SampleError::Unpaired {
            numerator: numerator.len(),
            denominator: denominator.len(),
        });
    }
    let logs = log_ratios(numerator, denominator)?;
    let sample = Sample::new(&logs)?;
    let n = sample.len();
    let var = sample.variance().ok_or(SampleError::TooFew {
        what: "a paired ratio confidence interval",
        needed: 2,
        got: n,
    })?;
    Ok(LogEstimate {
        log_value: sample.mean(),
        terms: vec![(var / n as f64, (n - 1) as f64)],
    })
}

/// The paired ratio with its 95% CI: the geometric mean of `numerator[i] / denominator[i]`
/// and the t interval of the mean log ratio over the pairs (see [`paired_log_estimate`]).
pub fn paired_ratio_ci(numerator: &[f64], denominator: &[f64]) -> Result<RatioCi, SampleError> {
    Ok(paired_log_estimate(numerator, denominator)?.ci95())
}

/// `ln(a / b)` of every pair; an error for a value that is not finite or not positive.
fn log_ratios(numerator: &[f64], denominator: &[f64]) -> Result<Vec<f64>, SampleError> {
    Sample::new(numerator)?;
    Sample::new(denominator)?;
    let bad = numerator.iter().chain(denominator).find(|v| **v <= 0.0);
    if let Some(&mean) = bad {
        return Err(SampleError::NotPositive {
            what: "a paired ratio confidence interval",
            mean,
        });
    }
    Ok(numerator
        .iter()
        .zip(denominator)
        .map(|(a, b)| (a / b).ln())
        .collect())
}

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

    /// This estimate with the variance of launch-to-launch variation added
    /// ([`super::launch_variance`], [`super::mean_launch_variance`]): a term of infinite
    /// degrees of freedom, since the variation is plugged in as estimated (see
    /// [`super::between_launch_cv`]).
    pub fn with_launch_variance(mut self, var: f64) -> Self {
        if var > 0.0 {
            self.terms.push((var, f64::INFINITY));
        }
        self
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

    /// The point estimate and its two-sided 95% interval (NaN bounds when a term has no
    /// degrees of freedom or an infinite variance).
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

/// Welch 95% CI of `mean(numerator) / mean(denominator)` from two summaries (log-delta
/// method); `None` when a mean is not positive. Bounds are NaN with fewer than two values on a
/// side.
pub fn ratio_of(numerator: &Moments, denominator: &Moments) -> Option<RatioCi> {
    Some(
        numerator
            .log_estimate()?
            .div(&denominator.log_estimate()?)
            .ci95(),
    )
}

/// `mean(numerator) / mean(denominator)` with its 95% CI from raw values (see the module
/// docs). For a speedup, the numerator is the accelerated cell's decode t/s and the
/// denominator the baseline's. Errors name what is missing: no values, a non-finite value,
/// fewer than two values on a side, a mean that is not positive.
pub fn ratio_ci(numerator: &[f64], denominator: &[f64]) -> Result<RatioCi, SampleError> {
    let a = checked_moments(numerator)?;
    let b = checked_moments(denominator)?;
    ratio_of(&a, &b).ok_or(SampleError::NotPositive {
        what: "a ratio confidence interval",
        mean: a.mean.min(b.mean),
    })
}

/// Moments of a side that can enter a ratio interval: a valid sample of at least two values
/// with a positive mean.
fn checked_moments(values: &[f64]) -> Result<Moments, SampleError> {
    let sample = Sample::new(values)?;
    let n = sample.len();
    let sd = sample.sd().ok_or(SampleError::TooFew {
        what: "a ratio confidence interval",
        needed: 2,
        got: n,
    })?;
    let mean = sample.mean();
    if mean <= 0.0 {
        return Err(SampleError::NotPositive {
            what: "a ratio confidence interval",
            mean,
        });
    }
    Ok(Moments { n, mean, sd })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn matches_a_known_answer() {
        // Computed with numpy/scipy from the formulas in the module docs:
        // ratio 1.5313725490, df 6.9957035, t 2.3649187, CI 1.4819534 .. 1.5824397
        let a = [15.2, 15.9, 15.5, 16.1, 15.4];
        let b = [10.1, 10.3, 10.0, 10.4];
        let r = ratio_ci(&a, &b).unwrap();
        assert!(close(r.ratio, 1.5313725490, 1e-9), "{r:?}");
        assert!(close(r.df, 6.9957035, 1e-6), "{r:?}");
        assert!(close(r.low, 1.4819534, 1e-4), "{r:?}");
        assert!(close(r.high, 1.5824397, 1e-4), "{r:?}");
    }

    #[test]
    fn swapping_inverts_the_interval() {
        let a = [20.0, 21.0, 19.5];
        let b = [10.0, 10.5, 9.8, 10.1];
        let ab = ratio_ci(&a, &b).unwrap();
        let ba = ratio_ci(&b, &a).unwrap();
        assert!(close(ab.ratio * ba.ratio, 1.0, 1e-12));
        assert!(close(ab.low * ba.high, 1.0, 1e-12));
        assert!(close(ab.high * ba.low, 1.0, 1e-12));
    }

    #[test]
    fn zero_spread_gives_a_point_interval() {
        let r = ratio_ci(&[4.0, 4.0], &[2.0, 2.0, 2.0]).unwrap();
        assert_eq!((r.ratio, r.low, r.high), (2.0, 2.0, 2.0));
        assert!(r.df.is_infinite());
    }

    #[test]
    fn refuses_what_it_cannot_compute() {
        assert!(matches!(
            ratio_ci(&[1.0], &[1.0, 2.0]),
            Err(SampleError::TooFew { .. })
        ));
        assert!(matches!(
            ratio_ci(&[1.0, 2.0], &[]),
            Err(SampleError::Empty)
        ));
        assert!(matches!(
            ratio_ci(&[-1.0, -2.0], &[1.0, 2.0]),
            Err(SampleError::NotPositive { .. })
        ));
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
    fn ratio_of_summaries_known_answer() {
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
        let ci = ratio_of(&b, &a).unwrap();
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
    fn summaries_and_raw_values_give_one_interval() {
        let a = [15.2, 15.9, 15.5, 16.1, 15.4];
        let b = [10.1, 10.3, 10.0, 10.4];
        let theirs = ratio_ci(&a, &b).unwrap();
        let ours = ratio_of(&Moments::of(&a).unwrap(), &Moments::of(&b).unwrap()).unwrap();
        for (x, y) in [
            (ours.ratio, theirs.ratio),
            (ours.low, theirs.low),
            (ours.high, theirs.high),
        ] {
            assert!(close(x, y, 1e-9), "{ours:?} vs {theirs:?}");
        }
    }

    #[test]
    fn ratio_of_summaries_needs_two_repetitions() {
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
        let ci = ratio_of(&b, &a).unwrap();
        assert!(close(ci.ratio, 1.2, 1e-12));
        assert!(!ci.has_ci());
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
}

#[cfg(test)]
mod paired_tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn matches_scipy() {
        // python3: d = ln(a / b); exp(mean(d) -+ t.ppf(0.975, 4) * sd(d) / sqrt(5)), and
        // scipy.stats.ttest_rel(ln a, ln b).confidence_interval(0.95) exponentiated (the same
        // interval): 1.5311769389, 1.5039999155 .. 1.5588450464; t = 2.7764451052,
        // variance of the mean log ratio 4.160454665813e-05, 4 degrees of freedom.
        let a = [15.2, 15.9, 15.5, 16.1, 15.4];
        let b = [10.1, 10.3, 10.0, 10.4, 10.2];
        let ci = paired_ratio_ci(&a, &b).unwrap();
        assert!(close(ci.ratio, 1.5311769389, 1e-9), "{ci:?}");
        assert!(close(ci.low, 1.5039999155, 1e-8), "{ci:?}");
        assert!(close(ci.high, 1.5588450464, 1e-8), "{ci:?}");
        assert_eq!(ci.df, 4.0);
        let e = paired_log_estimate(&a, &b).unwrap();
        assert!(close(e.terms[0].0, 4.160454665813e-05, 1e-15), "{e:?}");
    }

    #[test]
    fn drift_shared_by_both_sides_cancels() {
        // The machine slows from 100 to 60 t/s over the run; the accelerated side is twice
        // as fast with 1-2% noise. python3/scipy as above: 1.9997999760, 1.9609168858 ..
        // 2.0394540804. The Welch interval of the same values spans the drift.
        let b = [100.0, 90.0, 80.0, 70.0, 60.0];
        let noise = [1.01, 0.99, 1.0, 1.02, 0.98];
        let a: Vec<f64> = b.iter().zip(noise).map(|(b, e)| b * 2.0 * e).collect();
        let paired = paired_ratio_ci(&a, &b).unwrap();
        assert!(close(paired.ratio, 1.9997999760, 1e-9), "{paired:?}");
        assert!(close(paired.low, 1.9609168858, 1e-8), "{paired:?}");
        assert!(close(paired.high, 2.0394540804, 1e-8), "{paired:?}");
        let welch = ratio_ci(&a, &b).unwrap();
        assert!(welch.high - welch.low > 5.0 * (paired.high - paired.low));
    }

    #[test]
    fn refuses_what_it_cannot_pair() {
        assert_eq!(
            paired_ratio_ci(&[1.0, 2.0], &[1.0]),
            Err(SampleError::Unpaired {
                numerator: 2,
                denominator: 1
            })
        );
        assert!(matches!(
            paired_ratio_ci(&[1.0], &[2.0]),
            Err(SampleError::TooFew { .. })
        ));
        assert!(matches!(
            paired_ratio_ci(&[1.0, 0.0], &[2.0, 2.0]),
            Err(SampleError::NotPositive { .. })
        ));
        assert!(matches!(
            paired_ratio_ci(&[1.0, f64::NAN], &[2.0, 2.0]),
            Err(SampleError::NotFinite { .. })
        ));
        assert!(matches!(paired_ratio_ci(&[], &[]), Err(SampleError::Empty)));
    }

    #[test]
    fn swapping_the_sides_inverts_the_interval() {
        let a = [20.0, 21.0, 19.5, 20.2];
        let b = [10.0, 10.5, 9.8, 10.1];
        let ab = paired_ratio_ci(&a, &b).unwrap();
        let ba = paired_ratio_ci(&b, &a).unwrap();
        assert!(close(ab.ratio * ba.ratio, 1.0, 1e-12));
        assert!(close(ab.low * ba.high, 1.0, 1e-12));
    }
}

#[cfg(test)]
mod coverage {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    use super::ratio_ci;

    /// A normal deviate by Box-Muller.
    fn normal(rng: &mut SmallRng, mean: f64, sd: f64) -> f64 {
        let (u1, u2): (f64, f64) = (rng.gen_range(f64::EPSILON..1.0), rng.gen());
        mean + sd * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// The interval covers the true ratio about 95% of the time for small samples with a
    /// few percent of noise and unequal variances (the regime of decode t/s).
    #[test]
    fn covers_the_true_ratio_about_95_percent_of_the_time() {
        let mut rng = SmallRng::seed_from_u64(7);
        let trials = 4000;
        let mut covered = 0;
        for _ in 0..trials {
            let a: Vec<f64> = (0..4).map(|_| normal(&mut rng, 30.0, 1.5)).collect();
            let b: Vec<f64> = (0..6).map(|_| normal(&mut rng, 20.0, 0.3)).collect();
            let ci = ratio_ci(&a, &b).unwrap();
            if ci.low <= 1.5 && 1.5 <= ci.high {
                covered += 1;
            }
        }
        let share = f64::from(covered) / f64::from(trials);
        assert!((0.93..=0.97).contains(&share), "coverage {share}");
    }
}
