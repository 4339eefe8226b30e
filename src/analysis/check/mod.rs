//! `bench check`: the regression gate for CI. Every metric of every cell of the baseline gets
//! the ratio current / baseline (oriented so that below 1 is worse) with its 95% CI, and one
//! of three answers: it **passes** only when the interval rules out a drop beyond the
//! tolerance (low end at or above `1 - tolerance`), it **regressed** when the interval lies
//! wholly below `1 - tolerance`, and otherwise it is **inconclusive** (listed with its
//! numbers: the data can tell neither). A run that measured nothing cannot pass: an empty or
//! absent current file, and every baseline cell missing from it, count as regressions unless
//! `--allow-missing`. `bench check --profile NAME` runs the profile, then re-runs it (fresh
//! launches, more repetitions) while cells are inconclusive, pooling the repetitions, until
//! each is decided or the rounds run out.
//!
//! Exit code 0: everything passed; 1: something regressed or is missing; 2: bad input (an
//! error); 3: nothing regressed but something is still inconclusive.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use super::compare::{joins_on_threads, notes, warnings, JoinKey};
use super::metrics::{estimate, Metric};
use super::render::{num, ratio_text, Format};
use super::stats::{decide_by, Decision, RatioCi, Rule};
use super::CheckArgs;
use crate::results::load::{self, LoadedFile};
use crate::results::{ResultRow, Status};
use crate::util::output::Report;

/// Improvements listed one per line before they are only counted (regressions, inconclusive
/// cells and missing cells are all listed).
pub const MAX_IMPROVED_LINES: usize = 5;

/// Exit code when nothing regressed but some check could not be decided.
pub const EXIT_INCONCLUSIVE: u8 = 3;

/// Which metrics the gate looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MetricSet {
    /// What the gate decides with defaults: decode, speedup, acceptance, lossless and mode
    /// effective, and prefill and TTFT where both files have their per-repetition values
    /// (a metric without an interval on either side is left out, and counted in a note).
    /// Not ITL p99: the 99th percentile of one repetition's 60-odd gaps is close to its
    /// largest gap and varies by 30-60% between repetitions of the committed baselines.
    Default,
    /// Within-run ratios: speedup, acceptance, lossless, mode effective.
    Ratio,
    /// Absolute rates: decode, prefill, TTFT, ITL p99.
    Absolute,
    /// Both.
    All,
}

impl MetricSet {
    fn metrics(self) -> Vec<Metric> {
        let ratio = [Metric::Speedup, Metric::Acceptance];
        let absolute = [
            Metric::Decode,
            Metric::Prefill,
            Metric::Ttft,
            Metric::ItlP99,
        ];
        match self {
            MetricSet::Default => absolute[..3].iter().chain(&ratio).copied().collect(),
            MetricSet::Ratio => ratio.to_vec(),
            MetricSet::Absolute => absolute.to_vec(),
            MetricSet::All => absolute.iter().chain(&ratio).copied().collect(),
        }
    }

    fn includes_status(self) -> bool {
        self != MetricSet::Absolute
    }

    /// Leaves out a metric that has no interval on either side instead of calling it
    /// inconclusive: what the default set does.
    fn needs_interval(self) -> bool {
        self == MetricSet::Default
    }
}

/// Runs a profile by name (with an optional repetition cap) and returns the results CSV:
/// the seam of `check --profile NAME`. The command layer wires it to the run loop
/// (`cli::check`), so that analysis never measures; tests pass their own. A run with failed
/// cells is not an error: the gate judges those cells.
pub type ProfileRunner = fn(&str, Option<u32>, Option<&Path>) -> anyhow::Result<PathBuf>;

/// Parses `5%` or `0.05` into a fraction in [0, 1).
pub fn parse_tolerance(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let value = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|e| format!("tolerance {s:?}: {e} (write 5% or 0.05)"))?;
    if !(0.0..1.0).contains(&value) {
        return Err(format!("tolerance {s:?} must be between 0% and 100%"));
    }
    Ok(value)
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The cell, as text.
    pub cell: String,
    /// What was checked (`speedup`, `lossless`, `status`, ...).
    pub what: String,
    /// Passed, improved, regressed or inconclusive.
    pub decision: Decision,
    /// Baseline -> current values and the ratio, as text.
    pub detail: String,
    /// False when the ratio had no interval (point values only).
    pub has_ci: bool,
    /// The point estimate lies beyond the tolerance (a drop, significant or not).
    pub drop_beyond_tolerance: bool,
}

