//! `bench report`: a Markdown report with SVG charts drawn from result files, for people who
//! would rather look than read. It reuses the calibration (roofline fit, guide predictions,
//! speculative model) and only arranges and draws; it never measures.

pub mod charts;
pub mod deployment;
pub mod history;
pub mod labels;
pub mod serving;
pub mod sweeps;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::analysis::calibrate::{self, Calibration};
use crate::analysis::costmodel::Part;
use crate::analysis::render::{num, Table};
use crate::guide;
use crate::results::db::RunInfo;
use crate::results::load::{self, LoadedFile};
use crate::results::{ResultRow, Status};
use charts::{Bar, DecodePoint, ItlCell, PredictedPoint, RangeBar, SpecCell};

/// Arguments of `bench report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Result CSV files.
    #[arg(required_unless_present = "db")]
    pub files: Vec<PathBuf>,
    /// A results database and filters: its runs are read too, and the report gains the
    /// history charts of `bench history`.
    #[command(flatten)]
    pub db: crate::results::db::DbArgs,
    /// Output directory (report.md and the SVG charts).
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `bench report`.
pub fn command(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let files = load::load_inputs(&args.files, &args.db)?;
    let runs = match &args.db.db {
        Some(db) => load::load_db_runs(db, &args.db.filter())?,
        None => Vec::new(),
    };
    let md = write_report(&files, &args.out, &runs)?;
    eprintln!("wrote {}", md.display());
    Ok(ExitCode::SUCCESS)
}

/// A cell's chart label: [`ResultRow::label`], after its file's name when the report has
/// several files.
fn label(r: &ResultRow, many_files: bool, file: &LoadedFile) -> String {
    let threads = file.rows.iter().any(|o| o.threads != r.threads);
    let s = r.label(threads);
    if many_files {
        format!("{}: {s}", file.label())
    } else {
        s
    }
}

fn ok_rows(files: &[LoadedFile]) -> impl Iterator<Item = (&LoadedFile, &ResultRow)> {
    files
        .iter()
        .flat_map(|f| f.rows.iter().map(move |r| (f, r)))
        .filter(|(_, r)| r.status == Status::Ok)
}

/// The guide's rows as bars, with this machine's prediction when calibrated.
fn range_bars(cal: Option<&Calibration>) -> Vec<RangeBar> {
    guide::SPEEDS
        .iter()
        .map(|g| {
            let predicted = cal.and_then(|c| {
                let s = c
                    .expectations
                    .speed
                    .iter()
                    .find(|s| s.size == g.size_label)?;
                Some((s.low_tps, s.high_tps))
            });
            RangeBar {
                label: format!("{} {}", g.size_label, g.quant_label),
                active_gb: g.active_bytes_per_token() / 1e9,
                guide: (g.low_tps, g.high_tps),
                predicted,
            }
        })
        .collect()
}

/// ITL percentiles per cell: the row's, else the pooled gaps of its raw repetitions.
fn itl_cells(files: &[LoadedFile]) -> Vec<ItlCell> {
    let many = files.len() > 1;
    ok_rows(files)
        .filter_map(|(f, r)| {
            let (p50, p90, p99) = match (r.itl_p50_ms, r.itl_p90_ms, r.itl_p99_ms) {
                (Some(a), Some(b), Some(c)) => (a, b, c),
                _ => {
                    let gaps = &f.raw_of(r)?.itl_gaps_ms;
                    let p = |q| load::percentile(gaps, q);
                    (p(0.5)?, p(0.9)?, p(0.99)?)
                }
            };
            Some(ItlCell {
                label: labels::fit(&label(r, many, f), labels::MAX_LABEL),
                p50,
                p90,
                p99,
            })
        })
        .collect()
}

fn spec_cells(cal: &Calibration) -> Vec<SpecCell> {
    cal.speedups
        .iter()
        .filter_map(|p| {
            let k = calibrate::spec_k(&p.mode);
            // The chart's model curves are in the per-token acceptance of the standard
            // model, so the points are too (from the measured tokens per step).
            let acceptance = match (k, p.tokens_per_step) {
                (Some(k), Some(e)) => crate::analysis::specmodel::per_token_acceptance(e, k),
                _ => p.acceptance?,
            };
            Some(SpecCell {
                acceptance,
                speedup: p.speedup,
                k,
            })
        })
        .collect()
}

