//! The budget planner behind `bench plan`: sizes every role of a profile (GGUF-exact where
//! the file is present, else the guide's formula), adds its KV cache, checks the total
//! against the guide's budget for the machine's RAM, and when it does not fit drops roles
//! in the guide's "Scaling Down" order.
//!
//! Units: RAM is GiB (the guide's `free -g`). Sizing one role is [`super::role_size`], the
//! notes under the table are `super::notes`, added by the command; this file holds the plan and the drop algorithm.

use super::budget::{budget, Budget};
pub use super::role_size::{
    formula_bytes, layout_bytes, size_role, KvSource, RoleSize, SizeSource, GIB,
    KV_ESTIMATE_BYTES_PER_B,
};
use crate::guide::{self, SCALING_ORDER};
use crate::profile::{Profile, Residency, RoleKind};
use serde::Serialize;
use std::path::PathBuf;

/// Whether a role stays in the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
pub enum PlanStatus {
    /// Fits.
    Kept,
    /// Dropped, with the reason.
    Dropped(String),
    /// No size known (no file, no `params_b`, no preset): not counted, not dropped.
    Unsized(String),
}

/// One role in the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RolePlan {
    /// Role name.
    pub name: String,
    /// Role kind.
    pub kind: RoleKind,
    /// HOT or WARM.
    pub tier: Residency,
    /// `model` of the profile.
    pub model: Option<PathBuf>,
    /// Quant: the file's own type when the file was read, else the profile's label.
    pub quant: String,
    /// The profile's `quant` label, if it has one.
    pub profile_quant: Option<String>,
    /// Context, tokens.
    pub ctx: u32,
    /// Keep rank (1 = dropped last); drafts take the rank of their most important user.
    pub keep_rank: usize,
    /// The sizes.
    pub size: RoleSize,
    /// Kept or dropped.
    #[serde(flatten)]
    pub status: PlanStatus,
    /// When dropped for the budget: the step (1 = dropped first).
    pub drop_step: Option<usize>,
}

impl RolePlan {
    /// True when kept.
    pub fn kept(&self) -> bool {
        self.status == PlanStatus::Kept
    }

    /// True when dropped for the budget.
    pub fn dropped(&self) -> bool {
        matches!(self.status, PlanStatus::Dropped(_))
    }
}

/// Where the RAM figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RamSource {
    /// `--ram`.
    Flag,
    /// MemTotal of /proc/meminfo.
    ThisMachine,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Profile name.
    pub profile: String,
    /// Where the profile was read from.
    pub profile_source: String,
    /// SHA-256 of the profile.
    pub profile_sha256: String,
    /// Models directory used for GGUF lookups.
    pub models_dir: PathBuf,
    /// RAM, GiB.
    pub ram_gib: f64,
    /// Where `ram_gib` comes from.
    pub ram_source: RamSource,
    /// The guide's budget for that RAM (GiB).
    pub budget: Budget,
    /// The guide's tier for that RAM and the profile that implements it.
    pub guide_tier: String,
    /// The profile of that tier.
    pub guide_tier_profile: String,
    /// Roles in file order.
    pub roles: Vec<RolePlan>,
    /// Bytes of the kept roles.
    pub kept_bytes: u64,
    /// Bytes of the kept HOT roles.
    pub hot_bytes: u64,
    /// Bytes of the kept WARM roles.
    pub warm_bytes: u64,
    /// True when no role was dropped.
    pub fits_all: bool,
    /// Remarks for the reader (HOT share exceeded, formula used, ...).
    pub notes: Vec<String>,
}

/// Options of [`plan`].
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// RAM, GiB.
    pub ram_gib: f64,
    /// Where it comes from.
    pub ram_source: RamSource,
    /// Models directory.
    pub models_dir: PathBuf,
    /// Size roles without a file by their preset's layout instead of the formula.
    pub by_layout: bool,
}

/// The keep rank of a non-draft role: its place in [`SCALING_ORDER`] (1-based).
fn kind_rank(kind: RoleKind) -> usize {
    SCALING_ORDER
        .iter()
        .position(|k| *k == kind.as_str())
        .map_or(SCALING_ORDER.len() + 1, |i| i + 1)
}

