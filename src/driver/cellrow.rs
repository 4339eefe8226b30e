//! Turns one cell's outcome into its result row: statistics, the comparison with the
//! baseline (speedup, losslessness), the proof that the mode took effect, expectations and
//! the roofline. Pure: it measures nothing and writes nothing.

use super::baselines::Baseline;
use super::outcome::{CellOutcome, Measured, Pairing};
use super::plan::Cell;
use super::resolve::ResolvedRole;
use super::settings::RunSettings;
use crate::engine::request::Prompt;
use crate::measure::{self, CellMetrics};
use crate::mode::Mode;
use crate::results::{CellKey, ResultRow, Status};

/// The identity of a cell.
pub fn key(settings: &RunSettings, role: &ResolvedRole, cell: &Cell) -> CellKey {
    CellKey {
        mode: cell.mode.clone(),
        workload: cell.workload.to_string(),
        parallel: cell.parallel,
        ctx: role.role.ctx * cell.parallel,
        threads: cell.threads,
        depth: cell.depth,
        ..role_key(settings, role)
    }
}

/// The part of a cell's identity its role and the run fix: the role, its model file and
/// the model's facts, the extra server arguments; the rest at its default.
pub(super) fn role_key(settings: &RunSettings, role: &ResolvedRole) -> CellKey {
    let f = &role.model.facts;
    CellKey {
        role: role.role.name.clone(),
        model_file: role.model.file_name(),
        model_arch: f.architecture.clone().unwrap_or_default(),
        model_n_params: f.n_params,
        model_quant: role.quant(),
        model_tensor_bytes: f.tensor_bytes,
        server_args: settings.server_args.to_string(),
        ..CellKey::default()
    }
}

/// The complete row of a cell.
pub fn build(
    settings: &RunSettings,
    role: &ResolvedRole,
    cell: &Cell,
    key: &CellKey,
    outcome: &CellOutcome,
    baseline: Option<&Baseline>,
) -> ResultRow {
    let status = match outcome {
        CellOutcome::Measured(_) => Status::Ok,
        CellOutcome::NotMeasured(s, _) => *s,
    };
    let mut row = settings.stamp.clone().with_key(key);
    row.status = status;
    row.timestamp_utc = crate::results::utc_timestamp(std::time::SystemTime::now());
    row.n_predict = settings.n_predict;
    describe_model(&mut row, role, &cell.mode);
    expectations(&mut row, settings, role);
    match outcome {
        CellOutcome::NotMeasured(_, reason) => row.reason = reason.clone(),
        CellOutcome::Measured(m) => fill_measured(&mut row, role, cell, m, baseline),
    }
    if let CellOutcome::Measured(m) = outcome {
        super::quiet::judge(&mut row, m.foreign.as_ref(), settings.noise.as_ref());
    }
    row.fill_roofline();
    row
}

/// The model columns of a row of `role` measured in `mode`: file, quant mix, draft, the
/// active parameters and bytes per token (with `mode`'s experts).
pub(super) fn describe_model(row: &mut ResultRow, role: &ResolvedRole, mode: &Mode) {
    let f = &role.model.facts;
    row.model_file_bytes = f.file_bytes;
    row.quant_mix = quant_mix(role);
    row.synthetic = role.model.synthetic;
    row.draft_model_file = match (&role.draft, mode.spec_k()) {
        (Some(d), Some(_)) => d.file_name(),
        _ => String::new(),
    };
    let active = match mode.moe_n() {
        Some(n) => f.with_experts_used(n),
        None => f.clone(),
    };
    row.active_params = active.active_params;
    row.active_bytes_per_token = active.active_bytes_per_token;
}

/// `Q4_K:3.90GB;Q6_K:0.80GB`, largest first.
fn quant_mix(role: &ResolvedRole) -> String {
    let mut types: Vec<_> = role.model.facts.by_type.iter().collect();
    types.sort_by_key(|t| std::cmp::Reverse(t.bytes));
    types
        .iter()
        .map(|t| format!("{}:{:.3}GB", t.ggml_type.name(), t.bytes as f64 / 1e9))
        .collect::<Vec<_>>()
        .join(";")
}

