//! A baseline launched several times in a row, and resume, against the fake: the
//! launch-to-launch variation in every speedup interval, Ctrl-C or a crash between launches,
//! and an interrupted run finished later against the baselines it had measured.

use super::*;

#[test]
fn resume_skips_finished_cells_and_compares_with_the_earlier_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("run.csv");
    // Interrupted during spec:4 (batches: baseline launch 0-8 at most; spec:4 starts later).
    let interrupt = Interrupt::default();
    let first = resume(
        Script {
            interrupt_at_batch: Some((12, interrupt.clone())),
            ..Script::default()
        },
        &["target"],
        ResultWriter::create(&csv).unwrap(),
        false,
    );
    assert!(first.interrupted);
    let baselines_done = first
        .rows
        .iter()
        .filter(|r| r.mode == "baseline" && r.status == Status::Ok)
        .count();
    assert_eq!(baselines_done, 2, "{:?}", first.statuses());
    let second = resume(
        Script::default(),
        &["target"],
        ResultWriter::append_to(&csv).unwrap(),
        true,
    );
    assert!(second.rows.iter().all(|r| r.mode != "baseline"));
    assert_eq!(second.rows.len(), 8, "{:?}", second.statuses());
    let spec = second.row("target", "spec:4", "chat");
    assert_eq!(spec.status, Status::Ok);
    assert_close(spec.speedup, 2.0);
    assert_eq!(spec.lossless, Some(true));
    let all = read_results(&csv).unwrap();
    let ok = all.iter().filter(|r| r.status == Status::Ok).count();
    assert_eq!(ok, 10, "each cell once ok in the file");
}

/// As [`measure`] (paired), every baseline launched `launches` times, into `writer`.
fn measure_launches(script: Script, names: &[&str], launches: u32, writer: ResultWriter) -> Run {
    let mut s = settings(true);
    s.baseline_launches = launches;
    run_swept(script, roles(names), writer, false, s, &one_point())
}

/// The launch-to-launch CV of the fake's baseline launched at 100 and then 110 t/s, three
/// repetitions each at 1, 1.002 and 1.004 times the rate: computed independently with
/// Python's statistics module from the formula in `measure::launches`.
const CV_100_110: f64 = 0.06738462117730576;

#[test]
fn a_baseline_is_launched_twice_and_its_launch_variation_widens_every_speedup_interval() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("run.csv");
    let script = Script {
        launch_speed: vec![1.0, 1.1],
        ..Script::default()
    };
    let run = measure_launches(script, &["target"], 2, ResultWriter::create(&csv).unwrap());
    // Two baseline launches (the second stays up as the partner), then spec:4, spec:8,
    // spec:16 and lookup.
    assert_eq!(run.launches, 6);
    assert_eq!(run.seen.stopped.get(), 6);
    let base = run.row("target", "baseline", "chat");
    assert_eq!(
        (base.status, base.launches, base.n_reps),
        (Status::Ok, 2, 6)
    );
    let cv = base.between_launch_cv.unwrap();
    assert!((cv - CV_100_110).abs() < 1e-9, "{cv}");
    assert_close(base.decode_tps_mean, 105.0);
    // The speedup: against the partner (the second launch, 110 t/s), 200 / 110; its interval
    // adds 2 cv^2 (one launch on each side) to a paired variance that is nearly 0 here.
    let spec = run.row("target", "spec:8", "chat");
    assert_eq!(spec.launches, 1);
    assert_eq!(spec.between_launch_cv, base.between_launch_cv);
    assert_close(spec.speedup, 200.0 / 110.0);
    let half = (spec.speedup_ci95_high.unwrap() / spec.speedup_ci95_low.unwrap()).ln() / 2.0;
    let want = 1.959963984540054 * (2.0f64).sqrt() * CV_100_110;
    assert!((half / want - 1.0).abs() < 0.01, "{half} vs {want}");
    // The raw lines say which launch each request went to and number the repetitions on.
    let raw = read_raw(&crate::results::jsonl_path_for(&csv)).unwrap();
    let timed: Vec<_> = raw
        .iter()
        .filter(|r| !r.warmup && r.key.mode.is_baseline() && r.key.workload == "chat")
        .map(|r| (r.launch, r.rep))
        .collect();
    assert_eq!(timed, [(0, 0), (0, 1), (0, 2), (1, 3), (1, 4), (1, 5)]);
    // One launch: no launch variation, and an interval that is nearly a point.
    let one = measure_launches(
        Script::default(),
        &["target"],
        1,
        ResultWriter::create(&dir.path().join("one.csv")).unwrap(),
    );
    let (base, spec) = (
        one.row("target", "baseline", "chat"),
        one.row("target", "spec:8", "chat"),
    );
    assert_eq!((base.launches, base.between_launch_cv), (1, None));
    assert!(spec.speedup_ci95_high.unwrap() / spec.speedup_ci95_low.unwrap() < 1.02);
}