/// The gate's overall answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Every check passed (exit 0).
    Pass,
    /// Something regressed, or a baseline cell is missing (exit 1).
    Regressed,
    /// Nothing regressed, but something could not be decided (exit 3).
    Inconclusive,
}

impl Outcome {
    /// The process exit code of this outcome.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Pass => 0,
            Outcome::Regressed => 1,
            Outcome::Inconclusive => EXIT_INCONCLUSIVE,
        }
    }
}

/// Everything the gate found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Gate {
    /// Every finding, in cell order.
    pub findings: Vec<Finding>,
    /// Baseline cells or metrics with no measured counterpart in the current results (absent,
    /// skipped, or no value): regressions unless `allow_missing`.
    pub missing: Vec<String>,
    /// Missing cells are tolerated (`--allow-missing`).
    pub allow_missing: bool,
    /// The current results have no rows: a run that measured nothing, which never passes
    /// (not even with `allow_missing`).
    pub measured_nothing: bool,
    /// Unfairness warnings (threads, engine, ...).
    pub warnings: Vec<String>,
    /// Notes (raw repetitions missing, re-measurement rounds).
    pub notes: Vec<String>,
    /// How a check passed: by its estimate (the default) or by its interval (`--strict`).
    pub rule: Rule,
}

impl Gate {
    /// Findings with this decision.
    pub fn with(&self, d: Decision) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.decision == d)
    }

    /// True when something regressed (missing cells included unless allowed).
    pub fn regressed(&self) -> bool {
        self.measured_nothing
            || self.with(Decision::Regressed).next().is_some()
            || (!self.allow_missing && !self.missing.is_empty())
    }

    /// True when some finding is inconclusive.
    pub fn inconclusive(&self) -> bool {
        self.with(Decision::Inconclusive).next().is_some()
    }

    /// Regressed beats inconclusive beats pass.
    pub fn outcome(&self) -> Outcome {
        if self.regressed() {
            Outcome::Regressed
        } else if self.inconclusive() {
            Outcome::Inconclusive
        } else {
            Outcome::Pass
        }
    }
}

fn cell_text(r: &ResultRow) -> String {
    let key = JoinKey::of(r, false);
    let mut text = format!(
        "{} [{}] {} {} np={}",
        r.role,
        key.model(),
        r.mode,
        r.workload,
        r.parallel
    );
    if r.depth > 0 {
        text.push_str(&format!(" depth={}", r.depth));
    }
    if !r.server_args.is_empty() {
        text.push_str(&format!(" [{}]", r.server_args));
    }
    if !r.load.is_empty() {
        text.push_str(&format!(" {}", r.load));
    }
    if let Some(round) = r.deploy_round {
        text.push_str(&format!(" {} round {round}", r.deploy_phase));
    }
    text
}

/// Status and lossless: facts that flip, no interval needed.
fn status_findings(b: &ResultRow, c: &ResultRow) -> Vec<Finding> {
    let mut out = Vec::new();
    let finding = |what: &str, detail: String| Finding {
        cell: cell_text(c),
        what: what.into(),
        decision: Decision::Regressed,
        detail,
        has_ci: true,
        drop_beyond_tolerance: true,
    };
    let broke = matches!(
        c.status,
        Status::Failed | Status::ModeNotEffective | Status::Interrupted
    );
    if b.status == Status::Ok && broke {
        let reason: String = c
            .reason
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(160)
            .collect();
        out.push(finding("status", format!("ok -> {} ({reason})", c.status)));
    }
    // A near-tie flip is lossless up to rounding: not a regression of the mode.
    let near_tie = c.difference == Some(crate::results::Difference::NearTie);
    if b.lossless == Some(true) && c.lossless == Some(false) && !near_tie {
        let at = c.first_difference.map_or(String::new(), |p| {
            format!(", first difference at token {p}")
        });
        out.push(finding("lossless", format!("true -> false{at}")));
    }
    out
}

