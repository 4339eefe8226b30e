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
use super::render::{num, ratio_text, Format, Table};
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
pub type ProfileRunner = fn(&str, Option<u32>) -> anyhow::Result<PathBuf>;

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
    if left_out > 0 {
        g.notes.push(format!(
            "{left_out} check(s) left out: no interval on one side (prefill or TTFT without the \
             per-repetition values of a JSON Lines file beside the CSV); --metrics all lists \
             them as inconclusive"
        ));
    }
    g
}

/// Adds the raw repetitions of `more` (a fresh run of the same profile) to `into`, cell by
/// cell, so that the next gate sees every repetition of every round. Rows (statuses,
/// summaries) stay those of the first run.
///
/// `into` already pools `runs` runs. Each run launched every cell afresh, so the pooled means
/// average `runs + 1` launches of each side and the launch variation in their intervals
/// shrinks with them: each row's `between_launch_cv` is rescaled to `cv_1 / sqrt(runs + 1)`.
pub fn pool(into: &mut LoadedFile, more: &LoadedFile, runs: u32) {
    let shrink = (f64::from(runs) / f64::from(runs + 1)).sqrt();
    for row in &mut into.rows {
        row.between_launch_cv = row.between_launch_cv.map(|cv| cv * shrink);
    }
    for (key, values) in &more.raw {
        let v = into.raw.entry(key.clone()).or_default();
        v.decode_tps.extend_from_slice(&values.decode_tps);
        v.prefill_tps.extend_from_slice(&values.prefill_tps);
        v.ttft_ms.extend_from_slice(&values.ttft_ms);
        v.itl_p99_ms.extend_from_slice(&values.itl_p99_ms);
        v.acceptance.extend_from_slice(&values.acceptance);
        v.itl_gaps_ms.extend_from_slice(&values.itl_gaps_ms);
        v.pairs.extend_from_slice(&values.pairs);
    }
}

/// The gate after a re-measurement round: checks decided before keep their decision, the
/// inconclusive ones take the decision of `fresh` (computed on the pooled repetitions).
pub fn settle(previous: Gate, fresh: Gate) -> Gate {
    let mut fresh_by: HashMap<(String, String), Finding> = fresh
        .findings
        .into_iter()
        .map(|f| ((f.cell.clone(), f.what.clone()), f))
        .collect();
    let findings = previous
        .findings
        .into_iter()
        .map(|f| match f.decision {
            Decision::Inconclusive => fresh_by
                .remove(&(f.cell.clone(), f.what.clone()))
                .unwrap_or(f),
            _ => f,
        })
        .collect();
    Gate {
        findings,
        ..previous
    }
}

/// How `check --profile` re-measures inconclusive cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remeasure {
    /// Re-runs of the profile at most (0: none).
    pub rounds: u32,
    /// Repetition cap per cell in a re-run (`bench run --max-reps`).
    pub max_reps: u32,
}

impl Default for Remeasure {
    fn default() -> Self {
        Remeasure {
            rounds: 3,
            max_reps: 10,
        }
    }
}

/// The gate on `first`, then while something is inconclusive and rounds remain: one more run
/// from `more` (fresh launches), its repetitions pooled with all earlier ones, the
/// inconclusive checks decided again. `more` is the real profile run in `command` and a
/// simulation in the tests.
pub fn gate_with_remeasure(
    baseline: &LoadedFile,
    first: LoadedFile,
    tolerance: f64,
    set: MetricSet,
    rule: Rule,
    rounds: u32,
    mut more: impl FnMut(u32) -> anyhow::Result<LoadedFile>,
) -> anyhow::Result<Gate> {
    let mut current = first;
    let mut g = gate(baseline, &current, tolerance, set, rule);
    for round in 1..=rounds {
        let open = g.with(Decision::Inconclusive).count();
        if open == 0 || current.rows.is_empty() {
            break;
        }
        pool(&mut current, &more(round)?, round);
        g = settle(g, gate(baseline, &current, tolerance, set, rule));
        let still = g.with(Decision::Inconclusive).count();
        g.notes.push(format!(
            "re-measurement round {round}: {open} check(s) were inconclusive, {still} still are"
        ));
    }
    Ok(g)
}

