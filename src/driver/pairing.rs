//! Paired measurement of speedups, as a policy the run loop is handed: whether a launch gets
//! a server beside it (the **partner**) and how that one is launched, in which order the two
//! servers get their requests, what a cell's pairs mean, and what finishing a cell involves
//! beyond its own row. Pure decisions; the loop that sends the requests is `execute`'s.
//!
//! [`RunPairing`] is `bench run`'s: an accelerated cell's speedup is measured against a
//! baseline server of the same role and slot count that is up at the same time:
//! repetitions alternate between the two servers, one request (batch) at a time, so each
//! request has the machine to itself and a slow phase of a shared machine slows both members
//! of a pair. The speedup is the paired ratio ([`crate::measure::paired_ratio_ci`]). The
//! partner is the baseline launch itself, kept up after its own cells while accelerated
//! launches of its group follow, or launched again (on `--resume`, or after it failed); when
//! the memory guard says two servers do not fit, or the partner fails, the cell is measured
//! unpaired against the stored baseline and says so. `bench ab` hands the loop its own
//! policy (`ab/pairing.rs`): the loop itself knows neither command.

use super::baselines::BaselineKey;
use super::outcome::{CellOutcome, Measured, Pairing};
use super::plan::{Cell, Launch, LaunchKey};
use super::resolve::ResolvedRole;
use super::settings::RunSettings;
use crate::mode::Mode;
use crate::results::{CellKey, RawRepetition, ResultWriter};

/// The two servers of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The server beside the cell's server (a baseline, or side A of `bench ab`).
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

/// The group a partner serves: one role with one slot count and thread count.
pub type Group = (usize, u32, u32);

/// The group a partner serves: one role with one slot count and thread count.
pub fn group(launch: &Launch) -> Group {
    (launch.role, launch.key.parallel, launch.key.threads)
}

/// Should the baseline server of launch `i` stay up as the partner of later launches? Yes
/// when a later launch of its group is accelerated and has a cell not yet done.
pub fn keep_as_partner(launches: &[Launch], i: usize, done: impl Fn(&Cell) -> bool) -> bool {
    let this = &launches[i];
    this.key.mode.is_baseline()
        && launches[i + 1..].iter().any(|l| {
            group(l) == group(this) && !l.key.mode.is_baseline() && l.cells.iter().any(|c| !done(c))
        })
}

/// The pairs of one cell, as the loop measured them.
pub struct PairedCell<'k> {
    /// The key of the cell's own row.
    pub key: &'k CellKey,
    /// (own decode t/s, partner decode t/s) of each complete pair, in order.
    pub pairs: Vec<(f64, f64)>,
    /// Why the partner failed (the first line), when it did: the cell then finished on its
    /// own server.
    pub lost: Option<String>,
    /// The partner's half of the pairs.
    pub partner: Measured,
}

/// What a policy makes of a cell's pairs.
pub struct PairVerdict {
    /// How the cell's speedup was measured, for its row.
    pub pairing: Pairing,
    /// Whether the partner was an idle bystander whose CPU time during the cell's requests
    /// the row records and the progress reports.
    pub idle_cost: bool,
}

/// The decisions the run loop leaves to its pairing: asked at each launch, partner, pair
/// and cell. Object-safe, so the loop takes any policy as `&mut dyn PairingPolicy`.
pub trait PairingPolicy {
    /// How many launches in a row the server of `key` gets (their repetitions pool).
    fn launches_of(&self, key: &LaunchKey) -> u32;

    /// Should the server of launch `i`, once its own cells are measured, stay up as the
    /// partner of the launches that follow? `done` says which cells need no measuring.
    fn keep_as_partner(&self, launches: &[Launch], i: usize, done: &dyn Fn(&Cell) -> bool) -> bool;

    /// Can the partner that is up (serving `group`) serve `launch` too? If not it is
    /// stopped before `launch` starts.
    fn partner_serves(&self, group: Group, launch: &Launch) -> bool;

    /// Is the partner stopped as soon as the launch it served ends?
    fn partner_per_launch(&self) -> bool;

    /// The launch key of the partner of a launch of `key`; `None`: no partner.
    fn partner_key(&self, key: &LaunchKey) -> Option<LaunchKey>;

