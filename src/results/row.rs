//! One CSV row per cell: the versioned schema of a run's results.
//!
//! Every column is a plain scalar (csv cannot flatten nested structs), the first column is
//! [`SCHEMA_VERSION`], and every field's `///` says its unit. An empty cell in the CSV means
//! "not applicable or not measured" (an `Option` that is `None`); numbers are never `NaN`.
//! The column list in the README (docs/readme/results.md) is generated from these doc
//! comments by `results::column_docs` and checked by a test, so the two cannot drift apart.

pub use crate::measure::Difference;
use crate::mode::Mode;
use serde::{Deserialize, Serialize};

/// Version of the CSV and JSONL layout. Bump it whenever a column is added, removed,
/// renamed or changes meaning, and list added columns in the reader's `ADDED` table;
/// readers refuse files older than `OLDEST_READABLE` or newer than this.
pub const SCHEMA_VERSION: u32 = 5;

/// How the reason's note of a cell measured on a machine that was not quiet begins.
pub const NOISY_NOTE: &str = "noisy: ";

/// The oldest schema version this tpsbench reads.
pub const OLDEST_READABLE: u32 = 2;

/// Where a row came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Measured by tpsbench.
    #[default]
    Tpsbench,
    /// Imported from llama-bench output by `bench import`.
    LlamaBench,
}

/// What became of a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Measured; the statistics columns are filled.
    #[default]
    Ok,
    /// The server crashed, never became healthy, stalled, or a request failed; see `reason`.
    Failed,
    /// Never launched (e.g. insufficient memory, mode not applicable); see `reason`.
    Skipped,
    /// The run was stopped (Ctrl-C) during this cell; `--resume` measures it again.
    Interrupted,
    /// The mode did not take effect (no drafted tokens, wrong expert count): never a speed.
    ModeNotEffective,
}

impl Status {
    /// The word written in the CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Interrupted => "interrupted",
            Status::ModeNotEffective => "mode-not-effective",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The identity of a cell: what was measured, under which configuration. Two rows with the
/// same key measured the same thing; `--resume` skips keys that already have a finished row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct CellKey {
    /// Profile role name (e.g. `hot-chat`, `code`, `draft`).
    pub role: String,
    /// File name of the target model (no directory), e.g. `qwen2.5-7b-q4_k_m.gguf`.
    pub model_file: String,
    /// GGUF `general.architecture` (e.g. `qwen2`, `qwen3moe`).
    pub model_arch: String,
    /// Total parameter count of the model (count, from the GGUF tensor shapes).
    pub model_n_params: u64,
    /// Quantization label (e.g. `Q4_K_M`, or the dominant tensor type).
    pub model_quant: String,
    /// Bytes of all tensor data in the GGUF file(s) (bytes).
    pub model_tensor_bytes: u64,
    /// Acceleration mode as the profile writes it (`baseline`, `spec:16`, `lookup`, `moe:4`, `moe:4+spec:16`).
    pub mode: Mode,
    /// Workload name (`chat`, `code-edit`, `summarize`, or a custom one).
    pub workload: String,
    /// Parallel server slots and concurrent clients (count, `-np`).
    pub parallel: u32,
    /// Context size given to the server (tokens, `-c`).
    pub ctx: u32,
    /// Threads given to the server (count, `-t`).
    pub threads: u32,
    /// Tokens already in the context when decode is measured (tokens; llama-bench's `-d`).
    #[serde(default)]
    pub depth: u32,
    /// Extra llama-server arguments, verbatim, space-separated (text; empty = none).
    #[serde(default)]
    pub server_args: String,
    /// The load a serving cell was measured under (text: `rate 2 rps`, `rate 2 rps
    /// burstiness 0.5`, `concurrency 4`); empty for a cell of repeated batches.
    #[serde(default)]
    pub load: String,
    /// The phase of a deployment cell (`alone`: the role served while the deployment's other
    /// servers stay resident and idle; `together`: every role served at once); empty for a
    /// cell outside a deployment.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub deploy_phase: String,
    /// The round of a deployment cell (1-based; `None` outside a deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_round: Option<u32>,
}

impl std::fmt::Display for CellKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} {} {} np={} ctx={} t={}",
            self.role,
            self.model_file,
            self.mode,
            self.workload,
            self.parallel,
            self.ctx,
            self.threads
        )?;
        if self.depth > 0 {
            write!(f, " d={}", self.depth)?;
        }
        if !self.server_args.is_empty() {
            write!(f, " [{}]", self.server_args)?;
        }
        Ok(())
    }
}

