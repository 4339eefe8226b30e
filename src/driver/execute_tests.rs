//! The run loop against the in-process fake (`driver/fake.rs`): every branch of `execute`
//! without llama-server. Expected figures come from the fake's script (an accelerated fake
//! server decodes twice as fast as a baseline one, and agrees token for token unless told
//! otherwise), not from the code under test.

use super::*;
use crate::driver::ab::AbSide;
use crate::driver::fake::{FakeBackend, Script, Seen};
use crate::driver::plan::plan_launches;
use crate::driver::resolve::ResolvedModel;
use crate::driver::Sweep;
use crate::gguf::ModelFacts;
use crate::guide::Expectations;
use crate::measure::Adaptive;
use crate::profile::{self, ProfileSource};
use crate::results::{read_raw, read_results, Difference, SCHEMA_VERSION};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

const PROFILE: &str = r#"
name = "fake"

[run]
n_predict = 16
workloads = ["chat", "code-edit"]
min_repetitions = 3
max_repetitions = 4
ci_target_pct = 2.0
cell_time_budget_s = 30

[[roles]]
name = "target"
kind = "workers"
model = "target.gguf"
quant = "F16"
tier = "HOT"
draft = "draft"
modes = ["spec:4", "spec:8", "spec:16", "lookup"]
ctx = 512

[[roles]]
name = "draft"
kind = "draft"
model = "draft.gguf"
quant = "F16"
tier = "HOT"
ctx = 512

[[roles]]
name = "moe"
kind = "ingest"
model = "moe.gguf"
quant = "F16"
tier = "WARM"
params_b = 1.0
active_params_b = 0.5
modes = ["moe:2"]
ctx = 512
"#;

fn model(file: &str, experts: Option<u32>) -> ResolvedModel {
    ResolvedModel {
        path: PathBuf::from(file),
        facts: ModelFacts {
            architecture: Some("qwen2".into()),
            n_params: 10_000_000,
            file_bytes: 20_000_000,
            tensor_bytes: 20_000_000,
            kv_elements_per_token: 4096,
            expert_count: experts,
            expert_used_count: experts.map(|_| 4),
            ..ModelFacts::default()
        },
        synthetic: false,
        stand_in: false,
        behavior: None,
    }
}

/// The profile's roles named in `names`, with fake model facts.
fn roles(names: &[&str]) -> Vec<ResolvedRole> {
    let profile = profile::parse(PROFILE, ProfileSource::Embedded("fake".into())).unwrap();
    names
        .iter()
        .map(|name| {
            let role = profile.role(name).unwrap().clone();
            let draft = (*name == "target").then(|| model("draft.gguf", None));
            let experts = (*name == "moe").then_some(8);
            ResolvedRole {
                model: model(&format!("{name}.gguf"), experts),
                role,
                draft,
                skip: None,
                skip_spec: None,
            }
        })
        .collect()
}

fn settings(pair: bool) -> RunSettings {
    RunSettings {
        server_args: crate::llamacpp::ServerArgs::none(),
        n_predict: 16,
        adaptive: Adaptive {
            min_reps: 3,
            max_reps: 4,
            target_pct: 2.0,
            budget: Duration::from_secs(30),
        },
        pair,
        baseline_launches: 1,
        expectations: Expectations::guide(),
        stamp: ResultRow {
            schema_version: SCHEMA_VERSION,
            host: "fakehost".into(),
            ..ResultRow::default()
        },
    }
}

/// What a run against the fake left behind.
struct Run {
    rows: Vec<ResultRow>,
    launches: usize,
    per_request_spec_k: Option<bool>,
    interrupted: bool,
    seen: Rc<Seen>,
    csv: PathBuf,
    _dir: tempfile::TempDir,
}

impl Run {
    fn row(&self, role: &str, mode: &str, workload: &str) -> &ResultRow {
        self.rows
            .iter()
            .find(|r| r.role == role && r.mode == mode && r.workload == workload)
            .unwrap_or_else(|| panic!("no row {role} {mode} {workload}: {:?}", self.rows))
    }

