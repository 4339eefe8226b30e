//! The metrics that compare and check look at, and how each becomes an estimate with a
//! variance: from the raw repetitions when the JSONL is there, else from the row's summary
//! statistics (decode t/s has mean, sd and n; the other metrics only a mean, so they get a
//! point value without an interval).

use serde::Serialize;

use super::stats::{LogEstimate, Moments};
use crate::results::load::LoadedFile;
use crate::results::{ResultRow, Status};

/// A metric of a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Server-reported decode speed (tokens/s).
    Decode,
    /// Prompt processing speed (tokens/s).
    Prefill,
    /// Time to first token (ms); lower is better.
    Ttft,
    /// 99th percentile inter-token latency (ms); lower is better.
    #[value(name = "itl_p99")]
    ItlP99,
    /// Decode speed of an accelerated cell over its baseline cell of the same run (ratio).
    Speedup,
    /// Draft acceptance (fraction).
    Acceptance,
}

impl Metric {
    /// Column heading with unit.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Decode => "decode t/s",
            Metric::Prefill => "prefill t/s",
            Metric::Ttft => "TTFT ms",
            Metric::ItlP99 => "ITL p99 ms",
            Metric::Speedup => "speedup x",
            Metric::Acceptance => "acceptance",
        }
    }

    /// Unit after a value.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::Decode | Metric::Prefill => "t/s",
            Metric::Ttft | Metric::ItlP99 => "ms",
            Metric::Speedup => "x",
            Metric::Acceptance => "",
        }
    }

    /// Name as written on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Decode => "decode",
            Metric::Prefill => "prefill",
            Metric::Ttft => "ttft",
            Metric::ItlP99 => "itl_p99",
            Metric::Speedup => "speedup",
            Metric::Acceptance => "acceptance",
        }
    }

    /// False for latencies, where a smaller value is better.
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::Ttft | Metric::ItlP99)
    }

    /// Metrics measured within one run: meaningful even when absolute speed varies.
    pub fn is_ratio_metric(self) -> bool {
        matches!(self, Metric::Speedup | Metric::Acceptance)
    }
}

/// Where an estimate's variance came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Raw repetitions from the JSONL.
    Raw,
    /// The row's mean, sd and repetition count.
    Summary,
    /// Only a point value: no interval possible.
    PointOnly,
}

/// A metric's value for one cell with the log-scale variance terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// The value in the metric's unit.
    pub value: f64,
    /// ln(value) with variance terms; variance infinite for point-only estimates.
    pub log: LogEstimate,
    /// Where the variance came from.
    pub source: Source,
}

fn from_moments(m: Moments, source: Source) -> Option<Estimate> {
    Some(Estimate {
        value: m.mean,
        log: m.log_estimate()?,
        source,
    })
}

fn point(value: Option<f64>) -> Option<Estimate> {
    let value = value.filter(|v| *v > 0.0 && v.is_finite())?;
    Some(Estimate {
        value,
        log: LogEstimate {
            log_value: value.ln(),
            terms: vec![(f64::INFINITY, 0.0)],
        },
        source: Source::PointOnly,
    })
}

fn raw_moments(values: &[f64]) -> Option<Moments> {
    Moments::of(values).filter(|m| m.n >= 1)
}

/// Decode t/s of a row within its launches: raw repetitions, else mean/sd/n of the row.
fn decode(file: &LoadedFile, row: &ResultRow) -> Option<Estimate> {
    if let Some(m) = file.raw_of(row).and_then(|r| raw_moments(&r.decode_tps)) {
        return from_moments(m, Source::Raw);
    }
    match (row.decode_tps_mean, row.decode_tps_sd) {
        (Some(mean), Some(sd)) if row.n_reps > 0 => from_moments(
            Moments {
                n: row.n_reps as usize,
                mean,
                sd,
            },
            Source::Summary,
        ),
        (mean, _) => point(mean),
    }
}

