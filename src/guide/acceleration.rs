//! The guide's "Acceleration Methods" table (`docs/model-sizing-guide.md`, "Performance
//! Expectations > Acceleration Methods"): typical speedups per method, with the profile modes
//! that implement each. A row names its method by the mode table's kinds
//! ([`crate::mode::ModeKind`]), so that the guide and the measured modes share one vocabulary.

use crate::mode::{Mode, ModeKind};
use serde::Serialize;

/// One row of the guide's acceleration table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AccelerationRow {
    /// Method as the guide names it.
    pub method: &'static str,
    /// The profile mode(s) that implement it, as a profile writes them.
    pub modes: &'static str,
    /// The mode kinds this row stands for (`[Spec, Lookup]` for the combined row).
    pub kinds: &'static [ModeKind],
    /// Lower end of the typical speedup (x).
    pub low_speedup: f64,
    /// Upper end of the typical speedup (x).
    pub high_speedup: f64,
    /// "Best For" column.
    pub best_for: &'static str,
}

impl AccelerationRow {
    /// The kinds' labels joined with `+`, as the guide writes them ("spec", "spec+lookup").
    pub fn kind(&self) -> String {
        let labels: Vec<&str> = self.kinds.iter().map(|k| k.label()).collect();
        labels.join("+")
    }

    /// A measured mode is this row's: exactly its kind for a single-kind row; every kind of
    /// it (others, such as moe, besides) for a combined row.
    pub fn matches(&self, mode: &Mode) -> bool {
        match self.kinds {
            [kind] => mode.parts().iter().all(|p| p.kind() == Some(*kind)),
            kinds => kinds.iter().all(|k| mode.has(*k)),
        }
    }
}

/// The guide's acceleration table, in its order.
pub const ACCELERATIONS: [AccelerationRow; 4] = [
    AccelerationRow {
        method: "Speculative Decoding",
        modes: "spec:K",
        kinds: &[ModeKind::Spec],
        low_speedup: 3.0,
        high_speedup: 11.0,
        best_for: "Dense models with compatible drafts",
    },
    AccelerationRow {
        method: "Prompt Lookup",
        modes: "lookup[:TYPE]",
        kinds: &[ModeKind::Lookup],
        low_speedup: 1.5,
        high_speedup: 12.0,
        best_for: "Tasks with repeated context",
    },
    AccelerationRow {
        method: "MoE Expert Reduction",
        modes: "moe:N",
        kinds: &[ModeKind::Moe],
        low_speedup: 1.5,
        high_speedup: 2.0,
        best_for: "MoE models only",
    },
    AccelerationRow {
        method: "Combined Spec+Lookup",
        modes: "spec:K+lookup",
        kinds: &[ModeKind::Spec, ModeKind::Lookup],
        low_speedup: 5.0,
        high_speedup: 12.0,
        best_for: "Best results",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_name_their_kinds_as_the_guide_does_and_match_measured_modes() {
        let kinds: Vec<String> = ACCELERATIONS.iter().map(AccelerationRow::kind).collect();
        assert_eq!(kinds, ["spec", "lookup", "moe", "spec+lookup"]);
        let mode = |text: &str| text.parse::<Mode>().unwrap();
        let [spec, lookup, moe, both] = &ACCELERATIONS;
        assert!(spec.matches(&mode("spec:16")) && !spec.matches(&mode("spec:16+lookup")));
        assert!(lookup.matches(&mode("lookup:ngram-mod")) && !lookup.matches(&mode("baseline")));
        assert!(moe.matches(&mode("moe:4")) && !moe.matches(&mode("moe:4+spec:8")));
        assert!(both.matches(&mode("moe:4+spec:8+lookup")) && !both.matches(&mode("spec:8")));
    }
}
