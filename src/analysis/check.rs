//! `bench check`: the regression gate for CI. Every metric of every cell present in both the
//! baseline and the current results gets the ratio current / baseline (oriented so that below
//! 1 is worse) with its 95% CI; it regresses when the whole CI lies below `1 - tolerance`,
//! improves when it lies above `1 + tolerance`. Ratio metrics measured within one run
//! (speedup, acceptance, lossless, whether the mode took effect) stay meaningful on shared CI
//! machines whose absolute speed varies. Exit code 0: nothing regressed, 1: something did,
//! 2: bad input (an error).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use super::compare::{notes, warnings, JoinKey};
use super::load::{self, LoadedFile};
use super::metrics::{estimate, Metric};
use super::render::{num, ratio_text};
use super::stats::{verdict, RatioCi, Verdict};
use super::CheckArgs;
use crate::results::{ResultRow, Status};

/// Improvements listed one per line before they are only counted (regressions are all listed).
pub const MAX_IMPROVED_LINES: usize = 5;

/// Which metrics the gate looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MetricSet {
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
            MetricSet::Ratio => ratio.to_vec(),
            MetricSet::Absolute => absolute.to_vec(),
            MetricSet::All => absolute.iter().chain(&ratio).copied().collect(),
        }
    }

    fn includes_status(self) -> bool {
        self != MetricSet::Absolute
    }
}

// ---------------------------------------------------------------------------------------------
// SEAM for `check --profile NAME`: `ProfileRunner` runs a profile like `bench run --profile NAME`
// (default options) and returns the path of the results CSV it wrote. `default_runner` wires
// it to `crate::driver::run_profile`; tests pass their own runner to `command`. A run with
// failed cells is not an error: the gate judges those cells.
// ---------------------------------------------------------------------------------------------

/// Runs a profile by name and returns the path of the results CSV it wrote.
pub type ProfileRunner = fn(&str) -> anyhow::Result<PathBuf>;

/// The runner `bench check --profile` uses: the driver's `run_profile`.
pub fn default_runner() -> Option<ProfileRunner> {
    Some(run_profile_with_defaults)
}

/// `bench run --profile NAME` with every other option at its default.
fn run_profile_with_defaults(name: &str) -> anyhow::Result<PathBuf> {
    let outcome = crate::driver::run_profile(&crate::driver::RunArgs::for_profile(name))?;
    anyhow::ensure!(
        !outcome.interrupted,
        "the run of profile {name} was interrupted"
    );
    eprintln!("check: ran profile {name}: {}", outcome.csv.display());
    Ok(outcome.csv)
}

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
    /// Regressed, improved or not significant.
    pub verdict: Verdict,
    /// Baseline -> current values and the ratio, as text.
    pub detail: String,
    /// False when the ratio had no interval (point values only).
    pub has_ci: bool,
}

/// Everything the gate found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Gate {
    /// Every finding, in cell order.
    pub findings: Vec<Finding>,
    /// Baseline cells with no counterpart in the current results, or skipped now (not a
    /// regression: a skip says why, e.g. insufficient memory on this machine).
    pub missing: Vec<String>,
    /// Unfairness warnings (threads, engine, ...).
    pub warnings: Vec<String>,
    /// Notes (raw repetitions missing).
    pub notes: Vec<String>,
}

impl Gate {
    /// Findings with this verdict.
    pub fn with(&self, v: Verdict) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.verdict == v)
    }

    /// True when something regressed.
    pub fn regressed(&self) -> bool {
        self.with(Verdict::Worse).next().is_some()
    }
}

fn cell_text(r: &ResultRow) -> String {
    let key = JoinKey::of(r);
    format!(
        "{} [{}] {} {} np={}",
        r.role,
        key.model(),
        r.mode,
        r.workload,
        r.parallel
    )
}

