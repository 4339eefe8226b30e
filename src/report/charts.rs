//! The report's SVG charts, drawn with plotters' SVG backend. SVG text is written as `<text>`
//! elements in a generic `sans-serif` family, so drawing needs no font files; a viewer uses
//! whatever sans-serif font it has. Each function takes plain data and a path: no measuring.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use crate::analysis::render::num;

/// A measured decode rate for the roofline chart.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodePoint {
    /// Active bytes per token (GB).
    pub active_gb: f64,
    /// Measured decode rate (tokens/s).
    pub decode_tps: f64,
    /// MoE model.
    pub moe: bool,
    /// Index of the machine (its roofline and colour).
    pub machine: usize,
}

/// Colours of machines, in order (the first is the single machine's).
const MACHINE_COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

/// The colour of machine `i`.
pub(super) fn machine_colour(i: usize) -> RGBColor {
    MACHINE_COLOURS[i % MACHINE_COLOURS.len()]
}

/// A range on the roofline chart (the guide's or this machine's prediction) at a size.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeBar {
    /// Short label ("7B Q4").
    pub label: String,
    /// Active bytes per token (GB).
    pub active_gb: f64,
    /// The guide's range (tokens/s).
    pub guide: (f64, f64),
    /// This machine's predicted range (tokens/s), when calibrated.
    pub predicted: Option<(f64, f64)>,
}

/// One value with an interval on a categorical axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Category label.
    pub label: String,
    /// Point value.
    pub value: f64,
    /// Interval, when known.
    pub ci: Option<(f64, f64)>,
}

/// Inter-token latency percentiles of one cell (milliseconds).
#[derive(Debug, Clone, PartialEq)]
pub struct ItlCell {
    /// Category label.
    pub label: String,
    /// p50, p90, p99 (milliseconds).
    pub p50: f64,
    /// p90.
    pub p90: f64,
    /// p99.
    pub p99: f64,
}

/// Acceptance and speedup of one speculative cell.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecCell {
    /// Acceptance (fraction).
    pub acceptance: f64,
    /// Speedup (ratio).
    pub speedup: f64,
    /// Draft length, when a `spec:K` mode.
    pub k: Option<u32>,
}

pub(super) const W: u32 = 900;
const H: u32 = 560;
pub(super) const FONT: &str = "sans-serif";

/// The legend box every chart uses, at `position`.
fn draw_legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> anyhow::Result<()>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 13))
        .draw()
        .map_err(err)
}

pub(super) fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing: {e}")
}

fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((f64::min(lo, v), f64::max(hi, v))),
        })
}

/// A log-axis tick label with enough digits to tell 0.01 from 0.001.
fn tick(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        let digits = (-v.log10()).ceil().max(1.0) as usize;
        format!("{v:.digits$}")
    }
}

/// The roofline chart's drawing context: log-log axes on an SVG file.
type LogChart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<LogCoord<f64>, LogCoord<f64>>>;

