//! Reading a results CSV: strictly for analysis, tolerantly (torn last line) for resume.
//!
//! Every problem is reported with the file, the 1-based line and the column (number and
//! name), so a user can open the file at the right place. The schema version is checked on
//! every row before anything else, so a file of another version says so instead of
//! complaining about a column it does not know.
//!
//! Files of an older schema version that is still readable ([`OLDEST_READABLE`]) are read
//! with the columns added since left empty, so results recorded before an upgrade stay
//! comparable; `--resume` appends only to files of this version.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use csv::StringRecord;

use super::error::ResultsError;
use super::raw::RawRepetition;
use super::row::{CellKey, ResultRow, OLDEST_READABLE, SCHEMA_VERSION};

/// The columns each schema version added to the one before; a file of an older version is
/// read with them empty.
const ADDED: &[(u32, &[&str])] = &[
    (
        3,
        &[
            "depth",
            "server_args",
            "launches",
            "between_launch_cv",
            "step_ms_p50",
            "step_ms_p99",
            "speedup_pairs",
            "first_difference_margin",
            "difference",
            "source",
            "server_url",
        ],
    ),
    (
        4,
        &[
            "load",
            "load_rate_rps",
            "load_clients",
            "load_burstiness",
            "load_seed",
            "load_wall_s",
            "slo",
            "requests_sent",
            "requests_completed",
            "requests_failed",
            "achieved_rps",
            "output_tps",
            "total_tps",
            "load_ttft_ms_mean",
            "load_ttft_ms_p50",
            "load_ttft_ms_p90",
            "load_ttft_ms_p99",
            "tpot_ms_mean",
            "tpot_ms_p50",
            "tpot_ms_p90",
            "tpot_ms_p99",
            "e2e_ms_p50",
            "e2e_ms_p90",
            "e2e_ms_p99",
            "queue_ms_mean",
            "queue_ms_p50",
            "queue_ms_p90",
            "queue_ms_p99",
            "goodput_rps",
            "goodput_share",
            "generator_cpu_ms_per_request",
            "generator_core_share",
            "behind_schedule",
            "saturated",
            "max_rate_rps",
            "max_rate_low",
            "max_rate_high",
        ],
    ),
    (
        5,
        &[
            "deploy_phase",
            "deployment_id",
            "deploy_roles",
            "deploy_round",
            "cpus",
            "role_bandwidth_gbps",
            "deploy_bandwidth_gbps",
            "first_token_after_launch_ms",
            "resident_before",
            "load_read_gbps",
            "storage_read_gbps",
            "bandwidth_centre_gbps",
            "bandwidth_spread_pct",
            "foreign_cpu_pct",
            "steal_pct",
        ],
    ),
];

/// The CSV header of schema `version` (readable versions only), column by column.
fn header_of(version: u32) -> Vec<String> {
    let later: Vec<&str> = ADDED
        .iter()
        .filter(|(v, _)| *v > version)
        .flat_map(|(_, cols)| cols.iter().copied())
        .collect();
    header()
        .into_iter()
        .filter(|c| !later.contains(&c.as_str()))
        .collect()
}

/// Whether this tpsbench reads files of schema `version`.
fn readable(version: u32) -> bool {
    (OLDEST_READABLE..=SCHEMA_VERSION).contains(&version)
}

/// The CSV header of this schema version, column by column.
pub fn header() -> Vec<String> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(true)
        .from_writer(Vec::new());
    writer
        .serialize(ResultRow::default())
        .expect("a default row serializes");
    let bytes = writer.into_inner().expect("writing to memory cannot fail");
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let names = reader.headers().expect("the header just written parses");
    names.iter().map(str::to_owned).collect()
}

/// Reads every row of a results CSV. Any malformed record, a header that is not this
/// version's, or a row of another schema version is an error naming file, line and column.
pub fn read_results(path: &Path) -> Result<Vec<ResultRow>, ResultsError> {
    let bytes = std::fs::read(path).map_err(|e| ResultsError::io(path, "reading", e))?;
    let scanned = scan(path, &bytes)?;
    scanned.records.into_iter().map(|r| r.row).collect()
}

