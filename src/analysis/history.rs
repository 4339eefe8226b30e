//! `bench history`: one metric of every cell across the runs of a results database, oldest
//! run first: the regression dashboard in one table, one line per cell (and host), one
//! column per run with its date and engine build, and the change from the first value to
//! the last.
//!
//! Runs are ordered by when their first cell ended (imports keep the time of the
//! measurement, not of the import), ties by run id. A metric a run did not measure leaves
//! its column out; a cell a run did not measure is `-` there.

use std::collections::BTreeMap;

use serde::Serialize;

use super::render::num;
use crate::results::db::RunInfo;
use crate::results::load::{percentile, LoadedFile};
use crate::results::{CellKey, ResultRow, Status};
use crate::util::output::{Report, Table};

/// What `bench history` follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum HistoryMetric {
    /// Mean server-reported decode speed (tokens/s).
    #[value(name = "decode_tps")]
    DecodeTps,
    /// Mean prompt processing speed (tokens/s).
    #[value(name = "prefill_tps")]
    PrefillTps,
    /// Speedup of an accelerated cell over its baseline (ratio).
    Speedup,
    /// Draft acceptance (fraction).
    Acceptance,
    /// 99th percentile time to first token: a serving cell's, else over the repetitions
    /// (milliseconds).
    #[value(name = "ttft_p99")]
    TtftP99,
    /// 99th percentile inter-token latency (milliseconds).
    #[value(name = "itl_p99")]
    ItlP99,
    /// Output tokens per second of a serving cell, all requests together (tokens/s).
    #[value(name = "output_tps")]
    OutputTps,
}

impl HistoryMetric {
    /// Every metric, in the order the report draws them.
    pub const ALL: [HistoryMetric; 7] = [
        HistoryMetric::DecodeTps,
        HistoryMetric::PrefillTps,
        HistoryMetric::Speedup,
        HistoryMetric::Acceptance,
        HistoryMetric::TtftP99,
        HistoryMetric::ItlP99,
        HistoryMetric::OutputTps,
    ];

    /// Name as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            HistoryMetric::DecodeTps => "decode_tps",
            HistoryMetric::PrefillTps => "prefill_tps",
            HistoryMetric::Speedup => "speedup",
            HistoryMetric::Acceptance => "acceptance",
            HistoryMetric::TtftP99 => "ttft_p99",
            HistoryMetric::ItlP99 => "itl_p99",
            HistoryMetric::OutputTps => "output_tps",
        }
    }

    /// What the values are, with their unit.
    pub fn label(self) -> &'static str {
        match self {
            HistoryMetric::DecodeTps => "decode tokens/s",
            HistoryMetric::PrefillTps => "prefill tokens/s",
            HistoryMetric::Speedup => "speedup over baseline (x)",
            HistoryMetric::Acceptance => "draft acceptance",
            HistoryMetric::TtftP99 => "TTFT p99 (ms)",
            HistoryMetric::ItlP99 => "ITL p99 (ms)",
            HistoryMetric::OutputTps => "output tokens/s under load",
        }
    }

    /// The value of a finished row (its raw repetitions for a percentile it lacks).
    pub fn value(self, row: &ResultRow, file: &LoadedFile) -> Option<f64> {
        if row.status != Status::Ok {
            return None;
        }
        match self {
            HistoryMetric::DecodeTps => row.decode_tps_mean,
            HistoryMetric::PrefillTps => row.prefill_tps_mean,
            HistoryMetric::Speedup => row.speedup,
            HistoryMetric::Acceptance => row.acceptance,
            HistoryMetric::TtftP99 => row
                .load_ttft_ms_p99
                .or_else(|| percentile(&file.raw_of(row)?.ttft_ms, 0.99)),
            HistoryMetric::ItlP99 => row.itl_p99_ms,
            HistoryMetric::OutputTps => row.output_tps,
        }
    }
}

/// A run as a column of the history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryRun {
    /// The run as the database knows it.
    #[serde(flatten)]
    pub info: RunInfo,
    /// When its first cell ended (UTC, RFC 3339).
    pub measured_utc: String,
    /// The engine build of its cells: the engine hash's first 8 digits, else the commit
    /// in its version text, else its package version or version text.
    pub build: String,
}

impl HistoryRun {
    /// Column heading: `#ID DATE BUILD`.
    pub fn heading(&self) -> String {
        let date = self.measured_utc.get(..10).unwrap_or(&self.measured_utc);
        format!("#{} {date} {}", self.info.run_id, self.build)
    }
}

/// One cell on one host across the runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryLine {
    /// Host of the cell.
    pub host: String,
    /// The cell: role, model, mode, workload, slots, threads (depth, load, server arguments
    /// when set).
    pub cell: String,
    /// The value in each run, in the runs' order.
    pub values: Vec<Option<f64>>,
    /// Last value over first value, minus one (fraction), when it has two.
    pub change: Option<f64>,
}

