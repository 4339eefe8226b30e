//! Ratio of two means with a 95% confidence interval: speedups and machine comparisons.
//!
//! Method: Welch's t on the log scale with the delta method. For samples `a` and `b` with
//! means `ma`, `mb`, sds `sa`, `sb` and sizes `na`, `nb`:
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

use super::sample::{t_quantile_975, Sample, SampleError};

/// A ratio of means with its 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatioCi {
    /// mean(a) / mean(b).
    pub ratio: f64,
    /// Lower bound of the 95% CI.
    pub low: f64,
    /// Upper bound of the 95% CI.
    pub high: f64,
    /// Welch-Satterthwaite degrees of freedom (infinite when both samples have zero spread).
    pub df: f64,
}

/// Verdict of a ratio against a noise band `1 - tolerance .. 1 + tolerance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatioVerdict {
    /// The whole CI lies above `1 + tolerance`.
    Higher,
    /// The whole CI lies below `1 - tolerance`.
    Lower,
    /// The CI reaches into the band.
    NotSignificant,
}

impl RatioCi {
    /// Compares the CI with `1 +- tolerance` (tolerance as a fraction, 0.05 = 5%).
    pub fn verdict(&self, tolerance: f64) -> RatioVerdict {
        if self.low > 1.0 + tolerance {
            RatioVerdict::Higher
        } else if self.high < 1.0 - tolerance {
            RatioVerdict::Lower
        } else {
            RatioVerdict::NotSignificant
        }
    }
}

/// mean(a) / mean(b) with its 95% CI (Welch on the log scale, see the module docs).
/// For a speedup, `a` is the accelerated cell's decode t/s and `b` the baseline's.
pub fn ratio_ci(a: &[f64], b: &[f64]) -> Result<RatioCi, SampleError> {
    let (ma, va, na) = log_mean_variance(a)?;
    let (mb, vb, nb) = log_mean_variance(b)?;
    let ratio = ma / mb;
    let var = va + vb;
    if var == 0.0 {
        return Ok(RatioCi {
            ratio,
            low: ratio,
            high: ratio,
            df: f64::INFINITY,
        });
    }
    let df = var.powi(2) / (va.powi(2) / (na - 1.0) + vb.powi(2) / (nb - 1.0));
    let spread = (t_quantile_975(df) * var.sqrt()).exp();
    Ok(RatioCi {
        ratio,
        low: ratio / spread,
        high: ratio * spread,
        df,
    })
}

/// Mean, delta-method variance of ln(mean), and size of one side.
fn log_mean_variance(values: &[f64]) -> Result<(f64, f64, f64), SampleError> {
    let sample = Sample::new(values)?;
    let n = sample.len();
    let variance = sample.variance().ok_or(SampleError::TooFew {
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
    Ok((mean, variance / (n as f64 * mean * mean), n as f64))
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
    fn verdicts_use_the_whole_interval() {
        let ci = |low, high| RatioCi {
            ratio: (low + high) / 2.0,
            low,
            high,
            df: 5.0,
        };
        assert_eq!(ci(1.06, 1.2).verdict(0.05), RatioVerdict::Higher);
        assert_eq!(ci(0.8, 0.94).verdict(0.05), RatioVerdict::Lower);
        assert_eq!(ci(0.9, 1.1).verdict(0.05), RatioVerdict::NotSignificant);
        assert_eq!(ci(0.93, 0.96).verdict(0.05), RatioVerdict::NotSignificant);
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
