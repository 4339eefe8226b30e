//! A validated sample and its summary: mean, median, sd, Student-t 95% CI, MAD outliers.
//!
//! [`Sample`] is the only way into the statistics, so every function downstream can rely on
//! at least one point and no NaN or infinity.

use distrs::StudentsT;
use thiserror::Error;

/// Why a list of values cannot be a [`Sample`] (or a statistic cannot be computed from it).
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SampleError {
    /// No values at all.
    #[error("a sample needs at least one value, got none")]
    Empty,
    /// A value that is NaN or infinite.
    #[error("value {value} at index {index} is not a finite number")]
    NotFinite {
        /// Position in the input.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A statistic that needs more points than given (e.g. a variance needs two).
    #[error("{what} needs at least {needed} values, got {got}")]
    TooFew {
        /// The statistic.
        what: &'static str,
        /// Points needed.
        needed: usize,
        /// Points given.
        got: usize,
    },
    /// A paired statistic got sides of different lengths.
    #[error("a paired statistic needs as many denominators as numerators, got {numerator} and {denominator}")]
    Unpaired {
        /// Numerator values given.
        numerator: usize,
        /// Denominator values given.
        denominator: usize,
    },
    /// A ratio on the log scale needs positive means.
    #[error("{what} needs a positive mean, got {mean}")]
    NotPositive {
        /// The statistic.
        what: &'static str,
        /// The offending mean.
        mean: f64,
    },
}

/// At least one finite value, in the order measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample(Vec<f64>);

impl Sample {
    /// Checks the rules (non-empty, all finite) and keeps the values.
    pub fn new(values: &[f64]) -> Result<Sample, SampleError> {
        if values.is_empty() {
            return Err(SampleError::Empty);
        }
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(SampleError::NotFinite { index, value });
        }
        Ok(Sample(values.to_vec()))
    }

    /// The values, in the order measured.
    pub fn values(&self) -> &[f64] {
        &self.0
    }

    /// Number of values (at least 1).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a sample has at least one value.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Arithmetic mean.
    pub fn mean(&self) -> f64 {
        self.0.iter().sum::<f64>() / self.0.len() as f64
    }

    /// Median (mean of the two middle values for an even count).
    pub fn median(&self) -> f64 {
        median_of(&self.0)
    }

    /// Sample variance with the n-1 denominator; `None` for a single value.
    pub fn variance(&self) -> Option<f64> {
        let n = self.0.len();
        if n < 2 {
            return None;
        }
        let mean = self.mean();
        Some(self.0.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64)
    }

    /// Sample standard deviation (n-1); `None` for a single value.
    pub fn sd(&self) -> Option<f64> {
        self.variance().map(f64::sqrt)
    }

    /// Half-width of the 95% Student-t confidence interval of the mean:
    /// t(0.975, n-1) * sd / sqrt(n); `None` for a single value.
    pub fn ci95_half_width(&self) -> Option<f64> {
        let n = self.0.len();
        let sd = self.sd()?;
        Some(t_quantile_975((n - 1) as f64) * sd / (n as f64).sqrt())
    }

    /// Smallest value.
    pub fn min(&self) -> f64 {
        self.0.iter().copied().fold(f64::INFINITY, f64::min)
    }

    /// Largest value.
    pub fn max(&self) -> f64 {
        self.0.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }

    /// Indices of the outliers by the modified z-score (see [`mad_outliers`]).
    pub fn outliers(&self) -> Vec<usize> {
        mad_outliers(&self.0)
    }

    /// All summary statistics at once.
    pub fn summary(&self) -> Summary {
        let half = self.ci95_half_width();
        let mean = self.mean();
        Summary {
            n: self.len(),
            mean,
            median: self.median(),
            sd: self.sd(),
            ci95_low: half.map(|h| mean - h),
            ci95_high: half.map(|h| mean + h),
            min: self.min(),
            max: self.max(),
            outliers: self.outliers(),
        }
    }
}

/// Summary statistics of a [`Sample`]. `sd` and the CI are `None` for a single value.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Number of values.
    pub n: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Median.
    pub median: f64,
    /// Sample standard deviation (n-1 denominator).
    pub sd: Option<f64>,
    /// Lower bound of the 95% Student-t CI of the mean.
    pub ci95_low: Option<f64>,
    /// Upper bound of the 95% Student-t CI of the mean.
    pub ci95_high: Option<f64>,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Indices (into the sample) of values flagged as outliers; they stay in every statistic.
    pub outliers: Vec<usize>,
}

