//! The database against the CSV it mirrors: the same rows back, resume, the version check.

use super::*;
use crate::results::{read_results, CellKey, RawRepetition, ResultRow, ResultWriter, Status};

/// A finished row of cell `n`, with values of every kind set (an independent construction,
/// not read from any file).
fn row(n: u32) -> ResultRow {
    ResultRow {
        status: Status::Ok,
        timestamp_utc: format!("2026-12-0{}T10:00:00Z", 1 + n % 9),
        role: "target".into(),
        model_file: "m.gguf".into(),
        mode: "baseline".parse().unwrap(),
        workload: "chat".into(),
        parallel: 1,
        ctx: 2048,
        threads: n + 1,
        decode_tps_mean: Some(100.0 / 3.0 + f64::from(n)),
        ram_gib: 15.5,
        lossless: Some(n.is_multiple_of(2)),
        host: "box1".into(),
        engine_sha256: "abc123".into(),
        profile: "smoke".into(),
        ..ResultRow::default()
    }
}

/// One raw line of `key`.
fn raw(key: &CellKey, rep: u32) -> RawRepetition {
    RawRepetition::new(key, rep, false, crate::measure::RequestRaw::default())
}

fn everything(db: &std::path::Path) -> Vec<StoredRun> {
    read(db, &DbFilter::default()).unwrap()
}

#[test]
fn a_row_read_back_from_the_database_equals_the_row_read_from_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, db) = (dir.path().join("run.csv"), dir.path().join("r.db"));
    let mut w = ResultWriter::create(&csv)
        .unwrap()
        .with_db(&db, "run")
        .unwrap();
    for n in 0..3 {
        w.push_raw(&raw(&row(n).key(), 0)).unwrap();
        w.push_raw(&raw(&row(n).key(), 1)).unwrap();
        w.push(&row(n)).unwrap();
    }
    let runs = everything(&db);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].rows, read_results(&csv).unwrap());
    assert_eq!(runs[0].rows[2].decode_tps_mean, Some(100.0 / 3.0 + 2.0));
    assert_eq!(runs[0].raw.len(), 6);
    assert_eq!(
        (runs[0].info.host.as_str(), runs[0].info.engine.as_str()),
        ("box1", "abc123")
    );
    assert_eq!(runs[0].info.command, "run");
}

#[test]
fn a_resumed_run_keeps_its_run_and_loses_its_interrupted_row() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, db) = (dir.path().join("run.csv"), dir.path().join("r.db"));
    let mut w = ResultWriter::create(&csv)
        .unwrap()
        .with_db(&db, "run")
        .unwrap();
    w.push(&row(0)).unwrap();
    w.push(&ResultRow {
        status: Status::Interrupted,
        ..row(1)
    })
    .unwrap();
    drop(w);
    let mut w = ResultWriter::append_to(&csv)
        .unwrap()
        .with_db(&db, "run")
        .unwrap();
    w.push(&row(1)).unwrap();
    let runs = everything(&db);
    assert_eq!(runs.len(), 1, "one run, continued");
    let threads: Vec<u32> = runs[0].rows.iter().map(|r| r.threads).collect();
    assert_eq!(threads, [1, 2]);
    assert!(runs[0].rows.iter().all(|r| r.status == Status::Ok));
}

#[test]
fn filters_select_rows_by_host_date_and_mode() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    for (name, host) in [("a.csv", "box1"), ("b.csv", "box2")] {
        let csv = dir.path().join(name);
        let mut w = ResultWriter::create(&csv)
            .unwrap()
            .with_db(&db, "run")
            .unwrap();
        for n in 0..4 {
            w.push(&ResultRow {
                host: host.into(),
                ..row(n)
            })
            .unwrap();
        }
    }
    let pick = |select: DbSelect| {
        let f = DbFilter {
            profile: None,
            select,
        };
        read(&db, &f).unwrap()
    };
    let box2 = pick(DbSelect {
        host: Some("box2".into()),
        ..DbSelect::default()
    });
    assert_eq!((box2.len(), box2[0].rows.len()), (1, 4));
    // Rows n = 1 and 2 end on 2026-12-02 and 2026-12-03: `--until` includes its whole day.
    let dated = pick(DbSelect {
        since: Some("2026-12-02".into()),
        until: Some("2026-12-03".into()),
        ..DbSelect::default()
    });
    let threads: Vec<u32> = dated
        .iter()
        .flat_map(|r| &r.rows)
        .map(|r| r.threads)
        .collect();
    assert_eq!(threads, [2, 3, 2, 3]);
    let spec = pick(DbSelect {
        mode: Some("spec:8".parse().unwrap()),
        ..DbSelect::default()
    });
    assert!(spec.is_empty());
}