/// A metric across runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct History {
    /// The metric.
    pub metric: HistoryMetric,
    /// The runs that measured it, oldest first.
    pub runs: Vec<HistoryRun>,
    /// One line per host and cell, sorted.
    pub lines: Vec<HistoryLine>,
}

/// The history of `metric` over `runs` (the newest `last` runs that measured it, or all).
pub fn history(
    runs: &[(RunInfo, LoadedFile)],
    metric: HistoryMetric,
    last: Option<usize>,
) -> History {
    let mut ordered: Vec<(HistoryRun, &LoadedFile)> = runs
        .iter()
        .filter(|(_, f)| f.rows.iter().any(|r| metric.value(r, f).is_some()))
        .map(|(info, f)| (column(info, f, metric), f))
        .collect();
    ordered.sort_by(|a, b| {
        (&a.0.measured_utc, a.0.info.run_id).cmp(&(&b.0.measured_utc, b.0.info.run_id))
    });
    let skip = ordered.len().saturating_sub(last.unwrap_or(usize::MAX));
    let ordered = ordered.split_off(skip);
    let mut cells: BTreeMap<(String, CellKey), Vec<Option<f64>>> = BTreeMap::new();
    for (i, (_, file)) in ordered.iter().enumerate() {
        for row in &file.rows {
            if let Some(v) = metric.value(row, file) {
                let slot = cells
                    .entry((row.host.clone(), row.key()))
                    .or_insert_with(|| vec![None; ordered.len()]);
                slot[i] = Some(v);
            }
        }
    }
    let lines = cells
        .into_iter()
        .map(|((host, key), values)| {
            let known: Vec<f64> = values.iter().flatten().copied().collect();
            let change = match known.as_slice() {
                [first, .., last] if *first != 0.0 => Some(last / first - 1.0),
                _ => None,
            };
            HistoryLine {
                host,
                cell: cell_text(&key),
                values,
                change,
            }
        })
        .collect();
    History {
        metric,
        runs: ordered.into_iter().map(|(run, _)| run).collect(),
        lines,
    }
}

/// A run as a column: when it measured and with which build.
fn column(info: &RunInfo, file: &LoadedFile, metric: HistoryMetric) -> HistoryRun {
    let measured = file
        .rows
        .iter()
        .filter(|r| metric.value(r, file).is_some())
        .map(|r| r.timestamp_utc.clone());
    let first = file.rows.iter().find(|r| metric.value(r, file).is_some());
    HistoryRun {
        info: info.clone(),
        measured_utc: measured.min().unwrap_or_default(),
        build: first.map(build_of).unwrap_or_default(),
    }
}

/// The engine build of a row, short.
pub fn build_of(row: &ResultRow) -> String {
    let sha = row.engine_sha256.as_str();
    if !sha.is_empty() && sha != "unknown" {
        return sha.chars().take(8).collect();
    }
    let version = row.engine_version.as_str();
    let commit = version
        .rsplit_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(inside, _)| inside.trim())
        .filter(|c| !c.is_empty() && *c != "remote");
    match (commit, row.engine_package_version.as_str()) {
        (Some(c), _) => c.to_string(),
        (None, "") => version.to_string(),
        (None, package) => package.to_string(),
    }
}

/// A cell key as one short text: role, model without `.gguf` (once when the role is
/// named after it), mode, workload, slots, threads and what else is set.
fn cell_text(k: &CellKey) -> String {
    let model = k.model_file.strip_suffix(".gguf").unwrap_or(&k.model_file);
    let who = match k.role == model {
        true => model.to_string(),
        false => format!("{} {model}", k.role),
    };
    let mut s = format!(
        "{who} {} {} np={} t={}",
        k.mode, k.workload, k.parallel, k.threads
    );
    if k.depth > 0 {
        s += &format!(" d={}", k.depth);
    }
    if !k.load.is_empty() {
        s += &format!(" {}", k.load);
    }
    if !k.server_args.is_empty() {
        s += &format!(" [{}]", k.server_args);
    }
    if !k.deploy_phase.is_empty() {
        s += &format!(" {}", k.deploy_phase);
    }
    if let Some(round) = k.deploy_round {
        s += &format!(" round {round}");
    }
    s
}

