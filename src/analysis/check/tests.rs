//! Unit tests of the gate: decisions, missing cells, pooling, settling, the CLI entry.

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
    LoadedFile::of_rows("f.csv", rows)
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
        baseline: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("results/baseline/smoke.csv")),
        current: None,
        db: None,
        select: Default::default(),
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

#[test]
fn the_default_set_leaves_out_point_values_that_all_calls_inconclusive() {
    // Summaries only (no JSON Lines): decode has an interval from mean, sd and n; prefill
    // and TTFT are point values.
    let mut b = row("baseline", 40.0);
    b.prefill_tps_mean = Some(900.0);
    b.ttft_ms_mean = Some(120.0);
    let mut c = b.clone();
    c.ttft_ms_mean = Some(180.0);
    let (base, cur) = (file(vec![b]), file(vec![c]));
    let g = gate(&base, &cur, 0.10, MetricSet::Default, Rule::Estimate);
    let what: Vec<&str> = g.findings.iter().map(|f| f.what.as_str()).collect();
    assert_eq!(what, ["decode"]);
    assert_eq!(g.outcome(), Outcome::Pass);
    assert!(
        g.notes.iter().any(|n| n.starts_with("2 check(s) left out")),
        "{:?}",
        g.notes
    );
    let g = gate(&base, &cur, 0.10, MetricSet::All, Rule::Estimate);
    assert_eq!(g.with(Decision::Inconclusive).count(), 2);
    assert_eq!(g.outcome(), Outcome::Inconclusive);
}