#[test]
fn a_database_of_a_newer_schema_is_refused_naming_file_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.pragma_update(None, "user_version", DB_SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    let err = read(&db, &DbFilter::default()).unwrap_err().to_string();
    assert!(err.contains("new.db"), "{err}");
    assert!(
        err.contains(&format!("schema version {}", DB_SCHEMA_VERSION + 1)),
        "{err}"
    );
    assert!(err.contains(&format!("up to {DB_SCHEMA_VERSION}")), "{err}");
    let missing = read(&dir.path().join("absent.db"), &DbFilter::default()).unwrap_err();
    assert!(missing
        .to_string()
        .contains("absent.db: no such results database"));
}

#[test]
fn a_database_of_an_older_layout_gains_the_columns_it_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    // A version-1 file made before the `load` column existed: the table without it.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE runs (run_id INTEGER PRIMARY KEY, csv_path TEXT NOT NULL, command TEXT \
         NOT NULL, created_utc TEXT NOT NULL, host TEXT NOT NULL, engine TEXT NOT NULL, \
         profile TEXT NOT NULL, harness_version TEXT NOT NULL);
         CREATE TABLE rows (row_id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, \
         schema_version, status, host);
         CREATE TABLE raw (row_id INTEGER NOT NULL, line TEXT NOT NULL);
         INSERT INTO runs VALUES (1, '/r/a.csv', 'run', '2026-12-01T00:00:00Z', 'box1', \
         'e', 'smoke', '0.1.0');
         INSERT INTO rows (run_id, schema_version, status, host) VALUES (1, 4, 'ok', 'box1');
         PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(conn);
    let runs = everything(&db);
    assert_eq!(runs[0].rows[0].host, "box1");
    assert_eq!(
        runs[0].rows[0].load, "",
        "a column added since reads as empty"
    );
}

#[test]
fn a_reader_in_the_middle_of_a_read_does_not_block_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, db) = (dir.path().join("run.csv"), dir.path().join("r.db"));
    let mut w = ResultWriter::create(&csv)
        .unwrap()
        .with_db(&db, "run")
        .unwrap();
    w.push(&row(0)).unwrap();
    // A reader holds a snapshot open (a read transaction), as a long `bench history` would.
    let reader = rusqlite::Connection::open(&db).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let count = |c: &rusqlite::Connection| -> i64 {
        c.query_row("SELECT count(*) FROM rows", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(count(&reader), 1);
    let started = std::time::Instant::now();
    w.push(&row(1)).unwrap();
    // Without WAL the commit would wait for the reader until the busy timeout (60 s).
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(count(&reader), 1, "the reader keeps its snapshot");
    reader.execute_batch("COMMIT").unwrap();
    assert_eq!(count(&reader), 2);
    let mode: String = reader
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_value_sqlite_cannot_hold_is_an_error_naming_the_database_and_the_cell() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, db) = (dir.path().join("run.csv"), dir.path().join("r.db"));
    let mut w = ResultWriter::create(&csv)
        .unwrap()
        .with_db(&db, "run")
        .unwrap();
    let huge = ResultRow {
        schema_version: crate::results::SCHEMA_VERSION,
        model_file_bytes: u64::MAX,
        ..row(0)
    };
    let err = w.push(&huge).unwrap_err().to_string();
    assert!(err.contains("r.db: cell target/m.gguf"), "{err}");
    assert!(err.contains("model_file_bytes"), "{err}");
    assert_eq!(read_results(&csv).unwrap(), [huge], "the CSV keeps the row");
    assert!(everything(&db).is_empty(), "the database has nothing of it");
}
