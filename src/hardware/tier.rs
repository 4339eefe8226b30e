//! The guide's decision tree (`docs/model-sizing-guide.md`, "Assess Your Hardware > Quick
//! Assessment Script" and "Choosing Models for Your Hardware > Decision Tree"): which
//! deployment tier a machine's RAM allows; the bounds are [`crate::guide::TIERS`].
//!
//! Unit: the guide's script compares `free -g` totals, and `free -g` prints MemTotal in GiB
//! rounded down. `floor(x) < 32` is the same test as `x < 32`, so comparing MemTotal in GiB
//! (unrounded) reproduces the script exactly. MemTotal is below the installed RAM (the kernel
//! and firmware keep some), so a "32 GB" machine lands in the tier below; the reason says so.

use crate::guide;
use serde::Serialize;

/// Deployment tier, from the guide's decision tree.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// RAM < 32 GiB: mock mode or 0.5B-1.5B models.
    DevOnly,
    /// RAM < 64 GiB: one 7B model for all roles.
    Minimal,
    /// RAM < 128 GiB: frontdoor + workers, no architects.
    Basic,
    /// RAM < 256 GiB: HOT tier + one architect (one WARM model).
    Standard,
    /// RAM < 512 GiB: HOT + architect_general (+ ingest).
    Production,
    /// RAM >= 512 GiB: all tiers including the 480B architect.
    Full,
}

/// The tiers in the order of the guide's table ([`guide::TIERS`], which holds the bounds
/// and the advice).
const ORDER: [Tier; 6] = [
    Tier::DevOnly,
    Tier::Minimal,
    Tier::Basic,
    Tier::Standard,
    Tier::Production,
    Tier::Full,
];

impl Tier {
    /// The guide's label ("DEV ONLY", "MINIMAL", ...).
    pub fn label(self) -> &'static str {
        guide::TIERS[self as usize].name
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// The guide's tier for `gib` of total RAM (MemTotal in GiB, the unit of `free -g`), with
/// the reason in words.
pub fn tier_for_ram(gib: f64) -> (Tier, String) {
    let gib = if gib.is_nan() { 0.0 } else { gib.max(0.0) };
    let row = guide::tier_for_ram(gib);
    let idx = guide::TIERS
        .iter()
        .position(|t| t.name == row.name)
        .unwrap_or(ORDER.len() - 1);
    let (tier, hi, advice) = (ORDER[idx], row.below_ram_gb, row.summary);
    let lo = idx
        .checked_sub(1)
        .map_or(0.0, |i| guide::TIERS[i].below_ram_gb);
    let range = if hi.is_infinite() {
        format!(">= {lo:.0} GiB")
    } else if lo == 0.0 {
        format!("< {hi:.0} GiB")
    } else {
        format!("{lo:.0}-{hi:.0} GiB")
    };
    let mut reason = format!("{gib:.1} GiB RAM is in the guide's {range} band: {advice}");
    if hi.is_finite() && gib >= hi * 0.95 {
        reason.push_str(&format!(
            " (just under {hi:.0} GiB: MemTotal excludes memory the kernel and firmware keep, \
             so a machine sold as {hi:.0} GB lands here under the guide's `free -g` rule)"
        ));
    }
    (tier, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_follow_the_guide_script() {
        let cases = [
            (0.0, Tier::DevOnly),
            (31.99, Tier::DevOnly),
            (32.0, Tier::Minimal),
            (63.9, Tier::Minimal),
            (64.0, Tier::Basic),
            (127.99, Tier::Basic),
            (128.0, Tier::Standard),
            (255.5, Tier::Standard),
            (256.0, Tier::Production),
            (511.999, Tier::Production),
            (512.0, Tier::Full),
            (4096.0, Tier::Full),
        ];
        for (gib, want) in cases {
            assert_eq!(tier_for_ram(gib).0, want, "{gib} GiB");
        }
    }

    #[test]
    fn nonsense_input_does_not_panic() {
        assert_eq!(tier_for_ram(f64::NAN).0, Tier::DevOnly);
        assert_eq!(tier_for_ram(-5.0).0, Tier::DevOnly);
        assert_eq!(tier_for_ram(f64::INFINITY).0, Tier::Full);
    }

    #[test]
    fn reason_names_band_advice_and_near_miss() {
        let (_, r) = tier_for_ram(23.5);
        assert!(r.contains("< 32 GiB") && r.contains("mock mode"), "{r}");
        assert!(!r.contains("just under"), "{r}");
        let (t, r) = tier_for_ram(251.4);
        assert_eq!(t, Tier::Standard);
        assert!(
            r.contains("128-256 GiB") && r.contains("just under 256"),
            "{r}"
        );
        let (_, r) = tier_for_ram(600.0);
        assert!(r.contains(">= 512 GiB") && r.contains("480B"), "{r}");
    }

    #[test]
    fn labels_and_json_names() {
        assert_eq!(Tier::DevOnly.to_string(), "DEV ONLY");
        assert_eq!(
            serde_json::to_string(&Tier::DevOnly).unwrap(),
            "\"dev_only\""
        );
    }
}
