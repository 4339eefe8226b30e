//! What a measured cell's row says, against the fake: every cell measured with its
//! speedup and losslessness, the rows on disk, thread and depth sweeps, the per-request draft
//! length, a mode that did not take effect, lossy cells and near-tie flips, and the launch
//! settings each mode gets.

use super::*;

#[test]
fn every_cell_is_measured_baselines_first_with_speedup_and_losslessness() {
    let run = measure(Script::default(), &["target", "draft"]);
    // target: baseline, spec:4, spec:8, spec:16, lookup; draft: baseline; two workloads each.
    assert_eq!(run.rows.len(), 12);
    assert_eq!(run.launches, 6);
    assert_eq!(run.seen.stopped.get(), 6, "every server is stopped");
    assert_eq!(run.rows[0].mode, "baseline");
    assert!(
        run.rows.iter().all(|r| r.status == Status::Ok),
        "{:?}",
        run.statuses()
    );
    let spec = run.row("target", "spec:8", "chat");
    assert_close(spec.speedup, 2.0);
    assert_eq!(spec.lossless, Some(true));
    assert_close(spec.acceptance, 1.0);
    assert!((3..=4).contains(&spec.n_reps), "{}", spec.n_reps);
    assert_close(
        run.row("target", "baseline", "code-edit").decode_tps_mean,
        100.0,
    );
    assert_eq!(run.per_request_spec_k, Some(false));
}

#[test]
fn rows_are_on_disk_as_written_with_the_run_columns_and_startup_times() {
    let run = measure(Script::default(), &["draft"]);
    let on_disk = read_results(&run.csv).unwrap();
    assert_eq!(on_disk.len(), 2);
    for (disk, mem) in on_disk.iter().zip(&run.rows) {
        assert_eq!((&disk.mode, &disk.workload), (&mem.mode, &mem.workload));
        assert_eq!(disk.host, "fakehost");
        assert_eq!(disk.threads, 2);
        assert_eq!(disk.launch_to_ready_ms, Some(5.0));
        assert_eq!(disk.server_load_ms, Some(2.0));
    }
    // One warm-up line for the launch (the first baseline cell's reference request) and
    // one reference request for the second baseline cell, then 3 or 4 timed requests per cell.
    let raw = read_raw(&crate::results::jsonl_path_for(&run.csv)).unwrap();
    let untimed: Vec<_> = raw.iter().filter(|r| r.warmup).collect();
    assert_eq!(untimed.len(), 2);
    assert!(untimed.iter().all(|r| !r.request.top_two.is_empty()));
    assert!(raw
        .iter()
        .filter(|r| !r.warmup)
        .all(|r| r.request.top_two.is_empty()));
    let timed = raw.iter().filter(|r| !r.warmup).count() as u32;
    assert_eq!(timed, on_disk.iter().map(|r| r.n_reps).sum::<u32>());
}

fn swept(script: Script, names: &[&str], depths: Vec<u32>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let writer = ResultWriter::create(&dir.path().join("run.csv")).unwrap();
    let sweep = Sweep {
        threads: vec![1, 2],
        depths,
        server_args: crate::llamacpp::ServerArgs::parse(&["-fa on"]).unwrap(),
    };
    let mut run = run_swept(script, roles(names), writer, false, settings(true), &sweep);
    run._dir = dir;
    run
}

