//! Hardware assessment (`bench hw`): RAM, cores, ISA features, NUMA, storage, measured
//! memory read bandwidth, and the guide's tier for this machine.


use std::process::ExitCode;

/// Arguments of `bench hw`.
#[derive(Debug, clap::Args)]
pub struct HwArgs {
    /// Print JSON with stable field names instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `bench hw`.
pub fn command(_args: &HwArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("bench hw: not implemented yet")
}
