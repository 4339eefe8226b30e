//! Least squares with non-negative coefficients (Lawson and Hanson, "Solving Least Squares
//! Problems", 1974, chapter 23, algorithm NNLS), and the small dense linear algebra it needs
//! (Householder least squares, a symmetric inverse). The cost model of `bench calibrate` fits
//! times that cannot be negative (seconds per byte, per flop, per token) with it.
//!
//! Matrices are row-major `&[Vec<f64>]`, one inner vector per observation; problems here have
//! a handful of columns and at most a few hundred rows, so clarity wins over speed.

/// Least-squares solution of `a[:, cols] x = b` by Householder QR; `None` when the chosen
/// columns are rank-deficient (a pivot below `1e-12` of the column norms).
pub fn lstsq(a: &[Vec<f64>], b: &[f64], cols: &[usize]) -> Option<Vec<f64>> {
    let m = a.len();
    let n = cols.len();
    if n == 0 || m < n {
        return None;
    }
    let mut r: Vec<Vec<f64>> = a
        .iter()
        .map(|row| cols.iter().map(|&j| row[j]).collect())
        .collect();
    let mut y = b.to_vec();
    let scale = r.iter().flatten().fold(0.0f64, |s, v| s.max(v.abs()));
    for k in 0..n {
        let norm = (k..m).map(|i| r[i][k] * r[i][k]).sum::<f64>().sqrt();
        if norm <= 1e-12 * scale.max(f64::MIN_POSITIVE) {
            return None;
        }
        let alpha = if r[k][k] > 0.0 { -norm } else { norm };
        let mut v: Vec<f64> = (k..m).map(|i| r[i][k]).collect();
        v[0] -= alpha;
        let vv: f64 = v.iter().map(|x| x * x).sum();
        reflect(&mut r, &mut y, &v, vv, k);
    }
    back_substitute(&r, &y, n)
}

/// Applies the reflection `I - 2 v v^T / (v^T v)` to rows k.. of `r` (columns k..) and `y`.
// Column j is read down rows k.., so an index is clearer than an iterator over one row.
#[allow(clippy::needless_range_loop)]
fn reflect(r: &mut [Vec<f64>], y: &mut [f64], v: &[f64], vv: f64, k: usize) {
    if vv == 0.0 {
        return;
    }
    let n = r[0].len();
    for j in k..n {
        let dot: f64 = v.iter().enumerate().map(|(i, vi)| vi * r[k + i][j]).sum();
        let f = 2.0 * dot / vv;
        for (i, vi) in v.iter().enumerate() {
            r[k + i][j] -= f * vi;
        }
    }
    let dot: f64 = v.iter().enumerate().map(|(i, vi)| vi * y[k + i]).sum();
    let f = 2.0 * dot / vv;
    for (i, vi) in v.iter().enumerate() {
        y[k + i] -= f * vi;
    }
}

fn back_substitute(r: &[Vec<f64>], y: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut x = vec![0.0; n];
    for k in (0..n).rev() {
        let s: f64 = (k + 1..n).map(|j| r[k][j] * x[j]).sum();
        x[k] = (y[k] - s) / r[k][k];
        if !x[k].is_finite() {
            return None;
        }
    }
    Some(x)
}

/// `a^T (b - a x)`: the negative gradient of half the squared residual.
fn gradient(a: &[Vec<f64>], b: &[f64], x: &[f64]) -> Vec<f64> {
    let mut w = vec![0.0; x.len()];
    for (row, bi) in a.iter().zip(b) {
        let r = bi - row.iter().zip(x).map(|(u, v)| u * v).sum::<f64>();
        for (wj, aij) in w.iter_mut().zip(row) {
            *wj += aij * r;
        }
    }
    w
}

/// Minimises `|a x - b|` subject to `x >= 0` (Lawson-Hanson active set). `None` for an
/// empty or ragged problem or one that does not converge in `3 n + 10` outer steps.
pub fn nnls(a: &[Vec<f64>], b: &[f64]) -> Option<Vec<f64>> {
    let n = a.first()?.len();
    if n == 0 || a.len() != b.len() || a.iter().any(|r| r.len() != n) {
        return None;
    }
    let norm = a.iter().flatten().fold(0.0f64, |s, v| s.max(v.abs()));
    let tol = 10.0 * f64::EPSILON * norm * (a.len().max(n) as f64);
    let mut x = vec![0.0; n];
    let mut passive: Vec<usize> = Vec::new();
    for _ in 0..3 * n + 10 {
        let w = gradient(a, b, &x);
        let candidate = (0..n)
            .filter(|j| !passive.contains(j))
            .filter(|&j| w[j] > tol)
            .max_by(|&i, &j| w[i].total_cmp(&w[j]));
        let Some(t) = candidate else { return Some(x) };
        passive.push(t);
        if !inner_loop(a, b, &mut x, &mut passive, tol) {
            // The new column made the passive set singular: it cannot help.
            passive.retain(|&j| j != t);
            return Some(x);
        }
    }
    None
}

