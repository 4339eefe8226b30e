//! `bench run`'s serving flags (`--rate`, `--concurrency`, `--burstiness`, `--duration`,
//! `--requests`, `--seed`, `--slo`, `--find-max-rate`, `--goodput-target`, `--mix`) as
//! clap holds them ([`LoadArgs`], flattened into `bench run`'s arguments), and the plan the
//! serving path works from ([`LoadPlan`]), made once at the command's edge. The words are
//! vllm's `bench serve`'s, which is what people running servers type.

use crate::driver::load::{Bounds, Pattern, Slo};
use crate::driver::workload::Workload;
use crate::profile::RoleLoad;
use std::time::Duration;

/// How long a serving phase sends when neither `--duration` nor `--requests` is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(60);
/// The goodput share `--find-max-rate` holds when `--goodput-target` is not given.
pub const DEFAULT_GOODPUT_TARGET: f64 = 0.9;
/// `--seed` when not given.
pub const DEFAULT_SEED: u64 = 42;
/// Phases `--find-max-rate` runs at most.
pub const MAX_SEARCH_STEPS: u32 = 8;

/// Serving under load: open-loop arrival rates or closed-loop clients instead of repeated
/// batches.
#[derive(Debug, Clone, PartialEq, clap::Args)]
#[command(next_help_heading = "Serving under load")]
pub struct LoadArgs {
    /// Open-loop arrival rates, requests per second (comma-separated): requests arrive on a
    /// seeded schedule that never waits for responses, one serving cell per rate.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "RPS",
        conflicts_with = "concurrency"
    )]
    pub rate: Option<Vec<f64>>,
    /// Closed-loop clients (comma-separated): each sends its next request when its last one
    /// finished, one serving cell per count.
    #[arg(long, value_delimiter = ',', value_name = "C")]
    pub concurrency: Option<Vec<u32>>,
    /// Gaps between arrivals: gamma-distributed with this shape (1 = Poisson, below 1
    /// burstier, above 1 more regular), as vllm's `--burstiness`.
    #[arg(long, default_value_t = 1.0, value_name = "B")]
    pub burstiness: f64,
    /// How long each serving cell sends (`60s`, `5m`); default 60 s unless --requests.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,
    /// How many requests each serving cell sends at most.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub requests: Option<u32>,
    /// Seed of the arrival schedule and the prompt picks: two runs with one seed send the
    /// same prompts at the same offsets.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Latency targets a request must meet to count as goodput: `ttft=2000ms,tpot=100ms,e2e=30s`.
    #[arg(long, value_name = "TARGETS")]
    pub slo: Option<Slo>,
    /// Search the highest arrival rate whose goodput share stays at or above
    /// --goodput-target (needs --slo), and report it with its interval.
    #[arg(long, requires = "slo")]
    pub find_max_rate: bool,
    /// The goodput share --find-max-rate holds (`90%` or `0.9`).
    #[arg(long, value_parser = parse_share, value_name = "SHARE")]
    pub goodput_target: Option<f64>,
    /// The request mix: workloads with weights (`chat:3,code-edit:1`); default the run's
    /// workloads, equally weighted.
    #[arg(long, value_delimiter = ',', value_parser = parse_mix_entry, value_name = "WORKLOAD[:WEIGHT]")]
    pub mix: Option<Vec<(Workload, f64)>>,
    /// Output tokens per request: a uniform range `A..B` (each request draws its length,
    /// seeded), or a fixed count; default --n-predict.
    #[arg(long, value_parser = parse_lengths, value_name = "N|A..B")]
    pub output_tokens: Option<Lengths>,
}

/// How many tokens each request generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lengths {
    /// Every request the same.
    Fixed(u32),
    /// Uniform over `low..=high`, as [`LENGTH_STEPS`] evenly spaced lengths of equal weight.
    Uniform { low: u32, high: u32 },
}

/// The lengths a uniform range is drawn from: evenly spaced, equally likely (the request
/// mix is a set of prepared requests, so a range is a discrete uniform).
pub const LENGTH_STEPS: u32 = 8;

