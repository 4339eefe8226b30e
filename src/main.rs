//! `bench`: the tpsbench command line. Parses, hands the work to the library, prints the
//! error chain and turns the outcome into an exit code.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = tpsbench::cli::Cli::parse();
    match tpsbench::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(tpsbench::exit_code_of(&err))
        }
    }
}
