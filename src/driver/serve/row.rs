//! A serving phase as a row and as raw lines: the cell key (the launch's, with the request
//! mix as its workload and the load point as its `load`), the load columns from the phase's
//! summary, and one JSON line per completed request with when it was due and how late it
//! was sent, so every figure can be computed again from the raw file.

use super::args::LoadPlan;
use crate::driver::cellrow;
use crate::driver::load::{LoadSummary, MaxRate, Mix, Pattern, PhaseRecord};
use crate::driver::plan::LaunchKey;
use crate::driver::resolve::ResolvedRole;
use crate::driver::settings::RunSettings;
use crate::results::{CellKey, RawRepetition, ResultRow, Status};
use std::time::Duration;

/// The longest a queued request may wait for its first token: a server under load answers
/// late by design, and the phase measures how late.
pub const QUEUE_ALLOWANCE: Duration = Duration::from_secs(1800);

/// The identity of a serving cell: the launch's role, model, mode, slots and threads, the
/// mix's workloads joined with `+` as its workload (with ` out A..B` when the output
/// lengths are a range), and the load point.
pub fn key(
    settings: &RunSettings,
    role: &ResolvedRole,
    launch: &LaunchKey,
    mix: &Mix,
    pattern: &Pattern,
) -> CellKey {
    let mut labels: Vec<&str> = mix.entries.iter().map(|e| e.label.as_str()).collect();
    labels.dedup();
    let lengths = mix.entries.iter().map(|e| e.request.n_predict);
    let (low, high) = (
        lengths.clone().min().unwrap_or(0),
        lengths.max().unwrap_or(0),
    );
    let range = match low == high {
        true => String::new(),
        false => format!(" out {low}..{high}"),
    };
    CellKey {
        mode: launch.mode.clone(),
        workload: format!("{}{range}", labels.join("+")),
        parallel: launch.parallel,
        ctx: role.role.ctx * launch.parallel,
        threads: launch.threads,
        depth: 0,
        load: pattern.to_string(),
        ..cellrow::role_key(settings, role)
    }
}

/// The row of a phase that ran.
pub fn build(
    settings: &RunSettings,
    role: &ResolvedRole,
    key: &CellKey,
    record: &PhaseRecord,
    summary: &LoadSummary,
    plan: &LoadPlan,
) -> ResultRow {
    let mut row = base(settings, role, key, Status::Ok);
    if record.interrupted {
        row.status = Status::Interrupted;
        row.reason = "interrupted: the completed requests are in the row and the raw lines".into();
    } else if summary.completed == 0 {
        row.status = Status::Failed;
        row.reason = first_error(record).unwrap_or_else(|| "no request completed".into());
    }
    match &record.spec.pattern {
        Pattern::Rate { rps, burstiness } => {
            row.load_rate_rps = Some(*rps);
            row.load_burstiness = Some(*burstiness);
        }
        Pattern::Concurrency { clients } => row.load_clients = Some(*clients),
    }
    row.load_seed = Some(record.spec.seed);
    row.slo = plan.slo.to_string();
    fill_summary(&mut row, summary);
    row.decode_tps_mean = mean_decode(record);
    row.n_reps = summary.completed;
    row.fill_roofline();
    row
}

/// The columns every row of `key` starts with: the run's stamp, the model and the guide.
pub fn base(
    settings: &RunSettings,
    role: &ResolvedRole,
    key: &CellKey,
    status: Status,
) -> ResultRow {
    let mut row = settings.stamp.clone().with_key(key);
    row.status = status;
    row.timestamp_utc = crate::results::utc_timestamp(std::time::SystemTime::now());
    row.n_predict = settings.n_predict;
    cellrow::describe_model(&mut row, role, &key.mode);
    cellrow::expectations(&mut row, settings, role);
    row
}

