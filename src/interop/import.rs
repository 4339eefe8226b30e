//! `bench import`: llama-bench results as rows of the results schema, so `compare`, `check`,
//! `calibrate` and `report` read them next to the harness's own CSVs.
//!
//! One row per llama-bench test: a generation test (`tg128`) fills the decode columns, a
//! prompt test (`pp512`) the prefill column; the workload is the test's name, `depth` its
//! `n_depth`, `threads` its `n_threads`, `server_args` the llama-server form of its non-default
//! batch, cache-type and flash-attention settings, and `source` is `llama-bench`. llama-bench's
//! t/s of a generation test is `n_gen` tokens over the time of `n_gen` one-token steps, the
//! same quantity as the harness's decode rate (which excludes the first token, produced by the
//! prompt). The intervals come from `samples_ts` as the harness computes its own. Combined
//! tests (`-pg`) time both phases at once, a rate of neither: they are skipped with a warning.
//! When the model file is still where llama-bench read it, its GGUF gives the per-token
//! active bytes (MoE); otherwise the whole tensor size stands in, as for a dense model.

use std::path::Path;

use super::llama_bench::{LlamaBenchTest, TestKind};
use crate::gguf::{Model, ModelFacts};
use crate::hardware::facts::HwFacts;
use crate::measure::Sample;
use crate::mode::Mode;
use crate::results::{ResultRow, Source, Status, SCHEMA_VERSION};

/// Role name of every imported row.
pub const ROLE: &str = "llama-bench";

/// Rows of the tests of one llama-bench file, each with the record it came from, and
/// warnings for what was skipped.
pub fn rows(
    tests: &[LlamaBenchTest],
    host: &str,
) -> (Vec<(ResultRow, LlamaBenchTest)>, Vec<String>) {
    let mut rows = Vec::new();
    let mut warnings = Vec::new();
    for t in tests {
        if t.kind() == TestKind::Combined {
            warnings.push(format!(
                "skipped {} of {}: a combined test times prompt and generation together",
                t.test_name(),
                t.model_filename
            ));
            continue;
        }
        let finite = t.samples_ts.iter().all(|v| v.is_finite()) && t.avg_ts.is_finite();
        if !finite || t.avg_ts <= 0.0 {
            warnings.push(format!(
                "skipped {} of {}: its rates are not finite positive numbers",
                t.test_name(),
                t.model_filename
            ));
            continue;
        }
        let facts = facts(Path::new(&t.model_filename));
        rows.push((row(t, host, facts.as_ref()), t.clone()));
    }
    (rows, warnings)
}

/// Fills the machine columns of an imported row from the machine's `bench hw --json`
/// facts (llama-bench records only the CPU name), and with them the roofline.
pub fn stamp_machine(row: &mut ResultRow, hw: &HwFacts) {
    row.cpu_model = hw.cpu_model.clone();
    row.physical_cores = hw.physical_cores as u32;
    row.ram_gib = hw.ram_total_gib;
    row.isa = hw.isa.present().join(" ");
    row.bandwidth_gbps = Some(hw.best_bandwidth_gbps);
    row.fill_roofline();
}

/// The GGUF facts of the model, when the file is still there.
fn facts(path: &Path) -> Option<ModelFacts> {
    Model::open(path).ok().map(|m| m.facts())
}

/// The row of one test.
fn row(t: &LlamaBenchTest, host: &str, facts: Option<&ModelFacts>) -> ResultRow {
    let mut words = t.model_type.split_whitespace();
    let arch = words.next().unwrap_or("").to_owned();
    let quant = t
        .model_type
        .split_whitespace()
        .last()
        .unwrap_or("")
        .to_owned();
    let mut row = ResultRow {
        schema_version: SCHEMA_VERSION,
        status: Status::Ok,
        timestamp_utc: t.test_time.clone(),
        role: ROLE.into(),
        model_file: file_name(&t.model_filename),
        model_arch: facts.and_then(|f| f.architecture.clone()).unwrap_or(arch),
        model_n_params: t.model_n_params,
        model_quant: quant,
        model_tensor_bytes: t.model_size,
        mode: Mode::Baseline,
        workload: t.test_name(),
        parallel: 1,
        ctx: t.n_depth + t.n_prompt + t.n_gen,
        threads: t.n_threads,
        depth: t.n_depth,
        server_args: t.server_args(),
        source: Source::LlamaBench,
        host: host.to_owned(),
        cpu_model: t.cpu_info.clone(),
        engine_version: format!("llama-bench build {} ({})", t.build_number, t.build_commit),
        engine_system_info: t.backends.clone(),
        profile: "llama-bench".into(),
        model_file_bytes: facts.map_or(0, |f| f.file_bytes),
        active_params: facts.map_or(t.model_n_params, |f| f.active_params),
        active_bytes_per_token: facts.map_or(t.model_size, |f| f.active_bytes_per_token),
        launches: 1,
        ..ResultRow::default()
    };
    let samples = if t.samples_ts.is_empty() {
        vec![t.avg_ts]
    } else {
        t.samples_ts.clone()
    };
    row.n_reps = samples.len() as u32;
    match t.kind() {
        TestKind::Generation => fill_decode(&mut row, &samples),
        _ => {
            row.prefill_tps_mean = Some(mean(&samples));
            row.prompt_tokens = Some(t.n_prompt);
        }
    }
    row.n_predict = t.n_gen;
    row
}

/// Decode statistics from the repetitions' rates, as the harness computes its own.
fn fill_decode(row: &mut ResultRow, samples: &[f64]) {
    match Sample::new(samples) {
        Ok(s) => row.fill_decode(&s.summary()),
        Err(_) => row.decode_tps_mean = Some(mean(samples)),
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The file name of a path as llama-bench wrote it.
pub fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map_or_else(|| path.to_owned(), |n| n.to_string_lossy().into_owned())
}