/// The baseline row of the same model, workload, slots, context, threads, depth and server
/// arguments in the same file.
pub fn baseline_of<'a>(file: &'a LoadedFile, row: &ResultRow) -> Option<&'a ResultRow> {
    file.rows.iter().find(|b| {
        b.mode.is_baseline()
            && b.status == Status::Ok
            && b.role == row.role
            && b.model_file == row.model_file
            && b.workload == row.workload
            && b.parallel == row.parallel
            && b.ctx == row.ctx
            && b.threads == row.threads
            && b.depth == row.depth
            && b.server_args == row.server_args
    })
}

/// Acceptance: raw per-repetition values, else a binomial variance from the drafted count.
fn acceptance(file: &LoadedFile, row: &ResultRow) -> Option<Estimate> {
    if let Some(m) = file.raw_of(row).and_then(|r| raw_moments(&r.acceptance)) {
        return from_moments(m, Source::Raw);
    }
    let p = row.acceptance.filter(|p| *p > 0.0)?;
    let drafted = row.draft_n.unwrap_or(0) as f64;
    if drafted <= 0.0 {
        return point(Some(p));
    }
    Some(Estimate {
        value: p,
        log: LogEstimate {
            log_value: p.ln(),
            terms: vec![((1.0 - p).max(0.0) / (p * drafted), f64::INFINITY)],
        },
        source: Source::Summary,
    })
}

/// A metric's estimate for a row of a file; `None` when the row does not have it (a
/// baseline has no speedup, a non-drafting mode no acceptance, a failed cell nothing).
pub fn estimate(file: &LoadedFile, row: &ResultRow, metric: Metric) -> Option<Estimate> {
    if row.status != Status::Ok {
        return None;
    }
    let raw = file.raw_of(row);
    let raw_or_point = |values: Option<&Vec<f64>>, fallback: Option<f64>| match values
        .and_then(|v| raw_moments(v))
    {
        Some(m) => from_moments(m, Source::Raw),
        None => point(fallback),
    };
    match metric {
        Metric::Decode => decode(file, row).map(|mut e| {
            // The launch variation the row's decode interval includes (see `speedup`).
            let cv = row.between_launch_cv.unwrap_or(0.0);
            let var = crate::measure::mean_launch_variance(cv, row.launches);
            e.log = e.log.with_launch_variance(var);
            e
        }),
        Metric::Prefill => raw_or_point(raw.map(|r| &r.prefill_tps), row.prefill_tps_mean),
        Metric::Ttft => raw_or_point(raw.map(|r| &r.ttft_ms), row.ttft_ms_mean),
        Metric::ItlP99 => itl_p99(raw, row),
        Metric::Acceptance => acceptance(file, row),
        Metric::Speedup => speedup(file, row),
    }
}

/// ITL p99: the pooled p99 of every gap of every repetition (the result row's number, one
/// percentile definition), with the log-scale variance of the mean of the per-repetition
/// p99s (how much the p99 varies between repetitions); the row's value as a point without
/// the raw repetitions.
fn itl_p99(raw: Option<&crate::results::load::RepValues>, row: &ResultRow) -> Option<Estimate> {
    let Some(r) = raw else {
        return point(row.itl_p99_ms);
    };
    let pooled = crate::measure::percentile(&r.itl_gaps_ms, 0.99).filter(|v| *v > 0.0);
    match (
        pooled,
        raw_moments(&r.itl_p99_ms).and_then(|m| m.log_estimate()),
    ) {
        (Some(value), Some(spread)) => Some(Estimate {
            value,
            log: LogEstimate {
                log_value: value.ln(),
                terms: spread.terms,
            },
            source: Source::Raw,
        }),
        _ => point(row.itl_p99_ms),
    }
}

