//! The capability probe: `llama-server --help` parsed into typed [`Capabilities`], and the
//! one place where server command lines are built ([`Capabilities::server_args`]).
//!
//! Flag names move between llama.cpp builds (`--draft-max` became `--spec-draft-n-max`,
//! `--spec-type` appeared), so the harness never hard-codes a spelling it has not seen in
//! the chosen binary's help. A flag the binary lacks is a [`CapabilityError`] naming the
//! mode that needs it, never a silent fallback to a run that measures something else.

use crate::engine::LaunchSpec;
use crate::mode::{Launch, ModeKind};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;

/// Column where llama.cpp's `common_arg::to_string` starts the help text of a flag.
const HELP_COLUMN: usize = 40;

/// One option as `--help` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagInfo {
    /// Every spelling, in the order the help lists them (`-md`, `--model-draft`, ...).
    pub names: Vec<String>,
    /// The value placeholder (`N`, `FNAME`, `none,draft-simple,...`), if the flag takes one.
    pub value_hint: Option<String>,
    /// The help text, lines joined with `\n`.
    pub help: String,
    /// The environment variable that sets it, from `(env: ...)`.
    pub env: Option<String>,
    /// The help says "the argument has been removed": the name parses but errors out.
    pub removed: bool,
}

/// What one llama-server binary accepts, parsed from its `--help`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Every option the help lists, removed ones included (marked).
    pub flags: Vec<FlagInfo>,
    /// The values `--spec-type` takes (empty when the binary has no `--spec-type`).
    pub spec_types: Vec<String>,
    /// `--spec-type` takes a comma-separated list, so several speculators can combine.
    pub spec_type_list: bool,
}

/// A capability the chosen llama-server lacks for the requested launch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    #[error("mode {mode} needs {flag}, which this llama-server does not have{hint}")]
    MissingFlag {
        mode: String,
        flag: String,
        /// Extra explanation, e.g. that the flag exists but was removed.
        hint: String,
    },
    #[error(
        "mode {mode} needs --spec-type {value}, which this llama-server does not offer (it offers: {offered})"
    )]
    UnknownSpecType {
        mode: String,
        value: String,
        offered: String,
    },
    #[error("mode {mode} combines speculative types {types}, but this llama-server's --spec-type takes only one")]
    NoSpecTypeList { mode: String, types: String },
    #[error(
        "mode {mode} uses speculative type {value}, which needs a draft model (LaunchSpec.draft)"
    )]
    DraftMissing { mode: String, value: String },
    #[error("a draft model was given without a draft-* speculative type; this build does not draft with -md alone (add spec type draft-simple)")]
    DraftWithoutSpecType,
}

/// Options the harness builds command lines from: purpose, accepted spellings in order
/// of preference.
pub const HARNESS_FLAGS: &[(&str, &[&str])] = &[
    ("model", &["-m", "--model"]),
    ("host", &["--host"]),
    ("port", &["--port"]),
    ("threads", &["-t", "--threads"]),
    ("context", &["-c", "--ctx-size"]),
    ("slots", &["-np", "--parallel"]),
    ("spec type", &["--spec-type"]),
    (
        "draft model",
        &["-md", "--model-draft", "--spec-draft-model"],
    ),
    ("draft max", &["--spec-draft-n-max", "--draft-max"]),
    ("override kv", &["--override-kv"]),
    ("verbosity", &["-lv", "--verbosity", "--log-verbosity"]),
];

/// `ARCH.expert_used_count=int:N`: the `--override-kv` value of expert reduction, its key
/// from the mode table.
fn experts_used_kv(arch: &str, n: u32) -> String {
    let Launch::OverrideKv(key) = ModeKind::Moe.launch() else {
        unreachable!("the mode table launches moe with --override-kv")
    };
    format!("{arch}.{key}=int:{n}")
}

impl Capabilities {
    /// Parses the output of `llama-server --help`.
    pub fn parse_help(help: &str) -> Capabilities {
        let flags = parse_flags(help);
        let spec_type = flags
            .iter()
            .find(|f| !f.removed && f.names.iter().any(|n| n == "--spec-type"));
        let spec_types = spec_type
            .and_then(|f| f.value_hint.as_deref())
            .map(split_list)
            .unwrap_or_default();
        let spec_type_list = spec_type.is_some_and(|f| f.help.contains("comma-separated"));
        Capabilities {
            flags,
            spec_types,
            spec_type_list,
        }
    }

