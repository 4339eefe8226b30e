//! The serving charts of a report: latency against throughput (each role and mode a line
//! through its load points in order, an over-saturated point marked with a cross), and the
//! goodput share against the offered rate. The saturation point is where a line turns up:
//! more offered load buys no more throughput, only longer waits.

use std::path::Path;

use plotters::prelude::*;

use super::charts::{err, machine_colour};
use crate::results::load::LoadedFile;
use crate::results::{ResultRow, Status};

/// One point of a serving line.
#[derive(Debug, Clone, PartialEq)]
pub struct ServingPoint {
    /// Completed requests per second.
    pub achieved_rps: f64,
    /// Offered arrival rate (open loop), requests per second.
    pub offered_rps: Option<f64>,
    /// 99th percentile time to first token (milliseconds).
    pub ttft_p99_ms: f64,
    /// Share of sent requests that met every target.
    pub goodput_share: Option<f64>,
    /// The queueing delay grew through the phase.
    pub saturated: bool,
}

/// One role and mode's load points, in the order they ran.
#[derive(Debug, Clone, PartialEq)]
pub struct ServingLine {
    /// `worker baseline`.
    pub label: String,
    /// Its points.
    pub points: Vec<ServingPoint>,
}

/// The serving lines of every file: measured rows with a load, grouped by file, role and
/// mode, in row order.
pub fn lines(files: &[LoadedFile]) -> Vec<ServingLine> {
    let mut out: Vec<ServingLine> = Vec::new();
    for f in files {
        for r in f
            .rows
            .iter()
            .filter(|r| !r.load.is_empty() && r.status == Status::Ok)
        {
            let label = format!("{} {}", r.role, r.mode);
            let Some(point) = point(r) else { continue };
            match out.iter_mut().find(|l| l.label == label) {
                Some(line) => line.points.push(point),
                None => out.push(ServingLine {
                    label,
                    points: vec![point],
                }),
            }
        }
    }
    out
}

fn point(r: &ResultRow) -> Option<ServingPoint> {
    Some(ServingPoint {
        achieved_rps: r.achieved_rps?,
        offered_rps: r.load_rate_rps,
        ttft_p99_ms: r.load_ttft_ms_p99?,
        goodput_share: r.goodput_share,
        saturated: r.saturated == Some(true),
    })
}

/// TTFT p99 against completed requests per second, one line per role and mode; an
/// over-saturated point is a cross.
pub fn latency_vs_throughput(path: &Path, lines: &[ServingLine]) -> anyhow::Result<()> {
    let xy = |p: &ServingPoint| (p.achieved_rps, p.ttft_p99_ms);
    draw(
        path,
        lines,
        "Latency against throughput",
        "completed requests/s",
        "TTFT p99 (ms)",
        xy,
    )
}

/// Goodput share (%) against the offered rate, open-loop points only.
pub fn goodput_vs_rate(path: &Path, lines: &[ServingLine]) -> anyhow::Result<()> {
    let open: Vec<ServingLine> = lines
        .iter()
        .map(|l| ServingLine {
            label: l.label.clone(),
            points: l
                .points
                .iter()
                .filter(|p| p.offered_rps.is_some() && p.goodput_share.is_some())
                .cloned()
                .collect(),
        })
        .filter(|l| !l.points.is_empty())
        .collect();
    let xy = |p: &ServingPoint| {
        (
            p.offered_rps.unwrap_or(0.0),
            p.goodput_share.unwrap_or(0.0) * 100.0,
        )
    };
    draw(
        path,
        &open,
        "Goodput against offered rate",
        "offered requests/s",
        "goodput (% of sent)",
        xy,
    )
}

fn draw(
    path: &Path,
    lines: &[ServingLine],
    title: &str,
    x_desc: &str,
    y_desc: &str,
    xy: impl Fn(&ServingPoint) -> (f64, f64),
) -> anyhow::Result<()> {
    let all = || lines.iter().flat_map(|l| &l.points).map(&xy);
    anyhow::ensure!(all().next().is_some(), "no serving cells to draw");
    let x_hi = all().map(|p| p.0).fold(0.0, f64::max).max(1e-3);
    let y_hi = all().map(|p| p.1).fold(0.0, f64::max).max(1e-3);
    let root = SVGBackend::new(path, (900, 520 + 20 * lines.len() as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_hi * 1.1, 0.0..y_hi * 1.15)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    for (i, line) in lines.iter().enumerate() {
        let color = machine_colour(i);
        let style = color.stroke_width(2);
        chart
            .draw_series(LineSeries::new(line.points.iter().map(&xy), style))
            .map_err(err)?
            .label(line.label.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
        chart
            .draw_series(line.points.iter().map(|p| {
                let at = xy(p);
                match p.saturated {
                    true => Cross::new(at, 7, color.stroke_width(3)).into_dyn(),
                    false => Circle::new(at, 5, color.filled()).into_dyn(),
                }
            }))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(role: &str, rate: f64, achieved: f64, ttft: f64, saturated: bool) -> ResultRow {
        ResultRow {
            role: role.into(),
            mode: "baseline".parse().unwrap(),
            load: format!("rate {rate} rps"),
            load_rate_rps: Some(rate),
            achieved_rps: Some(achieved),
            load_ttft_ms_p99: Some(ttft),
            goodput_share: Some(if saturated { 0.4 } else { 1.0 }),
            saturated: Some(saturated),
            ..ResultRow::default()
        }
    }

    #[test]
    fn rows_with_a_load_make_one_line_per_role_and_mode_in_order() {
        let file = LoadedFile {
            rows: vec![
                row("w", 0.5, 0.5, 120.0, false),
                ResultRow::default(),
                row("w", 1.0, 0.98, 180.0, false),
                row("f", 1.0, 1.0, 90.0, false),
                row("w", 2.0, 1.2, 4000.0, true),
            ],
            path: "s.csv".into(),
            raw: Default::default(),
            raw_note: None,
            name: None,
        };
        let lines = lines(&[file]);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].label, "w baseline");
        let ttfts: Vec<f64> = lines[0].points.iter().map(|p| p.ttft_p99_ms).collect();
        assert_eq!(ttfts, [120.0, 180.0, 4000.0]);
        assert!(lines[0].points[2].saturated);
        let dir = tempfile::tempdir().unwrap();
        latency_vs_throughput(&dir.path().join("l.svg"), &lines).unwrap();
        goodput_vs_rate(&dir.path().join("g.svg"), &lines).unwrap();
        let svg = std::fs::read_to_string(dir.path().join("l.svg")).unwrap();
        assert!(svg.contains("w baseline") && svg.contains("Latency against throughput"));
    }
}