impl Lengths {
    /// The lengths of this distribution, each equally likely.
    pub fn values(&self) -> Vec<u32> {
        match *self {
            Lengths::Fixed(n) => vec![n],
            Lengths::Uniform { low, high } => {
                let steps = LENGTH_STEPS.min(high - low + 1);
                let mut out: Vec<u32> = (0..steps)
                    .map(|k| {
                        low + ((high - low) as f64 * k as f64 / (steps - 1).max(1) as f64).round()
                            as u32
                    })
                    .collect();
                out.dedup();
                out
            }
        }
    }
}

/// The flags as a command line without any of them gives them.
impl Default for LoadArgs {
    fn default() -> LoadArgs {
        LoadArgs {
            rate: None,
            concurrency: None,
            burstiness: 1.0,
            duration: None,
            requests: None,
            seed: DEFAULT_SEED,
            slo: None,
            find_max_rate: false,
            goodput_target: None,
            mix: None,
            output_tokens: None,
        }
    }
}

/// What a serving run does, once per launch.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlan {
    /// The load points, in the order they run (rates ascending, so a saturated server ends
    /// the sweep).
    pub points: Vec<Pattern>,
    /// How long or how many requests each point sends.
    pub bounds: Bounds,
    /// Seed of every point's schedule.
    pub seed: u64,
    /// Latency targets of goodput (empty: none).
    pub slo: Slo,
    /// `--find-max-rate`: the goodput share to hold.
    pub find_max_rate: Option<f64>,
    /// Workloads and weights of the request mix (`None`: the run's, equally weighted).
    pub mix: Option<Vec<(Workload, f64)>>,
    /// Output tokens per request (`None`: the run's `n_predict`).
    pub output_tokens: Option<Lengths>,
}

impl LoadArgs {
    /// The serving plan, when any serving flag asks for one.
    pub fn plan(&self) -> Option<LoadPlan> {
        let mut points: Vec<Pattern> = match (&self.rate, &self.concurrency) {
            (Some(rates), _) => rates
                .iter()
                .map(|&rps| Pattern::Rate {
                    rps,
                    burstiness: self.burstiness,
                })
                .collect(),
            (None, Some(clients)) => clients
                .iter()
                .map(|&clients| Pattern::Concurrency { clients })
                .collect(),
            (None, None) if self.find_max_rate => Vec::new(),
            (None, None) => return None,
        };
        points.sort_by(|a, b| intensity(a).total_cmp(&intensity(b)));
        let duration = match (self.duration, self.requests) {
            (None, None) => Some(DEFAULT_DURATION),
            (d, _) => d,
        };
        Some(LoadPlan {
            points,
            bounds: Bounds {
                duration,
                requests: self.requests,
            },
            seed: self.seed,
            slo: self.slo.unwrap_or_default(),
            find_max_rate: self
                .find_max_rate
                .then_some(self.goodput_target.unwrap_or(DEFAULT_GOODPUT_TARGET)),
            mix: self.mix.clone(),
            output_tokens: self.output_tokens,
        })
    }

    /// What is wrong with these flags beyond what clap checks: rates and burstiness must be
    /// positive and finite, client counts at least 1.
    pub fn problem(&self) -> Option<String> {
        let bad = |v: f64| !(v.is_finite() && v > 0.0);
        if let Some(r) = self.rate.iter().flatten().find(|r| bad(**r)) {
            return Some(format!(
                "--rate {r}: a rate is a positive number of requests per second"
            ));
        }
        if bad(self.burstiness) {
            return Some(format!(
                "--burstiness {}: must be positive",
                self.burstiness
            ));
        }
        if self.concurrency.iter().flatten().any(|c| *c == 0) {
            return Some("--concurrency 0: at least one client".into());
        }
        if let Some((w, weight)) = self.mix.iter().flatten().find(|(_, w)| bad(*w)) {
            return Some(format!("--mix {w}:{weight}: a weight is a positive number"));
        }
        None
    }
}

