//! From the profile's modes to what a launch and a request need: draft length, n-gram type,
//! experts used.

use super::plan::ModeParts;
use crate::profile::Mode;

/// The n-gram speculation type of a bare `lookup`.
pub const DEFAULT_LOOKUP: &str = "ngram-simple";

/// The settings of a mode, combinations included.
pub fn parts(mode: &Mode) -> ModeParts {
    let mut p = ModeParts::default();
    add(&mut p, mode);
    p
}

fn add(p: &mut ModeParts, mode: &Mode) {
    match mode {
        Mode::Baseline => {}
        Mode::Spec { k } => p.spec_k = Some(*k),
        Mode::Lookup { spec_type } => {
            p.lookup = Some(
                spec_type
                    .clone()
                    .unwrap_or_else(|| DEFAULT_LOOKUP.to_string()),
            )
        }
        Mode::Moe { n } => p.moe_experts = Some(*n),
        Mode::Combo(list) => list.iter().for_each(|m| add(p, m)),
    }
}

/// The `--spec-type` values of a launch: the draft model's type first, then the n-gram one.
pub fn spec_types(p: &ModeParts) -> Vec<String> {
    let mut types = Vec::new();
    if p.spec_k.is_some() {
        types.push("draft-simple".to_string());
    }
    if let Some(l) = &p.lookup {
        types.push(l.clone());
    }
    types
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_combination_sets_every_part() {
        let mode: Mode = "moe:4+spec:16+lookup".parse().unwrap();
        let p = parts(&mode);
        assert_eq!(p.spec_k, Some(16));
        assert_eq!(p.moe_experts, Some(4));
        assert_eq!(p.lookup.as_deref(), Some("ngram-simple"));
        assert_eq!(spec_types(&p), ["draft-simple", "ngram-simple"]);
        assert!(parts(&Mode::Baseline).is_baseline());
        let typed: Mode = "lookup:ngram-mod".parse().unwrap();
        assert_eq!(spec_types(&parts(&typed)), ["ngram-mod"]);
    }
}
