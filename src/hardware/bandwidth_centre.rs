//! A bandwidth figure that holds still: the best of 1-ms passes picks the luckiest moment of
//! a VM (three `bench hw` a minute apart gave 34.9, 55.8 and 35.5 GB/s on one idle AMD VM),
//! so the passes are also grouped into blocks of consecutive passes spanning at least
//! [`BLOCK`] of wall time each, long enough that a descheduled virtual CPU or a host's
//! neighbour costs a block a little rather than making or breaking it, and the figure is the
//! median of the blocks' rates with their interquartile range as the spread. Pure: it is
//! handed the passes' bytes and wall times.

use std::ops::Range;
use std::time::Duration;

/// The least wall time of one block of consecutive passes.
pub const BLOCK: Duration = Duration::from_millis(25);

/// One timed pass: the bytes all threads read and its wall time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pass {
    /// Bytes read by all threads together.
    pub bytes: u64,
    /// From the first thread's start to the last thread's end.
    pub wall: Duration,
}

/// The robust centre of a measurement and its spread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Centre {
    /// Median of the block rates (GB/s).
    pub gbps: f64,
    /// Interquartile range of the block rates over their median (percent).
    pub spread_pct: f64,
    /// Blocks behind the figure.
    pub blocks: usize,
}

/// The rate (GB/s) of each block of consecutive passes spanning at least `block`, in order.
/// Leftover passes shorter than a block join the last block; passes that alone make no
/// block make one block.
pub fn block_rates(passes: &[Pass], block: Duration) -> Vec<f64> {
    blocks(passes, block)
        .into_iter()
        .map(|r| {
            let bytes = passes[r.clone()].iter().map(|p| p.bytes).sum();
            let wall = passes[r].iter().map(|p| p.wall).sum();
            gbps(bytes, wall)
        })
        .collect()
}

/// The index ranges of the blocks (see [`block_rates`]).
fn blocks(passes: &[Pass], block: Duration) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    let (mut start, mut wall) = (0, Duration::ZERO);
    for (i, p) in passes.iter().enumerate() {
        wall += p.wall;
        if wall >= block {
            out.push(start..i + 1);
            (start, wall) = (i + 1, Duration::ZERO);
        }
    }
    if start < passes.len() {
        match out.last_mut() {
            Some(last) => last.end = passes.len(),
            None => out.push(start..passes.len()),
        }
    }
    out
}

/// The median block rate and the interquartile spread; `None` without passes.
pub fn centre(passes: &[Pass], block: Duration) -> Option<Centre> {
    let mut rates = block_rates(passes, block);
    rates.retain(|r| r.is_finite() && *r > 0.0);
    if rates.is_empty() {
        return None;
    }
    rates.sort_by(f64::total_cmp);
    let median = quantile(&rates, 0.5);
    let iqr = quantile(&rates, 0.75) - quantile(&rates, 0.25);
    Some(Centre {
        gbps: median,
        spread_pct: iqr / median * 100.0,
        blocks: rates.len(),
    })
}

/// Quantile `q` of sorted values, linear between order statistics (R's type 7, numpy's
/// default).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

fn gbps(bytes: u64, wall: Duration) -> f64 {
    bytes as f64 / wall.as_secs_f64() / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(mb: u64, ms: u64) -> Pass {
        Pass {
            bytes: mb * 1_000_000,
            wall: Duration::from_millis(ms),
        }
    }

    #[test]
    fn blocks_span_at_least_the_block_time_and_the_leftover_joins_the_last() {
        // 10 ms passes of 300 MB (30 GB/s); blocks of 25 ms take three passes each. Seven
        // passes: blocks [0..3) and [3..7) (the leftover pass joins the second).
        let mut passes = vec![pass(300, 10); 7];
        passes[6] = pass(100, 10); // 10 GB/s
        let rates = block_rates(&passes, BLOCK);
        assert_eq!(rates.len(), 2);
        assert!((rates[0] - 30.0).abs() < 1e-9, "{rates:?}");
        // (3 x 300 + 100) MB over 40 ms = 25 GB/s.
        assert!((rates[1] - 25.0).abs() < 1e-9, "{rates:?}");
        // Too few passes for one block: one block of them all.
        assert_eq!(block_rates(&[pass(30, 1)], BLOCK), vec![30.0]);
        assert!(block_rates(&[], BLOCK).is_empty());
    }

    #[test]
    fn the_centre_ignores_lucky_and_unlucky_blocks() {
        // Block rates 10, 30, 31, 32, 33, 60 GB/s (one 25 ms pass each). numpy:
        // median 31.5, quantiles 0.25 -> 30.25, 0.75 -> 32.75: spread 2.5 / 31.5 = 7.94%.
        let passes: Vec<Pass> = [10u64, 30, 31, 32, 33, 60]
            .iter()
            .map(|&g| pass(g * 25, 25))
            .collect();
        let c = centre(&passes, BLOCK).unwrap();
        assert_eq!(c.blocks, 6);
        assert!((c.gbps - 31.5).abs() < 1e-9, "{c:?}");
        assert!((c.spread_pct - 2.5 / 31.5 * 100.0).abs() < 1e-9, "{c:?}");
        assert_eq!(centre(&[], BLOCK), None);
    }
}
