//! How a phase sends its requests and when it stops: the open loop (arrivals on a seeded
//! schedule at `rps`, never waiting for answers; Poisson at burstiness 1, gamma-distributed
//! gaps otherwise, as vllm's `--request-rate` and `--burstiness`) or the closed loop (C
//! clients, each sending its next request when its last one finished, as vllm's
//! `--max-concurrency` and hey's `-c`), and the bounds that end the sending.

use std::fmt;
use std::time::Duration;

/// The arrival pattern of a phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pattern {
    /// Open loop: `rps` requests per second on average; gaps are gamma-distributed with
    /// shape `burstiness` and mean `1 / rps` (1: Poisson; below 1 burstier, above 1 more
    /// regular).
    Rate { rps: f64, burstiness: f64 },
    /// Closed loop: `clients` requests in flight, each client sending its next request the
    /// moment its last one finished.
    Concurrency { clients: u32 },
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Rate { rps, burstiness } if *burstiness == 1.0 => write!(f, "rate {rps} rps"),
            Pattern::Rate { rps, burstiness } => {
                write!(f, "rate {rps} rps burstiness {burstiness}")
            }
            Pattern::Concurrency { clients } => write!(f, "concurrency {clients}"),
        }
    }
}

/// When a phase stops sending: at whichever bound comes first (at least one is set). The
/// phase itself ends when every request sent has finished.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Bounds {
    /// No request is sent at or after this offset from the phase start.
    pub duration: Option<Duration>,
    /// No more than this many requests are sent.
    pub requests: Option<u32>,
}

/// One phase of load: its pattern, its bounds and the seed of its schedule and prompt picks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadSpec {
    pub pattern: Pattern,
    pub bounds: Bounds,
    /// Seeds the arrival gaps and the prompt picks: the same seed, the same phase.
    pub seed: u64,
}

impl LoadSpec {
    /// Why this spec cannot run, if it cannot: a rate or burstiness that is not a positive
    /// number, no clients, or no bound (a phase that would never stop sending).
    pub fn validate(&self) -> Result<(), String> {
        let positive = |x: f64| x.is_finite() && x > 0.0;
        match self.pattern {
            Pattern::Rate { rps, .. } if !positive(rps) => {
                return Err(format!(
                    "the request rate must be a positive number, not {rps}"
                ))
            }
            Pattern::Rate { burstiness, .. } if !positive(burstiness) => {
                return Err(format!(
                    "the burstiness must be a positive number, not {burstiness}"
                ))
            }
            Pattern::Concurrency { clients: 0 } => {
                return Err("the concurrency must be at least 1 client".into())
            }
            _ => {}
        }
        if self.bounds.duration.is_none() && self.bounds.requests.is_none() {
            return Err("a load phase needs a duration or a number of requests".into());
        }
        Ok(())
    }

    /// Whether request number `sent` (0-based) may still go out at `elapsed` into the phase.
    pub fn may_send(&self, sent: u32, elapsed: Duration) -> bool {
        let Bounds { duration, requests } = self.bounds;
        if duration.is_none() && requests.is_none() {
            return false; // unbounded: never start what would never stop
        }
        requests.is_none_or(|n| sent < n) && duration.is_none_or(|d| elapsed < d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_displays_as_the_flags_read() {
        let rate = |rps, burstiness| Pattern::Rate { rps, burstiness };
        assert_eq!(rate(2.0, 1.0).to_string(), "rate 2 rps");
        assert_eq!(rate(2.0, 0.5).to_string(), "rate 2 rps burstiness 0.5");
        assert_eq!(rate(0.25, 1.0).to_string(), "rate 0.25 rps");
        assert_eq!(
            Pattern::Concurrency { clients: 4 }.to_string(),
            "concurrency 4"
        );
    }

    #[test]
    fn validate_names_what_is_wrong() {
        let spec = |pattern, bounds| LoadSpec {
            pattern,
            bounds,
            seed: 1,
        };
        let ten = Bounds {
            requests: Some(10),
            ..Bounds::default()
        };
        let rate = |rps, burstiness| Pattern::Rate { rps, burstiness };
        assert!(spec(rate(1.0, 1.0), ten).validate().is_ok());
        assert!(spec(rate(0.0, 1.0), ten)
            .validate()
            .unwrap_err()
            .contains("rate"));
        assert!(spec(rate(1.0, f64::NAN), ten)
            .validate()
            .unwrap_err()
            .contains("burstiness"));
        let none = spec(Pattern::Concurrency { clients: 0 }, ten).validate();
        assert!(none.unwrap_err().contains("1 client"));
        let unbounded = spec(rate(1.0, 1.0), Bounds::default()).validate();
        assert!(unbounded.unwrap_err().contains("duration"));
    }

    #[test]
    fn sending_stops_at_the_first_bound() {
        let spec = LoadSpec {
            pattern: Pattern::Concurrency { clients: 1 },
            bounds: Bounds {
                duration: Some(Duration::from_secs(10)),
                requests: Some(3),
            },
            seed: 0,
        };
        assert!(spec.may_send(2, Duration::from_secs(9)));
        assert!(!spec.may_send(3, Duration::from_secs(1)));
        assert!(!spec.may_send(0, Duration::from_secs(10)));
    }
}