/// Speedup over the baseline: from the cell's pairs when every repetition of it was paired
/// with a baseline request (the paired interval), else from the decode estimates of the cell
/// and its baseline cell of the same run (Welch); the row's own speedup column as a point
/// value when the baseline row is absent. The launch-to-launch variation of the row
/// (`between_launch_cv`) is added as the run added it to the row's interval.
fn speedup(file: &LoadedFile, row: &ResultRow) -> Option<Estimate> {
    if row.mode.is_baseline() {
        return None;
    }
    // The launch-to-launch variation the row's interval includes (its baseline's).
    let cv = row.between_launch_cv.unwrap_or(0.0);
    if let Some(mut paired) = file.raw_of(row).and_then(paired_speedup) {
        paired.log = paired
            .log
            .with_launch_variance(crate::measure::launch_variance(cv, 1, 1));
        return Some(paired);
    }
    let Some(base) = baseline_of(file, row) else {
        return point(row.speedup);
    };
    let (a, b) = (decode(file, row)?, decode(file, base)?);
    let log = a
        .log
        .div(&b.log)
        .with_launch_variance(crate::measure::launch_variance(
            cv,
            row.launches,
            base.launches,
        ));
    let source = if a.source == Source::Raw && b.source == Source::Raw {
        Source::Raw
    } else if a.source == Source::PointOnly || b.source == Source::PointOnly {
        Source::PointOnly
    } else {
        Source::Summary
    };
    Some(Estimate {
        value: log.log_value.exp(),
        log,
        source,
    })
}

