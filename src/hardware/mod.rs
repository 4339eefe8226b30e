//! Hardware assessment (`bench hw`): RAM, cores, ISA features, NUMA, storage, measured
//! memory read bandwidth, and the guide's tier for this machine.
//!
//! This is the guide's "Assess Your Hardware" script done properly: CPUID instead of
//! /proc/cpuinfo greps, sysfs topology instead of `nproc`, and a measured bandwidth figure,
//! which is the denominator of the decode roofline that later stages compare against.

pub mod bandwidth;
pub mod bandwidth_centre;
pub mod cpu;
pub mod cpuset;
pub mod facts;
pub mod foreign;
pub mod isa;
pub mod memory;
pub mod numa;
pub mod pagecache;
mod render;
pub mod storage;
pub mod tier;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Serialize;

pub use bandwidth::{measure_read_bandwidth, BandwidthPoint, ReadBuffer};
pub use cpu::{logical_cores, physical_cores};
pub use cpuset::CpuSet;
pub use facts::{HwFacts, HwPoint};
pub use isa::IsaFeatures;
pub use memory::{mem_available_bytes, mem_total_bytes};
pub use numa::NumaNode;
pub use storage::Storage;
pub use tier::{tier_for_ram, Tier};

use memory::GIB;

/// Up to this many logical CPUs, every thread count is measured; above it, powers of two
/// plus the physical and logical counts, so the default run stays near its time budget.
const ALL_COUNTS_UP_TO: usize = 16;

/// Version of the `bench hw --json` layout.
pub const HW_SCHEMA_VERSION: u32 = 1;

/// More reader threads than this per logical CPU only measure the scheduler.
const MAX_THREADS_PER_CPU: usize = 8;

/// Arguments of `bench hw`.
#[derive(Debug, clap::Args)]
pub struct HwArgs {
    /// Output format; json has stable field names (docs/readme/hw.md).
    #[command(flatten)]
    pub output: crate::util::output::OutputArgs,
    /// Directory that holds the models; its filesystem's free space is reported.
    #[arg(long, env = "BENCH_MODELS_DIR", value_name = "DIR")]
    pub models_dir: Option<PathBuf>,
    /// Time budget of the whole bandwidth measurement, in seconds.
    #[arg(long, default_value_t = 2.0, value_parser = parse_seconds, value_name = "SECS")]
    pub bw_seconds: f64,
    /// Thread counts to measure bandwidth with (default: 1 to the logical core count).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u16).range(1..), value_name = "N,N,...")]
    pub threads: Option<Vec<u16>>,
    /// Bandwidth buffer size in MiB (default: max(8 x last-level cache, 256 MiB)).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..), value_name = "MIB")]
    pub bw_buffer_mib: Option<u32>,
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 600.0 => Ok(v),
        Ok(_) => Err(format!("{s} is not in (0, 600] seconds")),
        Err(e) => Err(format!("{s:?} is not a number of seconds: {e}")),
    }
}

/// What `assess` measures and where.
#[derive(Debug, Clone)]
pub struct AssessOptions {
    /// Directory whose filesystem's free space is reported.
    pub models_dir: PathBuf,
    /// Time budget of the whole bandwidth measurement (all thread counts together).
    pub bw_budget: Duration,
    /// Thread counts to measure; `None` means the default list.
    pub threads: Option<Vec<usize>>,
    /// Bandwidth buffer size; `None` means max(8 x LLC, 256 MiB).
    pub buffer_bytes: Option<usize>,
}

impl Default for AssessOptions {
    fn default() -> Self {
        AssessOptions {
            models_dir: PathBuf::from("."),
            bw_budget: Duration::from_secs(2),
            threads: None,
            buffer_bytes: None,
        }
    }
}

impl AssessOptions {
    /// Validated options from the command line.
    pub fn from_args(args: &HwArgs) -> Self {
        AssessOptions {
            models_dir: storage::models_dir_or_default(args.models_dir.as_deref()),
            bw_budget: Duration::from_secs_f64(args.bw_seconds),
            threads: args
                .threads
                .as_ref()
                .map(|t| t.iter().map(|n| usize::from(*n)).collect()),
            buffer_bytes: args.bw_buffer_mib.map(|m| (m as usize) << 20),
        }
    }
}

