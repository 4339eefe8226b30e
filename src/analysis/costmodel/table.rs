//! The guide's "Inference Speed by Model Size" rows predicted by a fitted cost model for a
//! machine: this one (its measured bandwidth and threads) or another one described only by
//! its `bench hw --json` (its bandwidth and physical cores, on the stated assumption that
//! the per-byte and per-flop efficiencies, the per-token overhead and the per-thread rate
//! carry over). Each dense row once; each MoE row with the guide's expert reduction and
//! without it (8 experts, the models' default). Shapes (KV cache, attention, vocabulary) are
//! the guide models' published configurations ([`crate::synth::presets`]), weight bytes the
//! guide row's active parameters at the effective bits per weight ([`crate::guide::SpeedRow`]).
//! Each row is marked measured (a fitted model of its quant family and kind within a factor
//! [`MEASURED_FACTOR`] of its weight bytes), interpolated (its weight bytes within the
//! fitted range) or extrapolated.

use serde::{Deserialize, Serialize};

use super::fit::{CostModel, Prediction};
use super::machine::{Covered, Machine};
use super::terms::{Part, Setting, Shape};
use crate::guide::{self, SpeedRow};
use crate::synth::presets;

/// A row counts as measured when a fitted model lies within this factor of its weight bytes.
pub const MEASURED_FACTOR: f64 = 1.35;
/// Context depth of the table's predictions (tokens before decoding), and its prompt length.
pub const TABLE_DEPTH: f64 = 512.0;
/// Tokens generated per request in the table's predictions.
pub const TABLE_N_PREDICT: f64 = 128.0;
/// Experts per token of the guide's MoE models without reduction (both configs say 8).
pub const DEFAULT_EXPERTS: u32 = 8;

/// How a row's prediction relates to the measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowStatus {
    /// A model of this family and kind and about this size was measured.
    Measured,
    /// Within the range of weight bytes the fit saw.
    Interpolated,
    /// Beyond it.
    Extrapolated,
}

impl RowStatus {
    /// The word shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RowStatus::Measured => "measured",
            RowStatus::Interpolated => "interpolated",
            RowStatus::Extrapolated => "extrapolated",
        }
    }
}

/// One predicted row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableRow {
    /// The guide's label (`7B Q4`, `235B MoE Q4`).
    pub label: String,
    /// Experts used per token (MoE rows).
    pub experts_used: Option<u32>,
    /// Weight bytes per token (bytes).
    pub weight_bytes: f64,
    /// Predicted decode rate.
    pub decode: Prediction,
    /// Predicted prefill rate of a [`TABLE_DEPTH`]-token prompt.
    pub prefill: Option<Prediction>,
    /// The guide's range, for the row as the guide states it (tokens/s).
    pub guide_tps: Option<(f64, f64)>,
    /// Measured, interpolated or extrapolated.
    pub status: RowStatus,
    /// Why (the model it matches, or how far beyond the fitted range).
    pub status_note: String,
}

/// The published shape of a guide row's model.
pub fn preset_for(row: &SpeedRow) -> Option<&'static str> {
    Some(match row.size_label {
        "0.5B" => "qwen2.5-coder-0.5b",
        "1.5B" => "qwen2.5-1.5b",
        "7B" => "qwen2.5-7b",
        "14B" => "qwen2.5-14b",
        "32B" => "qwen2.5-32b",
        "70B" => "qwen2.5-72b",
        "235B MoE" => "qwen3-235b-a22b",
        "480B MoE" => "qwen3-coder-480b-a35b",
        _ => return None,
    })
}

/// The cost model's shape of a guide row with `used` experts.
pub fn row_shape(row: &SpeedRow, used: u32) -> Option<Shape> {
    let p = presets::by_name(preset_for(row)?)?.shape;
    let layers = f64::from(p.n_layer);
    Some(Shape {
        weight_bytes: row.active_bytes_with(used),
        active_params: row.active_params_b_with(used) * 1e9,
        kv_bytes_per_token: layers * f64::from(p.n_head_kv) * p.head_dim as f64 * 2.0 * 2.0,
        attn_elements: layers * f64::from(p.n_head) * p.head_dim as f64,
        vocab: p.n_vocab as f64,
        layers,
        head_count: f64::from(p.n_head),
        sliding_window: 0.0,
        sliding_window_layers: 0.0,
    })
}

/// The table's setting on a machine, for `model`.
pub fn table_setting(model: &CostModel, m: &Machine) -> Setting {
    Setting {
        depth: TABLE_DEPTH,
        n_predict: TABLE_N_PREDICT,
        prompt_tokens: TABLE_DEPTH,
        threads: f64::from(m.threads.max(1)),
        bandwidth_gbps: m.bandwidth_gbps,
        llc_bytes: model.llc_bytes_on(m),
    }
}

