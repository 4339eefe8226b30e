//! The ground truth of a synthetic model: which token greedy decoding emits after which.
//!
//! `cycle`: the token ids of a "domain" (the ordinary tokens of the vocabulary: specials
//! such as end-of-text are outside it, so generation never stops by itself) are shuffled
//! with the seed and cut into cycles of `cycle_len`; the successor of a token is the next
//! one in its cycle. Tokens outside the domain map onto distinct domain tokens, so no
//! output row sums more than two embedding rows.
//!
//! A draft with `diverge` F keeps the target's successor except on a seeded random set of
//! round(F * domain) tokens, which it derails onto another token's successor
//! (`succ_d = succ ∘ σ`, σ a cyclic shift over the set): still a permutation of the domain,
//! and wrong exactly on that set.

use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};

use super::blocks::Rng;

/// What the weights of a synthetic model make it do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Behavior {
    /// Greedy decoding follows a known successor function made of cycles.
    Cycle(Cycle),
    /// Random weights with the published tying of embeddings; no ground truth.
    Random { seed: u64 },
}

/// Parameters of the `cycle` behaviour, plus the successor table built from them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cycle {
    pub cycle_len: u32,
    pub seed: u64,
    /// Fraction of domain tokens whose successor differs from the diverge-0 model.
    pub diverge: f64,
    /// Token ids that take part in cycles: `domain.0 .. domain.1`.
    pub domain: (u32, u32),
    pub n_vocab: u32,
    #[serde(skip)]
    table: Arc<OnceLock<Vec<u32>>>,
}

impl Cycle {
    pub fn new(cycle_len: u32, seed: u64, diverge: f64, domain: (u32, u32), n_vocab: u32) -> Cycle {
        Cycle {
            cycle_len,
            seed,
            diverge,
            domain,
            n_vocab,
            table: Arc::default(),
        }
    }

    /// The successor of every token id `0..n_vocab`.
    pub fn table(&self) -> &[u32] {
        self.table.get_or_init(|| build_table(self))
    }

    /// The ids that take part in cycles, as a shuffled order (cycle k is
    /// `order[k*len .. (k+1)*len]`).
    fn order(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (self.domain.0..self.domain.1).collect();
        shuffle(&mut order, &mut Rng::new(self.seed));
        order
    }
}

