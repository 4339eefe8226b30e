//! One phase of load against one server: sends requests on the open loop's schedule or as
//! the closed loop's clients free up, and records raw instants only (wrk2's and oha's
//! rule: every figure comes later, from [`super::summary`]).
//!
//! Latency is counted from the instant a request was due, not when it went out, so that a
//! generator or a server falling behind cannot hide its queue (coordinated omission). The
//! open loop never waits for an answer before its next send; when it does send late the
//! lag is recorded per request and the summary says so, it never lowers the rate quietly
//! (as inference-benchmarker's arrival-rate executor does at its client cap).
//!
//! Requests run as futures polled by this one task (no spawn: a server handle need not be
//! `Send`), so several phases on several servers can be joined on one task.

use super::mix::Mix;
use super::pattern::{LoadSpec, Pattern};
use super::schedule::{schedule, Arrival};
use crate::driver::interrupt::Interrupt;
use crate::engine::backend::ServerHandle;
use crate::engine::request::CompletionRecord;
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::time::Duration;
use tokio::time::Instant;

/// One request of a phase as it happened.
#[derive(Debug, Clone)]
pub struct RequestOutcome {
    /// Sending order (0-based).
    pub index: u32,
    /// Index into the mix's entries.
    pub pick: usize,
    /// When it was due, from the phase start: the schedule's instant (open loop) or the
    /// instant its client became free (closed loop).
    pub scheduled: Duration,
    /// When it went out, from the phase start: the record's own `sent` instant, or when the
    /// generator started it if it failed.
    pub sent: Duration,
    /// The raw record, or why it failed (a timeout's reason begins with
    /// [`crate::engine::backend::TIMED_OUT`]).
    pub result: Result<CompletionRecord, String>,
}

/// Everything one phase recorded.
#[derive(Debug, Clone)]
pub struct PhaseRecord {
    pub spec: LoadSpec,
    /// Every request that finished (answered or failed), in sending order. After Ctrl-C the
    /// requests still in flight were dropped unfinished and are not here.
    pub outcomes: Vec<RequestOutcome>,
    /// Phase start to the last request finished (or to Ctrl-C).
    pub wall: Duration,
    /// CPU time of this whole process over the phase (the generator's cost; it includes
    /// anything else the process did meanwhile), when readable.
    pub generator_cpu: Option<Duration>,
    /// Ctrl-C stopped the phase: sending stopped at once, in-flight requests were dropped.
    pub interrupted: bool,
}

/// Runs one phase of `spec` against `server`, picking requests from `mix`, until every
/// request sent has finished or `interrupt` fires.
pub async fn run_phase<S: ServerHandle>(
    server: &S,
    spec: &LoadSpec,
    mix: &Mix,
    interrupt: &Interrupt,
) -> PhaseRecord {
    let cpu_before = process_cpu();
    let start = Instant::now();
    let (mut outcomes, interrupted) = match spec.pattern {
        Pattern::Rate { .. } => open_loop(server, spec, mix, interrupt, start).await,
        Pattern::Concurrency { clients } => {
            closed_loop(server, spec, mix, interrupt, start, clients).await
        }
    };
    let wall = start.elapsed();
    outcomes.sort_by_key(|o| o.index);
    PhaseRecord {
        spec: *spec,
        outcomes,
        wall,
        generator_cpu: process_cpu()
            .zip(cpu_before)
            .map(|(after, before)| after.saturating_sub(before)),
        interrupted,
    }
}

/// This process's CPU time so far (user and system), when readable.
fn process_cpu() -> Option<Duration> {
    crate::llamacpp::server::cpu::self_cpu_time().ok()
}

/// What a loop returns: the finished outcomes and whether Ctrl-C stopped it.
type Finished = (Vec<RequestOutcome>, bool);

/// The open loop: each request at its scheduled instant, whatever is in flight.
async fn open_loop<S: ServerHandle>(
    server: &S,
    spec: &LoadSpec,
    mix: &Mix,
    interrupt: &Interrupt,
    start: Instant,
) -> Finished {
    let arrivals = schedule(spec, mix);
    let mut due = arrivals.iter().zip(0u32..).peekable();
    let mut in_flight = FuturesUnordered::new();
    let mut outcomes = Vec::with_capacity(arrivals.len());
    let stop = interrupt.wait();
    // One timer, moved to each arrival in turn (a new one per turn of the loop would be
    // registered and dropped on every answer too).
    let timer = tokio::time::sleep_until(start);
    tokio::pin!(stop, timer);
    loop {
        let next_at = due.peek().map(|(a, _)| start + a.at);
        if next_at.is_none() && in_flight.is_empty() {
            return (outcomes, false);
        }
        if let Some(at) = next_at.filter(|&at| at != timer.deadline()) {
            timer.as_mut().reset(at);
        }
        // Biased: Ctrl-C first, then a due send (the schedule is the experiment), then
        // answers, whose instants were taken when they arrived whatever the order here.
        tokio::select! {
            biased;
            _ = &mut stop => return (outcomes, true),
            _ = &mut timer, if next_at.is_some() => {
                let (&Arrival { at, pick }, index) = due.next().expect("peeked");
                in_flight.push(send(server, mix, start, Slot { index, pick, scheduled: at }));
            }
            Some(outcome) = in_flight.next() => outcomes.push(outcome),
        }
    }
}

/// The closed loop: `clients` requests in flight; each answer frees its client, which
/// sends the next request at once while the bounds allow.
async fn closed_loop<S: ServerHandle>(
    server: &S,
    spec: &LoadSpec,
    mix: &Mix,
    interrupt: &Interrupt,
    start: Instant,
    clients: u32,
) -> Finished {
    let mut picks = mix.picks(spec.seed);
    let mut sent = 0u32;
    let mut next_slot = |scheduled: Duration| {
        let pick = picks.next().filter(|_| spec.may_send(sent, scheduled))?;
        sent += 1;
        Some(Slot {
            index: sent - 1,
            pick,
            scheduled,
        })
    };
    let mut in_flight = FuturesUnordered::new();
    for _ in 0..clients {
        let Some(slot) = next_slot(Duration::ZERO) else {
            break;
        };
        in_flight.push(send(server, mix, start, slot));
    }
    let mut outcomes = Vec::new();
    let stop = interrupt.wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => return (outcomes, true),
            next = in_flight.next() => {
                let Some(outcome) = next else { return (outcomes, false) };
                outcomes.push(outcome);
                if let Some(slot) = next_slot(start.elapsed()) {
                    in_flight.push(send(server, mix, start, slot));
                }
            }
        }
    }
}

/// One request to send: its number, its mix entry and when it is due.
struct Slot {
    index: u32,
    pick: usize,
    scheduled: Duration,
}

/// Sends one request; the outcome keeps its instants as offsets from `start`.
async fn send<S: ServerHandle>(
    server: &S,
    mix: &Mix,
    start: Instant,
    slot: Slot,
) -> RequestOutcome {
    // Taken on the first poll, when the request really starts.
    let started = start.elapsed();
    let result = server.request(&mix.entries[slot.pick].request).await;
    let sent = match &result {
        Ok(record) => record.sent.saturating_duration_since(start.into_std()),
        Err(_) => started,
    };
    RequestOutcome {
        index: slot.index,
        pick: slot.pick,
        scheduled: slot.scheduled,
        sent,
        result,
    }
}