fn fill_summary(row: &mut ResultRow, s: &LoadSummary) {
    row.load_wall_s = Some(s.wall_s);
    row.requests_sent = Some(s.sent);
    row.requests_completed = Some(s.completed);
    row.requests_failed = Some(s.failed + s.timed_out);
    row.achieved_rps = Some(s.achieved_rps);
    row.output_tps = Some(s.output_tps);
    row.total_tps = Some(s.total_tps);
    if let Some(p) = &s.ttft {
        row.load_ttft_ms_mean = Some(p.mean_ms);
        row.load_ttft_ms_p50 = Some(p.p50_ms);
        row.load_ttft_ms_p90 = Some(p.p90_ms);
        row.load_ttft_ms_p99 = Some(p.p99_ms);
    }
    if let Some(p) = &s.tpot {
        row.tpot_ms_mean = Some(p.mean_ms);
        row.tpot_ms_p50 = Some(p.p50_ms);
        row.tpot_ms_p90 = Some(p.p90_ms);
        row.tpot_ms_p99 = Some(p.p99_ms);
    }
    fill_latency_tail(row, s);
    row.goodput_rps = s.goodput_rps;
    row.goodput_share = s.goodput_share;
    row.generator_cpu_ms_per_request = s.generator_cpu_ms_per_request;
    row.generator_core_share = s.generator_core_share;
    row.behind_schedule = s.behind_schedule.clone().unwrap_or_default();
    row.saturated = Some(s.saturated);
}

fn fill_latency_tail(row: &mut ResultRow, s: &LoadSummary) {
    if let Some(p) = &s.e2e {
        row.e2e_ms_mean = Some(p.mean_ms);
        row.e2e_ms_p50 = Some(p.p50_ms);
        row.e2e_ms_p90 = Some(p.p90_ms);
        row.e2e_ms_p99 = Some(p.p99_ms);
    }
    if let Some(p) = &s.queue_wait {
        row.queue_ms_mean = Some(p.mean_ms);
        row.queue_ms_p50 = Some(p.p50_ms);
        row.queue_ms_p90 = Some(p.p90_ms);
        row.queue_ms_p99 = Some(p.p99_ms);
    }
    if let Some(p) = &s.itl {
        row.itl_p50_ms = Some(p.p50_ms);
        row.itl_p90_ms = Some(p.p90_ms);
        row.itl_p99_ms = Some(p.p99_ms);
    }
}

/// Mean over completed requests of the server's own decode rate, (predicted_n - 1) over
/// predicted_ms, as a batch cell reports it.
fn mean_decode(record: &PhaseRecord) -> Option<f64> {
    let rates: Vec<f64> = record
        .outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().ok())
        .filter_map(|r| r.to_raw().metrics().decode_tps_server)
        .collect();
    (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / rates.len() as f64)
}

fn first_error(record: &PhaseRecord) -> Option<String> {
    record
        .outcomes
        .iter()
        .find_map(|o| o.result.as_ref().err().cloned())
}

/// One raw line per completed request: its record, when it was due and how late it went.
pub fn raw_lines(key: &CellKey, record: &PhaseRecord) -> Vec<RawRepetition> {
    let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    record
        .outcomes
        .iter()
        .filter_map(|o| {
            let done = o.result.as_ref().ok()?;
            let mut raw = RawRepetition::new(key, o.index, false, done.to_raw());
            raw.scheduled_ns = Some(ns(o.scheduled));
            raw.send_lag_ns = Some(ns(o.sent.saturating_sub(o.scheduled)));
            Some(raw)
        })
        .collect()
}

/// The search's result on every row the search wrote (they are the last rows of the
/// launch: the rows of the phases at the rates it asked for).
pub fn mark_max_rate(rows: &mut [ResultRow], found: Option<&MaxRate>) {
    let Some(found) = found else { return };
    let searched = rows.iter_mut().rev().take(found.steps as usize);
    for row in searched {
        row.max_rate_rps = Some(found.rps);
        row.max_rate_low = Some(found.low);
        row.max_rate_high = found.high.is_finite().then_some(found.high);
    }
}

/// `workers: max rate 1.8 rps [1.8, 2.0] at 90% goodput (6 phases)`.
pub fn describe_max_rate(role: &str, target: f64, found: Option<&MaxRate>) -> String {
    match found {
        Some(m) => format!(
            "{role}: max rate {:.2} rps, interval [{:.2}, {}] at {:.0}% goodput ({} phases)",
            m.rps,
            m.low,
            match m.high.is_finite() {
                true => format!("{:.2}", m.high),
                false => "not reached".into(),
            },
            target * 100.0,
            m.steps
        ),
        None => format!(
            "{role}: no rate held {:.0}% goodput, not even the first the search tried",
            target * 100.0
        ),
    }
}