/// The whole `bench hw` report. Field names are stable (documented in docs/readme/hw.md).
#[derive(Debug, Clone, Serialize)]
pub struct Hardware {
    /// Version of this JSON layout; bumped when a field changes meaning or disappears.
    pub hw_schema_version: u32,
    /// MemTotal in GiB (what `free -g` shows before rounding down).
    pub ram_total_gib: f64,
    /// MemAvailable in GiB.
    pub ram_available_gib: f64,
    /// CPU model (CPUID brand string on x86).
    pub cpu_model: String,
    /// Physical packages.
    pub sockets: usize,
    /// Physical cores, each core's hardware threads counted once.
    pub physical_cores: usize,
    /// Online logical CPUs.
    pub logical_cores: usize,
    /// Instruction-set features.
    pub isa: IsaFeatures,
    /// NUMA nodes (empty where the OS has no NUMA view).
    pub numa: Vec<NumaNode>,
    /// Free space of the models directory.
    pub storage: Storage,
    /// Total last-level cache in bytes, if known.
    pub llc_bytes: Option<u64>,
    /// Size of the buffer the bandwidth kernel reads, in bytes.
    pub bandwidth_buffer_bytes: u64,
    /// Read bandwidth per thread count.
    pub bandwidth: Vec<BandwidthPoint>,
    /// Highest read bandwidth of all thread counts, in GB/s (10^9 bytes/s).
    pub best_bandwidth_gbps: f64,
    /// Thread count that reached `best_bandwidth_gbps`.
    pub best_bandwidth_threads: usize,
    /// The figure that holds still: the highest median block rate of all thread counts
    /// (`centre_gbps` of a point), in GB/s.
    pub centre_bandwidth_gbps: f64,
    /// Thread count of `centre_bandwidth_gbps`.
    pub centre_bandwidth_threads: usize,
    /// The spread of that thread count's block rates (interquartile range over the median,
    /// percent).
    pub centre_bandwidth_spread_pct: f64,
    /// The guide's deployment tier for `ram_total_gib`.
    pub tier: Tier,
    /// Why this tier, in words.
    pub tier_reason: String,
}

impl Hardware {
    /// The bandwidth with `threads` readers: the measured point, else the best (GB/s), as
    /// [`HwFacts::bandwidth_at`] reads it from a hardware file.
    pub fn bandwidth_at(&self, threads: usize) -> f64 {
        self.bandwidth
            .iter()
            .find(|p| p.threads == threads)
            .map_or(self.best_bandwidth_gbps, |p| p.bandwidth_gbps)
    }
}

/// Assesses this machine: static facts first, then the bandwidth measurement.
pub fn assess(opts: &AssessOptions) -> anyhow::Result<Hardware> {
    let storage = storage::read_storage(&opts.models_dir)?;
    let mem = memory::read_meminfo()?;
    let ram_total_gib = mem.total_bytes as f64 / GIB;
    let (sockets, physical_cores) = cpu::topology();
    let logical_cores = cpu::logical_cores();
    let llc_bytes = cpu::llc_bytes();
    let counts = thread_counts(opts.threads.as_deref(), physical_cores, logical_cores)?;
    let buffer_bytes = opts
        .buffer_bytes
        .unwrap_or_else(|| bandwidth::dram_buffer_bytes(llc_bytes.unwrap_or(0)));
    check_buffer_fits(buffer_bytes, mem.available_bytes)?;
    let points = measure_all(buffer_bytes, &counts, opts.bw_budget);
    let best = best_point(&points);
    let steady = points
        .iter()
        .max_by(|a, b| a.centre_gbps.total_cmp(&b.centre_gbps));
    let (tier, tier_reason) = tier_for_ram(ram_total_gib);
    Ok(Hardware {
        hw_schema_version: HW_SCHEMA_VERSION,
        ram_total_gib,
        ram_available_gib: mem.available_bytes as f64 / GIB,
        cpu_model: cpu::cpu_model(),
        sockets,
        physical_cores,
        logical_cores,
        isa: isa::detect(),
        numa: numa::read_nodes()?,
        storage,
        llc_bytes,
        bandwidth_buffer_bytes: buffer_bytes as u64,
        best_bandwidth_gbps: best.map_or(0.0, |p| p.bandwidth_gbps),
        best_bandwidth_threads: best.map_or(0, |p| p.threads),
        centre_bandwidth_gbps: steady.map_or(0.0, |p| p.centre_gbps),
        centre_bandwidth_threads: steady.map_or(0, |p| p.threads),
        centre_bandwidth_spread_pct: steady.map_or(0.0, |p| p.spread_pct),
        bandwidth: points,
        tier,
        tier_reason,
    })
}