/// Every cost-model cell: decode and prefill as fitted, decode predicted with its model left
/// out.
fn predicted_points(cal: Option<&Calibration>) -> Vec<PredictedPoint> {
    let Some(c) = cal else { return Vec::new() };
    let Some(model) = &c.cost.model else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for cell in &c.cost.cells.cells {
        let decode = model.predict(Part::Decode, &cell.shape, &cell.setting);
        out.extend(decode.map(|p| PredictedPoint {
            measured: cell.decode_tps,
            predicted: p.tps,
            series: "decode, fitted",
        }));
        let prefill = model.predict(Part::Prefill, &cell.shape, &cell.setting);
        out.extend(prefill.zip(cell.prefill_tps).map(|(p, m)| PredictedPoint {
            measured: m,
            predicted: p.tps,
            series: "prefill, fitted",
        }));
    }
    out.extend(c.cost.lomo_decode.rows.iter().map(|r| PredictedPoint {
        measured: r.measured_tps,
        predicted: r.predicted_tps,
        series: "decode, model left out",
    }));
    out
}

/// The vertical axis of the sweep charts.
const SWEEP_Y: &str = "decode tokens/s (95% CI)";

/// Draws one chart; a chart without data becomes a line of text instead of an image.
pub(crate) fn chart(
    md: &mut String,
    dir: &Path,
    name: &str,
    title: &str,
    draw: impl FnOnce(&Path) -> anyhow::Result<()>,
) {
    let path = dir.join(name);
    match draw(&path) {
        Ok(()) => *md += &format!("### {title}\n\n![{title}]({name})\n\n"),
        Err(e) => *md += &format!("### {title}\n\nNot drawn: {e:#}.\n\n"),
    }
}

