//! Paired measurement of speedups: which accelerated launch gets a baseline server beside it,
//! in which order the two servers get their requests, and what became of the pairing. Pure
//! decisions; the loop that sends the requests is `execute`'s.
//!
//! An accelerated cell's speedup is measured against a baseline server of the same role and
//! slot count that is up at the same time (the **partner**): repetitions alternate between the
//! two servers, one request (batch) at a time, so each request has the machine to itself and a
//! slow phase of a shared machine slows both members of a pair. The speedup is the paired
//! ratio ([`crate::measure::paired_ratio_ci`]). The partner is the baseline launch itself, kept
//! up after its own cells while accelerated launches of its group follow, or launched again
//! (on `--resume`, or after it failed); when the memory guard says two servers do not fit, or
//! the partner fails, the cell is measured unpaired against the stored baseline and says so.

use super::plan::Launch;

/// The two servers of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The baseline server beside the cell's server.
    Partner,
    /// The server of the cell being measured.
    Own,
}

/// The order of pair `i`: partner first in even pairs, own server first in odd ones (A B B A
/// ...), so that a drift of the machine within a pair does not favour either side on average.
pub fn order(pair: usize) -> [Side; 2] {
    if pair.is_multiple_of(2) {
        [Side::Partner, Side::Own]
    } else {
        [Side::Own, Side::Partner]
    }
}

/// How an accelerated cell's speedup was measured.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Pairing {
    /// Not paired by design: a baseline cell, or a run without pairing (`--unpaired`).
    #[default]
    Off,
    /// (own decode t/s, partner decode t/s) of each complete pair, in order.
    Paired(Vec<(f64, f64)>),
    /// Pairing was wanted and was impossible (memory guard, partner failed); the text says why.
    /// Pairs completed before a partner failed are kept, but the speedup is unpaired.
    Unpaired(String),
}

impl Pairing {
    /// Number of pairs behind the speedup interval (the schema-3 `speedup_pairs`); `None`
    /// when the speedup came from separate launches.
    pub fn pair_count(&self) -> Option<u32> {
        match self {
            Pairing::Paired(pairs) => Some(pairs.len() as u32),
            _ => None,
        }
    }
}

/// The group a partner serves: one role with one slot count and thread count.
pub fn group(launch: &Launch) -> (usize, u32, u32) {
    (launch.role, launch.key.parallel, launch.key.threads)
}

/// Should the baseline server of launch `i` stay up as the partner of later launches? Yes
/// when a later launch of its group is accelerated and has a cell not yet done.
pub fn keep_as_partner(
    launches: &[Launch],
    i: usize,
    done: impl Fn(&super::plan::Cell) -> bool,
) -> bool {
    let this = &launches[i];
    this.key.mode.is_baseline()
        && launches[i + 1..].iter().any(|l| {
            group(l) == group(this) && !l.key.mode.is_baseline() && l.cells.iter().any(|c| !done(c))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::plan::{plan_launches, RoleCells};
    use crate::driver::workload::Workload;
    use crate::mode::Mode;

    #[test]
    fn pairs_alternate_which_server_goes_first() {
        let sequence: Vec<Side> = (0..4).flat_map(order).collect();
        use Side::*;
        assert_eq!(
            sequence,
            [Partner, Own, Own, Partner, Partner, Own, Own, Partner]
        );
    }

    #[test]
    fn a_baseline_stays_up_only_while_accelerated_launches_of_its_group_follow() {
        let role = |modes: Vec<Mode>, parallel: Vec<u32>| RoleCells {
            modes,
            workloads: vec![Workload::Chat],
            parallel,
            threads: vec![2],
            depths: vec![0],
        };
        let launches = plan_launches(
            &[
                role(vec![Mode::Baseline, Mode::Spec { k: 4 }], vec![1, 2]),
                role(vec![Mode::Baseline], vec![1]),
            ],
            false,
        );
        // target np=1 baseline, spec:4; target np=2 baseline, spec:4; draft baseline.
        let labels: Vec<String> = launches.iter().map(|l| l.key.label()).collect();
        assert_eq!(
            labels,
            [
                "baseline np=1 t=2",
                "spec:4 np=1 t=2",
                "baseline np=2 t=2",
                "spec:4 np=2 t=2",
                "baseline np=1 t=2"
            ]
        );
        let none_done = |_: &super::super::plan::Cell| false;
        let keep: Vec<bool> = (0..launches.len())
            .map(|i| keep_as_partner(&launches, i, none_done))
            .collect();
        assert_eq!(keep, [true, false, true, false, false]);
        let spec_done = |c: &super::super::plan::Cell| !c.mode.is_baseline();
        assert!(!keep_as_partner(&launches, 0, spec_done));
    }

    #[test]
    fn only_paired_speedups_count_pairs() {
        assert_eq!(Pairing::Off.pair_count(), None);
        assert_eq!(Pairing::Unpaired("x".into()).pair_count(), None);
        assert_eq!(
            Pairing::Paired(vec![(2.0, 1.0), (2.1, 1.0)]).pair_count(),
            Some(2)
        );
    }
}
