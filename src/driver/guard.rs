//! The memory guard: a launch whose model, draft, KV cache and engine overhead do not fit
//! in the memory available now is never started; its cells are recorded as skipped.

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
    let buffer = crate::guide::budget::safety_buffer_bytes(mem_total_bytes);
    let has = mem_available_bytes.saturating_sub(buffer);
    let needs = need.total_bytes();
    if needs <= has {
        Fit::Fits
    } else {
        Fit::Skip(format!(
            "insufficient memory (needs {:.1} GiB, has {:.1} GiB)",
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
    fn overhead_is_at_least_256_mib() {
        assert_eq!(engine_overhead_bytes(0), 256 << 20);
        assert_eq!(engine_overhead_bytes(100 * G), 5 * G);
    }
}