    /// The cell the partner serves beside `cell`.
    fn partner_cell(&self, cell: &Cell) -> Cell;

    /// The settings of the partner's side (its server arguments, its rows' keys); `None`:
    /// the loop's own.
    fn partner_settings(&self) -> Option<&RunSettings>;

    /// Which server goes first in pair `pair`.
    fn order(&self, pair: usize) -> [Side; 2] {
        order(pair)
    }

    /// Records one raw line of the partner's half of a pair (`own` is the loop's file); the
    /// error is the reason the cell fails with.
    fn partner_line(
        &mut self,
        line: &mut RawRepetition,
        own: &mut ResultWriter,
    ) -> Result<(), String>;

    /// What a cell's pairs mean.
    fn conclude(&mut self, cell: PairedCell) -> PairVerdict;

    /// Called once a cell's own row is written (its baseline is the one of `baseline`).
    fn finish(
        &mut self,
        role: &ResolvedRole,
        cell: &Cell,
        outcome: &CellOutcome,
        baseline: BaselineKey,
    ) -> anyhow::Result<()>;
}

/// `bench run`'s pairing: a baseline server beside every accelerated launch of its group
/// (unless `--unpaired`), and every baseline launched `--baseline-launches` times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunPairing {
    /// Pair accelerated cells with a baseline server beside them.
    pub pair: bool,
    /// Launches of every baseline cell's server, one after the other.
    pub baseline_launches: u32,
}

impl RunPairing {
    /// The pairing the settings ask for.
    pub fn of(settings: &RunSettings) -> RunPairing {
        RunPairing {
            pair: settings.pair,
            baseline_launches: settings.baseline_launches,
        }
    }
}

impl PairingPolicy for RunPairing {
    fn launches_of(&self, key: &LaunchKey) -> u32 {
        // The launch-to-launch variation of a baseline: its rows wait for the last launch,
        // which stays up as the partner.
        match key.mode.is_baseline() {
            true => self.baseline_launches.max(1),
            false => 1,
        }
    }

    fn keep_as_partner(&self, launches: &[Launch], i: usize, done: &dyn Fn(&Cell) -> bool) -> bool {
        self.pair && keep_as_partner(launches, i, done)
    }

    fn partner_serves(&self, partner: Group, launch: &Launch) -> bool {
        partner == group(launch)
    }

    fn partner_per_launch(&self) -> bool {
        false
    }

    fn partner_key(&self, key: &LaunchKey) -> Option<LaunchKey> {
        if key.mode.is_baseline() || !self.pair {
            return None;
        }
        let base = LaunchKey::for_cell(&Mode::Baseline, key.parallel, false);
        Some(base.at_threads(key.threads))
    }

    fn partner_cell(&self, cell: &Cell) -> Cell {
        Cell {
            mode: Mode::Baseline,
            ..cell.clone()
        }
    }

    fn partner_settings(&self) -> Option<&RunSettings> {
        None
    }

    /// The baseline's lines go under the cell's own key in the run's file, flagged.
    fn partner_line(
        &mut self,
        line: &mut RawRepetition,
        own: &mut ResultWriter,
    ) -> Result<(), String> {
        line.partner = true;
        own.push_raw(line)
            .map_err(|e| format!("writing raw repetitions: {e}"))
    }

    fn conclude(&mut self, cell: PairedCell) -> PairVerdict {
        let pairing = match cell.lost {
            None => Pairing::Paired(cell.pairs),
            Some(why) => Pairing::Unpaired(format!(
                "unpaired: the baseline server beside it failed after {} pairs: {why}",
                cell.pairs.len()
            )),
        };
        PairVerdict {
            pairing,
            idle_cost: true,
        }
    }

    fn finish(
        &mut self,
        _: &ResolvedRole,
        _: &Cell,
        _: &CellOutcome,
        _: BaselineKey,
    ) -> anyhow::Result<()> {
        Ok(())
    }
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
        let none_done = |_: &Cell| false;
        let keep: Vec<bool> = (0..launches.len())
            .map(|i| keep_as_partner(&launches, i, none_done))
            .collect();
        assert_eq!(keep, [true, false, true, false, false]);
        let spec_done = |c: &Cell| !c.mode.is_baseline();
        assert!(!keep_as_partner(&launches, 0, spec_done));
    }
}