    /// The live (not removed) option that has `name` among its spellings.
    pub fn flag(&self, name: &str) -> Option<&FlagInfo> {
        self.flags
            .iter()
            .find(|f| !f.removed && f.names.iter().any(|n| n == name))
    }

    /// The binary accepts `name` and it still works.
    pub fn has(&self, name: &str) -> bool {
        self.flag(name).is_some()
    }

    /// The help lists `name` only to say it was removed.
    pub fn is_removed(&self, name: &str) -> bool {
        self.flag(name).is_none()
            && self
                .flags
                .iter()
                .any(|f| f.removed && f.names.iter().any(|n| n == name))
    }

    /// A copy without the options that have `name` among their spellings (for tests and
    /// for describing what an older build would lack).
    pub fn without(&self, name: &str) -> Capabilities {
        let mut caps = self.clone();
        caps.flags.retain(|f| !f.names.iter().any(|n| n == name));
        if name == "--spec-type" {
            caps.spec_types.clear();
            caps.spec_type_list = false;
        }
        caps
    }

    /// For each option the harness may use, the spelling this binary accepts (`None`:
    /// missing). Shown by `bench engine info`.
    pub fn harness_flags(&self) -> Vec<(&'static str, Option<String>)> {
        HARNESS_FLAGS
            .iter()
            .map(|(purpose, names)| {
                let found = names.iter().find(|n| self.has(n)).map(|n| n.to_string());
                (*purpose, found)
            })
            .collect()
    }

    /// Builds the llama-server command line (without the program) for `spec`.
    pub fn server_args(&self, spec: &LaunchSpec) -> Result<Vec<OsString>, CapabilityError> {
        let mode = spec.mode_label();
        let mut b = ArgBuilder {
            caps: self,
            mode: &mode,
            args: Vec::new(),
        };
        b.push("model", Some(spec.model.clone().into()))?;
        b.push("host", Some(spec.host.clone().into()))?;
        b.push("port", Some(spec.port.to_string().into()))?;
        b.push("threads", Some(spec.threads.to_string().into()))?;
        b.push("context", Some(spec.ctx.to_string().into()))?;
        b.push("slots", Some(spec.parallel.to_string().into()))?;
        self.spec_args(&mut b, spec)?;
        if let Some((arch, n)) = &spec.moe_experts_used {
            b.push("override kv", Some(experts_used_kv(arch, *n).into()))?;
        }
        if spec.verbose {
            b.push("verbosity", Some("4".into()))?;
        }
        b.args.extend(spec.extra.iter().map(OsString::from));
        Ok(b.args)
    }

    fn spec_args(&self, b: &mut ArgBuilder<'_>, spec: &LaunchSpec) -> Result<(), CapabilityError> {
        let Some(sl) = spec.spec.as_ref().filter(|s| !s.types.is_empty()) else {
            return match spec.draft {
                Some(_) => Err(CapabilityError::DraftWithoutSpecType),
                None => Ok(()),
            };
        };
        self.check_spec_types(b.mode, &sl.types)?;
        // By llama.cpp's naming, not the mode table: every `draft-*` type reads a draft
        // model, including those no mode of tpsbench launches (`draft-eagle3`).
        let needs_draft = sl.types.iter().find(|t| t.starts_with("draft-"));
        match (needs_draft, &spec.draft) {
            (Some(ty), None) => {
                return Err(CapabilityError::DraftMissing {
                    mode: b.mode.to_string(),
                    value: ty.clone(),
                })
            }
            (None, Some(_)) => return Err(CapabilityError::DraftWithoutSpecType),
            _ => {}
        }
        b.push("spec type", Some(sl.types.join(",").into()))?;
        if let Some(draft) = &spec.draft {
            b.push("draft model", Some(draft.clone().into()))?;
        }
        if let Some(k) = sl.draft_n_max {
            b.push("draft max", Some(k.to_string().into()))?;
        }
        Ok(())
    }

    fn check_spec_types(&self, mode: &str, types: &[String]) -> Result<(), CapabilityError> {
        if !self.has("--spec-type") {
            return Err(missing(self, mode, "--spec-type"));
        }
        if let Some(bad) = types.iter().find(|t| !self.spec_types.contains(t)) {
            return Err(CapabilityError::UnknownSpecType {
                mode: mode.to_string(),
                value: bad.clone(),
                offered: self.spec_types.join(", "),
            });
        }
        if types.len() > 1 && !self.spec_type_list {
            return Err(CapabilityError::NoSpecTypeList {
                mode: mode.to_string(),
                types: types.join(","),
            });
        }
        Ok(())
    }
}

