//! From what a server runs with back to a [`Mode`], through the table: the `--spec-type`
//! values of a launch (for its label in error messages) or the speculative types a running
//! server's `/slots` lists (for measuring it). A type no kind launches with is not read as
//! one that is: it is handed back, so that the caller can say which it was.

use super::table::ModeKind;
use super::Mode;

impl Mode {
    /// The speculative part a server launched with `--spec-type spec_type` runs; `k` is
    /// the draft length a `spec` part needs (`None`: not known, and no `spec` part is
    /// read). `None` when no kind launches with that type (`draft-eagle3`, `none`).
    pub fn of_spec_type(spec_type: &str, k: Option<u32>) -> Option<Mode> {
        // One arm per kind: a new speculating kind does not compile until it is read back.
        match ModeKind::of_spec_type(spec_type)? {
            ModeKind::Spec => Some(Mode::Spec { k: k? }),
            ModeKind::Lookup => Some(Mode::Lookup {
                spec_type: Some(spec_type.to_string()),
            }),
            // Neither launches with a `--spec-type`, so no type reads back as one of them.
            ModeKind::Baseline | ModeKind::Moe => None,
        }
    }

    /// The mode of a server speculating with `types` (`/slots`' `speculative.types`, `none`
    /// left out), each part with its type spelt out; `k` stands for the unknown draft
    /// length. `Err` with the first type tpsbench does not launch, or with nothing when no
    /// type is listed.
    pub fn of_spec_types(types: &[String], k: u32) -> Result<Mode, Option<String>> {
        if types.is_empty() {
            return Err(None);
        }
        let parts = types
            .iter()
            .map(|t| Mode::of_spec_type(t, Some(k)).ok_or_else(|| Some(t.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Mode::from_parts(parts))
    }

    /// The same mode as a profile writes it most briefly: a lookup of its kind's default
    /// type without the type (`lookup:ngram-simple` -> `lookup`).
    pub fn briefly(&self) -> Mode {
        match self {
            Mode::Lookup { spec_type: Some(t) }
                if ModeKind::Lookup.spec_types().first() == Some(&t.as_str()) =>
            {
                Mode::Lookup { spec_type: None }
            }
            Mode::Combo(parts) => Mode::Combo(parts.iter().map(Mode::briefly).collect()),
            other => other.clone(),
        }
    }
}
