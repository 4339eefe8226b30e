//! A deployment's plan, made before anything starts: which roles are launched (the chosen
//! tiers; a draft role rides in its target's server), each one's server (its deployed mode,
//! slots, threads and CPUs), the load it is served under, and the memory check of the whole
//! set, which names the role to drop in the guide's Scaling Down order when the set does not
//! fit.

use super::args::{DeployConfig, DEFAULT_PHASE};
use crate::driver::guard::{self, SetMember};
use crate::driver::launch;
use crate::driver::load::{Bounds, Pattern};
use crate::driver::plan::LaunchKey;
use crate::driver::resolve::ResolvedRole;
use crate::driver::serve::LoadPlan;
use crate::driver::workload::Workload;
use crate::hardware::CpuSet;
use crate::profile::RoleKind;
use std::time::Duration;

/// One server of the deployment.
#[derive(Debug, Clone)]
pub struct Member<'a> {
    pub role: &'a ResolvedRole,
    /// The deployed mode, the slots and the threads.
    pub key: LaunchKey,
    /// The CPUs it is confined to.
    pub cpus: Option<CpuSet>,
    /// The one load point it is served under, with its bounds, seed, SLO and mix.
    pub load: LoadPlan,
    /// The machine's read bandwidth with as many readers as it has threads (GB/s).
    pub bandwidth_gbps: Option<f64>,
}

impl Member<'_> {
    /// The role's name.
    pub fn name(&self) -> &str {
        &self.role.role.name
    }

    /// The memory this server needs, and the files it maps.
    fn set_member(&self) -> SetMember<'_> {
        let draft = self
            .role
            .draft
            .as_ref()
            .filter(|_| self.key.mode.needs_draft());
        SetMember {
            need: launch::memory_need(self.role, &self.key),
            model: &self.role.model.path,
            draft: draft.map(|d| d.path.as_path()),
        }
    }
}

/// The roles of the chosen tiers that get a server of their own, in profile order: a draft
/// role is loaded by its target's server, and a role without its model file cannot be
/// deployed (its reason is returned beside).
pub fn select<'a>(
    roles: &'a [ResolvedRole],
    config: &DeployConfig,
) -> (Vec<&'a ResolvedRole>, Vec<(String, String)>) {
    let mut kept = Vec::new();
    let mut left_out = Vec::new();
    for r in roles.iter().filter(|r| config.tiers.contains(&r.role.tier)) {
        if r.role.kind == RoleKind::Draft {
            continue;
        }
        let why = r.skip.clone().or_else(|| {
            r.skip_spec
                .clone()
                .filter(|_| r.role.deploy.mode.needs_draft())
        });
        match why {
            Some(why) => left_out.push((r.role.name.clone(), why)),
            None => kept.push(r),
        }
    }
    (kept, left_out)
}

/// Threads per role: a role's own `threads`, and the remaining cores split among the
/// others in proportion to `weights` (each role's bytes per token: the share of the
/// memory traffic it carries), by largest remainder, at least one each.
pub fn split_threads(cores: u32, fixed: &[Option<u32>], weights: &[u64]) -> Vec<u32> {
    let free: u32 = cores.saturating_sub(fixed.iter().flatten().sum());
    let open: Vec<usize> = (0..fixed.len()).filter(|&i| fixed[i].is_none()).collect();
    let mut out: Vec<u32> = fixed.iter().map(|t| t.unwrap_or(1)).collect();
    if open.is_empty() || free as usize <= open.len() {
        return out;
    }
    let total: f64 = open.iter().map(|&i| weights[i].max(1) as f64).sum();
    // Each open role has its one thread; the rest goes by share, largest remainder first.
    let extra = free - open.len() as u32;
    let shares: Vec<f64> = open
        .iter()
        .map(|&i| free as f64 * weights[i].max(1) as f64 / total - 1.0)
        .collect();
    let mut given = 0;
    for (k, &i) in open.iter().enumerate() {
        let whole = shares[k].max(0.0).floor() as u32;
        out[i] += whole;
        given += whole;
    }
    let mut order: Vec<usize> = (0..open.len()).collect();
    order.sort_by(|&a, &b| {
        let frac = |k: usize| shares[k].max(0.0) - shares[k].max(0.0).floor();
        frac(b).total_cmp(&frac(a)).then(a.cmp(&b))
    });
    for &k in order
        .iter()
        .cycle()
        .take(extra.saturating_sub(given) as usize)
    {
        out[open[k]] += 1;
    }
    out
}

