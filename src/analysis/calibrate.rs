//! `bench calibrate`: replaces the guide's guessed tables with this machine's.
//!
//! - Roofline: decode t/s = efficiency x bandwidth / active bytes per token. The efficiency is
//!   fitted per quant family and dense vs MoE by least squares on the logarithms (slope fixed
//!   at 1, so the fit is the geometric mean of measured / roofline), from the cells that decode
//!   without acceleration (`baseline`, `moe:N`) with one slot.
//! - Predictions for every row of the guide's "Inference Speed by Model Size" table on this
//!   machine's bandwidth, as a range `efficiency x exp(+-max(sd, ln 1.1))` of the fit's log
//!   residuals (about one sd, never narrower than +-10%).
//! - Acceleration: measured speedups per mode kind next to the guide's "Typical Speedup"; the
//!   speculative-decoding model fitted to the `spec:K` cells (see [`super::specmodel`]).
//! - Sizes: the guide's size formula next to the GGUF-exact file sizes.
//! - Writes `<out>/<host>.md` (the tables), `<out>/<host>.toml` (a
//!   [`crate::profile::guide::Expectations`], for a profile's
//!   `expectations = "calibration/<host>.toml"`) and `<out>/<host>.fits.toml` ([`Fits`]: the
//!   fits, the acceleration table and the speculative model, for tools).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::guide::{self, AccelRow, SpeedRow};
use super::load::{self, LoadedFile};
use super::metrics::{estimate, Metric};
use super::render::{num, Table};
use super::specmodel::{self, SpecPoint};
use super::stats::{fit_scale, Moments};
use crate::profile::guide::{Expectations as GuideExpectations, SpeedRow as GuideSpeedRow};
use crate::results::{ResultRow, Status};
use std::borrow::Cow;

/// A row farther than this factor from its fit is listed as far off.
pub const FAR_OFF_FACTOR: f64 = 1.5;
/// Below this many parameters (largest fitted model) the roofline fit gets a caveat.
pub const SMALL_MODEL_PARAMS: f64 = 0.25e9;
/// Minimum half-width of a predicted range, as a factor (+-10%).
pub const MIN_RANGE_FACTOR: f64 = 1.1;

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
    pub mode: String,
}

/// An efficiency fit of one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EfficiencyFit {
    /// Quant family, or "all".
    pub family: String,
    /// "dense", "moe" or "all".
    pub kind: String,
    /// Fitted efficiency: measured / roofline (fraction).
    pub efficiency: f64,
    /// Standard deviation of the log residuals.
    pub log_sd: f64,
    /// Number of cells.
    pub n: usize,
}

impl EfficiencyFit {
    /// Low and high factor of a prediction.
    pub fn range_factor(&self) -> f64 {
        self.log_sd.exp().max(MIN_RANGE_FACTOR)
    }
}

/// The predicted range for one guide row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeedExpectation {
    /// The guide's size cell ("7B", "235B MoE").
    pub size: String,
    /// The guide's quant cell ("Q4").
    pub quant: String,
    /// Total parameters (billions).
    pub params_b: f64,
    /// Active parameters per token (billions).
    pub active_params_b: f64,
    /// Active bytes per token assumed (bytes).
    pub active_bytes_per_token: f64,
    /// Predicted decode rate on this machine, low (tokens/s).
    pub low_tps: f64,
    /// Predicted decode rate on this machine, high (tokens/s).
    pub high_tps: f64,
    /// The guide's range, low (tokens/s).
    pub guide_low_tps: f64,
    /// The guide's range, high (tokens/s).
    pub guide_high_tps: f64,
    /// Which fit the prediction used ("Q4/dense", ...).
    pub fit: String,
    /// Measured mean decode rate of a matching cell, when there is one (tokens/s).
    pub measured_tps: Option<f64>,
}

/// Measured speedups of one mode kind next to the guide's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccelExpectation {
    /// The guide's method name.
    pub method: String,
    /// Mode kind ("spec", "lookup", "moe", "spec+lookup").
    pub kind: String,
    /// Lowest measured speedup (ratio), when measured.
    pub low: Option<f64>,
    /// Highest measured speedup (ratio), when measured.
    pub high: Option<f64>,
    /// Number of measured cells.
    pub n: usize,
    /// The guide's typical speedup, low.
    pub guide_low: f64,
    /// The guide's typical speedup, high.
    pub guide_high: f64,
}

/// The fitted speculative-decoding model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecModelFit {
    /// Cost of a draft step relative to a target step.
    pub draft_cost: f64,
    /// Number of `spec:K` cells used.
    pub n: usize,
}

