//! The self-test seam: before an engine measures anything it must prefill and decode small
//! models of every weight type correctly (see `crate::selftest`, which implements
//! [`EngineCheck`] with real servers). The engine module only decides *when* to run it:
//! after each managed build variant, and the first time a discovered engine is used
//! (cached by the engine's hash). Tests give a fake.
//!
//! Fault injection: `TPSBENCH_FAIL_SELF_TEST=native,portable` (variant names, or `external`
//! for an engine found by discovery, or `all`) fails those self-tests without running them,
//! so the whole fallback chain can be exercised on a machine where every variant works.

use crate::util;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The environment variable of the fault-injection switch.
pub const FAIL_ENV: &str = "TPSBENCH_FAIL_SELF_TEST";
/// The label of an engine that was not built by the harness.
pub const EXTERNAL: &str = "external";
/// Bump when the self-test changes what it checks, so cached verdicts are redone.
pub const SELF_TEST_VERSION: u32 = 1;

/// A passed self-test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelfTestReport {
    /// Wall time of the whole self-test (seconds).
    pub secs: f64,
    /// One line per model checked, e.g. `Q4_K_M dense: 64-token prompt, 16/16 tokens`.
    pub checked: Vec<String>,
}

/// A failed self-test: what failed and how (a signal, a timeout, a wrong token).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct SelfTestFailure(pub String);

/// Runs the self-test of one llama-server binary.
pub trait EngineCheck {
    fn check(&self, server_bin: &Path) -> Result<SelfTestReport, SelfTestFailure>;
}

/// Runs `check` on `server_bin`, unless the fault switch names `label`.
pub fn run(
    check: &dyn EngineCheck,
    server_bin: &Path,
    label: &str,
) -> Result<SelfTestReport, SelfTestFailure> {
    if injected(std::env::var(FAIL_ENV).ok().as_deref(), label) {
        return Err(SelfTestFailure(format!(
            "failure injected by {FAIL_ENV} for `{label}`"
        )));
    }
    check.check(server_bin)
}

fn injected(switch: Option<&str>, label: &str) -> bool {
    switch.is_some_and(|s| {
        s.split(',')
            .map(str::trim)
            .any(|name| name == label || name == "all")
    })
}

/// The self-test verdict of a discovered engine, cached per engine hash.
pub fn cached_or_run(
    check: &dyn EngineCheck,
    server_bin: &Path,
    engine_sha256: &str,
) -> Result<SelfTestReport, SelfTestFailure> {
    if injected(std::env::var(FAIL_ENV).ok().as_deref(), EXTERNAL) {
        return run(check, server_bin, EXTERNAL);
    }
    let path = cache_path(engine_sha256);
    if let Some(report) = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<SelfTestReport>(&b).ok())
    {
        return Ok(report);
    }
    let report = run(check, server_bin, EXTERNAL)?;
    if let Ok(json) = serde_json::to_vec(&report) {
        // An unwritable cache only costs a repeated self-test.
        let _ = util::create_dir_all(path.parent().unwrap_or(Path::new("/")))
            .and_then(|()| util::write_atomic(&path, &json));
    }
    Ok(report)
}

fn cache_path(engine_sha256: &str) -> PathBuf {
    util::cache_dir("engine")
        .join("selftest")
        .join(format!("{engine_sha256}-v{SELF_TEST_VERSION}.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_names_variants_or_all() {
        assert!(injected(Some("native"), "native"));
        assert!(injected(Some("portable, native"), "native"));
        assert!(injected(Some("all"), "external"));
        assert!(!injected(Some("native-no-amx"), "native"));
        assert!(!injected(None, "native"));
        assert!(!injected(Some(""), "native"));
    }
}
