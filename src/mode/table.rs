//! The one table of mode kinds: for each [`ModeKind`], its label, its parameter, whether it
//! needs a draft model, how it reaches llama-server's command line, and how a running
//! server's `/slots` shows it. Every other place (parser, labels, launch keys, command lines,
//! remote read-back, the guide's acceleration rows, calibrate, predict) reads these answers.
//!
//! Each property is one exhaustive `match`, so adding a kind is one arm per property here
//! (plus its variant of [`super::Mode`]), and the compiler points at every `match` outside
//! that must learn it. The speculative type names of the pinned llama.cpp build are written
//! once, in [`SPEC_TYPES`]; the kinds' `--spec-type` values are slices of it.
//!
//! Architecture invariant: this module knows no layer above `util` (no `llamacpp`, `profile`,
//! `driver` or `guide`): they all read it, so it must not read them.

use serde::{Serialize, Serializer};

/// The `--spec-type` values of the pinned llama.cpp build, in the order its `--help` lists
/// them (`common/speculative.cpp`). tpsbench launches only `draft-simple` and the `ngram-*`
/// types; the other `draft-*` types need drafts it does not make (EAGLE-3 heads, MTP layers).
pub static SPEC_TYPES: [&str; 11] = [
    "none",
    "draft-simple",
    "draft-eagle3",
    "draft-mtp",
    "draft-dflash",
    "draft-dspark",
    "ngram-simple",
    "ngram-map-k",
    "ngram-map-k4v",
    "ngram-mod",
    "ngram-cache",
];

/// One kind of acceleration mode, without its parameter (`spec`, not `spec:16`).
///
/// The order is launch order: a combined launch lists its kinds' arguments, and its label,
/// in this order (`spec:8+lookup:ngram-simple+moe:4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ModeKind {
    /// No acceleration.
    Baseline,
    /// Speculative decoding with a draft model (`spec:K`).
    Spec,
    /// Prompt-lookup (n-gram) speculation without a draft model (`lookup`, `lookup:TYPE`).
    Lookup,
    /// MoE expert reduction (`moe:N`).
    Moe,
}

/// What follows a kind's label after `:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// Nothing (`baseline`).
    None,
    /// A required count above zero: what it counts, and the error when it is missing.
    Count {
        counts: &'static str,
        missing: &'static str,
    },
    /// Optionally one of the kind's `--spec-type` values; without one, the first.
    SpecType,
}

/// How a kind reaches llama-server's command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// Nothing is added.
    Nothing,
    /// `--spec-type` with one of these values (the first is the default), combined with the
    /// other kinds' values in one comma-separated list. A running server lists the value
    /// back in `/slots` (`speculative.types`).
    SpecType(&'static [&'static str]),
    /// `--override-kv ARCH.KEY=int:N`, the model's metadata key overridden with the
    /// parameter. Invisible to `/props` and `/slots`.
    OverrideKv(&'static str),
}

impl ModeKind {
    /// Every kind, in launch order. A test walks it; keep it complete.
    pub const ALL: [ModeKind; 4] = [
        ModeKind::Baseline,
        ModeKind::Spec,
        ModeKind::Lookup,
        ModeKind::Moe,
    ];

