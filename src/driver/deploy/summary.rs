//! What a deployment's rows say, computed from the rows alone (so a CSV read back gives the
//! same figures): per role its decode rate alone and together, the **contention** (together /
//! alone, the paired ratio over rounds with its 95% interval: a round's two phases ran back
//! to back, so a drift of the machine falls on both), its latencies and goodput together;
//! for the machine the aggregate output rate and the memory bandwidth the deployment draws
//! against the measured one.

use super::phase::Phase;
use crate::measure::{paired_ratio_ci, Moments, RatioCi};
use crate::results::{ResultRow, Status};
use serde::Serialize;

/// One role of a deployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoleSummary {
    pub role: String,
    pub mode: String,
    pub threads: u32,
    pub cpus: String,
    pub load: String,
    /// Mean over rounds of the role's mean per-request decode rate alone (tokens/s).
    pub alone_tps: Option<f64>,
    /// The same together (tokens/s).
    pub together_tps: Option<f64>,
    /// Together / alone over the rounds where both measured, with its 95% interval.
    pub contention: Option<RatioCi>,
    /// Rounds paired.
    pub pairs: usize,
    /// The paired rounds' decode rates together and alone (tokens/s), in round order.
    pub paired: (Vec<f64>, Vec<f64>),
    /// The contention [`super::predict`] gives from the roles alone.
    pub predicted: Option<f64>,
    /// Mean over rounds of TTFT p99 together (milliseconds).
    pub ttft_p99_ms: Option<f64>,
    /// Mean over rounds of TPOT p50 together (milliseconds).
    pub tpot_p50_ms: Option<f64>,
    /// Mean over rounds of the goodput share together (fraction), where an SLO was set.
    pub goodput_share: Option<f64>,
    /// Why rows of the role failed, when one did.
    pub problem: Option<String>,
    /// A WARM role's starts: launch to ready cold and warm, the cold read rate against the
    /// storage's, and launch to first token cold.
    pub starts: Option<String>,
}

/// The machine under the whole deployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MachineSummary {
    /// Mean over rounds of the summed output rate of every role together (tokens/s).
    pub together_output_tps: Option<f64>,
    /// Mean over rounds of the summed output rates of the roles alone (tokens/s): what the
    /// roles would give if sharing cost nothing.
    pub alone_output_tps: Option<f64>,
    /// Weights streamed together: the sum over roles of bytes per token × output t/s
    /// (GB/s; an upper bound where slots batch, since one weight pass then yields a token
    /// for each slot).
    pub bandwidth_used_gbps: Option<f64>,
    /// The machine's measured read bandwidth (GB/s).
    pub bandwidth_gbps: Option<f64>,
    /// The servers' threads together and the machine's physical cores.
    pub threads_on_cores: (u32, u32),
}

/// One deployment's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeploymentSummary {
    pub id: String,
    pub roles: Vec<RoleSummary>,
    pub machine: MachineSummary,
}

/// Every deployment in `rows`, in order of first appearance.
pub fn summarize(rows: &[ResultRow]) -> Vec<DeploymentSummary> {
    let mut ids: Vec<&str> = Vec::new();
    for r in rows.iter().filter(|r| !r.deployment_id.is_empty()) {
        if !ids.contains(&r.deployment_id.as_str()) {
            ids.push(&r.deployment_id);
        }
    }
    ids.into_iter()
        .map(|id| {
            let mine: Vec<&ResultRow> = rows.iter().filter(|r| r.deployment_id == id).collect();
            let mut roles: Vec<RoleSummary> = role_names(&mine)
                .into_iter()
                .map(|name| role_summary(&mine, name))
                .collect();
            predict_roles(&mine, &mut roles);
            DeploymentSummary {
                id: id.to_string(),
                roles,
                machine: machine(&mine),
            }
        })
        .collect()
}

fn role_names<'r>(rows: &[&'r ResultRow]) -> Vec<&'r str> {
    let mut names: Vec<&str> = Vec::new();
    for r in rows {
        if !names.contains(&r.role.as_str()) {
            names.push(&r.role);
        }
    }
    names
}

/// The value of `f` on the role's ok row of `phase` in `round`.
fn value(
    rows: &[&ResultRow],
    role: &str,
    phase: Phase,
    round: u32,
    f: impl Fn(&ResultRow) -> Option<f64>,
) -> Option<f64> {
    rows.iter()
        .find(|r| {
            r.role == role && r.deploy_phase == phase.as_str() && r.deploy_round == Some(round)
        })
        .filter(|r| r.status == Status::Ok)
        .and_then(|r| f(r))
}

