//! Acceleration modes as a profile writes them (`baseline`, `spec:16`, `lookup`,
//! `lookup:ngram-mod`, `moe:4`, `moe:4+spec:16+lookup`): a typed enum with a parser that
//! names the allowed values, and a `Display` that gives the same text back.
//!
//! This is the one mode type of the harness. Text becomes a [`Mode`] where it enters (the
//! profile, the results CSV and JSONL through serde) and stays one through the plan, the
//! launch, the cell, the row and the analysis; its `Display` is the one label, and the parser
//! (`parse.rs`) is the only place that splits a combination at `+`. What each kind means to
//! llama-server (its arguments, its draft, how `/slots` shows it) is the one table in
//! `table.rs`; `read_back.rs` turns a server's speculative types back into a mode through it.
//!
//! Architecture invariant: this module sits just above `util` and reads nothing above it
//! (std, serde and thiserror only), so that every layer may read it.

mod parse;
mod read_back;
mod table;

pub use parse::ModeError;
pub use table::{allowed_modes, Launch, ModeKind, Param, SPEC_TYPES};

use serde::{Deserialize, Serialize};
use std::fmt;

/// One acceleration mode of a cell.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// No acceleration.
    #[default]
    Baseline,
    /// Speculative decoding with the role's draft model, `k` drafted tokens per step.
    Spec { k: u32 },
    /// Prompt-lookup (n-gram) speculation without a draft model; `None` = the kind's first
    /// type, `ngram-simple`.
    Lookup { spec_type: Option<String> },
    /// MoE expert reduction to `n` experts used per token.
    Moe { n: u32 },
    /// Several of the above at once (never `baseline`, never nested, each kind once).
    Combo(Vec<Mode>),
}

impl Mode {
    /// The parts of a mode: itself, or the members of a combination.
    pub fn parts(&self) -> &[Mode] {
        match self {
            Mode::Combo(parts) => parts,
            single => std::slice::from_ref(single),
        }
    }

    /// The mode of these parts: `baseline` for none, the part for one, else their
    /// combination (in the order given).
    pub fn from_parts(mut parts: Vec<Mode>) -> Mode {
        match parts.len() {
            0 => Mode::Baseline,
            1 => parts.remove(0),
            _ => Mode::Combo(parts),
        }
    }

    /// The kind of a single mode; `None` for a combination (see [`Mode::parts`]).
    pub fn kind(&self) -> Option<ModeKind> {
        match self {
            Mode::Baseline => Some(ModeKind::Baseline),
            Mode::Spec { .. } => Some(ModeKind::Spec),
            Mode::Lookup { .. } => Some(ModeKind::Lookup),
            Mode::Moe { .. } => Some(ModeKind::Moe),
            Mode::Combo(_) => None,
        }
    }

    /// The mode has a part of `kind`.
    pub fn has(&self, kind: ModeKind) -> bool {
        self.parts().iter().any(|p| p.kind() == Some(kind))
    }

    /// The drafted-token count when the mode uses a draft model.
    pub fn spec_k(&self) -> Option<u32> {
        self.parts().iter().find_map(|m| match m {
            Mode::Spec { k } => Some(*k),
            _ => None,
        })
    }

    /// The experts-used count when the mode reduces MoE experts.
    pub fn moe_n(&self) -> Option<u32> {
        self.parts().iter().find_map(|m| match m {
            Mode::Moe { n } => Some(*n),
            _ => None,
        })
    }

    /// The n-gram type when the mode uses prompt lookup (`ngram-simple` when not given).
    pub fn lookup_type(&self) -> Option<&str> {
        self.parts()
            .iter()
            .find(|m| matches!(m, Mode::Lookup { .. }))
            .and_then(Mode::own_spec_type)
    }

    /// True for `baseline`.
    pub fn is_baseline(&self) -> bool {
        matches!(self, Mode::Baseline)
    }

    /// True when a part needs a draft model (`-md`).
    pub fn needs_draft(&self) -> bool {
        self.kinds_iter().any(ModeKind::needs_draft)
    }

    /// True when the mode drafts tokens (a draft model or n-gram lookup).
    pub fn is_speculative(&self) -> bool {
        self.kinds_iter().any(ModeKind::drafts)
    }

    /// True when the mode decodes one token per step: `baseline` or expert reduction only.
    pub fn decodes_plainly(&self) -> bool {
        !self.is_speculative()
    }

    /// The `--spec-type` values a server needs for this mode, in launch order (the draft
    /// model's type first, then the n-gram one).
    pub fn spec_types(&self) -> Vec<String> {
        let mut parts: Vec<&Mode> = self.parts().iter().collect();
        parts.sort_by_key(|p| p.kind());
        parts
            .into_iter()
            .filter_map(Mode::own_spec_type)
            .map(str::to_string)
            .collect()
    }

    /// The mode's kinds without parameters, sorted and joined with `+`
    /// (`moe:4+spec:16+lookup` -> `lookup+moe+spec`): what calibrate's speedup points
    /// record.
    pub fn kinds(&self) -> String {
        let mut kinds: Vec<&str> = self.kinds_iter().map(ModeKind::label).collect();
        kinds.sort_unstable();
        kinds.dedup();
        kinds.join("+")
    }

