//! The measured cells the cost model learns from: `ok` cells that decode without speculation
//! (`baseline`, `moe:N`) with one slot and a measured bandwidth, each with its model's exact
//! shape. A results row carries the weight bytes and parameters but not the KV bytes per token,
//! the attention shape or the vocabulary, so the model's GGUF is read: looked up by the row's
//! file name in the given model directories, the directory of the CSV, and the model cache
//! (`~/.cache/tpsbench/models`, where `bench synth` and `bench fetch` put theirs), and used
//! only when its parameter count equals the row's. A cell whose GGUF is not found is left out
//! and named. The context before decoding and the prompt prefilled come from `depth` and
//! `prompt_tokens` as each source counts them ([`context_of`]). Only rows of one host are
//! fitted together, and every cell uses that host's median measured bandwidth over its runs
//! ([`host_bandwidth`]): each run measures the bandwidth for one second, and on a 2-core VM
//! two runs an hour apart measured 27.6 and 33.8 GB/s, and six runs of one idle morning 34.3
//! to 60.1 GB/s, while the models decoded at the same speed, so a row's own figure adds noise,
//! not information.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::fit::Obs;
use super::terms::{Part, Setting, Shape};
use crate::gguf::{Model, ModelFacts};
use crate::mode::Mode;
use crate::results::load::LoadedFile;
use crate::results::{ResultRow, Source, Status};

/// One measured cell with its model's shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    /// Model file name (the resampling and leave-one-out unit).
    pub model: String,
    /// Quant group (`Q4`, `Q8`, `F16`).
    pub family: String,
    /// MoE model.
    pub moe: bool,
    /// Synthetic stand-in.
    pub synthetic: bool,
    /// Mode (`baseline` or `moe:N`).
    pub mode: Mode,
    /// Workload name.
    pub workload: String,
    /// The model's shape (with `moe:N` applied).
    pub shape: Shape,
    /// Depth, threads, bandwidth.
    pub setting: Setting,
    /// Measured mean decode rate (tokens/s).
    pub decode_tps: f64,
    /// Measured mean prefill rate (tokens/s).
    pub prefill_tps: Option<f64>,
}

impl Cell {
    /// The observation of one part, when measured.
    pub fn obs(&self, part: Part) -> Option<Obs> {
        let tps = match part {
            Part::Decode => Some(self.decode_tps),
            Part::Prefill => self.prefill_tps,
        }
        .filter(|v| *v > 0.0 && v.is_finite())?;
        Some(Obs {
            x: part.row(&self.shape, &self.setting),
            y: 1.0 / tps,
            model: self.model.clone(),
        })
    }
}

/// The cells found, and the models left out for want of their GGUF.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CellSet {
    /// Cells with an exact shape.
    pub cells: Vec<Cell>,
    /// Model files whose GGUF was not found, or whose parameter count differs from the row's
    /// (their cells are left out).
    pub missing: Vec<String>,
    /// Directories searched.
    pub searched: Vec<PathBuf>,
    /// The host whose cells these are.
    pub host: String,
    /// Its median measured bandwidth over the usable rows (GB/s), used for every cell.
    pub bandwidth_gbps: f64,
    /// Its last-level cache (bytes), when known (`--host-hw`, or this machine's when it is
    /// the rows' host).
    pub llc_bytes: Option<u64>,
    /// Usable rows of other hosts, left out.
    pub other_host_rows: usize,
}

impl CellSet {
    /// Observations of a part over all cells.
    pub fn obs(&self, part: Part) -> Vec<Obs> {
        self.cells.iter().filter_map(|c| c.obs(part)).collect()
    }
}

/// Directories a row's model file is looked for in: `extra`, the CSVs' own directories, and
/// the model cache.
pub fn search_dirs(files: &[LoadedFile], extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = extra.to_vec();
    for f in files {
        if let Some(d) = f.path.parent() {
            dirs.push(if d.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                d.to_path_buf()
            });
        }
    }
    dirs.push(crate::synth::cache_dir());
    dirs.dedup();
    dirs
}

/// Reads GGUF facts by file name and parameter count, once per pair.
struct FactsCache {
    dirs: Vec<PathBuf>,
    found: HashMap<(String, u64), Option<ModelFacts>>,
}

impl FactsCache {
    fn facts(&mut self, file: &str, n_params: u64) -> Option<ModelFacts> {
        let dirs = &self.dirs;
        self.found
            .entry((file.to_string(), n_params))
            .or_insert_with(|| {
                dirs.iter()
                    .map(|d| d.join(file))
                    .filter(|p| p.is_file())
                    .find_map(|p| read_facts(&p, n_params))
            })
            .clone()
    }
}

fn read_facts(path: &Path, n_params: u64) -> Option<ModelFacts> {
    let facts = Model::open(path).ok()?.facts();
    (facts.n_params == n_params).then_some(facts)
}

fn usable(r: &ResultRow) -> bool {
    r.status == Status::Ok
        && r.parallel == 1
        && r.mode.decodes_plainly()
        && r.decode_tps_mean.is_some_and(|v| v > 0.0)
        && r.bandwidth_gbps.is_some_and(|b| b > 0.0)
}