/// Two-sided 95% Student-t quantile t(0.975, df) for real `df > 0` (Welch gives fractional
/// degrees of freedom); infinite `df` gives the normal quantile.
///
/// `distrs` (Hill's algorithm 396) is exact enough for integer df but is off by 1% at
/// df = 1.5, so the quantile is solved by bisection on the exact CDF (regularized
/// incomplete beta), starting from `distrs`' estimate. Accurate to about 1e-9.
pub fn t_quantile_975(df: f64) -> f64 {
    if df.is_infinite() {
        return StudentsT::ppf(0.975, df);
    }
    let guess = StudentsT::ppf(0.975, df.max(1.0));
    let mut low = 0.0;
    let mut high = if guess.is_finite() { guess * 2.0 } else { 1e3 };
    while t_cdf(high, df) < 0.975 && high < 1e12 {
        high *= 2.0;
    }
    for _ in 0..80 {
        let mid = (low + high) / 2.0;
        if t_cdf(mid, df) < 0.975 {
            low = mid;
        } else {
            high = mid;
        }
    }
    (low + high) / 2.0
}

/// CDF of Student's t at `x >= 0`: 1 - I_{df/(df+x^2)}(df/2, 1/2) / 2.
fn t_cdf(x: f64, df: f64) -> f64 {
    1.0 - 0.5 * regularized_beta(df / (df + x * x), df / 2.0, 0.5)
}

/// Regularized incomplete beta I_x(a, b) by Lentz's continued fraction (Numerical Recipes 6.4).
fn regularized_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(x, a, b) / a
    } else {
        1.0 - front * beta_fraction(1.0 - x, b, a) / b
    }
}

