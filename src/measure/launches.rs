//! Launch-to-launch variation: how much the mean decode speed of one cell moves when its
//! server is started again. Repetitions within a launch share whatever a launch fixes (where
//! the weights landed in memory, which cores the threads settled on, the state of the page
//! cache); an interval from one launch's repetitions says nothing about the next launch. A
//! baseline cell measured in `k >= 2` launches estimates that variation, and the speedup
//! interval adds it ([`launch_variance`]).
//!
//! The model, on the log scale (so the estimate is a coefficient of variation): launch `i`'s
//! mean `l_i = ln(mean_i) = mu + L_i + e_i`, with a launch effect `L_i` of variance `s_L^2`
//! and a within-launch error `e_i` of variance `v_i = sd_i^2 / (n_i * mean_i^2)` (the delta
//! method, as in [`super::ratio`]). For independent `l_i` with variances `w_i`,
//! `E[sum (l_i - mean(l))^2] = (k - 1) / k * sum w_i`, so
//!
//! ```text
//! S^2    = sum (l_i - mean(l))^2 / (k - 1)     E[S^2] = s_L^2 + mean(v_i)
//! s_L^2  = max(0, S^2 - mean(v_i))             (method of moments, floored at 0)
//! ```
//!
//! With two launches the estimate has one degree of freedom: it enters an interval as a
//! plug-in (as if known, no t quantile), which is why the interval is approximate; more
//! launches (`--baseline-launches`) make it firmer.

use super::{t_quantile_975, Summary};

/// The launch-to-launch coefficient of variation of a cell's mean decode speed from the
/// per-repetition speeds of each launch (see the module docs); `None` with fewer than two
/// launches that have a positive mean. A launch with one repetition contributes no
/// within-launch variance.
pub fn between_launch_cv(launches: &[Vec<f64>]) -> Option<f64> {
    let means: Vec<(f64, f64)> = launches
        .iter()
        .filter_map(|values| {
            let m = super::Moments::of(values)?;
            (m.mean > 0.0).then(|| {
                let within = match m.n {
                    0 | 1 => 0.0,
                    n => m.sd.powi(2) / (n as f64 * m.mean.powi(2)),
                };
                (m.mean.ln(), within)
            })
        })
        .collect();
    let k = means.len();
    if k < 2 {
        return None;
    }
    let grand = means.iter().map(|m| m.0).sum::<f64>() / k as f64;
    let spread = means.iter().map(|m| (m.0 - grand).powi(2)).sum::<f64>() / (k - 1) as f64;
    let within = means.iter().map(|m| m.1).sum::<f64>() / k as f64;
    Some((spread - within).max(0.0).sqrt())
}

/// The variance that launch-to-launch variation `cv` adds to the log of a mean pooled over
/// `launches` launches: `cv^2 / launches`.
pub fn mean_launch_variance(cv: f64, launches: u32) -> f64 {
    cv.powi(2) / f64::from(launches.max(1))
}

/// The variance that launch-to-launch variation `cv` adds to the log of a ratio whose
/// numerator pools `own_launches` launches and whose denominator pools `base_launches`:
/// `cv^2 * (1 / own + 1 / base)`. A paired speedup is one launch over one (the partner):
/// `2 cv^2`; an unpaired one over a baseline of two launches: `1.5 cv^2`.
pub fn launch_variance(cv: f64, own_launches: u32, base_launches: u32) -> f64 {
    mean_launch_variance(cv, own_launches) + mean_launch_variance(cv, base_launches)
}