impl LoadPlan {
    /// The most clients a point of the plan sends at once (1 for an open-loop rate): a
    /// server gets at least this many slots, so that `--concurrency C` is served by C.
    pub fn most_clients(&self) -> u32 {
        self.points
            .iter()
            .map(|p| match p {
                Pattern::Concurrency { clients } => *clients,
                Pattern::Rate { .. } => 1,
            })
            .max()
            .unwrap_or(1)
    }

    /// The plan of a profile role's `load` table (checked when the profile was read).
    pub fn from_role(load: &RoleLoad) -> LoadPlan {
        let burstiness = load.burstiness.unwrap_or(1.0);
        let mut points: Vec<Pattern> = load
            .rates
            .iter()
            .map(|&rps| Pattern::Rate { rps, burstiness })
            .chain(
                load.concurrency
                    .iter()
                    .map(|&clients| Pattern::Concurrency { clients }),
            )
            .collect();
        points.sort_by(|a, b| intensity(a).total_cmp(&intensity(b)));
        let duration = load.duration_s.map(Duration::from_secs_f64);
        let ms = |v: Option<f64>| v.map(|ms| Duration::from_secs_f64(ms / 1e3));
        let slo = load.slo.as_ref().map_or_else(Slo::default, |t| Slo {
            ttft: ms(t.ttft_ms),
            tpot: ms(t.tpot_ms),
            e2e: ms(t.e2e_ms),
        });
        let mix = (!load.mix.is_empty()).then(|| {
            load.mix
                .iter()
                .filter_map(|(w, weight)| Some((w.parse::<Workload>().ok()?, *weight)))
                .collect()
        });
        LoadPlan {
            points,
            bounds: Bounds {
                duration: duration.or((load.requests.is_none()).then_some(DEFAULT_DURATION)),
                requests: load.requests,
            },
            seed: load.seed.unwrap_or(DEFAULT_SEED),
            slo,
            find_max_rate: None,
            mix,
            output_tokens: match load.output_tokens.as_slice() {
                [n] => Some(Lengths::Fixed(*n)),
                [low, high] => Some(Lengths::Uniform {
                    low: *low,
                    high: *high,
                }),
                _ => None,
            },
        }
    }
}

/// What orders a sweep's points: the rate, or the number of clients.
fn intensity(p: &Pattern) -> f64 {
    match p {
        Pattern::Rate { rps, .. } => *rps,
        Pattern::Concurrency { clients } => f64::from(*clients),
    }
}

/// `90%` or `0.9` into a share in (0, 1].
fn parse_share(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let value = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|e| format!("{text:?}: {e} (write 90% or 0.9)"))?;
    match value > 0.0 && value <= 1.0 {
        true => Ok(value),
        false => Err(format!("{text:?} must be above 0% and at most 100%")),
    }
}

/// `64` or `16..256` into output lengths (at least 1 token, the range ascending).
fn parse_lengths(text: &str) -> Result<Lengths, String> {
    let count = |t: &str| -> Result<u32, String> {
        match t.trim().parse::<u32>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{t:?} is not a token count above 0")),
        }
    };
    match text.split_once("..") {
        Some((a, b)) => {
            let (low, high) = (count(a)?, count(b)?);
            match low <= high {
                true => Ok(Lengths::Uniform { low, high }),
                false => Err(format!(
                    "{text:?}: the range must ascend (A..B with A <= B)"
                )),
            }
        }
        None => Ok(Lengths::Fixed(count(text)?)),
    }
}

