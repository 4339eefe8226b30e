//! Turns a profile's roles into cells (model, mode, workload, parallel slots, threads,
//! depth) and groups the cells into launches: one llama-server process per distinct launch
//! configuration.
//!
//! What the engine honours per request is varied over one server (the workload, the depth
//! of context before decoding); everything else is part of the launch (slots, threads). In the pinned build the draft length is launch-level (the request fields
//! are compiled out), so `spec:4` and `spec:16` need two launches; where a probe shows the
//! server honours `speculative.n_max` per request, they share one.

use super::workload::Workload;
use crate::mode::Mode;

/// The draft length a speculative server is launched with when requests set their own
/// (`speculative.n_max` per request, where the engine honours it).
pub const PER_REQUEST_DRAFT_N_MAX: u32 = 16;

/// What distinguishes one server launch from another for the same role: the part of the
/// cells' mode the server fixes at launch, and its slots.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LaunchKey {
    /// The mode the server is launched with, in launch order (draft, lookup with its type,
    /// experts); a per-request draft length is launched at [`PER_REQUEST_DRAFT_N_MAX`].
    pub mode: Mode,
    /// Server slots (`-np`).
    pub parallel: u32,
    /// Server threads (`-t`).
    pub threads: u32,
}

impl LaunchKey {
    /// The launch a cell of `mode` with `parallel` slots needs (at `threads` threads, which
    /// [`LaunchKey::at_threads`] sets).
    pub fn for_cell(mode: &Mode, parallel: u32, per_request_spec_k: bool) -> LaunchKey {
        let mut parts: Vec<Mode> = mode
            .parts()
            .iter()
            .filter_map(|part| launched(part, per_request_spec_k))
            .collect();
        // Launch order is the mode table's kind order (spec, lookup, moe).
        parts.sort_by_key(Mode::kind);
        LaunchKey {
            mode: Mode::from_parts(parts),
            parallel,
            threads: 0,
        }
    }

    /// The same launch at `threads` threads.
    pub fn at_threads(self, threads: u32) -> LaunchKey {
        LaunchKey { threads, ..self }
    }

    /// `spec:16+lookup:ngram-simple np=2 t=4`: the launch's label in logs and progress.
    pub fn label(&self) -> String {
        format!("{} np={} t={}", self.mode, self.parallel, self.threads)
    }
}

/// What a server fixes at launch of one part of a cell's mode (`None`: nothing, for
/// `baseline`). One arm per variant, so that a new kind does not compile until it says how
/// it is launched, instead of silently launching as a baseline.
fn launched(part: &Mode, per_request_spec_k: bool) -> Option<Mode> {
    match part {
        Mode::Baseline => None,
        Mode::Spec { k } => Some(Mode::Spec {
            k: if per_request_spec_k {
                PER_REQUEST_DRAFT_N_MAX
            } else {
                *k
            },
        }),
        // Spelt out: `lookup` and `lookup:ngram-simple` are one server.
        Mode::Lookup { .. } => Some(Mode::Lookup {
            spec_type: part.lookup_type().map(str::to_string),
        }),
        Mode::Moe { n } => Some(Mode::Moe { n: *n }),
        Mode::Combo(_) => unreachable!("a mode's parts are never combinations"),
    }
}

/// One measured cell of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Index of the role in the run's role list.
    pub role: usize,
    /// The mode (`moe:4+spec:16`).
    pub mode: Mode,
    /// The workload.
    pub workload: Workload,
    /// Concurrent requests (and server slots).
    pub parallel: u32,
    /// Server threads.
    pub threads: u32,
    /// Tokens in the context before decode is measured.
    pub depth: u32,
}

/// One server launch and the cells measured on it, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    /// Index of the role in the run's role list.
    pub role: usize,
    /// The launch configuration.
    pub key: LaunchKey,
    /// Cells measured on this server.
    pub cells: Vec<Cell>,
}

/// The modes, workloads and slot counts of one role, ready to be planned.
#[derive(Debug, Clone)]
pub struct RoleCells {
    /// Modes, in profile order.
    pub modes: Vec<Mode>,
    /// Workloads to run.
    pub workloads: Vec<Workload>,
    /// Slot counts to run.
    pub parallel: Vec<u32>,
    /// Server thread counts to run, each its own launch.
    pub threads: Vec<u32>,
    /// Context depths to measure at, each its own cell on the same server.
    pub depths: Vec<u32>,
}

/// Plans the launches of every role. Baseline launches come first within a role's slot
/// count and thread count, so an accelerated cell always finds its baseline (speedup,
/// lossless) already measured.
pub fn plan_launches(roles: &[RoleCells], per_request_spec_k: bool) -> Vec<Launch> {
    let mut launches: Vec<Launch> = Vec::new();
    for (role_idx, role) in roles.iter().enumerate() {
        let mut modes = role.modes.clone();
        modes.sort_by_key(|mode| !mode.is_baseline());
        for &parallel in &role.parallel {
            for &threads in &role.threads {
                for mode in &modes {
                    let key =
                        LaunchKey::for_cell(mode, parallel, per_request_spec_k).at_threads(threads);
                    let cells = cells_of(role, role_idx, mode, parallel, threads);
                    match launches
                        .iter_mut()
                        .find(|l| l.role == role_idx && l.key == key)
                    {
                        Some(launch) => launch.cells.extend(cells),
                        None => launches.push(Launch {
                            role: role_idx,
                            key,
                            cells,
                        }),
                    }
                }
            }
        }
    }
    launches
}

