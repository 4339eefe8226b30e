//! Durable writing of a results CSV and its JSON Lines beside it.
//!
//! Each row or line is serialized in memory, written with one `write_all` to a file opened
//! for appending, and synced (`File::sync_data`) before `push` returns, so a crash loses at
//! most the record being written. Resuming repairs what a crash can leave behind: a torn
//! last line, and the rows and raw lines of cells that were interrupted, which are removed
//! so that the cell, measured again, appears exactly once.
//!
//! With `--db` ([`ResultWriter::with_db`]) every row also goes to the results database,
//! after its CSV line: the CSV stays the record of the run, the database its copy.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::db::DbSink;
use super::error::ResultsError;
use super::raw::RawRepetition;
use super::reader::{header, scan, Scanned};
use super::row::{CellKey, ResultRow, Status, SCHEMA_VERSION};

/// Appends rows to a results CSV and raw repetitions to its `.jsonl` sibling, durably.
#[derive(Debug)]
pub struct ResultWriter {
    csv_path: PathBuf,
    jsonl_path: PathBuf,
    csv: File,
    jsonl: File,
    finished: HashSet<CellKey>,
    warnings: Vec<String>,
    resumed: bool,
    db: Option<DbSink>,
}

/// The JSON Lines file beside a results CSV: same stem, `.jsonl`.
pub fn jsonl_path_for(csv_path: &Path) -> PathBuf {
    csv_path.with_extension("jsonl")
}

impl ResultWriter {
    /// Creates a new CSV (header written and synced at once) and its empty `.jsonl`. Refuses
    /// to overwrite an existing file. Creates the parent directory if needed.
    pub fn create(path: &Path) -> Result<ResultWriter, ResultsError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| ResultsError::io(dir, "creating directory", e))?;
        }
        let jsonl_path = jsonl_path_for(path);
        let mut csv = create_new(path)?;
        let jsonl = create_new(&jsonl_path)?;
        write_synced(&mut csv, path, header_line().as_bytes())?;
        sync_parent(path)?;
        Ok(ResultWriter {
            csv_path: path.to_path_buf(),
            jsonl_path,
            csv,
            jsonl,
            finished: HashSet::new(),
            warnings: Vec::new(),
            resumed: false,
            db: None,
        })
    }

    /// Reopens an existing CSV (and `.jsonl`) for `--resume`: drops a torn last line and the
    /// rows and raw lines of interrupted or unfinished cells (see [`ResultWriter::warnings`]),
    /// then appends. Any other damage, or another schema version, is an error.
    pub fn append_to(path: &Path) -> Result<ResultWriter, ResultsError> {
        let bytes = std::fs::read(path).map_err(|e| ResultsError::io(path, "reading", e))?;
        let mut warnings = Vec::new();
        let scanned = scan(path, &bytes)?;
        if scanned.version != SCHEMA_VERSION {
            return Err(ResultsError::ResumeOlderVersion {
                path: path.to_path_buf(),
                found: scanned.version,
                expected: SCHEMA_VERSION,
            });
        }
        let kept = repair_csv(path, &bytes, scanned, &mut warnings)?;
        let finished: HashSet<CellKey> = kept.iter().map(ResultRow::key).collect();
        let jsonl_path = jsonl_path_for(path);
        repair_jsonl(&jsonl_path, &finished, &mut warnings)?;
        Ok(ResultWriter {
            csv: open_append(path)?,
            jsonl: open_append(&jsonl_path)?,
            csv_path: path.to_path_buf(),
            jsonl_path,
            finished,
            warnings,
            resumed: true,
            db: None,
        })
    }

    /// Appends every row from now on to the results database `db` as well, with the raw
    /// lines of its cell (`--db`), as the run of this CSV written by `command` (`run`, `ab`,
    /// `import`, `check`). A resumed CSV continues its run in the database, which is first
    /// made to hold exactly the rows the CSV kept.
    pub fn with_db(mut self, db: &Path, command: &str) -> Result<ResultWriter, ResultsError> {
        let mut sink = DbSink::open(db, &self.csv_path, command)?;
        if self.resumed {
            sink = sink.continue_run()?;
            let rows = super::read_results(&self.csv_path)?;
            let raw = super::read_raw(&self.jsonl_path)?;
            sink.replace(&rows, &raw)?;
        }
        self.db = Some(sink);
        Ok(self)
    }

    /// Writes one row, flushed and synced before returning. The writer stamps the schema
    /// version. A second finished row for the same cell is refused.
    pub fn push(&mut self, row: &ResultRow) -> Result<(), ResultsError> {
        let key = row.key();
        if self.finished.contains(&key) {
            return Err(ResultsError::Duplicate {
                path: self.csv_path.clone(),
                key: key.to_string(),
            });
        }
        let row = ResultRow {
            schema_version: SCHEMA_VERSION,
            ..row.clone()
        };
        write_synced(&mut self.csv, &self.csv_path, &row_line(&row))?;
        if row.is_finished() {
            self.finished.insert(key);
        }
        // After the CSV line: the CSV is the record, the database its copy (a database that
        // fails leaves the writer's state matching the CSV).
        match &mut self.db {
            Some(db) => Ok(db.push(&row)?),
            None => Ok(()),
        }
    }

    /// Writes one raw repetition as a JSON line, flushed and synced before returning.
    pub fn push_raw(&mut self, rep: &RawRepetition) -> Result<(), ResultsError> {
        let rep = RawRepetition {
            schema_version: SCHEMA_VERSION,
            ..rep.clone()
        };
        let mut line = serde_json::to_vec(&rep).expect("a raw repetition serializes to JSON");
        line.push(b'\n');
        write_synced(&mut self.jsonl, &self.jsonl_path, &line)?;
        if let Some(db) = &mut self.db {
            db.push_raw(&rep);
        }
        Ok(())
    }

    /// Cells that have a finished row (status other than `interrupted`): skip them on resume.
    pub fn finished(&self) -> &HashSet<CellKey> {
        &self.finished
    }

    /// What resuming repaired, one sentence each, for the driver to show.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The CSV file.
    pub fn csv_path(&self) -> &Path {
        &self.csv_path
    }

    /// The JSON Lines file.
    pub fn jsonl_path(&self) -> &Path {
        &self.jsonl_path
    }
}