/// The CI-log summary: every regression, every inconclusive check and every missing cell with
/// its numbers, improvements, then counts and the outcome.
pub fn summary(g: &Gate, tolerance: f64) -> String {
    let mut out = String::new();
    for w in &g.warnings {
        out += &format!("WARNING: {w}\n");
    }
    for n in &g.notes {
        out += &format!("note: {n}\n");
    }
    for f in g.with(Decision::Regressed) {
        out += &format!("REGRESSED {}: {}: {}\n", f.cell, f.what, f.detail);
    }
    for f in g.with(Decision::Inconclusive) {
        let why = inconclusive_why(f);
        out += &format!("INCONCLUSIVE {}: {}: {}{why}\n", f.cell, f.what, f.detail);
    }
    let improved: Vec<&Finding> = g.with(Decision::Improved).collect();
    for f in improved.iter().take(MAX_IMPROVED_LINES) {
        out += &format!("improved  {}: {}: {}\n", f.cell, f.what, f.detail);
    }
    if improved.len() > MAX_IMPROVED_LINES {
        out += &format!(
            "improved  ... and {} more\n",
            improved.len() - MAX_IMPROVED_LINES
        );
    }
    let missing_word = if g.allow_missing {
        "missing  "
    } else {
        "MISSING  "
    };
    for m in &g.missing {
        out += &format!("{missing_word} {m}\n");
    }
    out + &tally(g, tolerance)
}

/// The decision as the JSON spells it.
fn word(d: Decision) -> &'static str {
    match d {
        Decision::Improved => "improved",
        Decision::Pass => "pass",
        Decision::Regressed => "regressed",
        Decision::Inconclusive => "inconclusive",
    }
}

fn inconclusive_why(f: &Finding) -> &'static str {
    match (f.has_ci, f.drop_beyond_tolerance) {
        (false, _) => " (no interval)",
        (true, true) => " (a drop beyond the tolerance, not significant)",
        (true, false) => " (the interval reaches below the tolerance)",
    }
}

/// The counts line and the outcome line that end the summary.
fn tally(g: &Gate, tolerance: f64) -> String {
    let count = |d| g.with(d).count();
    let drops = g
        .findings
        .iter()
        .filter(|f| f.drop_beyond_tolerance)
        .count();
    let counts = format!(
        "check: {} checks, {} regressed, {} inconclusive, {} passed ({} improved), {} missing{}; {} drop(s) beyond the tolerance; tolerance {:.1}%{}\n",
        g.findings.len(),
        count(Decision::Regressed),
        count(Decision::Inconclusive),
        count(Decision::Pass) + count(Decision::Improved),
        count(Decision::Improved),
        g.missing.len(),
        if g.allow_missing { " (allowed)" } else { "" },
        drops,
        tolerance * 100.0,
        match g.rule {
            Rule::Estimate => "",
            Rule::Strict => " (strict: the interval must rule a drop out)",
        }
    );
    counts + match g.outcome() {
        Outcome::Pass => "check: PASS\n",
        Outcome::Regressed => "check: REGRESSED (exit 1)\n",
        Outcome::Inconclusive => match g.rule {
            Rule::Estimate => "check: INCONCLUSIVE (exit 3): a drop beyond the tolerance that the intervals cannot confirm; re-measure (`bench check --profile NAME` does)\n",
            Rule::Strict => "check: INCONCLUSIVE (exit 3): the intervals can neither rule out nor show a drop beyond the tolerance; re-measure (`bench check --profile NAME` does) or widen the tolerance\n",
        },
    }
}

/// The verdict table of `--format markdown|csv`: every finding that did not simply pass and
/// every missing cell, in the summary's order (improvements all listed), with the
/// warnings and notes above and the summary's counts and outcome below.
pub fn verdict_table(g: &Gate, tolerance: f64) -> Table {
    let mut t = Table::new(["decision", "cell", "check", "detail"]);
    let head: Vec<String> = (g.warnings.iter().map(|w| format!("WARNING: {w}")))
        .chain(g.notes.iter().map(|n| format!("note: {n}")))
        .collect();
    t.title = (!head.is_empty()).then(|| head.join("\n"));
    for d in [
        Decision::Regressed,
        Decision::Inconclusive,
        Decision::Improved,
    ] {
        for f in g.with(d) {
            let why = if d == Decision::Inconclusive {
                inconclusive_why(f)
            } else {
                ""
            };
            let detail = format!("{}{why}", f.detail);
            t.push(vec![word(d).into(), f.cell.clone(), f.what.clone(), detail]);
        }
    }
    let missing = if g.allow_missing {
        "missing (allowed)"
    } else {
        "missing"
    };
    for m in &g.missing {
        t.push(vec![
            missing.into(),
            m.clone(),
            String::new(),
            String::new(),
        ]);
    }
    t.notes = tally(g, tolerance).lines().map(String::from).collect();
    t
}

