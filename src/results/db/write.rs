//! Appending rows to the database: [`DbSink`], attached to a results writer by `--db`.
//!
//! Each row goes in with the raw JSON lines of its cell in one transaction (`BEGIN
//! IMMEDIATE`, so that a second writer waits for the first instead of failing on an
//! upgrade), so a killed harness leaves whole cells or nothing of a cell. The run the rows
//! belong to is inserted in the transaction of its first row: a run that wrote nothing
//! leaves nothing behind. Raw lines arrive before their row (one per request as the cell
//! runs) and wait in memory until the row comes.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rusqlite::{params, params_from_iter, Connection, Transaction, TransactionBehavior};

use super::schema::{column_list, open};
use super::{value, DbError};
use crate::results::{RawRepetition, ResultRow};

/// The database side of a results writer: where its rows are appended.
#[derive(Debug)]
pub struct DbSink {
    conn: Connection,
    path: PathBuf,
    csv_path: String,
    command: String,
    created_utc: String,
    run_id: Option<i64>,
    header: Vec<String>,
    insert_sql: String,
    pending: Vec<RawRepetition>,
}

impl DbSink {
    /// Opens (or creates) the database `db` for a new run writing the CSV `csv` with the
    /// command `command` (`run`, `ab`, `import`...).
    pub fn open(db: &Path, csv: &Path, command: &str) -> Result<DbSink, DbError> {
        let header = crate::results::header();
        let placeholders = vec!["?"; header.len() + 1].join(", ");
        Ok(DbSink {
            conn: open(db, true)?,
            path: db.to_path_buf(),
            csv_path: canonical(csv),
            command: command.to_string(),
            created_utc: crate::results::utc_timestamp(SystemTime::now()),
            run_id: None,
            insert_sql: format!(
                "INSERT INTO rows (run_id, {}) VALUES ({placeholders})",
                column_list()
            ),
            header,
            pending: Vec::new(),
        })
    }

    /// Continues the database's run of this CSV (the newest, when several), if it has one:
    /// resuming a run or importing a results file again.
    pub fn continue_run(mut self) -> Result<DbSink, DbError> {
        self.run_id = self
            .conn
            .query_row(
                "SELECT run_id FROM runs WHERE csv_path = ?1 ORDER BY run_id DESC LIMIT 1",
                [&self.csv_path],
                |r| r.get(0),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .map_err(DbError::sqlite(&self.path, "finding the run"))?;
        Ok(self)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps a raw line until the row of its cell is pushed.
    pub fn push_raw(&mut self, rep: &RawRepetition) {
        self.pending.push(rep.clone());
    }

    /// Appends one row and the raw lines of its cell, in one transaction.
    pub fn push(&mut self, row: &ResultRow) -> Result<(), DbError> {
        let key = row.key();
        let (mine, rest) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|r| r.key == key);
        self.pending = rest;
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(DbError::sqlite(&path, "starting a transaction"))?;
        let run_id = match self.run_id {
            Some(id) => id,
            None => insert_run(
                &tx,
                &path,
                &self.csv_path,
                &self.command,
                &self.created_utc,
                row,
            )?,
        };
        insert_row(
            &tx,
            &path,
            &self.insert_sql,
            &self.header,
            run_id,
            row,
            &mine,
        )?;
        tx.commit()
            .map_err(DbError::sqlite(&path, "committing a row"))?;
        self.run_id = Some(run_id);
        Ok(())
    }

    /// Makes the run hold exactly `rows` and their raw lines: what it held is deleted (one
    /// transaction), then each row is appended in its own. For `--resume`, whose CSV lost
    /// its interrupted rows, and for a results CSV imported again.
    pub fn replace(&mut self, rows: &[ResultRow], raw: &[RawRepetition]) -> Result<(), DbError> {
        if let Some(run_id) = self.run_id {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(DbError::sqlite(&self.path, "starting a transaction"))?;
            tx.execute(
                "DELETE FROM raw WHERE row_id IN (SELECT row_id FROM rows WHERE run_id = ?1)",
                [run_id],
            )
            .and_then(|_| tx.execute("DELETE FROM rows WHERE run_id = ?1", [run_id]))
            .and_then(|_| tx.commit())
            .map_err(DbError::sqlite(&self.path, "replacing the run's rows"))?;
        }
        self.pending = raw.to_vec();
        for row in rows {
            self.push(row)?;
        }
        self.pending.clear();
        Ok(())
    }
}

/// Inserts the run of `first` (its host, engine and profile) and returns its id.
fn insert_run(
    tx: &Transaction<'_>,
    path: &Path,
    csv_path: &str,
    command: &str,
    created_utc: &str,
    first: &ResultRow,
) -> Result<i64, DbError> {
    let engine = match first.engine_sha256.as_str() {
        "" | "unknown" => first.engine_version.as_str(),
        sha => sha,
    };
    tx.execute(
        "INSERT INTO runs (csv_path, command, created_utc, host, engine, profile, \
         harness_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            csv_path,
            command,
            created_utc,
            first.host,
            engine,
            first.profile,
            env!("CARGO_PKG_VERSION")
        ],
    )
    .map_err(DbError::sqlite(path, "inserting the run"))?;
    Ok(tx.last_insert_rowid())
}

/// Inserts one row with its raw lines.
fn insert_row(
    tx: &Transaction<'_>,
    path: &Path,
    sql: &str,
    header: &[String],
    run_id: i64,
    row: &ResultRow,
    raw: &[RawRepetition],
) -> Result<(), DbError> {
    let values = value::row_values(row, header).map_err(|message| DbError::Unstorable {
        path: path.to_path_buf(),
        cell: row.key().to_string(),
        message,
    })?;
    let all = std::iter::once(rusqlite::types::Value::Integer(run_id)).chain(values);
    tx.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute(params_from_iter(all)))
        .map_err(DbError::sqlite(path, "inserting a row"))?;
    let row_id = tx.last_insert_rowid();
    let mut stmt = tx
        .prepare_cached("INSERT INTO raw (row_id, line) VALUES (?1, ?2)")
        .map_err(DbError::sqlite(path, "inserting raw lines"))?;
    for rep in raw {
        let line = serde_json::to_string(rep).expect("a raw repetition serializes to JSON");
        stmt.execute(params![row_id, line])
            .map_err(DbError::sqlite(path, "inserting raw lines"))?;
    }
    Ok(())
}

/// The CSV's absolute path, which names its run in the database.
fn canonical(csv: &Path) -> String {
    std::fs::canonicalize(csv)
        .unwrap_or_else(|_| csv.to_path_buf())
        .display()
        .to_string()
}

/// Copies a results CSV (and the raw lines of its `.jsonl`, when there is one) into the
/// database `db` as a run of its own, one transaction per row; a CSV imported before
/// replaces its earlier copy. Returns the rows copied.
pub fn import_csv(db: &Path, csv: &Path) -> Result<usize, crate::results::ResultsError> {
    let rows = crate::results::read_results(csv)?;
    let jsonl = crate::results::jsonl_path_for(csv);
    let raw = match jsonl.exists() {
        true => crate::results::read_raw(&jsonl)?,
        false => Vec::new(),
    };
    let mut sink = DbSink::open(db, csv, "import")?.continue_run()?;
    sink.replace(&rows, &raw)?;
    Ok(rows.len())
}
