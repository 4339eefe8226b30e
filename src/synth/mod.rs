//! Synthetic GGUF models with the exact tensor shapes and quant types of real models and a
//! known greedy behaviour (`bench synth`).


use std::process::ExitCode;

/// Arguments of `bench synth`.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Output file.
    #[arg(short, long)]
    pub output: std::path::PathBuf,
}

/// Runs `bench synth`.
pub fn command(_args: &SynthArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("bench synth: not implemented yet")
}