/// The header line of this schema version, with its newline.
fn header_line() -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record(header())
        .expect("writing to memory cannot fail");
    String::from_utf8(writer.into_inner().expect("flushing to memory cannot fail"))
        .expect("ASCII header")
}

/// One row as a CSV line with its newline.
fn row_line(row: &ResultRow) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    writer
        .serialize(row)
        .expect("a result row serializes to CSV");
    writer.into_inner().expect("flushing to memory cannot fail")
}

/// Keeps the rows of finished cells; rewrites the file if a torn line or interrupted rows
/// had to go. Returns the kept rows.
fn repair_csv(
    path: &Path,
    bytes: &[u8],
    scanned: Scanned,
    warnings: &mut Vec<String>,
) -> Result<Vec<ResultRow>, ResultsError> {
    let total = scanned.records.len();
    let header_was_torn = scanned.header_end == 0;
    let scanned = scanned.without_torn_tail()?;
    if scanned.records.len() < total {
        warnings.push(format!(
            "{}: dropped a torn last line (the run was killed while writing it); its cell will be measured again",
            path.display()
        ));
    }
    let mut out = header_line().into_bytes();
    let mut kept = Vec::new();
    let mut interrupted = 0;
    for record in scanned.records {
        let row = record.row?;
        if row.status == Status::Interrupted {
            interrupted += 1;
            continue;
        }
        out.extend_from_slice(&bytes[record.start as usize..record.end as usize]);
        kept.push(row);
    }
    if interrupted > 0 {
        warnings.push(format!(
            "{}: removed {interrupted} interrupted row(s); they will be measured again",
            path.display()
        ));
    }
    if header_was_torn || out.len() != bytes.len() {
        replace_file(path, &out)?;
    }
    Ok(kept)
}

/// Keeps the JSON lines of finished cells; drops a torn last line and the lines of cells
/// that will be measured again. A bad line elsewhere is an error naming its line.
fn repair_jsonl(
    path: &Path,
    finished: &HashSet<CellKey>,
    warnings: &mut Vec<String>,
) -> Result<(), ResultsError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return replace_file(path, b""),
        Err(e) => return Err(ResultsError::io(path, "reading", e)),
    };
    let lines: Vec<&[u8]> = bytes.split_inclusive(|b| *b == b'\n').collect();
    let mut out = Vec::with_capacity(bytes.len());
    let mut dropped = 0;
    for (i, line) in lines.iter().enumerate() {
        let is_last = i + 1 == lines.len();
        match serde_json::from_slice::<RawRepetition>(line) {
            Ok(rep) if line.ends_with(b"\n") => {
                if finished.contains(&rep.key) {
                    out.extend_from_slice(line);
                } else {
                    dropped += 1;
                }
            }
            _ if is_last => warnings.push(format!("{}: dropped a torn last line", path.display())),
            Err(e) => return Err(jsonl_error(path, i, e)),
            Ok(_) => unreachable!("only the last line can lack its newline"),
        }
    }
    if dropped > 0 {
        warnings.push(format!(
            "{}: removed {dropped} raw line(s) of cells to be measured again",
            path.display()
        ));
    }
    if out.len() != bytes.len() {
        replace_file(path, &out)?;
    }
    Ok(())
}

/// A JSONL parse error at 0-based line `index`.
fn jsonl_error(path: &Path, index: usize, e: serde_json::Error) -> ResultsError {
    ResultsError::Malformed {
        path: path.to_path_buf(),
        line: index as u64 + 1,
        column_index: e.column(),
        column: String::new(),
        message: e.to_string(),
    }
}

/// Replaces a file atomically: write a sibling temp file, sync it, rename, sync the directory.
fn replace_file(path: &Path, contents: &[u8]) -> Result<(), ResultsError> {
    let tmp = path.with_extension("resume-tmp");
    let mut file = File::create(&tmp).map_err(|e| ResultsError::io(&tmp, "creating", e))?;
    write_synced(&mut file, &tmp, contents)?;
    std::fs::rename(&tmp, path).map_err(|e| ResultsError::io(path, "replacing", e))?;
    sync_parent(path)
}

/// Creates a file that must not exist yet.
fn create_new(path: &Path) -> Result<File, ResultsError> {
    OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                ResultsError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                ResultsError::io(path, "creating", e)
            }
        })
}

/// Opens an existing file for appending.
fn open_append(path: &Path) -> Result<File, ResultsError> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| ResultsError::io(path, "opening for append", e))
}

/// One `write_all`, a flush and a `sync_data`.
fn write_synced(file: &mut File, path: &Path, bytes: &[u8]) -> Result<(), ResultsError> {
    file.write_all(bytes)
        .map_err(|e| ResultsError::io(path, "writing", e))?;
    file.flush()
        .map_err(|e| ResultsError::io(path, "flushing", e))?;
    file.sync_data()
        .map_err(|e| ResultsError::io(path, "syncing", e))
}

/// Syncs the directory holding `path`, so that a new or renamed entry survives a crash.
fn sync_parent(path: &Path) -> Result<(), ResultsError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ResultsError::io(dir, "syncing directory", e))
}
