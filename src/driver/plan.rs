//! Turns a profile's roles into cells (model, mode, workload, parallel slots) and groups the
//! cells into launches: one llama-server process per distinct launch configuration.
//!
//! What the engine honours per request is varied over one server; everything else is part
//! of the launch. In the pinned build the draft length is launch-level (the request fields
//! are compiled out), so `spec:4` and `spec:16` need two launches; where a probe shows the
//! server honours `speculative.n_max` per request, they share one.

use super::workload::Workload;

/// The acceleration settings of one mode, whatever combination it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModeParts {
    /// Drafted tokens per step with the role's draft model (`spec:K`).
    pub spec_k: Option<u32>,
    /// N-gram speculation type (`lookup[:TYPE]`).
    pub lookup: Option<String>,
    /// Experts used per token (`moe:N`).
    pub moe_experts: Option<u32>,
}

impl ModeParts {
    /// True for the plain baseline mode.
    pub fn is_baseline(&self) -> bool {
        *self == ModeParts::default()
    }

    /// True when the mode drafts tokens (draft model or n-gram lookup).
    pub fn is_speculative(&self) -> bool {
        self.spec_k.is_some() || self.lookup.is_some()
    }
}

/// What distinguishes one server launch from another for the same role.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LaunchKey {
    /// Draft length when it is a launch option; `None` also when no draft model is used.
    pub spec_k: Option<u32>,
    /// Whether the draft model is loaded at all.
    pub draft: bool,
    /// N-gram speculation type.
    pub lookup: Option<String>,
    /// Experts used per token.
    pub moe_experts: Option<u32>,
    /// Server slots (`-np`).
    pub parallel: u32,
}

/// One measured cell of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Index of the role in the run's role list.
    pub role: usize,
    /// The mode as the profile spells it (`moe:4+spec:16`).
    pub mode_label: String,
    /// The mode's settings.
    pub parts: ModeParts,
    /// The workload.
    pub workload: Workload,
    /// Concurrent requests (and server slots).
    pub parallel: u32,
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
    /// Mode labels with their settings, in profile order.
    pub modes: Vec<(String, ModeParts)>,
    /// Workloads to run.
    pub workloads: Vec<Workload>,
    /// Slot counts to run.
    pub parallel: Vec<u32>,
}

/// Plans the launches of every role. Baseline launches come first within a role, so an
/// accelerated cell always finds its baseline (speedup, lossless) already measured.
pub fn plan_launches(roles: &[RoleCells], per_request_spec_k: bool) -> Vec<Launch> {
    let mut launches: Vec<Launch> = Vec::new();
    for (role_idx, role) in roles.iter().enumerate() {
        let mut modes = role.modes.clone();
        modes.sort_by_key(|(_, parts)| !parts.is_baseline());
        for &parallel in &role.parallel {
            for (label, parts) in &modes {
                let key = launch_key(parts, parallel, per_request_spec_k);
                let cells = role.workloads.iter().map(|&workload| Cell {
                    role: role_idx,
                    mode_label: label.clone(),
                    parts: parts.clone(),
                    workload,
                    parallel,
                });
                match launches
                    .iter_mut()
                    .find(|l| l.role == role_idx && l.key == key)
                {
                    Some(launch) => launch.cells.extend(cells),
                    None => launches.push(Launch {
                        role: role_idx,
                        key,
                        cells: cells.collect(),
                    }),
                }
            }
        }
    }
    launches
}

fn launch_key(parts: &ModeParts, parallel: u32, per_request_spec_k: bool) -> LaunchKey {
    LaunchKey {
        spec_k: if per_request_spec_k {
            None
        } else {
            parts.spec_k
        },
        draft: parts.spec_k.is_some(),
        lookup: parts.lookup.clone(),
        moe_experts: parts.moe_experts,
        parallel,
    }
}

/// Number of cells over all launches.
pub fn cell_count(launches: &[Launch]) -> usize {
    launches.iter().map(|l| l.cells.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(k: u32) -> ModeParts {
        ModeParts {
            spec_k: Some(k),
            ..Default::default()
        }
    }

    fn role() -> RoleCells {
        RoleCells {
            modes: vec![
                ("spec:4".into(), spec(4)),
                ("baseline".into(), ModeParts::default()),
                ("spec:16".into(), spec(16)),
            ],
            workloads: vec![Workload::Chat, Workload::CodeEdit],
            parallel: vec![1],
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
        assert!(launches[0].cells.iter().all(|c| c.parts.is_baseline()));
        assert_eq!(launches[1].cells[0].mode_label, "spec:4");
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
}
