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

/// Exit code for a command that failed with an error (bad input, I/O failure).
pub const EXIT_ERROR: u8 = 2;

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
        Command::Profile(args) => profile::command(&args),
        Command::Validate(args) => driver::validate_command(&args),
        Command::Compare(args) => analysis::compare_command(&args),
        Command::Check(args) => analysis::check_command(&args),
        Command::Calibrate(args) => analysis::calibrate_command(&args),
        Command::Report(args) => report::command(&args),
    }
}
