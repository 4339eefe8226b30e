//! The memory guard: a launch whose model, draft, KV cache and engine overhead do not fit
//! in the memory available now is never started; its cells are recorded as skipped.
//!
//! Paired measurement keeps a baseline server up beside an accelerated one of the same model
//! file. llama-server maps the weights, so the two servers read one copy in the page cache:
//! [`check_pair`] counts the target's weights once, and each server's KV cache, draft and
//! overhead on its own. A pair that does not fit is measured unpaired, never skipped.

/// Bytes per GiB.
const GIB: f64 = (1u64 << 30) as f64;

/// Engine overhead per server instance beyond weights and KV cache: compute buffers,
/// the HTTP server, the runtime. The guide says 2-4 GB for big models; small models use
/// far less, so the overhead scales with the weights and is at least 256 MiB.
pub fn engine_overhead_bytes(weight_bytes: u64) -> u64 {
    (weight_bytes / 20).max(256 << 20)
}

/// What a launch needs in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryNeed {
    /// GGUF tensor bytes of the target model.
    pub model_bytes: u64,
    /// GGUF tensor bytes of the draft model, if any.
    pub draft_bytes: u64,
    /// KV cache bytes for the launch's context and slots (target and draft).
    pub kv_bytes: u64,
}

impl MemoryNeed {
    /// Total bytes including the engine overhead.
    pub fn total_bytes(&self) -> u64 {
        let weights = self.model_bytes + self.draft_bytes;
        weights + self.kv_bytes + engine_overhead_bytes(weights)
    }
}

/// The verdict of the guard.
#[derive(Debug, Clone, PartialEq)]
pub enum Fit {
    /// The launch fits.
    Fits,
    /// The launch does not fit; the reason is what a skipped row records.
    Skip(String),
}

/// Checks a launch against the memory available now, less the guide's safety buffer
/// (15% of total RAM, "Budget Calculator").
pub fn check(need: &MemoryNeed, mem_available_bytes: u64, mem_total_bytes: u64) -> Fit {
    check_bytes(
        "insufficient memory",
        need.total_bytes(),
        mem_available_bytes,
        mem_total_bytes,
    )
}

/// Bytes two servers of one model file need together: both totals, less one copy of the
/// target's weights (mapped, shared in the page cache).
pub fn pair_bytes(first: &MemoryNeed, second: &MemoryNeed) -> u64 {
    first.total_bytes() + second.total_bytes() - first.model_bytes.min(second.model_bytes)
}

/// May `second` run beside `first` (same model file)? When `first` is already running, its
/// weights are mapped and resident and `second` maps the same pages: it needs only what is
/// its own (KV cache, draft, compute buffers), `second.total_bytes()` less the shared
/// weights. (Counting the shared file again refused a workers spec:16 server beside its
/// 15 GB baseline, "needs 15.8 GiB, has 6.1", although the two read one copy.) When
/// neither runs yet, the pair must fit: [`pair_bytes`].
pub fn check_pair(
    first: &MemoryNeed,
    second: &MemoryNeed,
    first_running: bool,
    mem_available_bytes: u64,
    mem_total_bytes: u64,
) -> Fit {
    let needs = if first_running {
        second.total_bytes() - first.model_bytes.min(second.model_bytes)
    } else {
        pair_bytes(first, second)
    };
    check_bytes(
        "insufficient memory for two servers at once",
        needs,
        mem_available_bytes,
        mem_total_bytes,
    )
}

/// One server of a set that starts together: its need and the files it maps, so that a file
/// two servers map is counted once.
#[derive(Debug, Clone, PartialEq)]
pub struct SetMember<'a> {
    /// What the server needs on its own.
    pub need: MemoryNeed,
    /// Its model file.
    pub model: &'a std::path::Path,
    /// Its draft file, when it loads one.
    pub draft: Option<&'a std::path::Path>,
}

