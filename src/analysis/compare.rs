//! `bench compare`: joins the cells of several result files on what was measured (model
//! identity, mode, workload, slots, context, depth, extra server arguments, and threads when
//! an input swept them; never the file name), shows one column per input with the ratio to
//! the first input and its 95% CI, and warns loudly about differences that make a comparison
//! unfair.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::metrics::{estimate, Metric, Source};
use super::render::{num, ratio_text, Format, Table};
use super::stats::{verdict, RatioCi, Verdict};
use crate::mode::Mode;
use crate::results::load::LoadedFile;
use crate::results::{ResultRow, Status};
use crate::util::output::Report;

/// What makes two rows comparable: the model by its content (architecture, parameters,
/// quant, tensor bytes), the mode, the workload, the slots, the context, the depth, the
/// extra server arguments, and the thread count when the join is on threads
/// ([`joins_on_threads`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct JoinKey {
    /// GGUF architecture.
    pub arch: String,
    /// Total parameters (count).
    pub n_params: u64,
    /// Quant label.
    pub quant: String,
    /// Tensor bytes (bytes).
    pub tensor_bytes: u64,
    /// Mode.
    pub mode: Mode,
    /// Workload.
    pub workload: String,
    /// Parallel slots.
    pub parallel: u32,
    /// Context (tokens).
    pub ctx: u32,
    /// Tokens in the context before decode is measured.
    pub depth: u32,
    /// Extra llama-server arguments.
    pub server_args: String,
    /// The load of a serving cell (`rate 2 rps`); empty for a cell of repeated batches.
    pub load: String,
    /// A deployment cell's phase and round (`together 2`); empty outside a deployment.
    pub deploy: String,
    /// Server threads, when the join is on threads.
    pub threads: Option<u32>,
}

/// Whether rows are joined on their thread count: when some input swept threads (its rows
/// have more than one count), so that its 1-thread cell meets the other input's 1-thread
/// cell. Otherwise the thread count is left out and each machine is compared at its own
/// (typically its core count; the inputs then differ in threads and a warning says so).
pub fn joins_on_threads(files: &[LoadedFile]) -> bool {
    files.iter().any(|f| distinct(f, |r| r.threads).len() > 1)
}

impl JoinKey {
    /// The join key of a row; `on_threads` from [`joins_on_threads`].
    pub fn of(row: &ResultRow, on_threads: bool) -> JoinKey {
        JoinKey {
            arch: row.model_arch.clone(),
            n_params: row.model_n_params,
            quant: row.model_quant.clone(),
            tensor_bytes: row.model_tensor_bytes,
            mode: row.mode.clone(),
            workload: row.workload.clone(),
            parallel: row.parallel,
            ctx: row.ctx,
            depth: row.depth,
            server_args: row.server_args.clone(),
            load: row.load.clone(),
            deploy: match row.deploy_round {
                Some(round) => format!("{} {round}", row.deploy_phase),
                None => row.deploy_phase.clone(),
            },
            threads: on_threads.then_some(row.threads),
        }
    }

    /// Model description for a table cell, e.g. `qwen2 0.63B Q8_0`.
    pub fn model(&self) -> String {
        format!(
            "{} {:.2}B {}",
            self.arch,
            self.n_params as f64 / 1e9,
            self.quant
        )
    }
}

/// A key column of the table: its header and its text for a line's key.
type KeyColumn = (&'static str, fn(&JoinKey) -> String);

/// One input's value and ratio for one joined cell.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The metric's value in this input, `None` when the cell is absent or has no value.
    pub value: Option<f64>,
    /// Ratio to the reference in "higher is better" orientation for speeds, raw value ratio
    /// (this / reference) for every metric; `None` for the reference itself.
    pub ratio: Option<RatioCi>,
    /// Faster / slower / same / undecided / no interval, `None` for the reference.
    pub verdict: Option<&'static str>,
    /// Where the interval came from.
    pub source: Option<Source>,
    /// The cell's status when it is not `ok` (then there is no value).
    pub status: Option<String>,
}