/// The check of one metric of one cell; `Err` with a line for the missing list when the
/// baseline has the metric and the current cell (measured, `ok`) does not.
fn metric_finding(
    files: (&LoadedFile, &LoadedFile),
    rows: (&ResultRow, &ResultRow),
    metric: Metric,
    (tolerance, rule): (f64, Rule),
) -> Option<Result<Finding, String>> {
    let b = estimate(files.0, rows.0, metric)?;
    let Some(c) = estimate(files.1, rows.1, metric) else {
        // A cell that broke is a status finding already; an ok cell without the value is not.
        return (rows.1.status == Status::Ok).then(|| {
            Err(format!(
                "{}: {} {} in the baseline, no value in the current results",
                cell_text(rows.1),
                metric.name(),
                num(b.value)
            ))
        });
    };
    let raw: RatioCi = c.log.div(&b.log).ci95();
    let oriented = if metric.higher_is_better() {
        raw
    } else {
        raw.recip()
    };
    Some(Ok(Finding {
        cell: cell_text(rows.1),
        what: metric.name().into(),
        decision: decide_by(rule, &oriented, tolerance),
        detail: format!(
            "{} -> {}{} (current/baseline {})",
            num(b.value),
            num(c.value),
            if metric.unit().is_empty() {
                String::new()
            } else {
                format!(" {}", metric.unit())
            },
            ratio_text(&raw)
        ),
        has_ci: raw.has_ci(),
        drop_beyond_tolerance: oriented.ratio < 1.0 - tolerance,
    }))
}

/// The note on checks the default set left out for want of an interval, if any.
fn left_out_note(n: usize) -> Option<String> {
    (n > 0).then(|| {
        format!(
            "{n} check(s) left out: no interval on one side (prefill or TTFT without the \
             per-repetition values of a JSON Lines file beside the CSV); --metrics all lists \
             them as inconclusive"
        )
    })
}

/// Runs the gate over two loaded files (missing cells count as regressions; the caller sets
/// `allow_missing` on the result to tolerate them).
pub fn gate(
    baseline: &LoadedFile,
    current: &LoadedFile,
    tolerance: f64,
    set: MetricSet,
    rule: Rule,
) -> Gate {
    let mut g = Gate {
        rule,
        warnings: warnings(&[baseline.clone(), current.clone()]),
        notes: notes(&[baseline.clone(), current.clone()]),
        ..Gate::default()
    };
    if current.rows.is_empty() {
        g.measured_nothing = true;
        g.notes.push(format!(
            "{}: no result rows: the run measured nothing, which never passes",
            current.path.display()
        ));
    }
    let on_threads = joins_on_threads(&[baseline.clone(), current.clone()]);
    let mut left_out = 0usize;
    for b in &baseline.rows {
        let key = JoinKey::of(b, on_threads);
        let Some(c) = current
            .rows
            .iter()
            .find(|c| JoinKey::of(c, on_threads) == key)
        else {
            g.missing.push(format!(
                "{}: in the baseline, not in the current results",
                cell_text(b)
            ));
            continue;
        };
        if b.status == Status::Ok && c.status == Status::Skipped {
            g.missing.push(format!(
                "{}: ok in the baseline, skipped now ({})",
                cell_text(c),
                c.reason
            ));
        }
        if set.includes_status() {
            g.findings.extend(status_findings(b, c));
        }
        for m in set.metrics() {
            match metric_finding((baseline, current), (b, c), m, (tolerance, rule)) {
                Some(Ok(f)) if set.needs_interval() && !f.has_ci => left_out += 1,
                Some(Ok(f)) => g.findings.push(f),
                Some(Err(line)) => g.missing.push(line),
                None => {}
            }
        }
    }
    g.notes.extend(left_out_note(left_out));
    if set.includes_status() {
        let contention = super::contention::findings(baseline, current, tolerance, rule);
        g.findings.extend(contention.into_iter().map(|f| Finding {
            cell: f.cell,
            what: "contention".into(),
            decision: f.decision,
            detail: f.detail,
            has_ci: f.has_ci,
            drop_beyond_tolerance: f.drop_beyond_tolerance,
        }));
    }
    g
}

