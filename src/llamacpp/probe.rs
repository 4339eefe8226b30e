//! Probing a llama-server binary: `--help` (capabilities), `--version` (identity) and the
//! `system_info` line it logs at start, cached per binary sha256 so that every later
//! `ensure` costs one hash instead of three process starts.

use super::caps::Capabilities;
use super::identity::find_system_info;
use crate::util::{self, process::run_with_timeout};
use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Bump when the parsed form changes, so old cache entries are ignored.
const PROBE_FORMAT: u32 = 1;
const HELP_TIMEOUT: Duration = Duration::from_secs(30);
const SYSTEM_INFO_TIMEOUT: Duration = Duration::from_secs(20);

/// What one binary told us.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Probed {
    pub server_sha256: String,
    pub version_output: String,
    pub system_info: Option<String>,
    pub caps: Capabilities,
}

/// Probes `server_bin`, reusing the cache entry for its hash.
pub fn probe_cached(server_bin: &Path) -> anyhow::Result<Probed> {
    let sha = util::sha256_file(server_bin)?;
    let cache = cache_path(&sha);
    if let Some(p) = read_cache(&cache, &sha) {
        return Ok(p);
    }
    let probed = probe(server_bin, sha)?;
    if let Ok(json) = serde_json::to_vec(&probed) {
        // A cache that cannot be written only costs time next run.
        let _ = util::create_dir_all(cache.parent().unwrap_or(Path::new("/")))
            .and_then(|()| util::write_atomic(&cache, &json));
    }
    Ok(probed)
}

fn cache_path(sha: &str) -> PathBuf {
    util::cache_dir("engine")
        .join("probe")
        .join(format!("{sha}-v{PROBE_FORMAT}.json"))
}

fn read_cache(path: &Path, sha: &str) -> Option<Probed> {
    let bytes = std::fs::read(path).ok()?;
    let p: Probed = serde_json::from_slice(&bytes).ok()?;
    (p.server_sha256 == sha).then_some(p)
}

/// Runs the binary three times: `--version`, `--help`, and a model-less start at trace
/// verbosity that prints `system_info` and then fails to load the (missing) model.
pub fn probe(server_bin: &Path, server_sha256: String) -> anyhow::Result<Probed> {
    let version = run_with_timeout(Command::new(server_bin).arg("--version"), HELP_TIMEOUT)?;
    if !version.success() {
        bail!(
            "{} --version failed ({}): {}",
            server_bin.display(),
            version.status.map_or("timed out".into(), |s| s.to_string()),
            version.combined().trim()
        );
    }
    let help = run_with_timeout(Command::new(server_bin).arg("--help"), HELP_TIMEOUT)
        .with_context(|| format!("running {} --help", server_bin.display()))?;
    let caps = Capabilities::parse_help(&help.combined());
    if caps.flags.is_empty() {
        bail!(
            "{} --help listed no options; is it a llama-server?",
            server_bin.display()
        );
    }
    Ok(Probed {
        server_sha256,
        version_output: version.combined(),
        system_info: system_info(server_bin, &caps),
        caps,
    })
}

fn system_info(server_bin: &Path, caps: &Capabilities) -> Option<String> {
    let lv = ["-lv", "--verbosity", "--log-verbosity"]
        .into_iter()
        .find(|f| caps.has(f))?;
    let missing_model = std::env::temp_dir().join("tpsbench-no-such-model.gguf");
    let out = run_with_timeout(
        Command::new(server_bin)
            .args([lv, "4", "--host", "127.0.0.1", "--port", "0", "-m"])
            .arg(missing_model),
        SYSTEM_INFO_TIMEOUT,
    )
    .ok()?;
    find_system_info(&out.combined()).map(|l| l.trim().to_string())
}
