//! `bench validate`: the harness's fidelity check. It runs `llama-bench` (same threads,
//! `-n` equal to the harness's `n_predict`, `-r 5`) and the harness's own baseline
//! measurement alternately on the same model and prints the ratio of decode t/s per
//! round, so a systematic difference between the two shows up next to the noise.

use crate::engine::request::{CompletionRequest, Prompt};
use crate::engine::LaunchSpec;
use crate::llamacpp::client::Client;
use crate::llamacpp::server::{self, LaunchOptions, Server};
use crate::llamacpp::{self, Engine, EngineOptions};
use crate::measure::Sample;
use crate::util::output::{OutputArgs, Report, Table};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Arguments of `bench validate`.
#[derive(Debug, Clone, clap::Args)]
pub struct ValidateArgs {
    /// Model file (GGUF).
    #[arg(long)]
    pub model: PathBuf,
    /// Threads for both llama-bench and llama-server (default: physical cores).
    #[arg(long)]
    pub threads: Option<u32>,
    /// Tokens generated per request and per llama-bench test.
    #[arg(long, default_value_t = 128)]
    pub n_predict: u32,
    /// Alternating rounds (each: one llama-bench run with -r 5, five harness requests).
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Measure with an engine that fails the self-test (every row then says so).
    #[arg(long)]
    pub skip_self_test: bool,
    /// llama-server binary (llama-bench is taken from the same directory).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// Another measurement holds the machine's measurement lock: exit 4 at once instead of
    /// waiting for it (the lock file is /tmp/tpsbench-measure.lock, or $TPSBENCH_LOCK).
    #[arg(long)]
    pub no_wait: bool,
    /// Output format; json has the rounds and the mean ratio with its 95% CI.
    #[command(flatten)]
    pub output: OutputArgs,
    /// Also write the two tools' rates as two rows (`validate-harness`,
    /// `validate-llama-bench`) to a results CSV under results/ and to this database.
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
}

/// One round: both tools' decode t/s.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Round {
    /// llama-bench `avg_ts` of its tg test (tokens/s).
    pub llama_bench_tps: f64,
    /// Mean server-reported decode t/s of the harness's requests (tokens/s).
    pub harness_tps: f64,
}

impl Round {
    /// harness / llama-bench.
    pub fn ratio(&self) -> f64 {
        self.harness_tps / self.llama_bench_tps
    }
}