/// Decode t/s against active GB per token, log-log: measured points, the roofline
/// `bandwidth / bytes`, the fitted line `efficiency x roofline`, the guide's ranges and the
/// predicted ranges at the guide's sizes.
pub fn roofline(
    path: &Path,
    points: &[DecodePoint],
    ranges: &[RangeBar],
    machines: &[super::labels::Machine],
    efficiency: Option<f64>,
) -> anyhow::Result<()> {
    let (xs, ys) = roofline_bounds(points, ranges)?;
    let root = SVGBackend::new(path, (W, H)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Decode speed vs active bytes per token (log-log)",
            (FONT, 22),
        )
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d((xs.0..xs.1).log_scale(), (ys.0..ys.1).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("active GB read per token")
        .y_desc("decode tokens/s")
        .label_style((FONT, 14))
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .draw()
        .map_err(err)?;
    draw_rooflines(&mut chart, machines, efficiency, xs, ys)?;
    draw_ranges(&mut chart, ranges)?;
    draw_decode_points(&mut chart, points, machines)?;
    draw_legend(&mut chart, SeriesLabelPosition::LowerLeft)?;
    root.present().map_err(err)
}

/// The roofline chart's axis ranges (x: active GB, y: t/s), with room around the data.
fn roofline_bounds(
    points: &[DecodePoint],
    ranges: &[RangeBar],
) -> anyhow::Result<((f64, f64), (f64, f64))> {
    let xs = points
        .iter()
        .map(|p| p.active_gb)
        .chain(ranges.iter().map(|r| r.active_gb));
    let (x0, x1) = bounds(xs).context("no data for the roofline chart")?;
    let mut ys: Vec<f64> = points.iter().map(|p| p.decode_tps).collect();
    for r in ranges {
        ys.extend([r.guide.0, r.guide.1]);
        ys.extend(r.predicted.iter().flat_map(|p| [p.0, p.1]));
    }
    let (y0, y1) = bounds(ys.into_iter()).context("no rates for the roofline chart")?;
    Ok(((x0 / 1.6, x1 * 1.6), (y0 / 1.6, y1 * 1.6)))
}

/// One roofline per machine, in its colour, and the fitted line when there is one machine.
fn draw_rooflines(
    chart: &mut LogChart<'_, '_>,
    machines: &[super::labels::Machine],
    efficiency: Option<f64>,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> anyhow::Result<()> {
    let line = |k: f64| {
        (0..=40)
            .map(move |i| {
                let x = x0 * (x1 / x0).powf(i as f64 / 40.0);
                (x, k / x)
            })
            .filter(move |p| p.1 <= y1 && p.1 >= y0)
    };
    let many = machines.len() > 1;
    for (i, m) in machines.iter().enumerate() {
        let Some(bw) = m.bandwidth_gbps else { continue };
        let colour = if many { machine_colour(i) } else { BLACK };
        let style = colour.stroke_width(2);
        let name = if many {
            format!("{}: roofline {bw:.1} GB/s / bytes", m.name)
        } else {
            format!("roofline: {bw:.1} GB/s / bytes")
        };
        chart
            .draw_series(LineSeries::new(line(bw), style))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
        if let (Some(e), false) = (efficiency, many) {
            let style = RGBColor(0, 140, 0).stroke_width(2);
            chart
                .draw_series(DashedLineSeries::new(line(bw * e), 8, 6, style))
                .map_err(err)?
                .label(format!("fitted: {e:.3} x roofline"))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
        }
    }
    Ok(())
}

/// The guide's expected range and the predicted range at each of the guide's sizes.
fn draw_ranges(chart: &mut LogChart<'_, '_>, ranges: &[RangeBar]) -> anyhow::Result<()> {
    let guide_style = RGBColor(150, 150, 150).mix(0.8).stroke_width(7);
    chart
        .draw_series(ranges.iter().map(|r| {
            PathElement::new(
                [(r.active_gb, r.guide.0), (r.active_gb, r.guide.1)],
                guide_style,
            )
        }))
        .map_err(err)?
        .label("guide's expected range")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], guide_style));
    let pred_style = RGBColor(0, 140, 0).mix(0.6).stroke_width(4);
    chart
        .draw_series(ranges.iter().filter_map(|r| {
            let (lo, hi) = r.predicted?;
            let x = r.active_gb * 1.08;
            Some(PathElement::new([(x, lo), (x, hi)], pred_style))
        }))
        .map_err(err)?
        .label("predicted for this machine")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], pred_style));
    chart
        .draw_series(ranges.iter().map(|r| {
            Text::new(
                r.label.clone(),
                (r.active_gb / 1.05, r.guide.1 * 1.12),
                (FONT, 12).into_font(),
            )
        }))
        .map_err(err)?;
    Ok(())
}

/// The measured points of each machine in its colour: dense models as circles, MoE as
/// triangles.
fn draw_decode_points(
    chart: &mut LogChart<'_, '_>,
    points: &[DecodePoint],
    machines: &[super::labels::Machine],
) -> anyhow::Result<()> {
    let many = machines.len() > 1;
    for (i, m) in machines.iter().enumerate() {
        let colour = if many { machine_colour(i) } else { BLUE };
        for moe in [false, true] {
            let pts: Vec<_> = points
                .iter()
                .filter(|p| p.moe == moe && p.machine == i)
                .collect();
            if pts.is_empty() {
                continue;
            }
            let kind = if moe { "MoE" } else { "dense" };
            let name = if many {
                format!("{}: measured, {kind}", m.name)
            } else {
                format!("measured, {kind}")
            };
            let series = pts.iter().map(|p| (p.active_gb, p.decode_tps));
            if moe {
                chart
                    .draw_series(series.map(|xy| TriangleMarker::new(xy, 7, colour.filled())))
                    .map_err(err)?
                    .label(name)
                    .legend(move |(x, y)| TriangleMarker::new((x + 10, y), 7, colour.filled()));
            } else {
                chart
                    .draw_series(series.map(|xy| Circle::new(xy, 5, colour.filled())))
                    .map_err(err)?
                    .label(name)
                    .legend(move |(x, y)| Circle::new((x + 10, y), 5, colour.filled()));
            }
        }
    }
    Ok(())
}

