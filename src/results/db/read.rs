//! Reading rows back from the database, run by run, through the filters.
//!
//! Each stored value becomes the CSV's text and the record is deserialized as the CSV
//! reader does ([`value`](super::value)), so a row from the database equals the row from its
//! CSV. A row of a results schema this tpsbench does not read is refused, as in a CSV.

use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection};

use super::schema::{column_list, open};
use super::{value, DbError, DbFilter};
use crate::results::{RawRepetition, ResultRow, OLDEST_READABLE, SCHEMA_VERSION};

/// One run in the database with the rows of it that passed the filters.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRun {
    /// What the run was.
    pub info: RunInfo,
    /// Its rows that passed the filters, in the order they were written.
    pub rows: Vec<ResultRow>,
    /// The raw JSON lines of those rows' cells.
    pub raw: Vec<RawRepetition>,
}

/// A run of the database: the `runs` table's row.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunInfo {
    /// Its id (`runs.run_id`), in the order runs were first written.
    pub run_id: i64,
    /// The CSV it was written with (absolute path).
    pub csv_path: String,
    /// The command that wrote it (`run`, `ab`, `import`, `check`).
    pub command: String,
    /// When it was opened (UTC, RFC 3339).
    pub created_utc: String,
    /// Host of its first row.
    pub host: String,
    /// Engine of its first row: the engine hash, else the version text.
    pub engine: String,
    /// Profile of its first row.
    pub profile: String,
}

/// The runs of the database `path` that have a row passing `filter`, oldest first.
pub fn read(path: &Path, filter: &DbFilter) -> Result<Vec<StoredRun>, DbError> {
    let conn = open(path, false)?;
    let (condition, params) = filter.condition();
    let sql = format!(
        "SELECT run_id, row_id, {} FROM rows WHERE {condition} ORDER BY run_id, row_id",
        column_list()
    );
    let header = crate::results::header();
    let mut stmt = conn
        .prepare(&sql)
        .map_err(DbError::sqlite(path, "reading rows"))?;
    let mut cursor = stmt
        .query(params_from_iter(params))
        .map_err(DbError::sqlite(path, "reading rows"))?;
    let mut runs: Vec<StoredRun> = Vec::new();
    while let Some(r) = cursor
        .next()
        .map_err(DbError::sqlite(path, "reading rows"))?
    {
        let run_id: i64 = r.get(0).map_err(DbError::sqlite(path, "reading rows"))?;
        let row_id: i64 = r.get(1).map_err(DbError::sqlite(path, "reading rows"))?;
        let texts = (0..header.len())
            .map(|i| r.get::<_, Value>(i + 2).map(|v| value::text_of(&v)))
            .collect::<Result<Result<Vec<_>, String>, _>>()
            .map_err(DbError::sqlite(path, "reading rows"))?;
        let bad = |message: String| DbError::Row {
            path: path.to_path_buf(),
            row_id,
            message,
        };
        let row = value::row_of(texts.map_err(bad)?, &header).map_err(bad)?;
        if !(OLDEST_READABLE..=SCHEMA_VERSION).contains(&row.schema_version) {
            return Err(bad(format!(
                "results schema version {}, this tpsbench reads versions {OLDEST_READABLE} \
                 to {SCHEMA_VERSION}",
                row.schema_version
            )));
        }
        if runs.last().is_none_or(|run| run.info.run_id != run_id) {
            runs.push(StoredRun {
                info: run_of(&conn, path, run_id)?,
                rows: Vec::new(),
                raw: Vec::new(),
            });
        }
        let run = runs.last_mut().expect("pushed above");
        run.raw.extend(raw_of(&conn, path, row_id)?);
        run.rows.push(row);
    }
    Ok(runs)
}

/// The run `run_id` without rows.
fn run_of(conn: &Connection, path: &Path, run_id: i64) -> Result<RunInfo, DbError> {
    conn.query_row(
        "SELECT csv_path, command, created_utc, host, engine, profile FROM runs \
         WHERE run_id = ?1",
        [run_id],
        |r| {
            Ok(RunInfo {
                run_id,
                csv_path: r.get(0)?,
                command: r.get(1)?,
                created_utc: r.get(2)?,
                host: r.get(3)?,
                engine: r.get(4)?,
                profile: r.get(5)?,
            })
        },
    )
    .map_err(DbError::sqlite(path, "reading a run"))
}

/// The raw lines of row `row_id`, in the order they were written.
fn raw_of(conn: &Connection, path: &Path, row_id: i64) -> Result<Vec<RawRepetition>, DbError> {
    let mut stmt = conn
        .prepare_cached("SELECT line FROM raw WHERE row_id = ?1 ORDER BY rowid")
        .map_err(DbError::sqlite(path, "reading raw lines"))?;
    let lines = stmt
        .query_map([row_id], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(DbError::sqlite(path, "reading raw lines"))?;
    lines
        .iter()
        .map(|line| {
            serde_json::from_str(line).map_err(|e| DbError::Row {
                path: path.to_path_buf(),
                row_id,
                message: format!("raw line: {e}"),
            })
        })
        .collect()
}
