//! What goes wrong and how the loop carries on, against the fake: a failed launch, a
//! server dying or stalling mid-cell, a failed warm-up, Ctrl-C, a role whose file is absent,
//! the memory guard, and a running server that refuses what it cannot serve.

use super::*;

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