/// Height of a categorical chart: room for every category's label.
pub(super) fn categorical_height(n: usize) -> u32 {
    (120 + 34 * n as u32).max(300)
}

/// Category `v` (an index on the y axis, top to bottom) when it sits on an integer.
pub(super) fn category_label(labels: &[String], v: f64) -> String {
    let i = v.round();
    if (v - i).abs() > 0.01 || i < 0.0 {
        return String::new();
    }
    labels.get(i as usize).cloned().unwrap_or_default()
}

/// Speedup per accelerated cell with its 95% CI and the line of no speedup, as horizontal
/// bars so that the labels stay readable without rotated text.
pub fn speedups(path: &Path, bars: &[Bar]) -> anyhow::Result<()> {
    anyhow::ensure!(!bars.is_empty(), "no speedups to draw");
    // An interval reaching far beyond the largest speedup (a noisy run) is cut at three times
    // that speedup and ends in an arrow, so that the bars stay readable.
    let top = bars.iter().map(|b| b.value).fold(1.0f64, f64::max);
    let reach = bars
        .iter()
        .map(|b| b.ci.map_or(b.value, |c| c.1.max(b.value)))
        .fold(1.0f64, f64::max);
    let cut = top * 3.0;
    let hi = reach.min(cut) * 1.3; // room for the value labels right of the intervals
    let n = bars.len() as f64;
    let root = SVGBackend::new(path, (W, categorical_height(bars.len()))).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Speedup over the baseline of the same run (95% CI)",
            (FONT, 22),
        )
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(super::labels::column_px(
            &bars.iter().map(|b| b.label.clone()).collect::<Vec<_>>(),
        ))
        .build_cartesian_2d(0.0..hi, (n - 0.5)..-0.5)
        .map_err(err)?;
    let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    let fmt = move |v: &f64| category_label(&labels, *v);
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(bars.len() * 2 + 1)
        .y_label_formatter(&fmt)
        .x_desc("speedup (x)")
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(
            [(1.0, -0.5), (1.0, n - 0.5)],
            BLACK.stroke_width(1),
        ))
        .map_err(err)?;
    for (i, b) in bars.iter().enumerate() {
        let y = i as f64;
        chart
            .draw_series([Rectangle::new(
                [(0.0, y - 0.3), (b.value, y + 0.3)],
                BLUE.mix(0.35).filled(),
            )])
            .map_err(err)?;
        let mut right = b.value;
        if let Some((lo, ci_hi)) = b.ci {
            let style = BLACK.stroke_width(2);
            let end = ci_hi.min(cut);
            right = right.max(end);
            let cap = if ci_hi > cut {
                // Arrow head: the interval goes on.
                PathElement::new(
                    [
                        (end - hi * 0.012, y - 0.15),
                        (end, y),
                        (end - hi * 0.012, y + 0.15),
                    ],
                    style,
                )
            } else {
                PathElement::new([(end, y - 0.15), (end, y + 0.15)], style)
            };
            chart
                .draw_series([
                    PathElement::new([(lo, y), (end, y)], style),
                    PathElement::new([(lo, y - 0.15), (lo, y + 0.15)], style),
                    cap,
                ])
                .map_err(err)?;
        }
        let text = match b.ci {
            Some((lo, ci_hi)) => format!("{:.2}x [{}, {}]", b.value, num(lo), num(ci_hi)),
            None => format!("{:.2}x", b.value),
        };
        chart
            .draw_series([Text::new(
                text,
                (right + hi * 0.01, y - 0.1),
                (FONT, 12).into_font(),
            )])
            .map_err(err)?;
    }
    root.present().map_err(err)
}

