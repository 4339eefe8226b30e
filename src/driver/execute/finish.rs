//! Finishing a cell: its row built and written (and fsynced) the moment it ends, the
//! baseline it makes remembered, the pairing told. A cell whose server is launched several
//! times in a row (a baseline) waits for the last launch: the earlier launches' outcomes are
//! held here, and written with a note if the run ends first.

use super::{Executor, Pass, Pending, INTERRUPTED};
use crate::driver::backend::Backend;
use crate::driver::baselines::{Baseline, BaselineKey};
use crate::driver::cellrow;
use crate::driver::outcome::{self, CellOutcome};
use crate::driver::plan::Cell;
use crate::driver::resolve::ResolvedRole;
use crate::results::{CellKey, Status};

impl<B: Backend> Executor<'_, B> {
    /// Writes the cells whose later launches never ran (Ctrl-C, an error): what the earlier
    /// launches measured, with a note.
    pub(super) fn flush_pending(&mut self) -> anyhow::Result<()> {
        self.pass = Pass::ONLY;
        for p in std::mem::take(&mut self.pending) {
            let why = match self.interrupted() {
                true => INTERRUPTED,
                false => "the run ended first",
            };
            let outcome = outcome::merge_launches(
                p.outcome,
                CellOutcome::NotMeasured(Status::Interrupted, why.into()),
                self.settings.baseline_launches,
                p.cell.parallel as usize,
            );
            let role = &self.roles[p.cell.role];
            self.finish(role, &p.cell, outcome)?;
        }
        Ok(())
    }

    /// Records the cells a failed or interrupted launch did not reach.
    pub(super) fn abandon(&mut self, role: &ResolvedRole, rest: &[&Cell]) -> anyhow::Result<()> {
        let (status, why) = if self.interrupted() {
            (Status::Interrupted, INTERRUPTED)
        } else {
            (Status::Failed, "not run: the server of this launch failed")
        };
        self.finish_all(role, rest, || CellOutcome::NotMeasured(status, why.into()))
    }

    /// The same outcome for each of `cells`.
    pub(super) fn finish_all(
        &mut self,
        role: &ResolvedRole,
        cells: &[&Cell],
        outcome: impl Fn() -> CellOutcome,
    ) -> anyhow::Result<()> {
        cells
            .iter()
            .try_for_each(|cell| self.finish(role, cell, outcome()))
    }

    /// Writes the row of a finished cell and remembers baselines; before the last launch of
    /// its server, holds its outcome for the launches that follow.
    pub(super) fn finish(
        &mut self,
        role: &ResolvedRole,
        cell: &Cell,
        outcome: CellOutcome,
    ) -> anyhow::Result<()> {
        let key = self.key(role, cell);
        let earlier = self.pending.iter().position(|p| p.key == key);
        let outcome = match earlier {
            Some(i) => {
                let p = self.pending.remove(i);
                let launch = self.pass.index + 1;
                outcome::merge_launches(p.outcome, outcome, launch, cell.parallel as usize)
            }
            None => outcome,
        };
        if !self.pass.is_last() {
            self.hold(role, cell, key, outcome);
            return Ok(());
        }
        self.write_row(role, cell, &key, outcome)
    }

    /// Keeps the outcome of a launch that is not its cell's last, with a progress line.
    fn hold(&mut self, role: &ResolvedRole, cell: &Cell, key: CellKey, outcome: CellOutcome) {
        let so_far = match &outcome {
            CellOutcome::Measured(m) => m
                .metrics
                .decode
                .as_ref()
                .map_or("measured".into(), |d| format!("{:.1} t/s", d.mean)),
            CellOutcome::NotMeasured(status, _) => status.to_string(),
        };
        self.progress.line(format!(
            "{} {} {} np={}: launch {} of {}: {so_far}",
            role.role.name,
            cell.mode,
            cell.workload,
            cell.parallel,
            self.pass.index + 1,
            self.pass.of
        ));
        self.pending.push(Pending {
            key,
            cell: cell.clone(),
            outcome,
        });
    }

    /// The row of a cell: built against its baseline, written, shown; a measured baseline
    /// becomes the baseline of the cells that follow; then the pairing finishes the cell.
    fn write_row(
        &mut self,
        role: &ResolvedRole,
        cell: &Cell,
        key: &CellKey,
        outcome: CellOutcome,
    ) -> anyhow::Result<()> {
        let baseline_key = BaselineKey::of(cell);
        let baseline = self.baselines.get(&baseline_key);
        let mut row = cellrow::build(self.settings, role, cell, key, &outcome, baseline);
        (row.launch_to_ready_ms, row.server_load_ms) = self.startup_ms;
        if let (true, CellOutcome::Measured(m)) = (cell.mode.is_baseline(), &outcome) {
            self.baselines.insert(baseline_key.clone(), Baseline::of(m));
        }
        self.writer
            .push(&row)
            .map_err(|e| anyhow::anyhow!("writing the results: {e}"))?;
        self.progress.cell_done(cellrow::one_line(&row));
        self.rows.push(row);
        self.pairing.finish(role, cell, &outcome, baseline_key)
    }
}
