//! `bench calibrate`: fits the roofline model to measured decode rates.

use std::process::ExitCode;

/// Runs `bench calibrate`.
pub fn command(_args: &super::CalibrateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("bench calibrate: not implemented yet")
}
