//! Finds a role's model file in a models directory the way people name them: the exact
//! name first, then the same name in another case (`qwen2.5-coder-0.5b-instruct-q8_0.gguf`
//! for `Qwen2.5-Coder-0.5B-Instruct-Q8_0.gguf`), then the common publisher variants: `.`,
//! `-` and `_` as one separator (`.Q4_K_M` or `-Q4_K_M`) and with or without `-Instruct`.
//! A looser match is taken only when it is the only one; the caller reports which was used.
//! An absent file comes back with the names nearest to it, for the message.

use std::path::{Path, PathBuf};

/// How a file was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    /// The name as written.
    Exact,
    /// The same name in another case.
    CaseInsensitive,
    /// A publisher variant: separators, case, `-Instruct`.
    Variant,
}

impl std::fmt::Display for MatchKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MatchKind::Exact => "exact name",
            MatchKind::CaseInsensitive => "case-insensitive match",
            MatchKind::Variant => "publisher variant: separators, case or -Instruct",
        })
    }
}

/// The outcome of a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// Found, and how.
    Found(PathBuf, MatchKind),
    /// Not there: the path looked for, and up to three names nearest to it in its
    /// directory (also the several candidates when a loose match is ambiguous).
    Absent {
        looked_for: PathBuf,
        near: Vec<String>,
    },
}

impl Located {
    /// `model file absent (looked for NAME in DIR; near matches: a, b)`.
    pub fn absent_reason(looked_for: &Path, near: &[String]) -> String {
        let name = looked_for
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let dir = looked_for.parent().unwrap_or(Path::new("."));
        let near = if near.is_empty() {
            "none".to_string()
        } else {
            near.join(", ")
        };
        format!(
            "model file absent (looked for {name} in {}; near matches: {near})",
            dir.display()
        )
    }
}

/// Looks for `models_dir/model` (a sharded model by its first shard's name).
pub fn locate(models_dir: &Path, model: &Path) -> Located {
    let wanted = models_dir.join(model);
    if wanted.is_file() {
        return Located::Found(wanted, MatchKind::Exact);
    }
    let Some(name) = wanted.file_name().and_then(|n| n.to_str()) else {
        return absent(wanted, Vec::new());
    };
    let dir = wanted.parent().unwrap_or(Path::new(".")).to_path_buf();
    let files = gguf_files(&dir);
    let lower = name.to_lowercase();
    let same_case: Vec<&String> = files.iter().filter(|f| f.to_lowercase() == lower).collect();
    if let [only] = same_case.as_slice() {
        return Located::Found(dir.join(only), MatchKind::CaseInsensitive);
    }
    let key = variant_key(name);
    let variants: Vec<&String> = files.iter().filter(|f| variant_key(f) == key).collect();
    match variants.as_slice() {
        [only] => Located::Found(dir.join(only), MatchKind::Variant),
        [] => {
            let near = nearest(&key, &files);
            absent(wanted, near)
        }
        several => absent(wanted, several.iter().map(|s| s.to_string()).collect()),
    }
}

fn absent(looked_for: PathBuf, near: Vec<String>) -> Located {
    Located::Absent { looked_for, near }
}

/// The `.gguf` files of a directory, sorted (none when it cannot be read).
fn gguf_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.to_lowercase().ends_with(".gguf"))
        .collect();
    names.sort();
    names
}

/// The name as publishers vary it: lowercase, `.` `-` `_` one separator, no `instruct`
/// part, no `.gguf`.
fn variant_key(name: &str) -> String {
    let lower = name.to_lowercase();
    let stem = lower.strip_suffix(".gguf").unwrap_or(&lower);
    let parts: Vec<&str> = stem
        .split(['.', '-', '_'])
        .filter(|p| !p.is_empty() && *p != "instruct")
        .collect();
    parts.join("-")
}

