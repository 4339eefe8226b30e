//! What the run loop records: the raw line of every request, and each cell's row built and
//! written (and fsynced) the moment the cell ends, the baseline it makes remembered, the
//! pairing told. A cell whose server is launched several times in a row (a baseline) waits
//! for the last launch: the earlier launches' outcomes are held here, and written with a note
//! if the run ends first. The [`Recorder`] is the loop's only way to its results file.

use crate::driver::baselines::{Baseline, BaselineKey, Baselines};
use crate::driver::cellrow;
use crate::driver::outcome::{self, CellOutcome};
use crate::driver::pairing::PairingPolicy;
use crate::driver::plan::Cell;
use crate::driver::progress::Progress;
use crate::driver::resolve::ResolvedRole;
use crate::driver::settings::RunSettings;
use crate::results::{CellKey, RawRepetition, ResultRow, ResultWriter, Status};

/// The reason of a cell that Ctrl-C ended.
pub(super) const INTERRUPTED: &str = "interrupted (Ctrl-C)";

/// The launch number of the current server among the launches of its cells.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Pass {
    /// 0-based.
    pub(super) index: u32,
    /// How many launches its cells get.
    pub(super) of: u32,
}

impl Pass {
    /// The only launch of its cells.
    pub(super) const ONLY: Pass = Pass { index: 0, of: 1 };

    /// Whether the cells' rows are written after this launch.
    fn is_last(self) -> bool {
        self.index + 1 >= self.of
    }
}

/// A cell's outcome from the earlier launches of its server.
struct Pending {
    key: CellKey,
    cell: Cell,
    outcome: CellOutcome,
}

/// The results of a run as they are written, and what finishing a cell needs.
pub(super) struct Recorder<'a> {
    settings: &'a RunSettings,
    roles: &'a [ResolvedRole],
    progress: &'a Progress,
    pub(super) writer: &'a mut ResultWriter,
    /// The pairing policy, told of every finished cell (and asked by the loop).
    pub(super) pairing: &'a mut dyn PairingPolicy,
    /// Baselines measured so far, and their reference probabilities.
    pub(super) baselines: Baselines,
    /// Rows written by this run, in order.
    pub(super) rows: Vec<ResultRow>,
    /// Launch-to-ready and the server's own model-load time of the current launch (ms).
    pub(super) startup_ms: (Option<f64>, Option<f64>),
    /// Which launch of its cells the current server is (a baseline is launched
    /// `baseline_launches` times in a row).
    pub(super) pass: Pass,
    /// Outcomes of baseline cells from the earlier launches of the current baseline launch,
    /// waiting for its last launch; written with one launch fewer if the run ends first.
    pending: Vec<Pending>,
}

impl<'a> Recorder<'a> {
    /// A recorder writing to `writer`, telling `pairing` of every finished cell.
    pub(super) fn new(
        settings: &'a RunSettings,
        roles: &'a [ResolvedRole],
        progress: &'a Progress,
        writer: &'a mut ResultWriter,
        pairing: &'a mut dyn PairingPolicy,
    ) -> Self {
        Recorder {
            settings,
            roles,
            progress,
            writer,
            pairing,
            baselines: Baselines::default(),
            rows: Vec::new(),
            startup_ms: (None, None),
            pass: Pass::ONLY,
            pending: Vec::new(),
        }
    }

    /// The key of `cell`'s own row.
    pub(super) fn key(&self, role: &ResolvedRole, cell: &Cell) -> CellKey {
        cellrow::key(self.settings, role, cell)
    }

    /// The raw lines' `rep` of the first batch of the cell of `key` on this launch: the
    /// batches of its earlier launches.
    pub(super) fn rep_offset(&self, key: &CellKey) -> u32 {
        self.pending
            .iter()
            .find(|p| &p.key == key)
            .map_or(0, |p| match &p.outcome {
                CellOutcome::Measured(m) => m.batches,
                CellOutcome::NotMeasured(..) => 0,
            })
    }

    /// Writes one raw line; the error is the reason the launch ends with.
    pub(super) fn push_raw(&mut self, line: &RawRepetition) -> Result<(), String> {
        self.writer
            .push_raw(line)
            .map_err(|e| format!("writing raw repetitions: {e}"))
    }

    /// Writes the cells whose later launches never ran (Ctrl-C, an error): what the earlier
    /// launches measured, with a note.
    pub(super) fn flush_pending(&mut self, interrupted: bool) -> anyhow::Result<()> {
        self.pass = Pass::ONLY;
        for p in std::mem::take(&mut self.pending) {
            let why = match interrupted {
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
    pub(super) fn abandon(
        &mut self,
        role: &ResolvedRole,
        rest: &[&Cell],
        interrupted: bool,
    ) -> anyhow::Result<()> {
        let (status, why) = if interrupted {
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