/// Inter-token latency p50, p90 and p99 per cell, one row per cell.
pub fn itl(path: &Path, cells: &[ItlCell]) -> anyhow::Result<()> {
    anyhow::ensure!(!cells.is_empty(), "no inter-token latencies to draw");
    // Log scale: speculative cells deliver several tokens per chunk (gaps near zero) while a
    // contended machine stalls for seconds; both must stay visible.
    let all = cells.iter().flat_map(|c| [c.p50, c.p90, c.p99]);
    let (lo, hi) = bounds(all).context("no positive inter-token latency")?;
    let (lo, hi) = (lo / 1.5, hi * 1.5);
    let n = cells.len() as f64;
    let root = SVGBackend::new(path, (W, categorical_height(cells.len()) + 40)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Inter-token latency per cell: p50, p90, p99 (log scale)",
            (FONT, 22),
        )
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(super::labels::column_px(
            &cells.iter().map(|c| c.label.clone()).collect::<Vec<_>>(),
        ))
        .build_cartesian_2d((lo..hi).log_scale(), (n - 0.5)..-0.5)
        .map_err(err)?;
    let labels: Vec<String> = cells.iter().map(|c| c.label.clone()).collect();
    let fmt = move |v: &f64| category_label(&labels, *v);
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(cells.len() * 2 + 1)
        .y_label_formatter(&fmt)
        .x_desc("milliseconds between tokens")
        .x_label_formatter(&|v| tick(*v))
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    for (i, c) in cells.iter().enumerate() {
        let y = i as f64;
        chart
            .draw_series([PathElement::new(
                [(c.p50.max(lo), y), (c.p99.max(lo), y)],
                BLACK.stroke_width(1),
            )])
            .map_err(err)?;
    }
    let marks: [Mark; 3] = [
        ("p50", |c| c.p50, BLUE),
        ("p90", |c| c.p90, RGBColor(230, 140, 0)),
        ("p99", |c| c.p99, RED),
    ];
    for (name, get, color) in marks {
        chart
            .draw_series(
                cells
                    .iter()
                    .enumerate()
                    .map(|(i, c)| Circle::new((get(c).max(lo), i as f64), 6, color.filled())),
            )
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, color.filled()));
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present().map_err(err)
}

/// A percentile series of the ITL chart: name, value of a cell, colour.
type Mark = (&'static str, fn(&ItlCell) -> f64, RGBColor);

/// Distinct, readable colours for the K curves and their points.
const K_COLORS: [RGBColor; 5] = [
    RGBColor(0, 130, 0),
    RGBColor(200, 90, 0),
    RGBColor(130, 0, 160),
    RGBColor(0, 120, 170),
    RGBColor(150, 110, 0),
];

/// Acceptance against speedup, with the fitted speculative-decoding model for each K.
pub fn acceptance(path: &Path, cells: &[SpecCell], draft_cost: Option<f64>) -> anyhow::Result<()> {
    anyhow::ensure!(!cells.is_empty(), "no drafting cells to draw");
    let mut ks: Vec<u32> = cells.iter().filter_map(|c| c.k).collect();
    ks.sort_unstable();
    ks.dedup();
    let model_max = match draft_cost {
        Some(c) => ks
            .iter()
            .map(|&k| crate::analysis::specmodel::speedup(1.0, k, c))
            .fold(0.0, f64::max),
        None => 0.0,
    };
    let hi = cells
        .iter()
        .map(|c| c.speedup)
        .fold(model_max.max(1.0), f64::max)
        * 1.15;
    let root = SVGBackend::new(path, (W, H)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Draft acceptance vs speedup", (FONT, 22))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..1.04, 0.0..hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("per-token acceptance (spec:K: from tokens per step)")
        .y_desc("speedup (x)")
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    if let Some(c) = draft_cost {
        for (j, &k) in ks.iter().enumerate() {
            let color = K_COLORS[j % K_COLORS.len()];
            let curve = (0..=50).map(move |i| {
                let a = i as f64 / 50.0;
                (a, crate::analysis::specmodel::speedup(a, k, c))
            });
            chart
                .draw_series(LineSeries::new(curve, color.stroke_width(2)))
                .map_err(err)?
                .label(format!("model K={k}, c={c:.3}"))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
    }
    for (j, &k) in ks.iter().enumerate() {
        let color = K_COLORS[j % K_COLORS.len()];
        chart
            .draw_series(
                cells
                    .iter()
                    .filter(|c| c.k == Some(k))
                    .map(|c| Circle::new((c.acceptance, c.speedup), 7, color.filled())),
            )
            .map_err(err)?
            .label(format!("measured spec:{k}"))
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, color.filled()));
    }
    let other: Vec<&SpecCell> = cells.iter().filter(|c| c.k.is_none()).collect();
    if !other.is_empty() {
        chart
            .draw_series(
                other
                    .iter()
                    .map(|c| TriangleMarker::new((c.acceptance, c.speedup), 8, BLACK.filled())),
            )
            .map_err(err)?
            .label("measured lookup / combined")
            .legend(|(x, y)| TriangleMarker::new((x + 10, y), 6, BLACK.filled()));
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present().map_err(err)
}

/// One line of a sweep chart: a cell's decode rate at each value of the swept setting.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSeries {
    /// What the line is (role, mode, workload, and the settings held fixed).
    pub label: String,
    /// The points, by swept value.
    pub points: Vec<SweepPoint>,
}

/// One point of a sweep line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SweepPoint {
    /// The swept setting (threads, or tokens of depth), or the run's place in a history.
    pub x: f64,
    /// The value: mean decode rate (tokens/s) in a sweep, the metric in a history.
    pub value: f64,
    /// Its 95% confidence interval (same unit), when known.
    pub ci: Option<(f64, f64)>,
}