fn rounds(rows: &[&ResultRow]) -> Vec<u32> {
    let mut rounds: Vec<u32> = rows.iter().filter_map(|r| r.deploy_round).collect();
    rounds.sort_unstable();
    rounds.dedup();
    rounds
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    Moments::of(&values.collect::<Vec<f64>>()).map(|m| m.mean)
}

fn role_summary(rows: &[&ResultRow], name: &str) -> RoleSummary {
    let first = rows.iter().find(|r| r.role == name).copied();
    let rounds = rounds(rows);
    let decode = |phase: Phase| -> Vec<Option<f64>> {
        rounds
            .iter()
            .map(|&k| value(rows, name, phase, k, |r| r.decode_tps_mean))
            .collect()
    };
    let (alone, together) = (decode(Phase::Alone), decode(Phase::Together));
    let (paired_t, paired_a): (Vec<f64>, Vec<f64>) = together
        .iter()
        .zip(&alone)
        .filter_map(|(t, a)| t.zip(*a))
        .unzip();
    let together_mean = |f: fn(&ResultRow) -> Option<f64>| {
        mean(
            rounds
                .iter()
                .filter_map(|&k| value(rows, name, Phase::Together, k, f)),
        )
    };
    RoleSummary {
        role: name.to_string(),
        mode: first.map_or(String::new(), |r| r.mode.to_string()),
        threads: first.map_or(0, |r| r.threads),
        cpus: first.map_or(String::new(), |r| r.cpus.clone()),
        load: first.map_or(String::new(), |r| r.load.clone()),
        alone_tps: mean(alone.iter().flatten().copied()),
        together_tps: mean(together.iter().flatten().copied()),
        contention: paired_ratio_ci(&paired_t, &paired_a).ok(),
        pairs: paired_t.len(),
        paired: (paired_t.clone(), paired_a.clone()),
        predicted: None,
        ttft_p99_ms: together_mean(|r| r.load_ttft_ms_p99),
        tpot_p50_ms: together_mean(|r| r.tpot_ms_p50),
        goodput_share: together_mean(|r| r.goodput_share),
        problem: rows
            .iter()
            .find(|r| r.role == name && r.status != Status::Ok)
            .map(|r| format!("{}: {}", r.status, r.reason.lines().next().unwrap_or(""))),
        starts: starts(rows, name),
    }
}

/// `cold: ready 2140 ms (0.12 GB/s read, storage 0.95), first token 2310 ms; warm: ready 380 ms`.
fn starts(rows: &[&ResultRow], name: &str) -> Option<String> {
    let of = |phase: Phase| {
        rows.iter()
            .find(|r| r.role == name && r.deploy_phase == phase.as_str() && r.status == Status::Ok)
    };
    let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0} ms"));
    let cold = of(Phase::ColdStart).map(|r| {
        let read = match (r.load_read_gbps, r.storage_read_gbps) {
            (Some(l), Some(s)) => format!(" ({l:.2} GB/s read, storage {s:.2})"),
            (Some(l), None) => format!(" ({l:.2} GB/s read)"),
            _ => String::new(),
        };
        format!(
            "cold: ready {}{read}, first token {}",
            ms(r.launch_to_ready_ms),
            ms(r.first_token_after_launch_ms)
        )
    });
    let warm = of(Phase::WarmStart).map(|r| {
        format!(
            "warm: ready {}, first token {}",
            ms(r.launch_to_ready_ms),
            ms(r.first_token_after_launch_ms)
        )
    });
    let parts: Vec<String> = cold.into_iter().chain(warm).collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Each role's predicted contention from its rows alone, when every role has the inputs.
fn predict_roles(rows: &[&ResultRow], roles: &mut [RoleSummary]) {
    let rounds = rounds(rows);
    let inputs: Option<Vec<super::predict::Alone>> = roles
        .iter()
        .map(|r| {
            let first = rows.iter().find(|x| x.role == r.role)?;
            let out = mean(
                rounds
                    .iter()
                    .filter_map(|&k| value(rows, &r.role, Phase::Alone, k, |x| x.output_tps)),
            )?;
            Some(super::predict::Alone {
                demand_gbps: out * first.active_bytes_per_token as f64 / 1e9,
                own_gbps: first.role_bandwidth_gbps?,
                threads: first.threads,
            })
        })
        .collect();
    let shared = rows.iter().find_map(|r| r.deploy_bandwidth_gbps);
    let cores = rows.first().map_or(0, |r| r.physical_cores);
    let (Some(inputs), Some(shared)) = (inputs, shared) else {
        return;
    };
    if cores == 0 {
        return;
    }
    for (role, c) in roles
        .iter_mut()
        .zip(super::predict::contention(&inputs, cores, shared))
    {
        role.predicted = Some(c);
    }
}

