//! `bench run --deployment`'s flags ([`DeployArgs`], flattened into `bench run`'s arguments)
//! and the settings the deployment works from ([`DeployConfig`]), made once at the
//! command's edge.

use crate::profile::Residency;
use std::time::Duration;

/// Rounds when `--rounds` is not given: four pairs of (alone, together) phases give the
/// contention's interval three degrees of freedom.
pub const DEFAULT_ROUNDS: u32 = 4;
/// How long each phase sends when neither `--duration` nor the role's `load` says.
pub const DEFAULT_PHASE: Duration = Duration::from_secs(30);

/// Whole deployments: the profile's roles resident at once, each under its own load.
#[derive(Debug, Clone, PartialEq, clap::Args)]
#[command(next_help_heading = "Deployments")]
pub struct DeployArgs {
    /// Launch the profile's roles at once, each with its deployed mode (`deploy`), threads
    /// and CPUs, and measure every role alone (the others resident and idle) and together,
    /// each under its own load, phases alternating; prints each role's contention
    /// (together / alone) with its 95% interval.
    #[arg(long, conflicts_with_all = ["server_url", "resume"])]
    pub deployment: bool,
    /// Residency tiers the deployment launches, comma-separated (HOT, WARM) [default: HOT].
    #[arg(long, value_delimiter = ',', value_parser = parse_tier, requires = "deployment")]
    pub tier: Option<Vec<Residency>>,
    /// Rounds of (alone, together) phases; the contention's interval is over rounds.
    #[arg(long, default_value_t = DEFAULT_ROUNDS, requires = "deployment",
          value_parser = clap::value_parser!(u32).range(2..=50))]
    pub rounds: u32,
}

impl Default for DeployArgs {
    fn default() -> DeployArgs {
        DeployArgs {
            deployment: false,
            tier: None,
            rounds: DEFAULT_ROUNDS,
        }
    }
}

/// `HOT` or `WARM`, in any case.
fn parse_tier(s: &str) -> Result<Residency, String> {
    match s.to_ascii_uppercase().as_str() {
        "HOT" => Ok(Residency::Hot),
        "WARM" => Ok(Residency::Warm),
        _ => Err(format!("unknown tier `{s}` (allowed: HOT, WARM)")),
    }
}

/// What a deployment run does.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployConfig {
    /// The tiers launched.
    pub tiers: Vec<Residency>,
    /// Rounds of (alone, together) phases.
    pub rounds: u32,
    /// How long each phase sends (`--duration`), when given.
    pub phase: Option<Duration>,
}

impl DeployArgs {
    /// The deployment these flags ask for (`None` without `--deployment`); `phase` is
    /// `--duration`.
    pub fn config(&self, phase: Option<Duration>) -> Option<DeployConfig> {
        self.deployment.then(|| DeployConfig {
            tiers: self.tier.clone().unwrap_or_else(|| vec![Residency::Hot]),
            rounds: self.rounds,
            phase,
        })
    }
}
