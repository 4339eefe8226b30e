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
//!   [`crate::guide::Expectations`], for a profile's
//!   `expectations = "calibration/<host>.toml"`) and `<out>/<host>.fits.toml` ([`Fits`]: the
//!   fits, the acceleration table and the speculative model, for tools).
//!
//! The work is in four files: [`points`] (which cells count, read from the result rows),
//! [`fit`] (efficiency fits, predictions, the acceleration table and the expectations a
//! profile can use), [`render`] (the Markdown tables) and [`write`] (the files). This file
//! holds the types they share and the pipeline, [`calibrate`].

mod fit;
mod points;
mod render;
mod write;

pub use fit::{
    acceleration, fit_efficiencies, pick_fit, predict, profile_expectations, EfficiencyFit,
};
pub use points::{
    roofline_points, sizes, spec_k, spec_points, speedup_points, RooflinePoint, SizeCheck,
    SpeedupPoint,
};
pub use write::write;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::costmodel::{self, CostModel};
use super::metrics::{estimate, Metric};
use super::render::{num, Format, Table};
use super::specmodel::{self, SpecPoint};
use super::stats::{fit_scale, Moments};
use crate::guide::{self, Expectations as GuideExpectations, ExpectedRow, SpeedRow};
use crate::mode::Mode;
use crate::results::load::{self, LoadedFile};
use crate::results::{ResultRow, Status};

/// A row farther than this factor from its fit is listed as far off.
pub const FAR_OFF_FACTOR: f64 = 1.5;
/// Below this many parameters (largest fitted model) the roofline fit gets a caveat.
pub const SMALL_MODEL_PARAMS: f64 = 0.25e9;
/// Minimum half-width of a predicted range, as a factor (+-10%).
pub const MIN_RANGE_FACTOR: f64 = 1.1;

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
    /// The cost model (`bench predict --machine` reads it), when it could be fitted.
    #[serde(default)]
    pub cost_model: Option<CostModel>,
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
        let fit = pick_fit(&self.efficiency, &guide::quant_group(quant), moe)?;
        let mid = fit.efficiency * self.calibration.bandwidth_gbps * 1e9 / active_bytes_per_token;
        let f = fit.range_factor();
        Some((mid / f, mid * f))
    }
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
    /// The cost model: fit, leave-one-model-out, the guide's table on this and other machines.
    pub cost: costmodel::Report,
}

/// What the cost model needs besides the result files.
#[derive(Debug, Clone, Default)]
pub struct CostInputs {
    /// Extra directories holding the measured models' GGUF files.
    pub models_dirs: Vec<std::path::PathBuf>,
    /// Other machines to predict the guide's table for.
    pub others: Vec<costmodel::Machine>,
    /// Last-level cache of the rows' host (bytes), from its `bench hw --json` (`--host-hw`).
    pub host_llc_bytes: Option<u64>,
}

/// The last-level cache of the rows' host: as given, else this machine's when it is that host
/// (same host name and CPU model), else unknown.
fn host_llc(first: &ResultRow, inputs: &CostInputs) -> Option<u64> {
    inputs.host_llc_bytes.or_else(|| {
        let here = nix::unistd::gethostname().ok()?;
        let same = here.to_string_lossy() == first.host
            && crate::hardware::cpu::cpu_model() == first.cpu_model;
        same.then(crate::hardware::cpu::llc_bytes).flatten()
    })
}

/// The fitted machine: host, CPU and ISA of the rows, their median bandwidth, and the most
/// common thread count of the cells.
fn this_machine(
    first: &ResultRow,
    bandwidth_gbps: f64,
    set: &costmodel::CellSet,
) -> costmodel::Machine {
    let mut threads: Vec<u32> = set.cells.iter().map(|c| c.setting.threads as u32).collect();
    threads.sort_unstable();
    let common = threads
        .iter()
        .max_by_key(|t| threads.iter().filter(|u| u == t).count())
        .copied()
        .unwrap_or(first.threads);
    costmodel::Machine {
        name: first.host.clone(),
        cpu_model: first.cpu_model.clone(),
        bandwidth_gbps,
        threads: common,
        isa: first.isa.clone(),
        llc_bytes: set.llc_bytes,
        source: "measured (the median bandwidth of the host's runs, their usual threads)".into(),
    }
}

/// Runs the whole calibration over loaded files, looking for GGUF files only in the default
/// places and predicting no other machine.
pub fn calibrate(files: &[LoadedFile]) -> anyhow::Result<Calibration> {
    calibrate_with(files, &CostInputs::default())
}

