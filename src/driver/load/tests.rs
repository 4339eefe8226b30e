//! The generator against the in-process fake on tokio's paused clock: thousands of
//! arrivals in virtual time, checked against queueing theory (M/D/1), the closed loop's
//! concurrency, Ctrl-C and failures. Expected values come from formulas written here, not
//! from the code under test.

use super::mix::Mix;
use super::pattern::{Bounds, LoadSpec, Pattern};
use super::run::{run_phase, PhaseRecord, RequestOutcome};
use super::slo::Slo;
use super::summary::summarize;
use crate::driver::fake::{FakeBackend, FakeServer, Script};
use crate::driver::interrupt::Interrupt;
use crate::engine::backend::Backend;
use crate::engine::request::{CompletionRequest, Prompt};
use crate::engine::LaunchSpec;
use std::time::Duration;

fn server(script: Script) -> FakeServer {
    let (mut backend, _) = FakeBackend::new(script);
    backend
        .launch(&LaunchSpec::new("m.gguf"), "load.log", 0)
        .unwrap()
}

fn served(service: Duration, slots: u32) -> FakeServer {
    server(Script {
        service_time: Some(service),
        slots,
        ..Script::default()
    })
}

fn mix(n_predict: u32) -> Mix {
    Mix::single(
        "short",
        CompletionRequest::new(Prompt::Text("hello".into()), n_predict),
    )
}

fn spec(pattern: Pattern, requests: u32, seed: u64) -> LoadSpec {
    LoadSpec {
        pattern,
        bounds: Bounds {
            duration: None,
            requests: Some(requests),
        },
        seed,
    }
}

fn poisson(rps: f64) -> Pattern {
    Pattern::Rate {
        rps,
        burstiness: 1.0,
    }
}

async fn phase(server: &FakeServer, spec: &LoadSpec, mix: &Mix) -> PhaseRecord {
    run_phase(server, spec, mix, &Interrupt::default()).await
}

/// Offset of a request's end from the phase start.
fn end_offset(o: &RequestOutcome) -> Duration {
    let r = o.result.as_ref().unwrap();
    o.sent + r.end.duration_since(r.sent)
}

/// Pollaczek-Khinchine for M/D/1: mean wait in queue W = rho / (2 mu (1 - rho)), mu = 1/D.
fn md1_wait(rho: f64, service: Duration) -> Duration {
    let mu = 1.0 / service.as_secs_f64();
    Duration::from_secs_f64(rho / (2.0 * mu * (1.0 - rho)))
}

/// Mean wait in queue (ms) of a single server with service time `service` and FIFO order,
/// by Lindley's recursion over the arrival offsets: an exact reference for one sample.
fn lindley_mean_wait(arrivals: &[Duration], service: Duration) -> f64 {
    let mut free = Duration::ZERO;
    let mut total = 0.0;
    for &at in arrivals {
        let start = at.max(free);
        total += (start - at).as_secs_f64() * 1e3;
        free = start + service;
    }
    total / arrivals.len() as f64
}

/// At load `rho` over `n` Poisson arrivals into one slot of D = 1 s: the mean queue wait
/// measured, Lindley's for the same arrivals, and whether the summary calls it saturated.
async fn md1_measured(rho: f64, n: u32, seed: u64) -> (f64, f64, bool) {
    let service = Duration::from_secs(1);
    let fake = served(service, 1);
    let load = spec(poisson(rho / service.as_secs_f64()), n, seed);
    let record = phase(&fake, &load, &mix(2)).await;
    assert_eq!(record.outcomes.len(), n as usize);
    let summary = summarize(&record, &Slo::default());
    let offsets: Vec<Duration> = super::schedule::schedule(&load, &mix(2))
        .iter()
        .map(|a| a.at)
        .collect();
    let exact = lindley_mean_wait(&offsets, service);
    (
        summary.queue_wait.unwrap().mean_ms,
        exact,
        summary.saturated,
    )
}

/// Runs `f` on a paused clock with timers only (no I/O driver to poll at each step of
/// virtual time): the M/D/1 phases are long.
fn on_paused_clock<F: std::future::Future>(f: F) -> F::Output {
    let mut runtime = tokio::runtime::Builder::new_current_thread();
    runtime.enable_time().start_paused(true);
    runtime.build().unwrap().block_on(f)
}

