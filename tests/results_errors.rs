//! A malformed results file or one of another schema version is an error that names the
//! file, the line and the column.

use std::path::{Path, PathBuf};

use tpsbench::results::{read_results, CellKey, ResultRow, ResultWriter, ResultsError, Status};

/// A valid file with two rows; returns its path and text.
fn valid_file(dir: &Path) -> (PathBuf, String) {
    let path = dir.join("good.csv");
    let mut writer = ResultWriter::create(&path).unwrap();
    for mode in ["baseline", "lookup"] {
        let key = CellKey {
            mode: mode.parse().unwrap(),
            parallel: 1,
            threads: 2,
            ..CellKey::default()
        };
        let mut row = ResultRow::for_key(&key, Status::Ok);
        row.decode_tps_mean = Some(20.0);
        row.acceptance = Some(0.5);
        writer.push(&row).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    (path, text)
}

/// Writes `text` to `bad.csv` and reads it.
fn read_bad(dir: &Path, text: &str) -> (PathBuf, ResultsError) {
    let path = dir.join("bad.csv");
    std::fs::write(&path, text).unwrap();
    let err = read_results(&path).unwrap_err();
    (path, err)
}

#[test]
fn a_bad_value_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let (_, text) = valid_file(dir.path());
    let lines: Vec<&str> = text.lines().collect();
    let bad = format!(
        "{}\n{}\n{}\n",
        lines[0],
        lines[1],
        lines[2].replacen(",0.5,", ",half,", 1)
    );
    let (path, err) = read_bad(dir.path(), &bad);
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("{}:3: column ", path.display())),
        "{message}"
    );
    assert!(
        message.contains("`acceptance`") && message.contains("`half`"),
        "{message}"
    );
    let ResultsError::Malformed { column_index, .. } = err else {
        panic!("{message}")
    };
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(header[column_index - 1], "acceptance");
}

#[test]
fn an_unknown_status_names_the_status_column() {
    let dir = tempfile::tempdir().unwrap();
    let (_, text) = valid_file(dir.path());
    let (_, err) = read_bad(dir.path(), &text.replacen("\n2,ok,", "\n2,great,", 1));
    assert!(
        matches!(&err, ResultsError::Malformed { line: 2, column_index: 2, column, .. } if column == "status"),
        "{err}"
    );
}

#[test]
fn another_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, text) = valid_file(dir.path());
    let (path, err) = read_bad(dir.path(), &text.replace("\n2,", "\n3,"));
    assert!(
        matches!(
            err,
            ResultsError::SchemaVersion {
                line: 2,
                expected: 2,
                ..
            }
        ),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&format!("{}:2: column `schema_version`", path.display())),
        "{message}"
    );
    // even when that version's header differs from ours
    let v3 = text.replace("\n2,", "\n3,").replacen("reason", "why", 1);
    let (_, err) = read_bad(dir.path(), &v3);
    assert!(matches!(err, ResultsError::SchemaVersion { .. }), "{err}");
}

#[test]
fn a_renamed_or_extra_column_names_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let (_, text) = valid_file(dir.path());
    let (_, err) = read_bad(dir.path(), &text.replacen("ttft_ms_mean", "ttft_mean", 1));
    assert!(
        matches!(&err, ResultsError::Malformed { line: 1, column, .. } if column == "ttft_ms_mean"),
        "{err}"
    );
    let first_line_end = text.find('\n').unwrap();
    let extra = format!(
        "{},bogus{}",
        &text[..first_line_end],
        &text[first_line_end..]
    );
    let (_, err) = read_bad(dir.path(), &extra);
    assert!(err.to_string().contains("extra column `bogus`"), "{err}");
}

#[test]
fn a_short_record_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let (_, text) = valid_file(dir.path());
    let (_, err) = read_bad(dir.path(), &format!("{text}2,ok,,x\n"));
    assert!(
        matches!(
            err,
            ResultsError::Malformed {
                line: 4,
                column_index: 5,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn not_a_results_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, err) = read_bad(dir.path(), "name,value\na,1\n");
    assert!(
        matches!(
            &err,
            ResultsError::Malformed {
                line: 1,
                column_index: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("is this a tpsbench results file?"));
    let err = read_results(&dir.path().join("nope.csv")).unwrap_err();
    assert!(err.to_string().contains("nope.csv"), "{err}");
}

#[test]
fn an_empty_file_has_no_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.csv");
    std::fs::write(&path, "").unwrap();
    assert!(read_results(&path).unwrap().is_empty());
}