/// Solves on the passive set, stepping back towards `x` while a coefficient would go negative.
fn inner_loop(
    a: &[Vec<f64>],
    b: &[f64],
    x: &mut [f64],
    passive: &mut Vec<usize>,
    tol: f64,
) -> bool {
    for _ in 0..3 * x.len() + 10 {
        let Some(s) = lstsq(a, b, passive) else {
            return false;
        };
        if s.iter().all(|&v| v > tol) {
            for (k, &j) in passive.iter().enumerate() {
                x[j] = s[k];
            }
            return true;
        }
        let alpha = passive
            .iter()
            .zip(&s)
            .filter(|(_, &sv)| sv <= tol)
            .map(|(&j, &sv)| x[j] / (x[j] - sv))
            .fold(f64::INFINITY, f64::min);
        for (k, &j) in passive.iter().enumerate() {
            x[j] += alpha * (s[k] - x[j]);
        }
        passive.retain(|&j| x[j] > tol);
        for (j, xj) in x.iter_mut().enumerate() {
            if !passive.contains(&j) {
                *xj = 0.0;
            }
        }
        if passive.is_empty() {
            return true;
        }
    }
    false
}

/// Inverse of a symmetric positive definite matrix by Gauss-Jordan elimination with partial
/// pivoting; `None` when singular.
pub fn invert(m: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = m.len();
    let mut a: Vec<Vec<f64>> = m
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut r = row.clone();
            r.extend((0..n).map(|j| if i == j { 1.0 } else { 0.0 }));
            r
        })
        .collect();
    let scale = m.iter().flatten().fold(0.0f64, |s, v| s.max(v.abs()));
    for k in 0..n {
        let p = (k..n).max_by(|&i, &j| a[i][k].abs().total_cmp(&a[j][k].abs()))?;
        if a[p][k].abs() <= 1e-13 * scale {
            return None;
        }
        a.swap(k, p);
        let piv = a[k][k];
        a[k].iter_mut().for_each(|v| *v /= piv);
        let pivot_row = a[k].clone();
        for (_, row) in a.iter_mut().enumerate().filter(|(i, _)| *i != k) {
            let f = row[k];
            for (x, p) in row.iter_mut().zip(&pivot_row) {
                *x -= f * p;
            }
        }
    }
    Some(a.into_iter().map(|r| r[n..].to_vec()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_squares_line_known_answer() {
        // y = 1 + 2x through (0,1), (1,3), (2,5) plus (3,6): by hand, the normal equations
        // [4 6; 6 14] [c m] = [15 29] give m = 1.7, c = 1.2.
        let a = vec![
            vec![1.0, 0.0],
            vec![1.0, 1.0],
            vec![1.0, 2.0],
            vec![1.0, 3.0],
        ];
        let x = lstsq(&a, &[1.0, 3.0, 5.0, 6.0], &[0, 1]).unwrap();
        assert!(
            (x[0] - 1.2).abs() < 1e-12 && (x[1] - 1.7).abs() < 1e-12,
            "{x:?}"
        );
        assert!(lstsq(&[vec![1.0, 2.0], vec![2.0, 4.0]], &[1.0, 2.0], &[0, 1]).is_none());
    }

    #[test]
    fn nnls_clamps_a_negative_slope_known_answer() {
        // Intercept and slope through (1,3), (2,2), (3,1): unconstrained slope -1. With both
        // non-negative, by hand: slope 0 leaves the mean, 2 (residual 2); intercept 0 gives
        // slope 10/14 (residual 336/49 = 6.9). KKT at (2, 0): the slope's gradient
        // 1*1 + 2*0 + 3*(-1) = -2 <= 0.
        let a = vec![vec![1.0, 1.0], vec![1.0, 2.0], vec![1.0, 3.0]];
        let x = nnls(&a, &[3.0, 2.0, 1.0]).unwrap();
        assert!((x[0] - 2.0).abs() < 1e-12 && x[1] == 0.0, "{x:?}");
    }

    #[test]
    fn nnls_of_orthogonal_columns_is_the_clamped_solution() {
        let a = vec![
            vec![1.0, 0.0, 0.0],
            vec![0.0, 2.0, 0.0],
            vec![0.0, 0.0, 1.0],
        ];
        let x = nnls(&a, &[3.0, -4.0, 0.5]).unwrap();
        assert_eq!(x, vec![3.0, 0.0, 0.5]);
    }

    #[test]
    fn nnls_recovers_exact_non_negative_coefficients() {
        let truth = [0.5, 0.0, 2.0, 1e-3];
        let a: Vec<Vec<f64>> = (0..12)
            .map(|i| {
                let t = f64::from(i);
                vec![1.0, t, (t * 0.7).sin() + 2.0, t * t * 100.0]
            })
            .collect();
        let b: Vec<f64> = a
            .iter()
            .map(|r| r.iter().zip(truth).map(|(u, v)| u * v).sum())
            .collect();
        let x = nnls(&a, &b).unwrap();
        for (got, want) in x.iter().zip(truth) {
            assert!((got - want).abs() < 1e-9, "{x:?}");
        }
    }

    #[test]
    fn inverse_known_answer() {
        // [4 7; 2 6]^-1 = [0.6 -0.7; -0.2 0.4] (determinant 10).
        let inv = invert(&[vec![4.0, 7.0], vec![2.0, 6.0]]).unwrap();
        let want = [[0.6, -0.7], [-0.2, 0.4]];
        for i in 0..2 {
            for j in 0..2 {
                assert!((inv[i][j] - want[i][j]).abs() < 1e-12);
            }
        }
        assert!(invert(&[vec![1.0, 2.0], vec![2.0, 4.0]]).is_none());
    }
}
