//! The highest request rate a server sustains: a search over phases that the caller drives,
//! since each step is an async phase on a server ([`MaxRateSearch::next_rate`], run the
//! phase, [`MaxRateSearch::record`] its summary, again until `next_rate` is `None`). The
//! rate grows geometrically (x2) until a step fails, then the bracket [highest passing,
//! lowest failing] is bisected until it is within 10 % or the steps run out.
//!
//! A step passes when its goodput share (answered requests over those sent when no SLO is
//! set) is at least the target and its queue did not grow through the phase
//! ([`LoadSummary::saturated`]): without SLOs every request of an overloaded server is
//! eventually answered, and only the growing queue shows that the rate is not sustainable.

use super::summary::LoadSummary;

/// Bisection stops once (lowest failing - highest passing) / highest passing is at most this.
const BRACKET_WIDTH: f64 = 0.10;
/// Growth of the rate per step until the first failure.
const GROWTH: f64 = 2.0;

/// The search's state.
#[derive(Debug, Clone, PartialEq)]
pub struct MaxRateSearch {
    target_share: f64,
    start_rps: f64,
    max_steps: u32,
    steps: u32,
    /// Highest rate that passed so far.
    pass: Option<f64>,
    /// Lowest rate that failed so far.
    fail: Option<f64>,
}

/// What the search found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaxRate {
    /// The highest rate that passed (requests/s); equals `low`.
    pub rps: f64,
    /// Bracket low end: the highest rate that passed (requests/s).
    pub low: f64,
    /// Bracket high end: the lowest rate that failed (requests/s); infinite when no step
    /// failed before the steps ran out.
    pub high: f64,
    /// Phases run.
    pub steps: u32,
}

impl MaxRateSearch {
    /// A search for the highest rate whose goodput share stays at or above `target_share`,
    /// starting at `start_rps`, over at most `max_steps` phases.
    pub fn new(target_share: f64, start_rps: f64, max_steps: u32) -> Self {
        MaxRateSearch {
            target_share,
            start_rps,
            max_steps,
            steps: 0,
            pass: None,
            fail: None,
        }
    }

    /// The rate of the next phase, or `None` when the search is over.
    pub fn next_rate(&self) -> Option<f64> {
        if self.steps >= self.max_steps {
            return None;
        }
        match (self.pass, self.fail) {
            (None, None) => Some(self.start_rps),
            (Some(pass), None) => Some(pass * GROWTH),
            (None, Some(fail)) => Some(fail / GROWTH),
            (Some(pass), Some(fail)) if fail - pass <= BRACKET_WIDTH * pass => None,
            (Some(pass), Some(fail)) => Some((pass + fail) / 2.0),
        }
    }

    /// Records the phase run at `rps`.
    pub fn record(&mut self, rps: f64, summary: &LoadSummary) {
        self.steps += 1;
        let share = summary.goodput_share.unwrap_or_else(|| answered(summary));
        if share >= self.target_share && !summary.saturated {
            self.pass = Some(self.pass.map_or(rps, |p| p.max(rps)));
        } else {
            self.fail = Some(self.fail.map_or(rps, |f| f.min(rps)));
        }
    }

    /// The highest passing rate and its bracket, once a step passed.
    pub fn result(&self) -> Option<MaxRate> {
        let low = self.pass?;
        Some(MaxRate {
            rps: low,
            low,
            high: self.fail.unwrap_or(f64::INFINITY),
            steps: self.steps,
        })
    }
}

/// Answered requests over those sent (0 when nothing was sent).
fn answered(summary: &LoadSummary) -> f64 {
    if summary.sent == 0 {
        0.0
    } else {
        summary.completed as f64 / summary.sent as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server whose goodput share is 1 up to `knee` rps and falls linearly beyond it.
    fn curve(knee: f64) -> impl Fn(f64) -> LoadSummary {
        move |rps| LoadSummary {
            goodput_share: Some(if rps <= knee {
                1.0
            } else {
                (1.0 - (rps - knee) / knee).max(0.0)
            }),
            ..LoadSummary::default()
        }
    }

    fn drive(search: &mut MaxRateSearch, server: impl Fn(f64) -> LoadSummary) -> Vec<f64> {
        let mut rates = Vec::new();
        while let Some(rps) = search.next_rate() {
            search.record(rps, &server(rps));
            rates.push(rps);
        }
        rates
    }

    #[test]
    fn finds_the_known_knee_within_ten_percent() {
        // Share >= 0.95 up to 7.3 x 1.05 = 7.665 rps: the answer.
        let mut search = MaxRateSearch::new(0.95, 1.0, 20);
        let rates = drive(&mut search, curve(7.3));
        let found = search.result().unwrap();
        let answer = 7.3 * 1.05;
        assert_eq!(&rates[..4], &[1.0, 2.0, 4.0, 8.0]);
        assert!(found.low <= answer && answer < found.high, "{found:?}");
        assert!(found.high - found.low <= 0.1 * found.low, "{found:?}");
        assert_eq!(found.rps, found.low);
        assert_eq!(found.steps as usize, rates.len());
    }

    #[test]
    fn shrinks_when_the_start_fails_and_stops_at_max_steps() {
        let mut search = MaxRateSearch::new(0.9, 100.0, 3);
        let rates = drive(&mut search, curve(20.0));
        assert_eq!(rates, vec![100.0, 50.0, 25.0]);
        assert_eq!(search.result(), None);
        let mut unbounded = MaxRateSearch::new(0.9, 1.0, 4);
        drive(&mut unbounded, curve(1000.0));
        let found = unbounded.result().unwrap();
        assert_eq!(
            (found.rps, found.high, found.steps),
            (8.0, f64::INFINITY, 4)
        );
    }

    #[test]
    fn a_saturated_step_fails_without_slo() {
        let mut search = MaxRateSearch::new(0.99, 4.0, 10);
        let all_answered = |saturated| LoadSummary {
            sent: 10,
            completed: 10,
            saturated,
            ..LoadSummary::default()
        };
        search.record(4.0, &all_answered(false));
        search.record(8.0, &all_answered(true));
        assert_eq!(search.next_rate(), Some(6.0));
    }
}
