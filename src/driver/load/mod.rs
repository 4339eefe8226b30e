//! The load generator (issue 20, "Serving under load"): drives one server with a stream of
//! requests instead of the run loop's closed batches, as vllm's `bench serve`, guidellm and
//! wrk2 do, and turns what came back into the figures users know (TTFT, TPOT, ITL, E2EL,
//! goodput).
//!
//! One concern per file: [`pattern`] (open loop at a rate with a burstiness, or closed loop
//! with C clients; the bounds of a phase), [`mix`] (the prompts, picked by weight),
//! [`schedule`] (the seeded arrival times of the open loop), [`run`] (one phase against a
//! [`crate::engine::backend::ServerHandle`], raw instants only), [`summary`] (the figures,
//! computed afterwards by a pure function), [`slo`] (the targets goodput counts against)
//! and [`search`] (the highest rate that keeps the SLOs, as a state machine the caller
//! drives one phase at a time).
//!
//! Several servers at once: [`run::run_phase`] borrows its server and spawns nothing, so a
//! caller joins one phase per server (`futures_util::future::join_all`) on one task.

pub mod mix;
pub mod pattern;
pub mod run;
pub mod saturation;
pub mod schedule;
pub mod search;
pub mod slo;
pub mod summary;

#[cfg(test)]
mod tests;

pub use mix::{Mix, MixEntry};
pub use pattern::{Bounds, LoadSpec, Pattern};
pub use run::{run_phase, PhaseRecord, RequestOutcome};
pub use schedule::{schedule, Arrival};
pub use search::{MaxRate, MaxRateSearch};
pub use slo::{Slo, SloError};
pub use summary::{summarize, LoadSummary, Percentiles};
