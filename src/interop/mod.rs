//! Interoperation with llama-bench, the tool most llama.cpp users already have results from:
//! `bench import` reads its `-o json` / `-o jsonl` / `-o sql` output into the results schema, and
//! `bench export --format llama-bench` writes the harness's rows as its records
//! (`-o jsonl`, `-o json` or `-o sql`), which llama.cpp's `compare-llama-bench.py` reads.

pub mod export;
pub mod import;
pub mod llama_bench;
pub mod originals;
pub mod sql;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::results::ResultWriter;

/// Arguments of `bench import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// llama-bench output files (`-o json`, `-o jsonl` or `-o sql`).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Results CSV to write (must not exist). Beside it: a `.jsonl`, empty (llama-bench keeps
    /// no per-request records), and `.llama-bench.jsonl`, the imported records whole, from
    /// which `bench export` gives them back unchanged.
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
    /// llama-bench's `-o sql`: `CREATE TABLE` and one `INSERT` per record, for `sqlite3`.
    LlamaBenchSql,
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
    let mut records = Vec::new();
    for path in &args.files {
        let tests = read_records(path)?;
        let (these, warnings) = import::rows(&tests, &args.host);
        let (mut these, mut read): (Vec<_>, Vec<_>) = these.into_iter().unzip();
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
        records.append(&mut read);
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
    // Written after the rows, which refuse a second test of one cell: the records file then
    // holds exactly one record per row.
    originals::write(&args.out, &records)?;
    eprintln!("imported {} tests into {}", rows.len(), args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// The records of a llama-bench output file in any of its layouts.
fn read_records(path: &Path) -> anyhow::Result<Vec<llama_bench::LlamaBenchTest>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if sql::is_sql(&text) {
        sql::parse(&text, path)
    } else {
        llama_bench::parse(&text, path)
    }
}

/// Runs `bench export`.
pub fn export_command(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let file = crate::results::load::load(&args.results)?;
    let imported = originals::Originals::load(&args.results)?;
    let (tests, left_out) = export::tests(&file, &imported);
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
        ExportFormat::LlamaBenchSql => sql::render(&tests)?,
    };
    match &args.out {
        Some(path) if is_input(path, &args.results) => anyhow::bail!(
            "{}: is the results file or a file beside it that export reads; write elsewhere",
            path.display()
        ),
        Some(path) => crate::util::write_atomic(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `out` is the results CSV or one of the files beside it (its raw `.jsonl`, the
/// imported records), which `-o` would replace; `smoke.jsonl` is the natural name to pick.
fn is_input(out: &Path, csv: &Path) -> bool {
    let inputs = [
        csv.to_path_buf(),
        crate::results::jsonl_path_for(csv),
        originals::path_for(csv),
    ];
    inputs.iter().any(|p| p == out)
}