/// Context before decoding and prompt processed. `bench run` counts a cell's depth filler in
/// `prompt_tokens` (the server's `prompt_n`: filler and prompt are prefilled together from an
/// empty cache); an imported llama-bench test processes its `n_prompt` tokens after
/// `n_depth` (`depth`) and decodes after both.
fn context_of(r: &ResultRow) -> (f64, f64) {
    let prompt = r.prompt_tokens.unwrap_or(0);
    let (depth, prompt) = match r.source {
        Source::LlamaBench => (r.depth.saturating_add(prompt), prompt),
        Source::Tpsbench => (prompt.max(r.depth), prompt.max(r.depth)),
    };
    (f64::from(depth), f64::from(prompt))
}

fn setting_of(r: &ResultRow, bandwidth_gbps: f64, llc_bytes: f64) -> Setting {
    let (depth, prompt) = context_of(r);
    Setting {
        depth,
        n_predict: f64::from(r.n_predict),
        prompt_tokens: prompt,
        threads: f64::from(r.threads.max(1)),
        bandwidth_gbps,
        llc_bytes,
    }
}

/// A host's bandwidth (GB/s): the median of its distinct measurements, the upper middle of an
/// even count. Each run measures the bandwidth once and writes that figure into every row it
/// makes, so a run is counted once whatever its number of rows: over rows, one run of 24 cells
/// that read 34.3 GB/s outvoted two runs of 12 and 2 cells that read 55.6 and 56.8.
pub fn host_bandwidth<'a>(rows: impl Iterator<Item = &'a ResultRow>) -> Option<f64> {
    let mut v: Vec<f64> = rows
        .filter_map(|r| r.bandwidth_gbps)
        .filter(|b| *b > 0.0)
        .collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v.get(v.len() / 2).copied()
}

fn cell_of(r: &ResultRow, facts: &ModelFacts, bandwidth_gbps: f64, llc_bytes: f64) -> Cell {
    let facts = match r.mode.moe_n() {
        Some(n) => facts.with_experts_used(n),
        None => facts.clone(),
    };
    Cell {
        model: r.model_file.clone(),
        family: crate::guide::quant_group(&r.model_quant),
        moe: r.is_moe(),
        synthetic: r.synthetic,
        mode: r.mode.clone(),
        workload: r.workload.clone(),
        shape: Shape::of(&facts),
        setting: setting_of(r, bandwidth_gbps, llc_bytes),
        decode_tps: r.decode_tps_mean.unwrap_or(0.0),
        prefill_tps: r
            .prefill_tps_mean
            .filter(|_| r.prompt_tokens.unwrap_or(0) > 0),
    }
}

/// The usable cells of `host` in every file, with their GGUF facts from `dirs`, on a machine
/// whose bandwidth is `bandwidth_gbps` ([`host_bandwidth`] of its rows) and whose last-level
/// cache holds `llc_bytes` (0 when not known).
pub fn cells_from_files(
    files: &[LoadedFile],
    host: &str,
    dirs: Vec<PathBuf>,
    bandwidth_gbps: f64,
    llc_bytes: f64,
) -> CellSet {
    let mut cache = FactsCache {
        dirs: dirs.clone(),
        found: HashMap::new(),
    };
    let rows = || files.iter().flat_map(|f| &f.rows).filter(|r| usable(r));
    let mut set = CellSet {
        searched: dirs,
        host: host.to_string(),
        bandwidth_gbps,
        llc_bytes: (llc_bytes > 0.0).then_some(llc_bytes as u64),
        other_host_rows: rows().filter(|r| r.host != host).count(),
        ..CellSet::default()
    };
    for r in rows().filter(|r| r.host == host) {
        match cache.facts(&r.model_file, r.model_n_params) {
            Some(facts) => set
                .cells
                .push(cell_of(r, &facts, bandwidth_gbps, llc_bytes)),
            None if !set.missing.contains(&r.model_file) => set.missing.push(r.model_file.clone()),
            None => {}
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(gbps: Option<f64>) -> ResultRow {
        ResultRow {
            bandwidth_gbps: gbps,
            ..ResultRow::default()
        }
    }

    #[test]
    fn a_hosts_bandwidth_counts_each_run_once() {
        // Five rows of one run at 30, one row each of runs at 60 and 50, a row without a
        // figure: the runs are 30, 50 and 60, whose median is 50 (over rows it would be 30).
        let rows: Vec<ResultRow> = [30.0, 30.0, 60.0, 30.0, 30.0, 50.0, 30.0]
            .into_iter()
            .map(|b| row(Some(b)))
            .chain([row(None)])
            .collect();
        assert_eq!(host_bandwidth(rows.iter()), Some(50.0));
        // An even count of runs takes the upper middle, a measured figure.
        let two = [row(Some(20.0)), row(Some(40.0)), row(Some(20.0))];
        assert_eq!(host_bandwidth(two.iter()), Some(40.0));
        assert_eq!(host_bandwidth([row(None)].iter()), None);
    }
}