/// The load a role is served under when neither the command line nor its `load` says:
/// frontdoor chat, coders code-edit, workers code-edit with a client per slot, ingest
/// summarize; one client each otherwise.
pub fn default_load(kind: RoleKind, slots: u32) -> (Workload, Pattern) {
    let one = Pattern::Concurrency { clients: 1 };
    match kind {
        RoleKind::Frontdoor | RoleKind::WorkerVision => (Workload::Chat, one),
        RoleKind::CoderEscalation | RoleKind::ArchitectCoding => (Workload::CodeEdit, one),
        RoleKind::Workers => (Workload::CodeEdit, Pattern::Concurrency { clients: slots }),
        RoleKind::Ingest => (Workload::Summarize, one),
        RoleKind::ArchitectGeneral | RoleKind::Draft => (Workload::Chat, one),
    }
}

/// The load plan of a member and the slots of its server: the command line's first point,
/// else the role's `load`'s, else the role's default (its clients from the role's most
/// slots); one phase lasts `phase` (`--duration`), else the role's `duration_s`, else
/// [`DEFAULT_PHASE`]. The server gets the role's most slots, or the point's clients when
/// more (so that `concurrency C` is served by C slots).
pub fn member_load(
    role: &ResolvedRole,
    cli: Option<&LoadPlan>,
    phase: Option<Duration>,
    seed: u64,
) -> (LoadPlan, u32) {
    let most = role.role.parallel.iter().copied().max().unwrap_or(1);
    let (workload, pattern) = default_load(role.role.kind, most);
    let mut plan = match (cli, &role.role.load) {
        (Some(plan), _) => plan.clone(),
        (None, Some(load)) => LoadPlan::from_role(load),
        (None, None) => LoadPlan {
            points: vec![pattern],
            bounds: Bounds::default(),
            seed,
            slo: Default::default(),
            find_max_rate: None,
            mix: Some(vec![(workload, 1.0)]),
            output_tokens: None,
        },
    };
    plan.points.truncate(1);
    if plan.points.is_empty() {
        plan.points.push(pattern);
    }
    if plan.mix.is_none() {
        plan.mix = Some(vec![(workload, 1.0)]);
    }
    plan.find_max_rate = None;
    let role_phase = role
        .role
        .load
        .as_ref()
        .and_then(|l| l.duration_s)
        .map(Duration::from_secs_f64);
    plan.bounds.duration = phase.or(role_phase).or(Some(DEFAULT_PHASE));
    let slots = most.max(plan.most_clients());
    (plan, slots)
}

