//! The database's layout and its migrations.
//!
//! Three tables: `runs` (one per CSV written or imported: its path, the command, host,
//! engine, profile and time), `rows` (one per cell: `run_id` and every CSV column under its
//! CSV name) and `raw` (the cell's raw JSON lines, by `row_id`). `PRAGMA user_version` is the
//! layout version: [`MIGRATIONS`] brings an older file up to [`DB_SCHEMA_VERSION`], and a
//! newer file is refused with both versions named. Columns the results schema added since a
//! file was made are added to `rows` on open (they read as empty in the rows already there,
//! as in a CSV of an older version). The `rows` columns are declared without a type so that
//! SQLite keeps each value as it was stored: integers, reals, text, NULL for empty.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::DbError;

/// Layout version of the database (`PRAGMA user_version`).
pub const DB_SCHEMA_VERSION: u32 = 1;

/// How long a writer waits for another one to commit before failing (a cell's row is
/// written in milliseconds; a long wait means a stuck process).
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// The statements that bring a database from version `v - 1` to `v`, in order.
const MIGRATIONS: &[(u32, &str)] = &[(
    1,
    "CREATE TABLE runs (
        run_id INTEGER PRIMARY KEY,
        csv_path TEXT NOT NULL,
        command TEXT NOT NULL,
        created_utc TEXT NOT NULL,
        host TEXT NOT NULL,
        engine TEXT NOT NULL,
        profile TEXT NOT NULL,
        harness_version TEXT NOT NULL
    );
    CREATE INDEX runs_by_csv ON runs(csv_path);
    CREATE TABLE rows (
        row_id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(run_id)
    );
    CREATE INDEX rows_by_run ON rows(run_id);
    CREATE TABLE raw (
        row_id INTEGER NOT NULL REFERENCES rows(row_id),
        line TEXT NOT NULL
    );
    CREATE INDEX raw_by_row ON raw(row_id);",
)];

/// Opens (creating it when `create`) a results database: WAL mode, a busy timeout, full
/// sync on commit, and the layout migrated to this version. A file of a newer layout is
/// refused.
pub fn open(path: &Path, create: bool) -> Result<Connection, DbError> {
    if !create && !path.exists() {
        return Err(DbError::Missing {
            path: path.to_path_buf(),
        });
    }
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let mut conn =
        Connection::open_with_flags(path, flags).map_err(DbError::sqlite(path, "opening"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(DbError::sqlite(path, "setting the busy timeout"))?;
    // WAL: readers never block the writer; FULL: a committed cell survives a power cut too.
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
        .map_err(DbError::sqlite(path, "switching to WAL mode"))?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(DbError::sqlite(path, "setting synchronous"))?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(DbError::sqlite(path, "enabling foreign keys"))?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

/// Brings the layout to [`DB_SCHEMA_VERSION`] and the `rows` table to this results schema's
/// columns, in one transaction (two processes opening a new file at once: one creates, the
/// other waits and finds it done). A file that is up to date is only read, so that opening
/// it to read takes no write lock.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), DbError> {
    if up_to_date(conn, path)? {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(DbError::sqlite(path, "starting the migration"))?;
    let found = version(&tx, path)?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        tx.execute_batch(sql)
            .map_err(DbError::sqlite(path, "migrating the schema"))?;
        tx.pragma_update(None, "user_version", version)
            .map_err(DbError::sqlite(path, "writing the schema version"))?;
    }
    add_missing_columns(&tx, path)?;
    tx.commit()
        .map_err(DbError::sqlite(path, "committing the migration"))
}

/// The file's layout version; a newer one than this build's is an error.
fn version(conn: &Connection, path: &Path) -> Result<u32, DbError> {
    let found: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(DbError::sqlite(path, "reading the schema version"))?;
    if found > DB_SCHEMA_VERSION {
        return Err(DbError::Newer {
            path: path.to_path_buf(),
            found,
            supported: DB_SCHEMA_VERSION,
        });
    }
    Ok(found)
}

/// Whether the file has this layout version and every CSV column already.
fn up_to_date(conn: &Connection, path: &Path) -> Result<bool, DbError> {
    if version(conn, path)? < DB_SCHEMA_VERSION {
        return Ok(false);
    }
    let have = row_columns(conn, path)?;
    Ok(crate::results::header().iter().all(|c| have.contains(c)))
}

/// Adds every CSV column the `rows` table lacks (all of them in a new file).
fn add_missing_columns(conn: &Connection, path: &Path) -> Result<(), DbError> {
    let have = row_columns(conn, path)?;
    for column in crate::results::header() {
        if !have.contains(&column) {
            let sql = format!("ALTER TABLE rows ADD COLUMN {}", quoted(&column));
            conn.execute_batch(&sql)
                .map_err(DbError::sqlite(path, "adding a column"))?;
        }
    }
    Ok(())
}

/// The columns of the `rows` table.
fn row_columns(conn: &Connection, path: &Path) -> Result<Vec<String>, DbError> {
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info('rows')")
        .map_err(DbError::sqlite(path, "reading the columns"))?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(DbError::sqlite(path, "reading the columns"))?;
    Ok(names)
}

/// A column name as an SQL identifier (`load` and friends are words of SQL).
pub fn quoted(column: &str) -> String {
    format!("\"{}\"", column.replace('"', "\"\""))
}

/// The CSV columns, quoted and comma-separated, in CSV order.
pub fn column_list() -> String {
    crate::results::header()
        .iter()
        .map(|c| quoted(c))
        .collect::<Vec<_>>()
        .join(", ")
}