#[test]
fn threads_and_depths_are_cells_with_their_own_launches_and_baselines() {
    let run = swept(Script::default(), &["target"], vec![0, 100]);
    // 5 modes x 2 workloads x 2 depths x 2 thread counts; one launch per mode and count.
    assert_eq!(run.rows.len(), 40, "{:?}", run.statuses());
    assert_eq!(run.launches, 10);
    let launches = run.seen.launches.borrow();
    let threads: Vec<u32> = launches.iter().map(|l| l.threads).collect();
    assert_eq!(threads, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
    assert!(launches.iter().all(|l| l.extra == ["-fa", "on"]));
    assert!(run
        .rows
        .iter()
        .all(|r| r.status == Status::Ok && r.server_args == "-fa on"));
    for (threads, depth) in [(1, 0), (1, 100), (2, 0), (2, 100)] {
        let cell = |mode: &str| {
            run.rows
                .iter()
                .find(|r| {
                    r.mode == mode
                        && r.workload == "chat"
                        && r.threads == threads
                        && r.depth == depth
                })
                .unwrap_or_else(|| panic!("no {mode} t={threads} d={depth}"))
        };
        // The fake's accelerated servers decode twice as fast as its baseline servers.
        assert_close(cell("spec:8").speedup, 2.0);
        assert_eq!(cell("spec:8").lossless, Some(true));
        // The fake counts one prompt token per filler id.
        let chat = (crate::driver::workload::text_prompt(crate::profile::Workload::Chat).len()
            as f64
            / 4.0)
            .ceil();
        assert_close(
            cell("baseline").prompt_tokens.map(f64::from),
            depth as f64 + chat,
        );
    }
}

#[test]
fn a_depth_the_slot_cannot_hold_fails_that_cell_and_the_launch_goes_on() {
    let script = Script {
        slot_context: Some(600),
        ..Script::default()
    };
    let run = swept(script, &["draft"], vec![0, 1000]);
    assert_eq!(run.launches, 2, "no launch was abandoned");
    for r in &run.rows {
        match r.depth {
            0 => assert_eq!(r.status, Status::Ok, "{r:?}"),
            _ => {
                assert_eq!(r.status, Status::Failed, "{r:?}");
                assert!(r.reason.contains("context ran out"), "{}", r.reason);
            }
        }
    }
    assert_eq!(run.rows.len(), 8);
}

#[test]
fn a_build_that_honours_draft_lengths_per_request_shares_the_later_spec_servers() {
    let per_request = Script {
        per_request_draft: true,
        ..Script::default()
    };
    let run = measure(per_request, &["target"]);
    assert_eq!(run.per_request_spec_k, Some(true));
    // baseline, spec:4 (where the probe ran), spec:8 and spec:16 together, lookup.
    assert_eq!(run.launches, 4);
    let drafts: Vec<Option<u32>> = run
        .seen
        .launches
        .borrow()
        .iter()
        .map(|l| l.spec.as_ref().and_then(|s| s.draft_n_max))
        .collect();
    assert_eq!(drafts, [None, Some(4), Some(16), None]);
    assert_eq!(run.rows.len(), 10);
    assert!(run.rows.iter().all(|r| r.status == Status::Ok));

    let launch_option = measure(Script::default(), &["target"]);
    assert_eq!(launch_option.per_request_spec_k, Some(false));
    assert_eq!(launch_option.launches, 5);
}

#[test]
fn a_mode_that_did_not_take_effect_is_never_a_speed() {
    let run = measure(
        Script {
            no_drafts: true,
            experts_in_log: Some(8),
            ..Script::default()
        },
        &["target", "moe"],
    );
    let spec = run.row("target", "spec:4", "chat");
    assert_eq!(spec.status, Status::ModeNotEffective);
    assert!(spec.reason.contains("drafted no tokens"), "{}", spec.reason);
    assert_eq!(spec.decode_tps_mean, None);
    assert_eq!(
        run.row("target", "lookup", "code-edit").status,
        Status::ModeNotEffective
    );
    let moe = run.row("moe", "moe:2", "chat");
    assert_eq!(moe.status, Status::ModeNotEffective);
    assert_eq!(moe.reason, "the server used 8 experts per token, not 2");
    assert_eq!(run.row("moe", "baseline", "chat").status, Status::Ok);
}

#[test]
fn a_lossy_accelerated_cell_says_so_and_moe_reports_agreement_only() {
    let run = measure(
        Script {
            lossy_at: Some(5),
            ..Script::default()
        },
        &["target", "moe"],
    );
    let spec = run.row("target", "spec:16", "chat");
    assert_eq!((spec.status, spec.lossless), (Status::Ok, Some(false)));
    assert_eq!(spec.first_difference, Some(5));
    let moe = run.row("moe", "moe:2", "chat");
    assert_eq!(moe.lossless, None);
    assert_close(moe.agreement_share, 15.0 / 16.0);
}

#[test]
fn a_flip_at_a_near_tie_is_told_from_a_lossy_one() {
    let lossy = measure(
        Script {
            lossy_at: Some(5),
            ..Script::default()
        },
        &["target"],
    );
    let spec = lossy.row("target", "spec:16", "chat");
    assert_eq!(spec.difference, Some(Difference::Lossy));
    assert_eq!(spec.first_difference_margin, Some(0.5));
    // One reference request per baseline cell (chat and code-edit), never a timed one.
    assert_eq!(lossy.seen.with_probs.get(), 2);
    let tie = measure(
        Script {
            lossy_at: Some(5),
            reference_margin: 0.01,
            ..Script::default()
        },
        &["target"],
    );
    let spec = tie.row("target", "spec:16", "chat");
    assert_eq!(spec.lossless, Some(false));
    assert_eq!(spec.difference, Some(Difference::NearTie));
    assert_eq!(spec.first_difference_margin, Some(0.01));
    assert!(spec.quality().starts_with("near-tie at 5"));
    // identical output has neither
    let same = measure(Script::default(), &["target"]);
    let spec = same.row("target", "spec:16", "chat");
    assert_eq!(
        (spec.difference, spec.first_difference_margin),
        (None, None)
    );
}

#[test]
fn launches_get_their_settings_from_the_mode() {
    let run = measure(Script::default(), &["target", "moe"]);
    let launches = run.seen.launches.borrow();
    let spec = &launches[1];
    assert_eq!(spec.draft.as_deref(), Some(Path::new("draft.gguf")));
    let s = spec.spec.as_ref().unwrap();
    assert_eq!(
        (s.types.as_slice(), s.draft_n_max),
        (&["draft-simple".to_string()][..], Some(4))
    );
    let lookup = &launches[4];
    assert_eq!(lookup.draft, None);
    assert_eq!(lookup.spec.as_ref().unwrap().types, ["ngram-simple"]);
    let moe = launches
        .iter()
        .find(|l| l.moe_experts_used.is_some())
        .unwrap();
    assert_eq!(moe.moe_experts_used, Some(("qwen2".into(), 2)));
    assert!(moe.verbose);
    assert_eq!(
        run.seen.log_names.borrow()[1],
        "launch-002-target-spec_4_np_1_t_2.log"
    );
}

#[test]
fn the_moe_proof_reads_the_last_reported_expert_count() {
    let log =
        "print_info: n_expert_used    = 8\nvalidate_override: ...\nprint_info: n_expert_used = 2\n";
    assert_eq!(moe_effective(log, 2), Ok(()));
    assert_eq!(
        moe_effective(log, 4),
        Err("the server used 2 experts per token, not 4".into())
    );
    assert!(moe_effective("", 2).unwrap_err().contains("never reported"));
}

#[test]
fn a_run_with_a_database_puts_every_row_and_raw_line_of_its_csv_there() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, db) = (dir.path().join("run.csv"), dir.path().join("run.db"));
    let writer = ResultWriter::create(&csv)
        .unwrap()
        .with_db(&db, "run")
        .unwrap();
    let _run = resume(Script::default(), &["target"], writer, false);
    let stored = crate::results::db::read(&db, &Default::default()).unwrap();
    assert_eq!(stored.len(), 1);
    let on_disk = read_results(&csv).unwrap();
    assert_eq!(on_disk.len(), 10, "target: 5 modes x 2 workloads");
    assert_eq!(stored[0].rows, on_disk);
    let raw = read_raw(&crate::results::jsonl_path_for(&csv)).unwrap();
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let lines = |reps: &[crate::results::RawRepetition]| {
        sorted(
            reps.iter()
                .map(|r| serde_json::to_string(r).unwrap())
                .collect(),
        )
    };
    assert_eq!(
        lines(&stored[0].raw),
        lines(&raw),
        "every raw line, with its cell"
    );
}