/// The continued fraction of the incomplete beta function.
fn beta_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    d = 1.0 / if d.abs() < TINY { TINY } else { d };
    let mut h = d;
    for m in 1..500 {
        let m = f64::from(m);
        let even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        let odd = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
        for coefficient in [even, odd] {
            d = 1.0 + coefficient * d;
            d = 1.0 / if d.abs() < TINY { TINY } else { d };
            c = 1.0 + coefficient / c;
            c = if c.abs() < TINY { TINY } else { c };
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// ln Gamma(x) for x > 0 (Lanczos, g = 7, 9 terms; relative error about 1e-15).
fn ln_gamma(x: f64) -> f64 {
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    let x = x - 1.0;
    let t = x + 7.5;
    let series = COEFFICIENTS[1..]
        .iter()
        .enumerate()
        .fold(COEFFICIENTS[0], |sum, (i, c)| {
            sum + c / (x + i as f64 + 1.0)
        });
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

/// Median of finite values, the mean of the two middle ones of an even count (caller
/// guarantees non-empty).
pub fn median_of(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// Threshold of the modified z-score above which a value is an outlier (Iglewicz & Hoaglin).
pub const OUTLIER_Z: f64 = 3.5;
/// Scale that makes the MAD a consistent estimator of the sd for normal data (1 / 0.6745).
pub const MAD_SCALE: f64 = 1.4826;
/// Scale that makes the mean absolute deviation one for normal data (sqrt(pi/2)).
pub const MEAN_AD_SCALE: f64 = 1.253314;

/// Indices of outliers by the modified z-score of Iglewicz & Hoaglin (1993):
/// `|x - median| > 3.5 * 1.4826 * MAD`, where MAD is the median of `|x - median|`.
/// When more than half the values equal the median the MAD is 0; then the mean absolute
/// deviation from the median stands in (`|x - median| > 3.5 * 1.253314 * meanAD`), and when
/// that is 0 too every value is equal and none is an outlier. Fewer than 3 values: none.
pub fn mad_outliers(values: &[f64]) -> Vec<usize> {
    if values.len() < 3 {
        return Vec::new();
    }
    let median = median_of(values);
    let deviations: Vec<f64> = values.iter().map(|x| (x - median).abs()).collect();
    let mad = median_of(&deviations);
    let scale = if mad > 0.0 {
        MAD_SCALE * mad
    } else {
        MEAN_AD_SCALE * deviations.iter().sum::<f64>() / deviations.len() as f64
    };
    if scale <= 0.0 {
        return Vec::new();
    }
    let limit = OUTLIER_Z * scale;
    deviations
        .iter()
        .enumerate()
        .filter(|(_, d)| **d > limit)
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn rejects_empty_and_non_finite() {
        assert_eq!(Sample::new(&[]), Err(SampleError::Empty));
        assert!(matches!(
            Sample::new(&[1.0, f64::NAN]),
            Err(SampleError::NotFinite { index: 1, .. })
        ));
        assert!(matches!(
            Sample::new(&[f64::INFINITY]),
            Err(SampleError::NotFinite { index: 0, .. })
        ));
    }

    #[test]
    fn t_quantiles_match_scipy() {
        // scipy.stats.t.ppf(0.975, df), scipy 1.17.1 (full double precision), including the
        // fractional degrees of freedom of Welch; the one t quantile of tpsbench must agree to
        // 1e-9. (distrs alone is off by 1% at df = 1.5, statrs was not needed.)
        let table = [
            (1.0, 12.706204736174694),
            (1.5, 6.016663104427929),
            (2.0, 4.302652729749462),
            (3.3, 3.024874461840807),
            (4.0, 2.7764451051977934),
            (5.882352941176471, 2.458823709699146),
            (7.5, 2.333039626864974),
            (9.0, 2.262157162798205),
            (29.0, 2.045229642132703),
            (1000.0, 1.9623390808264083),
        ];
        for (df, t) in table {
            let got = t_quantile_975(df);
            assert!(close(got, t, 1e-9), "t(0.975, {df}) = {got}, want {t}");
        }
        // scipy.stats.norm.ppf(0.975)
        assert!(close(
            t_quantile_975(f64::INFINITY),
            1.959963984540054,
            1e-12
        ));
    }

    #[test]
    fn summary_matches_known_answer() {
        // numpy/scipy: mean 10.44, median 10.4, sd (ddof=1) 0.3577708764,
        // half-width t.ppf(0.975, 4) * sd / sqrt(5) = 0.4442312168
        let s = Sample::new(&[10.0, 10.4, 10.8, 10.2, 10.8])
            .unwrap()
            .summary();
        assert_eq!(s.n, 5);
        assert!(close(s.mean, 10.44, 1e-12));
        assert!(close(s.median, 10.4, 1e-12));
        assert!(close(s.sd.unwrap(), 0.3577708764, 1e-9), "{:?}", s.sd);
        let half = s.ci95_high.unwrap() - s.mean;
        assert!(close(half, 0.4442312168, 1e-4), "{half}");
        assert!(close(s.ci95_low.unwrap(), s.mean - half, 1e-12));
        assert_eq!((s.min, s.max), (10.0, 10.8));
        assert!(s.outliers.is_empty());
    }

    #[test]
    fn single_value_has_no_spread() {
        let s = Sample::new(&[42.0]).unwrap().summary();
        assert_eq!(
            (s.n, s.mean, s.median, s.min, s.max),
            (1, 42.0, 42.0, 42.0, 42.0)
        );
        assert_eq!((s.sd, s.ci95_low, s.ci95_high), (None, None, None));
    }

    #[test]
    fn even_count_median_is_mean_of_middle_pair() {
        assert_eq!(Sample::new(&[4.0, 1.0, 3.0, 2.0]).unwrap().median(), 2.5);
    }

    #[test]
    fn mad_flags_a_far_value() {
        // median 10.1, |dev| = [0.1, 0, 0.1, 0.2, 9.9], MAD 0.1, limit 3.5*1.4826*0.1 = 0.519
        assert_eq!(mad_outliers(&[10.0, 10.1, 10.2, 10.3, 20.0]), vec![4]);
        // a value just inside the limit is kept: 10.1 + 0.5 = 10.6
        assert!(mad_outliers(&[10.0, 10.1, 10.2, 10.3, 10.6]).is_empty());
    }

    #[test]
    fn mad_zero_falls_back_to_mean_absolute_deviation() {
        // median 5, MAD 0; meanAD = 4/5 = 0.8, limit 3.5*1.253314*0.8 = 3.509: 9 is out.
        assert_eq!(mad_outliers(&[5.0, 5.0, 5.0, 5.0, 9.0]), vec![4]);
        assert!(mad_outliers(&[5.0, 5.0, 5.0]).is_empty());
        assert!(mad_outliers(&[1.0, 100.0]).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn summary_invariants(values in proptest::collection::vec(0.1f64..1e4, 1..40)) {
            let s = Sample::new(&values).unwrap().summary();
            proptest::prop_assert!(s.min <= s.median && s.median <= s.max);
            proptest::prop_assert!(s.min <= s.mean * (1.0 + 1e-12) && s.mean <= s.max * (1.0 + 1e-12));
            if let (Some(low), Some(high)) = (s.ci95_low, s.ci95_high) {
                proptest::prop_assert!(low <= s.mean && s.mean <= high);
            }
            proptest::prop_assert!(s.outliers.iter().all(|i| *i < values.len()));
            proptest::prop_assert!(s.outliers.len() * 2 < values.len().max(1));
        }

        #[test]
        fn t_quantile_is_monotone_in_df(df in 1.0f64..200.0) {
            proptest::prop_assert!(t_quantile_975(df) > t_quantile_975(df + 0.5));
            proptest::prop_assert!(t_quantile_975(df) > 1.959_964);
        }
    }
}