/// The thread counts to measure: the chosen list, or the default for this machine.
pub fn thread_counts(
    chosen: Option<&[usize]>,
    physical: usize,
    logical: usize,
) -> anyhow::Result<Vec<usize>> {
    if let Some(list) = chosen {
        if list.is_empty() || list.contains(&0) {
            bail!("--threads needs thread counts of at least 1, got {list:?}");
        }
        let cap = MAX_THREADS_PER_CPU * logical.max(1);
        if let Some(n) = list.iter().find(|n| **n > cap) {
            bail!("--threads {n} is more than {MAX_THREADS_PER_CPU} threads per logical CPU ({logical}); use at most {cap}");
        }
        let mut v = list.to_vec();
        v.dedup();
        return Ok(v);
    }
    let logical = logical.max(1);
    if logical <= ALL_COUNTS_UP_TO {
        return Ok((1..=logical).collect());
    }
    let mut v: Vec<usize> = std::iter::successors(Some(1usize), |n| n.checked_mul(2))
        .take_while(|n| *n < logical)
        .chain([physical.clamp(1, logical), logical])
        .collect();
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

/// Refuses a buffer that would push the machine into swap or the OOM killer.
fn check_buffer_fits(buffer_bytes: usize, available_bytes: u64) -> anyhow::Result<()> {
    if buffer_bytes as u64 > available_bytes / 2 {
        bail!(
            "the bandwidth buffer of {} MiB is more than half of the {} MiB of available memory; \
             free memory or choose a smaller --bw-buffer-mib (at least 8x the last-level cache)",
            buffer_bytes >> 20,
            available_bytes >> 20
        );
    }
    Ok(())
}

/// One bandwidth figure per thread count, sharing one pre-faulted buffer and the budget.
fn measure_all(buffer_bytes: usize, counts: &[usize], budget: Duration) -> Vec<BandwidthPoint> {
    let buffer = ReadBuffer::new(buffer_bytes);
    let each = budget / counts.len().max(1) as u32;
    counts.iter().map(|n| buffer.measure(*n, each)).collect()
}

fn best_point(points: &[BandwidthPoint]) -> Option<&BandwidthPoint> {
    points
        .iter()
        .max_by(|a, b| a.bandwidth_gbps.total_cmp(&b.bandwidth_gbps))
}

/// Runs `bench hw`.
pub fn command(args: &HwArgs) -> anyhow::Result<ExitCode> {
    let hw = assess(&AssessOptions::from_args(args))?;
    let text = render::report(&hw)
        .render(args.output.format(), &hw)
        .context("rendering the hardware report")?;
    crate::util::output::print(&text)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_thread_counts_cover_small_machines_fully() {
        assert_eq!(thread_counts(None, 2, 2).unwrap(), vec![1, 2]);
        assert_eq!(
            thread_counts(None, 4, 8).unwrap(),
            (1..=8).collect::<Vec<_>>()
        );
    }

    #[test]
    fn default_thread_counts_on_big_machines_are_powers_and_core_counts() {
        assert_eq!(
            thread_counts(None, 96, 192).unwrap(),
            vec![1, 2, 4, 8, 16, 32, 64, 96, 128, 192]
        );
    }

    #[test]
    fn chosen_thread_counts_are_kept_and_zero_rejected() {
        assert_eq!(thread_counts(Some(&[1, 2]), 2, 2).unwrap(), vec![1, 2]);
        assert_eq!(thread_counts(Some(&[4]), 2, 2).unwrap(), vec![4]);
        assert!(thread_counts(Some(&[0, 1]), 2, 2).is_err());
        assert!(thread_counts(Some(&[]), 2, 2).is_err());
        let err = thread_counts(Some(&[1, 17]), 2, 2).unwrap_err().to_string();
        assert!(err.contains("17") && err.contains("at most 16"), "{err}");
    }

    #[test]
    fn oversized_buffer_is_refused_with_advice() {
        let err = check_buffer_fits(1 << 30, 1 << 30).unwrap_err().to_string();
        assert!(err.contains("--bw-buffer-mib"), "{err}");
        assert!(check_buffer_fits(256 << 20, 4 << 30).is_ok());
    }

    #[test]
    fn seconds_parser_rejects_zero_negative_and_text() {
        assert_eq!(parse_seconds("0.3"), Ok(0.3));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("two").is_err());
        assert!(parse_seconds("NaN").is_err());
    }

    #[test]
    fn best_point_is_the_fastest() {
        let p = |threads, gbps| BandwidthPoint {
            threads,
            bandwidth_gbps: gbps,
            median_bandwidth_gbps: gbps,
            passes: 3,
            bytes_per_pass: 1,
            best_pass_secs: 1.0,
            centre_gbps: gbps * 0.9,
            spread_pct: 3.0,
            blocks: 10,
        };
        let points = [p(1, 10.0), p(2, 18.5), p(3, 17.0)];
        assert_eq!(best_point(&points).unwrap().threads, 2);
        assert!(best_point(&[]).is_none());
    }
}
