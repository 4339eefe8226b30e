//! How the gate reads: the CI-log summary (every regression, inconclusive check and missing
//! cell with its numbers, then the counts and the outcome) and the verdict table of
//! `--format markdown|csv|json`. Reporting only: it decides nothing.

use super::{Finding, Gate, Outcome, MAX_IMPROVED_LINES};
use crate::analysis::render::Table;
use crate::analysis::stats::{Decision, Rule};

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
