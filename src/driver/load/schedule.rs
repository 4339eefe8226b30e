//! The open loop's arrival times, drawn before the phase starts so that sending is only a
//! sleep until the next instant (nothing drawn on the hot path) and a seed gives the same
//! phase twice: gaps from an exponential (burstiness 1, a Poisson process) or a gamma
//! distribution of shape `burstiness` and mean `1 / rps` (vllm's `--burstiness`), the first
//! request at the phase start, as vllm sends it.

use super::mix::Mix;
use super::pattern::{LoadSpec, Pattern};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Exp, Gamma};
use std::time::Duration;

/// One request of the open loop: when it is due and which mix entry it sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arrival {
    /// Offset from the phase start.
    pub at: Duration,
    /// Index into [`Mix::entries`].
    pub pick: usize,
}

/// The arrivals of an open-loop phase, within its bounds (empty for the closed loop, whose
/// sends follow its answers, and for an unbounded or invalid spec: see
/// [`LoadSpec::validate`]). The same seed gives the same prompts at the same offsets.
pub fn schedule(spec: &LoadSpec, mix: &Mix) -> Vec<Arrival> {
    let Pattern::Rate { rps, burstiness } = spec.pattern else {
        return Vec::new();
    };
    let Some(mut gaps) = Gaps::new(rps, burstiness, spec.seed) else {
        return Vec::new();
    };
    let mut arrivals = Vec::new();
    let mut at = Duration::ZERO;
    for pick in mix.picks(spec.seed) {
        if !spec.may_send(arrivals.len() as u32, at) {
            break;
        }
        arrivals.push(Arrival { at, pick });
        at += gaps.next_gap();
    }
    arrivals
}

/// The gaps between arrivals: seconds drawn from an exponential or a gamma distribution.
pub struct Gaps {
    shape: GapShape,
    rng: StdRng,
}

enum GapShape {
    Poisson(Exp<f64>),
    Gamma(Gamma<f64>),
}

impl Gaps {
    /// Gaps of mean `1 / rps` with shape `burstiness`; `None` unless both are positive
    /// numbers.
    pub fn new(rps: f64, burstiness: f64, seed: u64) -> Option<Gaps> {
        let usable = |x: f64| x.is_finite() && x > 0.0;
        if !usable(rps) || !usable(burstiness) {
            return None;
        }
        let shape = if burstiness == 1.0 {
            GapShape::Poisson(Exp::new(rps).ok()?)
        } else {
            // Mean = shape x scale = 1 / rps; coefficient of variation 1 / sqrt(shape).
            GapShape::Gamma(Gamma::new(burstiness, 1.0 / (rps * burstiness)).ok()?)
        };
        let rng = StdRng::seed_from_u64(seed);
        Some(Gaps { shape, rng })
    }

    /// The next gap.
    pub fn next_gap(&mut self) -> Duration {
        let seconds = match &self.shape {
            GapShape::Poisson(exp) => exp.sample(&mut self.rng),
            GapShape::Gamma(gamma) => gamma.sample(&mut self.rng),
        };
        Duration::from_secs_f64(seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::load::mix::MixEntry;
    use crate::driver::load::pattern::Bounds;
    use crate::engine::request::{CompletionRequest, Prompt};

    fn mix(n: usize) -> Mix {
        let entry = |i| MixEntry {
            label: format!("p{i}"),
            request: CompletionRequest::new(Prompt::Text("x".into()), 4),
            weight: 1.0,
        };
        Mix {
            entries: (0..n).map(entry).collect(),
        }
    }

    fn rate(rps: f64, burstiness: f64, seed: u64, bounds: Bounds) -> LoadSpec {
        LoadSpec {
            pattern: Pattern::Rate { rps, burstiness },
            bounds,
            seed,
        }
    }

    fn requests(n: u32) -> Bounds {
        Bounds {
            requests: Some(n),
            duration: None,
        }
    }

    /// Mean and coefficient of variation of `n` gaps (seconds).
    fn gap_stats(rps: f64, burstiness: f64, n: usize) -> (f64, f64) {
        let mut gaps = Gaps::new(rps, burstiness, 11).unwrap();
        let xs: Vec<f64> = (0..n).map(|_| gaps.next_gap().as_secs_f64()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        (mean, var.sqrt() / mean)
    }

    #[test]
    fn same_seed_same_prompts_at_same_offsets_other_seed_differs() {
        let a = schedule(&rate(5.0, 1.0, 42, requests(200)), &mix(3));
        let b = schedule(&rate(5.0, 1.0, 42, requests(200)), &mix(3));
        let c = schedule(&rate(5.0, 1.0, 43, requests(200)), &mix(3));
        assert_eq!(a.len(), 200);
        assert_eq!(a, b);
        assert_ne!(
            a.iter().map(|x| x.at).collect::<Vec<_>>(),
            c.iter().map(|x| x.at).collect::<Vec<_>>()
        );
        assert_ne!(
            a.iter().map(|x| x.pick).collect::<Vec<_>>(),
            c.iter().map(|x| x.pick).collect::<Vec<_>>()
        );
        assert!(a.windows(2).all(|w| w[0].at <= w[1].at));
        assert_eq!(a[0].at, Duration::ZERO);
    }

    #[test]
    fn poisson_gaps_have_mean_one_over_rate_and_cv_one() {
        let (mean, cv) = gap_stats(4.0, 1.0, 100_000);
        assert!((mean - 0.25).abs() / 0.25 < 0.02, "mean {mean}");
        assert!((cv - 1.0).abs() < 0.02, "cv {cv}");
    }

    #[test]
    fn gamma_gaps_have_cv_one_over_sqrt_burstiness() {
        for b in [0.25, 0.5, 4.0] {
            let (mean, cv) = gap_stats(2.0, b, 100_000);
            let expected = 1.0 / f64::sqrt(b);
            assert!(
                (mean - 0.5).abs() / 0.5 < 0.03,
                "burstiness {b}: mean {mean}"
            );
            assert!(
                (cv - expected).abs() / expected < 0.04,
                "burstiness {b}: cv {cv}"
            );
        }
    }

    #[test]
    fn duration_bounds_the_schedule() {
        let ten_s = Bounds {
            duration: Some(Duration::from_secs(10)),
            requests: None,
        };
        let arrivals = schedule(&rate(50.0, 1.0, 3, ten_s), &mix(1));
        assert!(arrivals.iter().all(|a| a.at < Duration::from_secs(10)));
        assert!((450..550).contains(&arrivals.len()), "{}", arrivals.len());
        let both = Bounds {
            requests: Some(20),
            ..ten_s
        };
        assert_eq!(schedule(&rate(50.0, 1.0, 3, both), &mix(1)).len(), 20);
    }

    #[test]
    fn closed_loop_and_unbounded_specs_have_no_schedule() {
        let closed = LoadSpec {
            pattern: Pattern::Concurrency { clients: 2 },
            bounds: requests(5),
            seed: 1,
        };
        assert!(schedule(&closed, &mix(1)).is_empty());
        assert!(schedule(&rate(1.0, 1.0, 1, Bounds::default()), &mix(1)).is_empty());
    }
}
