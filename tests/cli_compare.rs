//! `bench compare` on the fixture CSVs: joins renamed models, warns about unfair inputs,
//! every output format, and errors that name file, line and column.

#[path = "fixtures/results/gen.rs"]
mod gen;

use assert_cmd::Command;
use predicates::prelude::*;

fn fixture(name: &str) -> String {
    gen::dir().join(name).display().to_string()
}

fn bench() -> Command {
    Command::cargo_bin("bench").unwrap()
}

#[test]
#[ignore = "rewrites the fixtures; run by hand after a schema change"]
fn write_fixtures() {
    for (name, text) in gen::all() {
        std::fs::write(gen::dir().join(&name), text).unwrap();
    }
}

#[test]
fn fixtures_match_the_generator() {
    for (name, text) in gen::all() {
        let on_disk = std::fs::read_to_string(gen::dir().join(&name)).unwrap();
        assert_eq!(
            on_disk, text,
            "{name} is stale: run `cargo test --test cli_compare -- --ignored write_fixtures`"
        );
    }
}

#[test]
fn renamed_models_join_and_unfairness_is_loud() {
    let out = bench()
        .args([
            "compare",
            &fixture("smoke-baseline.csv"),
            &fixture("big-box.csv"),
        ])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        text.contains("WARNING: this comparison may be unfair"),
        "{text}"
    );
    assert!(text.contains("inputs differ in threads"), "{text}");
    assert!(text.contains("engine identity"), "{text}");
    // Every cell joined despite the renamed files: 1.7x faster, significant.
    assert_eq!(text.matches("faster").count(), 10, "{text}");
    assert!(text.contains("1.700 ["), "{text}");
}

#[test]
fn same_machine_no_warning_and_speedup_metric() {
    let out = bench()
        .args([
            "compare",
            &fixture("smoke-baseline.csv"),
            &fixture("smoke-current-regressed.csv"),
        ])
        .args(["--metric", "speedup", "--format", "md"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(!text.contains("unfair"), "{text}");
    assert!(text.starts_with("- reference 1:"), "{text}");
    assert!(
        text.contains("| dense | qwen2 0.32B F16 | spec:16 | chat |"),
        "{text}"
    );
    assert!(text.contains("slower"), "{text}");
}

#[test]
fn csv_and_json_formats() {
    let out = bench()
        .args([
            "compare",
            &fixture("smoke-baseline.csv"),
            &fixture("smoke-current-ok.csv"),
            "--format",
            "csv",
        ])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(rdr.records().count(), 10);
    let out = bench()
        .args([
            "compare",
            &fixture("smoke-baseline.csv"),
            &fixture("smoke-current-ok.csv"),
            "--format",
            "json",
        ])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["metric"], "decode");
    assert_eq!(v["lines"].as_array().unwrap().len(), 10);
    let r = &v["lines"][0]["entries"][1]["ratio"]["ratio"];
    assert!((r.as_f64().unwrap() - 0.99).abs() < 0.02, "{r}");
}

#[test]
fn other_schema_version_is_an_error_naming_file_line_column() {
    bench()
        .args([
            "compare",
            &fixture("smoke-baseline.csv"),
            &fixture("bad-schema.csv"),
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "bad-schema.csv:3: column `schema_version`: schema version 99",
        ));
}

#[test]
fn malformed_value_is_an_error_naming_file_line_column() {
    bench()
        .args([
            "compare",
            &fixture("smoke-baseline.csv"),
            &fixture("malformed.csv"),
        ])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("malformed.csv:2:")
                .and(predicate::str::contains("decode_tps_mean")),
        );
}

#[test]
fn raw_repetitions_give_intervals_to_every_metric() {
    let out = bench()
        .args([
            "compare",
            &fixture("smoke-baseline.csv"),
            &fixture("smoke-current-ok.csv"),
        ])
        .args(["--metric", "itl_p99", "--format", "json"])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert!(v["notes"].as_array().unwrap().is_empty(), "{}", v["notes"]);
    for line in v["lines"].as_array().unwrap() {
        let e = &line["entries"][1];
        assert_eq!(e["source"], "raw", "{line}");
        assert!(e["ratio"]["low"].as_f64().unwrap() < e["ratio"]["high"].as_f64().unwrap());
    }
    // Without the JSONL the same metric has no interval, and the output says why.
    bench()
        .args([
            "compare",
            &fixture("smoke-baseline.csv"),
            &fixture("smoke-current-regressed.csv"),
        ])
        .args(["--metric", "itl_p99"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("note: smoke-current-regressed: no raw repetitions")
                .and(predicate::str::contains("no interval")),
        );
}

#[test]
fn three_inputs_each_against_the_first() {
    let out = bench()
        .args([
            "compare",
            &fixture("smoke-baseline.csv"),
            &fixture("smoke-current-ok.csv"),
            &fixture("big-box.csv"),
        ])
        .args(["--format", "csv"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let header = text.lines().next().unwrap();
    assert!(
        header.contains("smoke-current-ok / smoke-baseline [95% CI]"),
        "{header}"
    );
    assert!(
        header.contains("big-box / smoke-baseline [95% CI]"),
        "{header}"
    );
    assert_eq!(header.matches("verdict").count(), 2, "{header}");
}

/// `bench compare A B` in one format, as text.
fn compare_in(args: &[&str]) -> String {
    let out = bench()
        .args([
            "compare",
            &fixture("smoke-baseline.csv"),
            &fixture("smoke-current-ok.csv"),
        ])
        .args(args)
        .assert()
        .success();
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

#[test]
fn markdown_csv_json_and_the_table_hold_the_same_cells() {
    assert_eq!(compare_in(&["--json"]), compare_in(&["--format", "json"]));
    let md = compare_in(&["--format", "markdown"]);
    let md_rows = tpsbench::util::output::markdown_cells(&md);
    let csv = compare_in(&["--format", "csv"]);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(csv.as_bytes());
    let csv_rows: Vec<Vec<String>> = rdr
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    assert_eq!(md_rows, csv_rows);
    let json: serde_json::Value = serde_json::from_str(&compare_in(&["--format", "json"])).unwrap();
    let lines = json["lines"].as_array().unwrap();
    assert_eq!(csv_rows.len(), lines.len() + 1);
    for (row, line) in csv_rows[1..].iter().zip(lines) {
        assert_eq!(row[0], line["role"].as_str().unwrap());
        assert_eq!(row[2], line["key"]["mode"].as_str().unwrap());
        let ratio = line["entries"][1]["ratio"]["ratio"].as_f64().unwrap();
        assert!(row[8].starts_with(&format!("{ratio:.3} [")), "{row:?}");
        assert_eq!(row[9], line["entries"][1]["verdict"].as_str().unwrap());
    }
    let table = compare_in(&[]);
    for cell in csv_rows.iter().flatten() {
        assert!(table.contains(cell.as_str()), "{cell:?} not in\n{table}");
    }
}
