//! The layering of `src/`, kept by a test: every module of `src/` has a layer in
//! `docs/ARCHITECTURE.md` ("Layers" table), and no file imports a module of a higher layer,
//! and no two files import each other (nor any longer circle of files).
//!
//! An import is a `crate::` path anywhere in a file (a `use` statement, grouped or not, or a
//! path written inline) and a `use super::` statement at the file's top level (column 0: a
//! test module's `use super::*` is the file itself). The checker reads text, as the rest of
//! the project's tidy checks do; it is tested on a small tree of its own below, with a
//! climbing import and a circle of known file and line.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// One import of one file: the file it resolves to and the line it is written on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Import {
    target: String,
    line: usize,
    path: String,
}

/// The source tree: every `.rs` file under `src/` by its path relative to `src/`.
struct Tree {
    files: BTreeMap<String, String>,
}

impl Tree {
    fn read(src: &Path) -> Tree {
        let mut files = BTreeMap::new();
        let mut stack = vec![src.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let rel = path
                        .strip_prefix(src)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    let text = fs::read_to_string(&path).unwrap();
                    files.insert(rel, text);
                }
            }
        }
        Tree { files }
    }

    /// The module path of a file: `driver/mod.rs` -> `driver`, `driver/plan.rs` ->
    /// `driver::plan`, `lib.rs` and `main.rs` -> the crate root.
    fn module_of(file: &str) -> Vec<String> {
        let stem = file.trim_end_matches(".rs");
        let mut parts: Vec<String> = stem.split('/').map(str::to_string).collect();
        if parts.last().is_some_and(|p| p == "mod") || parts == ["lib"] || parts == ["main"] {
            parts.pop();
        }
        parts
    }

    /// The file that defines the longest prefix of a module path.
    fn resolve(&self, path: &[String]) -> Option<String> {
        (0..=path.len()).rev().find_map(|n| {
            let prefix = path[..n].join("/");
            let candidates = match n {
                0 => vec!["lib.rs".to_string()],
                _ => vec![format!("{prefix}.rs"), format!("{prefix}/mod.rs")],
            };
            candidates.into_iter().find(|c| self.files.contains_key(c))
        })
    }

    /// Every import of `file`, resolved to files of the tree (itself excluded).
    fn imports(&self, file: &str) -> Vec<Import> {
        let text = strip_comments(&self.files[file]);
        let here = Tree::module_of(file);
        let mut out = BTreeSet::new();
        for (path, line, depth) in paths(&text) {
            let Some(absolute) = absolute(&here, depth, &path) else {
                continue;
            };
            if let Some(target) = self.resolve(&absolute).filter(|t| t != file) {
                out.insert(Import { target, line, path });
            }
        }
        out.into_iter().collect()
    }
}

/// Comments blanked out (doc links name modules without importing them), line breaks kept.
fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn line_at(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

/// Paths that start with `crate::` or `super::`, with grouped `use crate::a::{b, c::d}`
/// expanded, each with its line and how many inline modules (`mod tests { ... }`) enclose
/// it: a `super::` there climbs out of the inline module first.
fn paths(text: &str) -> Vec<(String, usize, usize)> {
    let nested = inline_modules(text);
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    for head in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = text[from..].find(head).map(|i| i + from) {
            from = i + head.len();
            let before = i.checked_sub(1).map(|j| bytes[j] as char);
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let depth = nested.iter().filter(|r| r.contains(&i)).count();
            for path in expand(&use_tree(&text[i..])) {
                out.push((path, line_at(text, i), depth));
            }
        }
    }
    out
}

/// The byte ranges of inline modules (`mod name { ... }`), found by matching braces.
fn inline_modules(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        let t = t.strip_prefix("pub ").unwrap_or(t);
        if t.starts_with("mod ") && t.trim_end().ends_with('{') {
            let open = offset + line.rfind('{').unwrap();
            out.push(open..matching_brace(text, open));
        }
        offset += line.len();
    }
    out
}

fn matching_brace(text: &str, open: usize) -> usize {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 1 => return open + i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    text.len()
}

