//! Loading result files for analysis: the CSV rows, and the raw repetitions from the JSON
//! Lines file beside each CSV reduced to per-repetition metric values. When the JSONL is
//! missing or unreadable the analysis falls back to the rows' summary statistics, and the
//! loaded file carries a note saying so.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{CellKey, ResultRow};

/// Per-repetition values of one cell, taken from the raw JSONL.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RepValues {
    /// Server decode speed of each repetition (tokens/s).
    pub decode_tps: Vec<f64>,
    /// Prefill speed of each repetition (tokens/s).
    pub prefill_tps: Vec<f64>,
    /// Time to first token of each repetition (milliseconds).
    pub ttft_ms: Vec<f64>,
    /// 99th percentile inter-token latency of each repetition (milliseconds).
    pub itl_p99_ms: Vec<f64>,
    /// Draft acceptance of each repetition that drafted (fraction).
    pub acceptance: Vec<f64>,
    /// Every inter-token gap of every repetition (milliseconds), for distributions.
    pub itl_gaps_ms: Vec<f64>,
    /// Paired repetitions of an accelerated cell measured beside a baseline server: (this
    /// cell's decode t/s, the baseline's decode t/s) of each pair, in order. Empty for cells
    /// measured without a partner.
    pub pairs: Vec<(f64, f64)>,
}

/// One result CSV with its raw repetitions.
#[derive(Debug, Clone)]
pub struct LoadedFile {
    /// The CSV path as given.
    pub path: PathBuf,
    /// Its rows, in file order.
    pub rows: Vec<ResultRow>,
    /// Raw repetitions per cell key; empty when the JSONL is absent.
    pub raw: HashMap<CellKey, RepValues>,
    /// Why the raw repetitions are not used, when they are not.
    pub raw_note: Option<String>,
    /// What tables and charts call it when not its file's stem: a run of a database,
    /// `#ID STEM`.
    pub name: Option<String>,
}

impl LoadedFile {
    /// A file of `rows` read from `path`, without raw repetitions (a database's newest rows,
    /// and the tests' files).
    pub fn of_rows(path: impl Into<PathBuf>, rows: Vec<ResultRow>) -> LoadedFile {
        LoadedFile {
            path: path.into(),
            rows,
            raw: HashMap::new(),
            raw_note: None,
            name: None,
        }
    }
}

impl LoadedFile {
    /// Short label for columns: the file stem (a database's run: `#ID STEM`).
    pub fn label(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }

    /// Raw values of the cell of `row`, if the JSONL had them.
    pub fn raw_of(&self, row: &ResultRow) -> Option<&RepValues> {
        self.raw.get(&row.key())
    }
}

/// Loads a result CSV (schema and syntax checked; errors name file, line and column) and the
/// JSONL beside it.
pub fn load(path: &Path) -> anyhow::Result<LoadedFile> {
    let rows = read_rows(path)?;
    let jsonl = super::jsonl_path_for(path);
    // An absent JSONL means summary statistics (said in a note); a damaged one is bad input.
    let (raw, raw_note) = if jsonl.exists() {
        let raw = raw_seam::read_raw(&jsonl)?;
        let note = raw
            .is_empty()
            .then(|| format!("{} has no timed repetitions", jsonl.display()));
        (raw, note)
    } else {
        let note = format!("no raw repetitions ({} not found)", jsonl.display());
        (HashMap::new(), Some(note))
    };
    Ok(LoadedFile {
        path: path.to_path_buf(),
        rows,
        raw,
        raw_note,
        name: None,
    })
}

/// Loads several files, stopping at the first error.
pub fn load_all(paths: &[PathBuf]) -> anyhow::Result<Vec<LoadedFile>> {
    paths.iter().map(|p| load(p)).collect()
}

/// Loads the files, then the runs of `--db` that pass its filters (one loaded file per
/// run, named by the CSV it was written with). A filter that leaves nothing is an error.
pub fn load_inputs(paths: &[PathBuf], db: &super::db::DbArgs) -> anyhow::Result<Vec<LoadedFile>> {
    let mut files = load_all(paths)?;
    if let Some(path) = &db.db {
        files.extend(load_db(path, &db.filter())?);
    }
    Ok(files)
}

/// The runs of a results database that pass `filter`, oldest first, as loaded files.
pub fn load_db(path: &Path, filter: &super::db::DbFilter) -> anyhow::Result<Vec<LoadedFile>> {
    Ok(load_db_runs(path, filter)?
        .into_iter()
        .map(|r| r.1)
        .collect())
}

/// The runs of a results database that pass `filter`, oldest first, each with what the
/// database knows of it.
pub fn load_db_runs(
    path: &Path,
    filter: &super::db::DbFilter,
) -> anyhow::Result<Vec<(super::db::RunInfo, LoadedFile)>> {
    let mut runs = super::db::read(path, filter)?;
    // Oldest measurement first (an import keeps the time its rows were measured).
    let first = |run: &super::db::StoredRun| {
        let when = run.rows.iter().map(|r| r.timestamp_utc.clone()).min();
        (when.unwrap_or_default(), run.info.run_id)
    };
    runs.sort_by_cached_key(first);
    anyhow::ensure!(
        !runs.is_empty(),
        "{}: no rows pass the filters (see `bench history --db {}` for what it holds)",
        path.display(),
        path.display()
    );
    Ok(runs.into_iter().map(loaded_run).collect())
}