#[test]
fn ctrl_c_before_the_second_launch_keeps_what_the_first_measured() {
    let interrupt = Interrupt::default();
    // Batches of the first baseline launch: warm-up 0, chat 1-3, code-edit's reference 4 and
    // 5-7; batch 8 is the second launch's warm-up.
    let script = Script {
        interrupt_at_batch: Some((8, interrupt.clone())),
        ..Script::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("run.csv");
    let run = measure_launches(script, &["target"], 2, ResultWriter::create(&csv).unwrap());
    assert!(run.interrupted);
    assert_eq!(run.launches, 2);
    assert_eq!(run.seen.stopped.get(), 2, "both servers stopped");
    assert_eq!(run.rows.len(), 2);
    for row in &run.rows {
        assert_eq!((row.status, row.launches, row.n_reps), (Status::Ok, 1, 3));
        assert_eq!(row.between_launch_cv, None);
        assert!(
            row.reason
                .contains("launch 2 of this cell: interrupted (interrupted (Ctrl-C))"),
            "{}",
            row.reason
        );
    }
    assert_eq!(read_results(&csv).unwrap().len(), 2, "on disk");
}

#[test]
fn a_resumed_run_compares_with_the_launch_variation_of_the_earlier_baselines() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("run.csv");
    let interrupt = Interrupt::default();
    // Interrupted in spec:4, after both baseline launches (batches 0-15).
    let script = Script {
        launch_speed: vec![1.0, 1.1],
        interrupt_at_batch: Some((20, interrupt.clone())),
        ..Script::default()
    };
    let first = measure_launches(script, &["target"], 2, ResultWriter::create(&csv).unwrap());
    assert!(first.interrupted);
    let base = first.row("target", "baseline", "chat");
    assert!((base.between_launch_cv.unwrap() - CV_100_110).abs() < 1e-9);
    let mut s = settings(false);
    s.baseline_launches = 2;
    let second = run_swept(
        Script::default(),
        roles(&["target"]),
        ResultWriter::append_to(&csv).unwrap(),
        true,
        s,
        &one_point(),
    );
    let spec = second.row("target", "spec:8", "chat");
    assert!((spec.between_launch_cv.unwrap() - CV_100_110).abs() < 1e-9);
    assert_close(spec.speedup, 200.0 / 105.0);
}

#[test]
fn a_crash_in_either_launch_of_a_baseline_fails_it_and_the_run_goes_on() {
    for launch in [0, 1] {
        // The server of that launch dies at its batch 2 (warm-up 0, chat's first timed 1).
        let script = Script {
            fail_server: Some((launch, 2, "server exited (signal 9)".into())),
            ..Script::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let writer = ResultWriter::create(&dir.path().join("run.csv")).unwrap();
        let run = measure_launches(script, &["target"], 2, writer);
        let base = run.row("target", "baseline", "chat");
        assert_eq!(base.status, Status::Failed, "launch {launch}: {base:?}");
        let which = format!("launch {}: server exited (signal 9)", launch + 1);
        assert!(base.reason.starts_with(&which), "{}", base.reason);
        // As with one launch: no speedup against a failed baseline, the cell still measured.
        let spec = run.row("target", "spec:8", "chat");
        assert_eq!((spec.status, spec.speedup), (Status::Ok, None), "{spec:?}");
        assert_eq!(run.seen.stopped.get(), run.launches, "every server stopped");
    }
}
