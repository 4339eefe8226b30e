//! `bench run`: turns a profile into cells, launches servers, measures, writes results.

pub mod guard;
pub mod plan;
pub mod table;
pub mod workload;

use std::process::ExitCode;

/// Arguments of `bench run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Profile name or path.
    #[arg(long)]
    pub profile: String,
}

/// Arguments of `bench validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Model file.
    #[arg(long)]
    pub model: std::path::PathBuf,
}

/// Runs `bench run`.
pub fn command(_args: &RunArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("bench run: not implemented yet")
}

/// Runs `bench validate`.
pub fn validate_command(_args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("bench validate: not implemented yet")
}
