//! How a serving run reads at a glance: per role and mode, one line per load point with
//! what was asked (the load), what the server did with it (completed requests per second,
//! output tokens per second), the latencies people set targets on (TTFT, TPOT, E2E and the
//! queueing delay, median and 99th percentile), the goodput, and what to distrust
//! (saturation, a generator behind its schedule, failed requests).

use crate::results::{ResultRow, Status};
use crate::util::output::Table;

/// The serving table of `rows`, one line per row in run order.
pub fn render(rows: &[ResultRow]) -> String {
    let mut table = Table::new([
        "role",
        "mode",
        "load",
        "sent",
        "failed",
        "req/s",
        "out t/s",
        "TTFT p50",
        "TTFT p99",
        "TPOT p50",
        "TPOT p99",
        "E2E p99",
        "queue p99",
        "goodput",
        "notes",
    ])
    .right_aligned(3..14);
    for r in rows {
        table.push(cells(r));
    }
    table.note("latencies in ms, from the scheduled send; goodput = share of sent requests that met every --slo target");
    table.terminal()
}

/// `worker baseline rate 2 rps: 1.98 req/s, TTFT p99 412 ms, goodput 97%`: the progress
/// line of one finished serving cell.
pub fn line(r: &ResultRow) -> String {
    match r.status {
        Status::Ok => format!(
            "{} {} {}: {} req/s, {} out t/s, TTFT p99 {} ms, goodput {}",
            r.role,
            r.mode,
            r.load,
            num(r.achieved_rps, 2),
            num(r.output_tps, 1),
            num(r.load_ttft_ms_p99, 0),
            share(r.goodput_share)
        ),
        _ => format!(
            "{} {} {}: {}: {}",
            r.role,
            r.mode,
            r.load,
            r.status,
            first_line(&r.reason)
        ),
    }
}

fn cells(r: &ResultRow) -> Vec<String> {
    let mut row = vec![r.role.clone(), r.mode.to_string(), r.load.clone()];
    if r.status != Status::Ok {
        row.extend(std::iter::repeat_n(String::new(), 11));
        row.push(format!("{}: {}", r.status, first_line(&r.reason)));
        return row;
    }
    row.extend([
        r.requests_sent.map_or("-".into(), |n| n.to_string()),
        r.requests_failed.map_or("-".into(), |n| n.to_string()),
        num(r.achieved_rps, 2),
        num(r.output_tps, 1),
        num(r.load_ttft_ms_p50, 0),
        num(r.load_ttft_ms_p99, 0),
        num(r.tpot_ms_p50, 1),
        num(r.tpot_ms_p99, 1),
        num(r.e2e_ms_p99, 0),
        num(r.queue_ms_p99, 0),
        share(r.goodput_share),
        notes(r),
    ]);
    row
}

/// What to distrust about a row, and the search's answer where it has one.
fn notes(r: &ResultRow) -> String {
    let mut notes = Vec::new();
    if r.saturated == Some(true) {
        notes.push("saturated".to_string());
    }
    notes.extend(crate::driver::table::noisy_mark(r));
    if !r.behind_schedule.is_empty() {
        notes.push(format!("generator behind: {}", r.behind_schedule));
    }
    if let Some(max) = r.max_rate_rps {
        let high = r.max_rate_high.map_or("-".into(), |h| format!("{h:.2}"));
        notes.push(format!(
            "max rate {max:.2} [{:.2}, {high}]",
            r.max_rate_low.unwrap_or(max)
        ));
    }
    notes.join("; ")
}

/// `v` with `digits` decimals, `-` when absent.
pub(crate) fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn share(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.0}%", v * 100.0))
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served() -> ResultRow {
        ResultRow {
            role: "worker".into(),
            mode: "baseline".parse().unwrap(),
            load: "rate 2 rps".into(),
            requests_sent: Some(120),
            requests_failed: Some(0),
            achieved_rps: Some(1.98),
            output_tps: Some(126.7),
            load_ttft_ms_p50: Some(140.2),
            load_ttft_ms_p99: Some(412.0),
            tpot_ms_p50: Some(21.04),
            tpot_ms_p99: Some(30.5),
            e2e_ms_p99: Some(2100.0),
            queue_ms_p99: Some(260.0),
            goodput_share: Some(0.975),
            saturated: Some(false),
            ..ResultRow::default()
        }
    }

    #[test]
    fn a_served_row_reads_as_its_figures() {
        let text = render(&[served()]);
        for cell in ["rate 2 rps", "1.98", "126.7", "412", "21.0", "2100", "98%"] {
            assert!(text.contains(cell), "{cell} in\n{text}");
        }
        assert_eq!(
            line(&served()),
            "worker baseline rate 2 rps: 1.98 req/s, 126.7 out t/s, TTFT p99 412 ms, goodput 98%"
        );
    }

    #[test]
    fn a_failed_row_says_why_and_a_saturated_one_is_marked() {
        let mut failed = served();
        failed.status = Status::Failed;
        failed.reason = "launch failed: exited\nlog tail".into();
        let mut saturated = served();
        saturated.saturated = Some(true);
        let text = render(&[failed, saturated]);
        assert!(text.contains("failed: launch failed: exited"), "{text}");
        assert!(!text.contains("log tail"), "{text}");
        assert!(text.contains("saturated"), "{text}");
    }
}