    /// The label as a profile writes it, before any `:PARAM`.
    pub fn label(self) -> &'static str {
        match self {
            ModeKind::Baseline => "baseline",
            ModeKind::Spec => "spec",
            ModeKind::Lookup => "lookup",
            ModeKind::Moe => "moe",
        }
    }

    /// What the label takes after `:`.
    pub fn param(self) -> Param {
        match self {
            ModeKind::Baseline => Param::None,
            ModeKind::Spec => Param::Count {
                counts: "drafted tokens",
                missing: "spec needs the drafted-token count K (spec:16)",
            },
            ModeKind::Lookup => Param::SpecType,
            ModeKind::Moe => Param::Count {
                counts: "experts",
                missing: "moe needs the number of experts used N (moe:4)",
            },
        }
    }

    /// How the allowed-values text of a mode error shows the kind.
    fn usage(self) -> String {
        match self {
            ModeKind::Baseline => "baseline".into(),
            ModeKind::Spec => "spec:K (K > 0 drafted tokens)".into(),
            ModeKind::Lookup => format!(
                "lookup, lookup:TYPE (TYPE one of {})",
                self.spec_types().join(", ")
            ),
            ModeKind::Moe => "moe:N (N > 0 experts)".into(),
        }
    }

    /// The server needs a draft model (`-md`) for this kind.
    pub fn needs_draft(self) -> bool {
        match self {
            ModeKind::Spec => true,
            ModeKind::Baseline | ModeKind::Lookup | ModeKind::Moe => false,
        }
    }

    /// The kind's launch arguments.
    pub fn launch(self) -> Launch {
        match self {
            ModeKind::Baseline => Launch::Nothing,
            ModeKind::Spec => Launch::SpecType(&SPEC_TYPES[1..2]),
            ModeKind::Lookup => Launch::SpecType(&SPEC_TYPES[6..]),
            ModeKind::Moe => Launch::OverrideKv("expert_used_count"),
        }
    }

    /// The `--spec-type` values the kind launches with (empty when it does not speculate);
    /// the first is the default.
    pub fn spec_types(self) -> &'static [&'static str] {
        match self.launch() {
            Launch::SpecType(types) => types,
            Launch::Nothing | Launch::OverrideKv(_) => &[],
        }
    }

    /// The kind drafts tokens (a draft model or n-gram lookup) instead of decoding one per step.
    pub fn drafts(self) -> bool {
        !self.spec_types().is_empty()
    }

    /// The kind may join others in a combination (`moe:4+spec:16+lookup`).
    pub fn combines(self) -> bool {
        self != ModeKind::Baseline
    }

    /// The kind whose label is `label`.
    pub fn from_label(label: &str) -> Option<ModeKind> {
        ModeKind::ALL.into_iter().find(|k| k.label() == label)
    }

    /// The kind a running server is, read back from a speculative type its `/slots` lists
    /// (`draft-simple` -> spec, `ngram-mod` -> lookup). `None` for a type tpsbench does not
    /// launch (`draft-eagle3`): reading it as one it does would measure something else
    /// under that label.
    pub fn of_spec_type(spec_type: &str) -> Option<ModeKind> {
        ModeKind::ALL
            .into_iter()
            .find(|k| k.spec_types().contains(&spec_type))
    }
}

/// The allowed values a mode error shows, from the table.
pub fn allowed_modes() -> String {
    let usages: Vec<String> = ModeKind::ALL.into_iter().map(ModeKind::usage).collect();
    let combining: Vec<&str> = ModeKind::ALL
        .into_iter()
        .filter(|k| k.combines())
        .map(ModeKind::label)
        .collect();
    let (last, rest) = combining.split_last().expect("some kinds combine");
    format!(
        "{}, or a combination of {} and {last} joined with `+` (moe:4+spec:16+lookup)",
        usages.join(", "),
        rest.join(", ")
    )
}