/// Measured, interpolated or extrapolated, with the reason.
pub fn status_of(
    covered: &[Covered],
    family: &str,
    moe: bool,
    weight_bytes: f64,
) -> (RowStatus, String) {
    let near = covered.iter().find(|c| {
        c.family == family
            && c.moe == moe
            && (c.weight_bytes / weight_bytes).ln().abs() <= MEASURED_FACTOR.ln()
    });
    if let Some(c) = near {
        return (RowStatus::Measured, format!("{} measured", c.model));
    }
    let lo = covered
        .iter()
        .map(|c| c.weight_bytes)
        .fold(f64::INFINITY, f64::min);
    let hi = covered.iter().map(|c| c.weight_bytes).fold(0.0, f64::max);
    if (lo..=hi).contains(&weight_bytes) {
        (
            RowStatus::Interpolated,
            "within the fitted weight bytes".into(),
        )
    } else if weight_bytes > hi {
        let note = format!("{:.0}x the largest fitted weight bytes", weight_bytes / hi);
        (RowStatus::Extrapolated, note)
    } else {
        let note = format!("{:.1}x below the smallest fitted", lo / weight_bytes);
        (RowStatus::Extrapolated, note)
    }
}

fn table_row(
    model: &CostModel,
    m: &Machine,
    row: &SpeedRow,
    used: Option<u32>,
) -> Option<TableRow> {
    let shape = row_shape(row, used.unwrap_or(0))?;
    let at = table_setting(model, m);
    let own = used == row.experts_used;
    let (status, status_note) = status_of(
        &model.covered,
        &guide::quant_group(row.quant),
        row.is_moe(),
        shape.weight_bytes,
    );
    Some(TableRow {
        label: row.label(),
        experts_used: used,
        weight_bytes: shape.weight_bytes,
        decode: model.predict(Part::Decode, &shape, &at)?,
        prefill: model.predict(Part::Prefill, &shape, &at),
        guide_tps: own.then_some((row.low_tps, row.high_tps)),
        status,
        status_note,
    })
}

/// Every guide row (MoE rows with and without reduction) on machine `m`.
pub fn guide_table(model: &CostModel, m: &Machine) -> Vec<TableRow> {
    guide::SPEEDS
        .iter()
        .flat_map(|row| {
            match row.experts_used {
                Some(n) => vec![Some(n), Some(DEFAULT_EXPERTS)],
                None => vec![None],
            }
            .into_iter()
            .filter_map(move |used| table_row(model, m, row, used))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guide_row_shapes_from_the_published_configs() {
        // Qwen2.5-7B: 28 layers x 4 KV heads x 128 x (K and V) x 2 bytes = 57344 B/token;
        // 28 x 28 heads x 128 = 100352 attention elements; vocabulary 152064.
        let s = row_shape(&guide::SPEEDS[2], 0).unwrap();
        assert_eq!(s.kv_bytes_per_token, 57_344.0);
        assert_eq!(s.attn_elements, 100_352.0);
        assert_eq!(s.vocab, 152_064.0);
        assert!((s.weight_bytes - 7e9 * 4.85 / 8.0).abs() < 1.0);
        // Qwen3-235B-A22B with all 8 experts reads more than with the guide's 4.
        let four = row_shape(&guide::SPEEDS[6], 4).unwrap();
        let eight = row_shape(&guide::SPEEDS[6], 8).unwrap();
        assert!((eight.active_params - four.active_params - 4.0 * 1.774e9).abs() < 1e3);
    }

    #[test]
    fn a_cache_counts_only_when_the_fit_knew_its_own() {
        use crate::analysis::costmodel::fit::{fit_part, Obs};
        let obs: Vec<Obs> = (1..6)
            .map(|i| {
                let mut x = vec![1.0; Part::Decode.terms().len()];
                (x[0], x[1]) = (f64::from(i), 0.0);
                Obs {
                    x,
                    y: f64::from(i) + 5.0,
                    model: format!("m{i}"),
                }
            })
            .collect();
        let machine = |llc: Option<u64>| Machine {
            name: "m".into(),
            cpu_model: "c".into(),
            bandwidth_gbps: 10.0,
            threads: 2,
            isa: String::new(),
            llc_bytes: llc,
            source: String::new(),
        };
        let mut model = CostModel {
            machine: machine(None),
            covered: Vec::new(),
            decode: fit_part(Part::Decode, &obs).unwrap(),
            prefill: None,
        };
        let big = machine(Some(1 << 30));
        assert_eq!(model.llc_bytes_on(&big), 0.0);
        model.machine = machine(Some(32 << 20));
        assert_eq!(model.llc_bytes_on(&big), f64::from(1u32 << 30));
        assert_eq!(model.llc_bytes_on(&machine(None)), 0.0);
    }

    #[test]
    fn status_by_weight_bytes() {
        let covered = vec![
            Covered {
                model: "a".into(),
                family: "Q4".into(),
                moe: false,
                weight_bytes: 1e8,
            },
            Covered {
                model: "b".into(),
                family: "Q8".into(),
                moe: false,
                weight_bytes: 1e9,
            },
        ];
        assert_eq!(
            status_of(&covered, "Q8", false, 1.2e9).0,
            RowStatus::Measured
        );
        assert_eq!(
            status_of(&covered, "Q4", false, 5e8).0,
            RowStatus::Interpolated
        );
        let (s, note) = status_of(&covered, "Q4", false, 4e10);
        assert_eq!(
            (s, note.as_str()),
            (
                RowStatus::Extrapolated,
                "40x the largest fitted weight bytes"
            )
        );
    }
}