fn machine(rows: &[&ResultRow]) -> MachineSummary {
    let rounds = rounds(rows);
    let names = role_names(rows);
    let summed = |phase: Phase, f: &dyn Fn(&ResultRow) -> Option<f64>| {
        mean(rounds.iter().filter_map(|&k| {
            let each: Option<Vec<f64>> =
                names.iter().map(|n| value(rows, n, phase, k, f)).collect();
            each.map(|v| v.iter().sum())
        }))
    };
    let streamed = |r: &ResultRow| {
        r.output_tps
            .map(|tps| tps * r.active_bytes_per_token as f64 / 1e9)
    };
    MachineSummary {
        together_output_tps: summed(Phase::Together, &|r| r.output_tps),
        alone_output_tps: summed(Phase::Alone, &|r| r.output_tps),
        bandwidth_used_gbps: summed(Phase::Together, &streamed),
        bandwidth_gbps: rows.iter().find_map(|r| r.bandwidth_gbps),
        threads_on_cores: (
            names
                .iter()
                .filter_map(|n| rows.iter().find(|r| r.role == *n))
                .map(|r| r.threads)
                .sum(),
            rows.first().map_or(0, |r| r.physical_cores),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(role: &str, phase: &str, round: u32, tps: f64) -> ResultRow {
        ResultRow {
            deployment_id: "deploy-1".into(),
            role: role.into(),
            deploy_phase: phase.into(),
            deploy_round: Some(round),
            status: Status::Ok,
            decode_tps_mean: Some(tps),
            output_tps: Some(tps / 2.0),
            active_bytes_per_token: 1_000_000_000,
            bandwidth_gbps: Some(20.0),
            ..ResultRow::default()
        }
    }

    #[test]
    fn contention_is_the_paired_ratio_over_rounds() {
        // Role a: together/alone = 0.8, 0.9, 0.85 over three rounds; by hand the geometric
        // mean is exp((-0.22314 - 0.10536 - 0.16252) / 3) = exp(-0.16367) = 0.84902.
        let mut rows = Vec::new();
        for (k, (alone, together)) in [(10.0, 8.0), (10.0, 9.0), (20.0, 17.0)].iter().enumerate() {
            rows.push(row("a", "alone", k as u32 + 1, *alone));
            rows.push(row("a", "together", k as u32 + 1, *together));
            rows.push(row("b", "alone", k as u32 + 1, 4.0));
            rows.push(row("b", "together", k as u32 + 1, 4.0));
        }
        let s = &summarize(&rows)[0];
        let a = &s.roles[0];
        let c = a.contention.as_ref().unwrap();
        assert!((c.ratio - 0.84902).abs() < 1e-4, "{}", c.ratio);
        assert!(c.low < c.ratio && c.ratio < c.high && c.high < 1.0, "{c:?}");
        assert_eq!(a.pairs, 3);
        assert!((a.alone_tps.unwrap() - 40.0 / 3.0).abs() < 1e-9);
        // Machine: together output = a/2 + b/2 summed per round, then averaged:
        // (4+2, 4.5+2, 8.5+2) -> mean 7.667; bandwidth 1 GB per token x that.
        let m = &s.machine;
        assert!((m.together_output_tps.unwrap() - 23.0 / 3.0).abs() < 1e-9);
        assert!((m.bandwidth_used_gbps.unwrap() - 23.0 / 3.0).abs() < 1e-9);
        assert_eq!(m.bandwidth_gbps, Some(20.0));
    }

    #[test]
    fn a_failed_round_is_left_out_of_the_pairs_and_named() {
        let mut rows = vec![
            row("a", "alone", 1, 10.0),
            row("a", "together", 1, 9.0),
            row("a", "alone", 2, 10.0),
            row("a", "together", 2, 8.0),
        ];
        let mut failed = row("a", "together", 3, 0.0);
        failed.status = Status::Failed;
        failed.reason = "llama-server exited: killed by SIGKILL".into();
        rows.push(row("a", "alone", 3, 10.0));
        rows.push(failed);
        let a = &summarize(&rows)[0].roles[0];
        assert_eq!(a.pairs, 2);
        assert!(a.problem.as_deref().unwrap().contains("SIGKILL"));
    }
}
