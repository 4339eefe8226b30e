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
    /// llama-bench output files (`-o json`, `-o jsonl` or `-o sql`), or with --db results
    /// CSVs of tpsbench (each with its `.jsonl`), copied into the database as runs.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Results CSV to write the llama-bench tests to (must not exist). Beside it: a
    /// `.jsonl`, empty (llama-bench keeps no per-request records), and `.llama-bench.jsonl`,
    /// the imported records whole, from which `bench export` gives them back unchanged.
    #[arg(short, long, required_unless_present = "db")]
    pub out: Option<PathBuf>,
    /// Results database to append every imported row to (created when absent); a results
    /// CSV imported again replaces its earlier copy.
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
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
    #[arg(required_unless_present = "db")]
    pub results: Option<PathBuf>,
    /// A results database and filters: its rows are exported too (imported llama-bench
    /// records given back whole while their CSV's records file is still beside it).
    #[command(flatten)]
    pub db: crate::results::db::DbArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "llama-bench")]
    pub format: ExportFormat,
    /// File to write; standard output when absent.
    #[arg(short, long)]
    pub out: Option<PathBuf>,
}

/// Runs `bench import`: llama-bench files into `-o` (and `--db`), results CSVs into `--db`.
pub fn import_command(args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let (ours, theirs): (Vec<&PathBuf>, Vec<&PathBuf>) =
        args.files.iter().partition(|p| is_results_csv(p));
    if !ours.is_empty() {
        let Some(db) = &args.db else {
            anyhow::bail!(
                "{}: is a tpsbench results file; import it into a database with --db FILE",
                ours[0].display()
            );
        };
        for csv in ours {
            let n = crate::results::db::import_csv(db, csv)?;
            eprintln!(
                "imported {n} rows of {} into {}",
                csv.display(),
                db.display()
            );
        }
    }
    match (theirs.is_empty(), &args.out) {
        (true, _) => Ok(ExitCode::SUCCESS),
        (false, Some(out)) => import_llama_bench(args, &theirs, out),
        (false, None) => anyhow::bail!(
            "{}: llama-bench results are imported into a results CSV: give -o FILE",
            theirs[0].display()
        ),
    }
}

/// Whether `path` is a results CSV of tpsbench (its header starts with `schema_version`).
fn is_results_csv(path: &Path) -> bool {
    use std::io::Read;
    let mut start = [0u8; 15];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut start))
        .is_ok_and(|_| &start == b"schema_version,")
}

/// Imports llama-bench files into the results CSV `out` (and `--db`).
fn import_llama_bench(
    args: &ImportArgs,
    files: &[&PathBuf],
    out: &Path,
) -> anyhow::Result<ExitCode> {
    let machine = args
        .hw
        .as_deref()
        .map(crate::hardware::facts::HwFacts::load)
        .transpose()?;
    let mut rows = Vec::new();
    let mut records = Vec::new();
    for path in files {
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
    let mut writer =
        ResultWriter::create(out).with_context(|| format!("writing {}", out.display()))?;
    if let Some(db) = &args.db {
        writer = writer.with_db(db, "import")?;
    }
    for row in &rows {
        writer.push(row).map_err(|e| match e {
            crate::results::ResultsError::Duplicate { .. } => anyhow::anyhow!(
                "{}: two llama-bench tests of the same cell ({}); import repeated runs into \
                 separate files",
                out.display(),
                row.key()
            ),
            e => e.into(),
        })?;
    }
    // Written after the rows, which refuse a second test of one cell: the records file then
    // holds exactly one record per row.
    originals::write(out, &records)?;
    eprintln!("imported {} tests into {}", rows.len(), out.display());
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
    let files = crate::results::load::load_inputs(args.results.as_slice(), &args.db)?;
    let mut tests = Vec::new();
    let mut left_out = 0;
    for file in &files {
        let imported = originals::Originals::load(&file.path)?;
        let (these, left) = export::tests(file, &imported);
        tests.extend(these);
        left_out += left;
    }
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
        Some(path) if files.iter().any(|f| is_input(path, &f.path)) => anyhow::bail!(
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
