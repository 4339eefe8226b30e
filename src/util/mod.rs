//! Small helpers shared by several concerns: cache directories, file locks and the one
//! output mechanism ([`output`]: `--format table|markdown|json|csv`).
//!
//! Everything tpsbench keeps between runs (the managed engine, synthetic models, probe
//! caches) lives under one cache root so that a user can find and delete it in one place.

pub mod error;
pub mod interrupt;
pub mod located;
pub mod lock;
pub mod measure_lock;
pub mod output;
pub mod process;
pub mod tail;

pub use lock::FileLock;

use anyhow::Context;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The tpsbench cache root: `$XDG_CACHE_HOME/tpsbench`, else `~/.cache/tpsbench`.
///
/// An empty or relative `XDG_CACHE_HOME` is ignored, as the XDG spec asks.
pub fn cache_root() -> PathBuf {
    xdg_cache_home().join("tpsbench")
}

/// A subdirectory of the cache root, e.g. `cache_dir("engine")`. Not created.
pub fn cache_dir(name: &str) -> PathBuf {
    cache_root().join(name)
}

fn xdg_cache_home() -> PathBuf {
    cache_home_from(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"))
}

fn cache_home_from(xdg: Option<OsString>, home: Option<OsString>) -> PathBuf {
    match xdg.map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        _ => home
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
            .join(".cache"),
    }
}

/// `s` with every character other than ASCII letters, digits and those in `keep` replaced
/// by `_`, for a file name (`safe_file_name("hot chat", "-")` is `hot_chat`). An empty `s`
/// gives an empty name; callers that need a name choose their own placeholder.
pub fn safe_file_name(s: &str, keep: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || keep.contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Creates `dir` and its parents, naming the path in the error.
pub fn create_dir_all(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating directory {}", dir.display()))
}

/// Writes `bytes` to `path` atomically: a sibling temp file, fsync, then rename over.
///
/// Readers see either the old content or the new, never a torn file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let file_name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?;
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// The hex sha256 of a file's content, streamed.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    use sha2::{Digest, Sha256};
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_home_follows_xdg_only_when_absolute() {
        let h = |x: Option<&str>, home: Option<&str>| {
            cache_home_from(x.map(OsString::from), home.map(OsString::from))
        };
        assert_eq!(h(Some("/x/cache"), Some("/home/u")), Path::new("/x/cache"));
        assert_eq!(h(Some("rel"), Some("/home/u")), Path::new("/home/u/.cache"));
        assert_eq!(h(Some(""), Some("/home/u")), Path::new("/home/u/.cache"));
        assert_eq!(h(None, Some("/home/u")), Path::new("/home/u/.cache"));
    }

    #[test]
    fn write_atomic_replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn sha256_of_known_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn sha256_error_names_the_path() {
        let err = sha256_file(Path::new("/nonexistent/tpsbench-x")).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/tpsbench-x"));
    }
}
