//! The report's sweep charts, arranged: rows of one cell that differ only in the thread
//! count (or only in the depth) become one line of decode t/s against that setting. A run
//! that swept neither gets no sweep chart. Arranges rows; draws and measures nothing.

use super::charts::{SweepPoint, SweepSeries};
use crate::results::load::LoadedFile;
use crate::results::{ResultRow, Status};
use std::collections::BTreeMap;

/// The setting a chart sweeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    /// Server threads (`--threads 1,2`).
    Threads,
    /// Tokens in the context before decoding (`--depth 0,4096`).
    Depth,
}

impl Axis {
    /// Both, in the report's order.
    pub const ALL: [Axis; 2] = [Axis::Threads, Axis::Depth];

    /// The chart's file name.
    pub fn file(self) -> &'static str {
        match self {
            Axis::Threads => "threads.svg",
            Axis::Depth => "depth.svg",
        }
    }

    /// The chart's title.
    pub fn title(self) -> &'static str {
        match self {
            Axis::Threads => "Decode speed vs server threads",
            Axis::Depth => "Decode speed vs context depth",
        }
    }

    /// The x axis's description.
    pub fn x_desc(self) -> &'static str {
        match self {
            Axis::Threads => "server threads (-t)",
            Axis::Depth => "tokens in the context before decoding (depth)",
        }
    }

    fn value(self, r: &ResultRow) -> u32 {
        match self {
            Axis::Threads => r.threads,
            Axis::Depth => r.depth,
        }
    }

    /// The other swept setting, held fixed along a line.
    fn fixed(self, r: &ResultRow) -> String {
        match self {
            Axis::Threads if r.depth > 0 => format!(" depth {}", r.depth),
            Axis::Threads => String::new(),
            Axis::Depth => format!(" t={}", r.threads),
        }
    }
}

/// One line per cell measured at two or more values of `axis`, points in increasing order.
pub fn series(files: &[LoadedFile], axis: Axis) -> Vec<SweepSeries> {
    let many = files.len() > 1;
    let mut lines: BTreeMap<String, Vec<SweepPoint>> = BTreeMap::new();
    for f in files {
        for r in f.rows.iter().filter(|r| r.status == Status::Ok) {
            let Some(mean) = r.decode_tps_mean else {
                continue;
            };
            let point = SweepPoint {
                x: f64::from(axis.value(r)),
                value: mean,
                ci: r.decode_tps_ci95_low.zip(r.decode_tps_ci95_high),
            };
            lines
                .entry(label(f, r, axis, many))
                .or_default()
                .push(point);
        }
    }
    lines
        .into_iter()
        .filter_map(|(label, mut points)| {
            points.sort_by(|a, b| a.x.total_cmp(&b.x));
            points.dedup_by(|a, b| a.x == b.x);
            (points.len() > 1).then_some(SweepSeries { label, points })
        })
        .collect()
}

/// What identifies a line: file (with several), role, mode, workload, slots, the other
/// setting and the server arguments.
fn label(f: &LoadedFile, r: &ResultRow, axis: Axis, many: bool) -> String {
    let mut s = format!("{} {} {}", r.role, r.mode, r.workload);
    if r.parallel > 1 {
        s += &format!(" np{}", r.parallel);
    }
    s += &axis.fixed(r);
    if !r.server_args.is_empty() {
        s += &format!(" [{}]", r.server_args);
    }
    if many {
        s = format!("{}: {s}", f.label());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(threads: u32, depth: u32, mean: f64) -> ResultRow {
        ResultRow {
            role: "target".into(),
            mode: "baseline".parse().unwrap(),
            workload: "chat".into(),
            parallel: 1,
            threads,
            depth,
            decode_tps_mean: Some(mean),
            decode_tps_ci95_low: Some(mean - 1.0),
            decode_tps_ci95_high: Some(mean + 1.0),
            ..ResultRow::default()
        }
    }

    fn file(rows: Vec<ResultRow>) -> LoadedFile {
        LoadedFile::of_rows("run.csv", rows)
    }

    #[test]
    fn a_two_by_two_sweep_gives_two_lines_per_axis() {
        let f = file(vec![
            row(1, 0, 20.0),
            row(2, 0, 38.0),
            row(1, 256, 18.0),
            row(2, 256, 33.0),
        ]);
        let threads = series(std::slice::from_ref(&f), Axis::Threads);
        let labels: Vec<&str> = threads.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(
            labels,
            ["target baseline chat", "target baseline chat depth 256"]
        );
        let point = |x, value: f64| SweepPoint {
            x,
            value,
            ci: Some((value - 1.0, value + 1.0)),
        };
        assert_eq!(threads[0].points, [point(1.0, 20.0), point(2.0, 38.0)]);
        let depth = series(&[f], Axis::Depth);
        let labels: Vec<&str> = depth.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(
            labels,
            ["target baseline chat t=1", "target baseline chat t=2"]
        );
        assert_eq!(depth[1].points[1].x, 256.0);
    }

    #[test]
    fn a_run_without_a_sweep_has_no_line() {
        let mut failed = row(2, 0, 40.0);
        failed.status = Status::Failed;
        let f = file(vec![row(1, 0, 20.0), failed]);
        assert!(series(&[f], Axis::Threads).is_empty());
    }
}