/// Runs `bench validate`.
pub fn validate_command(args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    std::fs::File::open(&args.model)
        .with_context(|| format!("cannot read model file {}", args.model.display()))?;
    crate::util::error::check_server_bin(args.server_bin.as_deref())?;
    let engine = llamacpp::ensure(
        &EngineOptions {
            server_bin: args.server_bin.clone(),
            profile_server_bin: None,
            allow_install: true,
            skip_self_test: args.skip_self_test,
        },
        &crate::selftest::SelfTest::default(),
    )
    .map_err(crate::util::error::environment)?;
    let bench_bin = engine
        .bench_bin
        .clone()
        .with_context(|| format!("no llama-bench next to {}", engine.server_bin.display()))
        .map_err(crate::util::error::environment)?;
    let threads = args
        .threads
        .unwrap_or(crate::hardware::physical_cores().max(1) as u32);
    let rounds =
        run_rounds(&engine, &bench_bin, args, threads).map_err(crate::util::error::environment)?;
    let text = Report::from(table(&rounds)).render(args.output.format(), &report(&rounds))?;
    crate::util::output::print(&text)?;
    if let Some(db) = &args.db {
        let host = super::prepare::host_name();
        let rates = super::validate_rows::Rates {
            harness: rounds.iter().map(|r| r.harness_tps).collect(),
            llama_bench: rounds.iter().map(|r| r.llama_bench_tps).collect(),
        };
        let rows = super::validate_rows::rows(&args.model, threads, args.n_predict, rates, |r| {
            r.host = host.clone();
            super::settings::stamp_engine(r, &engine);
        });
        let dir = crate::results::default_dir();
        let csv = super::validate_rows::write(&dir, &host, db, &rows)?;
        eprintln!("rows: {} and {}", csv.display(), db.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Alternates llama-bench and the harness `args.rounds` times.
pub fn run_rounds(
    engine: &Engine,
    bench_bin: &Path,
    args: &ValidateArgs,
    threads: u32,
) -> anyhow::Result<Vec<Round>> {
    let mut rounds = Vec::new();
    for i in 0..args.rounds {
        eprintln!("round {} of {}: llama-bench", i + 1, args.rounds);
        let llama_bench_tps = llama_bench_tps(bench_bin, &args.model, threads, args.n_predict)?;
        eprintln!("round {} of {}: harness", i + 1, args.rounds);
        let harness_tps = harness_tps(engine, &args.model, threads, args.n_predict)?;
        eprintln!("  llama-bench {llama_bench_tps:.2} t/s, harness {harness_tps:.2} t/s");
        rounds.push(Round {
            llama_bench_tps,
            harness_tps,
        });
    }
    Ok(rounds)
}

/// `llama-bench -m MODEL -t T -p 0 -n N -r 5 -o json`: the tg test's mean t/s.
pub fn llama_bench_tps(
    bench_bin: &Path,
    model: &Path,
    threads: u32,
    n_predict: u32,
) -> anyhow::Result<f64> {
    let out = Command::new(bench_bin)
        .arg("-m")
        .arg(model)
        .args([
            "-t",
            &threads.to_string(),
            "-p",
            "0",
            "-n",
            &n_predict.to_string(),
            "-r",
            "5",
            "-o",
            "json",
        ])
        .output()
        .with_context(|| format!("running {}", bench_bin.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            bench_bin.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    parse_llama_bench_json(&String::from_utf8_lossy(&out.stdout))
}

/// The `avg_ts` of the generation test in llama-bench's JSON output.
pub fn parse_llama_bench_json(text: &str) -> anyhow::Result<f64> {
    let tests: serde_json::Value =
        serde_json::from_str(text.trim()).context("llama-bench printed no JSON")?;
    let tg = tests
        .as_array()
        .and_then(|a| a.iter().find(|t| t["n_gen"].as_u64().unwrap_or(0) > 0))
        .context("llama-bench JSON has no generation test")?;
    tg["avg_ts"]
        .as_f64()
        .context("llama-bench JSON has no avg_ts")
}

/// The harness's baseline measurement: a server, one warm-up, five timed requests.
pub fn harness_tps(
    engine: &Engine,
    model: &Path,
    threads: u32,
    n_predict: u32,
) -> anyhow::Result<f64> {
    let mut spec = LaunchSpec::new(model);
    spec.threads = threads;
    spec.ctx = (n_predict + 64).max(512);
    let log = std::env::temp_dir().join(format!("tpsbench-validate-{}.log", std::process::id()));
    let bytes = std::fs::metadata(model).map(|m| m.len()).unwrap_or(0);
    let server = Server::launch_engine(
        engine,
        &spec,
        &LaunchOptions::new(&log, server::startup_timeout_for(bytes)),
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let client = Client::new(&server.base_url())?;
        // A one-token prompt, as llama-bench's tg test decodes from an almost empty context.
        let req = CompletionRequest::new(Prompt::Text("Hello".into()), n_predict);
        client.complete(&req).await?;
        let mut tps = Vec::new();
        for _ in 0..5 {
            let rec = client.complete(&req).await?;
            tps.extend(rec.to_raw().metrics().decode_tps_server);
        }
        anyhow::Ok(tps)
    });
    let _ = server.stop();
    let tps = result?;
    Ok(Sample::new(&tps)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .mean())
}

/// What `bench validate --json` prints.
#[derive(Debug, serde::Serialize)]
pub struct ValidateReport {
    /// Every round, in order.
    pub rounds: Vec<Round>,
    /// Mean of the rounds' harness / llama-bench ratios.
    pub mean_ratio: Option<f64>,
    /// 95% confidence interval of that mean (two rounds at least).
    pub ratio_ci95: Option<(f64, f64)>,
}

/// The rounds with the mean ratio and its interval.
pub fn report(rounds: &[Round]) -> ValidateReport {
    let ratios: Vec<f64> = rounds.iter().map(Round::ratio).collect();
    let summary = Sample::new(&ratios).ok().map(|s| s.summary());
    ValidateReport {
        rounds: rounds.to_vec(),
        mean_ratio: summary.as_ref().map(|s| s.mean),
        ratio_ci95: summary.and_then(|s| s.ci95_low.zip(s.ci95_high)),
    }
}

/// The rounds as a table, the mean ratio with its interval as its note.
pub fn table(rounds: &[Round]) -> Table {
    let mut t =
        Table::new(["round", "llama-bench t/s", "harness t/s", "ratio"]).right_aligned(0..4);
    for (i, r) in rounds.iter().enumerate() {
        t.push(vec![
            (i + 1).to_string(),
            format!("{:.2}", r.llama_bench_tps),
            format!("{:.2}", r.harness_tps),
            format!("{:.3}", r.ratio()),
        ]);
    }
    let r = report(rounds);
    if let Some(mean) = r.mean_ratio {
        let ci = r
            .ratio_ci95
            .map_or_else(String::new, |(lo, hi)| format!(" (95% CI {lo:.3}-{hi:.3})"));
        t.note(format!("mean ratio harness / llama-bench: {mean:.3}{ci}"));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_generation_test_of_llama_bench_json() {
        let json = r#"[{"n_prompt": 0, "n_gen": 128, "avg_ts": 47.25, "stddev_ts": 0.4}]"#;
        assert_eq!(parse_llama_bench_json(json).unwrap(), 47.25);
        assert!(parse_llama_bench_json("[]").is_err());
        assert!(parse_llama_bench_json("not json").is_err());
    }

    #[test]
    fn the_json_report_has_every_round_and_the_mean_ratio() {
        let round = |llama_bench_tps, harness_tps| Round {
            llama_bench_tps,
            harness_tps,
        };
        // Ratios 0.9, 1.0, 1.1: mean 1.0, sd 0.1, 95% CI 1.0 -/+ 4.303 * 0.1 / sqrt(3).
        let rounds = [round(50.0, 45.0), round(40.0, 40.0), round(20.0, 22.0)];
        let json = serde_json::to_value(report(&rounds)).unwrap();
        assert_eq!(json["rounds"].as_array().unwrap().len(), 3);
        assert_eq!(json["rounds"][0]["llama_bench_tps"], 50.0);
        assert!((json["mean_ratio"].as_f64().unwrap() - 1.0).abs() < 1e-12);
        let half = 4.302_652_7 * 0.1 / 3f64.sqrt();
        let lo = json["ratio_ci95"][0].as_f64().unwrap();
        assert!((lo - (1.0 - half)).abs() < 1e-6, "{json}");
        let one = report(&rounds[..1]);
        assert_eq!((one.mean_ratio, one.ratio_ci95), (Some(0.9), None));
    }

    #[test]
    fn table_markdown_csv_and_json_hold_the_same_rounds() {
        use crate::util::output::Format;
        let rounds = [
            Round {
                llama_bench_tps: 50.0,
                harness_tps: 45.0,
            },
            Round {
                llama_bench_tps: 40.0,
                harness_tps: 40.0,
            },
        ];
        let t = table(&rounds);
        let json: serde_json::Value = serde_json::from_str(
            &Report::from(t.clone())
                .render(Format::Json, &report(&rounds))
                .unwrap(),
        )
        .unwrap();
        let csv = t.csv().unwrap();
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let csv_rows: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect();
        let md = t.markdown();
        // The header row first, as the CSV reader takes it.
        let md_rows = crate::util::output::markdown_cells(&md)[1..].to_vec();
        assert_eq!(md_rows, csv_rows);
        for (i, row) in csv_rows.iter().enumerate() {
            let j = &json["rounds"][i];
            assert_eq!(
                row[1],
                format!("{:.2}", j["llama_bench_tps"].as_f64().unwrap())
            );
            assert_eq!(row[2], format!("{:.2}", j["harness_tps"].as_f64().unwrap()));
            let terminal = t.terminal();
            assert!(
                row.iter().all(|c| terminal.contains(c.as_str())),
                "{terminal}"
            );
        }
        assert_eq!(csv_rows[0], ["1", "50.00", "45.00", "0.900"]);
        let mean = format!("{:.3}", json["mean_ratio"].as_f64().unwrap());
        assert!(md.contains(&mean) && t.terminal().contains(&mean), "{md}");
    }

    #[test]
    fn the_terminal_table_is_a_right_aligned_grid_with_the_mean_below() {
        let rounds = [
            Round {
                llama_bench_tps: 50.0,
                harness_tps: 45.0,
            },
            Round {
                llama_bench_tps: 40.0,
                harness_tps: 40.0,
            },
        ];
        // Ratios 0.9 and 1.0: mean 0.95, 95% CI 0.95 -/+ 12.706 * 0.0707 / sqrt(2).
        let expected = "\
┌───────┬─────────────────┬─────────────┬───────┐
│ round ┆ llama-bench t/s ┆ harness t/s ┆ ratio │
╞═══════╪═════════════════╪═════════════╪═══════╡
│     1 ┆           50.00 ┆       45.00 ┆ 0.900 │
│     2 ┆           40.00 ┆       40.00 ┆ 1.000 │
└───────┴─────────────────┴─────────────┴───────┘
mean ratio harness / llama-bench: 0.950 (95% CI 0.315-1.585)
";
        assert_eq!(table(&rounds).terminal(), expected);
    }
}