/// Runs the whole calibration over loaded files.
pub fn calibrate_with(files: &[LoadedFile], inputs: &CostInputs) -> anyhow::Result<Calibration> {
    let first = files
        .iter()
        .flat_map(|f| &f.rows)
        .find(|r| r.bandwidth_gbps.is_some())
        .context(
            "no row has a measured bandwidth (bandwidth_gbps): nothing to calibrate against",
        )?;
    let bandwidth_gbps = costmodel::cells::host_bandwidth(
        files
            .iter()
            .flat_map(|f| &f.rows)
            .filter(|r| r.host == first.host),
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
    let set = costmodel::cells_from_files(
        files,
        &first.host,
        costmodel::cells::search_dirs(files, &inputs.models_dirs),
        bandwidth_gbps,
        host_llc(first, inputs).unwrap_or(0) as f64,
    );
    let machine = this_machine(first, set.bandwidth_gbps, &set);
    let cost = costmodel::Report::build(set, machine, &inputs.others);
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
        cost_model: cost.model.clone(),
    };
    Ok(Calibration {
        expectations,
        points,
        speedups,
        sizes: sizes(files),
        cost,
    })
}

/// Runs `bench calibrate`.
pub fn command(args: &super::CalibrateArgs) -> anyhow::Result<ExitCode> {
    let files = load::load_inputs(&args.files, &args.db)?;
    let mut others = Vec::new();
    for path in &args.hw {
        let facts = crate::hardware::HwFacts::load(path)?;
        others.push(costmodel::Machine::from_hw(
            &facts,
            &path.display().to_string(),
        ));
    }
    let host_llc_bytes = match &args.host_hw {
        Some(path) => {
            let facts = crate::hardware::HwFacts::load(path)?;
            let llc = facts.llc_bytes;
            anyhow::ensure!(
                llc.is_some_and(|b| b > 0),
                "{}: no llc_bytes (the host's last-level cache) to take",
                path.display()
            );
            llc
        }
        None => None,
    };
    let inputs = CostInputs {
        models_dirs: args.models_dirs.clone(),
        others,
        host_llc_bytes,
    };
    let cal = calibrate_with(&files, &inputs)?;
    let format = args.output.format_or(Format::Markdown);
    crate::util::output::print(&cal.report().render(format, &cal)?)?;
    match &args.out {
        Some(dir) => {
            let toml_path = write(&cal, dir)?;
            eprintln!(
                "wrote {} (profile expectations) with .md and .fits.toml beside it",
                toml_path.display()
            );
        }
        None => eprintln!(
            "nothing written: --out calibration/ writes the tables, the profile expectations and the cost model that `bench predict` reads"
        ),
    }
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
            mode: "baseline".parse().unwrap(),
        }
    }

    #[test]
    fn the_host_cache_comes_from_its_facts_else_only_from_this_machine_as_that_host() {
        let row = ResultRow {
            host: "not-this-machine".into(),
            cpu_model: "no such cpu".into(),
            ..ResultRow::default()
        };
        let given = CostInputs {
            host_llc_bytes: Some(32 << 20),
            ..CostInputs::default()
        };
        assert_eq!(host_llc(&row, &given), Some(32 << 20));
        // Another host's rows never take this machine's cache.
        assert_eq!(host_llc(&row, &CostInputs::default()), None);
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
            mode: mode.parse().unwrap(),
            model_n_params: total,
            active_params: active,
            ..ResultRow::default()
        };
        // Measured on this machine: a 2-layer draft reads 64% of its parameters per token.
        assert!(!row("qwen2", "baseline", 5_901_056, 3_804_160).is_moe());
        assert!(!row("qwen2", "spec:16", 46_162_432, 41_968_640).is_moe());
        assert!(row("qwen3moe", "baseline", 115_418_624, 60_893_184).is_moe());
        assert!(row("llama", "baseline", 46_700_000_000, 12_900_000_000).is_moe());
        assert!(row("qwen2", "moe:4", 1, 1).is_moe());
    }

    #[test]
    fn mode_kinds_and_acceleration_rows() {
        let mode = |text: &str| text.parse::<Mode>().unwrap();
        assert_eq!(mode("moe:4+spec:16+lookup").kinds(), "lookup+moe+spec");
        assert_eq!(mode("lookup:ngram-mod").kinds(), "lookup");
        assert_eq!(spec_k(&mode("spec:16")), Some(16));
        assert_eq!(spec_k(&mode("moe:4+spec:16")), None);
        let sp = |text: &str, s| SpeedupPoint {
            cell: text.into(),
            label: text.into(),
            file: "f".into(),
            mode: mode(text),
            kind: mode(text).kinds(),
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
            cost_model: None,
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
            guide_gb: guide::formula_size_gb(7.0, "Q4_K_M"),
            gguf_gb: 4.68,
            synthetic: false,
        };
        assert!((s.error().unwrap() - (3.85 / 4.68 - 1.0)).abs() < 1e-9);
    }
}
