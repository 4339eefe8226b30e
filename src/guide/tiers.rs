//! The guide's hardware tiers and its scaling-down order (`docs/model-sizing-guide.md`,
//! "Assess Your Hardware > Quick Assessment Script", "Choosing Models for Your Hardware >
//! Decision Tree" and "Scaling Down"): `bench hw` names a machine's tier, `bench plan` drops
//! roles in this order.

use serde::Serialize;

/// One tier of the guide's decision tree ([`super::SECTION_TIERS`]): applies below `below_ram_gb`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TierRow {
    /// Tier name as the script prints it (`DEV ONLY`).
    pub name: &'static str,
    /// The profile of this repository that implements the tier.
    pub profile: &'static str,
    /// Upper bound (exclusive) of total RAM in GB; `f64::INFINITY` for the last tier.
    pub below_ram_gb: f64,
    /// The script's recommendation.
    pub summary: &'static str,
}

/// The guide's tiers, in order of RAM ([`super::SECTION_TIERS`]).
pub const TIERS: [TierRow; 6] = [
    TierRow {
        name: "DEV ONLY",
        profile: "dev",
        below_ram_gb: 32.0,
        summary: "Use mock mode or 0.5B-1.5B models",
    },
    TierRow {
        name: "MINIMAL",
        profile: "minimal",
        below_ram_gb: 64.0,
        summary: "One 7B model for all roles",
    },
    TierRow {
        name: "BASIC",
        profile: "basic",
        below_ram_gb: 128.0,
        summary: "Frontdoor + workers, no architects",
    },
    TierRow {
        name: "STANDARD",
        profile: "standard",
        below_ram_gb: 256.0,
        summary: "HOT tier + one architect",
    },
    TierRow {
        name: "PRODUCTION",
        profile: "production",
        below_ram_gb: 512.0,
        summary: "HOT + architect_general",
    },
    TierRow {
        name: "FULL",
        profile: "full",
        below_ram_gb: f64::INFINITY,
        summary: "All tiers including 480B architect",
    },
];

/// The guide's tier for a total RAM in GB.
pub fn tier_for_ram(total_ram_gb: f64) -> &'static TierRow {
    TIERS
        .iter()
        .find(|t| total_ram_gb < t.below_ram_gb)
        .unwrap_or(&TIERS[TIERS.len() - 1])
}

/// The guide's "Scaling Down" priority list ([`super::SECTION_SCALING_DOWN`]), most important
/// first, exactly as the guide lists it. `draft` and `worker_vision` are not in the guide's
/// list; see [`SCALING_ORDER`] for where the planner puts them.
pub const SCALING_DOWN_GUIDE: [&str; 6] = [
    "frontdoor",
    "workers",
    "coder_escalation",
    "ingest",
    "architect_general",
    "architect_coding",
];

/// The planner's keep order, most important first: the guide's list with `worker_vision`
/// inserted after `coder_escalation` (the guide's Basic configuration keeps
/// `coder_escalation` but not `worker_vision`; Standard adds it together with `ingest`).
/// `draft` has no place of its own: it is kept while a kept role names it as its draft.
pub const SCALING_ORDER: [&str; 7] = [
    "frontdoor",
    "workers",
    "coder_escalation",
    "worker_vision",
    "ingest",
    "architect_general",
    "architect_coding",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_follow_the_assessment_script() {
        assert_eq!(tier_for_ram(31.9).name, "DEV ONLY");
        assert_eq!(tier_for_ram(32.0).name, "MINIMAL");
        assert_eq!(tier_for_ram(128.0).name, "STANDARD");
        assert_eq!(tier_for_ram(511.0).profile, "production");
        assert_eq!(tier_for_ram(2048.0).name, "FULL");
    }
}
