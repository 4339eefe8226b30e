//! The llama.cpp engine: discovery, the pinned managed install, identity, and the
//! capability probe that every command line is built from.


use std::process::ExitCode;

/// Arguments of `bench engine`.
#[derive(Debug, clap::Args)]
pub struct EngineArgs {
    /// which | info | install
    pub action: String,
}

/// Runs `bench engine`.
pub fn command(_args: &EngineArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("bench engine: not implemented yet")
}
