//! Where results go by default, and the timestamps written in them.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// `DIR/<profile>-<host>-<UTC timestamp>.csv`, e.g. `results/smoke-box1-20261127T120000Z.csv`.
/// Characters that are unsafe in file names (anything but ASCII letters, digits, `.`, `_`
/// and `-`) become `_`, so a profile given as a path or a host with a domain still works.
pub fn default_path(dir: &Path, profile: &str, host: &str, at: SystemTime) -> PathBuf {
    let profile = Path::new(profile)
        .file_stem()
        .map_or_else(|| profile.to_owned(), |s| s.to_string_lossy().into_owned());
    dir.join(format!(
        "{}-{}-{}.csv",
        file_safe(&profile),
        file_safe(host),
        compact_utc(at)
    ))
}

/// The default results directory, `results/` under the current directory.
pub fn default_dir() -> PathBuf {
    PathBuf::from("results")
}

/// RFC 3339 UTC to the second, e.g. `2026-11-27T12:00:00Z` (the `timestamp_utc` column).
pub fn utc_timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Basic ISO 8601 UTC without separators, safe in file names: `20261127T120000Z`.
pub fn compact_utc(at: SystemTime) -> String {
    utc_timestamp(at).replace(['-', ':'], "")
}

/// Replaces characters that are unsafe in file names with `_`.
fn file_safe(s: &str) -> String {
    let safe = crate::util::safe_file_name(s, "._-");
    if safe.is_empty() {
        "_".to_owned()
    } else {
        safe
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn noon() -> SystemTime {
        // 2026-11-27T12:00:00Z
        UNIX_EPOCH + Duration::from_secs(1_795_780_800)
    }

    #[test]
    fn default_path_is_profile_host_timestamp() {
        let path = default_path(Path::new("results"), "smoke", "box1", noon());
        assert_eq!(
            path,
            PathBuf::from("results/smoke-box1-20261127T120000Z.csv")
        );
        assert_eq!(utc_timestamp(noon()), "2026-11-27T12:00:00Z");
    }

    #[test]
    fn unsafe_characters_are_replaced() {
        let path = default_path(Path::new("r"), "profiles/my prod.toml", "a/b:c", noon());
        assert_eq!(path, PathBuf::from("r/my_prod-a_b_c-20261127T120000Z.csv"));
    }
}
