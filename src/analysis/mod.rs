//! Analysis of result files: compare machines (`bench compare`), the regression gate
//! (`bench check`), and recalibration of the guide's expectations (`bench calibrate`).
//!
//! Everything reads the CSVs the driver writes (and the raw repetitions beside them) and is
//! pure computation over them; `check --profile` is the only path that measures, through the
//! [`check::ProfileRunner`] seam, which the command layer wires to the run loop.

pub mod calibrate;
pub mod check;
pub mod compare;
pub mod contention;
pub mod costmodel;
pub mod history;
pub mod metrics;
pub mod predict;
pub mod render;
pub mod specmodel;
pub mod stats;

use std::path::PathBuf;
use std::process::ExitCode;

pub use metrics::Metric;
pub use render::Format;

use crate::util::output::OutputArgs;

/// Arguments of `bench compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Result CSV files; the first is the reference (then the runs of --db, oldest first).
    #[arg(required_unless_present = "db")]
    pub files: Vec<PathBuf>,
    /// A results database and filters: its runs are compared too, one column each.
    #[command(flatten)]
    pub db: crate::results::db::DbArgs,
    /// Metric to compare.
    #[arg(long, value_enum, default_value = "decode")]
    pub metric: Metric,
    /// Output format (`--json` is `--format json`).
    #[command(flatten)]
    pub output: OutputArgs,
    /// Equivalence margin: "same" when the whole 95% CI of the ratio lies within it,
    /// "faster"/"slower" when wholly beyond it, "undecided" otherwise (`5%` or `0.05`).
    #[arg(long, default_value = "5%", value_parser = check::parse_tolerance)]
    pub margin: f64,
}

/// Arguments of `bench check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Baseline result CSV [default with --db: the newest row of each cell in the database,
    /// after the filters, the run of --current left out].
    #[arg(long, required_unless_present = "db")]
    pub baseline: Option<PathBuf>,
    /// Current result CSV.
    #[arg(long, required_unless_present = "profile", conflicts_with = "profile")]
    pub current: Option<PathBuf>,
    /// Run this profile first and check its results (with --db: the baseline is this
    /// profile's rows in the database, and the run's rows are appended to it).
    #[arg(long)]
    pub profile: Option<String>,
    /// A results database: the baseline when --baseline is absent; with --profile the run
    /// goes into it too.
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Filters of the database's rows (the profile's is --profile).
    #[command(flatten)]
    pub select: crate::results::db::DbSelect,
    /// The largest drop that is not a regression, e.g. `10%` or `0.1`. The default 10%: a
    /// change a user notices; on an idle AMD EPYC VM the same build's decode, prefill and
    /// speedups repeat within 2-8% run to run, so noise inside 10% passes and a real 15-20%
    /// loss is flagged (the Intel VMs vary 12% between launches: expect some inconclusive
    /// checks there, which `--profile` re-measures); a drop beyond 10% never passes
    /// (regressed when its 95% interval lies below 90%, else inconclusive, exit 3).
    #[arg(long, default_value = "10%", value_parser = check::parse_tolerance)]
    pub tolerance: f64,
    /// Which metrics to gate on. `default`: decode, speedup, acceptance, lossless, mode
    /// effective, and prefill and TTFT where both files carry their per-repetition values
    /// (JSON Lines beside the CSV); ITL p99 only with `absolute` or `all`.
    #[arg(long, value_enum, default_value = "default")]
    pub metrics: check::MetricSet,
    /// Pass a check only when its 95% interval rules out a drop beyond the tolerance (by
    /// default a check passes when its estimate is within the tolerance; a drop beyond it
    /// is regressed or inconclusive either way).
    #[arg(long)]
    pub strict: bool,
    /// Baseline cells absent from (or skipped in) the current results do not fail the gate.
    #[arg(long)]
    pub allow_missing: bool,
    /// With --profile: re-runs of the profile at most while checks are inconclusive.
    #[arg(long, default_value_t = 3)]
    pub remeasure_rounds: u32,
    /// With --profile: repetition cap per cell in a re-run (`bench run --max-reps`).
    #[arg(long, default_value_t = 10)]
    pub remeasure_reps: u32,
    /// With --profile: exit 4 at once when another measurement holds the machine's
    /// measurement lock instead of waiting for it.
    #[arg(long, requires = "profile")]
    pub no_wait: bool,
    /// The summary (table: the CI log's lines), the verdict table (markdown, csv), or the
    /// verdict, every finding and the missing cells (json); same exit codes.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Arguments of `bench calibrate`.