/// One row of the results CSV: one cell (role's model x mode x workload x parallel slots).
/// The field order is the column order; `schema_version` must stay first. Columns absent
/// from a file (one of an older schema version) read as their defaults.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ResultRow {
    /// Layout version of this file (integer; equals `SCHEMA_VERSION` of the writer).
    pub schema_version: u32,
    /// Outcome: `ok`, `failed`, `skipped`, `interrupted` or `mode-not-effective`.
    pub status: Status,
    /// Why the cell is not `ok` (text; for failures ends with the tail of the server log), else empty.
    pub reason: String,
    /// When the cell ended (UTC, RFC 3339, seconds).
    pub timestamp_utc: String,

    // ---- cell key ----
    /// Profile role name (e.g. `hot-chat`, `code`).
    pub role: String,
    /// File name of the target model (no directory).
    pub model_file: String,
    /// GGUF `general.architecture` of the model (text).
    pub model_arch: String,
    /// Total parameters of the model (count).
    pub model_n_params: u64,
    /// Quant of the model file (text, e.g. `Q4_K_M`, from `general.file_type`); the profile's label for a role skipped without a file.
    pub model_quant: String,
    /// Bytes of tensor data in the model's GGUF file(s) (bytes).
    pub model_tensor_bytes: u64,
    /// Acceleration mode (text: `baseline`, `spec:K`, `lookup[:TYPE]`, `moe:N`, joined with `+`).
    pub mode: Mode,
    /// Workload name (text).
    pub workload: String,
    /// Parallel slots = concurrent clients (count).
    pub parallel: u32,
    /// Context size of the server (tokens).
    pub ctx: u32,
    /// Server threads (count; 0 when not known: a server measured with `--server-url`).
    pub threads: u32,
    /// Tokens already in the context when decode is measured (tokens; 0 = an empty context).
    pub depth: u32,
    /// Extra llama-server arguments, verbatim, space-separated (text; empty = none).
    pub server_args: String,
    /// The load a serving cell was measured under (text: `rate 2 rps`, `rate 2 rps burstiness 0.5`, `concurrency 4`); empty for a cell of repeated batches.
    pub load: String,
    /// The phase of a deployment cell (text: `alone`, the role served while the deployment's other servers stay resident and idle; `together`, every role served at once); empty outside a deployment.
    pub deploy_phase: String,
    /// Round of (alone, together) phases a deployment cell was measured in (count, 1-based; empty outside a deployment).
    pub deploy_round: Option<u32>,
    /// File name of the draft model for `spec:K` modes (no directory), else empty.
    pub draft_model_file: String,

    // ---- decode speed, server-reported, over the timed repetitions ----
    /// Mean decode speed as the server reports it, (predicted_n - 1) / predicted_ms (the first token comes from the prompt), over repetitions of batch means (tokens/s).
    pub decode_tps_mean: Option<f64>,
    /// Median decode speed (tokens/s).
    pub decode_tps_median: Option<f64>,
    /// Sample standard deviation of decode speed, n-1 denominator (tokens/s).
    pub decode_tps_sd: Option<f64>,
    /// Lower bound of the 95% Student-t confidence interval of the mean decode speed (tokens/s).
    pub decode_tps_ci95_low: Option<f64>,
    /// Upper bound of the 95% Student-t confidence interval of the mean decode speed (tokens/s).
    pub decode_tps_ci95_high: Option<f64>,
    /// Slowest repetition (tokens/s).
    pub decode_tps_min: Option<f64>,
    /// Fastest repetition (tokens/s).
    pub decode_tps_max: Option<f64>,
    /// Timed repetitions, warm-up excluded (count; with parallel > 1, batches of parallel requests).
    pub n_reps: u32,
    /// Server launches whose timed repetitions this row pools (count).
    pub launches: u32,
    /// Launch-to-launch coefficient of variation of the mean decode speed, part of this row's decode and speedup intervals: a baseline's from its own launches (method of moments, 0 when they agree within their noise), an accelerated cell's from its baseline (fraction; empty with one launch).
    pub between_launch_cv: Option<f64>,
    /// Repetitions flagged as outliers by the median-absolute-deviation rule (count; kept in the statistics).
    pub n_outliers: u32,

    // ---- other per-request metrics (means over repetitions) ----
    /// Mean decode speed as the client sees it: tokens after the first chunk / time from first to last token (tokens/s).
    pub client_decode_tps_mean: Option<f64>,
    /// Mean prompt processing speed, server prompt_n / prompt_ms (tokens/s).
    pub prefill_tps_mean: Option<f64>,
    /// Mean time to first token, from request sent to the first chunk carrying a token (milliseconds).
    pub ttft_ms_mean: Option<f64>,
    /// Median inter-token latency over all repetitions, multi-token chunks spread evenly (milliseconds).
    pub itl_p50_ms: Option<f64>,
    /// 90th percentile inter-token latency (milliseconds).
    pub itl_p90_ms: Option<f64>,
    /// 99th percentile inter-token latency (milliseconds).
    pub itl_p99_ms: Option<f64>,
    /// Median time of one decoding step: the gap between stream chunks, several tokens when drafts are accepted (milliseconds).
    pub step_ms_p50: Option<f64>,
    /// 99th percentile time of one decoding step (milliseconds).
    pub step_ms_p99: Option<f64>,
    /// Mean end-to-end latency, request sent to end of stream (milliseconds).
    pub e2e_ms_mean: Option<f64>,
    /// Mean aggregate decode speed over all slots for parallel > 1: sum of generated tokens / wall time of the batch (tokens/s); empty for parallel = 1.
    pub aggregate_tps: Option<f64>,

    // ---- speculative decoding ----
    /// Drafted tokens, summed over timed repetitions (count; empty when the mode does not draft).
    pub draft_n: Option<u64>,
    /// Drafted tokens the target accepted, summed over timed repetitions (count).
    pub draft_accepted: Option<u64>,
    /// Draft acceptance, draft_accepted / draft_n (fraction 0..1).
    pub acceptance: Option<f64>,

    // ---- against the same model's baseline cell of the same run ----
    /// Speedup over the baseline: with `speedup_pairs`, the geometric mean of the ratios of alternating accelerated and baseline requests; else mean decode t/s of this cell / that of the baseline cell (ratio; empty for baseline).
    pub speedup: Option<f64>,
    /// Lower bound of the 95% CI of the speedup: a t interval over the pairs' log ratios when paired, else Welch on the log scale (ratio).
    pub speedup_ci95_low: Option<f64>,
    /// Upper bound of the 95% CI of the speedup (ratio).
    pub speedup_ci95_high: Option<f64>,
    /// Pairs of alternating baseline and accelerated repetitions behind the speedup interval (count; empty when the two came from separate launches).
    pub speedup_pairs: Option<u32>,
    /// Token ids identical to the baseline's for the same prompt (true/false; false is expected for `moe:N`; empty for baseline or without a baseline).
    pub lossless: Option<bool>,
    /// Share of token positions identical to the baseline's (fraction 0..1; empty for baseline).
    pub agreement_share: Option<f64>,
    /// First token position (0-based) where the output differs from the baseline's (index; empty when identical).
    pub first_difference: Option<u64>,
    /// The baseline's probability of its top token minus that of its second at `first_difference` (fraction 0..1; empty when identical or not known).
    pub first_difference_margin: Option<f64>,
    /// How the output differs: `near-tie` (a rounding flip at a margin under 0.05, lossless up to rounding) or `lossy` (text; empty when identical).
    pub difference: Option<Difference>,

    // ---- provenance ----
    /// Where the row came from: `tpsbench` (measured by this tool) or `llama-bench` (imported by `bench import`).
    pub source: Source,
    /// URL of an already-running server measured with `--server-url` (text; empty when tpsbench launched the server).
    pub server_url: String,

    // ---- machine fingerprint (bench hw) ----
    /// Host name (text; with `--server-url` on a host that is not loopback, that host, and the other machine columns empty).
    pub host: String,
    /// CPU model name (text).
    pub cpu_model: String,
    /// Physical CPU cores (count).
    pub physical_cores: u32,
    /// Logical CPUs (count).
    pub logical_cores: u32,
    /// Total RAM (GiB).
    pub ram_gib: f64,
    /// ISA summary (text, e.g. `avx2 fma f16c` or `neon dotprod`).
    pub isa: String,
    /// Best measured memory read bandwidth: the fastest pass of about 1 ms, the roofline's denominator (GB/s, 10^9 bytes per second).
    pub bandwidth_gbps: Option<f64>,
    /// The bandwidth figure that holds still: the median rate of blocks of consecutive passes spanning at least 25 ms each, at its best thread count (GB/s; empty when not measured).
    pub bandwidth_centre_gbps: Option<f64>,
    /// Spread of those block rates: interquartile range over their median (percent; empty when not measured).
    pub bandwidth_spread_pct: Option<f64>,

    // ---- engine and harness identity ----
    /// First line of `llama-server --version` (text; with `--server-url`, `llama-server build B (remote)` from its /props `build_info`).
    pub engine_version: String,
    /// Version of the managed engine package (text, e.g. `11434.0.0`), else empty.
    pub engine_package_version: String,
    /// SHA-256 of the llama-server binary (hex; `unknown` with `--server-url`).
    pub engine_server_sha256: String,
    /// Engine build / system info line (text).
    pub engine_system_info: String,
    /// SHA-256 over llama-server and every llama.cpp library it loads (hex; `unknown` with `--server-url`).
    pub engine_sha256: String,
    /// Build variant of the managed engine (`native`, `native-no-amx`, `portable`), `remote` with `--server-url`, else empty.
    pub engine_variant: String,
    /// The engine's self-test (text: `passed (N models, S s)`, `skipped (--skip-self-test)`, or `not run (a running server)` with `--server-url`).
    pub engine_self_test: String,
    /// tpsbench version (text, Cargo package version).
    pub harness_version: String,
    /// Git commit of the harness build (hex, `-dirty` suffix when modified), else empty.
    pub harness_git_commit: String,
    /// Profile name (text).
    pub profile: String,
    /// SHA-256 of the profile file's content (hex).
    pub profile_hash: String,

    // ---- model facts ----
    /// Size of the model file(s) on disk (bytes).
    pub model_file_bytes: u64,
    /// Tensor bytes per ggml type, largest first (text, e.g. `Q4_K:3.9GB;Q6_K:0.8GB`, GB = 10^9 bytes).
    pub quant_mix: String,
    /// Parameters active per token: all for dense, shared + used experts for MoE (count).
    pub active_params: u64,
    /// Weight bytes read per generated token: all for dense, shared + used experts for MoE (bytes).
    pub active_bytes_per_token: u64,
    /// The model is a synthetic shape-exact stand-in made by `bench synth` (true/false).
    pub synthetic: bool,

    // ---- expectations ----
    /// Lower end of the guide's expected decode speed for this size and quant (tokens/s).
    pub guide_expected_low_tps: Option<f64>,
    /// Upper end of the guide's expected decode speed (tokens/s).
    pub guide_expected_high_tps: Option<f64>,
    /// Roofline decode speed: bandwidth_gbps * 10^9 / active_bytes_per_token (tokens/s).
    pub roofline_tps: Option<f64>,
    /// Measured share of the roofline: decode_tps_mean / roofline_tps (fraction).
    pub roofline_share: Option<f64>,

    // ---- overhead and startup ----
    /// Harness CPU time during measurement as a share of the server's CPU time (percent).
    pub client_cpu_pct: Option<f64>,
    /// CPU time of processes other than the harness and its servers while the cell was measured, from /proc/stat (percent of one core; above the run's `--foreign-threshold` the reason starts with `noisy:`; empty when not sampled).
    pub foreign_cpu_pct: Option<f64>,
    /// Time the hypervisor ran something else while a virtual CPU was ready, while the cell was measured (percent of the machine's CPU time; empty when not sampled).
    pub steal_pct: Option<f64>,
    /// Model load time as the server's log reports it (milliseconds).
    pub server_load_ms: Option<f64>,
    /// From spawning the server to the first healthy /health answer (milliseconds).
    pub launch_to_ready_ms: Option<f64>,

    // ---- workload ----
    /// Prompt length (tokens, as the server counted them: prompt_n).
    pub prompt_tokens: Option<u32>,
    /// Tokens generated per request (tokens; `n_predict`, with `ignore_eos`).
    pub n_predict: u32,

    // ---- serving under load (cells with a `load`; empty otherwise) ----
    /// Offered arrival rate of an open-loop cell (requests/s).
    pub load_rate_rps: Option<f64>,
    /// Clients of a closed-loop cell, each sending its next request when its last finished (count).
    pub load_clients: Option<u32>,
    /// Shape of the gaps between arrivals: 1 = Poisson, below 1 burstier, above 1 more regular (gamma shape; open loop only).
    pub load_burstiness: Option<f64>,
    /// Seed of the arrival schedule and the prompt picks (integer).
    pub load_seed: Option<u64>,
    /// Wall time of the phase, first scheduled send to last response (seconds).
    pub load_wall_s: Option<f64>,
    /// Latency targets a request must meet to count as goodput (text: `ttft=2000ms,tpot=100ms`), empty = none.
    pub slo: String,
    /// Requests sent (count; failed and timed-out ones included).
    pub requests_sent: Option<u32>,
    /// Requests that completed (count).
    pub requests_completed: Option<u32>,
    /// Requests that failed or timed out (count; in every share's denominator).
    pub requests_failed: Option<u32>,
    /// Completed requests per second of wall time (requests/s).
    pub achieved_rps: Option<f64>,
    /// Output tokens per second of wall time, all requests together (tokens/s).
    pub output_tps: Option<f64>,
    /// Prompt and output tokens per second of wall time (tokens/s).
    pub total_tps: Option<f64>,
    /// Time to first token from the scheduled send, mean (milliseconds).
    pub load_ttft_ms_mean: Option<f64>,
    /// Time to first token from the scheduled send, median (milliseconds).
    pub load_ttft_ms_p50: Option<f64>,
    /// Time to first token from the scheduled send, 90th percentile (milliseconds).
    pub load_ttft_ms_p90: Option<f64>,
    /// Time to first token from the scheduled send, 99th percentile (milliseconds).
    pub load_ttft_ms_p99: Option<f64>,
    /// Time per output token after the first, mean (milliseconds).
    pub tpot_ms_mean: Option<f64>,
    /// Time per output token after the first, median (milliseconds).
    pub tpot_ms_p50: Option<f64>,
    /// Time per output token after the first, 90th percentile (milliseconds).
    pub tpot_ms_p90: Option<f64>,
    /// Time per output token after the first, 99th percentile (milliseconds).
    pub tpot_ms_p99: Option<f64>,
    /// End-to-end latency from the scheduled send, median (milliseconds).
    pub e2e_ms_p50: Option<f64>,
    /// End-to-end latency from the scheduled send, 90th percentile (milliseconds).
    pub e2e_ms_p90: Option<f64>,
    /// End-to-end latency from the scheduled send, 99th percentile (milliseconds).
    pub e2e_ms_p99: Option<f64>,
    /// Queueing delay: scheduled send to first byte less the server's prefill time, mean (milliseconds).
    pub queue_ms_mean: Option<f64>,
    /// Queueing delay, median (milliseconds).
    pub queue_ms_p50: Option<f64>,
    /// Queueing delay, 90th percentile (milliseconds).
    pub queue_ms_p90: Option<f64>,
    /// Queueing delay, 99th percentile (milliseconds).
    pub queue_ms_p99: Option<f64>,
    /// Requests per second that met every latency target (requests/s).
    pub goodput_rps: Option<f64>,
    /// Share of sent requests that met every latency target (fraction 0-1).
    pub goodput_share: Option<f64>,
    /// The generator's own CPU time per request (milliseconds).
    pub generator_cpu_ms_per_request: Option<f64>,
    /// The generator's CPU time over the phase's wall time (fraction of one core).
    pub generator_core_share: Option<f64>,
    /// Why the generator could not keep its schedule (text: the send lag), empty when it did.
    pub behind_schedule: String,
    /// The queueing delay grew through the phase instead of settling: the server was over-saturated.
    pub saturated: Option<bool>,
    /// `--find-max-rate`: the highest arrival rate whose goodput share met the target (requests/s).
    pub max_rate_rps: Option<f64>,
    /// Lower end of the max rate's interval: the highest rate measured that met the target (requests/s).
    pub max_rate_low: Option<f64>,
    /// Upper end of the max rate's interval: the lowest rate measured that missed it (requests/s; empty when none missed).
    pub max_rate_high: Option<f64>,

    // ---- deployments (`bench run --deployment`) ----
    /// The deployment this row belongs to (text: `deploy-<UTC timestamp>`): every row of one deployment run shares it.
    pub deployment_id: String,
    /// The roles of the deployment, joined with `+` (text).
    pub deploy_roles: String,
    /// CPUs the role's server was confined to (text, Linux list format `0-23,48-71`); empty when not pinned.
    pub cpus: String,
    /// The machine's read bandwidth with as many readers as this role's server has threads (GB/s; the measured point, else the best).
    pub role_bandwidth_gbps: Option<f64>,
    /// The machine's read bandwidth with as many readers as the whole deployment has threads, at most the cores (GB/s).
    pub deploy_bandwidth_gbps: Option<f64>,
    /// A WARM role's start: launch to the first token of its first request (milliseconds).
    pub first_token_after_launch_ms: Option<f64>,
    /// A WARM role's start: share of the model file's pages in the page cache when the launch began (fraction 0-1).
    pub resident_before: Option<f64>,
    /// A WARM role's start: the model file's bytes over launch to ready (GB/s).
    pub load_read_gbps: Option<f64>,
    /// A WARM role's cold start: the storage's read rate for the model file, read once from the start after eviction (GB/s).
    pub storage_read_gbps: Option<f64>,
}

