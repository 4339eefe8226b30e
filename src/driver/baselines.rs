//! The baselines of a run: what each accelerated cell compares with (speedup from the decode
//! rates, losslessness from the token ids). Kept per (role, workload, slots); filled as
//! baseline cells finish, or from the raw JSONL of an interrupted run on `--resume`.

use crate::measure::{RequestRaw, TopTwo};
use crate::results::RawRepetition;
use std::collections::HashMap;

/// Which baseline a cell compares with: same role, workload and slot count.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BaselineKey {
    /// Index of the role in the run's role list.
    pub role: usize,
    /// Workload name, as the CSV writes it.
    pub workload: String,
    /// Server slots.
    pub parallel: u32,
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
        let mut batches: Vec<(BaselineKey, u32, Vec<RequestRaw>)> = Vec::new();
        for rep in raw.iter().filter(|r| r.key.mode.is_baseline()) {
            let Some(role) = role_index(&rep.key.role) else {
                continue;
            };
            let key = BaselineKey {
                role,
                workload: rep.key.workload.clone(),
                parallel: rep.key.parallel,
            };
            let b = self.by_key.entry(key.clone()).or_default();
            if rep.warmup {
                if !rep.request.top_two.is_empty() {
                    b.top_two = rep.request.top_two.clone();
                }
                continue;
            }
            if rep.rep == 0 {
                b.tokens.push(rep.request.token_ids.clone());
            }
            match batches.last_mut() {
                Some((k, n, requests)) if *k == key && *n == rep.rep => {
                    requests.push(rep.request.clone())
                }
                _ => batches.push((key, rep.rep, vec![rep.request.clone()])),
            }
        }
        for (key, _, requests) in batches {
            if let Some(b) = self.by_key.get_mut(&key) {
                b.decode_tps
                    .extend(crate::measure::batch_decode_tps(&requests));
            }
        }
    }
}
