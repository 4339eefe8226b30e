//! The results database: every row of every run in one SQLite file, for history across runs,
//! engine builds and machines.
//!
//! `--db FILE` on the commands that write rows attaches a [`DbSink`] to the
//! [`ResultWriter`](super::ResultWriter): each row the writer pushes to its CSV is then
//! appended to the database too, with the raw JSON lines of its cell, in one transaction.
//! The database runs in WAL mode with a busy timeout, so several writers queue instead of
//! failing and a reader never blocks a writer. A row is stored with exactly the CSV's columns
//! (the column list is [`header`](super::header), never written twice), so a row read back
//! equals the row read from the CSV; the run it belongs to (CSV path, command, host, engine,
//! profile, time) is a row of its own table.
//!
//! Layout: `schema.rs` (tables, migrations, the version check), `write.rs` (the sink),
//! `read.rs` (rows by run, with [`DbFilter`]), `filter.rs` (the filter flags).

mod filter;
mod read;
mod schema;
mod value;
mod write;

use std::path::PathBuf;

use thiserror::Error;

pub use filter::{parse_when, DbArgs, DbFilter, DbSelect};
pub use read::{read, RunInfo, StoredRun};
pub use schema::DB_SCHEMA_VERSION;
pub use write::{import_csv, DbSink};

/// What went wrong with a results database; each names the file.
#[derive(Debug, Error)]
pub enum DbError {
    /// SQLite refused an operation (not a database, locked past the timeout, disk full...).
    #[error("{}: {action}: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The cause.
        source: rusqlite::Error,
    },
    /// The database was written by a newer tpsbench: its layout is not known here.
    #[error(
        "{}: results database of schema version {found}, this tpsbench reads versions up to \
         {supported}; use a newer tpsbench (or another --db file)",
        path.display()
    )]
    Newer {
        /// The database file.
        path: PathBuf,
        /// `PRAGMA user_version` of the file.
        found: u32,
        /// [`DB_SCHEMA_VERSION`] of this build.
        supported: u32,
    },
    /// The database to read does not exist.
    #[error("{}: no such results database", path.display())]
    Missing {
        /// The path given.
        path: PathBuf,
    },
    /// A row has a value SQLite cannot hold (an integer beyond 2^63).
    #[error("{}: cell {cell}: {message}", path.display())]
    Unstorable {
        /// The database file.
        path: PathBuf,
        /// The row's cell.
        cell: String,
        /// What is wrong.
        message: String,
    },
    /// A stored value does not make a row of the results schema.
    #[error("{}: row {row_id}: {message}", path.display())]
    Row {
        /// The database file.
        path: PathBuf,
        /// `rows.row_id` of the row.
        row_id: i64,
        /// What is wrong.
        message: String,
    },
}

impl DbError {
    /// A SQLite error with its file and action.
    pub(crate) fn sqlite(
        path: &std::path::Path,
        action: &'static str,
    ) -> impl FnOnce(rusqlite::Error) -> DbError {
        let path = path.to_path_buf();
        move |source| DbError::Sqlite {
            path,
            action,
            source,
        }
    }
}

#[cfg(test)]
mod tests;
