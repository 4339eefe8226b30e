//! Acceleration modes as a profile writes them (`baseline`, `spec:16`, `lookup`,
//! `lookup:ngram-mod`, `moe:4`, `moe:4+spec:16+lookup`): a typed enum with a parser that
//! names the allowed values, and a `Display` that gives the same text back.
//!
//! This is the one mode type of the harness. Text becomes a [`Mode`] where it enters (the
//! profile, the results CSV and JSONL through serde) and stays one through the plan, the
//! launch, the cell, the row and the analysis; its `Display` is the one label, and the parser
//! here is the only place that splits a combination at `+`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The n-gram speculation types of the pinned llama.cpp build (`common/speculative.cpp`);
/// `lookup` without a type means the first, `ngram-simple`.
pub const LOOKUP_TYPES: [&str; 5] = [
    "ngram-simple",
    "ngram-map-k",
    "ngram-map-k4v",
    "ngram-mod",
    "ngram-cache",
];

/// The text a mode error shows as the allowed values.
pub const ALLOWED_MODES: &str = "baseline, spec:K (K > 0 drafted tokens), lookup, lookup:TYPE \
(TYPE one of ngram-simple, ngram-map-k, ngram-map-k4v, ngram-mod, ngram-cache), moe:N (N > 0 experts), \
or a combination of spec, lookup and moe joined with `+` (moe:4+spec:16+lookup)";

/// One acceleration mode of a cell.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// No acceleration.
    #[default]
    Baseline,
    /// Speculative decoding with the role's draft model, `k` drafted tokens per step.
    Spec { k: u32 },
    /// Prompt-lookup (n-gram) speculation without a draft model; `None` = `ngram-simple`.
    Lookup { spec_type: Option<String> },
    /// MoE expert reduction to `n` experts used per token.
    Moe { n: u32 },
    /// Several of the above at once (never `baseline`, never nested, each kind once).
    Combo(Vec<Mode>),
}

/// Why a mode string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ModeError {
    /// The text that was parsed.
    pub text: String,
    /// What was wrong with it.
    pub reason: String,
}

impl fmt::Display for ModeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)?;
        if self.text.contains('+') {
            write!(f, " in `{}`", self.text)?;
        }
        write!(f, " (allowed: {ALLOWED_MODES})")
    }
}

impl Mode {
    /// The parts of a mode: itself, or the members of a combination.
    pub fn parts(&self) -> &[Mode] {
        match self {
            Mode::Combo(parts) => parts,
            single => std::slice::from_ref(single),
        }
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
        self.parts().iter().find_map(|m| match m {
            Mode::Lookup { spec_type } => Some(spec_type.as_deref().unwrap_or(LOOKUP_TYPES[0])),
            _ => None,
        })
    }

    /// True for `baseline`.
    pub fn is_baseline(&self) -> bool {
        matches!(self, Mode::Baseline)
    }

    /// True when the mode drafts tokens (a draft model or n-gram lookup).
    pub fn is_speculative(&self) -> bool {
        self.spec_k().is_some() || self.lookup_type().is_some()
    }

    /// True when the mode decodes one token per step: `baseline` or expert reduction only.
    pub fn decodes_plainly(&self) -> bool {
        self.parts()
            .iter()
            .all(|m| matches!(m, Mode::Baseline | Mode::Moe { .. }))
    }

    /// The `--spec-type` values a server needs for this mode: the draft model's type first,
    /// then the n-gram one.
    pub fn spec_types(&self) -> Vec<String> {
        let draft = self.spec_k().map(|_| "draft-simple".to_string());
        let lookup = self.lookup_type().map(str::to_string);
        draft.into_iter().chain(lookup).collect()
    }

    /// The mode's kinds without parameters, sorted and joined with `+`
    /// (`moe:4+spec:16+lookup` -> `lookup+moe+spec`): what the guide's acceleration table
    /// groups by.
    pub fn kinds(&self) -> String {
        let mut kinds: Vec<&str> = self.parts().iter().map(Mode::kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        kinds.join("+")
    }

    fn kind(&self) -> &'static str {
        match self {
            Mode::Baseline => "baseline",
            Mode::Spec { .. } => "spec",
            Mode::Lookup { .. } => "lookup",
            Mode::Moe { .. } => "moe",
            Mode::Combo(_) => "combination",
        }
    }
}

fn parse_count(text: &str, what: &str, value: &str) -> Result<u32, ModeError> {
    let err = |reason: String| ModeError {
        text: text.to_string(),
        reason,
    };
    let n: u32 = value
        .parse()
        .map_err(|_| err(format!("`{value}` is not a whole number of {what}")))?;
    if n == 0 {
        return Err(err(format!("the number of {what} must be greater than 0")));
    }
    Ok(n)
}

fn parse_single(text: &str, part: &str) -> Result<Mode, ModeError> {
    let err = |reason: String| ModeError {
        text: text.to_string(),
        reason,
    };
    let (head, arg) = match part.split_once(':') {
        Some((h, a)) => (h, Some(a)),
        None => (part, None),
    };
    match (head, arg) {
        ("baseline", None) => Ok(Mode::Baseline),
        ("spec", Some(k)) => Ok(Mode::Spec {
            k: parse_count(text, "drafted tokens", k)?,
        }),
        ("spec", None) => Err(err("spec needs the drafted-token count K (spec:16)".into())),
        ("lookup", None) => Ok(Mode::Lookup { spec_type: None }),
        ("lookup", Some(t)) if LOOKUP_TYPES.contains(&t) => Ok(Mode::Lookup {
            spec_type: Some(t.to_string()),
        }),
        ("lookup", Some(t)) => Err(err(format!("unknown lookup type `{t}`"))),
        ("moe", Some(n)) => Ok(Mode::Moe {
            n: parse_count(text, "experts", n)?,
        }),
        ("moe", None) => Err(err("moe needs the number of experts used N (moe:4)".into())),
        (other, _) => Err(err(format!("unknown mode `{other}`"))),
    }
}

impl FromStr for Mode {
    type Err = ModeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        if !trimmed.contains('+') {
            return parse_single(text, trimmed);
        }
        let parts = trimmed
            .split('+')
            .map(|p| parse_single(text, p.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        let err = |reason: String| ModeError {
            text: text.to_string(),
            reason,
        };
        for (i, part) in parts.iter().enumerate() {
            if part.is_baseline() {
                return Err(err("baseline cannot be combined".into()));
            }
            if parts[..i].iter().any(|p| p.kind() == part.kind()) {
                return Err(err(format!("{} appears twice", part.kind())));
            }
        }
        Ok(Mode::Combo(parts))
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Baseline => f.write_str("baseline"),
            Mode::Spec { k } => write!(f, "spec:{k}"),
            Mode::Lookup { spec_type: None } => f.write_str("lookup"),
            Mode::Lookup { spec_type: Some(t) } => write!(f, "lookup:{t}"),
            Mode::Moe { n } => write!(f, "moe:{n}"),
            Mode::Combo(parts) => {
                let texts: Vec<String> = parts.iter().map(ToString::to_string).collect();
                f.write_str(&texts.join("+"))
            }
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
            proptest::option::of(proptest::sample::select(LOOKUP_TYPES.to_vec())).prop_map(|t| {
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
