//! The A side of `bench ab`, and the pairing policy it hands the run loop: every launch
//! of B gets an A server beside it (the same launch configuration, A's engine and server
//! arguments), stopped when that launch ends; the pairs of a cell give B / A; finishing a
//! cell writes A's row into A's file, from A's half of the pairs.

use crate::driver::baselines::{Baseline, BaselineKey, Baselines};
use crate::driver::cellrow;
use crate::driver::outcome::{CellOutcome, Measured, Pairing};
use crate::driver::pairing::{Group, PairVerdict, PairedCell, PairingPolicy};
use crate::driver::plan::{Cell, Launch, LaunchKey};
use crate::driver::resolve::ResolvedRole;
use crate::driver::settings::RunSettings;
use crate::measure::{self, RatioCi};
use crate::results::{CellKey, RawRepetition, ResultRow, ResultWriter, Status};

/// B / A of one cell, over its pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct AbRatio {
    /// B's cell key.
    pub key: CellKey,
    /// Paired ratio of decode t/s, B over A, with its 95% interval.
    pub ci: RatioCi,
    /// Pairs behind it.
    pub pairs: u32,
}

/// The A side of `bench ab` inside the run loop: its settings (engine stamp, server
/// arguments), its results file, its baselines, and every cell's B / A ratio.
pub struct AbSide<'a> {
    /// A's settings.
    pub settings: &'a RunSettings,
    writer: &'a mut ResultWriter,
    baselines: Baselines,
    /// A's measurements of the cell being finished (`Err`: the A server failed).
    pending: Option<Result<Measured, String>>,
    /// B / A of every paired cell.
    pub ratios: Vec<AbRatio>,
    /// A's rows, in the order of B's.
    pub rows: Vec<ResultRow>,
}

impl<'a> AbSide<'a> {
    /// The A side writing to `writer`.
    pub fn new(settings: &'a RunSettings, writer: &'a mut ResultWriter) -> Self {
        AbSide {
            settings,
            writer,
            baselines: Baselines::default(),
            pending: None,
            ratios: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// A's rows and every cell's B / A, once the run is over.
    pub fn into_results(self) -> (Vec<ResultRow>, Vec<AbRatio>) {
        (self.rows, self.ratios)
    }

    /// Writes one raw line of A's.
    fn push_raw(&mut self, line: &RawRepetition) -> Result<(), String> {
        self.writer
            .push_raw(line)
            .map_err(|e| format!("writing raw repetitions of side A: {e}"))
    }

    /// A's row of the cell B just finished: measured when B was and A's half of the pairs is
    /// there, else B's status and reason (or A's failure).
    fn finish_a(
        &mut self,
        role: &ResolvedRole,
        cell: &Cell,
        b: &CellOutcome,
        baseline_key: BaselineKey,
    ) -> anyhow::Result<()> {
        let outcome = match (b, self.pending.take()) {
            (CellOutcome::Measured(_), Some(Ok(m))) => CellOutcome::Measured(Box::new(m)),
            (CellOutcome::Measured(_), Some(Err(why))) => {
                CellOutcome::NotMeasured(Status::Failed, format!("the A server failed: {why}"))
            }
            (CellOutcome::Measured(_), None) => CellOutcome::NotMeasured(
                Status::Skipped,
                "no A server beside this cell (the B row says why)".into(),
            ),
            (CellOutcome::NotMeasured(status, why), _) => {
                CellOutcome::NotMeasured(*status, why.clone())
            }
        };
        let key = cellrow::key(self.settings, role, cell);
        let baseline = self.baselines.get(&baseline_key);
        let row = cellrow::build(self.settings, role, cell, &key, &outcome, baseline);
        if let (true, CellOutcome::Measured(m)) = (cell.mode.is_baseline(), &outcome) {
            self.baselines.insert(baseline_key, Baseline::of(m));
        }
        self.writer
            .push(&row)
            .map_err(|e| anyhow::anyhow!("writing the results of side A: {e}"))?;
        self.rows.push(row);
        Ok(())
    }
}

impl PairingPolicy for AbSide<'_> {
    fn launches_of(&self, _: &LaunchKey) -> u32 {
        1
    }

    fn keep_as_partner(&self, _: &[Launch], _: usize, _: &dyn Fn(&Cell) -> bool) -> bool {
        false
    }

    /// A new A server beside every launch: the one up is never reused.
    fn partner_serves(&self, _: Group, _: &Launch) -> bool {
        false
    }

    fn partner_per_launch(&self) -> bool {
        true
    }

    fn partner_key(&self, key: &LaunchKey) -> Option<LaunchKey> {
        Some(key.clone())
    }

    fn partner_cell(&self, cell: &Cell) -> Cell {
        cell.clone()
    }

    fn partner_settings(&self) -> Option<&RunSettings> {
        Some(self.settings)
    }

    /// A's lines are A's own, in A's file.
    fn partner_line(
        &mut self,
        line: &mut RawRepetition,
        _: &mut ResultWriter,
    ) -> Result<(), String> {
        self.push_raw(line)
    }

    /// B's measurements keep their speedup against B's own baseline (as in a run without
    /// pairing); A's half waits for A's row; B / A over the pairs, when none was lost.
    fn conclude(&mut self, cell: PairedCell) -> PairVerdict {
        let (b, a): (Vec<f64>, Vec<f64>) = cell.pairs.iter().copied().unzip();
        let ratio = measure::paired_ratio_ci(&b, &a)
            .ok()
            .filter(|_| cell.lost.is_none());
        if let Some(ci) = ratio {
            self.ratios.push(AbRatio {
                key: cell.key.clone(),
                ci,
                pairs: cell.pairs.len() as u32,
            });
        }
        self.pending = Some(match &cell.lost {
            None => Ok(cell.partner),
            Some(why) => Err(why.clone()),
        });
        // A lost A server is stopped by the loop, which looks for `Unpaired`.
        let pairing = match cell.lost {
            None => Pairing::Off,
            Some(why) => Pairing::Unpaired(format!(
                "the A server beside it failed after {} pairs: {why}",
                cell.pairs.len()
            )),
        };
        PairVerdict {
            pairing,
            idle_cost: false,
        }
    }

    fn finish(
        &mut self,
        role: &ResolvedRole,
        cell: &Cell,
        outcome: &CellOutcome,
        baseline: BaselineKey,
    ) -> anyhow::Result<()> {
        self.finish_a(role, cell, outcome, baseline)
    }
}