/// One joined cell.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// The join key.
    pub key: JoinKey,
    /// Role name in the first input that has the cell.
    pub role: String,
    /// One entry per input, in input order.
    pub entries: Vec<Entry>,
}

/// One input's description.
#[derive(Debug, Clone, Serialize)]
pub struct Input {
    /// File path.
    pub path: String,
    /// Column label (file stem).
    pub label: String,
    /// Host and CPU of its first row.
    pub machine: String,
    /// Why raw repetitions were not used, if not.
    pub raw_note: Option<String>,
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The metric compared.
    pub metric: Metric,
    /// Inputs in order; the first is the reference.
    pub inputs: Vec<Input>,
    /// Unfairness warnings.
    pub warnings: Vec<String>,
    /// Notes (e.g. raw repetitions missing, summary statistics used).
    pub notes: Vec<String>,
    /// Joined cells, sorted by key.
    pub lines: Vec<Line>,
}

/// Joins the files and computes the ratios for `metric`.
/// `margin` is the equivalence margin of the verdicts (0.05: "same" when the whole interval
/// lies within 5% of 1, "faster"/"slower" when it lies wholly beyond it).
pub fn compare(files: &[LoadedFile], metric: Metric, margin: f64) -> Comparison {
    let on_threads = joins_on_threads(files);
    let mut index: BTreeMap<JoinKey, Vec<Option<&ResultRow>>> = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        for row in &f.rows {
            let slot = index
                .entry(JoinKey::of(row, on_threads))
                .or_insert_with(|| vec![None; files.len()]);
            slot[i].get_or_insert(row);
        }
    }
    let lines = index
        .into_iter()
        .map(|(key, rows)| line(files, key, &rows, metric, margin))
        .collect();
    Comparison {
        metric,
        inputs: files.iter().map(input).collect(),
        warnings: warnings(files),
        notes: notes(files),
        lines,
    }
}

fn input(f: &LoadedFile) -> Input {
    let machine = f
        .rows
        .first()
        .map(|r| format!("{} ({})", r.host, r.cpu_model))
        .unwrap_or_default();
    Input {
        path: f.path.display().to_string(),
        label: f.label(),
        machine,
        raw_note: f.raw_note.clone(),
    }
}

fn line(
    files: &[LoadedFile],
    key: JoinKey,
    rows: &[Option<&ResultRow>],
    metric: Metric,
    margin: f64,
) -> Line {
    let est: Vec<_> = rows
        .iter()
        .zip(files)
        .map(|(r, f)| r.and_then(|r| estimate(f, r, metric)))
        .collect();
    let entries = est
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let ratio = (i > 0)
                .then(|| Some(e.as_ref()?.log.div(&est[0].as_ref()?.log).ci95()))
                .flatten();
            Entry {
                value: e.as_ref().map(|e| e.value),
                verdict: ratio.map(|r| verdict_word(&r, metric, margin)),
                ratio,
                source: e.as_ref().map(|e| e.source),
                status: rows[i]
                    .filter(|r| r.status != Status::Ok)
                    .map(|r| r.status.to_string()),
            }
        })
        .collect();
    Line {
        role: rows
            .iter()
            .flatten()
            .next()
            .map(|r| r.role.clone())
            .unwrap_or_default(),
        key,
        entries,
    }
}

/// "faster", "slower", "same" (equivalent within `margin`) or "undecided" ("higher"/"lower"
/// for acceptance; "no interval" without one).
fn verdict_word(ratio: &RatioCi, metric: Metric, margin: f64) -> &'static str {
    let oriented = if metric.higher_is_better() {
        *ratio
    } else {
        ratio.recip()
    };
    match (verdict(&oriented, margin), metric) {
        (Verdict::Better, Metric::Acceptance) => "higher",
        (Verdict::Worse, Metric::Acceptance) => "lower",
        (Verdict::Better, _) => "faster",
        (Verdict::Worse, _) => "slower",
        (Verdict::Same, _) => "same",
        (Verdict::Undecided, _) if !ratio.has_ci() => "no interval",
        (Verdict::Undecided, _) => "undecided",
    }
}

