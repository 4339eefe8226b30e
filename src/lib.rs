//! tpsbench: a benchmark harness that measures real llama.cpp inference throughput and
//! compares it with the model sizing guide's expectations.
//!
//! The binary is a thin shell over [`run`]; every subcommand lives in the module of its
//! concern so that tests can drive the whole tool in-process.

pub mod analysis;
pub mod cli;
pub mod driver;
pub mod engine;
pub mod fetch;
pub mod gguf;
pub mod guide;
pub mod hardware;
pub mod interop;
pub mod llamacpp;
pub mod measure;
pub mod mode;
pub mod profile;
pub mod report;
pub mod results;
pub mod selftest;
pub mod sizing;
pub mod synth;
pub mod util;

use std::process::ExitCode;

pub use util::error::{
    check_server_bin, environment, exit_code_of, EnvironmentError, EXIT_ENVIRONMENT, EXIT_ERROR,
};

/// Runs one parsed command line and returns the process exit code.
pub fn run(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    use cli::Command;
    match cli.command {
        Command::Hw(args) => hardware::command(&args),
        Command::Size(args) => sizing::size_command(&args),
        Command::Plan(args) => sizing::plan_command(&args),
        Command::Engine(args) => llamacpp::command(&args, &selftest::SelfTest::default()),
        Command::Synth(args) => synth::command(&args),
        Command::Fetch(args) => fetch::command(&args),
        Command::Run(args) => {
            let _lock = measure_lock(args.no_wait)?;
            driver::command(&args)
        }
        Command::Ab(args) => {
            let _lock = measure_lock(args.run.no_wait)?;
            driver::ab::command(&args)
        }
        Command::Profile(args) => profile::command(&args),
        Command::Validate(args) => {
            let _lock = measure_lock(args.no_wait)?;
            driver::validate_command(&args)
        }
        Command::Compare(args) => analysis::compare_command(&args),
        Command::History(args) => analysis::history_command(&args),
        Command::Check(args) => {
            // Only `check --profile` measures; its re-measurement rounds run under one lock.
            let _lock = match args.profile {
                Some(_) => Some(measure_lock(args.no_wait)?),
                None => None,
            };
            analysis::check_command(&args, cli::check::run_profile)
        }
        Command::Calibrate(args) => analysis::calibrate_command(&args),
        Command::Predict(args) => analysis::predict::command(&args),
        Command::Report(args) => report::command(&args),
        Command::Import(args) => interop::import_command(&args),
        Command::Export(args) => interop::export_command(&args),
        Command::Completions(args) => cli::completions(&args),
    }
}

/// The machine-wide measurement lock of a command that measures: one measurement at a
/// time, a second one waits for it (or exits 4 with `--no-wait`).
fn measure_lock(no_wait: bool) -> anyhow::Result<util::measure_lock::MeasureLock> {
    use util::measure_lock::{MeasureLock, Wait};
    MeasureLock::acquire(Wait::from_no_wait(no_wait))
}

#[cfg(test)]
mod tests {
    use super::*;

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
