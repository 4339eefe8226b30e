//! Token agreement between two generations of the same prompt: the ground-truth check.
//!
//! At temperature 0, speculative and lookup decoding must reproduce the baseline's tokens
//! exactly (`lossless`); MoE expert reduction changes them, and the share of identical
//! positions is a quality proxy.

use serde::{Deserialize, Serialize};

use super::request::TopTwo;

/// How far two token sequences agree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agreement {
    /// Positions where both have the same token, over the longer length (fraction 0..1;
    /// positions present in only one sequence count as different; two empty sequences agree fully).
    pub identical_share: f64,
    /// First position (0-based) where they differ, including where one sequence ends first;
    /// `None` when identical.
    pub first_difference: Option<usize>,
    /// Identical tokens and identical length.
    pub lossless: bool,
}

/// How an output that is not identical to its baseline's differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Difference {
    /// At the first differing position the baseline's top two tokens were nearly equally
    /// likely (margin under [`NEAR_TIE_MARGIN`]) and the output took the second: a rounding
    /// flip (batched verification rounds differently from one-token decoding), lossless up
    /// to rounding.
    NearTie,
    /// Any other difference.
    Lossy,
}

/// Largest probability margin between the baseline's top two tokens at which a flip to the
/// second counts as a near tie (a flip at 0.500 against 0.483 has margin 0.017).
pub const NEAR_TIE_MARGIN: f64 = 0.05;

/// Why an output differs from its baseline's at `at` (the first difference).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Divergence {
    /// The baseline's top-two probability margin there, when known.
    pub margin: Option<f64>,
    /// The verdict: a near tie only when the margin is known, small, and the output took
    /// the baseline's second choice.
    pub kind: Difference,
}

/// Explains the first difference `at` between `base` and `now`, given the baseline's top
/// two tokens per position (`top_two`, from a reference request with the same prompt).
/// The reference must agree with `base` up to and including `at`, else the margin is not
/// known and the difference counts as lossy.
pub fn divergence(base: &[u32], now: &[u32], top_two: &[TopTwo], at: usize) -> Divergence {
    let aligned = top_two.len() > at
        && base.len() > at
        && top_two[..=at].iter().zip(base).all(|(t, b)| t.first == *b);
    let Some(t) = top_two.get(at).filter(|_| aligned) else {
        return Divergence {
            margin: None,
            kind: Difference::Lossy,
        };
    };
    let near = t.margin < NEAR_TIE_MARGIN && now.get(at) == Some(&t.second);
    Divergence {
        margin: Some(t.margin),
        kind: if near {
            Difference::NearTie
        } else {
            Difference::Lossy
        },
    }
}

/// Compares `a` with `b` position by position.
pub fn agreement(a: &[u32], b: &[u32]) -> Agreement {
    let longest = a.len().max(b.len());
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
    let first_difference = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or((a.len() != b.len()).then(|| a.len().min(b.len())));
    Agreement {
        identical_share: if longest == 0 {
            1.0
        } else {
            same as f64 / longest as f64
        },
        first_difference,
        lossless: first_difference.is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top(first: u32, second: u32, margin: f64) -> TopTwo {
        TopTwo {
            first,
            second,
            margin,
        }
    }

    #[test]
    fn a_flip_to_the_second_choice_at_a_small_margin_is_a_near_tie() {
        // The case: 0.500 against 0.483 at the first difference.
        let base = [5, 6, 7, 8];
        let refs = [
            top(5, 1, 0.9),
            top(6, 1, 0.8),
            top(7, 9, 0.017),
            top(8, 1, 0.9),
        ];
        let d = divergence(&base, &[5, 6, 9, 3], &refs, 2);
        assert_eq!(d.kind, Difference::NearTie);
        assert_eq!(d.margin, Some(0.017));
    }

    #[test]
    fn anything_else_is_lossy() {
        let base = [5, 6, 7, 8];
        let refs = [
            top(5, 1, 0.9),
            top(6, 1, 0.8),
            top(7, 9, 0.017),
            top(8, 1, 0.9),
        ];
        // a confident position
        let d = divergence(&base, &[5, 3, 7, 8], &refs, 1);
        assert_eq!((d.kind, d.margin), (Difference::Lossy, Some(0.8)));
        // a small margin, but the output took neither of the top two
        assert_eq!(
            divergence(&base, &[5, 6, 4, 8], &refs, 2).kind,
            Difference::Lossy
        );
        // the margin exactly at the threshold is not under it
        let at_threshold = [top(5, 2, NEAR_TIE_MARGIN)];
        assert_eq!(
            divergence(&[5], &[2], &at_threshold, 0).kind,
            Difference::Lossy
        );
        // no reference, or one that took another path before the difference: unknown
        let unknown = divergence(&base, &[5, 6, 9, 3], &[], 2);
        assert_eq!((unknown.kind, unknown.margin), (Difference::Lossy, None));
        let other_path = [top(5, 1, 0.9), top(4, 6, 0.8), top(7, 9, 0.017)];
        assert_eq!(divergence(&base, &[5, 6, 9], &other_path, 2).margin, None);
    }

    #[test]
    fn identical_is_lossless() {
        let a = agreement(&[1, 2, 3], &[1, 2, 3]);
        assert_eq!(
            a,
            Agreement {
                identical_share: 1.0,
                first_difference: None,
                lossless: true
            }
        );
        assert!(agreement(&[], &[]).lossless);
    }

    #[test]
    fn counts_matches_and_finds_the_first_difference() {
        let a = agreement(&[1, 2, 9, 4, 8], &[1, 2, 3, 4, 5]);
        assert_eq!(a.first_difference, Some(2));
        assert!((a.identical_share - 0.6).abs() < 1e-12);
        assert!(!a.lossless);
    }

    #[test]
    fn a_shorter_output_differs_where_it_ends() {
        let a = agreement(&[1, 2], &[1, 2, 3, 4]);
        assert_eq!(a.first_difference, Some(2));
        assert!((a.identical_share - 0.5).abs() < 1e-12);
        assert!(!a.lossless);
    }
}