/// Values of one property per input, for the unfairness checks.
fn distinct<T: Ord + Clone>(f: &LoadedFile, get: impl Fn(&ResultRow) -> T) -> BTreeSet<T> {
    f.rows.iter().map(get).collect()
}

fn differ_warning<T: Ord + Clone + std::fmt::Debug>(
    files: &[LoadedFile],
    what: &str,
    get: impl Fn(&ResultRow) -> T + Copy,
) -> Option<String> {
    let sets: Vec<BTreeSet<T>> = files.iter().map(|f| distinct(f, get)).collect();
    if sets.windows(2).all(|w| w[0] == w[1]) {
        return None;
    }
    let detail: Vec<String> = files
        .iter()
        .zip(&sets)
        .map(|(f, s)| format!("{}: {:?}", f.label(), s.iter().collect::<Vec<_>>()))
        .collect();
    Some(format!("inputs differ in {what}: {}", detail.join("; ")))
}

/// Every difference between inputs that makes the comparison unfair.
pub fn warnings(files: &[LoadedFile]) -> Vec<String> {
    let mut w = Vec::new();
    w.extend(differ_warning(
        files,
        "engine identity (sha256 of llama-server and its llama.cpp libraries)",
        |r| short(&r.engine_sha256),
    ));
    w.extend(differ_warning(files, "engine build variant", |r| {
        r.engine_variant.clone()
    }));
    w.extend(differ_warning(
        files,
        "ggml CPU features of the engine (system_info)",
        |r| cpu_features(&r.engine_system_info),
    ));
    w.extend(differ_warning(files, "engine version", |r| {
        r.engine_version.clone()
    }));
    if !joins_on_threads(files) {
        w.extend(differ_warning(files, "threads", |r| r.threads));
    }
    w.extend(differ_warning(files, "context (tokens)", |r| r.ctx));
    w.extend(differ_warning(files, "schema version", |r| {
        r.schema_version
    }));
    w.extend(differ_warning(files, "synthetic vs real models", |r| {
        if r.synthetic {
            "synthetic"
        } else {
            "real"
        }
    }));
    w
}

/// Notes on how the numbers were obtained: inputs whose raw repetitions are not used.
pub fn notes(files: &[LoadedFile]) -> Vec<String> {
    files
        .iter()
        .filter_map(|f| {
            let note = f.raw_note.as_ref()?;
            Some(format!(
                "{}: {note}; intervals from the rows' summary statistics (decode, speedup: mean/sd/n; acceptance: binomial); prefill, TTFT and ITL have none",
                f.label()
            ))
        })
        .collect()
}

/// The features a `system_info` line reports enabled (`AVX512 AMX_INT8 ...`), without
/// the thread count that precedes them.
fn cpu_features(system_info: &str) -> String {
    crate::llamacpp::identity::parse_enabled_features(system_info).join(" ")
}

fn short(hex: &str) -> String {
    hex.chars().take(12).collect()
}