    fn statuses(&self) -> Vec<(String, String, Status)> {
        let row = |r: &ResultRow| (r.mode.to_string(), r.workload.clone(), r.status);
        self.rows.iter().map(row).collect()
    }
}

fn measure(script: Script, names: &[&str]) -> Run {
    measure_with(script, names, true)
}

/// As [`measure`], paired (`pair`) or with separate launches only (`--unpaired`).
fn measure_with(script: Script, names: &[&str], pair: bool) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("run.csv");
    let writer = ResultWriter::create(&csv).unwrap();
    let mut run = resume_roles(script, roles(names), writer, false, pair);
    run._dir = dir;
    run
}

/// Runs the profile's roles `names` against the fake, writing to `writer`; with `resume`,
/// the cells the file already holds are skipped and its baselines recovered.
fn resume(script: Script, names: &[&str], writer: ResultWriter, resume: bool) -> Run {
    resume_roles(script, roles(names), writer, resume, true)
}

/// No sweep: two threads, depth 0, no server arguments.
fn one_point() -> Sweep {
    Sweep {
        threads: vec![2],
        depths: vec![0],
        server_args: crate::llamacpp::ServerArgs::none(),
    }
}

fn resume_roles(
    script: Script,
    roles: Vec<ResolvedRole>,
    writer: ResultWriter,
    resume: bool,
    pair: bool,
) -> Run {
    run_swept(script, roles, writer, resume, settings(pair), &one_point())
}

/// Runs `roles` against the fake with the thread counts, depths and server arguments of
/// `sweep`.
fn run_swept(
    script: Script,
    roles: Vec<ResolvedRole>,
    mut writer: ResultWriter,
    resume: bool,
    mut settings: RunSettings,
    sweep: &Sweep,
) -> Run {
    settings.server_args = sweep.server_args.clone();
    let profile = profile::parse(PROFILE, ProfileSource::Embedded("fake".into())).unwrap();
    let cell_sets: Vec<RoleCells> = roles
        .iter()
        .map(|r| crate::driver::role_cells(&profile, sweep, r, None))
        .collect();
    let launches = plan_launches(&cell_sets, false);
    let progress = Progress::new(plan::cell_count(&launches), true);
    let done = writer.finished().clone();
    let earlier = match resume {
        true => read_raw(writer.jsonl_path()).unwrap(),
        false => Vec::new(),
    };
    let csv = writer.csv_path().to_path_buf();
    let interrupt = script
        .interrupt_at_batch
        .as_ref()
        .map_or_else(Interrupt::default, |(_, i)| i.clone());
    let (backend, seen) = FakeBackend::new(script);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut exec = Executor::new(
        backend,
        &settings,
        &roles,
        &mut writer,
        &progress,
        interrupt,
    );
    exec.recover_baselines(&earlier);
    runtime
        .block_on(exec.run_all(launches, &cell_sets, &done))
        .unwrap();
    Run {
        rows: std::mem::take(&mut exec.rows),
        launches: exec.launches,
        per_request_spec_k: exec.per_request_spec_k,
        interrupted: exec.interrupted(),
        seen,
        csv,
        _dir: tempfile::tempdir().unwrap(),
    }
}

fn assert_close(got: Option<f64>, want: f64) {
    let got = got.unwrap_or_else(|| panic!("no value, want {want}"));
    assert!((got - want).abs() < 0.02 * want, "{got} vs {want}");
}

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
fn a_failed_launch_fails_its_cells_and_the_run_goes_on() {
    for reason in [
        "launch failed: server exited with code 1 during start-up",
        "launch failed: server not healthy after 30 s",
    ] {
        let script = Script {
            launch_error: Some(reason.into()),
            ..Script::default()
        };
        // Each of the four accelerated launches first tries to start its baseline partner.
        let run = measure(script.clone(), &["target", "draft"]);
        assert_eq!(run.launches, 10, "every launch is tried");
        assert_eq!(run.rows.len(), 12);
        assert_eq!(
            measure_with(script, &["target", "draft"], false).launches,
            6
        );
        assert!(run
            .rows
            .iter()
            .all(|r| r.status == Status::Failed && r.reason == reason));
    }
}