/// Appends flags in the first spelling the binary accepts.
struct ArgBuilder<'a> {
    caps: &'a Capabilities,
    mode: &'a str,
    args: Vec<OsString>,
}

impl ArgBuilder<'_> {
    fn push(&mut self, purpose: &str, value: Option<OsString>) -> Result<(), CapabilityError> {
        let names = spellings(purpose);
        let name = names.iter().find(|n| self.caps.has(n)).ok_or_else(|| {
            missing(
                self.caps,
                self.mode,
                names.first().copied().unwrap_or(purpose),
            )
        })?;
        self.args.push(OsString::from(*name));
        self.args.extend(value);
        Ok(())
    }
}

/// The spellings of a [`HARNESS_FLAGS`] purpose.
fn spellings(purpose: &str) -> &'static [&'static str] {
    HARNESS_FLAGS
        .iter()
        .find(|(p, _)| *p == purpose)
        .map_or(&[], |(_, names)| names)
}

fn missing(caps: &Capabilities, mode: &str, flag: &str) -> CapabilityError {
    let hint = if caps.is_removed(flag) {
        " (its --help says the argument has been removed)".to_string()
    } else {
        String::new()
    };
    CapabilityError::MissingFlag {
        mode: mode.to_string(),
        flag: flag.to_string(),
        hint,
    }
}

