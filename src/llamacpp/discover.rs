//! Finding a llama-server: an explicit `--server-bin`, env `LLAMA_SERVER`, the profile's
//! `[engine] server_bin`, `llama-server` on PATH, then the managed install.
//!
//! A path the user named explicitly must work: a wrong `--server-bin` is an error, never
//! a quiet fall-through to some other binary that would then be measured instead.

use super::EngineSource;
use anyhow::bail;
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Environment variable naming a llama-server binary.
pub const ENV_SERVER: &str = "LLAMA_SERVER";

/// A server binary and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub server_bin: PathBuf,
    pub source: EngineSource,
}

/// The first explicitly configured or PATH-found server, without the managed install.
/// `Ok(None)`: nothing configured and none on PATH.
pub fn find_unmanaged(
    flag: Option<&Path>,
    env: Option<&OsStr>,
    profile: Option<&Path>,
    path_var: Option<&OsStr>,
) -> anyhow::Result<Option<Found>> {
    let explicit = [
        (
            flag.map(Path::to_path_buf),
            EngineSource::Flag,
            "--server-bin",
        ),
        (
            env.filter(|v| !v.is_empty()).map(PathBuf::from),
            EngineSource::Env,
            ENV_SERVER,
        ),
        (
            profile.map(Path::to_path_buf),
            EngineSource::Profile,
            "the profile's [engine] server_bin",
        ),
    ];
    for (candidate, source, what) in explicit {
        if let Some(path) = candidate {
            let server_bin = check_explicit(&path, what)?;
            return Ok(Some(Found { server_bin, source }));
        }
    }
    Ok(path_var
        .and_then(|p| search_path(p, "llama-server"))
        .map(|server_bin| Found {
            server_bin,
            source: EngineSource::Path,
        }))
}

fn check_explicit(path: &Path, what: &str) -> anyhow::Result<PathBuf> {
    // A bare name (no slash) is looked up on PATH, as a shell would.
    let resolved = if path.components().count() == 1 && !path.is_absolute() {
        std::env::var_os("PATH").and_then(|p| search_path(&p, path.as_os_str()))
    } else {
        Some(path.to_path_buf())
    };
    match resolved {
        Some(p) if is_executable(&p) => Ok(p),
        _ => bail!(
            "{what} names {}, which is not an executable file; point it at a llama-server binary or unset it",
            path.display()
        ),
    }
}

/// The first `name` in the `PATH`-style list `path_var` that is an executable file.
pub fn search_path(path_var: &OsStr, name: impl AsRef<OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path_var)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name.as_ref()))
        .find(|p| is_executable(p))
}

/// A regular file (after symlinks) with an execute bit.
pub fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A sibling tool (`llama-bench`, `llama-quantize`) next to the server: in the server's
/// directory, else next to the file a symlinked server resolves to.
pub fn sibling(server_bin: &Path, name: &str) -> Option<PathBuf> {
    let direct = server_bin.parent().map(|d| d.join(name));
    let resolved = std::fs::canonicalize(server_bin)
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)));
    [direct, resolved]
        .into_iter()
        .flatten()
        .find(|p| is_executable(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exe(dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn order_is_flag_env_profile_path() {
        let dir = tempfile::tempdir().unwrap();
        let a = exe(dir.path(), "a");
        let b = exe(dir.path(), "b");
        let c = exe(dir.path(), "c");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let d = exe(&bin, "llama-server");
        let path_var = bin.as_os_str();
        let found = |f: Option<&Path>, e: Option<&OsStr>, p: Option<&Path>| {
            find_unmanaged(f, e, p, Some(path_var)).unwrap().unwrap()
        };
        let all = found(Some(&a), Some(b.as_os_str()), Some(&c));
        assert_eq!((all.server_bin, all.source), (a, EngineSource::Flag));
        let env = found(None, Some(b.as_os_str()), Some(&c));
        assert_eq!((env.server_bin, env.source), (b, EngineSource::Env));
        let prof = found(None, None, Some(&c));
        assert_eq!((prof.server_bin, prof.source), (c, EngineSource::Profile));
        let path = found(None, Some(OsStr::new("")), None);
        assert_eq!((path.server_bin, path.source), (d, EngineSource::Path));
    }

    #[test]
    fn nothing_found_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let r = find_unmanaged(None, None, None, Some(dir.path().as_os_str())).unwrap();
        assert!(r.is_none());
    }

    #[test]
    fn a_wrong_explicit_path_is_an_error_not_a_fallthrough() {
        let dir = tempfile::tempdir().unwrap();
        let not_exec = dir.path().join("llama-server");
        std::fs::write(&not_exec, "x").unwrap();
        let err = find_unmanaged(Some(&not_exec), None, None, None).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("--server-bin") && msg.contains("not an executable"),
            "{msg}"
        );
    }

    #[test]
    fn siblings_next_to_the_server_or_its_symlink_target() {
        let real = tempfile::tempdir().unwrap();
        let server = exe(real.path(), "llama-server");
        let bench = exe(real.path(), "llama-bench");
        let links = tempfile::tempdir().unwrap();
        let link = links.path().join("llama-server");
        std::os::unix::fs::symlink(&server, &link).unwrap();
        assert_eq!(sibling(&server, "llama-bench"), Some(bench.clone()));
        let via_link = sibling(&link, "llama-bench").unwrap();
        assert_eq!(
            std::fs::canonicalize(via_link).unwrap(),
            std::fs::canonicalize(bench).unwrap()
        );
        assert_eq!(sibling(&server, "llama-quantize"), None);
    }
}