    fn kinds_iter(&self) -> impl Iterator<Item = ModeKind> + '_ {
        self.parts().iter().filter_map(Mode::kind)
    }

    /// The `--spec-type` value of a single part: the lookup type it was given, else its
    /// kind's default (none for a kind that does not speculate).
    fn own_spec_type(&self) -> Option<&str> {
        match self {
            Mode::Lookup { spec_type: Some(t) } => Some(t),
            part => part.kind()?.spec_types().first().copied(),
        }
    }

    /// What a single part writes after its label's `:`.
    fn param_text(&self) -> Option<String> {
        match self {
            Mode::Baseline | Mode::Combo(_) => None,
            Mode::Spec { k } => Some(k.to_string()),
            Mode::Lookup { spec_type } => spec_type.clone(),
            Mode::Moe { n } => Some(n.to_string()),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(kind) = self.kind() else {
            let texts: Vec<String> = self.parts().iter().map(ToString::to_string).collect();
            return f.write_str(&texts.join("+"));
        };
        f.write_str(kind.label())?;
        match self.param_text() {
            Some(param) => write!(f, ":{param}"),
            None => Ok(()),
        }
    }
}

/// Modes order as their labels do, so that tables sorted by mode keep the order they had
/// when the mode was text.
impl Ord for Mode {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.to_string().cmp(&other.to_string())
    }
}

impl PartialOrd for Mode {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares with a mode's text (`row.mode == "baseline"`).
impl PartialEq<str> for Mode {
    fn eq(&self, text: &str) -> bool {
        text.parse::<Mode>().is_ok_and(|mode| mode == *self)
    }
}

impl PartialEq<&str> for Mode {
    fn eq(&self, text: &&str) -> bool {
        self == *text
    }
}

impl Serialize for Mode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_example_round_trips() {
        for text in [
            "baseline",
            "spec:16",
            "lookup",
            "lookup:ngram-mod",
            "moe:4",
            "moe:4+spec:16+lookup",
        ] {
            let mode: Mode = text.parse().unwrap();
            assert_eq!(mode.to_string(), text);
        }
    }

    #[test]
    fn kinds_and_spec_types_of_a_combination() {
        let mode: Mode = "moe:4+spec:16+lookup".parse().unwrap();
        assert_eq!(mode.kinds(), "lookup+moe+spec");
        assert_eq!(mode.spec_types(), ["draft-simple", "ngram-simple"]);
        assert!(mode.is_speculative() && !mode.decodes_plainly());
        let moe: Mode = "moe:2".parse().unwrap();
        assert!(moe.decodes_plainly() && !moe.is_speculative());
        assert_eq!(moe.kinds(), "moe");
        assert!(Mode::Baseline.spec_types().is_empty());
        assert_eq!(Mode::default(), "baseline");
        let typed: Mode = "lookup:ngram-mod".parse().unwrap();
        assert_eq!(typed.spec_types(), ["ngram-mod"]);
    }

    #[test]
    fn combination_exposes_its_parts() {
        let mode: Mode = "moe:4+spec:16+lookup:ngram-mod".parse().unwrap();
        assert_eq!(mode.spec_k(), Some(16));
        assert_eq!(mode.moe_n(), Some(4));
        assert_eq!(mode.lookup_type(), Some("ngram-mod"));
        assert_eq!(
            "lookup".parse::<Mode>().unwrap().lookup_type(),
            Some("ngram-simple")
        );
        assert_eq!(Mode::Baseline.spec_k(), None);
    }

    fn single() -> impl proptest::strategy::Strategy<Value = Mode> {
        use proptest::prelude::*;
        prop_oneof![
            (1u32..64).prop_map(|k| Mode::Spec { k }),
            proptest::option::of(proptest::sample::select(
                ModeKind::Lookup.spec_types().to_vec()
            ))
            .prop_map(|t| {
                Mode::Lookup {
                    spec_type: t.map(str::to_string),
                }
            }),
            (1u32..16).prop_map(|n| Mode::Moe { n }),
        ]
    }

    proptest::proptest! {
        #[test]
        fn display_then_parse_is_identity(parts in proptest::collection::vec(single(), 1..4)) {
            let mut seen = Vec::new();
            let parts: Vec<Mode> = parts.into_iter().filter(|p| {
                let kind = p.kind();
                let new = !seen.contains(&kind);
                seen.push(kind);
                new
            }).collect();
            let mode = if parts.len() == 1 { parts[0].clone() } else { Mode::Combo(parts) };
            proptest::prop_assert_eq!(mode.to_string().parse::<Mode>().unwrap(), mode);
        }
    }

    #[test]
    fn bad_modes_are_rejected_with_the_allowed_values() {
        for (text, reason) in [
            ("spec:0", "greater than 0"),
            ("spec", "needs the drafted-token count"),
            ("spec:x", "not a whole number"),
            ("moe:0", "greater than 0"),
            ("lookup:ngram-foo", "unknown lookup type"),
            ("turbo", "unknown mode `turbo`"),
            ("baseline+lookup", "cannot be combined"),
            ("spec:4+spec:8", "spec appears twice"),
        ] {
            let err = text.parse::<Mode>().unwrap_err().to_string();
            assert!(err.contains(reason), "{text}: {err}");
            assert!(err.contains("allowed: baseline, spec:K"), "{text}: {err}");
        }
    }
}
