//! Model sizing (`bench size`) and the RAM budget planner (`bench plan`).

pub mod budget;

pub use budget::{budget, Budget};

use std::process::ExitCode;

/// Arguments of `bench size`.
#[derive(Debug, clap::Args)]
pub struct SizeArgs {
    /// GGUF files (the first shard of a sharded model stands for all of them).
    #[arg(required = true)]
    pub files: Vec<std::path::PathBuf>,
}

/// Arguments of `bench plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Profile name (profiles/NAME.toml or embedded) or path to a profile file.
    #[arg(long)]
    pub profile: String,
}

/// Runs `bench size`.
pub fn size_command(_args: &SizeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("bench size: not implemented yet")
}

/// Runs `bench plan`.
pub fn plan_command(_args: &PlanArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("bench plan: not implemented yet")
}