fn split_list(hint: &str) -> Vec<String> {
    hint.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Splits the help into entries: an entry starts with a line whose first character is
/// `-` (section banners `----- x -----` excepted); indented lines continue it.
fn parse_flags(help: &str) -> Vec<FlagInfo> {
    let mut flags = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in help.lines() {
        if line.starts_with('-') && !line.starts_with("-----") {
            flags.extend(current.take().map(|(h, lines)| make_flag(&h, &lines)));
            let (head, first_help) = split_head(line);
            current = Some((head, first_help.into_iter().collect()));
        } else if line.starts_with(' ') {
            if let Some((_, lines)) = current.as_mut() {
                lines.push(line.trim().to_string());
            }
        } else {
            flags.extend(current.take().map(|(h, lines)| make_flag(&h, &lines)));
        }
    }
    flags.extend(current.map(|(h, lines)| make_flag(&h, &lines)));
    flags
}

/// Splits an entry's first line into the names part and the help text on that line.
fn split_head(line: &str) -> (String, Option<String>) {
    let padded = line.len() > HELP_COLUMN
        && line.is_char_boundary(HELP_COLUMN)
        && line[..HELP_COLUMN].ends_with("   ");
    if padded {
        let help = line[HELP_COLUMN..].trim();
        (
            line[..HELP_COLUMN].trim_end().to_string(),
            Some(help.to_string()),
        )
    } else {
        (line.trim_end().to_string(), None)
    }
}

fn make_flag(head: &str, help_lines: &[String]) -> FlagInfo {
    let (names, value_hint) = parse_names(head);
    let help = help_lines.join("\n");
    let env = help
        .split("(env: ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .map(str::to_string);
    let removed = help.contains("the argument has been removed");
    FlagInfo {
        names,
        value_hint,
        help,
        env,
        removed,
    }
}

/// `-h,    --help, --usage` or `--spec-type none,draft-simple` into names and hint.
fn parse_names(head: &str) -> (Vec<String>, Option<String>) {
    let mut names = Vec::new();
    let mut rest = head.trim_start();
    while rest.starts_with('-') {
        let end = rest.find([',', ' ']).unwrap_or(rest.len());
        names.push(rest[..end].to_string());
        let sep = rest[end..].chars().next();
        rest = rest[end..].trim_start_matches(',');
        if sep != Some(',') {
            break;
        }
        rest = rest.trim_start();
    }
    let hint = rest.trim();
    (names, (!hint.is_empty()).then(|| hint.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::SpeculativeArgs;
    use std::path::Path;

    const HELP: &str = include_str!("../../tests/fixtures/llama-server-help-11434.txt");

    fn caps() -> Capabilities {
        Capabilities::parse_help(HELP)
    }

    fn spec_launch(types: &[&str], k: Option<u32>) -> SpeculativeArgs {
        SpeculativeArgs {
            types: types.iter().map(|s| s.to_string()).collect(),
            draft_n_max: k,
        }
    }

    fn args_str(args: &[OsString]) -> String {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn parses_names_and_hints() {
        assert_eq!(
            parse_names("-h,    --help, --usage"),
            (vec!["-h".into(), "--help".into(), "--usage".into()], None)
        );
        assert_eq!(
            parse_names("-lv,   --verbosity, --log-verbosity N"),
            (
                vec!["-lv".into(), "--verbosity".into(), "--log-verbosity".into()],
                Some("N".into())
            )
        );
        assert_eq!(
            parse_names("--spec-type none,draft-simple"),
            (vec!["--spec-type".into()], Some("none,draft-simple".into()))
        );
    }

    #[test]
    fn fixture_has_the_flags_the_harness_uses() {
        let caps = caps();
        for name in [
            "-m",
            "--host",
            "--port",
            "-t",
            "-c",
            "-np",
            "-md",
            "--spec-draft-n-max",
        ] {
            assert!(caps.has(name), "{name} missing from the parsed help");
        }
        assert!(caps.has("--override-kv") && caps.has("-lv") && caps.has("--spec-type"));
        let md = caps.flag("--model-draft").unwrap();
        assert!(md.names.contains(&"-md".to_string()));
        assert!(md.names.contains(&"--spec-draft-model".to_string()));
        assert_eq!(
            caps.flag("-t").unwrap().env.as_deref(),
            Some("LLAMA_ARG_THREADS")
        );
    }

    #[test]
    fn removed_flags_are_known_but_not_usable() {
        let caps = caps();
        assert!(!caps.has("--draft-max"));
        assert!(caps.is_removed("--draft-max"));
        assert!(!caps.is_removed("--spec-draft-n-max"));
    }

    #[test]
    fn spec_types_match_engine_facts() {
        // The mode table's names of the pinned build are the ones its --help offers.
        let caps = caps();
        assert_eq!(caps.spec_types, crate::mode::SPEC_TYPES);
        assert!(caps.spec_type_list);
    }

    /// The command line's tail and the error label of each kind's example mode, written from
    /// llama-server's `--help` (one arm per kind: a new kind does not compile until it has
    /// one).
    fn expected_launch(kind: ModeKind) -> (&'static str, &'static str) {
        match kind {
            ModeKind::Baseline => ("baseline", "-np 1"),
            ModeKind::Spec => (
                "spec:16",
                "--spec-type draft-simple -md /m/d.gguf --spec-draft-n-max 16",
            ),
            ModeKind::Lookup => ("lookup:ngram-mod", "--spec-type ngram-mod"),
            ModeKind::Moe => ("moe:4", "--override-kv qwen3moe.expert_used_count=int:4"),
        }
    }

    #[test]
    fn every_kind_launches_with_its_arguments_and_keeps_its_label() {
        for kind in ModeKind::ALL {
            let (label, tail) = expected_launch(kind);
            let mut spec = LaunchSpec::new("/m/a.gguf");
            spec.set_mode(
                &label.parse().unwrap(),
                Some(Path::new("/m/d.gguf")),
                "qwen3moe",
            );
            let args = args_str(&caps().server_args(&spec).unwrap());
            assert!(args.ends_with(tail), "{label}: {args}");
            assert_eq!(spec.draft.is_some(), kind.needs_draft(), "{label}");
            assert_eq!(spec.mode_label(), label);
        }
    }

    #[test]
    fn a_combination_launches_in_launch_order_and_is_labelled_as_before() {
        let mut spec = LaunchSpec::new("/m/a.gguf");
        let mode = "moe:4+lookup+spec:8".parse().unwrap();
        spec.set_mode(&mode, Some(Path::new("/m/d.gguf")), "qwen3moe");
        let args = args_str(&caps().server_args(&spec).unwrap());
        assert!(
            args.ends_with(
                "--spec-type draft-simple,ngram-simple -md /m/d.gguf --spec-draft-n-max 8 \
                 --override-kv qwen3moe.expert_used_count=int:4"
            ),
            "{args}"
        );
        assert_eq!(spec.mode_label(), "moe:4+spec:8+lookup");
        spec.spec = Some(spec_launch(&["draft-eagle3"], Some(8)));
        assert_eq!(
            spec.mode_label(),
            "spec-type:draft-eagle3",
            "no mode of ours"
        );
    }

    #[test]
    fn baseline_args() {
        let mut spec = LaunchSpec::new("/m/a.gguf");
        spec.threads = 2;
        spec.port = 8081;
        let args = caps().server_args(&spec).unwrap();
        assert_eq!(
            args_str(&args),
            "-m /m/a.gguf --host 127.0.0.1 --port 8081 -t 2 -c 4096 -np 1"
        );
        assert_eq!(spec.mode_label(), "baseline");
    }

    #[test]
    fn spec_args_need_spec_type_and_draft() {
        let mut spec = LaunchSpec::new("/m/a.gguf");
        spec.draft = Some("/m/d.gguf".into());
        spec.spec = Some(spec_launch(&["draft-simple"], Some(16)));
        let args = args_str(&caps().server_args(&spec).unwrap());
        assert!(
            args.ends_with("--spec-type draft-simple -md /m/d.gguf --spec-draft-n-max 16"),
            "{args}"
        );
        assert_eq!(spec.mode_label(), "spec:16");
    }

    #[test]
    fn lookup_and_combo_args() {
        let mut spec = LaunchSpec::new("/m/a.gguf");
        spec.spec = Some(spec_launch(&["ngram-simple"], None));
        let args = args_str(&caps().server_args(&spec).unwrap());
        assert!(args.ends_with("--spec-type ngram-simple"), "{args}");
        assert_eq!(spec.mode_label(), "lookup");

        spec.draft = Some("/m/d.gguf".into());
        spec.spec = Some(spec_launch(&["draft-simple", "ngram-simple"], Some(8)));
        spec.moe_experts_used = Some(("qwen3moe".into(), 4));
        let args = args_str(&caps().server_args(&spec).unwrap());
        assert!(
            args.contains("--spec-type draft-simple,ngram-simple"),
            "{args}"
        );
        assert!(
            args.contains("--override-kv qwen3moe.expert_used_count=int:4"),
            "{args}"
        );
        assert_eq!(spec.mode_label(), "moe:4+spec:8+lookup");
    }

    #[test]
    fn verbose_uses_log_verbosity_4() {
        let mut spec = LaunchSpec::new("/m/a.gguf");
        spec.verbose = true;
        spec.extra = vec!["--no-warmup".into()];
        let args = args_str(&caps().server_args(&spec).unwrap());
        assert!(args.ends_with("-lv 4 --no-warmup"), "{args}");
    }

    #[test]
    fn missing_flag_names_the_mode() {
        let mut spec = LaunchSpec::new("/m/a.gguf");
        spec.draft = Some("/m/d.gguf".into());
        spec.spec = Some(spec_launch(&["draft-simple"], Some(16)));
        let err = caps()
            .without("--spec-draft-n-max")
            .server_args(&spec)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "mode spec:16 needs --spec-draft-n-max, which this llama-server does not have"
        );
        let err = caps()
            .without("--spec-type")
            .server_args(&spec)
            .unwrap_err();
        assert!(err
            .to_string()
            .starts_with("mode spec:16 needs --spec-type"));
    }

    #[test]
    fn removed_flag_is_named_as_removed() {
        let mut caps = caps().without("--spec-draft-n-max");
        // An older build that still has --draft-max live gets it as the alias.
        let mut spec = LaunchSpec::new("/m/a.gguf");
        spec.draft = Some("/m/d.gguf".into());
        spec.spec = Some(spec_launch(&["draft-simple"], Some(4)));
        assert!(caps.server_args(&spec).is_err());
        for f in caps
            .flags
            .iter_mut()
            .filter(|f| f.names.contains(&"--draft-max".into()))
        {
            f.removed = false;
        }
        let args = args_str(&caps.server_args(&spec).unwrap());
        assert!(args.ends_with("--draft-max 4"), "{args}");
    }

    #[test]
    fn unknown_spec_type_and_bad_draft_combinations_are_errors() {
        let mut spec = LaunchSpec::new("/m/a.gguf");
        spec.spec = Some(spec_launch(&["ngram-magic"], None));
        let err = caps().server_args(&spec).unwrap_err();
        assert!(
            matches!(err, CapabilityError::UnknownSpecType { .. }),
            "{err}"
        );

        spec.spec = Some(spec_launch(&["draft-simple"], Some(16)));
        let err = caps().server_args(&spec).unwrap_err();
        assert!(matches!(err, CapabilityError::DraftMissing { .. }), "{err}");

        spec.spec = None;
        spec.draft = Some("/m/d.gguf".into());
        let err = caps().server_args(&spec).unwrap_err();
        assert_eq!(err, CapabilityError::DraftWithoutSpecType);
    }

    #[test]
    fn combined_types_need_list_support() {
        let mut caps = caps();
        caps.spec_type_list = false;
        let mut spec = LaunchSpec::new("/m/a.gguf");
        spec.spec = Some(spec_launch(&["ngram-simple", "ngram-mod"], None));
        let err = caps.server_args(&spec).unwrap_err();
        assert!(
            matches!(err, CapabilityError::NoSpecTypeList { .. }),
            "{err}"
        );
    }
}