#[test]
fn a_server_that_dies_or_stalls_mid_cell_fails_it_and_skips_the_rest_of_its_launch() {
    for reason in [
        "server exited (signal 9)\n--- tail of launch.log ---\nkilled",
        "request failed: stream stalled: no event for 30 s",
    ] {
        // Batch 0 is the warm-up; batch 2 is the chat cell's second request.
        let script = Script {
            fail_at_batch: Some((2, reason.into())),
            ..Script::default()
        };
        let run = measure(script, &["draft"]);
        let chat = run.row("draft", "baseline", "chat");
        assert_eq!(
            (chat.status, chat.reason.as_str()),
            (Status::Failed, reason)
        );
        let edit = run.row("draft", "baseline", "code-edit");
        assert_eq!(edit.status, Status::Failed);
        assert_eq!(edit.reason, "not run: the server of this launch failed");
        assert_eq!(run.seen.stopped.get(), 1);
    }
}

#[test]
fn a_failed_warm_up_fails_the_first_cell_with_its_reason_and_the_rest_as_not_run() {
    let script = Script {
        fail_at_batch: Some((0, "request failed: connection refused".into())),
        ..Script::default()
    };
    let run = measure(script, &["draft"]);
    let chat = run.row("draft", "baseline", "chat");
    assert_eq!(chat.status, Status::Failed);
    assert_eq!(chat.reason, "request failed: connection refused");
    let edit = run.row("draft", "baseline", "code-edit");
    assert_eq!(edit.status, Status::Failed);
    assert_eq!(edit.reason, "not run: the server of this launch failed");
}

#[test]
fn ctrl_c_records_the_current_cell_and_the_rest_as_interrupted_and_stops() {
    let interrupt = Interrupt::default();
    // Batch 0 is the warm-up of the first launch (target's baseline), batch 1 its first
    // timed request: Ctrl-C arrives while that request is in flight.
    let script = Script {
        interrupt_at_batch: Some((1, interrupt.clone())),
        ..Script::default()
    };
    let run = measure(script, &["target", "draft"]);
    assert!(run.interrupted);
    assert_eq!(run.launches, 1, "no server after Ctrl-C");
    assert_eq!(run.seen.stopped.get(), 1, "the running server is stopped");
    assert_eq!(
        run.statuses(),
        [
            ("baseline".into(), "chat".into(), Status::Interrupted),
            ("baseline".into(), "code-edit".into(), Status::Interrupted),
        ]
    );
    assert!(run.rows.iter().all(|r| r.reason == "interrupted (Ctrl-C)"));
}

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

#[test]
fn a_role_whose_file_is_absent_is_skipped_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let writer = ResultWriter::create(&dir.path().join("run.csv")).unwrap();
    let mut roles = roles(&["target", "moe"]);
    let absent = "model file absent (looked for moe.gguf in /m; near matches: none)";
    roles[1].skip = Some(absent.into());
    roles[0].skip_spec =
        Some("model file absent (looked for draft.gguf in /m; near matches: none)".into());
    let run = resume_roles(Script::default(), roles, writer, false, true);
    // target: baseline and lookup run; its three spec launches are skipped (no draft).
    assert_eq!(run.launches, 2);
    for r in &run.rows {
        let (want, reason) = match (r.role.as_str(), r.mode.spec_k()) {
            ("moe", _) => (Status::Skipped, absent.to_string()),
            (_, Some(_)) => (
                Status::Skipped,
                "draft model file absent (looked for draft.gguf in /m; near matches: none)".into(),
            ),
            _ => (Status::Ok, String::new()),
        };
        assert_eq!(
            (r.status, &r.reason),
            (want, &reason),
            "{} {}",
            r.role,
            r.mode
        );
    }
    // target: 5 modes x 2 workloads; moe: baseline and moe:2 x 2 workloads.
    assert_eq!(run.rows.len(), 14);
}