/// A kind serializes as its label.
impl Serialize for ModeKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Mode;
    use super::*;

    /// What llama.cpp and the profile format say about a kind, written out by hand (not
    /// computed by the table under test).
    struct Expected {
        label: &'static str,
        /// A mode of the kind as a profile writes it.
        example: &'static str,
        needs_draft: bool,
        launch: Launch,
        /// The `--spec-type` values the example launches with.
        example_spec_types: &'static [&'static str],
        /// Types a running server's `/slots` lists, and the mode each reads back as.
        slots: &'static [(&'static str, &'static str)],
    }

    /// One arm per kind: a new kind does not compile until its facts are written here.
    fn expected(kind: ModeKind) -> Expected {
        match kind {
            ModeKind::Baseline => Expected {
                label: "baseline",
                example: "baseline",
                needs_draft: false,
                launch: Launch::Nothing,
                example_spec_types: &[],
                slots: &[],
            },
            ModeKind::Spec => Expected {
                label: "spec",
                example: "spec:16",
                needs_draft: true,
                launch: Launch::SpecType(&["draft-simple"]),
                example_spec_types: &["draft-simple"],
                slots: &[("draft-simple", "spec:8")],
            },
            ModeKind::Lookup => Expected {
                label: "lookup",
                example: "lookup:ngram-mod",
                needs_draft: false,
                launch: Launch::SpecType(&[
                    "ngram-simple",
                    "ngram-map-k",
                    "ngram-map-k4v",
                    "ngram-mod",
                    "ngram-cache",
                ]),
                example_spec_types: &["ngram-mod"],
                slots: &[
                    ("ngram-simple", "lookup:ngram-simple"),
                    ("ngram-cache", "lookup:ngram-cache"),
                ],
            },
            ModeKind::Moe => Expected {
                label: "moe",
                example: "moe:4",
                needs_draft: false,
                launch: Launch::OverrideKv("expert_used_count"),
                example_spec_types: &[],
                slots: &[],
            },
        }
    }

    #[test]
    fn every_kind_parses_labels_launches_and_reads_back_as_written() {
        for kind in ModeKind::ALL {
            let want = expected(kind);
            assert_eq!(kind.label(), want.label);
            assert_eq!(ModeKind::from_label(want.label), Some(kind));
            let mode: Mode = want.example.parse().unwrap();
            assert_eq!(mode.kind(), Some(kind), "{}", want.example);
            assert_eq!(mode.to_string(), want.example, "parse <-> label");
            assert_eq!(kind.needs_draft(), want.needs_draft, "{}", want.label);
            assert_eq!(mode.needs_draft(), want.needs_draft, "{}", want.label);
            assert_eq!(kind.launch(), want.launch, "{}", want.label);
            assert_eq!(mode.spec_types(), want.example_spec_types, "{}", want.label);
            assert_eq!(mode.is_speculative(), kind.drafts(), "{}", want.label);
            for (spec_type, label) in want.slots {
                assert_eq!(ModeKind::of_spec_type(spec_type), Some(kind));
                let types = [spec_type.to_string()];
                let back = Mode::of_spec_types(&types, 8).unwrap();
                assert_eq!(back.to_string(), *label, "/slots {spec_type}");
                assert_eq!(back.kind(), Some(kind));
            }
        }
    }

    #[test]
    fn types_tpsbench_does_not_launch_read_back_as_no_mode() {
        for spec_type in [
            "none",
            "draft-eagle3",
            "draft-mtp",
            "draft-dflash",
            "draft-dspark",
        ] {
            assert!(SPEC_TYPES.contains(&spec_type), "{spec_type}");
            assert_eq!(ModeKind::of_spec_type(spec_type), None, "{spec_type}");
            assert_eq!(Mode::of_spec_type(spec_type, Some(8)), None);
            let types = ["draft-simple".to_string(), spec_type.to_string()];
            assert_eq!(
                Mode::of_spec_types(&types, 8),
                Err(Some(spec_type.to_string()))
            );
        }
        assert_eq!(Mode::of_spec_types(&[], 8), Err(None), "type not known yet");
        assert_eq!(ModeKind::of_spec_type("ngram-magic"), None);
    }

    #[test]
    fn each_launched_type_belongs_to_one_kind() {
        for spec_type in SPEC_TYPES {
            let kinds = ModeKind::ALL
                .into_iter()
                .filter(|k| k.spec_types().contains(&spec_type))
                .count();
            assert!(kinds <= 1, "{spec_type} is launched by {kinds} kinds");
        }
    }

    #[test]
    fn a_combination_reads_back_in_the_order_its_server_lists() {
        let types = ["draft-simple".to_string(), "ngram-simple".to_string()];
        let mode = Mode::of_spec_types(&types, 16).unwrap();
        assert_eq!(mode.to_string(), "spec:16+lookup:ngram-simple");
        assert_eq!(mode.briefly().to_string(), "spec:16+lookup");
        assert_eq!(
            Mode::of_spec_type("ngram-mod", None).unwrap().briefly(),
            "lookup:ngram-mod"
        );
        assert_eq!(Mode::of_spec_type("draft-simple", None), None, "K unknown");
    }

    #[test]
    fn allowed_values_name_every_kind() {
        assert_eq!(
            allowed_modes(),
            "baseline, spec:K (K > 0 drafted tokens), lookup, lookup:TYPE (TYPE one of \
             ngram-simple, ngram-map-k, ngram-map-k4v, ngram-mod, ngram-cache), moe:N (N > 0 \
             experts), or a combination of spec, lookup and moe joined with `+` \
             (moe:4+spec:16+lookup)"
        );
    }
}
