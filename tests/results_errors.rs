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
    let (_, err) = read_bad(dir.path(), &text.replacen("\n5,ok,", "\n5,great,", 1));
    assert!(
        matches!(&err, ResultsError::Malformed { line: 2, column_index: 2, column, .. } if column == "status"),
        "{err}"
    );
}

#[test]
fn another_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, text) = valid_file(dir.path());
    let (path, err) = read_bad(dir.path(), &text.replace("\n5,", "\n6,"));
    assert!(
        matches!(
            err,
            ResultsError::SchemaVersion {
                line: 2,
                expected: 5,
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
    let v6 = text.replace("\n5,", "\n6,").replacen("reason", "why", 1);
    let (_, err) = read_bad(dir.path(), &v6);
    assert!(matches!(err, ResultsError::SchemaVersion { .. }), "{err}");
    // version 1 is older than the oldest readable
    let (_, err) = read_bad(dir.path(), &text.replace("\n5,", "\n1,"));
    assert!(err.to_string().contains("reads versions 2 to 5"), "{err}");
}

/// The committed smoke baseline was written by schema version 2, before `depth`,
/// `server_args`, `source` and the other version-3 columns existed.
const V2_BASELINE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/results/baseline/smoke.csv");

#[test]
fn a_version_2_file_reads_with_the_new_columns_empty() {
    let text = std::fs::read_to_string(V2_BASELINE).unwrap();
    assert!(
        text.lines().nth(1).unwrap().starts_with("2,"),
        "fixture is v2"
    );
    let v2_columns = text.lines().next().unwrap().split(',').count(); // no quoted names
    let rows = read_results(Path::new(V2_BASELINE)).unwrap();
    assert_eq!(rows.len(), text.lines().count() - 1);
    // Every field of the file lands in the column of its name...
    let mut csv = csv::Reader::from_path(V2_BASELINE).unwrap();
    let header = csv.headers().unwrap().clone();
    let first = csv.records().next().unwrap().unwrap();
    let at = |name: &str| &first[header.iter().position(|h| h == name).unwrap()];
    assert_eq!(rows[0].role, at("role"));
    assert_eq!(rows[0].model_file, at("model_file"));
    assert_eq!(rows[0].n_predict.to_string(), at("n_predict"));
    assert_eq!(rows[0].engine_sha256, at("engine_sha256"));
    // ...and the eleven columns version 3 added, the 37 of version 4 and the 15 of
    // version 5 (foreign load and the bandwidth's centre: 4; deployments: 11) are empty.
    assert_eq!(tpsbench::results::header().len(), v2_columns + 11 + 37 + 15);
    for row in &rows {
        assert_eq!((row.depth, row.server_args.as_str()), (0, ""));
        assert_eq!(row.source, tpsbench::results::Source::Tpsbench);
        assert!(row.speedup_pairs.is_none() && row.difference.is_none());
        assert_eq!(row.schema_version, 5, "read rows are of this version");
        assert!(row.load.is_empty() && row.requests_sent.is_none());
        assert!(row.foreign_cpu_pct.is_none() && row.steal_pct.is_none());
        assert!(row.bandwidth_centre_gbps.is_none() && row.bandwidth_spread_pct.is_none());
    }
}

#[test]
fn a_version_2_file_is_not_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.csv");
    std::fs::copy(V2_BASELINE, &path).unwrap();
    let err = ResultWriter::append_to(&path).unwrap_err();
    assert!(
        matches!(
            err,
            ResultsError::ResumeOlderVersion {
                found: 2,
                expected: 5,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(V2_BASELINE).unwrap(),
        "the file is left as it was"
    );
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
    let (_, err) = read_bad(dir.path(), &format!("{text}5,ok,,x\n"));
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