impl Comparison {
    /// The comparison as a table: key columns, then per input its value, and for every input
    /// after the first the ratio to the first with its CI and the verdict.
    pub fn table(&self) -> Table {
        let mut headers: Vec<String> = ["role", "model", "mode", "workload", "np", "ctx"]
            .map(String::from)
            .to_vec();
        let sweep = self.sweep_columns();
        headers.extend(sweep.iter().map(|(name, _)| name.to_string()));
        for (i, input) in self.inputs.iter().enumerate() {
            headers.push(format!("{} {}", input.label, self.metric.label()));
            if i > 0 {
                headers.push(format!(
                    "{} / {} [95% CI]",
                    input.label, self.inputs[0].label
                ));
                headers.push("verdict".into());
            }
        }
        let mut t = Table::new(headers);
        for l in &self.lines {
            let mut r = vec![
                l.role.clone(),
                l.key.model(),
                l.key.mode.to_string(),
                l.key.workload.clone(),
                l.key.parallel.to_string(),
                l.key.ctx.to_string(),
            ];
            r.extend(sweep.iter().map(|(_, value)| value(&l.key)));
            for (i, e) in l.entries.iter().enumerate() {
                r.push(match (&e.status, e.value) {
                    (Some(st), _) => st.clone(),
                    (None, v) => v.map_or("-".into(), num),
                });
                if i > 0 {
                    r.push(e.ratio.as_ref().map_or("-".into(), ratio_text));
                    r.push(e.verdict.unwrap_or("-").into());
                }
            }
            t.push(r);
        }
        t
    }

    /// The key columns shown only when some line needs them: threads (joined on), depth
    /// (other than 0), server arguments (any), the load of serving cells (any).
    fn sweep_columns(&self) -> Vec<KeyColumn> {
        let any = |f: fn(&JoinKey) -> bool| self.lines.iter().any(|l| f(&l.key));
        let mut out: Vec<KeyColumn> = Vec::new();
        if any(|k| k.threads.is_some()) {
            out.push(("t", |k| {
                k.threads.map_or_else(String::new, |t| t.to_string())
            }));
        }
        if any(|k| k.depth > 0) {
            out.push(("depth", |k| k.depth.to_string()));
        }
        if any(|k| !k.server_args.is_empty()) {
            out.push(("server args", |k| k.server_args.clone()));
        }
        if any(|k| !k.load.is_empty()) {
            out.push(("load", |k| k.load.clone()));
        }
        if any(|k| !k.deploy.is_empty()) {
            out.push(("deployment", |k| k.deploy.clone()));
        }
        out
    }

    /// The WARNING block (empty when there is nothing to warn about).
    pub fn warning_block(&self) -> String {
        if self.warnings.is_empty() {
            return String::new();
        }
        let mut out = String::from("WARNING: this comparison may be unfair:\n");
        for w in &self.warnings {
            out += &format!("  ! {w}\n");
        }
        out
    }

    /// Inputs, warnings (a block quote) and notes as Markdown.
    fn markdown_preamble(&self) -> String {
        let mut out = String::new();
        for (i, inp) in self.inputs.iter().enumerate() {
            let role = if i == 0 { "reference" } else { "input" };
            out += &format!("- {role} {}: `{}` on {}\n", i + 1, inp.path, inp.machine);
        }
        if !self.warnings.is_empty() {
            out += "\n> **WARNING: this comparison may be unfair:**\n";
            for w in &self.warnings {
                out += &format!("> - {w}\n");
            }
        }
        for n in &self.notes {
            out += &format!("\nNote: {n}\n");
        }
        out
    }

    /// Inputs, warnings and notes for the terminal.
    fn terminal_preamble(&self) -> String {
        let mut out = String::new();
        for (i, inp) in self.inputs.iter().enumerate() {
            let role = if i == 0 { "reference" } else { "input" };
            out += &format!("{role} {}: {} on {}\n", i + 1, inp.path, inp.machine);
        }
        out += &self.warning_block();
        for n in &self.notes {
            out += &format!("note: {n}\n");
        }
        out
    }