/// A value against a swept setting (threads, depth) or a run: one line per cell, with its
/// 95% CI as error bars when known. `y_desc` says what the value is.
pub fn sweep(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[SweepSeries],
) -> anyhow::Result<()> {
    let points = || series.iter().flat_map(|s| &s.points);
    anyhow::ensure!(points().next().is_some(), "no sweep to draw");
    let x_hi = points().map(|p| p.x).fold(1.0, f64::max);
    let y_hi = points()
        .map(|p| p.ci.map_or(p.value, |ci| ci.1.max(p.value)))
        .fold(0.0, f64::max);
    let root = SVGBackend::new(path, (W, H + 20 * series.len() as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_hi * 1.05, 0.0..y_hi * 1.15)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        // Threads and depths are whole numbers: ticks between them stay unlabelled.
        .x_label_formatter(&|v| match (v - v.round()).abs() < 1e-6 {
            true => format!("{:.0}", v.round()),
            false => String::new(),
        })
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    for (i, s) in series.iter().enumerate() {
        let color = K_COLORS[i % K_COLORS.len()];
        let style = color.stroke_width(2);
        chart
            .draw_series(LineSeries::new(
                s.points.iter().map(|p| (p.x, p.value)),
                style,
            ))
            .map_err(err)?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
        chart
            .draw_series(
                s.points
                    .iter()
                    .map(|p| Circle::new((p.x, p.value), 5, color.filled())),
            )
            .map_err(err)?;
        chart
            .draw_series(s.points.iter().filter_map(|p| {
                let (lo, hi) = p.ci?;
                Some(PathElement::new(
                    [(p.x, lo), (p.x, hi)],
                    color.stroke_width(1),
                ))
            }))
            .map_err(err)?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    root.present().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_keep_small_values_apart() {
        assert_eq!(tick(100.0), "100");
        assert_eq!(tick(2.5), "2.5");
        assert_eq!(tick(0.1), "0.1");
        assert_eq!(tick(0.01), "0.01");
        assert_eq!(tick(0.002), "0.002");
    }
}

/// One cell's measured rate against the cost model's prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictedPoint {
    /// Measured rate (tokens/s).
    pub measured: f64,
    /// Predicted rate (tokens/s).
    pub predicted: f64,
    /// Series name (`decode, fitted`, `decode, left out`, `prefill, fitted`).
    pub series: &'static str,
}

const SERIES: [(&str, RGBColor, bool); 3] = [
    ("decode, fitted", BLUE, true),
    ("decode, model left out", BLUE, false),
    ("prefill, fitted", RGBColor(220, 120, 0), true),
];

/// Predicted against measured, log-log, with the identity line: every cell of the cost model.
pub fn predicted_vs_measured(path: &Path, points: &[PredictedPoint]) -> anyhow::Result<()> {
    let all = points.iter().flat_map(|p| [p.measured, p.predicted]);
    let (v0, v1) = bounds(all).context("no cell for the predicted-vs-measured chart")?;
    let (v0, v1) = (v0 / 1.5, v1 * 1.5);
    let root = SVGBackend::new(path, (W, H)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Cost model: predicted vs measured t/s (log-log)",
            (FONT, 22),
        )
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d((v0..v1).log_scale(), (v0..v1).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("measured tokens/s")
        .y_desc("predicted tokens/s")
        .label_style((FONT, 14))
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new([(v0, v0), (v1, v1)], BLACK.stroke_width(1)))
        .map_err(err)?
        .label("identity (predicted = measured)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.stroke_width(1)));
    for (name, color, filled) in SERIES {
        let pts: Vec<_> = points.iter().filter(|p| p.series == name).collect();
        if pts.is_empty() {
            continue;
        }
        let style = if filled {
            color.filled()
        } else {
            color.stroke_width(2)
        };
        chart
            .draw_series(
                pts.iter()
                    .map(|p| Circle::new((p.measured, p.predicted), 5, style)),
            )
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, style));
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present().map_err(err)
}
