//! Analysis of result files: compare machines, the regression gate, recalibration.

pub mod guide;
pub mod specmodel;
pub mod stats;

use std::process::ExitCode;

/// Arguments of `bench compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Result CSV files; the first is the reference.
    #[arg(required = true, num_args = 2..)]
    pub files: Vec<std::path::PathBuf>,
}

/// Arguments of `bench check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Baseline result CSV.
    #[arg(long)]
    pub baseline: std::path::PathBuf,
}

/// Arguments of `bench calibrate`.
#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// Result CSV files.
    #[arg(required = true)]
    pub files: Vec<std::path::PathBuf>,
}

/// Runs `bench compare`.
pub fn compare_command(_args: &CompareArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("bench compare: not implemented yet")
}

/// Runs `bench check`.
pub fn check_command(_args: &CheckArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("bench check: not implemented yet")
}

/// Runs `bench calibrate`.
pub fn calibrate_command(_args: &CalibrateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("bench calibrate: not implemented yet")
}