impl ResultRow {
    /// The cell key of this row.
    pub fn key(&self) -> CellKey {
        CellKey {
            role: self.role.clone(),
            model_file: self.model_file.clone(),
            model_arch: self.model_arch.clone(),
            model_n_params: self.model_n_params,
            model_quant: self.model_quant.clone(),
            model_tensor_bytes: self.model_tensor_bytes,
            mode: self.mode.clone(),
            workload: self.workload.clone(),
            parallel: self.parallel,
            ctx: self.ctx,
            threads: self.threads,
            depth: self.depth,
            server_args: self.server_args.clone(),
            load: self.load.clone(),
            deploy_phase: self.deploy_phase.clone(),
            deploy_round: self.deploy_round,
        }
    }

    /// A row for `key` with the schema version set and everything else empty; the driver
    /// fills the rest.
    pub fn for_key(key: &CellKey, status: Status) -> ResultRow {
        ResultRow {
            schema_version: SCHEMA_VERSION,
            status,
            ..ResultRow::default()
        }
        .with_key(key)
    }

    /// This row with the cell key's columns of `key` (the others unchanged): a row stamped
    /// with a run's fixed columns becomes the row of one cell.
    pub fn with_key(self, key: &CellKey) -> ResultRow {
        ResultRow {
            role: key.role.clone(),
            model_file: key.model_file.clone(),
            model_arch: key.model_arch.clone(),
            model_n_params: key.model_n_params,
            model_quant: key.model_quant.clone(),
            model_tensor_bytes: key.model_tensor_bytes,
            mode: key.mode.clone(),
            workload: key.workload.clone(),
            parallel: key.parallel,
            ctx: key.ctx,
            threads: key.threads,
            depth: key.depth,
            server_args: key.server_args.clone(),
            load: key.load.clone(),
            deploy_phase: key.deploy_phase.clone(),
            deploy_round: key.deploy_round,
            ..self
        }
    }