/// The newest row of each cell among `runs` (oldest first), with its raw values: the
/// baseline a database gives `bench check`. A row that is not `ok` gives way to an older
/// one that is.
pub fn newest_per_cell(db: &Path, runs: Vec<LoadedFile>) -> LoadedFile {
    let mut out = LoadedFile::of_rows(db.to_path_buf(), Vec::new());
    let mut seen: HashMap<CellKey, usize> = HashMap::new();
    for run in runs.into_iter().rev() {
        for row in run.rows {
            let key = row.key();
            let taken = seen
                .get(&key)
                .map(|i| out.rows[*i].status == super::Status::Ok);
            if taken == Some(true) || (taken.is_some() && row.status != super::Status::Ok) {
                continue;
            }
            if let Some(values) = run.raw.get(&key) {
                out.raw.insert(key.clone(), values.clone());
            }
            match seen.get(&key) {
                Some(i) => out.rows[*i] = row,
                None => {
                    seen.insert(key, out.rows.len());
                    out.rows.push(row);
                }
            }
        }
    }
    out
}

/// One run of a database as a loaded file.
fn loaded_run(run: super::db::StoredRun) -> (super::db::RunInfo, LoadedFile) {
    let raw = raw_seam::values(&run.raw);
    let raw_note = raw.is_empty().then(|| {
        format!(
            "run {} ({}) has no timed repetitions in the database",
            run.info.run_id, run.info.csv_path
        )
    });
    let path = PathBuf::from(&run.info.csv_path);
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    let file = LoadedFile {
        name: Some(format!("#{} {}", run.info.run_id, stem.unwrap_or_default())),
        path,
        rows: run.rows,
        raw,
        raw_note,
    };
    (run.info, file)
}

/// Reads the CSV rows through the results module (schema version and syntax checked).
fn read_rows(path: &Path) -> anyhow::Result<Vec<ResultRow>> {
    Ok(super::read_results(path)?)
}

/// Turns the results module's raw repetition records into [`RepValues`] per cell.
mod raw_seam {
    use super::*;
    use crate::measure::RequestRaw;
    use crate::results::RawRepetition;

    /// Reads the JSONL beside a CSV (timed repetitions only, warm-ups dropped). The requests
    /// of one repetition (the slots of a batch, which ran at the same time) make one value.
    /// A partner batch (the baseline server's half of a pair, before or after the cell's own
    /// batch of the same `rep`) enters no cell's values, only that pair.
    pub fn read_raw(path: &Path) -> anyhow::Result<HashMap<CellKey, RepValues>> {
        Ok(values(&crate::results::read_raw(path)?))
    }

    /// The values of raw repetitions, per cell.
    pub fn values(reps: &[RawRepetition]) -> HashMap<CellKey, RepValues> {
        let mut out: HashMap<CellKey, RepValues> = HashMap::new();
        let timed: Vec<_> = reps.iter().filter(|r| !r.warmup).collect();
        let mut partners: HashMap<(CellKey, u32), f64> = HashMap::new();
        let mut own: Vec<((CellKey, u32), f64)> = Vec::new();
        let same_batch = |a: &&RawRepetition, b: &&RawRepetition| {
            a.key == b.key && a.rep == b.rep && a.partner == b.partner
        };
        for batch in timed.chunk_by(same_batch) {
            let requests: Vec<RequestRaw> = batch.iter().map(|r| r.request.clone()).collect();
            let id = (batch[0].key.clone(), batch[0].rep);
            let tps = crate::measure::batch_decode_tps(&requests);
            if batch[0].partner {
                partners.extend(tps.map(|t| (id, t)));
            } else {
                own.extend(tps.map(|t| (id.clone(), t)));
                push_batch(out.entry(id.0).or_default(), &requests);
            }
        }
        for (id, tps) in own {
            if let (Some(base), Some(values)) = (partners.get(&id), out.get_mut(&id.0)) {
                values.pairs.push((tps, *base));
            }
        }
        out
    }

    /// Adds one repetition's metrics to the cell's values: the mean over its requests for
    /// rates and TTFT, accepted / drafted over the batch, the p99 of the batch's gaps.
    pub fn push_batch(v: &mut RepValues, batch: &[RequestRaw]) {
        let metrics: Vec<_> = batch.iter().map(RequestRaw::metrics).collect();
        let mean = |values: Vec<f64>| {
            (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
        };
        v.decode_tps.extend(crate::measure::batch_decode_tps(batch));
        v.prefill_tps
            .extend(mean(metrics.iter().filter_map(|m| m.prefill_tps).collect()));
        v.ttft_ms.extend(mean(
            metrics
                .iter()
                .filter_map(|m| m.ttft.map(|d| d.as_secs_f64() * 1e3))
                .collect(),
        ));
        let drafted: u64 = metrics.iter().filter_map(|m| m.draft_n).sum();
        let accepted: u64 = metrics.iter().filter_map(|m| m.draft_accepted).sum();
        if drafted > 0 {
            v.acceptance.push(accepted as f64 / drafted as f64);
        }
        let gaps: Vec<f64> = batch
            .iter()
            .flat_map(RequestRaw::itl_gaps)
            .map(|d| d.as_secs_f64() * 1e3)
            .collect();
        if let Some(p99) = percentile(&gaps, 0.99) {
            v.itl_p99_ms.push(p99);
        }
        v.itl_gaps_ms.extend(gaps);
    }
}

/// The one percentile definition of tpsbench (nearest rank), shared with the measurement.
pub use crate::measure::percentile;
