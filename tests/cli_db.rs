//! The results database from the command line, without servers: rows written with `--db`
//! equal the CSV's, `bench history` and `compare`/`check --db` read them, and the faults:
//! a SIGKILL in the middle of an import leaves a consistent database of whole cells, and
//! two imports at once both land.
//!
//! The rows are generated here (a results CSV and its JSON Lines, written with the csv and
//! serde crates, not with tpsbench's writer), or are llama-bench's own records from the
//! fixtures, so every expected value comes from the construction.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tpsbench::measure::RequestRaw;
use tpsbench::results::db::{read, DbFilter, DbSelect, StoredRun};
use tpsbench::results::{read_results, RawRepetition, ResultRow, Status, SCHEMA_VERSION};

/// Raw lines per generated cell.
const RAW_PER_CELL: usize = 3;

fn bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bench"))
}

/// Runs `bench ARGS`, which must succeed; its standard output.
fn ok(args: &[&str]) -> String {
    let out = bench().args(args).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "bench {args:?}: {stderr}");
    stdout.into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Cell `i` of a generated run: threads tell the cells apart, the decode rate is `tps`.
fn cell(i: u32, host: &str, tps: f64, day: u32) -> ResultRow {
    ResultRow {
        schema_version: SCHEMA_VERSION,
        status: Status::Ok,
        timestamp_utc: format!("2026-12-{day:02}T10:00:{:02}Z", i % 60),
        role: "target".into(),
        model_file: "m-Q4_K_M.gguf".into(),
        mode: "baseline".parse().unwrap(),
        workload: "chat".into(),
        parallel: 1,
        ctx: 2048,
        threads: i + 1,
        decode_tps_mean: Some(tps),
        decode_tps_sd: Some(1.0),
        prefill_tps_mean: Some(tps * 10.0 + 0.25),
        n_reps: RAW_PER_CELL as u32,
        lossless: i.is_multiple_of(3).then_some(true),
        host: host.into(),
        ram_gib: 31.25,
        engine_sha256: format!("{host}-engine-0123456789"),
        profile: "gen".into(),
        ..ResultRow::default()
    }
}

/// Writes `rows` as a results CSV with RAW_PER_CELL raw lines per row beside it.
fn write_run(csv: &Path, rows: &[ResultRow]) {
    let mut w = csv::Writer::from_path(csv).unwrap();
    for r in rows {
        w.serialize(r).unwrap();
    }
    w.flush().unwrap();
    let mut lines = String::new();
    for r in rows {
        for rep in 0..RAW_PER_CELL as u32 {
            let raw = RawRepetition::new(&r.key(), rep, false, RequestRaw::default());
            lines += &(serde_json::to_string(&raw).unwrap() + "\n");
        }
    }
    std::fs::write(csv.with_extension("jsonl"), lines).unwrap();
}

fn all(db: &Path) -> Vec<StoredRun> {
    read(db, &DbFilter::default()).unwrap()
}

/// The first `n` generated cells of a host.
fn cells(n: u32, host: &str, day: u32) -> Vec<ResultRow> {
    (0..n)
        .map(|i| cell(i, host, 100.0 + f64::from(i) / 4.0, day))
        .collect()
}

#[test]
fn the_csv_and_the_database_of_one_import_hold_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    // llama-bench's own records: `-o` writes the CSV, `--db` the same rows.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/llama-bench/selftest-q8_0-d0-d64.jsonl");
    let out = dir.path().join("lb.csv");
    ok(&["import", s(&fixture), "-o", s(&out), "--db", s(&db)]);
    // A results CSV of our own, generated here, with its raw lines.
    let ours = dir.path().join("ours.csv");
    let generated = cells(5, "box1", 1);
    write_run(&ours, &generated);
    ok(&["import", s(&ours), "--db", s(&db)]);
    let runs = all(&db);
    assert_eq!(runs.len(), 2);
    let lb_rows = read_results(&out).unwrap();
    // The mean of each generation test's samples_ts, from llama-bench's records.
    let expected_tps: Vec<f64> = std::fs::read_to_string(&fixture)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|t| t["n_gen"].as_u64() > Some(0))
        .map(|t| {
            let samples: Vec<f64> = t["samples_ts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            samples.iter().sum::<f64>() / samples.len() as f64
        })
        .collect();
    assert!(!expected_tps.is_empty());
    assert_eq!(runs[0].rows.len(), lb_rows.len());
    for (from_db, from_csv) in runs[0].rows.iter().zip(&lb_rows) {
        assert_fields_equal(from_db, from_csv);
    }
    let db_tps: Vec<f64> = runs[0]
        .rows
        .iter()
        .filter_map(|r| r.decode_tps_mean)
        .collect();
    assert_eq!(db_tps.len(), expected_tps.len());
    for (got, want) in db_tps.iter().zip(&expected_tps) {
        assert!(
            (got / want - 1.0).abs() < 1e-12,
            "{got} vs llama-bench's {want}"
        );
    }
    assert_eq!(runs[1].rows, generated, "the generated rows, every field");
    assert_eq!(runs[1].raw.len(), 5 * RAW_PER_CELL);
    assert_eq!(runs[1].info.command, "import");
}