mod remeasure;
pub use remeasure::{gate_with_remeasure, pool, settle, Remeasure};

mod verdict;
pub use verdict::{summary, verdict_table};

mod db;

/// Loads the current results. A file that does not exist or is empty (`/dev/null`) is a run
/// that measured nothing: zero rows, which the gate judges (every baseline cell missing).
/// An unreadable file or another schema is an error (exit 2).
pub fn load_current(path: &Path) -> anyhow::Result<LoadedFile> {
    let empty = |why: &str| LoadedFile {
        path: path.to_path_buf(),
        rows: Vec::new(),
        raw: HashMap::new(),
        raw_note: Some(format!("{}: {why}", path.display())),
        name: None,
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(empty("not found: the run wrote no results"))
        }
        Ok(m) if !m.is_dir() && std::fs::read(path).is_ok_and(|b| b.is_empty()) => {
            return Ok(empty("empty file"))
        }
        _ => {}
    }
    load::load(path)
}

fn load_baseline(path: &Path) -> anyhow::Result<LoadedFile> {
    let baseline = load::load(path)?;
    anyhow::ensure!(
        !baseline.rows.is_empty(),
        "baseline {} has no result rows: there is nothing to gate against",
        path.display()
    );
    Ok(baseline)
}

/// Runs `bench check` with the given profile runner.
pub fn command(args: &CheckArgs, runner: &Option<ProfileRunner>) -> anyhow::Result<ExitCode> {
    let baseline = match (&args.baseline, &args.db) {
        (Some(path), _) => load_baseline(path)?,
        (None, Some(db)) => db::baseline(args, db)?,
        (None, None) => anyhow::bail!("bench check needs --baseline FILE or --db FILE"),
    };
    let db = args.db.as_deref().filter(|_| args.profile.is_some());
    let mut g = match (&args.current, &args.profile) {
        (Some(path), _) => gate(
            &baseline,
            &load_current(path)?,
            args.tolerance,
            args.metrics,
            args.rule(),
        ),
        (None, Some(name)) => {
            let Some(run) = runner else {
                anyhow::bail!(
                    "bench check --profile {name}: not available in this build (the driver is not wired in); run `bench run --profile {name}` and pass its CSV with --current"
                );
            };
            let first = load_current(&run(name, None, db)?)?;
            let plan = Remeasure {
                rounds: args.remeasure_rounds,
                max_reps: args.remeasure_reps,
            };
            gate_with_remeasure(
                &baseline,
                first,
                args.tolerance,
                args.metrics,
                args.rule(),
                plan.rounds,
                |round| {
                    eprintln!(
                        "check: re-measuring inconclusive cells, round {round} of at most {}",
                        plan.rounds
                    );
                    load_current(&run(name, Some(plan.max_reps), db)?)
                },
            )?
        }
        (None, None) => anyhow::bail!("bench check needs --current FILE or --profile NAME"),
    };
    g.allow_missing = args.allow_missing;
    let outcome = g.outcome();
    let report = serde_json::json!({
        "outcome": outcome,
        "exit_code": outcome.exit_code(),
        "tolerance": args.tolerance,
        "gate": g,
    });
    let text = match args.output.format() {
        Format::Table => summary(&g, args.tolerance),
        format => Report::from(verdict_table(&g, args.tolerance)).render(format, &report)?,
    };
    crate::util::output::print(&text)?;
    Ok(ExitCode::from(outcome.exit_code()))
}

/// Path helper for tests and callers: the gate on two paths.
pub fn gate_paths(
    baseline: &Path,
    current: &Path,
    tolerance: f64,
    set: MetricSet,
    rule: Rule,
) -> anyhow::Result<Gate> {
    Ok(gate(
        &load_baseline(baseline)?,
        &load_current(current)?,
        tolerance,
        set,
        rule,
    ))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) mod power;