/// Cells with a finished row (any status but `interrupted`), for `--resume`. A torn last
/// line is not a finished row. A missing file has no finished cells.
pub fn finished_cells(path: &Path) -> Result<HashSet<CellKey>, ResultsError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(ResultsError::io(path, "reading", e)),
    };
    let scanned = scan(path, &bytes)?.without_torn_tail()?;
    Ok(scanned
        .records
        .into_iter()
        .filter_map(|r| r.row.ok())
        .filter(ResultRow::is_finished)
        .map(|row| row.key())
        .collect())
}

/// One data record as found in the file.
pub(crate) struct ScannedRecord {
    /// Byte offset of its first byte.
    pub start: u64,
    /// Byte offset one past its last byte (the next record's start, or the file's end).
    pub end: u64,
    /// The parsed row, or why it does not parse.
    pub row: Result<ResultRow, ResultsError>,
}

/// A whole file, split into header and records, nothing dropped yet.
pub(crate) struct Scanned {
    /// Byte offset where the first data record starts (0 when there is no complete header).
    pub header_end: u64,
    /// Data records in file order.
    pub records: Vec<ScannedRecord>,
    /// The file ends with a newline (or is empty): the last record was written whole.
    pub ends_with_newline: bool,
    /// Schema version of the file (this version's when it has no rows yet).
    pub version: u32,
}

impl Scanned {
    /// Drops a torn last record (no final newline, or one that does not parse) and fails on
    /// any other malformed record: a crash can tear only the last write.
    pub fn without_torn_tail(mut self) -> Result<Scanned, ResultsError> {
        let last_is_bad = self.records.last().is_some_and(|r| r.row.is_err());
        if !self.records.is_empty() && (!self.ends_with_newline || last_is_bad) {
            self.records.pop();
            self.ends_with_newline = true;
        }
        if let Some(bad) = self.records.iter_mut().find(|r| r.row.is_err()) {
            return Err(std::mem::replace(&mut bad.row, Ok(ResultRow::default())).unwrap_err());
        }
        Ok(self)
    }
}

/// Splits the file into header and records and parses each record. Header errors fail the
/// scan; record errors are kept per record so that resume can tell a torn tail from damage.
pub(crate) fn scan(path: &Path, bytes: &[u8]) -> Result<Scanned, ResultsError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut raw: Vec<(u64, u64, StringRecord)> = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| malformed(path, csv_line(&e), 0, "", e.to_string()))?;
        let position = record
            .position()
            .expect("records from a reader have a position");
        raw.push((position.byte(), position.line(), record));
    }
    let ends_with_newline = bytes.last().is_none_or(|b| *b == b'\n');
    let Some((_, _, header_record)) = raw.first() else {
        return Ok(Scanned {
            header_end: 0,
            records: Vec::new(),
            ends_with_newline,
            version: SCHEMA_VERSION,
        });
    };
    let header_end = raw.get(1).map_or(bytes.len() as u64, |r| r.0);
    let torn_header = raw.len() == 1 && !ends_with_newline;
    // A lone first row without its newline may be torn inside its version field.
    let first_row = raw.get(1).filter(|_| raw.len() > 2 || ends_with_newline);
    check_first_column(path, header_record)?;
    let version = match first_row {
        Some((_, line, record)) => file_version(path, *line, record)?,
        None => header_version(header_record),
    };
    let expected = header_of(version);
    if !torn_header {
        check_header(path, header_record, &expected, version)?;
    }
    let header_end = if torn_header { 0 } else { header_end };
    let ends = raw.iter().skip(2).map(|r| r.0).chain([bytes.len() as u64]);
    let records = raw
        .iter()
        .skip(1)
        .zip(ends)
        .map(|((start, line, record), end)| ScannedRecord {
            start: *start,
            end,
            row: parse_row(path, *line, record, &expected, version),
        })
        .collect();
    Ok(Scanned {
        header_end,
        records,
        ends_with_newline,
        version,
    })
}

