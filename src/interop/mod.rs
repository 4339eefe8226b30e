//! Interoperation with llama-bench, the tool most llama.cpp users already have results from:
//! `bench import` reads its `-o json` / `-o jsonl` output into the results schema, and
//! `bench export --format llama-bench` writes the harness's rows as its records.

pub mod export;
pub mod import;
pub mod llama_bench;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::results::ResultWriter;

/// Arguments of `bench import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// llama-bench output files (`-o json` or `-o jsonl`).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Results CSV to write (must not exist; a `.jsonl` is written beside it, empty: llama-bench
    /// keeps no per-request records).
    #[arg(short, long)]
    pub out: PathBuf,
    /// Host name recorded in the rows (llama-bench does not record one).
    #[arg(long, default_value = "")]
    pub host: String,
    /// The machine's `bench hw --json` output: its CPU, cores, RAM and memory bandwidth go
    /// into the rows, so `calibrate` can fit them (llama-bench records only the CPU name).
    #[arg(long)]
    pub hw: Option<PathBuf>,
}

/// Output format of `bench export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// llama-bench's `-o jsonl`: one record per line.
    LlamaBench,
    /// llama-bench's `-o json`: one array.
    LlamaBenchJson,
}

/// Arguments of `bench export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// A results CSV written by `bench run` (its `.jsonl` beside it gives the samples).
    pub results: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "llama-bench")]
    pub format: ExportFormat,
    /// File to write; standard output when absent.
    #[arg(short, long)]
    pub out: Option<PathBuf>,
}

/// Runs `bench import`.
pub fn import_command(args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let machine = args
        .hw
        .as_deref()
        .map(crate::hardware::facts::HwFacts::load)
        .transpose()?;
    let mut rows = Vec::new();
    for path in &args.files {
        let tests = llama_bench::read(path)?;
        let (mut these, warnings) = import::rows(&tests, &args.host);
        if let Some(hw) = &machine {
            these
                .iter_mut()
                .for_each(|row| import::stamp_machine(row, hw));
        }
        for w in warnings {
            eprintln!("warning: {}: {w}", path.display());
        }
        if these.is_empty() {
            anyhow::bail!("{}: no llama-bench test to import", path.display());
        }
        rows.append(&mut these);
    }
    let mut writer = ResultWriter::create(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    for row in &rows {
        writer.push(row).with_context(|| {
            format!(
                "{}: two llama-bench tests of the same cell ({}); import repeated runs into \
                 separate files",
                args.out.display(),
                row.key()
            )
        })?;
    }
    eprintln!("imported {} tests into {}", rows.len(), args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// Runs `bench export`.
pub fn export_command(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let file = crate::results::load::load(&args.results)?;
    let (tests, left_out) = export::tests(&file);
    if left_out > 0 {
        eprintln!(
            "note: {left_out} measured rows with an accelerated mode or several slots have no \
             llama-bench test and are left out"
        );
    }
    let text = match args.format {
        ExportFormat::LlamaBench => tests
            .iter()
            .map(|t| serde_json::to_string(t).map(|l| l + "\n"))
            .collect::<Result<String, _>>()?,
        ExportFormat::LlamaBenchJson => serde_json::to_string_pretty(&tests)? + "\n",
    };
    match &args.out {
        Some(path) => crate::util::write_atomic(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