/// The use tree starting at `text`: identifiers, `::`, braces and commas, up to the first
/// character that cannot belong to a path.
fn use_tree(text: &str) -> String {
    let mut depth = 0usize;
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' | ' ' | '\n' | '\t' | '\r' if depth > 0 => {}
            c if c.is_alphanumeric() || c == '_' || c == ':' || c == '*' => {}
            _ => break,
        }
        out.push(if c.is_whitespace() { ' ' } else { c });
    }
    out.trim_end_matches(':').to_string()
}

/// `a::{b, c::{d, e}}` -> `a::b`, `a::c::d`, `a::c::e` (`self` members name the prefix).
fn expand(tree: &str) -> Vec<String> {
    let Some(open) = tree.find('{') else {
        return vec![tree.to_string()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut members = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                members.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    members.push(&inner[start..]);
    members
        .into_iter()
        .map(|m| m.split(" as ").next().unwrap_or(m).trim())
        .filter(|m| !m.is_empty())
        .flat_map(|m| match m {
            "self" => vec![prefix.trim_end_matches(':').to_string()],
            m => expand(&format!("{prefix}{m}")),
        })
        .collect()
}

/// A `crate::` or `super::` path as segments from the crate root, for a path written in a
/// file of module `here` inside `depth` inline modules (each `super::` climbs out of one
/// inline module first, then out of the file's module).
fn absolute(here: &[String], depth: usize, path: &str) -> Option<Vec<String>> {
    let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Vec<String> = match segments.first() {
        Some(&"crate") => Vec::new(),
        Some(&"super") => here.to_vec(),
        _ => return None,
    };
    if segments[0] == "crate" {
        segments.remove(0);
    }
    let inline_supers = segments
        .iter()
        .take(depth)
        .take_while(|s| **s == "super")
        .count();
    segments.drain(..inline_supers);
    while segments.first() == Some(&"super") {
        base.pop()?;
        segments.remove(0);
    }
    base.extend(segments.iter().map(|s| s.to_string()));
    Some(base)
}

/// The layer table of `docs/ARCHITECTURE.md`: module -> layer number (0 at the bottom).
/// Rows look like `| 3 | hardware | ... |`; the crate root (`lib.rs`, `main.rs`) is named
/// `lib` and `main`.
fn layers(doc: &str) -> BTreeMap<String, u32> {
    let section = doc
        .split("\n## Layers")
        .nth(1)
        .expect("docs/ARCHITECTURE.md has a `## Layers` section");
    let section = section.split("\n## ").next().unwrap();
    let mut out = BTreeMap::new();
    for row in section.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let Some(layer) = cells.get(1).and_then(|c| c.parse::<u32>().ok()) else {
            continue;
        };
        for module in cells[2].split(',') {
            let name = module.trim().trim_matches('`').trim_end_matches('/');
            let name = name.trim_end_matches(".rs");
            out.insert(name.to_string(), layer);
        }
    }
    out
}

/// The top-level module a file belongs to (`driver/plan.rs` -> `driver`, `lib.rs` -> `lib`).
fn top(file: &str) -> String {
    file.split('/')
        .next()
        .unwrap()
        .trim_end_matches(".rs")
        .to_string()
}

/// Every broken rule of `tree` under `layers`, one line each, naming files and lines.
fn violations(tree: &Tree, layers: &BTreeMap<String, u32>) -> Vec<String> {
    let mut out = Vec::new();
    let mut graph: BTreeMap<&str, Vec<Import>> = BTreeMap::new();
    for file in tree.files.keys() {
        let Some(&mine) = layers.get(&top(file)) else {
            out.push(format!(
                "src/{file}: module `{}` has no layer in docs/ARCHITECTURE.md",
                top(file)
            ));
            continue;
        };
        let imports = tree.imports(file);
        for i in &imports {
            let theirs = layers.get(&top(&i.target)).copied().unwrap_or(u32::MAX);
            if theirs > mine {
                out.push(format!(
                    "src/{file}:{}: `{}` imports src/{} (layer {theirs}) from layer {mine}",
                    i.line, i.path, i.target
                ));
            }
        }
        graph.insert(file, imports);
    }
    out.extend(circles(&graph));
    out
}

/// Circles of files (strongly connected components of more than one file), each with the
/// imports that tie it.
fn circles(graph: &BTreeMap<&str, Vec<Import>>) -> Vec<String> {
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(f) = stack.pop() {
            for i in graph.get(f.as_str()).into_iter().flatten() {
                if seen.insert(i.target.clone()) {
                    stack.push(i.target.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&str, BTreeSet<String>> = graph.keys().map(|f| (*f, reach(f))).collect();
    let mut reported = BTreeSet::new();
    let mut out = Vec::new();
    for (file, from_here) in &reaches {
        let members: BTreeSet<String> = from_here
            .iter()
            .filter(|t| reaches.get(t.as_str()).is_some_and(|r| r.contains(*file)))
            .cloned()
            .chain([file.to_string()])
            .collect();
        if members.len() < 2 || !reported.insert(members.clone()) {
            continue;
        }
        let ties: BTreeSet<String> = members
            .iter()
            .flat_map(|m| {
                graph[m.as_str()]
                    .iter()
                    .filter(|i| members.contains(&i.target))
                    .map(move |i| format!("src/{m}:{} -> src/{}", i.line, i.target))
            })
            .collect();
        let ties: Vec<String> = ties.into_iter().collect();
        out.push(format!(
            "circle of {} files: {}",
            members.len(),
            ties.join("; ")
        ));
    }
    out
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn no_import_climbs_a_layer_and_no_files_import_each_other() {
    let doc = fs::read_to_string(repo().join("docs/ARCHITECTURE.md")).unwrap();
    let tree = Tree::read(&repo().join("src"));
    let found = violations(&tree, &layers(&doc));
    assert!(
        found.is_empty(),
        "{} layering violation(s):\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn every_layer_named_in_the_table_exists() {
    let doc = fs::read_to_string(repo().join("docs/ARCHITECTURE.md")).unwrap();
    let src = repo().join("src");
    for module in layers(&doc).keys() {
        let exists = src.join(module).is_dir() || src.join(format!("{module}.rs")).is_file();
        assert!(
            exists,
            "docs/ARCHITECTURE.md names `{module}`, which src/ lacks"
        );
    }
}

/// The checker on a tree of known answers: `low` (layer 0) imports `high` (layer 1) on
/// line 3, and `high/a.rs` and `high/b.rs` import each other (lines 1 and 2).
#[test]
fn the_checker_finds_a_climbing_import_and_a_circle_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| {
        let path = dir.path().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    };
    write("lib.rs", "pub mod low;\npub mod high;\n");
    write(
        "low.rs",
        "//! low\n// crate::high in a comment is no import\nuse crate::{high::a::A, low as _};\n",
    );
    write("high/mod.rs", "pub mod a;\npub mod b;\nuse crate::low;\n");
    write("high/a.rs", "use super::b::B;\npub struct A;\n");
    write("high/b.rs", "pub struct B;\nfn f() { let _ = crate::high::a::A; }\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n");
    let doc = "# x\n## Layers\n| layer | modules |\n|---|---|\n| 0 | `low` |\n| 1 | `high/` |\n| 2 | `lib` |\n";
    let found = violations(&Tree::read(dir.path()), &layers(doc));
    assert_eq!(
        found,
        [
            "src/low.rs:3: `crate::high::a::A` imports src/high/a.rs (layer 1) from layer 0",
            "circle of 2 files: src/high/a.rs:1 -> src/high/b.rs; src/high/b.rs:2 -> src/high/a.rs",
        ]
    );
}

#[test]
fn use_trees_expand_to_every_path() {
    assert_eq!(
        expand("crate::a::{b, c::{d, e}, self}"),
        [
            "crate::a::b",
            "crate::a::c::d",
            "crate::a::c::e",
            "crate::a"
        ]
    );
    assert_eq!(
        expand(&use_tree("crate::x::{y,\n    z as w};")),
        ["crate::x::y", "crate::x::z"]
    );
    assert_eq!(use_tree("crate::x::Y::new()"), "crate::x::Y::new");
}