/// Writes `report.md` and the charts into `dir`; returns the Markdown path.
/// With the runs of a database (`runs`), the history charts come after the others.
pub fn write_report(
    files: &[LoadedFile],
    dir: &Path,
    runs: &[(RunInfo, LoadedFile)],
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let cal = calibrate::calibrate(files);
    let mut md = header(files);
    if let Err(e) = &cal {
        md += &format!("No calibration: {e:#}.\n\n");
    }
    let cal = cal.ok();
    md += "## Charts\n\n";
    chart(
        &mut md,
        dir,
        "roofline.svg",
        "Decode speed vs active bytes per token",
        |p| roofline_chart(p, files, cal.as_ref()),
    );
    chart(
        &mut md,
        dir,
        "predicted.svg",
        "Cost model: predicted vs measured, every cell",
        |p| charts::predicted_vs_measured(p, &predicted_points(cal.as_ref())),
    );
    chart(
        &mut md,
        dir,
        "speedup.svg",
        "Speedup per acceleration mode (95% CI)",
        |p| charts::speedups(p, &speedup_bars(cal.as_ref(), files.len() > 1)),
    );
    let serving_lines = serving::lines(files);
    if !serving_lines.is_empty() {
        chart(
            &mut md,
            dir,
            "serving-latency.svg",
            "Latency against throughput (a cross: over-saturated)",
            |p| serving::latency_vs_throughput(p, &serving_lines),
        );
        chart(
            &mut md,
            dir,
            "serving-goodput.svg",
            "Goodput against offered rate",
            |p| serving::goodput_vs_rate(p, &serving_lines),
        );
    }
    let deployments = deployment::pairs(&deployment::deployments(files));
    if !deployments.is_empty() {
        chart(
            &mut md,
            dir,
            "deployment.svg",
            "Deployments: each role alone and together",
            |p| deployment::chart(p, &deployments),
        );
    }
    for axis in sweeps::Axis::ALL {
        let lines = sweeps::series(files, axis);
        if !lines.is_empty() {
            chart(&mut md, dir, axis.file(), axis.title(), |p| {
                charts::sweep(p, axis.title(), axis.x_desc(), SWEEP_Y, &lines)
            });
        }
    }
    chart(
        &mut md,
        dir,
        "itl.svg",
        "Inter-token latency per mode",
        |p| charts::itl(p, &itl_cells(files)),
    );
    chart(
        &mut md,
        dir,
        "acceptance.svg",
        "Acceptance vs speedup",
        |p| {
            let c = cal.as_ref().context("no calibration")?;
            let cost = c.expectations.speculative.as_ref().map(|s| s.draft_cost);
            charts::acceptance(p, &spec_cells(c), cost)
        },
    );
    if !runs.is_empty() {
        md += &history::section(dir, runs);
    }
    md += &cells_section(files, cal.as_ref());
    let path = dir.join("report.md");
    std::fs::write(&path, md).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The roofline chart: every file's decode points in its machine's colour, the guide's and
/// the predicted ranges, and one fitted line when the report is of one machine.
fn roofline_chart(
    path: &Path,
    files: &[LoadedFile],
    cal: Option<&Calibration>,
) -> anyhow::Result<()> {
    let (machines, of_file) = labels::machines(files);
    let pts: Vec<DecodePoint> = files
        .iter()
        .zip(&of_file)
        .flat_map(|(f, m)| {
            calibrate::roofline_points(std::slice::from_ref(f))
                .into_iter()
                .map(move |p| DecodePoint {
                    active_gb: p.active_bytes_per_token / 1e9,
                    decode_tps: p.decode_tps,
                    moe: p.moe,
                    machine: *m,
                })
        })
        .collect();
    let eff = cal
        .filter(|_| machines.len() == 1)
        .and_then(|c| calibrate::pick_fit(&c.expectations.efficiency, "all", false))
        .map(|f| f.efficiency);
    charts::roofline(path, &pts, &range_bars(cal), &machines, eff)
}

/// One bar per measured speedup, labelled by its file too when the report has several.
fn speedup_bars(cal: Option<&Calibration>, many: bool) -> Vec<Bar> {
    cal.iter()
        .flat_map(|c| &c.speedups)
        .map(|s| Bar {
            label: labels::fit(
                &if many {
                    format!("{}: {}", s.file, s.label)
                } else {
                    s.label.clone()
                },
                labels::MAX_LABEL,
            ),
            value: s.speedup,
            ci: (s.low.is_finite() && s.high.is_finite()).then_some((s.low, s.high)),
        })
        .collect()
}

/// The cells table and, when there is one, the calibration under it.
fn cells_section(files: &[LoadedFile], cal: Option<&Calibration>) -> String {
    let mut md = String::from("## Cells\n\n");
    md += &cells_table(files).markdown();
    if let Some(c) = cal {
        md += "\n";
        md += &c
            .markdown()
            .replacen("# Calibration", "## Calibration", 1)
            .replace("\n## ", "\n### ");
    }
    md
}

fn header(files: &[LoadedFile]) -> String {
    let mut md = String::from("# tpsbench report\n\n");
    let (machines, of_file) = labels::machines(files);
    for (f, m) in files.iter().zip(&of_file) {
        let first = f.rows.first();
        md += &format!(
            "- `{}`: {} rows, machine {}, CPU {}, engine {}, profile {}\n",
            f.path.display(),
            f.rows.len(),
            machines[*m].name,
            first.map_or("?", |r| r.cpu_model.as_str()),
            first.map_or("?", |r| r.engine_version.as_str()),
            first.map_or("?", |r| r.profile.as_str()),
        );
        if let Some(note) = &f.raw_note {
            md += &format!("  - {note}: intervals from the rows' summary statistics\n");
        }
    }
    md + "\n"
}

fn cells_table(files: &[LoadedFile]) -> Table {
    let (machines, of_file) = labels::machines(files);
    let mut t = Table::new([
        "Machine",
        "Role",
        "Model",
        "Mode",
        "Workload",
        "np",
        "t",
        "Depth",
        "Status",
        "Decode t/s",
        "Speedup",
        "Acceptance",
        "Output",
        "ITL p50/p99 ms",
        "Step p50/p99 ms",
    ]);
    for (f, m) in files.iter().zip(&of_file) {
        for r in &f.rows {
            let speedup = match (r.speedup, r.speedup_ci95_low, r.speedup_ci95_high) {
                (Some(s), Some(l), Some(h)) => format!("{s:.2} [{l:.2}, {h:.2}]"),
                (Some(s), _, _) => format!("{s:.2}"),
                _ => "-".into(),
            };
            t.push(vec![
                machines[*m].name.clone(),
                r.role.clone(),
                r.model_file.clone(),
                r.mode.to_string(),
                r.workload.clone(),
                r.parallel.to_string(),
                r.threads.to_string(),
                r.depth.to_string(),
                r.status.to_string(),
                r.decode_tps_mean.map_or("-".into(), num),
                speedup,
                r.acceptance.map_or("-".into(), |a| format!("{a:.3}")),
                r.quality(),
                match (r.itl_p50_ms, r.itl_p99_ms) {
                    (Some(a), Some(b)) => format!("{a:.1} / {b:.1}"),
                    _ => "-".into(),
                },
                match (r.step_ms_p50, r.step_ms_p99) {
                    (Some(a), Some(b)) => format!("{a:.1} / {b:.1}"),
                    _ => "-".into(),
                },
            ]);
        }
    }
    t
}