/// Header of the expectations file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationInfo {
    /// Host the results came from.
    pub host: String,
    /// CPU model.
    pub cpu_model: String,
    /// Median measured read bandwidth of the inputs (GB/s).
    pub bandwidth_gbps: f64,
    /// When the file was written (UTC, RFC 3339).
    pub generated_utc: String,
    /// The result files.
    pub sources: Vec<String>,
}

/// Everything calibrate fitted, written to `<host>.fits.toml` beside the expectations file
/// (the profile's `expectations` file has the sizing module's strict shape, see
/// [`profile_expectations`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fits {
    /// Where and when.
    pub calibration: CalibrationInfo,
    /// Efficiency fits, most specific first.
    pub efficiency: Vec<EfficiencyFit>,
    /// Expected decode rates, one per row of the guide's speed table.
    pub speed: Vec<SpeedExpectation>,
    /// Expected speedups per method.
    pub acceleration: Vec<AccelExpectation>,
    /// The speculative-decoding model, when `spec:K` cells were measured.
    pub speculative: Option<SpecModelFit>,
}

impl Fits {
    /// Reads an expectations file.
    pub fn load(path: &Path) -> anyhow::Result<Fits> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading expectations {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing expectations {}", path.display()))
    }

    /// The expected range (tokens/s) for a model of `params_b` billion total parameters and
    /// `active_bytes_per_token`, in `quant`: the efficiency fit of its family and kind on this
    /// machine's bandwidth.
    pub fn expected_tps(
        &self,
        quant: &str,
        moe: bool,
        active_bytes_per_token: f64,
    ) -> Option<(f64, f64)> {
        let fit = pick_fit(&self.efficiency, &guide::family(quant), moe)?;
        let mid = fit.efficiency * self.calibration.bandwidth_gbps * 1e9 / active_bytes_per_token;
        let f = fit.range_factor();
        Some((mid / f, mid * f))
    }
}

/// GGUF architectures of mixture-of-experts models whose name does not say `moe`.
const MOE_ARCHS: [&str; 10] = [
    "deepseek",
    "deepseek2",
    "dbrx",
    "arctic",
    "grok",
    "jamba",
    "gpt-oss",
    "llama4",
    "qwen3next",
    "minimax-m2",
];

/// Whether a row is a MoE model: an expert-reduction mode, an architecture that is MoE, or
/// fewer than half the parameters active per token (Mixtral-like models under `llama`). The
/// active count of a dense model is below its total too (the token embedding is not read
/// whole), by up to about a third for tiny drafts, hence the one-half threshold.
pub fn is_moe(r: &ResultRow) -> bool {
    let arch = r.model_arch.to_ascii_lowercase();
    r.mode.split('+').any(|m| m.starts_with("moe"))
        || arch.contains("moe")
        || MOE_ARCHS.contains(&arch.as_str())
        || (r.active_params > 0 && (r.active_params as f64) < 0.5 * r.model_n_params as f64)
}

fn cell_text(r: &ResultRow) -> String {
    format!("{} {} {} {}", r.role, r.model_file, r.mode, r.workload)
}

