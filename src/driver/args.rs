//! `bench run`'s command line in two stages, as ripgrep parses its own: [`RunArgs`] as
//! close to the command line as clap can hold it, then [`RunConfig`], the settings the rest
//! of the run works with, made once at the command's edge ([`RunArgs::config`]): the
//! choices that exclude each other become enums (a profile or model files; a new results
//! file, one to resume, or the default), and the bandwidth budget a clamped [`Duration`].

use super::workload::Workload;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `bench run`.
#[derive(Debug, Clone, PartialEq, clap::Args)]
#[command(group = clap::ArgGroup::new("what").required(true).multiple(true).args(["profile", "model", "server_url"]))]
pub struct RunArgs {
    /// Profile name (profiles/NAME.toml or the embedded copy; `bench profile list`) or path
    /// to a profile file.
    #[arg(long)]
    pub profile: Option<String>,
    /// A GGUF model to measure without a profile (repeatable): its quant, parameters and
    /// MoE shape are read from the file.
    #[arg(
        short = 'm',
        long = "model",
        value_name = "FILE",
        conflicts_with = "profile"
    )]
    pub model: Vec<PathBuf>,
    /// Draft model of the -m models' spec:K modes (measured on its own too).
    #[arg(long, value_name = "FILE", conflicts_with = "profile")]
    pub draft: Option<PathBuf>,
    /// Modes of the -m models, comma-separated: baseline, spec:K, lookup[:TYPE], moe:N, and
    /// combinations joined with `+` [default: baseline, and spec:8 with --draft].
    #[arg(long, value_delimiter = ',', conflicts_with = "profile")]
    pub modes: Option<Vec<crate::mode::Mode>>,
    /// Context per slot, tokens [default: the profile's; with -m 4096, or the model's own
    /// when smaller].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub ctx: Option<u32>,
    /// Directory the profile's model files are relative to.
    #[arg(long, env = "BENCH_MODELS_DIR", default_value = ".")]
    pub models_dir: PathBuf,
    /// Measure shape-exact synthetic stand-ins for roles whose model files are absent.
    #[arg(long)]
    pub synthetic: bool,
    /// Run only these roles of the profile, comma-separated (their drafts are still used).
    #[arg(long, value_delimiter = ',', conflicts_with = "model")]
    pub roles: Option<Vec<String>>,
    /// Result CSV (default: results/<profile>-<host>-<UTC timestamp>.csv).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Finish an interrupted run: append to this CSV, skipping cells it already holds.
    #[arg(long, conflicts_with = "out")]
    pub resume: Option<PathBuf>,
    /// Append every row to this results database too (SQLite; created when absent), with
    /// the raw lines of its cell: `bench history --db FILE` shows it across runs.
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Server thread counts, comma-separated (`1,2`); each is its own launch [default: the
    /// profile's `[engine] threads`, else the physical core count].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<Vec<u32>>,
    /// Context depths, comma-separated (`0,4096`): decode is measured after that many tokens
    /// of context, as llama-bench's -d [default: the profile's `[run] depth`, else 0].
    #[arg(long, value_delimiter = ',')]
    pub depth: Option<Vec<u32>>,
    /// An extra llama-server argument, checked against the engine's --help and passed
    /// verbatim after tpsbench's own (repeatable; split on whitespace, so `--server-arg
    /// "--numa distribute"` works); replaces the profile's `[engine] args`.
    #[arg(long = "server-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub server_arg: Vec<String>,
    /// Measure with an engine that fails the self-test (every row then says so).
    #[arg(long)]
    pub skip_self_test: bool,
    /// llama-server binary (wins over LLAMA_SERVER, the profile and discovery).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// Tokens generated per request (default: the profile's `[run] n_predict`).
    #[arg(long)]
    pub n_predict: Option<u32>,
    /// Workloads to run, comma-separated (default: the profile's `[run] workloads`).
    #[arg(long, value_delimiter = ',')]
    pub workloads: Option<Vec<Workload>>,
    /// Most timed repetitions per cell (default: the profile's).
    #[arg(long)]
    pub max_reps: Option<u32>,
    /// Seconds spent measuring memory bandwidth for the roofline.
    #[arg(long, default_value_t = DEFAULT_BW_SECONDS)]
    pub bw_seconds: f64,
    /// No progress display and no per-cell lines.
    #[arg(long, short)]
    pub quiet: bool,
    /// Measure speedups from separate launches (Welch over independent samples) instead of
    /// pairing each accelerated server with a baseline server beside it.
    #[arg(long)]
    pub unpaired: bool,
    /// Launch every baseline cell's server this many times in a row and pool their
    /// repetitions: the spread of the launches' means is the `between_launch_cv` column, and
    /// every speedup interval includes it. 1 measures one launch (no launch variation known).
    #[arg(long, default_value_t = DEFAULT_BASELINE_LAUNCHES, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub baseline_launches: u32,
    /// Measure an already-running llama-server at this URL (http://127.0.0.1:PORT) instead
    /// of launching one: nothing is launched or stopped; its build, model, slots and context
    /// come from its /props and /slots; modes it was not started with are skipped. Loopback
    /// hosts only, unless --allow-remote-host.
    #[arg(long, value_name = "URL", conflicts_with_all = ["threads", "server_arg", "server_bin", "skip_self_test", "unpaired", "synthetic", "baseline_launches"])]
    pub server_url: Option<String>,
    /// Accept a --server-url host that is not loopback (127.0.0.1, ::1, localhost): the
    /// measurement then includes the network between here and there.
    #[arg(long, requires = "server_url")]
    pub allow_remote_host: bool,
    /// What to do about a cell measured while other processes took more CPU than
    /// --foreign-threshold: `warn` marks it noisy (its reason and the table say so), `wait`
    /// waits before each cell until the machine is quiet (at most 120 s, then measures and
    /// warns), `refuse` fails it with the figure.
    #[arg(long, value_enum, default_value = "warn", value_name = "WHAT")]
    pub when_noisy: super::quiet::WhenNoisy,
    /// Other processes' CPU (percent of one core) above which a cell is noisy.
    #[arg(long, value_name = "PCT", default_value = "10", value_parser = super::quiet::parse_threshold)]
    pub foreign_threshold: f64,
    /// Another measurement holds the machine's measurement lock: exit 4 at once instead of
    /// waiting for it (the lock file is /tmp/tpsbench-measure.lock, or $TPSBENCH_LOCK).
    #[arg(long)]
    pub no_wait: bool,
    /// Serving under load: arrival rates or clients instead of repeated batches.
    #[command(flatten)]
    pub load: super::serve::args::LoadArgs,
    /// Whole deployments: the roles resident at once.
    #[command(flatten)]
    pub deploy: super::deploy::args::DeployArgs,
}