/// The measured mean wait at `rho` is within 10% of the formula, the queue not saturated.
fn check_md1(rho: f64, n: u32) {
    let clock = std::time::Instant::now();
    let expected = md1_wait(rho, Duration::from_secs(1)).as_secs_f64() * 1e3;
    let (measured, exact, saturated) = on_paused_clock(md1_measured(rho, n, 20));
    let error = (measured - expected) / expected;
    eprintln!(
        "M/D/1 rho {rho}, {n} arrivals: mean wait {measured:.2} ms, formula {expected:.2} ms \
         ({:+.2}%), Lindley on the same arrivals {exact:.2} ms, {:?} of real time",
        error * 1e2,
        clock.elapsed()
    );
    assert!(
        error.abs() < 0.10,
        "rho {rho}: {measured} ms vs {expected} ms"
    );
    // The generator and the fake add nothing to the queue: this sample's own exact waits
    // (tokio's timers round each send up to the next millisecond: < 0.1% of D = 1 s).
    assert!(
        (measured - exact).abs() < 1.0,
        "{measured} ms vs Lindley {exact} ms"
    );
    assert!(!saturated, "a stable queue is not saturated (rho {rho})");
}

// Standard error of the mean wait, from 200 Lindley-recursion simulations of M/D/1 (outside
// this code): 3.2% at rho 0.5 with 12 000 arrivals, 3.4% at rho 0.8 with 50 000 (the waits
// of a busy queue are long correlated); 10% is three standard errors.

#[test]
fn md1_mean_wait_matches_pollaczek_khinchine_at_rho_0_5() {
    check_md1(0.5, 12_000);
}

#[test]
fn md1_mean_wait_matches_pollaczek_khinchine_at_rho_0_8() {
    check_md1(0.8, 50_000);
}

#[tokio::test(start_paused = true)]
async fn an_overloaded_queue_is_saturated() {
    let (_, _, saturated) = md1_measured(1.5, 600, 3).await;
    assert!(saturated);
}

#[tokio::test(start_paused = true)]
async fn closed_loop_keeps_c_in_flight_and_sends_after_an_answer() {
    let clients = 3;
    let fake = served(Duration::from_millis(40), 10);
    let record = phase(
        &fake,
        &spec(Pattern::Concurrency { clients }, 30, 5),
        &mix(4),
    )
    .await;
    let outcomes = &record.outcomes;
    assert_eq!(outcomes.len(), 30);
    // In flight at any instant, from the records' own instants (ends before starts).
    let mut events: Vec<(Duration, i32)> = outcomes
        .iter()
        .flat_map(|o| [(o.sent, 1), (end_offset(o), -1)])
        .collect();
    events.sort();
    let peak = events
        .iter()
        .scan(0, |n, e| {
            *n += e.1;
            Some(*n)
        })
        .max()
        .unwrap();
    assert_eq!(peak, clients as i32);
    // Each later request was due the moment an earlier one ended.
    let ends: Vec<Duration> = outcomes.iter().map(end_offset).collect();
    for o in &outcomes[clients as usize..] {
        assert!(
            ends.contains(&o.scheduled),
            "request {} due at {:?}",
            o.index,
            o.scheduled
        );
        assert!(o.sent >= o.scheduled);
    }
    assert!(outcomes[..clients as usize]
        .iter()
        .all(|o| o.scheduled.is_zero()));
    assert_eq!(record.wall, Duration::from_millis(40 * 10));
}

#[tokio::test(start_paused = true)]
async fn closed_loop_picks_the_open_loops_prompts() {
    let two = Mix {
        entries: vec![mix(2).entries[0].clone(), mix(3).entries[0].clone()],
    };
    let fake = served(Duration::from_millis(10), 4);
    let open = phase(&fake, &spec(poisson(5.0), 40, 9), &two).await;
    let closed = phase(
        &fake,
        &spec(Pattern::Concurrency { clients: 2 }, 40, 9),
        &two,
    )
    .await;
    let picks = |r: &PhaseRecord| r.outcomes.iter().map(|o| o.pick).collect::<Vec<_>>();
    assert_eq!(picks(&open), picks(&closed));
    assert!(picks(&open).contains(&0) && picks(&open).contains(&1));
}