    /// Full output in `format`. CSV stays machine-readable: the warnings go to stderr (see
    /// the command).
    pub fn render(&self, format: Format) -> anyhow::Result<String> {
        let mut report = Report::new();
        match format {
            Format::Table => report.text(self.terminal_preamble()),
            Format::Markdown => report.text(self.markdown_preamble() + "\n"),
            Format::Csv | Format::Json => {}
        }
        report.table(self.table());
        report.render(format, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(file_name: &str, mean: f64, threads: u32) -> ResultRow {
        ResultRow {
            schema_version: 1,
            role: "r".into(),
            model_file: file_name.into(),
            model_arch: "qwen2".into(),
            model_n_params: 630_000_000,
            model_quant: "Q8_0".into(),
            model_tensor_bytes: 670_000_000,
            mode: "baseline".parse().unwrap(),
            workload: "chat".into(),
            parallel: 1,
            ctx: 4096,
            threads,
            decode_tps_mean: Some(mean),
            decode_tps_sd: Some(mean * 0.01),
            n_reps: 5,
            ..ResultRow::default()
        }
    }

    fn file(name: &str, rows: Vec<ResultRow>) -> LoadedFile {
        LoadedFile::of_rows(name, rows)
    }

    #[test]
    fn joins_on_model_identity_not_file_name() {
        let a = file("a.csv", vec![row("one.gguf", 40.0, 2)]);
        let b = file("b.csv", vec![row("renamed.gguf", 48.0, 2)]);
        let c = compare(&[a, b], Metric::Decode, 0.05);
        assert_eq!(c.lines.len(), 1);
        let e = &c.lines[0].entries[1];
        assert!((e.ratio.unwrap().ratio - 1.2).abs() < 1e-12);
        assert_eq!(e.verdict, Some("faster"));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn warns_about_threads_and_synthetic() {
        let mut r = row("m.gguf", 40.0, 4);
        r.synthetic = true;
        let a = file("a.csv", vec![row("m.gguf", 40.0, 2)]);
        let b = file("b.csv", vec![r]);
        let c = compare(&[a, b], Metric::Decode, 0.05);
        assert!(c.warnings.iter().any(|w| w.contains("threads")));
        assert!(c.warnings.iter().any(|w| w.contains("synthetic")));
    }

    /// The AMD and AMX builds of one source share llama-server's sha256; the comparison
    /// must still say that the engines differ (variant, library hash, CPU features).
    #[test]
    fn warns_about_engine_builds_that_differ_behind_one_launcher() {
        let mut amd = row("m.gguf", 40.0, 2);
        amd.engine_server_sha256 = "a4b7c94c".repeat(8);
        amd.engine_sha256 = "11".repeat(32);
        amd.engine_variant = "native".into();
        amd.engine_system_info =
            "system_info: n_threads = 2 / 2 | CPU : AVX512 = 1 | AMX_INT8 = 0 |".into();
        let mut amx = amd.clone();
        amx.engine_sha256 = "22".repeat(32);
        amx.engine_variant = "native-no-amx".into();
        amx.engine_system_info =
            "system_info: n_threads = 2 / 2 | CPU : AVX512 = 1 | AMX_INT8 = 1 |".into();
        let c = compare(
            &[file("a.csv", vec![amd.clone()]), file("b.csv", vec![amx])],
            Metric::Decode,
            0.05,
        );
        let all = c.warnings.join("\n");
        assert!(all.contains("engine identity"), "{all}");
        assert!(all.contains("build variant"), "{all}");
        assert!(all.contains("AMX_INT8"), "{all}");
        let same = compare(
            &[file("a.csv", vec![amd.clone()]), file("b.csv", vec![amd])],
            Metric::Decode,
            0.05,
        );
        assert!(same.warnings.is_empty(), "{:?}", same.warnings);
    }

    #[test]
    fn a_file_that_swept_threads_joins_on_threads() {
        // A 1,2-thread sweep against a 2-thread run: 1 thread has no partner, 2 meets 2.
        let swept = file(
            "a.csv",
            vec![row("m.gguf", 20.0, 1), row("m.gguf", 38.0, 2)],
        );
        let single = file("b.csv", vec![row("m.gguf", 40.0, 2)]);
        assert!(joins_on_threads(&[swept.clone(), single.clone()]));
        let c = compare(&[swept, single], Metric::Decode, 0.05);
        assert_eq!(c.lines.len(), 2);
        let at = |t: u32| c.lines.iter().find(|l| l.key.threads == Some(t)).unwrap();
        assert_eq!(at(1).entries[1].value, None);
        assert!((at(2).entries[1].ratio.unwrap().ratio - 40.0 / 38.0).abs() < 1e-12);
        assert!(
            !c.warnings.iter().any(|w| w.contains("threads")),
            "{:?}",
            c.warnings
        );
        let table = c.table().render(Format::Markdown).unwrap();
        assert!(table.lines().next().unwrap().contains("| t |"), "{table}");
    }

    #[test]
    fn runs_without_a_sweep_join_across_thread_counts_and_on_depth() {
        let a = file("a.csv", vec![row("m.gguf", 40.0, 2)]);
        let b = file("b.csv", vec![row("m.gguf", 80.0, 4)]);
        assert!(!joins_on_threads(&[a.clone(), b.clone()]));
        assert_eq!(
            compare(&[a.clone(), b], Metric::Decode, 0.05).lines.len(),
            1
        );
        let mut deep = row("m.gguf", 30.0, 2);
        deep.depth = 4096;
        let c = compare(&[a, file("d.csv", vec![deep])], Metric::Decode, 0.05);
        assert_eq!(
            c.lines.len(),
            2,
            "depth 0 and depth 4096 are different cells"
        );
    }

    #[test]
    fn serving_cells_join_on_their_load() {
        let served = |load: &str, mean: f64| {
            let mut r = row("m.gguf", mean, 2);
            r.load = load.into();
            r
        };
        let a = file(
            "a.csv",
            vec![served("rate 1 rps", 40.0), served("rate 2 rps", 38.0)],
        );
        let b = file(
            "b.csv",
            vec![served("rate 1 rps", 41.0), served("rate 2 rps", 30.0)],
        );
        let c = compare(&[a, b], Metric::Decode, 0.05);
        let loads: Vec<&str> = c.lines.iter().map(|l| l.key.load.as_str()).collect();
        assert_eq!(
            loads,
            ["rate 1 rps", "rate 2 rps"],
            "one line per load, not one merged"
        );
    }

    #[test]
    fn lower_latency_is_faster() {
        let mut x = row("m.gguf", 40.0, 2);
        x.ttft_ms_mean = Some(100.0);
        let mut y = x.clone();
        y.ttft_ms_mean = Some(50.0);
        let c = compare(
            &[file("a.csv", vec![x]), file("b.csv", vec![y])],
            Metric::Ttft,
            0.05,
        );
        // Point values only: no interval, so no verdict beyond that.
        assert_eq!(c.lines[0].entries[1].verdict, Some("no interval"));
        let r = RatioCi {
            ratio: 0.5,
            low: 0.45,
            high: 0.55,
            df: 8.0,
        };
        assert_eq!(verdict_word(&r, Metric::Ttft, 0.05), "faster");
        assert_eq!(verdict_word(&r, Metric::Decode, 0.05), "slower");
    }

    #[test]
    fn the_same_machine_twice_is_same_not_faster() {
        // A 1% difference with a tight interval: "faster" at margin 0 (the old behaviour),
        // "same" within the default 5% margin; a wide interval is undecided.
        let tight = RatioCi {
            ratio: 1.01,
            low: 1.005,
            high: 1.015,
            df: 8.0,
        };
        assert_eq!(verdict_word(&tight, Metric::Decode, 0.0), "faster");
        assert_eq!(verdict_word(&tight, Metric::Decode, 0.05), "same");
        let wide = RatioCi {
            ratio: 1.01,
            low: 0.9,
            high: 1.12,
            df: 8.0,
        };
        assert_eq!(verdict_word(&wide, Metric::Decode, 0.05), "undecided");
        // Through the whole comparison: 1% faster at 1% noise and 5 repetitions each.
        let a = file("a.csv", vec![row("m.gguf", 40.0, 2)]);
        let b = file("b.csv", vec![row("m.gguf", 40.4, 2)]);
        let c = compare(&[a, b], Metric::Decode, 0.05);
        assert_eq!(c.lines[0].entries[1].verdict, Some("same"));
    }
}
