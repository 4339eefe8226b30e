//! A role's serving load in a profile (`load = { rates = [0.5, 1, 2], slo = { ttft_ms = 2000,
//! tpot_ms = 100 } }`): the arrival rates or clients it is served under, the bounds of each
//! phase, the seed, the latency targets of goodput and the request mix. Checked where the
//! profile is read (every error names the file, line and column); the run turns it into the
//! load generator's plan.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A role's `load` table.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleLoad {
    /// Open-loop arrival rates (requests/s).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rates: Vec<f64>,
    /// Closed-loop client counts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub concurrency: Vec<u32>,
    /// Gamma shape of the gaps between arrivals (1 = Poisson).
    pub burstiness: Option<f64>,
    /// How long each phase sends (seconds).
    pub duration_s: Option<f64>,
    /// How many requests each phase sends at most.
    pub requests: Option<u32>,
    /// Seed of the schedule and the prompt picks.
    pub seed: Option<u64>,
    /// Latency targets of goodput.
    pub slo: Option<SloTable>,
    /// Output tokens per request: `[N]`, or a uniform range `[A, B]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_tokens: Vec<u32>,
    /// Workloads and their weights (`{ chat = 3, code-edit = 1 }`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mix: BTreeMap<String, f64>,
}

/// Latency targets as a profile writes them, in milliseconds.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloTable {
    /// Time to first token (milliseconds).
    pub ttft_ms: Option<f64>,
    /// Time per output token after the first (milliseconds).
    pub tpot_ms: Option<f64>,
    /// End-to-end latency (milliseconds).
    pub e2e_ms: Option<f64>,
}

impl RoleLoad {
    /// What is wrong with this table, if anything, for an error at the role's `load` key.
    pub fn problem(&self) -> Option<String> {
        let bad = |v: f64| !(v.is_finite() && v > 0.0);
        if self.rates.is_empty() == self.concurrency.is_empty() {
            return Some("load needs `rates` or `concurrency` (one of the two)".into());
        }
        if let Some(r) = self.rates.iter().find(|r| bad(**r)) {
            return Some(format!(
                "load: rate {r} is not a positive number of requests per second"
            ));
        }
        if let Some(w) = self
            .mix
            .keys()
            .find(|w| w.parse::<super::Workload>().is_err())
        {
            return Some(format!(
                "load: mix: unknown workload `{w}` (chat, code-edit, summarize)"
            ));
        }
        match self.output_tokens.as_slice() {
            [] => {}
            [n] | [n, _] if *n == 0 => return Some("load: output_tokens must be above 0".into()),
            [_] => {}
            [a, b] if a > b => return Some("load: output_tokens [A, B] needs A <= B".into()),
            [_, _] => {}
            _ => return Some("load: output_tokens is [N] or [A, B]".into()),
        }
        if self.concurrency.contains(&0) {
            return Some("load: concurrency 0: at least one client".into());
        }
        let positive = [self.burstiness, self.duration_s]
            .into_iter()
            .flatten()
            .chain(self.mix.values().copied())
            .chain(
                self.slo
                    .iter()
                    .flat_map(|s| [s.ttft_ms, s.tpot_ms, s.e2e_ms])
                    .flatten(),
            );
        if let Some(v) = positive.into_iter().find(|v| bad(*v)) {
            return Some(format!("load: {v} must be a positive number"));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_load_reads_and_names_what_is_wrong() {
        let load: RoleLoad =
            toml::from_str("rates = [0.5, 1, 2]\nslo = { ttft_ms = 2000, tpot_ms = 100 }").unwrap();
        assert_eq!(load.rates, [0.5, 1.0, 2.0]);
        assert_eq!(load.slo.as_ref().unwrap().ttft_ms, Some(2000.0));
        assert_eq!(load.problem(), None);
        let both: RoleLoad = toml::from_str("rates = [1]\nconcurrency = [2]").unwrap();
        assert!(both.problem().unwrap().contains("one of the two"));
        let zero: RoleLoad = toml::from_str("rates = [0]").unwrap();
        assert!(zero.problem().unwrap().contains("rate 0"));
        assert!(
            toml::from_str::<RoleLoad>("rate = [1]").is_err(),
            "unknown key"
        );
    }
}
