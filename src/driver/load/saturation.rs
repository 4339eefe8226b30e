//! Over-saturation, guidellm's stop for a rate sweep: did the queue grow through the phase
//! instead of settling? A pure rule over each request's due time, queue wait and the time it
//! then held its slot, so that it can be tested on constructed phases.

/// One completed request, in milliseconds from the phase's start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Waited {
    /// When it was due.
    pub due_ms: f64,
    /// How long it waited for a slot.
    pub wait_ms: f64,
    /// How long it then held its slot (first token to end).
    pub held_ms: f64,
}

/// The share of the second half of the sending window during which a request was waiting.
pub const BACKLOG_SHARE: f64 = 0.8;

/// Over-saturation: the requests in due order are cut in thirds; the phase is saturated
/// when the mean queue wait of the last third is more than twice that of the first third
/// and above one service time (the mean time a request holds its slot), and the queue never
/// emptied for long in the second half of the phase: requests were waiting during at least
/// [`BACKLOG_SHARE`] of it. The second condition tells a backlog that grows from a burst of
/// Poisson arrivals near the end that the server then clears (seen on Gemma 3 270M at
/// 0.5 rps, about 55% of its capacity: the last third's wait was 8x the first's, but
/// requests waited during 12% of the second half). A settled queue, even a long one, is not
/// saturated.
pub fn saturated(mut requests: Vec<Waited>) -> bool {
    requests.sort_by(|a, b| a.due_ms.total_cmp(&b.due_ms));
    let third = requests.len() / 3;
    if third < 3 {
        return false; // too few requests to see a trend
    }
    let mean = |xs: &[Waited]| xs.iter().map(|w| w.wait_ms).sum::<f64>() / xs.len() as f64;
    let service = requests.iter().map(|w| w.held_ms).sum::<f64>() / requests.len() as f64;
    let (first, last) = (
        mean(&requests[..third]),
        mean(&requests[requests.len() - third..]),
    );
    last > 2.0 * first && last > service && backlog_share(&requests) >= BACKLOG_SHARE
}

/// The share of the second half of the sending window (from the middle of the first and
/// last due times to the last) covered by some request's queue wait, `[due, due + wait]`;
/// `in_order` is sorted by due time.
fn backlog_share(in_order: &[Waited]) -> f64 {
    let (Some(first), Some(last)) = (in_order.first(), in_order.last()) else {
        return 0.0;
    };
    let (from, to) = ((first.due_ms + last.due_ms) / 2.0, last.due_ms);
    if to <= from {
        return 0.0;
    }
    let mut covered = 0.0;
    let mut reach = from;
    for w in in_order {
        let (start, end) = (w.due_ms.max(reach), (w.due_ms + w.wait_ms).min(to));
        if end > start {
            covered += end - start;
            reach = end;
        }
    }
    covered / (to - from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waited(due_ms: f64, wait_ms: f64) -> Waited {
        Waited {
            due_ms,
            wait_ms,
            held_ms: 8.0,
        }
    }

    #[test]
    fn the_backlog_is_the_covered_share_of_the_second_half() {
        // Second half of 0..100 ms is 50..100; waits cover 50..70 and 80..90: 30 of 50 ms.
        let w = [
            waited(0.0, 5.0),
            waited(50.0, 20.0),
            waited(80.0, 10.0),
            waited(100.0, 0.0),
        ];
        assert!((backlog_share(&w) - 0.6).abs() < 1e-9);
        assert_eq!(backlog_share(&[]), 0.0);
    }
}