fn shuffle(v: &mut [u32], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

fn build_table(c: &Cycle) -> Vec<u32> {
    let mut succ: Vec<u32> = (0..c.n_vocab).collect();
    let order = c.order();
    let len = c.cycle_len.max(1) as usize;
    for chunk in order.chunks(len) {
        for (i, &t) in chunk.iter().enumerate() {
            succ[t as usize] = chunk[(i + 1) % chunk.len()];
        }
    }
    diverge(c, &order, &mut succ);
    map_outside(c, &order, &mut succ);
    succ
}

/// Derails the successor on round(diverge * domain) tokens (at least two, or none).
fn diverge(c: &Cycle, order: &[u32], succ: &mut [u32]) {
    let n = (c.diverge.clamp(0.0, 1.0) * order.len() as f64).round() as usize;
    if n < 2 {
        return;
    }
    let mut set = order.to_vec();
    shuffle(&mut set, &mut Rng::new(c.seed ^ 0xD1_7E_59_E5));
    set.truncate(n);
    let old: Vec<u32> = set.iter().map(|&t| succ[t as usize]).collect();
    for (i, &t) in set.iter().enumerate() {
        succ[t as usize] = old[(i + 1) % n];
    }
}

/// Tokens outside the domain go to distinct domain tokens (wrapping if there are more).
fn map_outside(c: &Cycle, order: &[u32], succ: &mut [u32]) {
    if order.is_empty() {
        return;
    }
    let outside = (0..c.domain.0).chain(c.domain.1..c.n_vocab);
    for (k, t) in outside.enumerate() {
        succ[t as usize] = order[k % order.len()];
    }
}

/// Metadata key holding the recipe as JSON, so a synthetic file given anywhere (`bench run
/// -m`, a profile's `model`) keeps its known behaviour.
pub const RECIPE_KEY: &str = "tpsbench.synth.recipe";

impl Behavior {
    /// The behaviour a file written by `bench synth` records in its recipe
    /// ([`RECIPE_KEY`]); `None` for any other GGUF.
    pub fn of_model(model: &crate::gguf::Model) -> Option<Behavior> {
        #[derive(Deserialize)]
        struct Stored {
            behavior: Behavior,
        }
        let json = model.get(RECIPE_KEY)?.as_str()?;
        serde_json::from_str::<Stored>(json)
            .ok()
            .map(|s| s.behavior)
    }

    /// Whether the model's greedy output is known in advance.
    pub fn has_ground_truth(&self) -> bool {
        matches!(self, Behavior::Cycle(_))
    }

    /// The token greedy decoding emits after `tok` (`tok` itself without ground truth).
    pub fn successor(&self, tok: u32) -> u32 {
        match self {
            Behavior::Cycle(c) => c.table().get(tok as usize).copied().unwrap_or(tok),
            Behavior::Random { .. } => tok,
        }
    }

    /// The `n` tokens greedy decoding emits after `prompt` (empty without ground truth or
    /// an empty prompt): each is the successor of the one before.
    pub fn predicted(&self, prompt: &[u32], n: usize) -> Vec<u32> {
        let (Behavior::Cycle(_), Some(&last)) = (self, prompt.last()) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(n);
        let mut t = last;
        for _ in 0..n {
            t = self.successor(t);
            out.push(t);
        }
        out
    }

    /// A prompt of `len` tokens that walks a cycle (each token the successor of the one
    /// before), starting from the first domain token; empty without ground truth.
    pub fn cycle_prompt(&self, len: usize) -> Vec<u32> {
        let Behavior::Cycle(c) = self else {
            return Vec::new();
        };
        let mut out = vec![c.domain.0];
        out.extend(self.predicted(&out.clone(), len.saturating_sub(1)));
        out.truncate(len);
        out
    }

    /// The seed that the weights are drawn from.
    pub fn seed(&self) -> u64 {
        match self {
            Behavior::Cycle(c) => c.seed,
            Behavior::Random { seed } => *seed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cyc(diverge: f64) -> Behavior {
        Behavior::Cycle(Cycle::new(64, 42, diverge, (0, 4000), 4096))
    }

    #[test]
    fn successor_is_a_permutation_made_of_cycles_of_the_chosen_length() {
        let b = cyc(0.0);
        let Behavior::Cycle(c) = &b else {
            unreachable!()
        };
        let mut seen = vec![false; 4000];
        for t in 0..4000 {
            seen[b.successor(t) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s), "not a permutation of the domain");
        // 4000 = 62 * 64 + 32: every token returns to itself after 64 steps, except the 32 of the last.
        let period = |t: u32| {
            (1..=64)
                .find(|&k| b.predicted(&[t], k)[k - 1] == t)
                .unwrap()
        };
        let long = (0..4000).filter(|&t| period(t) == 64).count();
        assert_eq!(long, 62 * 64);
        assert!(
            c.table()[4000..].iter().all(|&s| s < 4000),
            "specials must lead into the domain"
        );
    }

    #[test]
    fn diverged_draft_differs_on_the_requested_fraction() {
        let (t, d) = (cyc(0.0), cyc(0.3));
        let differ = (0..4000)
            .filter(|&x| t.successor(x) != d.successor(x))
            .count();
        assert_eq!(differ, 1200);
        assert_eq!(
            (0..4000)
                .filter(|&x| t.successor(x) != cyc(0.0).successor(x))
                .count(),
            0
        );
    }

    #[test]
    fn cycle_prompt_walks_the_cycle_and_predicted_continues_it() {
        let b = cyc(0.0);
        let p = b.cycle_prompt(10);
        assert_eq!(p.len(), 10);
        assert!(p.windows(2).all(|w| b.successor(w[0]) == w[1]));
        let next = b.predicted(&p, 3);
        assert_eq!(next[0], b.successor(p[9]));
        assert!(Behavior::Random { seed: 1 }.predicted(&p, 3).is_empty());
    }
}
