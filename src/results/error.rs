//! Errors of reading and writing result files, each naming the file and, where it can, the
//! line and column.

use std::path::PathBuf;

use thiserror::Error;

/// What went wrong with a result file.
#[derive(Debug, Error)]
pub enum ResultsError {
    /// The file could not be opened, read, written or synced.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done (e.g. "creating", "syncing").
        action: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// The file was written by another schema version.
    #[error(
        "{}:{line}: column `schema_version`: schema version {found}, this tpsbench reads versions {oldest} to {expected}; \
         use a tpsbench of that version or re-run the benchmark",
        path.display(),
        oldest = super::row::OLDEST_READABLE
    )]
    SchemaVersion {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// Version found in the file (text as written).
        found: String,
        /// Version this build reads.
        expected: u32,
    },
    /// `--resume` of a file of an older schema version: rows of two layouts cannot share it.
    #[error(
        "{}: written by schema version {found}, this tpsbench writes version {expected}; \
         it can be read but not resumed: run again without --resume into a new file",
        path.display()
    )]
    ResumeOlderVersion {
        /// The file.
        path: PathBuf,
        /// Version of the file.
        found: u32,
        /// Version this build writes.
        expected: u32,
    },
    /// A malformed value, a missing or extra column, or a torn record in the middle of a file.
    #[error("{}:{line}: column {column_index} `{column}`: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// 1-based column number (0 when the whole record is wrong).
        column_index: usize,
        /// Column name from the expected header ("" when unknown).
        column: String,
        /// What is wrong.
        message: String,
    },
    /// A row for a cell that already has a finished row in this file.
    #[error("{}: cell {key} already has a finished row; a cell is never written twice", path.display())]
    Duplicate {
        /// The file.
        path: PathBuf,
        /// The cell.
        key: String,
    },
    /// The results database (`--db`) refused the row, or could not be opened.
    #[error(transparent)]
    Db(#[from] super::db::DbError),
    /// The file to create exists already.
    #[error("{}: exists already; use --resume to continue it or choose another --out", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
}

impl ResultsError {
    /// An I/O error with its file and action.
    pub(crate) fn io(path: &std::path::Path, action: &'static str, source: std::io::Error) -> Self {
        ResultsError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }
}