/// Bytes a set of servers needs together: every server's total, less the weights of a file
/// an earlier member of the set already maps (model or draft).
pub fn set_bytes(members: &[SetMember<'_>]) -> u64 {
    let mut mapped: Vec<&std::path::Path> = Vec::new();
    let mut total = 0;
    for m in members {
        total += m.need.total_bytes();
        for (file, bytes) in [
            (Some(m.model), m.need.model_bytes),
            (m.draft, m.need.draft_bytes),
        ] {
            let Some(file) = file else { continue };
            match mapped.contains(&file) {
                true => total -= bytes,
                false => mapped.push(file),
            }
        }
    }
    total
}

/// The memory a set may use: MemAvailable less the guide's safety buffer (bytes).
pub fn usable_bytes(mem_available_bytes: u64, mem_total_bytes: u64) -> u64 {
    let buffer = crate::guide::budget::safety_buffer_bytes(mem_total_bytes);
    mem_available_bytes.saturating_sub(buffer)
}

/// `needs` bytes against MemAvailable less the safety buffer; `what` opens the reason.
fn check_bytes(what: &str, needs: u64, mem_available_bytes: u64, mem_total_bytes: u64) -> Fit {
    let has = usable_bytes(mem_available_bytes, mem_total_bytes);
    if needs <= has {
        Fit::Fits
    } else {
        Fit::Skip(format!(
            "{what} (needs {:.1} GiB, has {:.1} GiB)",
            needs as f64 / GIB,
            has as f64 / GIB
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: u64 = 1 << 30;

    #[test]
    fn a_small_model_fits_and_a_huge_one_is_skipped_with_both_figures() {
        let small = MemoryNeed {
            model_bytes: G,
            draft_bytes: 0,
            kv_bytes: G / 4,
        };
        assert_eq!(check(&small, 20 * G, 24 * G), Fit::Fits);
        let huge = MemoryNeed {
            model_bytes: 130 * G,
            draft_bytes: 0,
            kv_bytes: 2 * G,
        };
        match check(&huge, 20 * G, 24 * G) {
            Fit::Skip(reason) => {
                assert!(
                    reason.starts_with("insufficient memory (needs 138.5 GiB"),
                    "{reason}"
                );
                assert!(reason.contains("has 16.4 GiB"), "{reason}");
            }
            Fit::Fits => panic!("a 130 GiB model cannot fit in 24 GiB"),
        }
    }

    #[test]
    fn two_servers_of_one_file_count_its_weights_once() {
        // Baseline: 8 GiB weights, 1 GiB KV, overhead 8/20 GiB = 0.4 GiB -> 9.4 GiB.
        // Spec beside it: the same 8 GiB, a 1 GiB draft, 2 GiB KV, overhead 9/20 = 0.45 GiB
        // -> 11.45 GiB. Together, by hand: 9.4 + 11.45 - 8 = 12.85 GiB.
        let base = MemoryNeed {
            model_bytes: 8 * G,
            draft_bytes: 0,
            kv_bytes: G,
        };
        let spec = MemoryNeed {
            model_bytes: 8 * G,
            draft_bytes: G,
            kv_bytes: 2 * G,
        };
        let gib = |b: u64| b as f64 / G as f64;
        assert!((gib(pair_bytes(&base, &spec)) - 12.85).abs() < 1e-6);
        // 24 GiB total keeps a 3.6 GiB buffer: 16.5 GiB available leaves 12.9 GiB.
        let available = 16 * G + G / 2;
        assert_eq!(
            check_pair(&base, &spec, false, available, 24 * G),
            Fit::Fits
        );
        // 16 GiB available leaves 12.4 GiB: the pair does not fit, the spec server alone does.
        let Fit::Skip(why) = check_pair(&base, &spec, false, 16 * G, 24 * G) else {
            panic!("12.85 GiB cannot fit in 12.4 GiB");
        };
        assert_eq!(
            why,
            "insufficient memory for two servers at once (needs 12.8 GiB, has 12.4 GiB)"
        );
        assert_eq!(check(&spec, 16 * G, 24 * G), Fit::Fits);
        // With the baseline already up, its weights are resident and mapped: the spec server
        // needs only its own 1 GiB draft, 2 GiB KV and 0.45 GiB overhead = 3.45 GiB. 7.5 GiB
        // available leaves 3.9 (fits), 6.5 GiB leaves 2.9 (does not).
        assert_eq!(
            check_pair(&base, &spec, true, 7 * G + G / 2, 24 * G),
            Fit::Fits
        );
        let Fit::Skip(why) = check_pair(&base, &spec, true, 6 * G + G / 2, 24 * G) else {
            panic!("3.45 GiB cannot fit in 2.9 GiB");
        };
        assert!(why.contains("has 2.9 GiB"), "{why}");
    }

    #[test]
    fn a_set_counts_a_file_two_servers_map_once() {
        use std::path::Path;
        // Workers baseline and workers spec:16 on one 15 GiB file with one 0.5 GiB draft,
        // and a coder on its own 20 GiB file that drafts with the same 0.5 GiB file.
        let (workers, coder, draft) = (
            Path::new("w.gguf"),
            Path::new("c.gguf"),
            Path::new("d.gguf"),
        );
        let base = MemoryNeed {
            model_bytes: 15 * G,
            draft_bytes: 0,
            kv_bytes: G,
        };
        let spec = MemoryNeed {
            model_bytes: 15 * G,
            draft_bytes: G / 2,
            kv_bytes: G,
        };
        let code = MemoryNeed {
            model_bytes: 20 * G,
            draft_bytes: G / 2,
            kv_bytes: 2 * G,
        };
        let set = [
            SetMember {
                need: base,
                model: workers,
                draft: None,
            },
            SetMember {
                need: spec,
                model: workers,
                draft: Some(draft),
            },
            SetMember {
                need: code,
                model: coder,
                draft: Some(draft),
            },
        ];
        // By hand: weights 15 + 0.5 + 20 = 35.5 GiB once; KV 1 + 1 + 2 = 4 GiB; overheads
        // 15/20 + 15.5/20 + 20.5/20 = 0.75 + 0.775 + 1.025 = 2.55 GiB. Total 42.05 GiB.
        let gib = set_bytes(&set) as f64 / G as f64;
        // (The overhead's integer division drops a fraction of a byte.)
        assert!((gib - 42.05).abs() < 1e-6, "{gib}");
        // Each alone would count 15 + 15.5 + 20.5 = 51 GiB of weights: 8.5 GiB more.
        let apart: u64 = set.iter().map(|m| m.need.total_bytes()).sum();
        assert_eq!(apart - set_bytes(&set), 15 * G + G / 2);
    }

    #[test]
    fn overhead_is_at_least_256_mib() {
        assert_eq!(engine_overhead_bytes(0), 256 << 20);
        assert_eq!(engine_overhead_bytes(100 * G), 5 * G);
    }
}
