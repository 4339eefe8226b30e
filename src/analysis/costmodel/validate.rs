//! Leave one model out: each measured model's cells predicted from a fit to every other
//! model's cells, and the absolute percentage error of each prediction. This is the check
//! that the cost model predicts models it has not seen, which is what `bench predict` and
//! the guide's table ask of it.

use serde::Serialize;

use super::cells::Cell;
use super::fit::{coefficients, Obs};
use super::terms::Part;
use crate::measure::median_of;

/// One held-out cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LomoRow {
    /// Model file.
    pub model: String,
    /// Mode and workload of the cell.
    pub cell: String,
    /// Depth of the cell (tokens).
    pub depth: f64,
    /// Measured rate (tokens/s).
    pub measured_tps: f64,
    /// Predicted from the other models (tokens/s).
    pub predicted_tps: f64,
    /// |predicted - measured| / measured (fraction).
    pub abs_error: f64,
}

/// Leave-one-model-out results of one part.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lomo {
    /// Decode or prefill.
    pub part: Part,
    /// Every held-out cell.
    pub rows: Vec<LomoRow>,
    /// Median absolute percentage error over the cells (fraction; the mean of the two middle
    /// errors of an even count).
    pub median_abs_error: Option<f64>,
    /// Largest absolute percentage error (fraction).
    pub worst_abs_error: Option<f64>,
    /// Models that could not be held out (the others alone could not be fitted).
    pub skipped: Vec<String>,
}

fn models(cells: &[Cell]) -> Vec<String> {
    let mut m: Vec<String> = cells.iter().map(|c| c.model.clone()).collect();
    m.sort();
    m.dedup();
    m
}

fn held_out_rows(part: Part, cells: &[Cell], model: &str, beta: &[f64]) -> Vec<LomoRow> {
    cells
        .iter()
        .filter(|c| c.model == model)
        .filter_map(|c| {
            let o = c.obs(part)?;
            let t: f64 = o.x.iter().zip(beta).map(|(u, v)| u * v).sum();
            let (measured, predicted) = (1.0 / o.y, 1.0 / t);
            Some(LomoRow {
                model: model.to_string(),
                cell: format!("{} {}", c.mode, c.workload),
                depth: c.setting.depth,
                measured_tps: measured,
                predicted_tps: predicted,
                abs_error: (predicted / measured - 1.0).abs(),
            })
        })
        .collect()
}

/// Holds out each model in turn.
pub fn leave_one_model_out(part: Part, cells: &[Cell]) -> Lomo {
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    for m in models(cells) {
        let train: Vec<Obs> = cells
            .iter()
            .filter(|c| c.model != m)
            .filter_map(|c| c.obs(part))
            .collect();
        let refs: Vec<&Obs> = train.iter().collect();
        match coefficients(&refs).filter(|b| b.iter().any(|v| *v > 0.0)) {
            Some(beta) => rows.extend(held_out_rows(part, cells, &m, &beta)),
            None => skipped.push(m),
        }
    }
    let errors: Vec<f64> = rows.iter().map(|r| r.abs_error).collect();
    Lomo {
        part,
        median_abs_error: (!errors.is_empty()).then(|| median_of(&errors)),
        worst_abs_error: errors.iter().copied().reduce(f64::max),
        rows,
        skipped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::costmodel::terms::{Setting, Shape};

    fn cell(model: &str, bytes: f64, tps: f64) -> Cell {
        Cell {
            model: model.into(),
            family: "F16".into(),
            moe: false,
            synthetic: true,
            mode: "baseline".parse().unwrap(),
            workload: "chat".into(),
            shape: Shape {
                weight_bytes: bytes,
                active_params: bytes / 2.0,
                kv_bytes_per_token: 0.0,
                attn_elements: 0.0,
                vocab: 0.0,
                layers: 1.0,
                head_count: 0.0,
                sliding_window: 0.0,
                sliding_window_layers: 0.0,
            },
            setting: Setting {
                depth: 0.0,
                n_predict: 0.0,
                prompt_tokens: 0.0,
                threads: 1.0,
                bandwidth_gbps: 1.0,
                llc_bytes: 0.0,
            },
            decode_tps: tps,
            prefill_tps: None,
        }
    }

    #[test]
    fn a_model_off_the_others_line_shows_its_error() {
        // Time = weight bytes / 1 GB/s exactly for a, b, c; d runs 25% slower than that line
        // (1/1.25 of the rate). Held out, d is predicted on the line: error 25%; each of a, b,
        // c is predicted from a fit the slow d pulls by a little.
        let cells = vec![
            cell("a", 1e8, 10.0),
            cell("b", 2e8, 5.0),
            cell("c", 4e8, 2.5),
            cell("d", 5e8, 2.0 / 1.25),
        ];
        let lomo = leave_one_model_out(Part::Decode, &cells);
        let d = lomo.rows.iter().find(|r| r.model == "d").unwrap();
        assert!((d.predicted_tps - 2.0).abs() < 1e-9, "{d:?}");
        assert!((d.abs_error - 0.25).abs() < 1e-9);
        assert_eq!(lomo.worst_abs_error, Some(d.abs_error));
        assert_eq!(lomo.rows.len(), 4);
    }

    #[test]
    fn the_median_error_of_an_even_count_is_the_mean_of_the_middle_two() {
        // Four models off one line by different amounts, so four different errors: the median
        // is the mean of the second and third smallest (a nearest-rank 50th percentile would
        // be the second alone).
        let cells = vec![
            cell("a", 1e8, 10.0),
            cell("b", 2e8, 5.0 / 1.1),
            cell("c", 4e8, 2.5 / 1.3),
            cell("d", 5e8, 2.0 / 1.6),
        ];
        let lomo = leave_one_model_out(Part::Decode, &cells);
        let mut e: Vec<f64> = lomo.rows.iter().map(|r| r.abs_error).collect();
        e.sort_by(f64::total_cmp);
        assert!(e[1] < e[2], "{e:?}");
        let median = lomo.median_abs_error.unwrap();
        assert!(
            (median - (e[1] + e[2]) / 2.0).abs() < 1e-12,
            "{median} {e:?}"
        );
    }
}
