//! Number formatting shared by the analysis tables (`compare`, `check`, `calibrate`,
//! `predict`). The tables themselves and their renderings (terminal, Markdown, CSV, JSON)
//! are the one output mechanism of [`crate::util::output`], re-exported here.

pub use crate::util::output::{Format, Table};

/// A number with a sensible number of digits for its size.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 0.1 || v == 0.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1e}")
    }
}

/// `1.23 [1.10, 1.38]`, or `1.23 [no CI]`.
pub fn ratio_text(r: &super::stats::RatioCi) -> String {
    if r.has_ci() {
        format!("{:.3} [{:.3}, {:.3}]", r.ratio, r.low, r.high)
    } else {
        format!("{:.3} [no CI]", r.ratio)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_get_digits_by_size() {
        assert_eq!(num(123.456), "123");
        assert_eq!(num(12.345), "12.3");
        assert_eq!(num(1.2345), "1.23");
        assert_eq!(num(0.0034), "3.4e-3");
        assert_eq!(num(f64::NAN), "-");
    }
}