/// Loads the current results. A file that does not exist or is empty (`/dev/null`) is a run
/// that measured nothing: zero rows, which the gate judges (every baseline cell missing).
/// An unreadable file or another schema is an error (exit 2).
pub fn load_current(path: &Path) -> anyhow::Result<LoadedFile> {
    let empty = |why: &str| LoadedFile {
        path: path.to_path_buf(),
        rows: Vec::new(),
        raw: HashMap::new(),
        raw_note: Some(format!("{}: {why}", path.display())),
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
    let baseline = load_baseline(&args.baseline)?;
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
            let first = load_current(&run(name, None)?)?;
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
                    load_current(&run(name, Some(plan.max_reps))?)
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
mod tests {
    use super::*;

    fn row(mode: &str, mean: f64) -> ResultRow {
        ResultRow {
            schema_version: 1,
            role: "dense".into(),
            model_file: "m.gguf".into(),
            model_arch: "qwen2".into(),
            model_n_params: 100,
            model_quant: "F16".into(),
            model_tensor_bytes: 200,
            mode: mode.parse().unwrap(),
            workload: "chat".into(),
            parallel: 1,
            ctx: 4096,
            threads: 2,
            decode_tps_mean: Some(mean),
            decode_tps_sd: Some(mean * 0.01),
            n_reps: 5,
            ..ResultRow::default()
        }
    }

    fn file(rows: Vec<ResultRow>) -> LoadedFile {
        LoadedFile {
            path: "f.csv".into(),
            rows,
            raw: HashMap::new(),
            raw_note: None,
        }
    }

    #[test]
    fn pooling_fresh_runs_shrinks_the_launch_variation_with_their_number() {
        let mut spec = row("spec:16", 100.0);
        spec.between_launch_cv = Some(0.06);
        let mut current = file(vec![row("baseline", 40.0), spec]);
        let more = file(Vec::new());
        pool(&mut current, &more, 1);
        let cv = current.rows[1].between_launch_cv.unwrap();
        assert!((cv - 0.06 / 2f64.sqrt()).abs() < 1e-15, "{cv}");
        pool(&mut current, &more, 2);
        let cv = current.rows[1].between_launch_cv.unwrap();
        assert!((cv - 0.06 / 3f64.sqrt()).abs() < 1e-15, "{cv}");
        assert_eq!(current.rows[0].between_launch_cv, None);
    }

    #[test]
    fn tolerance_parsing() {
        assert_eq!(parse_tolerance("5%"), Ok(0.05));
        assert_eq!(parse_tolerance("0.1"), Ok(0.1));
        assert!(parse_tolerance("150%").is_err());
        assert!(parse_tolerance("five").is_err());
    }

    #[test]
    fn halved_speedup_regresses_even_when_absolute_speed_moved() {
        let base = file(vec![row("baseline", 40.0), row("spec:16", 100.0)]);
        // The machine got 2x faster overall, but the speedup fell from 2.5 to 1.25.
        let cur = file(vec![row("baseline", 80.0), row("spec:16", 100.0)]);
        let g = gate(&base, &cur, 0.05, MetricSet::Ratio, Rule::Strict);
        assert_eq!(g.outcome(), Outcome::Regressed, "{}", summary(&g, 0.05));
        let s = summary(&g, 0.05);
        assert!(
            s.contains("REGRESSED dense") && s.contains("speedup"),
            "{s}"
        );
        // Absolute decode improved on one cell, is unchanged on the other.
        let g = gate(&base, &cur, 0.05, MetricSet::Absolute, Rule::Strict);
        assert!(!g.regressed());
        assert_eq!(g.with(Decision::Improved).count(), 1);
    }

    #[test]
    fn lossless_and_status_flips_regress() {
        let mut b = row("spec:16", 100.0);
        b.lossless = Some(true);
        let mut c = b.clone();
        c.lossless = Some(false);
        c.first_difference = Some(17);
        let mut nb = row("lookup", 90.0);
        let mut nc = nb.clone();
        nb.status = Status::Ok;
        nc.status = Status::ModeNotEffective;
        nc.reason = "no drafted tokens".into();
        let g = gate(
            &file(vec![b, nb]),
            &file(vec![c, nc]),
            0.05,
            MetricSet::Ratio,
            Rule::Strict,
        );
        let s = summary(&g, 0.05);
        assert!(
            s.contains("lossless: true -> false, first difference at token 17"),
            "{s}"
        );
        assert!(
            s.contains("status: ok -> mode-not-effective (no drafted tokens)"),
            "{s}"
        );
        assert_eq!(g.outcome(), Outcome::Regressed);
    }

    #[test]
    fn skipped_and_missing_cells_regress_unless_allowed() {
        let base = file(vec![row("baseline", 40.0), row("spec:16", 100.0)]);
        let mut skipped = row("baseline", 40.0);
        skipped.status = Status::Skipped;
        skipped.reason = "insufficient memory (needs 9.1 GiB, has 6.0 GiB)".into();
        let mut g = gate(
            &base,
            &file(vec![skipped]),
            0.05,
            MetricSet::All,
            Rule::Strict,
        );
        assert_eq!(g.outcome(), Outcome::Regressed);
        let s = summary(&g, 0.05);
        assert!(s.contains("MISSING   dense"), "{s}");
        assert!(s.contains("skipped now (insufficient memory"), "{s}");
        assert!(
            s.contains("spec:16 chat np=1: in the baseline, not in the current results"),
            "{s}"
        );
        g.allow_missing = true;
        assert_eq!(g.outcome(), Outcome::Pass, "{}", summary(&g, 0.05));
    }

    #[test]
    fn a_run_that_measured_nothing_regresses() {
        let base = file(vec![row("baseline", 40.0), row("spec:16", 100.0)]);
        let g = gate(&base, &file(vec![]), 0.25, MetricSet::Ratio, Rule::Strict);
        assert_eq!(g.outcome(), Outcome::Regressed);
        assert_eq!(g.missing.len(), 2);
        assert!(summary(&g, 0.25).contains("no result rows"));
        let allowed = Gate {
            allow_missing: true,
            ..g
        };
        assert_eq!(allowed.outcome(), Outcome::Regressed);
    }

    #[test]
    fn a_wide_interval_is_inconclusive_and_listed_with_its_numbers() {
        // Unchanged means but sd 10% at 5 repetitions: the interval of the ratio reaches
        // below 0.95, so the gate cannot say the cell did not regress.
        let mut b = row("baseline", 40.0);
        b.decode_tps_sd = Some(4.0);
        let mut c = row("baseline", 38.0);
        c.decode_tps_sd = Some(4.0);
        let g = gate(
            &file(vec![b]),
            &file(vec![c]),
            0.05,
            MetricSet::Absolute,
            Rule::Strict,
        );
        assert_eq!(g.outcome(), Outcome::Inconclusive);
        let s = summary(&g, 0.05);
        assert!(s.contains("INCONCLUSIVE dense"), "{s}");
        assert!(
            s.contains("decode: 40.0 -> 38.0 t/s (current/baseline 0.950 ["),
            "{s}"
        );
        assert!(s.contains("exit 3"), "{s}");
    }

    #[test]
    fn a_drop_beyond_the_tolerance_is_listed_even_when_not_significant() {
        let mut b = row("baseline", 40.0);
        b.decode_tps_sd = Some(8.0);
        let mut c = row("baseline", 30.0);
        c.decode_tps_sd = Some(8.0);
        let g = gate(
            &file(vec![b]),
            &file(vec![c]),
            0.05,
            MetricSet::Absolute,
            Rule::Strict,
        );
        let s = summary(&g, 0.05);
        assert!(
            s.contains("decode: 40.0 -> 30.0 t/s")
                && s.contains("a drop beyond the tolerance, not significant"),
            "{s}"
        );
        assert!(s.contains("1 drop(s) beyond the tolerance"), "{s}");
    }

    #[test]
    fn within_tolerance_with_a_tight_interval_passes() {
        let base = file(vec![row("baseline", 40.0)]);
        let cur = file(vec![row("baseline", 39.0)]);
        let g = gate(&base, &cur, 0.05, MetricSet::Absolute, Rule::Strict);
        assert_eq!(g.outcome(), Outcome::Pass, "{}", summary(&g, 0.05));
    }

    #[test]
    fn settle_keeps_decided_checks_and_replaces_open_ones() {
        let f = |what: &str, decision| Finding {
            cell: "c".into(),
            what: what.into(),
            decision,
            detail: String::new(),
            has_ci: true,
            drop_beyond_tolerance: false,
        };
        let previous = Gate {
            findings: vec![f("a", Decision::Pass), f("b", Decision::Inconclusive)],
            ..Gate::default()
        };
        let fresh = Gate {
            findings: vec![f("a", Decision::Inconclusive), f("b", Decision::Regressed)],
            ..Gate::default()
        };
        let g = settle(previous, fresh);
        assert_eq!(g.findings[0].decision, Decision::Pass);
        assert_eq!(g.findings[1].decision, Decision::Regressed);
    }

    #[test]
    fn profile_without_a_runner_says_so() {
        let args = CheckArgs {
            baseline: Path::new(env!("CARGO_MANIFEST_DIR")).join("results/baseline/smoke.csv"),
            current: None,
            profile: Some("smoke".into()),
            tolerance: 0.05,
            metrics: MetricSet::Ratio,
            allow_missing: false,
            strict: false,
            remeasure_rounds: 1,
            remeasure_reps: 10,
            no_wait: false,
            output: Default::default(),
        };
        let err = command(&args, &None).unwrap_err().to_string();
        assert!(err.contains("not available"), "{err}");
    }
}

/// The gate's power and false-alarm rate, from the gate's own functions (`gate`, `pool`,
/// `gate_with_remeasure`, the Welch log-ratio interval, `decide`) on simulated repetitions:
/// decode t/s with normal noise of a given coefficient of variation, a baseline of 6
/// repetitions (the smoke profile's cap, as in the committed baseline), a first current run
/// of 3 (the profile's minimum), and re-measurement rounds of 10 repetitions, as
/// `bench check --profile` does. The figures are in docs/readme/analysis.md.
#[cfg(test)]
pub(crate) mod power {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::results::load::RepValues;

    /// A normal deviate by Box-Muller.
    fn normal(rng: &mut SmallRng, mean: f64, sd: f64) -> f64 {
        let (u1, u2): (f64, f64) = (rng.gen_range(f64::EPSILON..1.0), rng.gen());
        mean + sd * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    fn cell_file(path: &str, values: Vec<f64>) -> LoadedFile {
        let row = ResultRow {
            schema_version: 1,
            role: "dense".into(),
            model_file: "m.gguf".into(),
            mode: crate::mode::Mode::Baseline,
            workload: "chat".into(),
            parallel: 1,
            ..ResultRow::default()
        };
        let raw = HashMap::from([(
            row.key(),
            RepValues {
                decode_tps: values,
                ..RepValues::default()
            },
        )]);
        LoadedFile {
            path: path.into(),
            rows: vec![row],
            raw,
            raw_note: None,
        }
    }

    /// One simulated scenario.
    #[derive(Debug, Clone, Copy)]
    pub struct Scenario {
        /// True relative drop of the current mean (0.3 = 30% slower).
        pub drop: f64,
        /// Coefficient of variation of one repetition.
        pub cv: f64,
        /// Gate tolerance.
        pub tolerance: f64,
        /// Re-measurement rounds (0: the plain `--current` gate).
        pub rounds: u32,
        /// How a check passes.
        pub rule: Rule,
    }

    /// Shares of trials that ended (pass, regressed, inconclusive).
    pub fn simulate(s: Scenario, trials: u32, seed: u64) -> (f64, f64, f64) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let (mut pass, mut regressed, mut open) = (0u32, 0u32, 0u32);
        let mean = 100.0 * (1.0 - s.drop);
        for _ in 0..trials {
            let mut draw = |n: usize, m: f64| -> Vec<f64> {
                (0..n).map(|_| normal(&mut rng, m, m * s.cv)).collect()
            };
            let baseline = cell_file("b.csv", draw(6, 100.0));
            let first = cell_file("c.csv", draw(3, mean));
            let more: Vec<LoadedFile> = (0..s.rounds)
                .map(|_| cell_file("c.csv", draw(10, mean)))
                .collect();
            let g = gate_with_remeasure(
                &baseline,
                first,
                s.tolerance,
                MetricSet::Absolute,
                s.rule,
                s.rounds,
                |round| Ok(more[round as usize - 1].clone()),
            )
            .unwrap();
            match g.outcome() {
                Outcome::Pass => pass += 1,
                Outcome::Regressed => regressed += 1,
                Outcome::Inconclusive => open += 1,
            }
        }
        let share = |k: u32| f64::from(k) / f64::from(trials);
        (share(pass), share(regressed), share(open))
    }

    #[test]
    fn a_30_percent_drop_at_10_percent_cv_is_caught_and_an_unchanged_cell_passes() {
        let trials = 4000;
        let at = |drop, tolerance, rounds| {
            simulate(
                Scenario {
                    drop,
                    cv: 0.10,
                    tolerance,
                    rounds,
                    rule: Rule::Strict,
                },
                trials,
                11,
            )
        };
        for (tolerance, rounds) in [(0.25, 3), (0.25, 0), (0.10, 3), (0.05, 3), (0.05, 0)] {
            let (dp, dr, di) = at(0.30, tolerance, rounds);
            let (up, ur, ui) = at(0.0, tolerance, rounds);
            eprintln!(
                "tolerance {tolerance}, {rounds} rounds: 30% drop pass {dp:.4} regressed {dr:.4} inconclusive {di:.4}; unchanged pass {up:.4} regressed {ur:.4} inconclusive {ui:.4}"
            );
        }
        // The CI gate's tolerance with re-measurement: a 30% drop never passes (flagged:
        // regressed or inconclusive, both fail CI), an unchanged cell passes.
        let (drop_pass, _, _) = at(0.30, 0.25, 3);
        let (same_pass, same_regressed, _) = at(0.0, 0.25, 3);
        assert!(drop_pass <= 0.05, "30% drop passed in {drop_pass}");
        assert!(
            1.0 - same_pass <= 0.01,
            "unchanged flagged in {}",
            1.0 - same_pass
        );
        assert!(same_regressed <= 0.01);
        // At 5%, a 30% drop is called a regression, and an unchanged cell is never called one.
        let (_, drop_regressed, _) = at(0.30, 0.05, 3);
        let (_, same_regressed, _) = at(0.0, 0.05, 3);
        assert!(
            drop_regressed >= 0.95,
            "30% drop regressed in {drop_regressed}"
        );
        assert!(
            same_regressed <= 0.01,
            "unchanged regressed in {same_regressed}"
        );
    }

    #[test]
    fn by_the_estimate_at_10_percent_a_30_percent_drop_never_passes_and_noise_does() {
        let trials = 4000;
        let at = |drop, rounds| {
            let s = Scenario {
                drop,
                cv: 0.10,
                tolerance: 0.10,
                rounds,
                rule: Rule::Estimate,
            };
            simulate(s, trials, 12)
        };
        let (dp, dr, di) = at(0.30, 0);
        let (_, drr, _) = at(0.30, 3);
        let (up, ur, ui) = at(0.0, 0);
        let (rp, rr, ri) = at(0.0, 3);
        eprintln!(
            "estimate rule, tolerance 10%, cv 10%: 30% drop pass {dp:.4} regressed {dr:.4} \
             inconclusive {di:.4} (after 3 rounds regressed {drr:.4}); unchanged pass {up:.4} \
             regressed {ur:.4} inconclusive {ui:.4}; unchanged after 3 rounds pass {rp:.4} \
             regressed {rr:.4} inconclusive {ri:.4}"
        );
        // A 30% drop: its estimate lies beyond 10% in all but a vanishing share of trials
        // (z = ln(0.9 / 0.7) / 0.071 = 3.5): flagged at once (regressed or inconclusive, both
        // fail CI), and shown to be a regression once re-measured.
        assert!(dp <= 0.005, "30% drop passed in {dp}");
        assert!(
            drr >= 0.95,
            "30% drop regressed after re-measuring in {drr}"
        );
        // Unchanged: one run of 3 against 6 repetitions passes unless its estimate falls
        // below 0.9 (z = -1.48, 7%); never regressed; re-measuring settles nearly all.
        assert!(
            up >= 0.90 && ur <= 0.005,
            "unchanged: pass {up}, regressed {ur}"
        );
        assert!(
            rp >= 0.99 && rr <= 0.005,
            "after rounds: pass {rp}, regressed {rr}"
        );
    }
}
