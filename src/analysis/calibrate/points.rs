//! The cells calibration learns from, read from result rows: decode rates that meet the
//! roofline (`baseline` and `moe:N` with one slot), measured speedups, the speculative cells,
//! and the GGUF-exact size of each model file.

use super::*;

/// A measured decode rate with its roofline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RooflinePoint {
    /// Cell description.
    pub cell: String,
    /// Quant family (Q4, Q8, F16, ...).
    pub family: String,
    /// True for MoE models (experts used < experts or a `moe:N` mode).
    pub moe: bool,
    /// Measured mean decode rate (tokens/s).
    pub decode_tps: f64,
    /// Bandwidth / active bytes per token (tokens/s).
    pub roofline_tps: f64,
    /// Active bytes per token (bytes).
    pub active_bytes_per_token: f64,
    /// Total parameters (count).
    pub n_params: u64,
    /// Synthetic model.
    pub synthetic: bool,
    /// Model file name.
    pub model_file: String,
    /// Mode (`baseline` or `moe:N`).
    pub mode: Mode,
}

fn cell_text(r: &ResultRow) -> String {
    format!("{} {} {} {}", r.role, r.model_file, r.mode, r.workload)
}

/// Cells that decode without speculation with one slot and have a bandwidth.
pub fn roofline_points(files: &[LoadedFile]) -> Vec<RooflinePoint> {
    files
        .iter()
        .flat_map(|f| f.rows.iter().map(move |r| (f, r)))
        .filter(|(_, r)| r.status == Status::Ok && r.parallel == 1 && r.mode.decodes_plainly())
        .filter_map(|(f, r)| {
            let decode = estimate(f, r, Metric::Decode)?.value;
            let bw = r.bandwidth_gbps.filter(|b| *b > 0.0)?;
            let bytes =
                (r.active_bytes_per_token > 0).then_some(r.active_bytes_per_token as f64)?;
            Some(RooflinePoint {
                cell: cell_text(r),
                family: guide::quant_group(&r.model_quant),
                moe: r.is_moe(),
                decode_tps: decode,
                roofline_tps: bw * 1e9 / bytes,
                active_bytes_per_token: bytes,
                n_params: r.model_n_params,
                synthetic: r.synthetic,
                model_file: r.model_file.clone(),
                mode: r.mode.clone(),
            })
        })
        .collect()
}

/// A measured speedup of one cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpeedupPoint {
    /// Cell description.
    pub cell: String,
    /// Label for charts: role, mode, workload and slots, marked when lossy or a near tie
    /// ([`ResultRow::label`]).
    pub label: String,
    /// Label of the file the cell came from.
    pub file: String,
    /// Mode.
    pub mode: Mode,
    /// Mode kinds ([`Mode::kinds`]).
    pub kind: String,
    /// Speedup over the baseline of the same run.
    pub speedup: f64,
    /// 95% CI, when computable.
    pub low: f64,
    /// 95% CI, when computable.
    pub high: f64,
    /// Draft acceptance (accepted / drafted), when drafting.
    pub acceptance: Option<f64>,
    /// Measured tokens per decoding step, when drafting (see [`specmodel::DraftCounts`]).
    pub tokens_per_step: Option<f64>,
    /// Measured drafted tokens per decoding step, when drafting.
    pub drafted_per_step: Option<f64>,
}

/// The speculative counts of a row: `n_predict` tokens per request (`ignore_eos`), `n_reps`
/// repetitions of `parallel` requests each.
pub fn draft_counts(r: &ResultRow) -> Option<specmodel::DraftCounts> {
    let requests = u64::from(r.n_reps) * u64::from(r.parallel.max(1));
    Some(specmodel::DraftCounts {
        requests,
        generated: requests * u64::from(r.n_predict),
        drafted: r.draft_n.filter(|d| *d > 0)?,
        accepted: r.draft_accepted?,
    })
}

/// Every accelerated cell with one slot and a speedup.
pub fn speedup_points(files: &[LoadedFile]) -> Vec<SpeedupPoint> {
    files
        .iter()
        .flat_map(|f| f.rows.iter().map(move |r| (f, r)))
        .filter(|(_, r)| r.status == Status::Ok && r.parallel == 1 && !r.mode.is_baseline())
        .filter_map(|(f, r)| {
            let e = estimate(f, r, Metric::Speedup)?;
            let ci = e.log.ci95();
            Some(SpeedupPoint {
                cell: cell_text(r),
                label: r.label(false),
                file: f.label(),
                mode: r.mode.clone(),
                kind: r.mode.kinds(),
                speedup: e.value,
                low: ci.low,
                high: ci.high,
                acceptance: r.acceptance,
                tokens_per_step: draft_counts(r).and_then(|c| c.tokens_per_step()),
                drafted_per_step: draft_counts(r).and_then(|c| c.drafted_per_step()),
            })
        })
        .collect()
}

/// The draft length K of a pure `spec:K` mode.
pub fn spec_k(mode: &Mode) -> Option<u32> {
    match mode {
        Mode::Spec { k } => Some(*k),
        _ => None,
    }
}

/// Speculative cells as model points.
pub fn spec_points(points: &[SpeedupPoint]) -> Vec<(SpeedupPoint, SpecPoint)> {
    points
        .iter()
        .filter_map(|p| {
            let k = spec_k(&p.mode)?;
            Some((
                p.clone(),
                SpecPoint {
                    k,
                    tokens_per_step: p.tokens_per_step?,
                    drafted_per_step: p.drafted_per_step?,
                    speedup: p.speedup,
                },
            ))
        })
        .collect()
}

/// The guide's size formula against a GGUF-exact size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizeCheck {
    /// Model file.
    pub model_file: String,
    /// Total parameters (billions).
    pub params_b: f64,
    /// Quant label.
    pub quant: String,
    /// The guide's formula (GB), when the quant is in its table.
    pub guide_gb: Option<f64>,
    /// File size on disk (GB, 10^9 bytes).
    pub gguf_gb: f64,
    /// Synthetic model.
    pub synthetic: bool,
}

impl SizeCheck {
    /// Relative error of the guide's formula against the file (fraction, signed).
    pub fn error(&self) -> Option<f64> {
        Some(self.guide_gb? / self.gguf_gb - 1.0)
    }
}

/// One size check per distinct model file.
pub fn sizes(files: &[LoadedFile]) -> Vec<SizeCheck> {
    let mut seen = BTreeMap::new();
    for r in files.iter().flat_map(|f| &f.rows) {
        if r.model_file_bytes == 0 {
            continue;
        }
        let params_b = r.model_n_params as f64 / 1e9;
        seen.entry(r.model_file.clone())
            .or_insert_with(|| SizeCheck {
                model_file: r.model_file.clone(),
                params_b,
                quant: r.model_quant.clone(),
                guide_gb: guide::formula_size_gb(params_b, &r.model_quant),
                gguf_gb: r.model_file_bytes as f64 / 1e9,
                synthetic: r.synthetic,
            });
    }
    seen.into_values().collect()
}