/// The guide's (or the calibration's) expected decode range of the role's model.
pub(super) fn expectations(row: &mut ResultRow, settings: &RunSettings, role: &ResolvedRole) {
    let range = match role.role.expected_tps {
        Some((lo, hi)) => Some((lo, hi)),
        None => {
            let params_b = role.model.facts.n_params as f64 / 1e9;
            let moe = role.model.facts.expert_count.is_some_and(|n| n > 0);
            settings
                .expectations
                .expected(params_b, &role.quant(), moe)
                .map(|r| (r.low_tps, r.high_tps))
        }
    };
    row.guide_expected_low_tps = range.map(|r| r.0);
    row.guide_expected_high_tps = range.map(|r| r.1);
}

fn fill_measured(
    row: &mut ResultRow,
    role: &ResolvedRole,
    cell: &Cell,
    m: &Measured,
    baseline: Option<&Baseline>,
) {
    row.fill_metrics(&m.metrics);
    row.launches = m.launches();
    // The launch-to-launch variation this row's intervals include: its own launches' for a
    // baseline, its baseline's for an accelerated cell (measured in one launch).
    row.between_launch_cv = match cell.mode.is_baseline() {
        true => m.between_launch_cv(),
        false => baseline.and_then(|b| b.between_launch_cv),
    };
    if let (Some(cv), Some(d)) = (row.between_launch_cv, &m.metrics.decode) {
        row.fill_decode(&measure::with_launch_variation(d, cv, row.launches));
    }
    row.client_cpu_pct = m.client_cpu_pct;
    if !m.aggregate.is_empty() {
        row.aggregate_tps = Some(m.aggregate.iter().sum::<f64>() / m.aggregate.len() as f64);
    }
    if let Some(why) = not_effective(cell, &m.metrics) {
        row.status = Status::ModeNotEffective;
        row.reason = why;
        // Never a speed: the statistics stay in the raw file, not in the row.
        clear_speeds(row);
        return;
    }
    match baseline {
        _ if cell.mode.is_baseline() => {}
        Some(b) => compare_with_baseline(row, cell, m, b),
        None => {
            row.reason =
                "no baseline of this cell was measured: no speedup, losslessness not checked".into()
        }
    }
    if cell.mode.is_baseline() {
        row.reason = ground_truth_note(role, m);
    }
    let unpaired = match &m.pairing {
        Pairing::Unpaired(why) => Some(why.as_str()),
        _ => None,
    };
    let notes = std::iter::once(row.reason.as_str())
        .chain(unpaired)
        .chain(m.notes.iter().map(String::as_str));
    row.reason = notes
        .filter(|n| !n.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
}

/// A speculative cell that drafted nothing did not test speculation.
fn not_effective(cell: &Cell, m: &CellMetrics) -> Option<String> {
    if cell.mode.is_speculative() && m.draft_n.unwrap_or(0) == 0 {
        return Some("the server drafted no tokens (timings carry no draft_n)".into());
    }
    None
}

fn clear_speeds(row: &mut ResultRow) {
    row.decode_tps_mean = None;
    row.decode_tps_median = None;
    row.decode_tps_sd = None;
    row.decode_tps_ci95_low = None;
    row.decode_tps_ci95_high = None;
    row.decode_tps_min = None;
    row.decode_tps_max = None;
    row.client_decode_tps_mean = None;
    row.aggregate_tps = None;
}

fn compare_with_baseline(row: &mut ResultRow, cell: &Cell, m: &Measured, b: &Baseline) {
    if let Some((ci, pairs)) = speedup(m, b) {
        row.fill_speedup(&ci);
        row.speedup_pairs = pairs;
    }

    let pairs = m.first_tokens.iter().zip(&b.tokens);
    let worst = pairs
        .map(|(now, base)| measure::agreement(base, now))
        .enumerate()
        .min_by(|(_, x), (_, y)| x.identical_share.total_cmp(&y.identical_share));
    let Some((slot, a)) = worst else {
        return;
    };
    row.fill_agreement(&a);
    if cell.mode.moe_n().is_some() {
        // Expert reduction changes the output by design: agreement is a quality proxy,
        // not a losslessness check.
        row.lossless = None;
        return;
    }
    if let Some(at) = a.first_difference {
        let d = measure::divergence(&b.tokens[slot], &m.first_tokens[slot], &b.top_two, at);
        row.first_difference_margin = d.margin;
        row.difference = Some(d.kind);
    }
}

/// The speedup interval and the number of pairs behind it: paired over the cell's A/B pairs
/// when it has at least two, else Welch over the cell's and the stored baseline's
/// repetitions (separate launches; no pair count). Either way the baseline's launch-to-launch
/// variation is added ([`measure::LogEstimate::with_launch_variation`]): a paired speedup is
/// one launch of the cell's server over one of the partner's, an unpaired one is one launch
/// over the baseline's pooled launches.
pub fn speedup(m: &Measured, b: &Baseline) -> Option<(measure::RatioCi, Option<u32>)> {
    let cv = b.between_launch_cv.unwrap_or(0.0);
    if let Pairing::Paired(pairs) = &m.pairing {
        let (own, base): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
        if let Ok(log) = measure::paired_log_estimate(&own, &base) {
            let ci = log
                .with_launch_variance(measure::launch_variance(cv, 1, 1))
                .ci95();
            return Some((ci, m.pairing.pair_count()));
        }
    }
    let log = measure::Moments::of(&m.metrics.decode_tps)
        .filter(|a| a.n >= 2)?
        .log_estimate()?
        .div(
            &measure::Moments::of(&b.decode_tps)
                .filter(|b| b.n >= 2)?
                .log_estimate()?,
        );
    let var = measure::launch_variance(cv, m.launches(), b.launches);
    let ci = log.with_launch_variance(var).ci95();
    Some((ci, None))
}

/// For a synthetic `cycle` model, the baseline's output must be the known sequence.
fn ground_truth_note(role: &ResolvedRole, m: &Measured) -> String {
    let (Some(b), Prompt::Tokens(prompt)) = (&role.model.behavior, &m.prompt) else {
        return String::new();
    };
    let Some(tokens) = m.first_tokens.first() else {
        return String::new();
    };
    let predicted = b.predicted(prompt, tokens.len());
    if predicted.is_empty() {
        return String::new();
    }
    let a = measure::agreement(&predicted, tokens);
    match a.first_difference {
        None => String::new(),
        Some(at) => format!(
            "note: greedy output leaves the synthetic model's known sequence at token {at} ({:.0}% identical)",
            a.identical_share * 100.0
        ),
    }
}

/// A one-line summary for the progress log.
pub fn one_line(row: &ResultRow) -> String {
    let mut what = format!(
        "{} {} {} np={} t={}",
        row.role, row.mode, row.workload, row.parallel, row.threads
    );
    if row.depth > 0 {
        what.push_str(&format!(" d={}", row.depth));
    }
    if row.status != Status::Ok {
        return format!(
            "{what}: {} ({})",
            row.status,
            row.reason.lines().next().unwrap_or("")
        );
    }
    let mut s = format!("{what}: {:.1} t/s", row.decode_tps_mean.unwrap_or(0.0));
    if let Some(x) = row.speedup {
        s.push_str(&format!(", {x:.2}x"));
    }
    if let Some(a) = row.acceptance {
        s.push_str(&format!(", accept {:.0}%", a * 100.0));
    }
    if row.lossless.is_some() {
        s.push_str(&format!(", {}", row.quality()));
    }
    if let Some(mark) = super::table::noisy_mark(row) {
        s.push_str(&format!(", {mark}"));
    }
    s
}