/// The schema version of a file, from its first row: one this tpsbench reads, or the error.
fn file_version(path: &Path, line: u64, record: &StringRecord) -> Result<u32, ResultsError> {
    let found = record.get(0).unwrap_or("");
    match found.parse::<u32>() {
        Ok(v) if readable(v) => Ok(v),
        _ => Err(ResultsError::SchemaVersion {
            path: path.to_path_buf(),
            line,
            found: found.to_owned(),
            expected: SCHEMA_VERSION,
        }),
    }
}

/// The version whose header `found` is (newest first), for a file without rows; this
/// version when none matches, so that the header check names the first wrong column.
fn header_version(found: &StringRecord) -> u32 {
    (OLDEST_READABLE..=SCHEMA_VERSION)
        .rev()
        .find(|v| header_of(*v).iter().map(String::as_str).eq(found.iter()))
        .unwrap_or(SCHEMA_VERSION)
}

/// The header must start with `schema_version`.
fn check_first_column(path: &Path, found: &StringRecord) -> Result<(), ResultsError> {
    if found.get(0) == Some("schema_version") {
        return Ok(());
    }
    let message = format!(
        "the first column must be `schema_version`, found `{}`; is this a tpsbench results file?",
        found.get(0).unwrap_or("")
    );
    Err(malformed(path, 1, 1, "schema_version", message))
}

/// The header must hold every column of the file's version (`expected`), in order.
fn check_header(
    path: &Path,
    found: &StringRecord,
    expected: &[String],
    version: u32,
) -> Result<(), ResultsError> {
    for (i, name) in expected.iter().enumerate() {
        if found.get(i) != Some(name.as_str()) {
            let message = format!(
                "header has `{}` here, schema version {version} has `{name}`",
                found.get(i).unwrap_or("(nothing)")
            );
            return Err(malformed(path, 1, i + 1, name, message));
        }
    }
    if found.len() > expected.len() {
        let message = format!("unexpected extra column `{}`", &found[expected.len()]);
        return Err(malformed(path, 1, expected.len() + 1, "", message));
    }
    Ok(())
}

/// The first field of a record must be the file's schema version.
fn check_version(
    path: &Path,
    line: u64,
    record: &StringRecord,
    version: u32,
) -> Result<(), ResultsError> {
    let found = record.get(0).unwrap_or("");
    if found == version.to_string() {
        return Ok(());
    }
    Err(ResultsError::SchemaVersion {
        path: path.to_path_buf(),
        line,
        found: found.to_owned(),
        expected: version,
    })
}

/// Parses one data record of schema `version` into a row of this version (columns added
/// since left empty), mapping csv's field index to the column name.
fn parse_row(
    path: &Path,
    line: u64,
    record: &StringRecord,
    expected: &[String],
    version: u32,
) -> Result<ResultRow, ResultsError> {
    check_version(path, line, record, version)?;
    if record.len() != expected.len() {
        let column = expected.get(record.len()).map_or("", String::as_str);
        let message = format!("{} fields, the header has {}", record.len(), expected.len());
        return Err(malformed(
            path,
            line,
            record.len().min(expected.len()) + 1,
            column,
            message,
        ));
    }
    let header = StringRecord::from(expected.to_vec());
    let row: ResultRow = record.deserialize(Some(&header)).map_err(|e| {
        let (index, message) = match e.kind() {
            csv::ErrorKind::Deserialize { err, .. } => (err.field(), err.kind().to_string()),
            _ => (None, e.to_string()),
        };
        let index = index.map_or_else(|| locate_bad_field(record, &header), |i| i as usize);
        let column = index_name(expected, index);
        let value = record.get(index).unwrap_or("");
        malformed(
            path,
            line,
            index + 1,
            column,
            format!("value `{value}`: {message}"),
        )
    })?;
    Ok(ResultRow {
        schema_version: SCHEMA_VERSION,
        ..row
    })
}