/// `--baseline-launches` when not given.
pub const DEFAULT_BASELINE_LAUNCHES: u32 = 2;

/// `--bw-seconds` when not given.
pub const DEFAULT_BW_SECONDS: f64 = 1.0;

impl RunArgs {
    /// `bench run --profile NAME` with every other option at its default (the models
    /// directory from `BENCH_MODELS_DIR`, as on the command line).
    pub fn for_profile(name: &str) -> RunArgs {
        let models_dir = std::env::var_os("BENCH_MODELS_DIR")
            .filter(|d| !d.is_empty())
            .map_or_else(|| PathBuf::from("."), PathBuf::from);
        RunArgs {
            profile: Some(name.to_string()),
            model: Vec::new(),
            draft: None,
            modes: None,
            ctx: None,
            models_dir,
            synthetic: false,
            roles: None,
            out: None,
            resume: None,
            db: None,
            threads: None,
            depth: None,
            server_arg: Vec::new(),
            server_bin: None,
            skip_self_test: false,
            n_predict: None,
            workloads: None,
            max_reps: None,
            bw_seconds: DEFAULT_BW_SECONDS,
            quiet: false,
            unpaired: false,
            baseline_launches: DEFAULT_BASELINE_LAUNCHES,
            server_url: None,
            allow_remote_host: false,
            no_wait: false,
            when_noisy: super::quiet::WhenNoisy::Warn,
            foreign_threshold: super::quiet::DEFAULT_FOREIGN_THRESHOLD_PCT,
            load: super::serve::args::LoadArgs::default(),
            deploy: super::deploy::args::DeployArgs::default(),
        }
    }
}