#[test]
fn the_memory_guard_skips_a_launch_that_does_not_fit_without_starting_it() {
    let tight = Script {
        // 1 GiB total leaves nothing once the guide's 15% buffer is kept from 100 MiB.
        memory: Ok((100 << 20, 1 << 30)),
        ..Script::default()
    };
    let run = measure(tight, &["draft"]);
    assert!(run.seen.launches.borrow().is_empty());
    for r in &run.rows {
        assert_eq!(r.status, Status::Skipped);
        assert!(
            r.reason
                .starts_with("insufficient memory (needs 0.3 GiB, has 0.0 GiB)"),
            "{}",
            r.reason
        );
    }
    let unreadable = Script {
        memory: Err("cannot read /proc/meminfo for the memory guard: gone".into()),
        ..Script::default()
    };
    let run = measure(unreadable, &["draft"]);
    assert!(run.rows.iter().all(|r| r.status == Status::Skipped
        && r.reason == "cannot read /proc/meminfo for the memory guard: gone"));
}

#[test]
fn a_running_server_skips_what_it_refuses_and_has_no_memory_guard() {
    // As with --server-url: nothing launched (meminfo is never read, so its error never
    // shows), speculation refused with the backend's reason, baseline measured.
    let running = Script {
        memory: Err("meminfo must not be read".into()),
        guards_memory: false,
        refuse_speculative: Some("the server at http://127.0.0.1:1 does not speculate".into()),
        ..Script::default()
    };
    let run = measure_with(running, &["target"], false);
    assert_eq!(run.rows.len(), 10, "{:?}", run.statuses());
    for r in &run.rows {
        match r.mode.is_baseline() {
            true => assert_eq!(r.status, Status::Ok, "{}", r.reason),
            false => {
                assert_eq!(r.status, Status::Skipped);
                assert_eq!(
                    r.reason,
                    "the server at http://127.0.0.1:1 does not speculate"
                );
            }
        }
    }
    assert_eq!(
        run.seen.launches.borrow().len(),
        1,
        "only the baseline was started"
    );
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
    assert!(crate::driver::table::quality(spec).starts_with("near-tie at 5"));
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

/// The launch number (0-based) of the server of every batch while `launch` was measured,
/// its first `untimed` batches (probe, warm-up) left out: which server each timed request
/// of its cells went to.
fn servers_during(run: &Run, launch: usize, untimed: usize) -> Vec<usize> {
    let all = run.seen.batch_servers.borrow();
    let first = all.iter().position(|&l| l == launch).unwrap();
    let last = all.iter().rposition(|&l| l == launch).unwrap();
    all[first + untimed..=last].to_vec()
}

#[test]
fn speedups_are_paired_with_the_baseline_server_kept_up_and_requests_alternate() {
    let run = measure(Script::default(), &["target"]);
    // baseline (launch 0) stays up beside spec:4, spec:8, spec:16 and lookup (launches 1-4).
    assert_eq!(
        run.launches, 5,
        "the baseline server is never launched twice"
    );
    assert_eq!(
        run.seen.stopped.get(),
        5,
        "the partner is stopped at the end too"
    );
    // spec:4's cells after the probe's two requests and the warm-up: chat then code-edit,
    // 3 pairs each (the fake converges at the minimum): partner first in even pairs, own
    // first in odd ones, one request at a time.
    assert_eq!(
        servers_during(&run, 1, 3),
        [0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1],
        "A B B A ..."
    );
    let spec = run.row("target", "spec:4", "chat");
    assert_eq!((spec.status, spec.n_reps), (Status::Ok, 3));
    assert_close(spec.speedup, 2.0);
    assert_eq!(spec.speedup_pairs, Some(3));
    assert_eq!(spec.reason, "", "paired: no note");
    // The raw file holds both halves of every pair, and the analysis pairs them up.
    let raw = crate::results::load::load(&run.csv).unwrap();
    let values = raw.raw_of(spec).unwrap();
    assert_eq!(values.pairs.len(), 3);
    assert_eq!(
        values.decode_tps.len(),
        3,
        "partner lines are not the cell's own"
    );
    assert!(values
        .pairs
        .iter()
        .all(|(own, base)| (own / base - 2.0).abs() < 0.01));
    let base = run.row("target", "baseline", "chat");
    assert_eq!(raw.raw_of(base).unwrap().decode_tps.len(), 3);
}

#[test]
fn pairing_cancels_a_drifting_machine_that_separate_launches_do_not() {
    // The machine loses 1% of its speed per batch. Unpaired, spec:16 (its baseline measured
    // ~20 batches earlier) reads well below the true 2x; paired, each pair shares the drift.
    let drifting = || Script {
        drift_per_batch: 0.01,
        ..Script::default()
    };
    let paired = measure(drifting(), &["target"]);
    let unpaired = measure_with(drifting(), &["target"], false);
    let (p, u) = (
        paired.row("target", "spec:16", "chat"),
        unpaired.row("target", "spec:16", "chat"),
    );
    assert!(
        p.speedup_ci95_low.unwrap() <= 2.0 && 2.0 <= p.speedup_ci95_high.unwrap(),
        "paired {:?} {:?}",
        p.speedup_ci95_low,
        p.speedup_ci95_high
    );
    assert!(
        u.speedup_ci95_high.unwrap() < 1.9,
        "unpaired {:?}",
        u.speedup
    );
}

#[test]
fn a_partner_that_dies_mid_pair_leaves_the_cell_unpaired_and_a_later_launch_relaunches_it() {
    // The baseline server (launch 0) runs its own cells: warm-up (chat's reference), 3 chat
    // batches, code-edit's untimed reference, 3 code-edit batches (0-7); then pair 0 of
    // spec:4 chat (batch 8, partner first); pair 1 goes own first, and the partner dies at
    // its batch 9.
    let died = "server exited (signal 9)\n--- tail of launch.log ---\nkilled";
    let script = Script {
        fail_server: Some((0, 9, died.into())),
        ..Script::default()
    };
    let run = measure(script, &["target"]);
    let chat = run.row("target", "spec:4", "chat");
    assert_eq!(chat.status, Status::Ok, "the cell's own server is fine");
    assert_eq!(
        chat.reason,
        "unpaired: the baseline server beside it failed after 1 pairs: server exited (signal 9)"
    );
    assert_eq!(chat.n_reps, 3, "finished on its own server");
    assert_close(chat.speedup, 2.0);
    assert_eq!(
        chat.speedup_pairs, None,
        "the speedup is from separate launches"
    );
    let edit = run.row("target", "spec:4", "code-edit");
    assert_eq!(
        edit.reason,
        "unpaired: the baseline server beside this launch failed in an earlier cell"
    );
    // spec:8 starts a new baseline server beside it (launch 2), kept for the rest.
    let launches = run.seen.launches.borrow();
    assert_eq!(launches.len(), 6);
    assert!(launches[2].spec.is_none() && launches[3].spec.is_some());
    assert_eq!(run.row("target", "spec:8", "chat").reason, "");
    assert_eq!(run.seen.stopped.get(), 6);
}

#[test]
fn the_cells_own_server_dying_mid_pair_fails_it_and_the_partner_serves_the_next_launch() {
    // spec:4's server (launch 1): warm-up 0, own batch of pair 0 is 1, of pair 1 is 2.
    let reason = "server exited (signal 11)";
    let script = Script {
        fail_server: Some((1, 2, reason.into())),
        ..Script::default()
    };
    let run = measure(script, &["target"]);
    let chat = run.row("target", "spec:4", "chat");
    assert_eq!(
        (chat.status, chat.reason.as_str()),
        (Status::Failed, reason)
    );
    let edit = run.row("target", "spec:4", "code-edit");
    assert_eq!(edit.reason, "not run: the server of this launch failed");
    assert_eq!(run.launches, 5, "the partner survives; nothing relaunched");
    let spec8 = run.row("target", "spec:8", "chat");
    assert_eq!((spec8.status, spec8.reason.as_str()), (Status::Ok, ""));
}

#[test]
fn the_guard_refusing_a_second_server_measures_unpaired_and_says_why() {
    // By hand, from the fake model facts: a baseline server needs 20,000,000 B weights +
    // 4,194,304 B KV (8192 B/token x 512) + 268,435,456 B overhead = 292,629,760 B; spec:4
    // adds its draft and draft KV: 316,824,064 B. 1 GiB total keeps a 161,061,273 B buffer.
    // 600,000,000 B available: the baseline fits alone (438.9 MB); beside it (each running
    // server takes 200,000,000 B) 238,938,727 B = 0.2 GiB remain, less than spec:4's 0.3 GiB.
    let script = Script {
        memory: Ok((600_000_000, 1 << 30)),
        memory_per_server: 200_000_000,
        ..Script::default()
    };
    let run = measure(script, &["target"]);
    assert!(
        run.rows.iter().all(|r| r.status == Status::Ok),
        "{:?}",
        run.statuses()
    );
    let spec = run.row("target", "spec:4", "chat");
    assert_eq!(
        spec.reason,
        "unpaired: insufficient memory for two servers at once (needs 0.3 GiB, has 0.2 GiB)"
    );
    assert_close(spec.speedup, 2.0);
    assert_eq!(spec.speedup_pairs, None);
    // Later launches: no partner up, and the pair from scratch (292.6 + 316.8 - 20 MB of
    // shared weights = 0.5 GiB) does not fit in 0.4 GiB either; no second server ever ran.
    assert!(run.row("target", "spec:8", "chat").reason.starts_with(
        "unpaired: insufficient memory for two servers at once (needs 0.5 GiB, has 0.4 GiB)"
    ));
    assert_eq!(run.launches, 5);
    let servers = run.seen.batch_servers.borrow();
    assert!(
        servers.windows(2).all(|w| w[0] <= w[1]),
        "never back to an earlier server"
    );
}

#[test]
fn ctrl_c_mid_pair_stops_both_servers() {
    let interrupt = Interrupt::default();
    // Batches 0-7: the baseline launch (two untimed references, 3 + 3 timed); 8: warm-up of
    // spec:4; 9: pair 0's partner half; 10: its own half.
    let script = Script {
        interrupt_at_batch: Some((10, interrupt.clone())),
        ..Script::default()
    };
    let run = measure(script, &["target"]);
    assert!(run.interrupted);
    assert_eq!(run.launches, 2);
    assert_eq!(
        run.seen.stopped.get(),
        2,
        "the partner and the cell's server"
    );
    assert_eq!(
        run.row("target", "spec:4", "chat").status,
        Status::Interrupted
    );
}

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
    let profile = profile::parse(PROFILE, ProfileSource::Embedded("fake".into())).unwrap();
    let cell_sets: Vec<RoleCells> = roles
        .iter()
        .map(|r| crate::driver::role_cells(&profile, &one_point(), r, None))
        .collect();
    let launches = plan_launches(&cell_sets, false);
    let progress = Progress::new(plan::cell_count(&launches), true);
    let (backend, seen) = FakeBackend::new(script);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ab = AbSide::new(&a_settings, &mut a_writer);
    let mut exec = Executor::new(
        backend,
        &b_settings,
        &roles,
        &mut b_writer,
        &progress,
        Interrupt::default(),
    )
    .with_ab(ab);
    runtime
        .block_on(exec.run_all(launches, &cell_sets, &HashSet::new()))
        .unwrap();
    let (a_rows, ratios) = exec.take_ab().unwrap().into_results();
    let b_rows = std::mem::take(&mut exec.rows);
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