/// Keep ranks: drafts take the best rank of the roles naming them, unused drafts the last.
fn keep_ranks(profile: &Profile) -> Vec<usize> {
    profile
        .roles
        .iter()
        .map(|role| {
            if role.kind != RoleKind::Draft {
                return kind_rank(role.kind);
            }
            let users = profile
                .roles
                .iter()
                .filter(|r| r.draft.as_deref() == Some(&role.name));
            users
                .map(|r| kind_rank(r.kind))
                .min()
                .unwrap_or(SCALING_ORDER.len() + 2)
        })
        .collect()
}

/// Plans a profile against the guide's budget of `opts.ram_gib`.
pub fn plan(profile: &Profile, opts: &PlanOptions) -> Plan {
    let sizes: Vec<RoleSize> = profile
        .roles
        .iter()
        .map(|r| size_role(r, &opts.models_dir, opts.by_layout))
        .collect();
    plan_with_sizes(profile, opts, sizes)
}

/// [`plan`] with the role sizes already known (tests, or a caller that has read the files).
pub fn plan_with_sizes(profile: &Profile, opts: &PlanOptions, sizes: Vec<RoleSize>) -> Plan {
    let b = budget(opts.ram_gib);
    let ranks = keep_ranks(profile);
    let mut roles: Vec<RolePlan> = profile
        .roles
        .iter()
        .zip(sizes)
        .zip(&ranks)
        .map(|((role, size), &keep_rank)| RolePlan {
            name: role.name.clone(),
            kind: role.kind,
            tier: role.tier,
            model: role.model.clone(),
            quant: size
                .file_quant
                .clone()
                .or_else(|| role.quant.clone())
                .unwrap_or_else(|| "-".into()),
            profile_quant: role.quant.clone(),
            ctx: role.ctx,
            keep_rank,
            status: unsized_status(&size),
            drop_step: None,
            size,
        })
        .collect();
    drop_until_fits(profile, &mut roles, b.available_gb);
    let tier = guide::tier_for_ram(opts.ram_gib);
    Plan {
        profile: profile.name.clone(),
        profile_source: profile.source.to_string(),
        profile_sha256: profile.content_hash.clone(),
        models_dir: opts.models_dir.clone(),
        ram_gib: opts.ram_gib,
        ram_source: opts.ram_source,
        budget: b,
        guide_tier: tier.name.to_string(),
        guide_tier_profile: tier.profile.to_string(),
        kept_bytes: sum(&roles, |_| true),
        hot_bytes: sum(&roles, |r| r.tier == Residency::Hot),
        warm_bytes: sum(&roles, |r| r.tier == Residency::Warm),
        fits_all: !roles.iter().any(RolePlan::dropped),
        roles,
        notes: Vec::new(),
    }
}

fn unsized_status(size: &RoleSize) -> PlanStatus {
    match size.weights_source {
        SizeSource::Unknown => PlanStatus::Unsized(
            "model file absent, and no params_b or synthetic preset to size it by; not counted"
                .into(),
        ),
        _ => PlanStatus::Kept,
    }
}

fn sum(roles: &[RolePlan], pick: impl Fn(&RolePlan) -> bool) -> u64 {
    roles
        .iter()
        .filter(|r| r.kept() && pick(r))
        .map(|r| r.size.total_bytes)
        .sum()
}

/// Drops roles from the bottom of the keep order until the kept total fits `available_gib`.
fn drop_until_fits(profile: &Profile, roles: &mut [RolePlan], available_gib: f64) {
    let budget_bytes = (available_gib.max(0.0) * GIB) as u64;
    loop {
        let total = sum(roles, |_| true);
        if total <= budget_bytes {
            return;
        }
        let Some(victim) = next_victim(profile, roles) else {
            return;
        };
        let reason = format!(
            "over budget: kept roles need {:.1} GiB, the guide leaves {:.1} GiB for models; {} is next in the \
             Scaling Down order (rank {} of {})",
            total as f64 / GIB,
            available_gib,
            roles[victim].kind,
            roles[victim].keep_rank,
            SCALING_ORDER.len()
        );
        let step = roles.iter().filter_map(|r| r.drop_step).max().unwrap_or(0) + 1;
        roles[victim].status = PlanStatus::Dropped(reason);
        roles[victim].drop_step = Some(step);
        drop_orphaned_drafts(profile, roles, step);
    }
}

