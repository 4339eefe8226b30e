//! `bench ab` against the fake: its pairing policy gives every B launch an A server beside
//! it, and writes a file per side; an A server dying mid-pair.

use super::*;

/// What a `bench ab` run against the fake left behind.
struct AbRun {
    b_rows: Vec<ResultRow>,
    a_rows: Vec<ResultRow>,
    ratios: Vec<crate::driver::ab::AbRatio>,
    seen: Rc<Seen>,
    dir: tempfile::TempDir,
}

/// `bench ab` on the target role: B with `--poll 0`, A without arguments.
fn run_ab(script: Script) -> AbRun {
    let dir = tempfile::tempdir().unwrap();
    let mut b_writer = ResultWriter::create(&dir.path().join("ab-b.csv")).unwrap();
    let mut a_writer = ResultWriter::create(&dir.path().join("ab-a.csv")).unwrap();
    let mut b_settings = settings(true);
    b_settings.server_args = crate::llamacpp::ServerArgs::parse(&["--poll 0"]).unwrap();
    let a_settings = settings(true);
    let roles = roles(&["target"]);
    let cell_sets = cell_sets(&roles, &one_point());
    let launches = plan_launches(&cell_sets, false);
    let progress = Progress::new(plan::cell_count(&launches), true);
    let (backend, seen) = FakeBackend::new(script);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The A side is the pairing policy the loop is handed.
    let mut a_side = AbSide::new(&a_settings, &mut a_writer);
    let mut exec = Executor::new(
        backend,
        &b_settings,
        &roles,
        &mut b_writer,
        &progress,
        Interrupt::default(),
        &mut a_side,
    );
    runtime
        .block_on(exec.run_all(launches, &cell_sets, &HashSet::new()))
        .unwrap();
    let b_rows = exec.take_rows();
    let (a_rows, ratios) = a_side.into_results();
    AbRun {
        b_rows,
        a_rows,
        ratios,
        seen,
        dir,
    }
}

#[test]
fn bench_ab_interleaves_both_engines_on_every_launch_and_writes_a_file_per_side() {
    // Side A's servers decode at 0.8 of B's: B / A = 1.25 in every cell.
    let run = run_ab(Script {
        partner_speed: 0.8,
        ..Script::default()
    });
    let (seen, b_rows, a_rows, ratios) = (&run.seen, &run.b_rows, &run.a_rows, &run.ratios);
    // Five launches of B, each with an A server beside it, every one stopped.
    assert_eq!(seen.launches.borrow().len(), 10);
    assert_eq!(seen.stopped.get(), 10);
    let extras: Vec<Vec<String>> = seen
        .launches
        .borrow()
        .iter()
        .map(|l| l.extra.clone())
        .collect();
    assert_eq!(
        extras[0],
        Vec::<String>::new(),
        "A first, with A's arguments"
    );
    assert_eq!(extras[1], ["--poll", "0"], "then B with B's");
    assert_eq!((b_rows.len(), a_rows.len(), ratios.len()), (10, 10, 10));
    for r in ratios {
        assert!((r.ci.ratio - 1.25).abs() < 0.01, "{r:?}");
        assert!(r.ci.low <= 1.25 && 1.25 <= r.ci.high, "{r:?}");
        assert_eq!(r.pairs, 3);
    }
    for (b, a) in b_rows.iter().zip(a_rows) {
        assert_eq!((&b.mode, &b.workload), (&a.mode, &a.workload));
        assert_eq!(
            (b.server_args.as_str(), a.server_args.as_str()),
            ("--poll 0", "")
        );
        if b.mode.is_baseline() {
            assert_close(b.decode_tps_mean, 100.0);
            assert_close(a.decode_tps_mean, 80.0);
        } else {
            // Each side's speedup over its own baseline.
            assert_close(b.speedup, 2.0);
            assert_close(a.speedup, 2.0);
        }
    }
    // A's requests are A's own lines in A's file; B's file holds no partner lines.
    let b_raw = read_raw(&run.dir.path().join("ab-b.jsonl")).unwrap();
    assert!(b_raw.iter().all(|r| !r.partner));
    let a_raw = read_raw(&run.dir.path().join("ab-a.jsonl")).unwrap();
    assert_eq!(a_raw.iter().filter(|r| !r.warmup).count(), 30);
    let a_on_disk = read_results(&run.dir.path().join("ab-a.csv")).unwrap();
    assert_eq!(a_on_disk.len(), 10);
}

#[test]
fn bench_ab_with_an_a_server_dying_mid_pair_keeps_b_and_says_so_on_both_sides() {
    // Launch 0 is A's server beside B's baseline launch: warm-up 0, pair 0's A half 1, pair
    // 1 goes B first, then A dies at its batch 2.
    let run = run_ab(Script {
        fail_server: Some((0, 2, "server exited (signal 9)".into())),
        ..Script::default()
    });
    let (b, a) = (&run.b_rows[0], &run.a_rows[0]);
    assert_eq!((b.status, a.status), (Status::Ok, Status::Failed));
    assert_eq!(
        b.reason,
        "the A server beside it failed after 1 pairs: server exited (signal 9)"
    );
    assert_eq!(a.reason, "the A server failed: server exited (signal 9)");
    assert_eq!(run.a_rows[1].status, Status::Skipped, "no A server left");
    assert!(
        run.ratios.iter().all(|r| r.key != run.b_rows[0].key()),
        "no ratio without the pairs"
    );
    assert_eq!(
        run.ratios.len(),
        8,
        "the later launches get a new A server each"
    );
    assert_eq!(run.seen.stopped.get(), 10);
}
