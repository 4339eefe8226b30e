//! The report's history section (`bench report --db`): one line chart per metric across the
//! database's runs, drawn with the sweep chart (x: the run, oldest first), and the table of
//! which run each x is. The values are `bench history`'s ([`crate::analysis::history`]).

use std::path::Path;

use super::charts::{self, SweepPoint, SweepSeries};
use crate::analysis::history::{history, History, HistoryLine, HistoryMetric};
use crate::results::db::RunInfo;
use crate::results::load::LoadedFile;
use crate::util::output::Table;

/// Most lines on one chart: those that changed most, first to last.
const MAX_LINES: usize = 10;

/// The section's Markdown; the charts are written into `dir`. A metric with fewer than two
/// runs, or no cell measured twice, has no chart.
pub fn section(dir: &Path, runs: &[(RunInfo, LoadedFile)]) -> String {
    let mut md = String::from("## History\n\n");
    let mut drawn = 0;
    for metric in HistoryMetric::ALL {
        let h = history(runs, metric, None);
        let lines = chart_lines(&h);
        if h.runs.len() < 2 || lines.is_empty() {
            continue;
        }
        drawn += 1;
        let name = format!("history-{}.svg", metric.name());
        let title = format!("History: {}", metric.label());
        super::chart(&mut md, dir, &name, &title, |p| {
            charts::sweep(p, &title, "run, oldest first", metric.label(), &lines)
        });
        let shown = lines.len();
        let measured = h.lines.iter().filter(|l| twice(l)).count();
        if measured > shown {
            md += &format!(
                "The {shown} cells that changed most of {measured} measured twice or more \
                 (`bench history --metric {}` lists them all).\n\n",
                metric.name()
            );
        }
        md += &runs_table(&h).markdown();
        md += "\n";
    }
    if drawn == 0 {
        md += "No metric was measured in two runs or more.\n\n";
    }
    md
}

/// Whether a line has two values or more.
fn twice(line: &HistoryLine) -> bool {
    line.values.iter().flatten().count() >= 2
}

/// The chart's lines: the cells measured twice or more that changed most.
fn chart_lines(h: &History) -> Vec<SweepSeries> {
    let hosts = h.lines.iter().any(|l| l.host != h.lines[0].host);
    let mut lines: Vec<&HistoryLine> = h.lines.iter().filter(|l| twice(l)).collect();
    lines.sort_by(|a, b| {
        let size = |l: &HistoryLine| l.change.map_or(0.0, f64::abs);
        size(b).total_cmp(&size(a))
    });
    lines
        .into_iter()
        .take(MAX_LINES)
        .map(|l| SweepSeries {
            label: match hosts {
                true => format!("{}: {}", l.host, l.cell),
                false => l.cell.clone(),
            },
            points: l
                .values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    Some(SweepPoint {
                        x: (i + 1) as f64,
                        value: (*v)?,
                        ci: None,
                    })
                })
                .collect(),
        })
        .collect()
}

/// Which run each x of the chart is.
fn runs_table(h: &History) -> Table {
    let mut t = Table::new(["x", "run", "measured", "build", "host", "csv"]);
    for (i, r) in h.runs.iter().enumerate() {
        t.push(vec![
            (i + 1).to_string(),
            format!("#{}", r.info.run_id),
            r.measured_utc.clone(),
            r.build.clone(),
            r.info.host.clone(),
            r.info.csv_path.clone(),
        ]);
    }
    t
}