/// Up to three names whose variant key shares the longest start with `key` (at least half
/// of it, and at least 4 characters).
fn nearest(key: &str, files: &[String]) -> Vec<String> {
    let shared = |f: &String| {
        key.chars()
            .zip(variant_key(f).chars())
            .take_while(|(a, b)| a == b)
            .count()
    };
    let floor = (key.chars().count() / 2).max(4);
    let mut scored: Vec<(usize, &String)> = files
        .iter()
        .map(|f| (shared(f), f))
        .filter(|(s, _)| *s >= floor)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    scored.into_iter().take(3).map(|(_, f)| f.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            std::fs::write(dir.path().join(f), b"GGUF").unwrap();
        }
        dir
    }

    #[test]
    fn exact_then_case_then_publisher_variants() {
        let d = dir_with(&[
            "qwen2.5-coder-0.5b-instruct-q8_0.gguf",
            "Qwen2.5-7B-Instruct.Q4_K_M.gguf",
            "Llama-3-8B-Q6_K.gguf",
            "llama-3-8b-q6_k.gguf",
        ]);
        let p = d.path();
        let found = |name: &str| match locate(p, Path::new(name)) {
            Located::Found(path, how) => {
                (path.file_name().unwrap().to_str().unwrap().to_string(), how)
            }
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(
            found("Llama-3-8B-Q6_K.gguf"),
            ("Llama-3-8B-Q6_K.gguf".into(), MatchKind::Exact)
        );
        assert_eq!(
            found("Qwen2.5-Coder-0.5B-Instruct-Q8_0.gguf"),
            (
                "qwen2.5-coder-0.5b-instruct-q8_0.gguf".into(),
                MatchKind::CaseInsensitive
            )
        );
        // `-Q4_K_M` for `.Q4_K_M`.
        assert_eq!(
            found("Qwen2.5-7B-Instruct-Q4_K_M.gguf"),
            ("Qwen2.5-7B-Instruct.Q4_K_M.gguf".into(), MatchKind::Variant)
        );
        // Without -Instruct, and the quant suffix in lowercase.
        assert_eq!(
            found("Qwen2.5-Coder-0.5B-Q8_0.gguf"),
            (
                "qwen2.5-coder-0.5b-instruct-q8_0.gguf".into(),
                MatchKind::Variant
            )
        );
    }

    #[test]
    fn an_absent_file_lists_its_near_matches_and_an_ambiguous_one_its_candidates() {
        let d = dir_with(&[
            "Qwen2.5-7B-Instruct-Q8_0.gguf",
            "Qwen2.5-7B-Instruct-Q6_K.gguf",
            "notes.txt",
            "gemma-3-270m.gguf",
            "a-q4_k_m.gguf",
            "A.Q4_K_M.gguf",
        ]);
        let Located::Absent { looked_for, near } =
            locate(d.path(), Path::new("Qwen2.5-7B-Instruct-Q4_K_M.gguf"))
        else {
            panic!("must be absent");
        };
        assert_eq!(
            near,
            [
                "Qwen2.5-7B-Instruct-Q6_K.gguf",
                "Qwen2.5-7B-Instruct-Q8_0.gguf"
            ]
        );
        let reason = Located::absent_reason(&looked_for, &near);
        assert_eq!(
            reason,
            format!(
                "model file absent (looked for Qwen2.5-7B-Instruct-Q4_K_M.gguf in {}; near \
                 matches: Qwen2.5-7B-Instruct-Q6_K.gguf, Qwen2.5-7B-Instruct-Q8_0.gguf)",
                d.path().display()
            )
        );
        // Two files are the same variant of `a_q4_k_m.gguf`: neither is taken.
        let Located::Absent { near, .. } = locate(d.path(), Path::new("a_q4_k_m.gguf")) else {
            panic!("ambiguous must be absent");
        };
        assert_eq!(near, ["A.Q4_K_M.gguf", "a-q4_k_m.gguf"]);
        let Located::Absent { near, .. } = locate(d.path(), Path::new("mistral-7b.gguf")) else {
            panic!()
        };
        assert!(near.is_empty(), "{near:?}");
    }
}
