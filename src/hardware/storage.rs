//! Free space of the models directory (statvfs), because models are 1-300 GB each and a
//! benchmark that runs out of disk halfway wastes hours.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Serialize;

use super::memory::GIB;

/// Space on the filesystem that holds the models directory.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Storage {
    /// The models directory, made absolute.
    pub models_dir: PathBuf,
    /// Bytes available to this (unprivileged) user.
    pub free_bytes: u64,
    /// Size of the filesystem in bytes.
    pub total_bytes: u64,
    /// `free_bytes` in GiB.
    pub free_gib: f64,
    /// `total_bytes` in GiB.
    pub total_gib: f64,
}

/// Checks that `dir` is a directory and reads its filesystem's free and total space.
pub fn read_storage(dir: &Path) -> anyhow::Result<Storage> {
    let meta =
        std::fs::metadata(dir).with_context(|| format!("models directory {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("models directory {} is not a directory", dir.display());
    }
    let abs = std::fs::canonicalize(dir)
        .with_context(|| format!("models directory {}", dir.display()))?;
    let (free_bytes, total_bytes) =
        space(&abs).with_context(|| format!("statvfs of models directory {}", abs.display()))?;
    Ok(Storage {
        models_dir: abs,
        free_bytes,
        total_bytes,
        free_gib: free_bytes as f64 / GIB,
        total_gib: total_bytes as f64 / GIB,
    })
}

#[cfg(unix)]
fn space(dir: &Path) -> anyhow::Result<(u64, u64)> {
    let st = nix::sys::statvfs::statvfs(dir)?;
    let frag = st.fragment_size() as u64;
    Ok((
        (st.blocks_available() as u64).saturating_mul(frag),
        (st.blocks() as u64).saturating_mul(frag),
    ))
}

#[cfg(not(unix))]
fn space(_dir: &Path) -> anyhow::Result<(u64, u64)> {
    bail!("free space is only measured on Unix systems")
}

/// The models directory of `bench hw`: the option, else `BENCH_MODELS_DIR`, else `.`
/// (clap reads the environment variable; this is the last fallback).
pub fn models_dir_or_default(opt: Option<&Path>) -> PathBuf {
    opt.map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_dir_has_space_and_an_absolute_path() {
        let dir = tempfile::tempdir().unwrap();
        let s = read_storage(dir.path()).unwrap();
        assert!(s.models_dir.is_absolute());
        assert!(s.total_bytes > 0 && s.free_bytes <= s.total_bytes);
        assert!((s.free_gib * GIB - s.free_bytes as f64).abs() < 1.0);
    }

    #[test]
    fn missing_dir_and_plain_file_are_errors_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-models");
        let err = format!("{:#}", read_storage(&missing).unwrap_err());
        assert!(err.contains("no-such-models"), "{err}");
        let file = dir.path().join("model.gguf");
        std::fs::write(&file, b"x").unwrap();
        let err = format!("{:#}", read_storage(&file).unwrap_err());
        assert!(
            err.contains("model.gguf") && err.contains("not a directory"),
            "{err}"
        );
    }
}
