//! The end-of-run table: one block per role with every mode's speed, its confidence
//! interval, speedup, acceptance, losslessness, the guide's range and a verdict.
//! Reporting only: it reads finished rows and never measures.

use crate::results::{ResultRow, Status};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};

/// Where a measured speed sits against the guide's expected range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuideVerdict {
    /// Below the guide's range.
    Below,
    /// Within it.
    Within,
    /// Above it.
    Above,
}

impl GuideVerdict {
    /// Judges a mean decode rate against an expected range.
    pub fn of(decode_tps: f64, low: f64, high: f64) -> GuideVerdict {
        if decode_tps < low {
            GuideVerdict::Below
        } else if decode_tps > high {
            GuideVerdict::Above
        } else {
            GuideVerdict::Within
        }
    }

    fn word(self) -> &'static str {
        match self {
            GuideVerdict::Below => "below",
            GuideVerdict::Within => "within",
            GuideVerdict::Above => "above",
        }
    }
}

const HEADER: [&str; 12] = [
    "mode",
    "workload",
    "np",
    "decode t/s per request (95% CI)",
    "prefill t/s",
    "TTFT ms",
    "accept",
    "speedup (95% CI)",
    "lossless / agree",
    "guide t/s",
    "roofline",
    "verdict",
];

/// Renders the table of every role, in the order roles first appear in `rows`; a run that
/// swept threads or depth gets a `t` and a `depth` column after `np`.
pub fn render(rows: &[ResultRow]) -> String {
    let swept = rows
        .iter()
        .any(|r| r.depth > 0 || r.threads != rows[0].threads);
    let mut roles: Vec<&str> = Vec::new();
    for r in rows {
        if !roles.contains(&r.role.as_str()) {
            roles.push(&r.role);
        }
    }
    let mut out = String::new();
    for role in roles {
        let of_role: Vec<&ResultRow> = rows.iter().filter(|r| r.role == role).collect();
        let model = &of_role[0];
        let synthetic = if model.synthetic { ", synthetic" } else { "" };
        out.push_str(&format!(
            "{role}: {} ({}{synthetic})\n",
            model.model_file, model.model_quant
        ));
        out.push_str(&role_table(&of_role, swept).to_string());
        out.push('\n');
    }
    out
}