#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// Result CSV files.
    #[arg(required_unless_present = "db")]
    pub files: Vec<PathBuf>,
    /// A results database and filters: its runs are read too.
    #[command(flatten)]
    pub db: crate::results::db::DbArgs,
    /// Directory for the Markdown tables and `calibration/<host>.toml` (default: print the
    /// tables and write nothing).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Directory to look for the measured models' GGUF files in (repeatable; the CSVs'
    /// directories and the model cache are searched too): the cost model needs their KV
    /// cache, attention shape and vocabulary.
    #[arg(long = "models-dir")]
    pub models_dirs: Vec<PathBuf>,
    /// Another machine's `bench hw --json`: the guide's table predicted for it too
    /// (repeatable).
    #[arg(long = "hw")]
    pub hw: Vec<PathBuf>,
    /// The measured host's own `bench hw --json`, for its last-level cache size (the cost
    /// model costs weights that fit in it as cached). Default: this machine's cache when it
    /// is the rows' host (same host name and CPU model), else unknown (every weight byte is
    /// costed as read from DRAM).
    #[arg(long = "host-hw")]
    pub host_hw: Option<PathBuf>,
    /// Output format, Markdown by default; json is what the Markdown shows, machine-readable.
    /// Files are written only with --out, whatever the format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Arguments of `bench history`.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// The results database (required) and the filters of its rows.
    #[command(flatten)]
    pub db: crate::results::db::DbArgs,
    /// What to follow across runs.
    #[arg(long, value_enum, default_value = "decode_tps")]
    pub metric: history::HistoryMetric,
    /// Only the newest N runs that measured the metric.
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
    /// Output format; json has the runs and every line's values.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs `bench history`.
pub fn history_command(args: &HistoryArgs) -> anyhow::Result<ExitCode> {
    let Some(db) = &args.db.db else {
        anyhow::bail!("bench history reads a results database: give --db FILE");
    };
    let runs = crate::results::load::load_db_runs(db, &args.db.filter())?;
    let h = history::history(&runs, args.metric, args.last);
    anyhow::ensure!(
        !h.runs.is_empty(),
        "{}: no run that passes the filters measured {}",
        db.display(),
        args.metric.name()
    );
    crate::util::output::print(&h.report().render(args.output.format(), &h)?)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `bench compare`.
pub fn compare_command(args: &CompareArgs) -> anyhow::Result<ExitCode> {
    let files = crate::results::load::load_inputs(&args.files, &args.db)?;
    anyhow::ensure!(
        files.len() >= 2,
        "bench compare needs two result files or runs at least, got {}",
        files.len()
    );
    let comparison = compare::compare(&files, args.metric, args.margin);
    let format = args.output.format();
    if format == Format::Csv || format == Format::Json {
        eprint!("{}", comparison.warning_block());
        for n in &comparison.notes {
            eprintln!("note: {n}");
        }
    }
    crate::util::output::print(&comparison.render(format)?)?;
    Ok(ExitCode::SUCCESS)
}

impl CheckArgs {
    /// How a check passes: `--strict` or by its estimate.
    pub fn rule(&self) -> stats::Rule {
        match self.strict {
            true => stats::Rule::Strict,
            false => stats::Rule::Estimate,
        }
    }
}

/// Runs `bench check`.
pub fn check_command(args: &CheckArgs, runner: check::ProfileRunner) -> anyhow::Result<ExitCode> {
    check::command(args, &Some(runner))
}

/// Runs `bench calibrate`.
pub fn calibrate_command(args: &CalibrateArgs) -> anyhow::Result<ExitCode> {
    calibrate::command(args)
}
