//! `bench export --format llama-bench`: the harness's rows as llama-bench records, for the
//! tools and spreadsheets that already read llama-bench output.
//!
//! A measured baseline row with one slot gives a generation test (`n_gen` = the row's
//! `n_predict`, `n_depth` = its prompt tokens as the server counted them, depth filler
//! included, since the harness decodes after the whole prompt, `avg_ts` its mean decode
//! rate, `samples_ts` the per-repetition rates from the raw JSONL when it is there) and,
//! when it has a prefill rate, a prompt test (`n_prompt` = its prompt tokens after the depth
//! filler, at `n_depth` = its depth). Accelerated modes and several slots have no llama-bench test and are
//! left out ([`tests`] says how many). Fields
//! llama-bench has and the harness does not measure (GPU, split mode, ...) are left out;
//! batch sizes, cache types and flash attention come from the row's `server_args` when it set
//! them, else llama-server's defaults, which are llama-bench's.

use crate::results::load::LoadedFile;
use crate::results::{ResultRow, Status};

use super::llama_bench::LlamaBenchTest;

/// The llama-bench records of the measured baseline rows with one slot, generation test
/// first, and the number of measured rows left out (accelerated or several slots).
pub fn tests(file: &LoadedFile) -> (Vec<LlamaBenchTest>, usize) {
    let mut out = Vec::new();
    let measured = file.rows.iter().filter(|r| r.status == Status::Ok);
    let (kept, left): (Vec<&ResultRow>, Vec<&ResultRow>) =
        measured.partition(|r| r.mode.is_baseline() && r.parallel == 1);
    for row in kept {
        let raw = file.raw_of(row);
        // `prompt_tokens` counts the depth filler and the workload's prompt together.
        let context = row.prompt_tokens.unwrap_or(row.depth).max(row.depth);
        if let Some(mean) = row.decode_tps_mean {
            let samples = raw.map(|r| r.decode_tps.clone()).unwrap_or_default();
            let mut t = test(row, 0, row.n_predict, mean, row.decode_tps_sd, samples);
            t.n_depth = context;
            out.push(t);
        }
        let prompt = context - row.depth;
        if let (Some(mean), true) = (row.prefill_tps_mean, prompt > 0) {
            let samples = raw.map(|r| r.prefill_tps.clone()).unwrap_or_default();
            out.push(test(row, prompt, 0, mean, None, samples));
        }
    }
    (out, left.len())
}

/// One record: `tokens` = n_prompt + n_gen over each repetition's time.
fn test(
    row: &ResultRow,
    n_prompt: u32,
    n_gen: u32,
    mean: f64,
    sd: Option<f64>,
    samples_ts: Vec<f64>,
) -> LlamaBenchTest {
    let tokens = f64::from(n_prompt + n_gen);
    let ns = |ts: f64| {
        if ts > 0.0 {
            (tokens / ts * 1e9) as u64
        } else {
            0
        }
    };
    let args = ServerArgs::of(&row.server_args);
    LlamaBenchTest {
        build_commit: row.harness_git_commit.clone(),
        build_number: 0,
        cpu_info: row.cpu_model.clone(),
        gpu_info: String::new(),
        backends: "CPU".into(),
        model_filename: row.model_file.clone(),
        model_type: format!(
            "{} {:.1}B {}",
            row.model_arch,
            row.model_n_params as f64 / 1e9,
            row.model_quant
        ),
        model_size: row.model_tensor_bytes,
        model_n_params: row.model_n_params,
        n_batch: args.batch,
        n_ubatch: args.ubatch,
        n_threads: row.threads,
        type_k: args.type_k,
        type_v: args.type_v,
        flash_attn: args.flash_attn,
        n_prompt,
        n_gen,
        n_depth: row.depth,
        test_time: row.timestamp_utc.clone(),
        avg_ns: ns(mean),
        stddev_ns: 0,
        avg_ts: mean,
        stddev_ts: sd.unwrap_or(0.0),
        samples_ns: samples_ts.iter().map(|&t| ns(t)).collect(),
        samples_ts,
    }
}

/// The llama-bench settings a row's server arguments set.
struct ServerArgs {
    batch: u32,
    ubatch: u32,
    type_k: String,
    type_v: String,
    flash_attn: i32,
}

impl ServerArgs {
    /// Reads `-b`, `-ub`, `-ctk`, `-ctv` and `-fa` (and their long forms) from the text of
    /// the `server_args` column; anything else is not a llama-bench setting.
    fn of(text: &str) -> ServerArgs {
        let mut out = ServerArgs {
            batch: 2048,
            ubatch: 512,
            type_k: "f16".into(),
            type_v: "f16".into(),
            flash_attn: -1,
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        for pair in words.windows(2) {
            let value = pair[1];
            match pair[0] {
                "-b" | "--batch-size" => out.batch = value.parse().unwrap_or(out.batch),
                "-ub" | "--ubatch-size" => out.ubatch = value.parse().unwrap_or(out.ubatch),
                "-ctk" | "--cache-type-k" => out.type_k = value.into(),
                "-ctv" | "--cache-type-v" => out.type_v = value.into(),
                "-fa" | "--flash-attn" => {
                    out.flash_attn = match value {
                        "on" | "1" | "true" => 1,
                        "off" | "0" | "false" => 0,
                        _ => -1,
                    }
                }
                _ => {}
            }
        }
        out
    }
}
