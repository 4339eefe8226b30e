//! Model sizing (`bench size`) and the RAM budget planner (`bench plan`).
//!
//! `bench size` reads GGUF files and sets the guide's size formula next to their exact
//! figures; `bench plan` fits a profile's roles into the guide's budget for this machine
//! (or `--ram`), dropping roles in the guide's "Scaling Down" order when it must.

pub mod budget;
pub mod exact;
mod notes;
pub mod plan;
pub mod render;
pub mod role_size;
pub mod size;

pub use budget::{budget, Budget};
pub use plan::{plan, Plan, PlanOptions, RamSource};

use crate::util::output::{print, Format, OutputArgs, Report};
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `bench size`.
#[derive(Debug, clap::Args)]
pub struct SizeArgs {
    /// GGUF files (the first shard of a sharded model stands for all of them).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Context (tokens) of the KV-cache figure [default: the model's context length,
    /// capped at 4096].
    #[arg(long)]
    pub ctx: Option<u64>,
    /// Output format; json is an array, one object per file.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Arguments of `bench plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Profile name (profiles/NAME.toml or embedded) or path to a profile file.
    #[arg(long)]
    pub profile: String,
    /// Total RAM in GB (GiB) to plan for [default: MemTotal of this machine].
    #[arg(long)]
    pub ram: Option<f64>,
    /// Directory the profile's model files are relative to.
    #[arg(long, env = "BENCH_MODELS_DIR", default_value = ".")]
    pub models_dir: PathBuf,
    /// Size roles whose file is absent by their synthetic preset's llama-quantize layout
    /// (exact tensor bytes of the shape) instead of the guide's formula.
    #[arg(long)]
    pub layout: bool,
    /// Output format (the notes go to stderr except with json, which holds them).
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs `bench size`.
pub fn size_command(args: &SizeArgs) -> anyhow::Result<ExitCode> {
    let mut reports = Vec::with_capacity(args.files.len());
    for file in &args.files {
        reports.push(size::report(exact::read(file)?, args.ctx));
    }
    let report = Report::tables(reports.iter().flat_map(size::tables));
    print(&report.render(args.output.format(), &reports)?)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `bench plan`.
pub fn plan_command(args: &PlanArgs) -> anyhow::Result<ExitCode> {
    let profile = crate::profile::load(&args.profile)?;
    let (ram_gib, ram_source) = match args.ram {
        Some(gb) if gb > 0.0 && gb.is_finite() => (gb, RamSource::Flag),
        Some(gb) => anyhow::bail!("--ram must be a positive number of GB, got {gb}"),
        None => (mem_total_gib()?, RamSource::ThisMachine),
    };
    let opts = PlanOptions {
        ram_gib,
        ram_source,
        models_dir: args.models_dir.clone(),
        by_layout: args.layout,
    };
    let mut plan = plan::plan(&profile, &opts);
    plan.notes = notes::notes(&plan);
    let format = args.output.format();
    if format != Format::Json {
        eprint!("{}", render::notes(&plan));
    }
    print(&Report::from(render::table(&plan)).render(format, &plan)?)?;
    Ok(ExitCode::SUCCESS)
}

/// MemTotal of /proc/meminfo in GiB (the unit of `free -g`, the guide's RAM figure).
pub fn mem_total_gib() -> anyhow::Result<f64> {
    let info =
        crate::hardware::memory::read_meminfo().context("pass --ram GB to plan without it")?;
    Ok(info.total_bytes as f64 / crate::hardware::memory::GIB)
}
