//! What sharing the machine should cost each role, from what it does alone: the roles'
//! weight streams share the read bandwidth, and their threads share the cores as allocated.
//!
//! A role alone streams `d = bytes per token × output t/s` (GB/s). Against the bandwidth
//! its own threads reach (`B_i`), `f = min(1, d / B_i)` is the share of its time bound by
//! memory; the rest is computation. Together, the threads of all roles over the cores give
//! `o = max(1, Σ threads / cores)` (the compute part stretches by `o`), and the streams
//! draw from one supply, the bandwidth at the deployment's threads (`B`): the memory part
//! stretches by `s`, the fixed point of
//!
//! ```text
//! s = max(1, Σ d_i / (f_i s + (1 - f_i) o) / B)
//! ```
//!
//! (each role's demand falls as it slows; the left side rises and the right falls in `s`, so
//! there is one solution). A role's predicted contention is `1 / (f s + (1 - f) o)`. Shared
//! caches, frequency and the memory controller's latency under load are not in it: where the
//! measured contention is well below the prediction, they are what costs.

/// One role of a deployment, alone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Alone {
    /// Weights streamed alone: bytes per token × output t/s (GB/s).
    pub demand_gbps: f64,
    /// The read bandwidth its own threads reach (GB/s).
    pub own_gbps: f64,
    /// Its server's threads.
    pub threads: u32,
}

/// Each role's predicted contention (together / alone), in order; `shared_gbps` is the
/// bandwidth at the deployment's threads.
pub fn contention(roles: &[Alone], cores: u32, shared_gbps: f64) -> Vec<f64> {
    let threads: u32 = roles.iter().map(|r| r.threads).sum();
    let o = (threads as f64 / cores.max(1) as f64).max(1.0);
    let f: Vec<f64> = roles
        .iter()
        .map(|r| (r.demand_gbps / r.own_gbps).clamp(0.0, 1.0))
        .collect();
    let stretch = |s: f64, i: usize| f[i] * s + (1.0 - f[i]) * o;
    let drawn = |s: f64| -> f64 {
        roles
            .iter()
            .enumerate()
            .map(|(i, r)| r.demand_gbps / stretch(s, i))
            .sum::<f64>()
            / shared_gbps
    };
    let s = match drawn(1.0) <= 1.0 {
        true => 1.0,
        false => {
            // s - drawn(s) rises from below 0 at s = 1 to above 0 at s = drawn(1).
            let (mut low, mut high) = (1.0, drawn(1.0));
            for _ in 0..100 {
                let mid = 0.5 * (low + high);
                match mid < drawn(mid) {
                    true => low = mid,
                    false => high = mid,
                }
            }
            0.5 * (low + high)
        }
    };
    (0..roles.len()).map(|i| 1.0 / stretch(s, i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_streams_over_the_supply_share_it() {
        // Each role streams 6 GB/s of the 8 its thread reaches (f = 0.75); together 12 GB/s
        // against 10. By hand: 10 s (0.75 s + 0.25) = 12, so 7.5 s^2 + 2.5 s - 12 = 0,
        // s = (-2.5 + sqrt(366.25)) / 15 = 1.109180; contention 1 / (0.75 s + 0.25) = 0.924320.
        let role = Alone {
            demand_gbps: 6.0,
            own_gbps: 8.0,
            threads: 1,
        };
        let c = contention(&[role, role], 2, 10.0);
        for v in c {
            assert!((v - 0.924320).abs() < 1e-5, "{v}");
        }
    }

    #[test]
    fn streams_within_the_supply_cost_nothing_and_extra_threads_cost_compute() {
        let small = Alone {
            demand_gbps: 2.0,
            own_gbps: 8.0,
            threads: 1,
        };
        assert_eq!(contention(&[small, small], 2, 10.0), [1.0, 1.0]);
        // Three compute-bound roles of one thread on two cores: each gets 2/3 of a core.
        let compute = Alone {
            demand_gbps: 0.0,
            own_gbps: 8.0,
            threads: 1,
        };
        for v in contention(&[compute; 3], 2, 10.0) {
            assert!((v - 2.0 / 3.0).abs() < 1e-12, "{v}");
        }
    }
}
