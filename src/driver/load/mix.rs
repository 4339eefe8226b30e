//! The prompts of a phase and how they are picked: the caller builds every request up
//! front (prompts made offline, never on the hot path), each with a label and a weight, and
//! the generator picks one per request from a sequence seeded by the phase's seed, so that
//! the open and the closed loop of one seed send the same prompts in the same order.

use crate::engine::request::CompletionRequest;
use rand::distributions::{Distribution, WeightedIndex};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// One kind of request in the mix.
#[derive(Debug, Clone)]
pub struct MixEntry {
    /// What the rows call it (a workload name, a prompt length).
    pub label: String,
    /// The request, ready to send.
    pub request: CompletionRequest,
    /// Relative frequency (any non-negative scale; the weights need not sum to 1).
    pub weight: f64,
}

/// The requests a phase picks from.
#[derive(Debug, Clone)]
pub struct Mix {
    pub entries: Vec<MixEntry>,
}

/// Keeps the pick sequence apart from the arrival gaps drawn from the same seed.
const PICK_STREAM: u64 = 0x5049_434b; // "PICK"

impl Mix {
    /// A mix of one request.
    pub fn single(label: &str, request: CompletionRequest) -> Mix {
        let entry = MixEntry {
            label: label.to_string(),
            request,
            weight: 1.0,
        };
        Mix {
            entries: vec![entry],
        }
    }

    /// Why the mix cannot be picked from, if it cannot: no entries, or weights that are not
    /// non-negative numbers with a positive sum.
    pub fn validate(&self) -> Result<(), String> {
        if self.entries.is_empty() {
            return Err("the request mix is empty".into());
        }
        match WeightedIndex::new(self.entries.iter().map(|e| e.weight)) {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("the request mix's weights are unusable: {e}")),
        }
    }

    /// The seeded sequence of picks (indices into `entries`). Unusable weights (see
    /// [`Mix::validate`]) are read as equal weights; an empty mix picks nothing.
    pub fn picks(&self, seed: u64) -> Picks {
        let weights = WeightedIndex::new(self.entries.iter().map(|e| e.weight))
            .or_else(|_| WeightedIndex::new(self.entries.iter().map(|_| 1.0)))
            .ok();
        Picks {
            weights,
            // StdRng, not SmallRng: its sequence for a seed is the same on every platform.
            rng: StdRng::seed_from_u64(seed ^ PICK_STREAM),
        }
    }
}

/// The picks of one phase, in sending order.
pub struct Picks {
    weights: Option<WeightedIndex<f64>>,
    rng: StdRng,
}

impl Iterator for Picks {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        Some(self.weights.as_ref()?.sample(&mut self.rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::request::Prompt;

    fn mix(weights: &[f64]) -> Mix {
        let entry = |(i, &weight): (usize, &f64)| MixEntry {
            label: format!("p{i}"),
            request: CompletionRequest::new(Prompt::Text("x".into()), 4),
            weight,
        };
        Mix {
            entries: weights.iter().enumerate().map(entry).collect(),
        }
    }

    #[test]
    fn picks_follow_the_weights() {
        let picks: Vec<usize> = mix(&[1.0, 3.0, 0.0]).picks(7).take(20_000).collect();
        let share = |k| picks.iter().filter(|&&p| p == k).count() as f64 / 20_000.0;
        assert!((share(0) - 0.25).abs() < 0.02, "{}", share(0));
        assert!((share(1) - 0.75).abs() < 0.02, "{}", share(1));
        assert_eq!(share(2), 0.0);
    }

    #[test]
    fn picks_are_reproducible_for_a_seed() {
        let m = mix(&[1.0, 1.0, 1.0]);
        let a: Vec<usize> = m.picks(1).take(50).collect();
        assert_eq!(a, m.picks(1).take(50).collect::<Vec<_>>());
        assert_ne!(a, m.picks(2).take(50).collect::<Vec<_>>());
    }

    #[test]
    fn unusable_mixes_are_named() {
        assert!(mix(&[]).validate().unwrap_err().contains("empty"));
        assert!(mix(&[0.0, 0.0]).validate().unwrap_err().contains("weights"));
        assert!(mix(&[-1.0]).validate().is_err());
        assert_eq!(mix(&[]).picks(1).next(), None);
        assert!(mix(&[0.0, 0.0]).picks(1).take(10).all(|p| p < 2));
    }
}
