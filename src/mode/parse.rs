//! Text to [`Mode`]: the one place that splits a combination at `+`, finds each part's kind
//! in the table by its label, and reads its parameter as the table says. A rejection names
//! the allowed values, also from the table.

use super::table::{allowed_modes, ModeKind, Param};
use super::Mode;
use std::fmt;
use std::str::FromStr;

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
        write!(f, " (allowed: {})", allowed_modes())
    }
}

fn error(text: &str, reason: String) -> ModeError {
    ModeError {
        text: text.to_string(),
        reason,
    }
}

/// The count after `spec:` or `moe:`, as the kind's [`Param::Count`] describes it.
fn count(text: &str, kind: ModeKind, value: Option<&str>) -> Result<u32, ModeError> {
    let Param::Count { counts, missing } = kind.param() else {
        unreachable!("{} takes no count", kind.label())
    };
    let value = value.ok_or_else(|| error(text, missing.into()))?;
    let n: u32 = value
        .parse()
        .map_err(|_| error(text, format!("`{value}` is not a whole number of {counts}")))?;
    if n == 0 {
        return Err(error(
            text,
            format!("the number of {counts} must be greater than 0"),
        ));
    }
    Ok(n)
}

/// The optional `--spec-type` value after `lookup:`, one of the kind's.
fn spec_type(text: &str, kind: ModeKind, value: Option<&str>) -> Result<Option<String>, ModeError> {
    match value {
        None => Ok(None),
        Some(t) if kind.spec_types().contains(&t) => Ok(Some(t.to_string())),
        Some(t) => Err(error(text, format!("unknown {} type `{t}`", kind.label()))),
    }
}

fn parse_single(text: &str, part: &str) -> Result<Mode, ModeError> {
    let (head, value) = match part.split_once(':') {
        Some((h, v)) => (h, Some(v)),
        None => (part, None),
    };
    let unknown = || error(text, format!("unknown mode `{head}`"));
    let kind = ModeKind::from_label(head).ok_or_else(unknown)?;
    // One arm per kind: a new kind does not compile until it says how it is read.
    match kind {
        ModeKind::Baseline => value.map_or(Ok(Mode::Baseline), |_| Err(unknown())),
        ModeKind::Spec => Ok(Mode::Spec {
            k: count(text, kind, value)?,
        }),
        ModeKind::Lookup => Ok(Mode::Lookup {
            spec_type: spec_type(text, kind, value)?,
        }),
        ModeKind::Moe => Ok(Mode::Moe {
            n: count(text, kind, value)?,
        }),
    }
}

/// A combination's parts: each combinable, each kind once.
fn check_combination(text: &str, parts: &[Mode]) -> Result<(), ModeError> {
    for (i, part) in parts.iter().enumerate() {
        let kind = part.kind().expect("a parsed part is a single mode");
        if !kind.combines() {
            return Err(error(text, format!("{} cannot be combined", kind.label())));
        }
        if parts[..i].iter().any(|p| p.kind() == Some(kind)) {
            return Err(error(text, format!("{} appears twice", kind.label())));
        }
    }
    Ok(())
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
        check_combination(text, &parts)?;
        Ok(Mode::Combo(parts))
    }
}
