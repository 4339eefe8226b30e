//! Loading result files for analysis: the CSV rows, and the raw repetitions from the JSON
//! Lines file beside each CSV reduced to per-repetition metric values. When the JSONL is
//! missing or unreadable the analysis falls back to the rows' summary statistics, and the
//! loaded file carries a note saying so.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::results::{CellKey, ResultRow};

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
}

impl LoadedFile {
    /// Short label for columns: the file stem.
    pub fn label(&self) -> String {
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
    let jsonl = path.with_extension("jsonl");
    let (raw, raw_note) = match raw_seam::read_raw(&jsonl) {
        Ok(raw) if !raw.is_empty() => (raw, None),
        Ok(_) => (
            HashMap::new(),
            Some(format!("{} has no repetitions", jsonl.display())),
        ),
        Err(e) => (HashMap::new(), Some(format!("{e:#}"))),
    };
    Ok(LoadedFile {
        path: path.to_path_buf(),
        rows,
        raw,
        raw_note,
    })
}

/// Loads several files, stopping at the first error.
pub fn load_all(paths: &[PathBuf]) -> anyhow::Result<Vec<LoadedFile>> {
    paths.iter().map(|p| load(p)).collect()
}

/// Reads the CSV rows. PENDING(measure): replace the body with `crate::results::read_results`
/// once it is on the measure branch; this stand-in checks the same things.
fn read_rows(path: &Path) -> anyhow::Result<Vec<ResultRow>> {
    pending::read_results(path)
}

mod pending {
    use super::*;
    use anyhow::{bail, Context};

    pub fn read_results(path: &Path) -> anyhow::Result<Vec<ResultRow>> {
        let mut rdr = csv::Reader::from_path(path)
            .with_context(|| format!("reading results {}", path.display()))?;
        let headers = rdr
            .headers()
            .with_context(|| format!("reading the header of {}", path.display()))?
            .clone();
        if headers.get(0) != Some("schema_version") {
            bail!(
                "{}:1:1: first column is {:?}, not schema_version: not a tpsbench result file",
                path.display(),
                headers.get(0).unwrap_or("")
            );
        }
        let mut rows = Vec::new();
        for record in rdr.records() {
            let record = record.map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let line = record.position().map_or(0, |p| p.line());
            let version = record.get(0).unwrap_or("");
            if version != crate::results::SCHEMA_VERSION.to_string() {
                bail!(
                    "{}:{line}:1 (schema_version): schema version {version:?}, this bench reads {}",
                    path.display(),
                    crate::results::SCHEMA_VERSION
                );
            }
            let row: ResultRow = record.deserialize(Some(&headers)).map_err(|e| {
                let col = match e.kind() {
                    csv::ErrorKind::Deserialize { err, .. } => err.field().map(|f| f as usize),
                    _ => None,
                };
                let name = col.and_then(|c| headers.get(c)).unwrap_or("?");
                anyhow::anyhow!(
                    "{}:{line}:{} ({name}): {e}",
                    path.display(),
                    col.map_or(0, |c| c + 1)
                )
            })?;
            rows.push(row);
        }
        Ok(rows)
    }
}

/// Turns the results module's raw repetition records into [`RepValues`] per cell.
mod raw_seam {
    use super::*;

    /// Reads the JSONL beside a CSV; an absent file is an error with a message for the note.
    pub fn read_raw(path: &Path) -> anyhow::Result<HashMap<CellKey, RepValues>> {
        if !path.exists() {
            anyhow::bail!("no raw repetitions ({} not found)", path.display());
        }
        // PENDING(measure): the JSONL record type (`RawRepetition`) is not on the measure
        // branch yet; until it is, analysis uses the rows' summary statistics.
        anyhow::bail!(
            "raw repetitions in {} not readable by this build yet",
            path.display()
        )
    }

    /// Adds one request's derived metrics to the cell's values.
    #[allow(dead_code)] // PENDING(measure): called by read_raw once the JSONL type lands.
    pub fn push_request(v: &mut RepValues, req: &crate::measure::RequestRaw) {
        let m = req.metrics();
        v.decode_tps.extend(m.decode_tps_server);
        v.prefill_tps.extend(m.prefill_tps);
        v.ttft_ms.extend(m.ttft.map(|d| d.as_secs_f64() * 1e3));
        v.acceptance.extend(m.acceptance);
        let gaps: Vec<f64> = req
            .itl_gaps()
            .iter()
            .map(|d| d.as_secs_f64() * 1e3)
            .collect();
        if let Some(p99) = percentile(&gaps, 0.99) {
            v.itl_p99_ms.push(p99);
        }
        v.itl_gaps_ms.extend(gaps);
    }
}

/// Nearest-rank percentile (q in 0..1) of unsorted values; `None` when empty.
pub fn percentile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(50.0));
        assert_eq!(percentile(&v, 0.99), Some(99.0));
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 1.0), Some(3.0));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