fn role_table(rows: &[&ResultRow], swept: bool) -> Table {
    let mut header: Vec<&str> = HEADER.to_vec();
    if swept {
        header.splice(3..3, ["t", "depth"]);
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(&header);
    for row in rows {
        let mut cells = row_cells(row);
        if swept {
            let more = [row.threads, row.depth].map(|v| Cell::new(v.to_string()));
            cells.splice(3..3, more);
        }
        table.add_row(cells);
    }
    for col in 2..header.len() {
        if let Some(c) = table.column_mut(col) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

fn row_cells(row: &ResultRow) -> Vec<Cell> {
    let lead = [
        row.mode.to_string(),
        row.workload.clone(),
        row.parallel.to_string(),
    ];
    let rest = if row.status == Status::Ok {
        measured_cells(row)
    } else {
        let mut v = vec![format!("{}: {}", row.status, first_line(&row.reason))];
        v.resize(HEADER.len() - 3, String::new());
        v
    };
    lead.into_iter().chain(rest).map(Cell::new).collect()
}

fn measured_cells(row: &ResultRow) -> Vec<String> {
    let decode = match (
        row.decode_tps_mean,
        row.decode_tps_ci95_low,
        row.decode_tps_ci95_high,
    ) {
        (Some(m), Some(lo), Some(hi)) => format!("{m:.1} ({lo:.1}-{hi:.1})"),
        (Some(m), _, _) => format!("{m:.1}"),
        _ => "-".into(),
    };
    // With several slots the per-request rate hides the point: the server's total.
    let decode = match row.aggregate_tps {
        Some(agg) => format!("{decode}, total {agg:.1}"),
        None => decode,
    };
    let speedup = match (row.speedup, row.speedup_ci95_low, row.speedup_ci95_high) {
        (Some(s), Some(lo), Some(hi)) => format!("{s:.2}x ({lo:.2}-{hi:.2})"),
        (Some(s), _, _) => format!("{s:.2}x"),
        _ => "-".into(),
    };
    let quality = row.quality();
    let (guide, verdict) = match (
        row.guide_expected_low_tps,
        row.guide_expected_high_tps,
        row.decode_tps_mean,
    ) {
        (Some(lo), Some(hi), Some(m)) => (
            format!("{lo:.0}-{hi:.0}"),
            GuideVerdict::of(m, lo, hi).word().to_string(),
        ),
        _ => ("-".into(), "-".into()),
    };
    let verdict = match noisy_mark(row) {
        Some(mark) => format!("{verdict}, {mark}"),
        None => verdict,
    };
    vec![
        decode,
        opt(row.prefill_tps_mean, 1),
        opt(row.ttft_ms_mean, 0),
        row.acceptance
            .map_or("-".into(), |a| format!("{:.0}%", a * 100.0)),
        speedup,
        quality,
        guide,
        row.roofline_share
            .map_or("-".into(), |s| format!("{:.0}%", s * 100.0)),
        verdict,
    ]
}

/// `noisy (45% foreign)` for a cell measured while other processes took the machine.
pub fn noisy_mark(row: &ResultRow) -> Option<String> {
    row.is_noisy().then(|| match row.foreign_cpu_pct {
        Some(f) => format!("noisy ({f:.0}% foreign)"),
        None => "noisy".to_string(),
    })
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.decimals$}"))
}

fn first_line(s: &str) -> &str {
    let line = s.lines().next().unwrap_or("");
    match line.char_indices().nth(44) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(mode: &str, tps: f64) -> ResultRow {
        ResultRow {
            role: "worker".into(),
            model_file: "m.gguf".into(),
            model_quant: "F16".into(),
            mode: mode.parse().unwrap(),
            workload: "chat".into(),
            parallel: 1,
            decode_tps_mean: Some(tps),
            decode_tps_ci95_low: Some(tps - 1.0),
            decode_tps_ci95_high: Some(tps + 1.0),
            guide_expected_low_tps: Some(25.0),
            guide_expected_high_tps: Some(40.0),
            ..Default::default()
        }
    }

    #[test]
    fn verdicts_follow_the_range() {
        assert_eq!(GuideVerdict::of(10.0, 25.0, 40.0), GuideVerdict::Below);
        assert_eq!(GuideVerdict::of(25.0, 25.0, 40.0), GuideVerdict::Within);
        assert_eq!(GuideVerdict::of(41.0, 25.0, 40.0), GuideVerdict::Above);
    }

    #[test]
    fn table_shows_speed_ci_speedup_and_failures() {
        let mut spec = row("spec:16", 90.0);
        spec.speedup = Some(2.25);
        spec.speedup_ci95_low = Some(2.1);
        spec.speedup_ci95_high = Some(2.4);
        spec.lossless = Some(true);
        let mut failed = row("lookup", 0.0);
        failed.status = Status::Failed;
        failed.reason = "server exited with code 134\nlog tail...".into();
        let text = render(&[row("baseline", 40.0), spec, failed]);
        assert!(text.contains("worker: m.gguf (F16)"), "{text}");
        assert!(text.contains("40.0 (39.0-41.0)"), "{text}");
        assert!(text.contains("2.25x (2.10-2.40)"), "{text}");
        assert!(text.contains("lossless"), "{text}");
        assert!(text.contains("above"), "{text}");
        assert!(
            text.contains("failed: server exited with code 134"),
            "{text}"
        );
        assert!(!text.contains("log tail"), "{text}");
        let mut two = row("baseline", 20.0);
        two.parallel = 2;
        two.aggregate_tps = Some(38.5);
        assert!(render(&[two]).contains("20.0 (19.0-21.0), total 38.5"));
    }

    #[test]
    fn a_swept_run_shows_threads_and_depth() {
        assert!(!render(&[row("baseline", 40.0)]).contains("depth"));
        let mut deep = row("baseline", 30.0);
        deep.depth = 4096;
        let text = render(&[row("baseline", 40.0), deep]);
        let header = text.lines().find(|l| l.contains("mode")).unwrap();
        assert!(header.contains(" t ") && header.contains("depth"), "{text}");
        assert!(text.contains("4096"), "{text}");
    }
}