impl History {
    /// The values table and the runs under it; the host column only when there are
    /// several hosts.
    pub fn report(&self) -> Report {
        let hosts = self.lines.iter().any(|l| l.host != self.lines[0].host);
        let mut headers: Vec<String> = match hosts {
            true => vec!["host".into(), "cell".into()],
            false => vec!["cell".into()],
        };
        let first = headers.len();
        headers.extend(self.runs.iter().map(HistoryRun::heading));
        headers.push("change".into());
        let n = headers.len();
        let mut values = Table::new(headers)
            .titled(format!("{} by run, oldest first", self.metric.label()))
            .right_aligned(first..n);
        for line in &self.lines {
            let mut cells = match hosts {
                true => vec![line.host.clone(), line.cell.clone()],
                false => vec![line.cell.clone()],
            };
            cells.extend(line.values.iter().map(|v| v.map_or("-".into(), num)));
            cells.push(
                line.change
                    .map_or("-".into(), |c| format!("{:+.1}%", c * 100.0)),
            );
            values.push(cells);
        }
        let mut runs = Table::new([
            "run", "measured", "build", "host", "profile", "command", "csv",
        ])
        .titled("runs");
        for r in &self.runs {
            runs.push(vec![
                format!("#{}", r.info.run_id),
                r.measured_utc.clone(),
                r.build.clone(),
                r.info.host.clone(),
                r.info.profile.clone(),
                r.info.command.clone(),
                r.info.csv_path.clone(),
            ]);
        }
        Report::tables([values, runs])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::load::RepValues;

    fn info(run_id: i64) -> RunInfo {
        RunInfo {
            run_id,
            csv_path: format!("/r/{run_id}.csv"),
            command: "run".into(),
            created_utc: String::new(),
            host: "box1".into(),
            engine: String::new(),
            profile: "smoke".into(),
        }
    }

    fn row(threads: u32, tps: f64, when: &str, sha: &str) -> ResultRow {
        ResultRow {
            role: "t".into(),
            model_file: "m.gguf".into(),
            workload: "chat".into(),
            parallel: 1,
            threads,
            decode_tps_mean: Some(tps),
            timestamp_utc: when.into(),
            host: "box1".into(),
            engine_sha256: sha.into(),
            ..ResultRow::default()
        }
    }

    fn file(rows: Vec<ResultRow>) -> LoadedFile {
        LoadedFile::of_rows("x.csv", rows)
    }

    #[test]
    fn runs_are_ordered_by_when_they_measured_and_each_cell_is_one_line() {
        // Run 1 was imported last but measured first.
        let runs = vec![
            (
                info(2),
                file(vec![row(1, 110.0, "2026-12-03T00:00:00Z", "bbbbbbbbcc")]),
            ),
            (
                info(1),
                file(vec![
                    row(1, 100.0, "2026-12-01T00:00:00Z", "aaaaaaaacc"),
                    row(2, 60.0, "2026-12-01T00:01:00Z", "aaaaaaaacc"),
                ]),
            ),
        ];
        let h = history(&runs, HistoryMetric::DecodeTps, None);
        let ids: Vec<i64> = h.runs.iter().map(|r| r.info.run_id).collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(h.runs[0].heading(), "#1 2026-12-01 aaaaaaaa");
        assert_eq!(h.lines.len(), 2);
        assert_eq!(h.lines[0].values, [Some(100.0), Some(110.0)]);
        assert!((h.lines[0].change.unwrap() - 0.1).abs() < 1e-12);
        assert_eq!(h.lines[1].values, [Some(60.0), None]);
        assert_eq!(h.lines[1].change, None, "one value: no change");
        let newest = history(&runs, HistoryMetric::DecodeTps, Some(1));
        assert_eq!(newest.runs.len(), 1);
        assert_eq!(newest.lines[0].values, [Some(110.0)]);
        // No run measured a speedup: no column.
        assert!(history(&runs, HistoryMetric::Speedup, None).runs.is_empty());
    }

    #[test]
    fn ttft_p99_of_a_batch_cell_is_the_nearest_rank_of_its_repetitions() {
        let r = row(1, 100.0, "2026-12-01T00:00:00Z", "a");
        let mut f = file(vec![r.clone()]);
        // 100 repetitions of 1..=100 ms: the 99th percentile by nearest rank is 99 ms.
        let ttft_ms = (1..=100).map(f64::from).collect();
        f.raw.insert(
            r.key(),
            RepValues {
                ttft_ms,
                ..RepValues::default()
            },
        );
        assert_eq!(HistoryMetric::TtftP99.value(&r, &f), Some(99.0));
        let serving = ResultRow {
            load_ttft_ms_p99: Some(250.0),
            ..r
        };
        assert_eq!(HistoryMetric::TtftP99.value(&serving, &f), Some(250.0));
    }

    #[test]
    fn a_build_is_the_engine_hash_else_the_commit_of_its_version() {
        let mut r = row(1, 1.0, "", "0123456789abcdef");
        assert_eq!(build_of(&r), "01234567");
        r.engine_sha256 = "unknown".into();
        r.engine_version = "llama-bench build 6000 (abc1234)".into();
        assert_eq!(build_of(&r), "abc1234");
        r.engine_version = "llama-server build 6000 (remote)".into();
        r.engine_package_version = "11434.0.0".into();
        assert_eq!(build_of(&r), "11434.0.0");
    }
}