/// The first field that makes the record fail to deserialize, found by splicing the
/// record's fields one at a time into a default row. Needed because csv reports no field
/// index for some serde errors (an unknown enum variant, for one). 0 when not found.
fn locate_bad_field(record: &StringRecord, header: &StringRecord) -> usize {
    let mut probe = default_record(header);
    for (i, field) in record.iter().enumerate() {
        let mut fields: Vec<&str> = probe.iter().collect();
        fields[i] = field;
        let candidate = StringRecord::from(fields);
        if candidate.deserialize::<ResultRow>(Some(header)).is_err() {
            return i;
        }
        probe = candidate;
    }
    0
}

/// A default row as a record of the columns of `header`: every field valid.
fn default_record(header: &StringRecord) -> StringRecord {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    let row = ResultRow {
        schema_version: SCHEMA_VERSION,
        ..ResultRow::default()
    };
    writer.serialize(row).expect("a default row serializes");
    let bytes = writer.into_inner().expect("writing to memory cannot fail");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes.as_slice());
    let full = reader
        .records()
        .next()
        .and_then(Result::ok)
        .expect("the default row just written parses");
    let names = self::header();
    header
        .iter()
        .map(|name| {
            let i = names.iter().position(|n| n == name).unwrap_or(0);
            full.get(i).unwrap_or("").to_owned()
        })
        .collect()
}

/// Column name at a 0-based index, or "" past the end.
fn index_name(expected: &[String], index: usize) -> &str {
    expected.get(index).map_or("", String::as_str)
}

/// The line a csv error points at, or 0.
fn csv_line(e: &csv::Error) -> u64 {
    e.position().map_or(0, csv::Position::line)
}

/// Shorthand for [`ResultsError::Malformed`].
fn malformed(
    path: &Path,
    line: u64,
    column_index: usize,
    column: &str,
    message: String,
) -> ResultsError {
    ResultsError::Malformed {
        path: PathBuf::from(path),
        line,
        column_index,
        column: column.to_owned(),
        message,
    }
}

/// Reads every raw repetition of a `.jsonl` file. A line that is not valid JSON of this
/// schema, or of another schema version, is an error naming the file, line and column.
pub fn read_raw(path: &Path) -> Result<Vec<RawRepetition>, ResultsError> {
    let text = std::fs::read_to_string(path).map_err(|e| ResultsError::io(path, "reading", e))?;
    let mut reps = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let line_no = i as u64 + 1;
        let rep: RawRepetition = serde_json::from_str(line)
            .map_err(|e| malformed(path, line_no, e.column(), "", e.to_string()))?;
        if !readable(rep.schema_version) {
            return Err(ResultsError::SchemaVersion {
                path: path.to_path_buf(),
                line: line_no,
                found: rep.schema_version.to_string(),
                expected: SCHEMA_VERSION,
            });
        }
        reps.push(rep);
    }
    Ok(reps)
}

/// Server-reported decode t/s of every timed (non-warm-up) repetition, per cell, in file
/// order: one value per repetition, the mean over its slots when several requests ran
/// together ([`crate::measure::batch_decode_tps`]); the input of
/// [`crate::measure::ratio_ci`] when comparing cells or files. Partner lines (a baseline
/// server's half of a pair) belong to no cell's own values and are left out.
pub fn decode_tps_by_cell(reps: &[RawRepetition]) -> HashMap<CellKey, Vec<f64>> {
    let mut batches: HashMap<(CellKey, u32), Vec<crate::measure::RequestRaw>> = HashMap::new();
    let mut order: Vec<(CellKey, u32)> = Vec::new();
    for rep in reps.iter().filter(|r| !r.warmup && !r.partner) {
        let id = (rep.key.clone(), rep.rep);
        batches
            .entry(id.clone())
            .or_insert_with(|| {
                order.push(id);
                Vec::new()
            })
            .push(rep.request.clone());
    }
    let mut by_cell: HashMap<CellKey, Vec<f64>> = HashMap::new();
    for id in order {
        if let Some(tps) = crate::measure::batch_decode_tps(&batches[&id]) {
            by_cell.entry(id.0).or_default().push(tps);
        }
    }
    by_cell
}