    /// The cell as charts and tables name it: `role mode workload np=N` (with ` t=T` when
    /// `threads`, ` d=D` at a depth), and ` [LOSSY]` or ` [near-tie]` when its output
    /// differed from the baseline's.
    pub fn label(&self, threads: bool) -> String {
        let mut s = format!(
            "{} {} {} np={}",
            self.role, self.mode, self.workload, self.parallel
        );
        if threads {
            s += &format!(" t={}", self.threads);
        }
        if self.depth > 0 {
            s += &format!(" d={}", self.depth);
        }
        if !self.load.is_empty() {
            s += &format!(" {}", self.load);
        }
        if let Some(mark) = self.output_mark() {
            s += &format!(" [{mark}]");
        }
        s
    }

    /// `LOSSY` or `near-tie` for an accelerated cell whose output differed from its
    /// baseline's.
    pub fn output_mark(&self) -> Option<&'static str> {
        match (self.lossless, self.difference) {
            (Some(false), Some(Difference::NearTie)) => Some("near-tie"),
            (Some(false), _) => Some("LOSSY"),
            _ => None,
        }
    }

    /// Measured while other processes took more CPU than the run's threshold: its reason
    /// carries a note that starts with [`NOISY_NOTE`].
    pub fn is_noisy(&self) -> bool {
        self.reason.split("; ").any(|n| n.starts_with(NOISY_NOTE))
    }

    /// A cell is finished (not measured again on `--resume`) unless it was interrupted.
    pub fn is_finished(&self) -> bool {
        self.status != Status::Interrupted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_names_role_mode_workload_slots_and_marks_its_output() {
        let mut r = ResultRow {
            role: "gemma".into(),
            mode: "spec:8".parse().unwrap(),
            workload: "chat".into(),
            parallel: 2,
            threads: 4,
            ..ResultRow::default()
        };
        assert_eq!(r.label(false), "gemma spec:8 chat np=2");
        r.depth = 4096;
        r.lossless = Some(false);
        assert_eq!(r.label(true), "gemma spec:8 chat np=2 t=4 d=4096 [LOSSY]");
        r.difference = Some(Difference::NearTie);
        assert!(r.label(false).ends_with("[near-tie]"));
    }
}
