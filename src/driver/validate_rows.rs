//! `bench validate --db FILE`: the rounds of a validation as two result rows, the harness's
//! and llama-bench's decode rate of the same model, threads and `n_predict`, written to a
//! results CSV (`results/validate-<host>-<UTC>.csv`) and the database, so that
//! `bench history --db` follows the harness's fidelity across engine builds.
//!
//! The two rows differ in their role (`validate-harness`, `validate-llama-bench`) and source;
//! each round's rate is one repetition of its row (llama-bench's being the mean of its
//! `-r 5`, the harness's the mean of its five requests).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::measure::Sample;
use crate::results::{ResultRow, ResultWriter, Source, Status, SCHEMA_VERSION};

/// The rates of a validation's rounds (tokens/s), one per round for each tool.
pub struct Rates {
    /// The harness's rate in each round.
    pub harness: Vec<f64>,
    /// llama-bench's rate in each round.
    pub llama_bench: Vec<f64>,
}

/// The two rows of a validation of `model`; `stamp` fills the engine and host columns.
pub fn rows(
    model: &Path,
    threads: u32,
    n_predict: u32,
    rates: Rates,
    stamp: impl Fn(&mut ResultRow),
) -> Vec<ResultRow> {
    let sides: [(&str, Source, Vec<f64>); 2] = [
        ("validate-harness", Source::Tpsbench, rates.harness),
        (
            "validate-llama-bench",
            Source::LlamaBench,
            rates.llama_bench,
        ),
    ];
    let when = crate::results::utc_timestamp(SystemTime::now());
    sides
        .into_iter()
        .map(|(role, source, tps)| {
            let mut row = ResultRow {
                schema_version: SCHEMA_VERSION,
                status: Status::Ok,
                timestamp_utc: when.clone(),
                role: role.into(),
                model_file: file_name(model),
                model_file_bytes: std::fs::metadata(model).map_or(0, |m| m.len()),
                mode: crate::mode::Mode::Baseline,
                workload: format!("tg{n_predict}"),
                parallel: 1,
                ctx: (n_predict + 64).max(512),
                threads,
                n_predict,
                n_reps: tps.len() as u32,
                launches: 1,
                source,
                profile: "validate".into(),
                harness_version: env!("CARGO_PKG_VERSION").into(),
                harness_git_commit: option_env!("TPSBENCH_GIT_COMMIT").unwrap_or("").into(),
                ..ResultRow::default()
            };
            match Sample::new(&tps) {
                Ok(s) => row.fill_decode(&s.summary()),
                Err(_) => row.decode_tps_mean = tps.first().copied(),
            }
            stamp(&mut row);
            row
        })
        .collect()
}

/// Writes the rows to a new results CSV in `dir` and to the database `db`; the CSV's path.
pub fn write(dir: &Path, host: &str, db: &Path, rows: &[ResultRow]) -> anyhow::Result<PathBuf> {
    let csv = crate::results::default_path(dir, "validate", host, SystemTime::now());
    let mut writer = ResultWriter::create(&csv)?.with_db(db, "validate")?;
    for row in rows {
        writer.push(row)?;
    }
    Ok(csv)
}

/// The file name of a model path.
fn file_name(model: &Path) -> String {
    model.file_name().map_or_else(
        || model.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validation_is_two_rows_whose_csv_and_database_agree() {
        let rates = Rates {
            harness: vec![48.0, 50.0],
            llama_bench: vec![50.0, 52.0],
        };
        let rows = rows(Path::new("/m/model.gguf"), 2, 128, rates, |r| {
            r.host = "box1".into()
        });
        assert_eq!(rows[0].role, "validate-harness");
        assert_eq!(rows[0].decode_tps_mean, Some(49.0));
        assert_eq!(rows[1].decode_tps_mean, Some(51.0));
        assert_eq!(rows[1].source, Source::LlamaBench);
        assert_eq!((rows[0].workload.as_str(), rows[0].n_reps), ("tg128", 2));
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("v.db");
        let csv = write(dir.path(), "box1", &db, &rows).unwrap();
        let stored = crate::results::db::read(&db, &Default::default()).unwrap();
        assert_eq!(stored[0].rows, crate::results::read_results(&csv).unwrap());
        assert_eq!(stored[0].rows.len(), 2);
        assert_eq!(stored[0].info.command, "validate");
    }
}