/// The cells of one mode on one launch: every workload at every depth.
fn cells_of(role: &RoleCells, idx: usize, mode: &Mode, parallel: u32, threads: u32) -> Vec<Cell> {
    let mut cells = Vec::new();
    for &workload in &role.workloads {
        for &depth in &role.depths {
            cells.push(Cell {
                role: idx,
                mode: mode.clone(),
                workload,
                parallel,
                threads,
                depth,
            });
        }
    }
    cells
}

/// After the probe found per-request draft lengths, the launches after `done_up_to` are
/// planned again so that `spec:K` cells share one server; cells already run stay out.
pub fn replan(cell_sets: &[RoleCells], launches: &[Launch], done_up_to: usize) -> Vec<Launch> {
    let mut out: Vec<Launch> = launches[..=done_up_to].to_vec();
    let ran: Vec<&Cell> = out.iter().flat_map(|l| &l.cells).collect();
    let mut rest = plan_launches(cell_sets, true);
    for l in &mut rest {
        l.cells.retain(|c| !ran.contains(&c));
    }
    rest.retain(|l| !l.cells.is_empty());
    out.extend(rest);
    out
}

/// Number of cells over all launches.
pub fn cell_count(launches: &[Launch]) -> usize {
    launches.iter().map(|l| l.cells.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role() -> RoleCells {
        RoleCells {
            modes: vec![Mode::Spec { k: 4 }, Mode::Baseline, Mode::Spec { k: 16 }],
            workloads: vec![Workload::Chat, Workload::CodeEdit],
            parallel: vec![1],
            threads: vec![2],
            depths: vec![0],
        }
    }

    #[test]
    fn two_thread_counts_and_two_depths_make_four_cells_on_two_launches_per_mode() {
        let r = RoleCells {
            modes: vec![Mode::Baseline],
            workloads: vec![Workload::Chat],
            parallel: vec![1],
            threads: vec![1, 2],
            depths: vec![0, 4096],
        };
        let launches = plan_launches(&[r], false);
        // Threads are a launch option (-t); the depth is a per-request prompt.
        assert_eq!(launches.len(), 2);
        assert_eq!(cell_count(&launches), 4);
        let cells: Vec<(u32, u32)> = launches
            .iter()
            .flat_map(|l| l.cells.iter().map(|c| (c.threads, c.depth)))
            .collect();
        assert_eq!(cells, [(1, 0), (1, 4096), (2, 0), (2, 4096)]);
        assert!(launches
            .iter()
            .all(|l| l.cells.iter().all(|c| c.threads == l.key.threads)));
        assert_eq!(launches[1].key.label(), "baseline np=1 t=2");
    }

    #[test]
    fn every_thread_count_measures_its_baseline_before_its_accelerated_modes() {
        let mut r = role();
        r.threads = vec![1, 2];
        let launches = plan_launches(&[r], false);
        assert_eq!(launches.len(), 6);
        for threads in [1, 2] {
            let of: Vec<&Launch> = launches
                .iter()
                .filter(|l| l.key.threads == threads)
                .collect();
            assert!(of[0].key.mode.is_baseline(), "{:?}", of[0].key);
        }
    }

    #[test]
    fn draft_length_is_a_launch_option_unless_the_server_honours_it_per_request() {
        let launch_level = plan_launches(&[role()], false);
        assert_eq!(launch_level.len(), 3);
        assert_eq!(cell_count(&launch_level), 6);
        let per_request = plan_launches(&[role()], true);
        assert_eq!(per_request.len(), 2, "spec:4 and spec:16 share a server");
        assert_eq!(cell_count(&per_request), 6);
    }

    #[test]
    fn baseline_runs_first() {
        let launches = plan_launches(&[role()], false);
        assert!(launches[0].cells.iter().all(|c| c.mode.is_baseline()));
        assert_eq!(launches[1].cells[0].mode, "spec:4");
    }

    #[test]
    fn each_slot_count_is_its_own_launch() {
        let mut r = role();
        r.parallel = vec![1, 2];
        let launches = plan_launches(&[r], false);
        assert_eq!(launches.len(), 6);
        assert!(launches
            .iter()
            .all(|l| l.cells.iter().all(|c| c.parallel == l.key.parallel)));
    }

    #[test]
    fn a_launch_is_labelled_in_launch_order_with_the_lookup_type_spelt_out() {
        let mode: Mode = "moe:4+lookup+spec:8".parse().unwrap();
        let key = LaunchKey::for_cell(&mode, 2, false);
        assert_eq!(
            key.clone().at_threads(4).label(),
            "spec:8+lookup:ngram-simple+moe:4 np=2 t=4"
        );
        let shared = LaunchKey::for_cell(&"spec:4".parse().unwrap(), 1, true);
        assert_eq!(shared.mode, Mode::Spec { k: 16 });
        let bare = LaunchKey::for_cell(&"lookup".parse().unwrap(), 1, false);
        let typed = LaunchKey::for_cell(&"lookup:ngram-simple".parse().unwrap(), 1, false);
        assert_eq!(bare, typed, "the same server");
        assert_eq!(
            LaunchKey::for_cell(&Mode::Baseline, 1, false)
                .at_threads(2)
                .label(),
            "baseline np=1 t=2"
        );
    }
}
