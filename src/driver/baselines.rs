//! The baselines of a run: what each accelerated cell compares with (speedup from the decode
//! rates, losslessness from the token ids). Kept per (role, workload, slots, threads,
//! depth); filled as baseline cells finish, or from the raw JSONL of an interrupted run on
//! `--resume`.

use super::plan::Cell;
use crate::measure::{RequestRaw, TopTwo};
use crate::results::RawRepetition;
use std::collections::HashMap;

/// Which baseline a cell compares with: same role, workload, slot count, threads and depth.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BaselineKey {
    /// Index of the role in the run's role list.
    pub role: usize,
    /// Workload name, as the CSV writes it.
    pub workload: String,
    /// Server slots.
    pub parallel: u32,
    /// Server threads.
    pub threads: u32,
    /// Tokens in the context before decode.
    pub depth: u32,
}

impl BaselineKey {
    /// The baseline `cell` compares with: same role, workload, slots, threads and depth.
    pub fn of(cell: &Cell) -> BaselineKey {
        BaselineKey {
            role: cell.role,
            workload: cell.workload.to_string(),
            parallel: cell.parallel,
            threads: cell.threads,
            depth: cell.depth,
        }
    }
}

/// The baseline of one key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Baseline {
    /// Server-reported decode t/s of every timed repetition (a batch's mean over its slots).
    pub decode_tps: Vec<f64>,
    /// Generated token ids of each slot's first timed request.
    pub tokens: Vec<Vec<u32>>,
    /// The two most probable tokens per position of the reference request (same prompt,
    /// untimed, `n_probs`); empty when there was none.
    pub top_two: Vec<TopTwo>,
    /// Server launches whose repetitions `decode_tps` pools.
    pub launches: u32,
    /// Launch-to-launch coefficient of variation of the mean decode speed (`None` with one
    /// launch): part of every speedup interval against this baseline.
    pub between_launch_cv: Option<f64>,
}

impl Baseline {
    /// The baseline a measured baseline cell makes (its reference probabilities are added by
    /// [`Baselines::insert`]).
    pub fn of(m: &super::outcome::Measured) -> Baseline {
        Baseline {
            decode_tps: m.metrics.decode_tps.clone(),
            tokens: m.first_tokens.clone(),
            top_two: Vec::new(),
            launches: m.launches(),
            between_launch_cv: m.between_launch_cv(),
        }
    }
}

/// Every baseline measured so far.
#[derive(Debug, Default)]
pub struct Baselines {
    by_key: HashMap<BaselineKey, Baseline>,
    references: HashMap<BaselineKey, Vec<TopTwo>>,
}

impl Baselines {
    /// The baseline of `key`, once measured.
    pub fn get(&self, key: &BaselineKey) -> Option<&Baseline> {
        self.by_key.get(key)
    }

    /// Records a measured baseline (a later one replaces an earlier one), with the reference
    /// probabilities recorded for its key before its timed requests.
    pub fn insert(&mut self, key: BaselineKey, mut baseline: Baseline) {
        if baseline.top_two.is_empty() {
            baseline.top_two = self.references.get(&key).cloned().unwrap_or_default();
        }
        self.by_key.insert(key, baseline);
    }

    /// Records the reference probabilities of a baseline about to be measured.
    pub fn set_reference(&mut self, key: BaselineKey, top_two: Vec<TopTwo>) {
        self.references.insert(key, top_two);
    }

    /// Baselines measured by an earlier, interrupted run of the same file (`--resume`), so
    /// the cells measured now still get their speedup and losslessness. `role_index` maps a
    /// role name to its index in this run (roles no longer in the profile are ignored).
    pub fn recover(&mut self, raw: &[RawRepetition], role_index: impl Fn(&str) -> Option<usize>) {
        // One decode value per repetition (the mean over its slots), as when measured: the
        // requests of one batch are consecutive lines with the same key and `rep`.
        let mut batches: Vec<(BaselineKey, u32, u32, Vec<RequestRaw>)> = Vec::new();
        for rep in raw.iter().filter(|r| r.key.mode.is_baseline()) {
            let Some(role) = role_index(&rep.key.role) else {
                continue;
            };
            let key = BaselineKey {
                role,
                workload: rep.key.workload.clone(),
                parallel: rep.key.parallel,
                threads: rep.key.threads,
                depth: rep.key.depth,
            };
            let b = self.by_key.entry(key.clone()).or_default();
            if rep.warmup {
                if !rep.request.top_two.is_empty() {
                    b.top_two = rep.request.top_two.clone();
                }
                continue;
            }
            if rep.rep == 0 && rep.launch == 0 {
                b.tokens.push(rep.request.token_ids.clone());
            }
            match batches.last_mut() {
                Some((k, n, _, requests)) if *k == key && *n == rep.rep => {
                    requests.push(rep.request.clone())
                }
                _ => batches.push((key, rep.rep, rep.launch, vec![rep.request.clone()])),
            }
        }
        let mut per_launch: HashMap<BaselineKey, Vec<(u32, Vec<f64>)>> = HashMap::new();
        for (key, _, launch, requests) in batches {
            let Some(tps) = crate::measure::batch_decode_tps(&requests) else {
                continue;
            };
            let launches = per_launch.entry(key).or_default();
            match launches.iter_mut().find(|(l, _)| *l == launch) {
                Some((_, values)) => values.push(tps),
                None => launches.push((launch, vec![tps])),
            }
        }
        for (key, launches) in per_launch {
            if let Some(b) = self.by_key.get_mut(&key) {
                let decode: Vec<Vec<f64>> = launches.into_iter().map(|(_, v)| v).collect();
                b.decode_tps = decode.concat();
                b.launches = decode.len() as u32;
                b.between_launch_cv = crate::measure::between_launch_cv(&decode);
            }
        }
    }
}