/// A mean's summary with its 95% interval widened by the launch-to-launch variation: the
/// standard error `sqrt(sd^2 / n + (cv * mean)^2 / launches)` (the delta method of
/// [`mean_launch_variance`] on the mean's scale), the t quantile at the Welch-Satterthwaite
/// degrees of freedom with the launch term counted as known.
pub fn with_launch_variation(s: &Summary, cv: f64, launches: u32) -> Summary {
    let (Some(sd), true) = (s.sd, s.n >= 2) else {
        return s.clone();
    };
    let within = sd.powi(2) / s.n as f64;
    let var = within + mean_launch_variance(cv, launches) * s.mean.powi(2);
    let df = match within > 0.0 {
        true => var.powi(2) / (within.powi(2) / (s.n - 1) as f64),
        false => f64::INFINITY,
    };
    let half = t_quantile_975(df) * var.sqrt();
    Summary {
        ci95_low: Some(s.mean - half),
        ci95_high: Some(s.mean + half),
        ..s.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::Sample;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn two_launches_by_hand() {
        // Computed independently with Python's statistics module:
        //   a = [100, 102, 98]; b = [110, 111, 109]
        //   l = [log(100), log(110)]; S2 = variance(l) = 0.0045420152
        //   v = [variance(a) / (3 * 100**2), variance(b) / (3 * 110**2)]
        //     = [1.3333e-4, 2.7548e-5]; sqrt(S2 - mean(v)) = 0.0667950179
        let cv = between_launch_cv(&[vec![100.0, 102.0, 98.0], vec![110.0, 111.0, 109.0]]);
        assert!((cv.unwrap() - 0.0667950179).abs() < 1e-9, "{cv:?}");
    }

    #[test]
    fn launches_that_agree_within_their_noise_vary_by_nothing() {
        let cv = between_launch_cv(&[vec![100.0, 104.0, 96.0], vec![101.0, 97.0, 102.0]]);
        assert_eq!(cv, Some(0.0));
    }

    #[test]
    fn one_launch_says_nothing() {
        assert_eq!(between_launch_cv(&[vec![1.0, 2.0]]), None);
        assert_eq!(between_launch_cv(&[vec![1.0, 2.0], vec![]]), None);
    }

    fn normal(rng: &mut SmallRng) -> f64 {
        // Box-Muller.
        let (u, v): (f64, f64) = (rng.gen_range(f64::EPSILON..1.0), rng.gen());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// A construction with a known answer: launches whose speed is scaled by exp(L), L with a
    /// known sd, repetitions with a known within-launch cv. The squared estimate averages to
    /// the true launch variance (it is floored at 0, so a touch above it when the launch
    /// variation is small next to the noise; here it is not).
    #[test]
    fn recovers_a_known_launch_variation_on_average() {
        let mut rng = SmallRng::seed_from_u64(7);
        for (k, reps) in [(2usize, 3usize), (2, 6), (4, 3)] {
            let (s_launch, s_within) = (0.05, 0.02);
            let trials = 20_000;
            let mut sum = 0.0;
            for _ in 0..trials {
                let launches: Vec<Vec<f64>> = (0..k)
                    .map(|_| {
                        let l = s_launch * normal(&mut rng);
                        (0..reps)
                            .map(|_| 50.0 * (l + s_within * normal(&mut rng)).exp())
                            .collect()
                    })
                    .collect();
                sum += between_launch_cv(&launches).unwrap().powi(2);
            }
            let mean = sum / trials as f64;
            let truth = s_launch * s_launch;
            assert!(
                (mean / truth - 1.0).abs() < 0.06,
                "k {k}, reps {reps}: mean estimate {mean:.6} against {truth:.6}"
            );
        }
    }

    #[test]
    fn a_mean_interval_widens_by_the_launch_variation() {
        // mean 100, sd 2, n 6; cv 3% over 2 launches: var = 4/6 + 0.0009 * 10000 / 2 = 5.1667,
        // df = 5.1667^2 / ((4/6)^2 / 5) = 300.3125, t(0.975, 300.3125) = 1.9678947 (the
        // Cornish-Fisher expansion to 1/df^3, in Python): half-width 4.4730843.
        let s = Sample::new(&[98.0, 102.0, 100.0, 98.0, 102.0, 100.0])
            .unwrap()
            .summary();
        assert!((s.sd.unwrap() - 1.7888543819998317).abs() < 1e-12);
        let sd = 2.0;
        let s = Summary { sd: Some(sd), ..s };
        let w = with_launch_variation(&s, 0.03, 2);
        let half = w.ci95_high.unwrap() - 100.0;
        let var: f64 = sd * sd / 6.0 + 0.0009 * 10000.0 / 2.0;
        assert!((half - 4.4730843).abs() < 1e-6, "{half} for var {var}");
        assert_eq!(with_launch_variation(&s, 0.0, 2).ci95_high, {
            let h = t_quantile_975(5.0) * (sd * sd / 6.0f64).sqrt();
            Some(100.0 + h)
        });
    }

    #[test]
    fn paired_and_unpaired_ratios_add_what_their_launches_carry() {
        assert!((launch_variance(0.1, 1, 1) - 0.02).abs() < 1e-15);
        assert!((launch_variance(0.1, 1, 2) - 0.015).abs() < 1e-15);
        assert_eq!(launch_variance(0.0, 1, 1), 0.0);
    }
}