/// What `bench run` was asked: [`RunArgs`] as settings. The inner steps take this (or the
/// values they need from it), never the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    /// What to measure.
    pub source: Source,
    /// Context per slot (tokens) of every role, replacing the profile's.
    pub ctx: Option<u32>,
    /// Directory the profile's model files are relative to.
    pub models_dir: PathBuf,
    /// Measure synthetic stand-ins for roles whose model files are absent.
    pub synthetic: bool,
    /// Only these roles of the profile.
    pub roles: Option<Vec<String>>,
    /// Where the rows go.
    pub output: Output,
    /// The results database the rows go to as well (`--db`).
    pub db: Option<PathBuf>,
    /// Server thread counts (`None`: the profile's, else the physical core count).
    pub threads: Option<Vec<u32>>,
    /// Context depths (`None`: the profile's).
    pub depths: Option<Vec<u32>>,
    /// Extra llama-server arguments as given, each split on whitespace later and checked
    /// against the engine (empty: the profile's).
    pub server_args: Vec<String>,
    /// Measure with an engine that fails the self-test.
    pub skip_self_test: bool,
    /// llama-server binary.
    pub server_bin: Option<PathBuf>,
    /// Tokens generated per request (`None`: the profile's).
    pub n_predict: Option<u32>,
    /// Workloads (`None`: the profile's).
    pub workloads: Option<Vec<Workload>>,
    /// Most timed repetitions per cell (`None`: the profile's).
    pub max_reps: Option<u32>,
    /// Time spent measuring memory bandwidth for the roofline (0.1 s to 60 s).
    pub bw_budget: Duration,
    /// No progress display and no per-cell lines.
    pub quiet: bool,
    /// Pair each accelerated server with a baseline server beside it.
    pub pair: bool,
    /// Launches of every baseline cell's server.
    pub baseline_launches: u32,
    /// A running server to measure instead of launching one.
    pub remote: Option<RemoteTarget>,
    /// What counts as a noisy cell and what to do about it.
    pub noise: super::quiet::QuietRule,
    /// Serving under load instead of repeated batches (`--rate`, `--concurrency`,
    /// `--find-max-rate`).
    pub load: Option<super::serve::args::LoadPlan>,
    /// What is wrong with the serving flags, reported before anything starts.
    pub load_problem: Option<String>,
    /// A whole deployment (`--deployment`).
    pub deploy: Option<super::deploy::args::DeployConfig>,
}

/// What a run measures: a profile, or the model files a profile is made from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A profile name or path.
    Profile(String),
    /// `-m` files (none with `--server-url`: the server's own), their draft and modes.
    Models {
        /// The GGUF files.
        models: Vec<PathBuf>,
        /// Draft model of their spec:K modes.
        draft: Option<PathBuf>,
        /// Their modes (`None`: the defaults).
        modes: Option<Vec<crate::mode::Mode>>,
    },
}

impl Source {
    /// The profile's name or path, when the run has one.
    pub fn profile(&self) -> Option<&str> {
        match self {
            Source::Profile(name) => Some(name),
            Source::Models { .. } => None,
        }
    }
}

/// Where a run's rows go.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// `results/<profile>-<host>-<UTC timestamp>.csv`.
    Default,
    /// A new file (`--out`).
    Create(PathBuf),
    /// An interrupted run's file, appended to (`--resume`).
    Resume(PathBuf),
}

impl Output {
    /// Whether the run finishes an interrupted one.
    pub fn resumes(&self) -> bool {
        matches!(self, Output::Resume(_))
    }
}

/// A running llama-server to measure (`--server-url`).
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteTarget {
    /// Its URL as given.
    pub url: String,
    /// Accept a host that is not loopback.
    pub allow_remote_host: bool,
}