/// The draft role run with the foreign-load rule `rule`.
fn with_noise(rule: crate::driver::quiet::QuietRule) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let writer = ResultWriter::create(&dir.path().join("run.csv")).unwrap();
    let mut s = settings(true);
    s.noise = Some(rule);
    // 30 ms a batch: the counters of /proc/stat move in 10 ms ticks.
    let script = Script {
        batch_time: Some(Duration::from_millis(30)),
        ..Script::default()
    };
    let mut run = run_swept(script, roles(&["draft"]), writer, false, s, &one_point());
    run._dir = dir;
    run
}

#[test]
fn every_cell_carries_its_foreign_load_and_is_judged_by_the_runs_threshold() {
    use crate::driver::quiet::{QuietRule, WhenNoisy};
    // Whatever the machine does meanwhile: no cell is above an infinite threshold, every
    // cell is above a negative one.
    let never = |when| QuietRule {
        when,
        threshold_pct: f64::INFINITY,
    };
    let always = |when| QuietRule {
        when,
        threshold_pct: -1.0,
    };
    let quiet = with_noise(never(WhenNoisy::Refuse));
    for r in &quiet.rows {
        assert_eq!(r.status, Status::Ok, "{}", r.reason);
        assert!(r.foreign_cpu_pct.is_some_and(|f| f >= 0.0), "{r:?}");
        assert!(r.steal_pct.is_some_and(|s| (0.0..=100.0).contains(&s)));
        assert!(!r.is_noisy());
    }
    let warned = with_noise(always(WhenNoisy::Warn));
    for r in &warned.rows {
        assert_eq!(r.status, Status::Ok);
        assert!(
            r.reason.starts_with("noisy: other processes took "),
            "{}",
            r.reason
        );
    }
    let refused = with_noise(always(WhenNoisy::Refuse));
    for r in &refused.rows {
        assert_eq!(r.status, Status::Failed);
        assert!(
            r.reason.contains("refused (--when-noisy refuse)"),
            "{}",
            r.reason
        );
    }
    // A run that does not sample (the settings of the other tests, and --server-url)
    // leaves the columns empty.
    let unsampled = measure(Script::default(), &["draft"]);
    assert!(unsampled.rows.iter().all(|r| r.foreign_cpu_pct.is_none()));
}
