//! `bench report`: a Markdown report with SVG charts drawn from result files.


use std::process::ExitCode;

/// Arguments of `bench report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Result CSV files.
    #[arg(required = true)]
    pub files: Vec<std::path::PathBuf>,
    /// Output directory.
    #[arg(long)]
    pub out: std::path::PathBuf,
}

/// Runs `bench report`.
pub fn command(_args: &ReportArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("bench report: not implemented yet")
}