/// The kept role with the worst keep rank (the later in the file on a tie); a draft that
/// a kept role still uses is never chosen (it goes with its last user).
fn next_victim(profile: &Profile, roles: &[RolePlan]) -> Option<usize> {
    let in_use = |name: &str| {
        profile
            .roles
            .iter()
            .zip(roles)
            .any(|(role, plan)| !plan.dropped() && role.draft.as_deref() == Some(name))
    };
    let candidates = roles
        .iter()
        .enumerate()
        .filter(|(_, r)| r.kept() && !in_use(&r.name));
    candidates
        .max_by_key(|(i, r)| (r.keep_rank, *i))
        .map(|(i, _)| i)
}

/// A draft whose every user has been dropped goes too.
fn drop_orphaned_drafts(profile: &Profile, roles: &mut [RolePlan], step: usize) {
    for i in 0..roles.len() {
        if roles[i].kind != RoleKind::Draft || !roles[i].kept() {
            continue;
        }
        let users: Vec<usize> = (0..roles.len())
            .filter(|&j| profile.roles[j].draft.as_deref() == Some(roles[i].name.as_str()))
            .collect();
        if !users.is_empty() && users.iter().all(|&j| roles[j].dropped()) {
            roles[i].status =
                PlanStatus::Dropped("draft model of roles that were all dropped".into());
            roles[i].drop_step = Some(step);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::Path;

    pub(crate) fn production_at(ram_gib: f64) -> Plan {
        let profile = crate::profile::load("production").unwrap();
        let opts = PlanOptions {
            ram_gib,
            ram_source: RamSource::Flag,
            models_dir: PathBuf::from("/nonexistent-models"),
            by_layout: false,
        };
        plan(&profile, &opts)
    }

    fn kept(plan: &Plan) -> Vec<&str> {
        plan.roles
            .iter()
            .filter(|r| r.kept())
            .map(|r| r.name.as_str())
            .collect()
    }

    #[test]
    fn production_fits_512_gib_with_the_formula() {
        let p = production_at(512.0);
        assert!(p.fits_all, "{:?}", p.roles);
        assert!(p
            .roles
            .iter()
            .all(|r| r.size.weights_source == SizeSource::GuideFormula));
        // The guide's production total is ~238 GB of weights; the plan adds KV caches.
        let gib = p.kept_bytes as f64 / GIB;
        assert!((210.0..250.0).contains(&gib), "{gib}");
    }

    #[test]
    fn production_at_128_keeps_the_hot_tier_and_drops_the_architect_and_ingest() {
        let p = production_at(128.0);
        assert_eq!(
            kept(&p),
            vec![
                "frontdoor",
                "coder_escalation",
                "workers",
                "worker_vision",
                "draft"
            ]
        );
        assert!(p.kept_bytes as f64 / GIB <= p.budget.available_gb);
        let ingest = p.roles.iter().find(|r| r.name == "ingest").unwrap();
        assert!(matches!(&ingest.status, PlanStatus::Dropped(r) if r.contains("Scaling Down")));
    }

    #[test]
    fn production_at_32_keeps_nothing_and_names_the_tier() {
        let p = production_at(32.0);
        // 11.2 GiB for models: even the 30B frontdoor (~16.8 GB) does not fit, and the
        // draft goes with the last of its users.
        assert!(kept(&p).is_empty(), "{:?}", kept(&p));
        let draft = p.roles.iter().find(|r| r.name == "draft").unwrap();
        let workers = p.roles.iter().find(|r| r.name == "workers").unwrap();
        assert_eq!(
            draft.drop_step, workers.drop_step,
            "the draft goes with its last user"
        );
        let front = p.roles.iter().find(|r| r.name == "frontdoor").unwrap();
        assert_eq!(front.drop_step, Some(6), "frontdoor goes last");
    }

    #[test]
    fn layout_sizing_uses_the_preset_tensors_where_it_can() {
        let profile = crate::profile::load("production").unwrap();
        let opts = PlanOptions {
            ram_gib: 512.0,
            ram_source: RamSource::Flag,
            models_dir: PathBuf::from("/nonexistent-models"),
            by_layout: true,
        };
        let p = plan(&profile, &opts);
        let role = |n: &str| p.roles.iter().find(|r| r.name == n).unwrap();
        // Qwen2.5-Coder-32B (qwen2.5-32b shape) at Q4_K_M: 19,845,357,568 tensor bytes,
        // 11% above the formula's 17,875,000,000.
        assert_eq!(
            role("coder_escalation").size.weights_source,
            SizeSource::SynthLayout
        );
        assert_eq!(
            role("coder_escalation").size.weights_bytes,
            Some(19_845_357_568)
        );
        // Qwen3-Next has no preset: still the formula.
        assert_eq!(role("ingest").size.weights_source, SizeSource::GuideFormula);
    }

    #[test]
    fn a_role_without_any_size_is_unsized_not_dropped() {
        let text = "name = \"u\"\n[[roles]]\nname = \"workers\"\nmodel = \"absent.gguf\"\nquant = \"Q4_K_M\"\ntier = \"HOT\"\ndraft = \"draft\"\nmodes = [\"spec:4\"]\n[[roles]]\nname = \"draft\"\nparams_b = 0.5\nquant = \"Q8_0\"\ntier = \"HOT\"\n";
        let profile =
            crate::profile::parse(text, crate::profile::ProfileSource::File("u.toml".into()))
                .unwrap();
        let opts = PlanOptions {
            ram_gib: 64.0,
            ram_source: RamSource::Flag,
            models_dir: PathBuf::from("/nonexistent-models"),
            by_layout: false,
        };
        let p = plan(&profile, &opts);
        assert!(
            matches!(p.roles[0].status, PlanStatus::Unsized(_)),
            "{:?}",
            p.roles[0].status
        );
        assert!(p.roles[1].kept(), "the draft of an unsized role stays");
        assert!(p.fits_all);
        assert_eq!(p.kept_bytes, p.roles[1].size.total_bytes);
    }

    #[test]
    fn drafts_rank_with_their_best_user() {
        let profile = crate::profile::load("production").unwrap();
        let ranks = keep_ranks(&profile);
        let draft = profile
            .roles
            .iter()
            .position(|r| r.kind == RoleKind::Draft)
            .unwrap();
        // Users: workers (rank 2) and coder_escalation (rank 3).
        assert_eq!(ranks[draft], 2);
    }

    #[test]
    fn kv_comes_from_the_preset_or_an_estimate() {
        let profile = crate::profile::load("production").unwrap();
        let workers = profile.role("workers").unwrap();
        let s = size_role(workers, Path::new("/nonexistent"), false);
        assert_eq!(s.kv_source, KvSource::SynthShape);
        assert_eq!(s.kv_bytes, 57_344 * 4096);
        let ingest = profile.role("ingest").unwrap();
        let s = size_role(ingest, Path::new("/nonexistent"), false);
        assert_eq!(
            (s.kv_source, s.kv_bytes),
            (KvSource::Profile, 24_576 * 32_768)
        );
        let mut unknown = ingest.clone();
        unknown.kv_bytes_per_token = None;
        let s = size_role(&unknown, Path::new("/nonexistent"), false);
        // 80B x 8 KiB is above the cap of a 72B's 320 KiB.
        assert_eq!(
            (s.kv_source, s.kv_bytes_per_token),
            (KvSource::Estimate, 327_680)
        );
        assert_eq!(formula_bytes(7.0, "Q4_K_M"), Some(3_850_000_000));
    }
}