/// Every CSV column of two rows, compared one by one (names the first that differs).
fn assert_fields_equal(a: &ResultRow, b: &ResultRow) {
    let (a, b) = (
        serde_json::to_value(a).unwrap(),
        serde_json::to_value(b).unwrap(),
    );
    for column in tpsbench::results::header() {
        assert_eq!(a[&column], b[&column], "column {column}");
    }
}

#[test]
fn a_sigkill_during_an_import_leaves_a_consistent_database_of_whole_cells() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, db) = (dir.path().join("big.csv"), dir.path().join("k.db"));
    let total = 3000;
    let generated = cells(total, "box1", 1);
    write_run(&csv, &generated);
    let mut child = bench()
        .args(["import", s(&csv), "--db", s(&db)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let deadline = Instant::now() + Duration::from_secs(120);
    while rows_in(&db) < 20 {
        assert!(
            Instant::now() < deadline,
            "the import wrote no rows in 120 s"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended before the kill"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed, not finished");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let torn: i64 = conn
        .query_row(
            "SELECT count(*) FROM rows WHERE (SELECT count(*) FROM raw \
             WHERE raw.row_id = rows.row_id) != ?1",
            [RAW_PER_CELL as i64],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(torn, 0, "every row present has all its raw lines");
    drop(conn);
    let runs = all(&db);
    let kept = &runs[0].rows;
    assert!(
        kept.len() >= 20 && kept.len() < total as usize,
        "{} rows",
        kept.len()
    );
    assert_eq!(kept[..], generated[..kept.len()], "whole rows, in order");
    // Importing again replaces the torn run with the whole file.
    ok(&["import", s(&csv), "--db", s(&db)]);
    let runs = all(&db);
    assert_eq!((runs.len(), runs[0].rows.len()), (1, total as usize));
}

/// Rows in the database so far (0 while it does not exist or is being created).
fn rows_in(db: &Path) -> i64 {
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return 0;
    };
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.query_row("SELECT count(*) FROM rows", [], |r| r.get(0))
        .unwrap_or(0)
}

#[test]
fn two_imports_into_one_database_at_once_both_land() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let hosts = ["box1", "box2"];
    let runs: Vec<(PathBuf, Vec<ResultRow>)> = hosts
        .iter()
        .map(|h| {
            let csv = dir.path().join(format!("{h}.csv"));
            let rows = cells(300, h, 2);
            write_run(&csv, &rows);
            (csv, rows)
        })
        .collect();
    let children: Vec<_> = runs
        .iter()
        .map(|(csv, _)| {
            bench()
                .args(["import", s(csv), "--db", s(&db)])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (host, (_, rows)) in hosts.iter().zip(&runs) {
        let f = DbFilter {
            profile: None,
            select: DbSelect {
                host: Some(host.to_string()),
                ..DbSelect::default()
            },
        };
        let stored = read(&db, &f).unwrap();
        assert_eq!(stored.len(), 1, "{host}: one run");
        assert_eq!(&stored[0].rows, rows, "{host}: every row");
        assert_eq!(stored[0].raw.len(), rows.len() * RAW_PER_CELL);
    }
}

/// Two runs of two cells on two days and builds: history, compare and check read them.
fn two_builds(dir: &Path) -> PathBuf {
    let db = dir.join("h.db");
    for (name, day, tps, sha) in [
        ("old", 1, [100.0, 50.0], "aaaa1111"),
        ("new", 3, [110.0, 45.0], "bbbb2222"),
    ] {
        let rows: Vec<ResultRow> = (0..2)
            .map(|i| ResultRow {
                engine_sha256: format!("{sha}ffff"),
                ..cell(i, "box1", tps[i as usize], day)
            })
            .collect();
        let csv = dir.join(format!("{name}.csv"));
        write_run(&csv, &rows);
        ok(&["import", s(&csv), "--db", s(&db)]);
    }
    db
}

#[test]
fn history_prints_each_cell_once_with_its_value_in_each_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = two_builds(dir.path());
    let text = ok(&["history", "--db", s(&db), "--format", "csv"]);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let records: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .take_while(|r: &Vec<String>| r.len() > 1 || !r[0].is_empty())
        .collect();
    assert_eq!(
        records[0],
        [
            "cell",
            "#1 2026-12-01 aaaa1111",
            "#2 2026-12-03 bbbb2222",
            "change"
        ]
    );
    assert_eq!(
        records[1],
        [
            "target m-Q4_K_M baseline chat np=1 t=1",
            "100",
            "110",
            "+10.0%"
        ]
    );
    assert_eq!(
        records[2],
        [
            "target m-Q4_K_M baseline chat np=1 t=2",
            "50.0",
            "45.0",
            "-10.0%"
        ]
    );
    // A filter to one thread count and the newest run only.
    let json = ok(&["history", "--db", s(&db), "--since", "2026-12-02", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["runs"].as_array().unwrap().len(), 1);
    assert_eq!(v["lines"][1]["values"][0], 45.0);
    // The engine by a prefix of its hash; the model by a piece of its name.
    let json = ok(&[
        "history",
        "--db",
        s(&db),
        "--engine",
        "aaaa",
        "--model",
        "Q4_K",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["runs"][0]["build"], "aaaa1111");
    assert_eq!(v["runs"].as_array().unwrap().len(), 1);
}

#[test]
fn compare_and_check_read_the_runs_of_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = two_builds(dir.path());
    let json = ok(&["compare", "--db", s(&db), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let text = v.to_string();
    assert!(
        text.contains("old.csv") && text.contains("new.csv"),
        "{text}"
    );
    // The baseline is the newest other run: `old`; t=2 fell 10%, beyond a 5% tolerance.
    let out = bench()
        .args(["check", "--db", s(&db), "--current"])
        .arg(dir.path().join("new.csv"))
        .args([
            "--metrics",
            "absolute",
            "--tolerance",
            "5%",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["outcome"], "regressed", "{v}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn readers_refuse_a_database_they_cannot_read_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("future.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let out = bench().args(["history", "--db", s(&db)]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("future.db") && err.contains("99"), "{err}");
    let out = bench()
        .args(["compare", "--db"])
        .arg(dir.path().join("absent.db"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("absent.db: no such results database"), "{err}");
    let text = dir.path().join("notes.db");
    std::fs::write(
        &text,
        "not a database, just some text that is long enough\n".repeat(20),
    )
    .unwrap();
    let out = bench()
        .args(["history", "--db", s(&text)])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("notes.db") && err.contains("not a database"),
        "{err}"
    );
}

#[test]
fn report_draws_the_history_of_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = two_builds(dir.path());
    let out = dir.path().join("report");
    ok(&["report", "--db", s(&db), "--out", s(&out)]);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("![History: decode tokens/s](history-decode_tps.svg)"),
        "{md}"
    );
    let svg = std::fs::read_to_string(out.join("history-decode_tps.svg")).unwrap();
    assert!(
        svg.contains("target m-Q4_K_M baseline chat np=1 t=1"),
        "a line per cell"
    );
    let cells = tpsbench::util::output::markdown_cells(&md);
    let x_rows: Vec<&Vec<String>> = cells.iter().filter(|r| r[1].starts_with('#')).collect();
    assert_eq!(
        x_rows[0][..4],
        ["1", "#1", "2026-12-01T10:00:00Z", "aaaa1111"]
    );
    assert_eq!(
        x_rows[1][..4],
        ["2", "#2", "2026-12-03T10:00:00Z", "bbbb2222"]
    );
}

#[test]
fn export_writes_the_runs_of_a_database_with_each_ones_build() {
    let dir = tempfile::tempdir().unwrap();
    let db = two_builds(dir.path());
    let builds = |args: &[&str]| -> Vec<String> {
        ok(args)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["build_commit"].as_str().unwrap().to_string()
            })
            .collect()
    };
    assert_eq!(
        builds(&["export", "--db", s(&db)]),
        ["aaaa1111", "aaaa1111", "bbbb2222", "bbbb2222"]
    );
    assert_eq!(
        builds(&["export", "--db", s(&db), "--run", "2"]),
        ["bbbb2222", "bbbb2222"]
    );
}