#[tokio::test(start_paused = true)]
async fn open_loop_sends_on_schedule_whatever_is_in_flight() {
    // 20 rps into one slot of 200 ms: the queue grows, the sends do not wait for it.
    let fake = served(Duration::from_millis(200), 1);
    let record = phase(&fake, &spec(poisson(20.0), 50, 1), &mix(2)).await;
    let summary = summarize(&record, &Slo::default());
    assert!(
        summary.max_send_lag_ms <= 1.0,
        "{}",
        summary.max_send_lag_ms
    );
    assert!(summary.behind_schedule.is_none());
    assert_eq!(record.wall, end_offset(record.outcomes.last().unwrap()));
    assert!(summary.saturated);
}

#[tokio::test(start_paused = true)]
async fn ctrl_c_stops_sending_and_keeps_what_finished() {
    let interrupt = Interrupt::default();
    let fake = served(Duration::from_millis(50), 4);
    let load = spec(poisson(10.0), 100, 2);
    let at = Duration::from_millis(2050);
    let trigger = async {
        tokio::time::sleep(at).await;
        interrupt.trigger();
    };
    let two = mix(2);
    let (record, ()) = tokio::join!(run_phase(&fake, &load, &two, &interrupt), trigger);
    assert!(record.interrupted);
    assert_eq!(record.wall, at);
    let n = record.outcomes.len();
    assert!((5..60).contains(&n), "{n} finished");
    assert!(record
        .outcomes
        .iter()
        .all(|o| o.result.is_ok() && end_offset(o) <= at));
    // Every request due well before Ctrl-C finished; none due after it was sent.
    let arrivals = super::schedule::schedule(&load, &mix(2));
    let due_early = arrivals
        .iter()
        .filter(|a| a.at + Duration::from_millis(300) < at)
        .count();
    assert!(n >= due_early, "{n} < {due_early}");
    assert!(record.outcomes.iter().all(|o| o.scheduled < at));
}

#[tokio::test(start_paused = true)]
async fn ctrl_c_stops_the_closed_loop() {
    let interrupt = Interrupt::default();
    let fake = served(Duration::from_millis(100), 2);
    let load = spec(Pattern::Concurrency { clients: 2 }, 1000, 2);
    let trigger = async {
        tokio::time::sleep(Duration::from_millis(1050)).await;
        interrupt.trigger();
    };
    let two = mix(2);
    let (record, ()) = tokio::join!(run_phase(&fake, &load, &two, &interrupt), trigger);
    assert!(record.interrupted);
    assert_eq!(record.outcomes.len(), 20);
}

#[tokio::test(start_paused = true)]
async fn a_failed_request_is_an_outcome_in_the_denominators() {
    let fake = server(Script {
        service_time: Some(Duration::from_millis(10)),
        fail_request: Some((3, "HTTP 503: busy".into())),
        ..Script::default()
    });
    let record = phase(&fake, &spec(poisson(10.0), 10, 4), &mix(2)).await;
    assert_eq!(record.outcomes.len(), 10);
    assert_eq!(
        record.outcomes[3].result.as_ref().unwrap_err(),
        "HTTP 503: busy"
    );
    let slo: Slo = "e2e=1s".parse().unwrap();
    let summary = summarize(&record, &slo);
    assert_eq!(
        (
            summary.sent,
            summary.completed,
            summary.failed,
            summary.timed_out
        ),
        (10, 9, 1, 0)
    );
    assert_eq!(summary.goodput_share, Some(0.9));
    assert_eq!(summary.error_share, 0.1);
}

/// The generator's own cost: CPU time of this process per request against a fake that
/// answers at once, 20 000 requests at 1000 rps on the paused clock. Under nextest each test
/// is its own process, so the figure is this phase's; debug build.
#[tokio::test(start_paused = true)]
async fn generator_cpu_per_request_is_small() {
    let fake = server(Script::default());
    let record = phase(&fake, &spec(poisson(1000.0), 20_000, 6), &mix(16)).await;
    let summary = summarize(&record, &Slo::default());
    let per_request = summary.generator_cpu_ms_per_request.unwrap();
    eprintln!(
        "generator CPU: {:.1} us per request (debug build)",
        per_request * 1e3
    );
    assert!(per_request < 1.0, "{per_request} ms per request");
}
