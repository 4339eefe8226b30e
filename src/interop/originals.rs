//! The llama-bench records an import came from, kept beside its CSV
//! (`OUT.llama-bench.jsonl`, llama-bench's own `-o jsonl` layout) so that `bench export` of
//! the imported rows gives back each record whole: build, GPU, paths, settings, nanosecond
//! samples and fields this version does not know. A results row has no column for most of
//! them, and a new column for another tool's fields would widen every row of every run.
//!
//! A record is matched to its row by what the import copies unchanged (model file name,
//! test name, threads, depth, settings, test time); a row with no match (the file was
//! deleted, or the row edited) is exported from its columns like a harness row.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::import::file_name;
use super::llama_bench::{self, LlamaBenchTest};
use crate::results::{ResultRow, Source};

/// What identifies an imported row's record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Link {
    model_file: String,
    workload: String,
    threads: u32,
    depth: u32,
    server_args: String,
    time: String,
}

impl Link {
    fn of_record(t: &LlamaBenchTest) -> Link {
        Link {
            model_file: file_name(&t.model_filename),
            workload: t.test_name(),
            threads: t.n_threads,
            depth: t.n_depth,
            server_args: t.server_args(),
            time: t.test_time.clone(),
        }
    }

    fn of_row(row: &ResultRow) -> Link {
        Link {
            model_file: row.model_file.clone(),
            workload: row.workload.clone(),
            threads: row.threads,
            depth: row.depth,
            server_args: row.server_args.clone(),
            time: row.timestamp_utc.clone(),
        }
    }
}

/// The records file beside a results CSV: `lb.csv` -> `lb.llama-bench.jsonl`.
pub fn path_for(csv: &Path) -> PathBuf {
    csv.with_extension("llama-bench.jsonl")
}

/// Writes the imported records as llama-bench's `-o jsonl`, one line each.
pub fn write(csv: &Path, records: &[LlamaBenchTest]) -> anyhow::Result<()> {
    let mut text = String::new();
    for t in records {
        text += &serde_json::to_string(t)?;
        text.push('\n');
    }
    let path = path_for(csv);
    crate::util::write_atomic(&path, text.as_bytes())
        .map_err(|e| anyhow::anyhow!("writing {}: {e:#}", path.display()))
}

/// The original records of an imported CSV, empty when it has none beside it.
#[derive(Debug, Default)]
pub struct Originals(HashMap<Link, LlamaBenchTest>);

impl Originals {
    /// Reads the records beside `csv`, if the import left them there.
    pub fn load(csv: &Path) -> anyhow::Result<Originals> {
        let path = path_for(csv);
        if !path.exists() {
            return Ok(Originals::default());
        }
        let records = llama_bench::read(&path)?;
        let map = records
            .into_iter()
            .map(|t| (Link::of_record(&t), t))
            .collect();
        Ok(Originals(map))
    }

    /// The record an imported row came from.
    pub fn of(&self, row: &ResultRow) -> Option<&LlamaBenchTest> {
        if row.source != Source::LlamaBench {
            return None;
        }
        self.0.get(&Link::of_row(row))
    }
}
