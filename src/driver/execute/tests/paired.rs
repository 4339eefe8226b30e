//! Paired measurement against the fake: the baseline server kept up beside accelerated
//! launches and the requests alternating, a drifting machine cancelled, a partner or an own
//! server dying mid-pair, the guard refusing a second server, Ctrl-C mid-pair.

use super::*;

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