impl RunArgs {
    /// The settings these arguments ask for.
    pub fn config(&self) -> RunConfig {
        let source = match &self.profile {
            Some(name) => Source::Profile(name.clone()),
            None => Source::Models {
                models: self.model.clone(),
                draft: self.draft.clone(),
                modes: self.modes.clone(),
            },
        };
        let output = match (&self.resume, &self.out) {
            (Some(path), _) => Output::Resume(path.clone()),
            (None, Some(path)) => Output::Create(path.clone()),
            (None, None) => Output::Default,
        };
        let remote = self.server_url.as_ref().map(|url| RemoteTarget {
            url: url.clone(),
            allow_remote_host: self.allow_remote_host,
        });
        RunConfig {
            source,
            ctx: self.ctx,
            models_dir: self.models_dir.clone(),
            synthetic: self.synthetic,
            roles: self.roles.clone(),
            output,
            db: self.db.clone(),
            threads: self.threads.clone(),
            depths: self.depth.clone(),
            server_args: self.server_arg.clone(),
            skip_self_test: self.skip_self_test,
            server_bin: self.server_bin.clone(),
            n_predict: self.n_predict,
            workloads: self.workloads.clone(),
            max_reps: self.max_reps,
            bw_budget: Duration::from_secs_f64(self.bw_seconds.clamp(0.1, 60.0)),
            quiet: self.quiet,
            pair: !self.unpaired,
            baseline_launches: self.baseline_launches,
            remote,
            noise: super::quiet::QuietRule {
                when: self.when_noisy,
                threshold_pct: self.foreign_threshold,
            },
            load: self.load.plan(),
            load_problem: self.load.problem(),
            deploy: self.deploy.config(self.load.duration),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llamacpp::ServerArgs;
    use clap::Parser;

    #[test]
    fn sweeps_and_server_args_parse_from_the_command_line() {
        let args = Cli::try_parse_from([
            "run",
            "-m",
            "a.gguf",
            "--threads",
            "1,2",
            "--depth",
            "0,4096",
            "--server-arg",
            "-fa",
            "--server-arg",
            "on",
            "--server-arg=--numa distribute",
        ])
        .unwrap()
        .args;
        assert_eq!(args.threads, Some(vec![1, 2]));
        assert_eq!(args.depth, Some(vec![0, 4096]));
        let words = ServerArgs::parse(&args.server_arg).unwrap();
        assert_eq!(words.to_string(), "-fa on --numa distribute");
    }

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: RunArgs,
    }

    #[test]
    fn run_args_for_a_profile_are_what_the_bare_command_line_gives() {
        let parsed = Cli::try_parse_from(["run", "--profile", "smoke"])
            .unwrap()
            .args;
        assert_eq!(RunArgs::for_profile("smoke"), parsed);
        assert_eq!(parsed.bw_seconds, 1.0);
    }

    #[test]
    fn the_noise_rule_comes_from_its_two_flags() {
        use crate::driver::quiet::{QuietRule, WhenNoisy};
        let rule = |args: &[&str]| Cli::try_parse_from(args).map(|c| c.args.config().noise);
        assert_eq!(
            rule(&["run", "--profile", "smoke"]).unwrap(),
            QuietRule {
                when: WhenNoisy::Warn,
                threshold_pct: 10.0
            }
        );
        let given = ["run", "--profile", "smoke", "--when-noisy", "wait"];
        let given = [&given[..], &["--foreign-threshold", "25%"]].concat();
        assert_eq!(
            rule(&given).unwrap(),
            QuietRule {
                when: WhenNoisy::Wait,
                threshold_pct: 25.0
            }
        );
        assert!(rule(&["run", "--profile", "s", "--when-noisy", "quiet"]).is_err());
        assert!(rule(&["run", "--profile", "s", "--foreign-threshold", "-5"]).is_err());
    }

    #[test]
    fn model_flags_need_model_files_and_roles_needs_a_profile() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|c| c.args);
        for bad in [
            &["run", "--profile", "smoke", "--draft", "d.gguf"][..],
            &["run", "--profile", "smoke", "--modes", "baseline"],
            &["run", "-m", "a.gguf", "--roles", "x"],
            &["run", "-m", "a.gguf", "--profile", "smoke"],
            &["run"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} must be refused");
        }
        for bad in [
            &["run", "-m", "a.gguf", "--threads", "0"][..],
            &["run", "-m", "a.gguf", "--depth", "-1"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} must be refused");
        }
        let remote = |more: &[&str]| {
            let mut line = vec!["run", "--server-url", "http://127.0.0.1:1"];
            line.extend(more);
            parse(&line)
        };
        for bad in [
            &["--threads", "2"][..],
            &["--server-arg", "-fa"],
            &["--server-bin", "x"],
        ] {
            assert!(
                remote(bad).is_err(),
                "{bad:?} must be refused with --server-url"
            );
        }
        for ok in [&[][..], &["-m", "a.gguf"], &["--profile", "smoke"]] {
            assert!(
                remote(ok).is_ok(),
                "{ok:?} must be accepted with --server-url"
            );
        }
        assert!(parse(&["run", "-m", "a.gguf", "--allow-remote-host"]).is_err());
        assert!(parse(&["run", "--server-url", "http://h:1", "--allow-remote-host"]).is_ok());
        let ok = parse(&["run", "-m", "a.gguf", "--modes", "baseline,spec:4"]).unwrap();
        assert_eq!(
            ok.modes,
            Some(vec![
                crate::mode::Mode::Baseline,
                crate::mode::Mode::Spec { k: 4 }
            ])
        );
    }

    #[test]
    fn the_command_line_becomes_settings_once() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).unwrap().args.config();
        let config = parse(&[
            "run",
            "-m",
            "a.gguf",
            "--unpaired",
            "--bw-seconds",
            "600",
            "--resume",
            "r.csv",
        ]);
        assert_eq!(
            config.source,
            Source::Models {
                models: vec![PathBuf::from("a.gguf")],
                draft: None,
                modes: None
            }
        );
        assert_eq!(config.output, Output::Resume("r.csv".into()));
        assert!(config.output.resumes() && !config.pair);
        assert_eq!(config.bw_budget, Duration::from_secs(60), "clamped");
        assert_eq!(config.remote, None);
        let config = parse(&["run", "--profile", "smoke", "-o", "x.csv"]);
        assert_eq!(config.source.profile(), Some("smoke"));
        assert_eq!(config.output, Output::Create("x.csv".into()));
        assert_eq!(config.baseline_launches, DEFAULT_BASELINE_LAUNCHES);
        let config = parse(&["run", "--server-url", "http://127.0.0.1:1"]);
        assert_eq!(config.output, Output::Default);
        assert_eq!(
            config.remote,
            Some(RemoteTarget {
                url: "http://127.0.0.1:1".into(),
                allow_remote_host: false
            })
        );
    }
}
