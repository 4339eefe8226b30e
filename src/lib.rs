//! tpsbench: a benchmark harness that measures real llama.cpp inference throughput and
//! compares it with the model sizing guide's expectations.
//!
//! The binary is a thin shell over [`run`]; every subcommand lives in the module of its
//! concern so that tests can drive the whole tool in-process.

pub mod analysis;
pub mod cli;
pub mod client;
pub mod driver;
pub mod engine;
pub mod fetch;
pub mod gguf;
pub mod guide;
pub mod hardware;
pub mod interop;
pub mod measure;
pub mod profile;
pub mod report;
pub mod results;
pub mod selftest;
pub mod server;
pub mod sizing;
pub mod synth;
pub mod util;

use std::process::ExitCode;

/// Exit code for a command that failed on bad input: a flag, a file, a profile.
pub const EXIT_ERROR: u8 = 2;
/// Exit code for a failure of the engine or the environment rather than of the input, in
/// the commands that measure (`run`, `validate`, `check --profile`): no llama-server to be
/// had, an engine build or self-test that failed, llama-bench failing.
pub const EXIT_ENVIRONMENT: u8 = 4;

/// Marks an error as a failure of the engine or the environment ([`EXIT_ENVIRONMENT`]).
/// A `--server-bin` that names no file is bad input, checked before ([`check_server_bin`]).
/// Transparent: the message and its causes print exactly as the wrapped error's.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct EnvironmentError(#[from] anyhow::Error);

/// Wraps an error as an [`EnvironmentError`], for `.map_err(environment)`; an interrupt
/// stays an interrupt (exit 130 or 143).
pub fn environment(err: anyhow::Error) -> anyhow::Error {
    if err.chain().any(|e| e.is::<util::interrupt::Interrupted>()) {
        return err;
    }
    anyhow::Error::new(EnvironmentError(err))
}

/// `--server-bin` must name a file: a wrong flag is bad input (exit 2), not an engine
/// failure.
pub fn check_server_bin(server_bin: Option<&std::path::Path>) -> anyhow::Result<()> {
    match server_bin {
        Some(p) if !p.is_file() => anyhow::bail!("--server-bin {}: no such file", p.display()),
        _ => Ok(()),
    }
}

/// The exit code of a command that failed with `err`: 130 or 143 when SIGINT or SIGTERM
/// stopped it ([`util::interrupt::Interrupted`]), [`EXIT_ENVIRONMENT`] when the engine or
/// the environment failed anywhere in its chain, else [`EXIT_ERROR`].
pub fn exit_code_of(err: &anyhow::Error) -> u8 {
    if let Some(i) = err
        .chain()
        .find_map(|e| e.downcast_ref::<util::interrupt::Interrupted>())
    {
        return i.exit_code();
    }
    if err.chain().any(|e| e.is::<EnvironmentError>()) {
        EXIT_ENVIRONMENT
    } else {
        EXIT_ERROR
    }
}

/// Runs one parsed command line and returns the process exit code.
pub fn run(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    use cli::Command;
    match cli.command {
        Command::Hw(args) => hardware::command(&args),
        Command::Size(args) => sizing::size_command(&args),
        Command::Plan(args) => sizing::plan_command(&args),
        Command::Engine(args) => engine::command(&args, &selftest::SelfTest::default()),
        Command::Synth(args) => synth::command(&args),
        Command::Fetch(args) => fetch::command(&args),
        Command::Run(args) => driver::command(&args),
        Command::Ab(args) => driver::ab::command(&args),
        Command::Profile(args) => profile::command(&args),
        Command::Validate(args) => driver::validate_command(&args),
        Command::Compare(args) => analysis::compare_command(&args),
        Command::Check(args) => analysis::check_command(&args),
        Command::Calibrate(args) => analysis::calibrate_command(&args),
        Command::Predict(args) => analysis::predict::command(&args),
        Command::Report(args) => report::command(&args),
        Command::Import(args) => interop::import_command(&args),
        Command::Export(args) => interop::export_command(&args),
        Command::Completions(args) => cli::completions(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn an_environment_failure_keeps_its_code_and_prints_its_cause_once() {
        let cause = std::io::Error::other("llama-server not found");
        let err = environment(anyhow::Error::new(cause).context("finding the engine"));
        let err = Err::<(), _>(err).context("role `x`").unwrap_err();
        assert_eq!(exit_code_of(&err), EXIT_ENVIRONMENT);
        assert_eq!(
            format!("{err:#}"),
            "role `x`: finding the engine: llama-server not found"
        );
        assert_eq!(exit_code_of(&anyhow::anyhow!("bad flag")), EXIT_ERROR);
    }

    #[test]
    fn a_missing_model_names_its_path_and_its_os_error_once() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent.gguf");
        let err = crate::sizing::exact::read(&missing).unwrap_err();
        let text = format!("{err:#}");
        assert_eq!(text.matches("absent.gguf").count(), 1, "{text}");
        assert_eq!(text.matches("No such file").count(), 1, "{text}");
        assert_eq!(exit_code_of(&err), EXIT_ERROR);
    }
}