/// Status and lossless: facts that flip, no interval needed.
fn status_findings(b: &ResultRow, c: &ResultRow) -> Vec<Finding> {
    let mut out = Vec::new();
    let finding = |what: &str, detail: String| Finding {
        cell: cell_text(c),
        what: what.into(),
        verdict: Verdict::Worse,
        detail,
        has_ci: true,
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
    if b.lossless == Some(true) && c.lossless == Some(false) {
        let at = c.first_difference.map_or(String::new(), |p| {
            format!(", first difference at token {p}")
        });
        out.push(finding("lossless", format!("true -> false{at}")));
    }
    out
}

fn metric_finding(
    files: (&LoadedFile, &LoadedFile),
    rows: (&ResultRow, &ResultRow),
    metric: Metric,
    tolerance: f64,
) -> Option<Finding> {
    let b = estimate(files.0, rows.0, metric)?;
    let c = estimate(files.1, rows.1, metric)?;
    let raw: RatioCi = c.log.div(&b.log).ci95();
    let oriented = if metric.higher_is_better() {
        raw
    } else {
        raw.recip()
    };
    Some(Finding {
        cell: cell_text(rows.1),
        what: metric.name().into(),
        verdict: verdict(&oriented, tolerance),
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
    })
}

/// Runs the gate over two loaded files.
pub fn gate(baseline: &LoadedFile, current: &LoadedFile, tolerance: f64, set: MetricSet) -> Gate {
    let mut g = Gate {
        warnings: warnings(&[baseline.clone(), current.clone()]),
        notes: notes(&[baseline.clone(), current.clone()]),
        ..Gate::default()
    };
    for b in &baseline.rows {
        let key = JoinKey::of(b);
        let Some(c) = current.rows.iter().find(|c| JoinKey::of(c) == key) else {
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
            g.findings
                .extend(metric_finding((baseline, current), (b, c), m, tolerance));
        }
    }
    g
}

/// The CI-log summary: every regression with its numbers, improvements, then counts.
pub fn summary(g: &Gate, tolerance: f64) -> String {
    let mut out = String::new();
    for w in &g.warnings {
        out += &format!("WARNING: {w}\n");
    }
    for n in &g.notes {
        out += &format!("note: {n}\n");
    }
    for f in g.with(Verdict::Worse) {
        out += &format!("REGRESSED {}: {}: {}\n", f.cell, f.what, f.detail);
    }
    let improved: Vec<&Finding> = g.with(Verdict::Better).collect();
    for f in improved.iter().take(MAX_IMPROVED_LINES) {
        out += &format!("improved  {}: {}: {}\n", f.cell, f.what, f.detail);
    }
    if improved.len() > MAX_IMPROVED_LINES {
        out += &format!(
            "improved  ... and {} more\n",
            improved.len() - MAX_IMPROVED_LINES
        );
    }
    for m in &g.missing {
        out += &format!("missing   {m}\n");
    }
    let count = |v| g.with(v).count();
    let no_ci = g.findings.iter().filter(|f| !f.has_ci).count();
    out += &format!(
        "check: {} checks, {} regressed, {} improved, {} not significant ({} of them without an interval), {} missing; tolerance {:.1}%\n",
        g.findings.len(),
        count(Verdict::Worse),
        count(Verdict::Better),
        count(Verdict::NotSignificant),
        no_ci,
        g.missing.len(),
        tolerance * 100.0
    );
    out
}

fn current_path(args: &CheckArgs, runner: &Option<ProfileRunner>) -> anyhow::Result<PathBuf> {
    match (&args.current, &args.profile) {
        (Some(p), _) => Ok(p.clone()),
        (None, Some(name)) => match runner {
            Some(run) => run(name),
            None => anyhow::bail!(
                "bench check --profile {name}: not available in this build (the driver is not wired in); run `bench run --profile {name}` and pass its CSV with --current"
            ),
        },
        (None, None) => anyhow::bail!("bench check needs --current FILE or --profile NAME"),
    }
}

/// Runs `bench check` with the given profile runner.
pub fn command(args: &CheckArgs, runner: &Option<ProfileRunner>) -> anyhow::Result<ExitCode> {
    let baseline = load::load(&args.baseline)?;
    let current = load::load(&current_path(args, runner)?)?;
    let g = gate(&baseline, &current, args.tolerance, args.metrics);
    print!("{}", summary(&g, args.tolerance));
    Ok(if g.regressed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Path helper for tests and callers: the gate on two paths.
pub fn gate_paths(
    baseline: &Path,
    current: &Path,
    tolerance: f64,
    set: MetricSet,
) -> anyhow::Result<Gate> {
    Ok(gate(
        &load::load(baseline)?,
        &load::load(current)?,
        tolerance,
        set,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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
        let g = gate(&base, &cur, 0.05, MetricSet::Ratio);
        assert!(g.regressed(), "{}", summary(&g, 0.05));
        let s = summary(&g, 0.05);
        assert!(
            s.contains("REGRESSED dense") && s.contains("speedup"),
            "{s}"
        );
        // Absolute decode improved on both cells.
        let g = gate(&base, &cur, 0.05, MetricSet::Absolute);
        assert!(!g.regressed());
        assert_eq!(g.with(Verdict::Better).count(), 1);
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
    }

    #[test]
    fn skipped_and_missing_cells_are_listed_not_regressed() {
        let base = file(vec![row("baseline", 40.0), row("spec:16", 100.0)]);
        let mut skipped = row("baseline", 40.0);
        skipped.status = Status::Skipped;
        skipped.reason = "insufficient memory (needs 9.1 GiB, has 6.0 GiB)".into();
        let g = gate(&base, &file(vec![skipped]), 0.05, MetricSet::All);
        assert!(!g.regressed());
        let s = summary(&g, 0.05);
        assert!(s.contains("skipped now (insufficient memory"), "{s}");
        assert!(
            s.contains("spec:16 chat np=1: in the baseline, not in the current results"),
            "{s}"
        );
    }

    #[test]
    fn within_tolerance_is_not_significant() {
        let base = file(vec![row("baseline", 40.0)]);
        let cur = file(vec![row("baseline", 39.0)]);
        let g = gate(&base, &cur, 0.05, MetricSet::All);
        assert!(!g.regressed());
        assert!(summary(&g, 0.05).contains("1 not significant"));
    }

    #[test]
    fn profile_uses_the_runner() {
        let args = CheckArgs {
            baseline: "b.csv".into(),
            current: None,
            profile: Some("smoke".into()),
            tolerance: 0.05,
            metrics: MetricSet::Ratio,
        };
        let err = current_path(&args, &None).unwrap_err().to_string();
        assert!(err.contains("not available"), "{err}");
        let ran: ProfileRunner = |name| Ok(PathBuf::from(format!("results/{name}.csv")));
        assert_eq!(
            current_path(&args, &Some(ran)).unwrap(),
            PathBuf::from("results/smoke.csv")
        );
    }
}