/// Checks the whole set against the memory usable now (see [`check_set`]).
pub fn check_memory(members: &[Member<'_>], available: u64, total: u64) -> Result<(), String> {
    let items: Vec<SetItem<'_>> = members
        .iter()
        .map(|m| (m.name(), m.role.role.kind, m.set_member()))
        .collect();
    check_set(&items, available, total)
}

/// A role of a set: its name, its kind and what its server needs.
pub type SetItem<'a> = (&'a str, RoleKind, SetMember<'a>);

/// Checks a set against MemAvailable less the guide's buffer; when it does not fit, the
/// error names the roles to drop, last in the guide's Scaling Down order first, until the
/// rest fits, and what the rest then needs.
pub fn check_set(items: &[SetItem<'_>], available: u64, total: u64) -> Result<(), String> {
    let has = guard::usable_bytes(available, total);
    let needs_of = |set: &[&SetItem<'_>]| {
        let members: Vec<SetMember<'_>> = set.iter().map(|i| i.2.clone()).collect();
        guard::set_bytes(&members)
    };
    let all: Vec<&SetItem<'_>> = items.iter().collect();
    let needs = needs_of(&all);
    if needs <= has {
        return Ok(());
    }
    let mut kept = all.clone();
    kept.sort_by_key(|i| keep_rank(i.1));
    let mut dropped = Vec::new();
    while needs_of(&kept) > has && kept.len() > 1 {
        dropped.extend(kept.pop().map(|i| format!("`{}`", i.0)));
    }
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let rest = needs_of(&kept);
    let advice = match rest <= has {
        true => format!(
            "drop {} (the guide's Scaling Down order keeps {}): the rest ({}) needs {:.1} GiB and fits",
            dropped.join(", then "),
            crate::guide::SCALING_ORDER.join(" > "),
            kept.iter().map(|i| i.0).collect::<Vec<_>>().join(", "),
            gib(rest)
        ),
        false => format!(
            "even `{}` alone needs {:.1} GiB: this machine cannot hold it",
            kept.first().map_or("", |i| i.0),
            gib(rest)
        ),
    };
    Err(format!(
        "the deployment does not fit: its {} servers need {:.1} GiB together (a file two of them \
         map counted once), and {:.1} GiB is usable (MemAvailable less the guide's 15% buffer); \
         {advice}. Nothing was launched.",
        items.len(),
        gib(needs),
        gib(has)
    ))
}

/// A role kind's place in the guide's keep order (1 = kept longest).
fn keep_rank(kind: RoleKind) -> usize {
    crate::guide::SCALING_ORDER
        .iter()
        .position(|n| *n == kind.as_str())
        .map_or(crate::guide::SCALING_ORDER.len() + 1, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_split_by_bytes_per_token_at_least_one_each() {
        // 48 cores over 20, 16 and 5 GB per token: shares 23.4, 18.7, 5.9 -> 23, 19, 6
        // (largest remainders: 0.9 and 0.7 win the two left over).
        assert_eq!(split_threads(48, &[None; 3], &[20, 16, 5]), [23, 19, 6]);
        // A role's own threads come first; the rest is split.
        assert_eq!(
            split_threads(48, &[Some(8), None, None], &[20, 16, 16]),
            [8, 20, 20]
        );
        // Fewer cores than roles: one each (the machine is oversubscribed).
        assert_eq!(split_threads(2, &[None; 3], &[5, 1, 1]), [1, 1, 1]);
        // Two cores, two roles of very different size: still one each.
        assert_eq!(split_threads(2, &[None; 2], &[100, 1]), [1, 1]);
        // The total is the machine's cores.
        let t = split_threads(64, &[None; 4], &[17, 1, 9, 3]);
        assert_eq!(t.iter().sum::<u32>(), 64, "{t:?}");
        assert!(t.iter().all(|&n| n >= 1));
    }

    #[test]
    fn a_set_that_does_not_fit_names_the_role_to_drop() {
        use crate::driver::guard::MemoryNeed;
        use std::path::Path;
        const G: u64 = 1 << 30;
        let need = |weights: u64, kv: u64| MemoryNeed {
            model_bytes: weights * G,
            draft_bytes: 0,
            kv_bytes: kv * G,
        };
        let member = |file: &'static str, n: MemoryNeed| SetMember {
            need: n,
            model: Path::new(file),
            draft: None,
        };
        // Totals by hand (overhead = weights / 20): frontdoor 18 + 2 + 0.9 = 20.9 GiB,
        // workers 16 + 1 + 0.8 = 17.8, architect 30 + 2 + 1.5 = 33.5; all three 72.2 GiB.
        // 64 GiB of RAM keeps a 9.6 GiB buffer: 60 GiB available leaves 50.4 GiB.
        let items = [
            (
                "architect_general",
                RoleKind::ArchitectGeneral,
                member("a.gguf", need(30, 2)),
            ),
            (
                "frontdoor",
                RoleKind::Frontdoor,
                member("f.gguf", need(18, 2)),
            ),
            ("workers", RoleKind::Workers, member("w.gguf", need(16, 1))),
        ];
        let err = check_set(&items, 60 * G, 64 * G).unwrap_err();
        assert!(err.contains("need 72.2 GiB together"), "{err}");
        assert!(err.contains("50.4 GiB is usable"), "{err}");
        assert!(
            err.contains("drop `architect_general`"),
            "the guide drops the architect first: {err}"
        );
        assert!(
            err.contains("the rest (frontdoor, workers) needs 38.7 GiB and fits"),
            "{err}"
        );
        // 90 GiB available of 96 (a 14.4 GiB buffer: 75.6 usable): all three fit.
        assert_eq!(check_set(&items, 90 * G, 96 * G), Ok(()));
        // 30 GiB available leaves 20.4: the workers go too, and the frontdoor alone (20.9)
        // still does not fit.
        let err = check_set(&items, 30 * G, 64 * G).unwrap_err();
        assert!(
            err.contains("even `frontdoor` alone needs 20.9 GiB"),
            "{err}"
        );
    }

    #[test]
    fn keep_order_follows_the_guide() {
        assert!(keep_rank(RoleKind::Frontdoor) < keep_rank(RoleKind::Workers));
        assert!(keep_rank(RoleKind::Workers) < keep_rank(RoleKind::CoderEscalation));
        assert!(keep_rank(RoleKind::Ingest) < keep_rank(RoleKind::ArchitectGeneral));
    }
}
