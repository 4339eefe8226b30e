//! How a deployment reads at a glance: one table per deployment, a line per role (its mode,
//! threads and CPUs, its load, its decode rate alone and together, the contention with its
//! interval, its tail latency and goodput together) and one line for the machine (the
//! aggregate output rate alone-summed and together, and the bandwidth the deployment draws
//! against the measured one).

use super::summary::{self, DeploymentSummary, MachineSummary, RoleSummary};
use crate::driver::serve::table::num;
use crate::results::{ResultRow, Status};
use crate::util::output::Table;

/// The deployment tables of `rows`.
pub fn render(rows: &[ResultRow]) -> String {
    summary::summarize(rows)
        .iter()
        .map(|d| table(d).terminal())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The columns of a deployment table.
const HEADERS: [&str; 12] = [
    "role",
    "mode",
    "threads",
    "load",
    "alone t/s",
    "together t/s",
    "contention [95% CI]",
    "predicted",
    "TTFT p99",
    "TPOT p50",
    "goodput",
    "notes",
];

/// The table of one deployment.
pub fn table(d: &DeploymentSummary) -> Table {
    let mut table = Table::new(HEADERS)
        .titled(format!("deployment {}", d.id))
        .right_aligned(2..11);
    for r in &d.roles {
        table.push(role_cells(r));
    }
    table.push(machine_cells(&d.machine));
    table.note("t/s: mean per-request decode rate; contention = together / alone, paired by round (1 = no cost of sharing); predicted: the roles' weight streams sharing the bandwidth, their threads the cores; latencies in ms, together");
    table
}

fn role_cells(r: &RoleSummary) -> Vec<String> {
    let threads = match r.cpus.is_empty() {
        true => r.threads.to_string(),
        false => format!("{} (cpus {})", r.threads, r.cpus),
    };
    vec![
        r.role.clone(),
        r.mode.clone(),
        threads,
        r.load.clone(),
        num(r.alone_tps, 1),
        num(r.together_tps, 1),
        r.contention
            .as_ref()
            .map_or("-".into(), |c| match c.has_ci() {
                true => format!("{:.2} [{:.2}, {:.2}]", c.ratio, c.low, c.high),
                false => format!("{:.2}", c.ratio),
            }),
        num(r.predicted, 2),
        num(r.ttft_p99_ms, 0),
        num(r.tpot_p50_ms, 1),
        r.goodput_share
            .map_or("-".into(), |g| format!("{:.0}%", g * 100.0)),
        [r.starts.clone(), r.problem.clone()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; "),
    ]
}

fn machine_cells(m: &MachineSummary) -> Vec<String> {
    let bandwidth = match (m.bandwidth_used_gbps, m.bandwidth_gbps) {
        (Some(used), Some(have)) => format!(
            "weights streamed {used:.1} GB/s of {have:.1} measured ({:.0}%)",
            100.0 * used / have
        ),
        (Some(used), None) => format!("weights streamed {used:.1} GB/s"),
        _ => String::new(),
    };
    let aggregate = match (m.alone_output_tps, m.together_output_tps) {
        (Some(a), Some(t)) => format!("output {t:.1} t/s together vs {a:.1} summed alone"),
        _ => String::new(),
    };
    vec![
        "machine".into(),
        String::new(),
        String::new(),
        String::new(),
        num(m.alone_output_tps, 1),
        num(m.together_output_tps, 1),
        match (m.alone_output_tps, m.together_output_tps) {
            (Some(a), Some(t)) if a > 0.0 => format!("{:.2}", t / a),
            _ => "-".into(),
        },
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        [aggregate, bandwidth, oversubscribed(m.threads_on_cores)]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
    ]
}

/// A warning when the servers have more threads than the machine has cores: llama.cpp's
/// threads spin at each step's barrier, so a descheduled one stalls its server's step and
/// the contention falls far below the model's fair sharing of the cores.
pub fn oversubscribed((threads, cores): (u32, u32)) -> String {
    match cores > 0 && threads > cores {
        true => format!(
            "OVERSUBSCRIBED: {threads} threads on {cores} cores (spinning barriers: the prediction is an upper bound)"
        ),
        false => String::new(),
    }
}

/// `frontdoor baseline together round 2: 18.4 t/s, TTFT p99 412 ms`: the progress line of
/// one finished phase.
pub fn line(r: &ResultRow) -> String {
    let round = r.deploy_round.unwrap_or(0);
    match r.status {
        Status::Ok => format!(
            "{} {} {} round {round}: {} t/s decode, {} requests, TTFT p99 {} ms",
            r.role,
            r.mode,
            r.deploy_phase,
            num(r.decode_tps_mean, 1),
            r.requests_completed.unwrap_or(0),
            num(r.load_ttft_ms_p99, 0)
        ),
        _ => format!(
            "{} {} {} round {round}: {}: {}",
            r.role,
            r.mode,
            r.deploy_phase,
            r.status,
            r.reason.lines().next().unwrap_or("")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::deploy::summary::summarize;

    #[test]
    fn every_line_has_a_cell_per_column() {
        let row = |phase: &str, round: u32, tps: f64| ResultRow {
            deployment_id: "deploy-1".into(),
            role: "frontdoor".into(),
            deploy_phase: phase.into(),
            deploy_round: Some(round),
            status: Status::Ok,
            decode_tps_mean: Some(tps),
            output_tps: Some(tps),
            active_bytes_per_token: 1_000_000_000,
            role_bandwidth_gbps: Some(10.0),
            deploy_bandwidth_gbps: Some(12.0),
            physical_cores: 2,
            threads: 1,
            ..ResultRow::default()
        };
        let rows = [
            row("alone", 1, 8.0),
            row("together", 1, 8.0),
            row("alone", 2, 8.0),
            row("together", 2, 8.0),
        ];
        let d = &summarize(&rows)[0];
        assert_eq!(role_cells(&d.roles[0]).len(), HEADERS.len());
        assert_eq!(machine_cells(&d.machine).len(), HEADERS.len());
        // One role streaming 8 GB/s of the 10 its thread reaches, alone on the machine:
        // nothing to share, predicted 1.00 in its column.
        let cells = role_cells(&d.roles[0]);
        let at = HEADERS.iter().position(|h| *h == "predicted").unwrap();
        assert_eq!(cells[at], "1.00");
    }
}
