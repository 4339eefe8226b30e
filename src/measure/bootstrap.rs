//! Case-resampling bootstrap (Efron and Tibshirani, "An Introduction to the Bootstrap", 1993,
//! chapter 9: resampling cases for regression): refit on `n` cases drawn with replacement,
//! many times, and read intervals off the percentiles of the refits ([`super::percentile`]).
//! Deterministic: a fixed seed drives a SplitMix64 generator (Steele, Lea and Flood 2014),
//! so the same input gives the same interval on every run and every machine.

/// SplitMix64: a tiny, well-mixed 64-bit generator; enough for choosing resampled indices.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator started at `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform index below `n` (`n > 0`; the modulo bias is below 2^-40 for the sizes here).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// `reps` refits of `fit` on case resamples of `0..n`; refits that fail (`None`, e.g. a
/// resample with too few distinct cases) are dropped.
pub fn case_bootstrap<T>(
    n: usize,
    reps: usize,
    seed: u64,
    mut fit: impl FnMut(&[usize]) -> Option<T>,
) -> Vec<T> {
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::with_capacity(reps);
    if n == 0 {
        return out;
    }
    for _ in 0..reps {
        let idx: Vec<usize> = (0..n).map(|_| rng.below(n)).collect();
        if let Some(v) = fit(&idx) {
            out.push(v);
        }
    }
    out
}

/// The 2.5th and 97.5th nearest-rank percentiles of `values` (a 95% percentile interval).
pub fn percentile_interval(values: &[f64]) -> Option<(f64, f64)> {
    Some((
        super::percentile(values, 0.025)?,
        super::percentile(values, 0.975)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_reference_values() {
        // First outputs for seed 1234567 as Rosetta Code's "Pseudo-random numbers/Splitmix64"
        // lists them (computed there from the reference C code, prng.di.unimi.it/splitmix64.c).
        let mut g = SplitMix64::new(1_234_567);
        assert_eq!(g.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(g.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn bootstrap_of_the_mean_covers_the_normal_interval() {
        // The mean of 1..=100 is 50.5 with standard error sd / 10 = 2.90; a 95% bootstrap
        // percentile interval is close to 50.5 +- 1.96 * 2.90 = [44.8, 56.2].
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let means = case_bootstrap(v.len(), 2000, 7, |idx| {
            Some(idx.iter().map(|&i| v[i]).sum::<f64>() / idx.len() as f64)
        });
        let (lo, hi) = percentile_interval(&means).unwrap();
        assert!(
            (lo - 44.8).abs() < 1.0 && (hi - 56.2).abs() < 1.0,
            "{lo} {hi}"
        );
    }
}
