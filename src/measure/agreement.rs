//! Token agreement between two generations of the same prompt: the ground-truth check.
//!
//! At temperature 0, speculative and lookup decoding must reproduce the baseline's tokens
//! exactly (`lossless`); MoE expert reduction changes them, and the share of identical
//! positions is a quality proxy.

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