/// `chat:3` or `chat` (weight 1) into a workload and its weight.
fn parse_mix_entry(text: &str) -> Result<(Workload, f64), String> {
    let (name, weight) = match text.split_once(':') {
        Some((n, w)) => (
            n,
            w.parse::<f64>().map_err(|e| format!("weight {w:?}: {e}"))?,
        ),
        None => (text, 1.0),
    };
    let workload = name.trim().parse::<Workload>().map_err(|e| e.to_string())?;
    Ok((workload, weight))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        load: LoadArgs,
    }

    fn plan(args: &[&str]) -> Option<LoadPlan> {
        let cli = Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied())).unwrap();
        cli.load.plan()
    }

    #[test]
    fn no_serving_flag_means_no_serving_plan() {
        assert_eq!(plan(&[]), None);
    }

    #[test]
    fn rates_run_ascending_for_a_minute_each_by_default() {
        let p = plan(&["--rate", "2,0.5,1", "--burstiness", "0.5"]).unwrap();
        let rates: Vec<String> = p.points.iter().map(ToString::to_string).collect();
        assert_eq!(
            rates,
            [
                "rate 0.5 rps burstiness 0.5",
                "rate 1 rps burstiness 0.5",
                "rate 2 rps burstiness 0.5"
            ]
        );
        assert_eq!(p.bounds.duration, Some(Duration::from_secs(60)));
        assert_eq!(p.bounds.requests, None);
        assert_eq!(p.find_max_rate, None);
    }

    #[test]
    fn requests_alone_bound_a_phase_by_count() {
        let p = plan(&["--concurrency", "1,2", "--requests", "20"]).unwrap();
        assert_eq!(p.bounds.duration, None);
        assert_eq!(p.bounds.requests, Some(20));
        assert_eq!(p.points[1].to_string(), "concurrency 2");
    }

    #[test]
    fn find_max_rate_needs_targets_and_holds_90_percent_by_default() {
        assert!(Cli::try_parse_from(["x", "--find-max-rate"]).is_err());
        let p = plan(&["--find-max-rate", "--slo", "ttft=2000ms"]).unwrap();
        assert_eq!(p.find_max_rate, Some(0.9));
        assert!(p.points.is_empty());
        let p = plan(&[
            "--find-max-rate",
            "--slo",
            "ttft=2s",
            "--goodput-target",
            "95%",
        ])
        .unwrap();
        assert_eq!(p.find_max_rate, Some(0.95));
    }

    #[test]
    fn a_mix_names_workloads_and_weights() {
        let p = plan(&["--rate", "1", "--mix", "chat:3,code-edit"]).unwrap();
        assert_eq!(
            p.mix,
            Some(vec![(Workload::Chat, 3.0), (Workload::CodeEdit, 1.0)])
        );
        assert!(Cli::try_parse_from(["x", "--rate", "1", "--mix", "poetry"]).is_err());
    }

    #[test]
    fn a_profile_role_load_becomes_the_same_plan_as_the_flags() {
        let load: RoleLoad = toml::from_str(
            "rates = [2, 0.5]\nduration_s = 30\noutput_tokens = [16, 128]\nslo = { ttft_ms = 2000, tpot_ms = 100 }",
        )
        .unwrap();
        let from_profile = LoadPlan::from_role(&load);
        let from_flags = plan(&[
            "--rate",
            "0.5,2",
            "--duration",
            "30s",
            "--output-tokens",
            "16..128",
            "--slo",
            "ttft=2000ms,tpot=100ms",
        ]);
        assert_eq!(Some(from_profile), from_flags);
    }

    #[test]
    fn an_output_range_is_eight_equally_likely_lengths() {
        let p = plan(&["--rate", "1", "--output-tokens", "16..128"]).unwrap();
        let lengths = p.output_tokens.unwrap().values();
        assert_eq!(lengths, [16, 32, 48, 64, 80, 96, 112, 128]);
        assert_eq!(Lengths::Uniform { low: 3, high: 5 }.values(), [3, 4, 5]);
        assert_eq!(Lengths::Fixed(64).values(), [64]);
        assert!(Cli::try_parse_from(["x", "--output-tokens", "9..3"]).is_err());
        assert!(Cli::try_parse_from(["x", "--output-tokens", "0"]).is_err());
    }

    #[test]
    fn bad_values_are_named() {
        let cli = Cli::try_parse_from(["x", "--rate", "0,1"]).unwrap();
        assert!(cli.load.problem().unwrap().contains("--rate 0"));
        let cli = Cli::try_parse_from(["x", "--rate", "1", "--concurrency", "2"]);
        assert!(cli.is_err(), "open and closed loop at once");
        assert_eq!(parse_share("90%"), Ok(0.9));
        assert!(parse_share("0").is_err() && parse_share("150%").is_err());
    }
}
