//! The adaptive stopping rule: how many timed repetitions a cell gets.
//!
//! At least `min_reps`; then stop as soon as the 95% CI half-width of the mean decode t/s
//! is within `target_pct` percent of the mean, or `max_reps` repetitions are done, or the
//! cell's time budget is spent. The minimum wins over the budget, so every `ok` cell has a
//! confidence interval (a budget that cannot hold three repetitions is the profile's
//! problem, and the driver's time-out guards a stall).

use std::time::Duration;

use super::sample::Sample;

/// Why the rule says stop (or go on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Fewer than `min_reps`, or the CI is still too wide: measure again.
    Continue,
    /// The CI half-width is within `target_pct` of the mean.
    Converged,
    /// `max_reps` repetitions are done.
    MaxReps,
    /// The time budget is spent.
    Budget,
}

/// Parameters of the stopping rule (defaults: 3, 10, 2%, 5 minutes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adaptive {
    /// Repetitions always done (at least 2, so a CI exists).
    pub min_reps: usize,
    /// Repetitions never exceeded.
    pub max_reps: usize,
    /// Target CI half-width as a percentage of the mean (2.0 = 2%).
    pub target_pct: f64,
    /// Time after which no new repetition starts once `min_reps` are done.
    pub budget: Duration,
}

impl Default for Adaptive {
    fn default() -> Self {
        Adaptive {
            min_reps: 3,
            max_reps: 10,
            target_pct: 2.0,
            budget: Duration::from_secs(300),
        }
    }
}

impl Adaptive {
    /// Whether to run another repetition, given the decode t/s so far and the time spent.
    pub fn should_continue(&self, decode_tps: &[f64], elapsed: Duration) -> bool {
        self.decide(decode_tps, elapsed) == Decision::Continue
    }

    /// The decision with its reason.
    pub fn decide(&self, decode_tps: &[f64], elapsed: Duration) -> Decision {
        let n = decode_tps.len();
        if n < self.min_reps.max(2) {
            return Decision::Continue;
        }
        if n >= self.max_reps {
            return Decision::MaxReps;
        }
        if self.converged(decode_tps) {
            return Decision::Converged;
        }
        if elapsed >= self.budget {
            return Decision::Budget;
        }
        Decision::Continue
    }

    /// Whether the 95% CI half-width is within `target_pct` percent of the mean. Values
    /// that are not a valid sample (NaN, non-positive mean) never converge.
    pub fn converged(&self, decode_tps: &[f64]) -> bool {
        let Ok(sample) = Sample::new(decode_tps) else {
            return false;
        };
        let mean = sample.mean();
        match sample.ci95_half_width() {
            Some(half) if mean > 0.0 => half / mean * 100.0 <= self.target_pct,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Duration = Duration::ZERO;

    #[test]
    fn always_runs_the_minimum() {
        let rule = Adaptive::default();
        assert!(rule.should_continue(&[], T0));
        assert!(rule.should_continue(&[10.0, 10.0], T0));
        // budget spent, but the minimum wins
        assert!(rule.should_continue(&[10.0, 10.0], Duration::from_secs(3600)));
    }

    #[test]
    fn stops_when_the_ci_is_tight() {
        // mean 10, sd 0.1, half-width t(2)*0.1/sqrt(3) = 0.248 = 2.48%: not yet
        let rule = Adaptive::default();
        assert_eq!(rule.decide(&[9.9, 10.0, 10.1], T0), Decision::Continue);
        // sd 0.05: half-width 0.124 = 1.24%: converged
        assert_eq!(rule.decide(&[9.95, 10.0, 10.05], T0), Decision::Converged);
    }

    #[test]
    fn stops_at_max_reps_and_budget() {
        let rule = Adaptive::default();
        let noisy = [5.0, 15.0, 5.0, 15.0, 5.0, 15.0, 5.0, 15.0, 5.0, 15.0];
        assert_eq!(rule.decide(&noisy[..9], T0), Decision::Continue);
        assert_eq!(rule.decide(&noisy, T0), Decision::MaxReps);
        assert_eq!(
            rule.decide(&noisy[..4], Duration::from_secs(300)),
            Decision::Budget
        );
        assert_eq!(
            rule.decide(&noisy[..4], Duration::from_secs(299)),
            Decision::Continue
        );
    }

    #[test]
    fn garbage_never_converges() {
        let rule = Adaptive::default();
        assert_eq!(rule.decide(&[0.0, 0.0, 0.0], T0), Decision::Continue);
        assert_eq!(rule.decide(&[1.0, f64::NAN, 1.0], T0), Decision::Continue);
    }
}