/// Cells that decode without speculation with one slot and have a bandwidth.
pub fn roofline_points(files: &[LoadedFile]) -> Vec<RooflinePoint> {
    let plain = |mode: &str| {
        mode.split('+')
            .all(|m| m == "baseline" || m.starts_with("moe:"))
    };
    files
        .iter()
        .flat_map(|f| f.rows.iter().map(move |r| (f, r)))
        .filter(|(_, r)| r.status == Status::Ok && r.parallel == 1 && plain(&r.mode))
        .filter_map(|(f, r)| {
            let decode = estimate(f, r, Metric::Decode)?.value;
            let bw = r.bandwidth_gbps.filter(|b| *b > 0.0)?;
            let bytes =
                (r.active_bytes_per_token > 0).then_some(r.active_bytes_per_token as f64)?;
            Some(RooflinePoint {
                cell: cell_text(r),
                family: guide::family(&r.model_quant),
                moe: is_moe(r),
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

fn kind(moe: bool) -> &'static str {
    if moe {
        "moe"
    } else {
        "dense"
    }
}

fn fit_group(points: &[&RooflinePoint], family: &str, kind: &str) -> Option<EfficiencyFit> {
    let x: Vec<f64> = points.iter().map(|p| p.roofline_tps).collect();
    let y: Vec<f64> = points.iter().map(|p| p.decode_tps).collect();
    let fit = fit_scale(&x, &y)?;
    Some(EfficiencyFit {
        family: family.into(),
        kind: kind.into(),
        efficiency: fit.factor,
        log_sd: fit.log_sd,
        n: points.len(),
    })
}

/// Fits per (family, kind), then per kind over all families, then over everything.
pub fn fit_efficiencies(points: &[RooflinePoint]) -> Vec<EfficiencyFit> {
    let mut groups: BTreeMap<(String, &str), Vec<&RooflinePoint>> = BTreeMap::new();
    for p in points {
        groups
            .entry((p.family.clone(), kind(p.moe)))
            .or_default()
            .push(p);
        groups
            .entry(("all".into(), kind(p.moe)))
            .or_default()
            .push(p);
        groups.entry(("all".into(), "all")).or_default().push(p);
    }
    let mut fits: Vec<EfficiencyFit> = groups
        .iter()
        .filter_map(|((fam, k), pts)| fit_group(pts, fam, k))
        .collect();
    // Most specific first: family fits, then "all/<kind>", then "all/all".
    fits.sort_by_key(|f| {
        (
            f.family == "all",
            f.kind == "all",
            f.family.clone(),
            f.kind.clone(),
        )
    });
    fits
}

/// The most specific fit for a family and kind: exact, same family any kind, same kind any
/// family, then all, then anything of the same kind.
pub fn pick_fit<'a>(
    fits: &'a [EfficiencyFit],
    family: &str,
    moe: bool,
) -> Option<&'a EfficiencyFit> {
    let k = kind(moe);
    let find = |fam: &str, kd: &str| fits.iter().find(|f| f.family == fam && f.kind == kd);
    find(family, k)
        .or_else(|| fits.iter().find(|f| f.family == family))
        .or_else(|| find("all", k))
        .or_else(|| find("all", "all"))
        .or_else(|| fits.iter().find(|f| f.kind == k))
        .or_else(|| fits.first())
}

/// A measured point that stands for a guide row: same family and kind, total parameters
/// within a factor 1.35 (synthetic Qwen2.5-0.5B shapes have 0.63B with untied embeddings).
fn measured_for(row: &SpeedRow, points: &[RooflinePoint]) -> Option<f64> {
    let fam = guide::family(row.quant);
    let near: Vec<f64> = points
        .iter()
        .filter(|p| p.family == fam && p.moe == row.is_moe())
        .filter(|p| (p.n_params as f64 / (row.params_b * 1e9)).ln().abs() < 1.35f64.ln())
        .map(|p| p.decode_tps)
        .collect();
    Moments::of(&near).map(|m| m.mean)
}

/// Predicted ranges for every row of the guide's speed table.
pub fn predict(
    fits: &[EfficiencyFit],
    bandwidth_gbps: f64,
    points: &[RooflinePoint],
) -> Vec<SpeedExpectation> {
    guide::speed_rows()
        .iter()
        .filter_map(|row| {
            let fit = pick_fit(fits, &guide::family(row.quant), row.is_moe())?;
            let bytes = row.active_bytes_per_token();
            let mid = fit.efficiency * bandwidth_gbps * 1e9 / bytes;
            let f = fit.range_factor();
            Some(SpeedExpectation {
                size: row.size_label.into(),
                quant: row.quant_label.into(),
                params_b: row.params_b,
                active_params_b: row.active_params_b,
                active_bytes_per_token: bytes,
                low_tps: mid / f,
                high_tps: mid * f,
                guide_low_tps: row.expected_low_tps,
                guide_high_tps: row.expected_high_tps,
                fit: format!("{}/{}", fit.family, fit.kind),
                measured_tps: measured_for(row, points),
            })
        })
        .collect()
}

/// Mode kind for the acceleration table: the sorted set of components without parameters,
/// e.g. `moe:4+spec:16+lookup` -> `lookup+moe+spec`.
pub fn mode_kind(mode: &str) -> String {
    let mut parts: Vec<&str> = mode
        .split('+')
        .map(|m| m.split(':').next().unwrap_or(m))
        .collect();
    parts.sort_unstable();
    parts.dedup();
    parts.join("+")
}

/// A measured speedup of one cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpeedupPoint {
    /// Cell description.
    pub cell: String,
    /// Short label for charts: role and mode.
    pub label: String,
    /// Label of the file the cell came from.
    pub file: String,
    /// Mode as written.
    pub mode: String,
    /// Mode kind.
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
        .filter(|(_, r)| r.status == Status::Ok && r.parallel == 1 && r.mode != "baseline")
        .filter_map(|(f, r)| {
            let e = estimate(f, r, Metric::Speedup)?;
            let ci = e.log.ci95();
            Some(SpeedupPoint {
                cell: cell_text(r),
                label: format!("{} {}", r.role, r.mode),
                file: f.label(),
                mode: r.mode.clone(),
                kind: mode_kind(&r.mode),
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

fn accel_matches(row: &AccelRow, kind: &str) -> bool {
    let has = |k: &str| kind.split('+').any(|p| p == k);
    match row.kind {
        "spec+lookup" => has("spec") && has("lookup"),
        k => kind == k,
    }
}

/// Measured speedups next to the guide's acceleration table.
pub fn acceleration(points: &[SpeedupPoint]) -> Vec<AccelExpectation> {
    guide::accel_rows()
        .iter()
        .map(|row| {
            let v: Vec<f64> = points
                .iter()
                .filter(|p| accel_matches(row, &p.kind))
                .map(|p| p.speedup)
                .collect();
            AccelExpectation {
                method: row.method.into(),
                kind: row.kind.into(),
                low: v.iter().copied().reduce(f64::min),
                high: v.iter().copied().reduce(f64::max),
                n: v.len(),
                guide_low: row.low,
                guide_high: row.high,
            }
        })
        .collect()
}

/// The draft length K of a pure `spec:K` mode.
pub fn spec_k(mode: &str) -> Option<u32> {
    mode.strip_prefix("spec:")?.parse().ok()
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

/// Everything calibrate computes.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    /// The expectations written to TOML.
    pub expectations: Fits,
    /// The roofline points with their residual against their group's fit.
    pub points: Vec<RooflinePoint>,
    /// Speedup points.
    pub speedups: Vec<SpeedupPoint>,
    /// Sizes: (model, params B, quant, guide GB, GGUF bytes).
    pub sizes: Vec<SizeCheck>,
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
                guide_gb: guide::guide_size_gb(params_b, &r.model_quant),
                gguf_gb: r.model_file_bytes as f64 / 1e9,
                synthetic: r.synthetic,
            });
    }
    seen.into_values().collect()
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(v[v.len() / 2])
}

/// Runs the whole calibration over loaded files.
pub fn calibrate(files: &[LoadedFile]) -> anyhow::Result<Calibration> {
    let first = files
        .iter()
        .flat_map(|f| &f.rows)
        .find(|r| r.bandwidth_gbps.is_some())
        .context(
            "no row has a measured bandwidth (bandwidth_gbps): nothing to calibrate against",
        )?;
    let bandwidth_gbps = median(
        files
            .iter()
            .flat_map(|f| &f.rows)
            .filter(|r| r.host == first.host)
            .filter_map(|r| r.bandwidth_gbps)
            .collect(),
    )
    .unwrap_or_default();
    let points = roofline_points(files);
    anyhow::ensure!(
        !points.is_empty(),
        "no ok baseline or moe:N cell with one slot, a bandwidth and active bytes per token"
    );
    let fits = fit_efficiencies(&points);
    let speedups = speedup_points(files);
    let sp = spec_points(&speedups);
    let spec_fit = specmodel::fit_draft_cost(&sp.iter().map(|p| p.1.clone()).collect::<Vec<_>>());
    let expectations = Fits {
        calibration: CalibrationInfo {
            host: first.host.clone(),
            cpu_model: first.cpu_model.clone(),
            bandwidth_gbps,
            generated_utc: humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                .to_string(),
            sources: files.iter().map(|f| f.path.display().to_string()).collect(),
        },
        speed: predict(&fits, bandwidth_gbps, &points),
        efficiency: fits,
        acceleration: acceleration(&speedups),
        speculative: spec_fit.map(|f| SpecModelFit {
            draft_cost: f.draft_cost,
            n: sp.len(),
        }),
    };
    Ok(Calibration {
        expectations,
        points,
        speedups,
        sizes: sizes(files),
    })
}

fn range(low: f64, high: f64) -> String {
    if low < 0.1 {
        format!("{} to {}", num(low), num(high))
    } else {
        format!("{}-{}", num(low), num(high))
    }
}

impl Calibration {
    fn fit_of(&self, p: &RooflinePoint) -> Option<&EfficiencyFit> {
        pick_fit(&self.expectations.efficiency, &p.family, p.moe)
    }

    /// The roofline fits table.
    pub fn fits_table(&self) -> Table {
        let mut t = Table::new([
            "Quant family",
            "Kind",
            "Cells",
            "Efficiency",
            "Log-residual sd",
            "Range factor",
        ]);
        for f in &self.expectations.efficiency {
            t.push(vec![
                f.family.clone(),
                f.kind.clone(),
                f.n.to_string(),
                format!("{:.3}", f.efficiency),
                format!("{:.3}", f.log_sd),
                format!("x/{:.2}", f.range_factor()),
            ]);
        }
        t
    }

    /// Each measured cell against its fit.
    pub fn residuals_table(&self) -> Table {
        let mut t = Table::new([
            "Cell",
            "Fit",
            "Roofline t/s",
            "Measured t/s",
            "Fitted t/s",
            "Measured / fitted",
            "Far off",
        ]);
        for p in &self.points {
            let Some(f) = self.fit_of(p) else { continue };
            let fitted = f.efficiency * p.roofline_tps;
            let r = p.decode_tps / fitted;
            let far = !(1.0 / FAR_OFF_FACTOR..=FAR_OFF_FACTOR).contains(&r);
            t.push(vec![
                p.cell.clone(),
                format!("{}/{}", f.family, f.kind),
                num(p.roofline_tps),
                num(p.decode_tps),
                num(fitted),
                format!("{r:.3}"),
                if far { "FAR OFF".into() } else { String::new() },
            ]);
        }
        t
    }

    /// The guide's "Inference Speed by Model Size", recalibrated.
    pub fn speed_table(&self) -> Table {
        let mut t = Table::new([
            "Model Size",
            "Quant",
            "Active GB/token",
            "Expected t/s (this machine)",
            "Guide t/s",
            "Measured t/s",
            "Fit",
        ]);
        for s in &self.expectations.speed {
            t.push(vec![
                s.size.clone(),
                s.quant.clone(),
                format!("{:.2}", s.active_bytes_per_token / 1e9),
                range(s.low_tps, s.high_tps),
                range(s.guide_low_tps, s.guide_high_tps),
                s.measured_tps.map_or("-".into(), num),
                s.fit.clone(),
            ]);
        }
        t
    }

    /// The guide's "Acceleration Methods", measured.
    pub fn accel_table(&self) -> Table {
        let mut t = Table::new([
            "Method",
            "Measured speedup",
            "Cells",
            "Guide typical speedup",
        ]);
        for a in &self.expectations.acceleration {
            let measured = match (a.low, a.high) {
                (Some(l), Some(h)) => format!("{l:.2}-{h:.2}x"),
                _ => "not measured".into(),
            };
            t.push(vec![
                a.method.clone(),
                measured,
                a.n.to_string(),
                format!("{}-{}x", a.guide_low, a.guide_high),
            ]);
        }
        t
    }

    /// Every speculative cell on the fitted model.
    pub fn spec_table(&self) -> Table {
        let c = self
            .expectations
            .speculative
            .as_ref()
            .map_or(f64::NAN, |s| s.draft_cost);
        let mut t = Table::new([
            "Cell",
            "K",
            "Accepted / drafted",
            "Drafted/step",
            "Tokens/step (measured)",
            "Per-token acceptance",
            "Measured speedup [95% CI]",
            "Model speedup",
            "Implied draft cost",
        ]);
        for (p, s) in spec_points(&self.speedups) {
            t.push(vec![
                p.cell.clone(),
                s.k.to_string(),
                p.acceptance.map_or("-".into(), |a| format!("{a:.3}")),
                format!("{:.2}", s.drafted_per_step),
                format!("{:.2}", s.tokens_per_step),
                format!(
                    "{:.3}",
                    specmodel::per_token_acceptance(s.tokens_per_step, s.k)
                ),
                format!("{:.2} [{}, {}]", p.speedup, num(p.low), num(p.high)),
                format!("{:.2}", specmodel::point_speedup(&s, c)),
                format!("{:.3}", specmodel::implied_draft_cost(&s)),
            ]);
        }
        t
    }

    /// The guide's size formula next to the GGUF files.
    pub fn size_table(&self) -> Table {
        let mut t = Table::new([
            "Model",
            "Params (B)",
            "Quant",
            "Guide formula GB",
            "GGUF GB",
            "Error",
        ]);
        for s in &self.sizes {
            let name = if s.synthetic {
                format!("{} (synthetic)", s.model_file)
            } else {
                s.model_file.clone()
            };
            t.push(vec![
                name,
                num(s.params_b),
                s.quant.clone(),
                s.guide_gb.map_or("-".into(), num),
                num(s.gguf_gb),
                s.error()
                    .map_or("-".into(), |e| format!("{:+.1}%", e * 100.0)),
            ]);
        }
        t
    }

    /// The whole Markdown document.
    pub fn markdown(&self) -> String {
        let info = &self.expectations.calibration;
        let mut md = format!(
            "# Calibration for {} ({})\n\nMeasured read bandwidth {:.1} GB/s; sources: {}.\n\n",
            info.host,
            info.cpu_model,
            info.bandwidth_gbps,
            info.sources.join(", ")
        );
        md += "## Roofline fits\n\ndecode t/s = efficiency x bandwidth / active bytes per token, fitted on the logarithms.\n\n";
        md += &self.small_models_note();
        md += &self.fits_table().markdown();
        md += &format!("\n### Cells against their fit (far off: beyond x/{FAR_OFF_FACTOR})\n\n");
        md += &self.residuals_table().markdown();
        md += "\n## Inference Speed by Model Size (this machine)\n\nActive bytes per token = active parameters x effective bits per weight / 8 (Q8_0 8.5, Q4_K_M 4.85); MoE rows use the guide's expert reduction.\n\n";
        md += &self.speed_table().markdown();
        md += "\n## Acceleration Methods (measured)\n\n";
        md += &self.accel_table().markdown();
        md += &self.spec_markdown();
        md += "\n## Model sizes: the guide's formula against GGUF files\n\nGuide: GB = params (B) x quant multiplier x 1.1.\n\n";
        md += &self.size_table().markdown();
        md
    }

    /// A caveat when every fitted model is tiny: their speed is bound by per-token overhead,
    /// not by memory bandwidth, so extrapolating to large models is not meaningful.
    fn small_models_note(&self) -> String {
        let largest = self.points.iter().map(|p| p.n_params).max().unwrap_or(0);
        if largest as f64 >= SMALL_MODEL_PARAMS {
            return String::new();
        }
        format!(
            "**Note**: every measured model has fewer than {:.2}B parameters (largest {:.3}B). Such models are bound by per-token overhead, not by memory bandwidth, so the efficiencies below are low and the predictions for large models are not meaningful; calibrate with real models or `bench run --synthetic` stand-ins of the guide's sizes.\n\n",
            SMALL_MODEL_PARAMS / 1e9,
            largest as f64 / 1e9
        )
    }

    fn spec_markdown(&self) -> String {
        match &self.expectations.speculative {
            None => "\nNo `spec:K` cell with an acceptance: the speculative-decoding model was not fitted.\n".into(),
            Some(s) => format!(
                "\n### Speculative decoding model\n\nspeedup = E / (1 + D c), E tokens and D drafted tokens per decoding step, both measured: steps = tokens after each request's first - accepted, E = those tokens / steps, D = drafted / steps (accepted / drafted is not the per-token acceptance a of E = (1 - a^(K+1)) / (1 - a); the a shown solves that equation for the measured E). Fitted draft cost c = {:.3} of a target step ({} cells).\n\n{}",
                s.draft_cost,
                s.n,
                self.spec_table().markdown()
            ),
        }
    }
}

/// Rounded to 0.01 (tokens/s in the TOML are read by people too).
fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// A representative llama.cpp quant of a family, for the bits per weight of a family row.
fn representative_quant(family: &str) -> &str {
    match family {
        "Q8" => "Q8_0",
        "Q6" => "Q6_K",
        "Q5" => "Q5_K_M",
        "Q4" => "Q4_K_M",
        "Q3" => "Q3_K_M",
        "Q2" => "Q2_K",
        other => other,
    }
}

fn speed_row(
    label: String,
    params_b: f64,
    family: &str,
    moe: bool,
    range: (f64, f64),
    note: String,
) -> GuideSpeedRow {
    GuideSpeedRow {
        label: Cow::Owned(label),
        params_b,
        quant: Cow::Owned(family.to_string()),
        moe,
        low_tps: round2(range.0),
        high_tps: round2(range.1),
        note: Cow::Owned(note),
    }
}

/// The profile-facing expectations (`profile::guide::Expectations`): the guide's rows
/// recalibrated, the same sizes for every other measured quant family (e.g. F16), and one row
/// per measured model at its own size, so that the next run of the same models on this machine
/// is judged against its own ranges.
pub fn profile_expectations(cal: &Calibration) -> GuideExpectations {
    let info = &cal.expectations.calibration;
    let mut rows: Vec<GuideSpeedRow> = cal
        .expectations
        .speed
        .iter()
        .map(|s| {
            let note = format!(
                "calibrated ({} fit); guide {}-{}",
                s.fit, s.guide_low_tps, s.guide_high_tps
            );
            let label = format!("{} {}", s.size, s.quant);
            speed_row(
                label,
                s.params_b,
                &s.quant,
                s.size.contains("MoE"),
                (s.low_tps, s.high_tps),
                note,
            )
        })
        .collect();
    for fit in cal
        .expectations
        .efficiency
        .iter()
        .filter(|f| f.family != "all" && f.kind != "all")
    {
        let moe = fit.kind == "moe";
        for g in guide::speed_rows().iter().filter(|g| g.is_moe() == moe) {
            if guide::family(g.quant) == fit.family {
                continue;
            }
            let bytes = g.active_params_b
                * 1e9
                * guide::effective_bits_per_weight(representative_quant(&fit.family))
                / 8.0;
            let mid = fit.efficiency * info.bandwidth_gbps * 1e9 / bytes;
            let f = fit.range_factor();
            let label = format!("{} {}", g.size_label, fit.family);
            rows.push(speed_row(
                label,
                g.params_b,
                &fit.family,
                moe,
                (mid / f, mid * f),
                format!("calibrated ({}/{} fit)", fit.family, fit.kind),
            ));
        }
    }
    for p in cal.points.iter().filter(|p| p.mode == "baseline") {
        let Some(fit) = pick_fit(&cal.expectations.efficiency, &p.family, p.moe) else {
            continue;
        };
        let mid = fit.efficiency * p.roofline_tps;
        let f = fit.range_factor();
        let label = format!("{} (measured model)", p.model_file);
        let note = format!(
            "calibrated ({}/{} fit); measured {:.1} t/s",
            fit.family, fit.kind, p.decode_tps
        );
        rows.push(speed_row(
            label,
            p.n_params as f64 / 1e9,
            &p.family,
            p.moe,
            (mid / f, mid * f),
            note,
        ));
    }
    GuideExpectations {
        source: format!(
            "bench calibrate: host {} ({}), {:.1} GB/s, {}",
            info.host, info.cpu_model, info.bandwidth_gbps, info.generated_utc
        ),
        rows,
    }
}

/// File-name-safe host name.
fn safe_host(host: &str) -> String {
    let s: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "unknown-host".into()
    } else {
        s
    }
}

/// Writes `<dir>/<host>.md` and `<dir>/<host>.toml`; returns the TOML path.
pub fn write(cal: &Calibration, dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let host = safe_host(&cal.expectations.calibration.host);
    let md = dir.join(format!("{host}.md"));
    std::fs::write(&md, cal.markdown()).with_context(|| format!("writing {}", md.display()))?;
    let toml_path = dir.join(format!("{host}.toml"));
    let body = format!(
        "# Written by `bench calibrate`: this machine's expected decode rates. A profile uses them with\n# expectations = \"{}\"\n{}",
        toml_path.display(),
        toml::to_string(&profile_expectations(cal))?
    );
    std::fs::write(&toml_path, body).with_context(|| format!("writing {}", toml_path.display()))?;
    let fits_path = dir.join(format!("{host}.fits.toml"));
    let fits = format!(
        "# Written by `bench calibrate`: roofline fits, acceleration, speculative model.\n{}",
        toml::to_string(&cal.expectations)?
    );
    std::fs::write(&fits_path, fits).with_context(|| format!("writing {}", fits_path.display()))?;
    Ok(toml_path)
}

/// Runs `bench calibrate`.
pub fn command(args: &super::CalibrateArgs) -> anyhow::Result<ExitCode> {
    let files = load::load_all(&args.files)?;
    let cal = calibrate(&files)?;
    print!("{}", cal.markdown());
    let dir = args.out.clone().unwrap_or_else(|| "calibration".into());
    let toml_path = write(&cal, &dir)?;
    eprintln!(
        "wrote {} (profile expectations) with .md and .fits.toml beside it",
        toml_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(family: &str, moe: bool, roof: f64, measured: f64) -> RooflinePoint {
        RooflinePoint {
            cell: format!("{family} {roof}"),
            family: family.into(),
            moe,
            decode_tps: measured,
            roofline_tps: roof,
            active_bytes_per_token: 1e9,
            n_params: 1_000_000_000,
            synthetic: true,
            model_file: "m.gguf".into(),
            mode: "baseline".into(),
        }
    }

    #[test]
    fn fits_per_family_and_kind_with_fallbacks() {
        let pts = vec![
            point("F16", false, 100.0, 50.0),
            point("F16", false, 40.0, 20.0),
            point("Q8", false, 80.0, 60.0),
            point("F16", true, 60.0, 24.0),
        ];
        let fits = fit_efficiencies(&pts);
        let f16 = pick_fit(&fits, "F16", false).unwrap();
        assert!((f16.efficiency - 0.5).abs() < 1e-12 && f16.n == 2 && f16.log_sd.abs() < 1e-12);
        assert!((pick_fit(&fits, "F16", true).unwrap().efficiency - 0.4).abs() < 1e-12);
        // Q4 was not measured: falls back to all dense cells (0.5, 0.5, 0.75).
        let q4 = pick_fit(&fits, "Q4", false).unwrap();
        assert_eq!(
            (q4.family.as_str(), q4.kind.as_str(), q4.n),
            ("all", "dense", 3)
        );
        assert!((q4.efficiency - (0.5f64 * 0.5 * 0.75).cbrt()).abs() < 1e-12);
    }

    #[test]
    fn predictions_scale_with_bandwidth_and_bytes() {
        let fits = vec![EfficiencyFit {
            family: "Q4".into(),
            kind: "dense".into(),
            efficiency: 0.5,
            log_sd: 0.0,
            n: 3,
        }];
        let pred = predict(&fits, 40.0, &[]);
        let seven = pred.iter().find(|p| p.size == "7B").unwrap();
        let mid = 0.5 * 40e9 / (7e9 * 4.85 / 8.0);
        assert!(
            (seven.low_tps - mid / 1.1).abs() < 1e-9 && (seven.high_tps - mid * 1.1).abs() < 1e-9
        );
        // 0.5B Q8 has no Q8 fit of its own: it uses the Q4/dense fit (same kind).
        assert!(pred.iter().any(|p| p.size == "0.5B" && p.fit == "Q4/dense"));
    }

    #[test]
    fn moe_detection() {
        let row = |arch: &str, mode: &str, total: u64, active: u64| ResultRow {
            model_arch: arch.into(),
            mode: mode.into(),
            model_n_params: total,
            active_params: active,
            ..ResultRow::default()
        };
        // Measured on this machine: a 2-layer draft reads 64% of its parameters per token.
        assert!(!is_moe(&row("qwen2", "baseline", 5_901_056, 3_804_160)));
        assert!(!is_moe(&row("qwen2", "spec:16", 46_162_432, 41_968_640)));
        assert!(is_moe(&row(
            "qwen3moe",
            "baseline",
            115_418_624,
            60_893_184
        )));
        assert!(is_moe(&row(
            "llama",
            "baseline",
            46_700_000_000,
            12_900_000_000
        )));
        assert!(is_moe(&row("qwen2", "moe:4", 1, 1)));
    }

    #[test]
    fn mode_kinds_and_acceleration_rows() {
        assert_eq!(mode_kind("moe:4+spec:16+lookup"), "lookup+moe+spec");
        assert_eq!(mode_kind("lookup:ngram-mod"), "lookup");
        assert_eq!(spec_k("spec:16"), Some(16));
        assert_eq!(spec_k("moe:4+spec:16"), None);
        let sp = |mode: &str, s| SpeedupPoint {
            cell: mode.into(),
            label: mode.into(),
            file: "f".into(),
            mode: mode.into(),
            kind: mode_kind(mode),
            speedup: s,
            low: f64::NAN,
            high: f64::NAN,
            acceptance: None,
            tokens_per_step: None,
            drafted_per_step: None,
        };
        let acc = acceleration(&[
            sp("spec:4", 1.8),
            sp("spec:16", 2.4),
            sp("spec:16+lookup", 2.9),
        ]);
        assert_eq!(
            (acc[0].low, acc[0].high, acc[0].n),
            (Some(1.8), Some(2.4), 2)
        );
        assert_eq!((acc[3].low, acc[3].n), (Some(2.9), 1));
        assert_eq!(acc[1].n, 0);
    }

    #[test]
    fn expectations_round_trip_through_toml() {
        let e = Fits {
            calibration: CalibrationInfo {
                host: "h".into(),
                cpu_model: "c".into(),
                bandwidth_gbps: 40.0,
                generated_utc: "2026-11-27T12:00:00Z".into(),
                sources: vec!["a.csv".into()],
            },
            efficiency: vec![EfficiencyFit {
                family: "F16".into(),
                kind: "dense".into(),
                efficiency: 0.5,
                log_sd: 0.2,
                n: 2,
            }],
            speed: predict(
                &[EfficiencyFit {
                    family: "F16".into(),
                    kind: "dense".into(),
                    efficiency: 0.5,
                    log_sd: 0.2,
                    n: 2,
                }],
                40.0,
                &[],
            ),
            acceleration: acceleration(&[]),
            speculative: Some(SpecModelFit {
                draft_cost: 0.1,
                n: 2,
            }),
        };
        let text = toml::to_string(&e).unwrap();
        let back: Fits = toml::from_str(&text).unwrap();
        assert_eq!(back, e);
        let (lo, hi) = back.expected_tps("F16", false, 1e9).unwrap();
        assert!((lo - 20.0 / 0.2f64.exp()).abs() < 1e-9 && (hi - 20.0 * 0.2f64.exp()).abs() < 1e-9);
    }

    #[test]
    fn size_error_is_relative_to_the_file() {
        let s = SizeCheck {
            model_file: "m".into(),
            params_b: 7.0,
            quant: "Q4_K_M".into(),
            guide_gb: guide::guide_size_gb(7.0, "Q4_K_M"),
            gguf_gb: 4.68,
            synthetic: false,
        };
        assert!((s.error().unwrap() - (3.85 / 4.68 - 1.0)).abs() < 1e-9);
    }
}