/// The paired speedup of a cell all of whose repetitions (at least two) were paired.
fn paired_speedup(raw: &crate::results::load::RepValues) -> Option<Estimate> {
    if raw.pairs.len() < 2 || raw.pairs.len() != raw.decode_tps.len() {
        return None;
    }
    let (own, base): (Vec<f64>, Vec<f64>) = raw.pairs.iter().copied().unzip();
    let log = crate::measure::paired_log_estimate(&own, &base).ok()?;
    Some(Estimate {
        value: log.log_value.exp(),
        log,
        source: Source::Raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(mode: &str, mean: f64, sd: f64, n: u32) -> ResultRow {
        ResultRow {
            role: "r".into(),
            model_file: "m.gguf".into(),
            mode: mode.parse().unwrap(),
            workload: "chat".into(),
            parallel: 1,
            ctx: 4096,
            threads: 2,
            decode_tps_mean: Some(mean),
            decode_tps_sd: Some(sd),
            n_reps: n,
            ..ResultRow::default()
        }
    }

    fn file(rows: Vec<ResultRow>) -> LoadedFile {
        LoadedFile::of_rows("x.csv", rows)
    }

    /// A baseline row and `spec` with the five pairs of measure::ratio's scipy example.
    fn paired_file(spec: ResultRow) -> LoadedFile {
        let a = [15.2, 15.9, 15.5, 16.1, 15.4];
        let b = [10.1, 10.3, 10.0, 10.4, 10.2];
        let mut f = file(vec![row("baseline", 40.0, 0.8, 5), spec]);
        let values = crate::results::load::RepValues {
            decode_tps: a.to_vec(),
            pairs: a.iter().copied().zip(b).collect(),
            ..Default::default()
        };
        f.raw.insert(f.rows[1].key(), values);
        f
    }

    #[test]
    fn a_paired_cell_gets_the_paired_interval_from_its_pairs() {
        // The pairs of measure::ratio's scipy example: 1.5311769389 (1.5039999155 ..
        // 1.5588450464), not the Welch ratio of the row means.
        let mut f = paired_file(row("spec:16", 100.0, 2.0, 5));
        let e = estimate(&f, &f.rows[1], Metric::Speedup).unwrap();
        let ci = e.log.ci95();
        assert!((ci.ratio - 1.5311769389).abs() < 1e-9, "{ci:?}");
        assert!((ci.low - 1.5039999155).abs() < 1e-8, "{ci:?}");
        assert!((ci.high - 1.5588450464).abs() < 1e-8, "{ci:?}");
        assert_eq!(e.source, Source::Raw);
        // A repetition without its partner line: back to the ratio of the cell's raw mean
        // (78.1 / 5 = 15.62) over the baseline row's 40.
        f.raw.get_mut(&f.rows[1].key()).unwrap().pairs.pop();
        let e = estimate(&f, &f.rows[1], Metric::Speedup).unwrap();
        assert!((e.value - 15.62 / 40.0).abs() < 1e-12, "{e:?}");
    }

    #[test]
    fn the_launch_variation_of_a_row_is_part_of_its_speedup_interval() {
        // Variance of the mean log pair ratio (Python's statistics module): 4.16045466581e-5;
        // a launch-to-launch cv of 5% adds 2 * 0.05^2 for one launch on each side.
        let mut spec = row("spec:16", 100.0, 2.0, 5);
        spec.between_launch_cv = Some(0.05);
        let mut f = paired_file(spec);
        let e = estimate(&f, &f.rows[1], Metric::Speedup).unwrap();
        let want = 4.160454665812914e-05 + 0.005;
        assert!((e.log.variance() - want).abs() < 1e-15, "{:?}", e.log);
        // Unpaired (no raw pairs): one launch over a baseline of two adds 1.5 cv^2.
        f.raw.clear();
        f.rows[0].launches = 2;
        let e = estimate(&f, &f.rows[1], Metric::Speedup).unwrap();
        let within = (2.0f64 / 100.0).powi(2) / 5.0 + (0.8f64 / 40.0).powi(2) / 5.0;
        assert!((e.log.variance() - within - 0.00375).abs() < 1e-15);
    }

    #[test]
    fn speedup_from_summaries_has_an_interval() {
        let f = file(vec![
            row("baseline", 40.0, 0.8, 5),
            row("spec:16", 100.0, 2.0, 5),
        ]);
        let e = estimate(&f, &f.rows[1], Metric::Speedup).unwrap();
        assert!((e.value - 2.5).abs() < 1e-12);
        assert_eq!(e.source, Source::Summary);
        let ci = e.log.ci95();
        assert!(ci.has_ci() && ci.low < 2.5 && ci.high > 2.5, "{ci:?}");
        assert!(estimate(&f, &f.rows[0], Metric::Speedup).is_none());
    }

    #[test]
    fn point_only_metrics_have_no_interval() {
        let mut r = row("baseline", 40.0, 0.8, 5);
        r.ttft_ms_mean = Some(120.0);
        let f = file(vec![r]);
        let e = estimate(&f, &f.rows[0], Metric::Ttft).unwrap();
        assert_eq!(e.source, Source::PointOnly);
        assert!(!e.log.ci95().has_ci());
    }

    #[test]
    fn itl_p99_is_the_pooled_p99_of_the_row_with_a_spread_from_the_repetitions() {
        // Two repetitions: gaps 1..=100 ms and 101..=200 ms. Pooled nearest-rank p99 of the
        // 200 gaps: rank 198, 198 ms; per repetition: 99 and 199 ms.
        let gaps: Vec<f64> = (1..=200).map(f64::from).collect();
        let raw = crate::results::load::RepValues {
            itl_gaps_ms: gaps,
            itl_p99_ms: vec![99.0, 199.0],
            ..Default::default()
        };
        let r = row("baseline", 40.0, 0.8, 2);
        let mut f = file(vec![r.clone()]);
        f.raw.insert(r.key(), raw);
        let e = estimate(&f, &f.rows[0], Metric::ItlP99).unwrap();
        assert_eq!(e.value, 198.0);
        assert_eq!(e.source, Source::Raw);
        // variance of ln(mean of 99 and 199): sd^2 / (n mean^2) = 5000 / (2 * 149^2)
        assert!((e.log.variance() - 5000.0 / (2.0 * 149.0f64.powi(2))).abs() < 1e-12);
    }

    #[test]
    fn failed_cells_have_no_metrics() {
        let mut r = row("baseline", 40.0, 0.8, 5);
        r.status = Status::Failed;
        let f = file(vec![r]);
        assert!(estimate(&f, &f.rows[0], Metric::Decode).is_none());
    }
}
