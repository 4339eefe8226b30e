//! The guide's budget calculator constants (`docs/model-sizing-guide.md`, "Memory Budgeting >
//! Budget Calculator" and "RAM Allocation"): `sizing::budget` computes with them, the run's
//! memory guard keeps the same safety buffer.

/// `os_overhead = 16` (GB).
pub const OS_OVERHEAD_GB: f64 = 16.0;
/// `safety_buffer = total_ram_gb * 0.15`.
pub const SAFETY_FRACTION: f64 = 0.15;
/// The safety buffer of a machine with `total_bytes` of RAM, in bytes
/// (`total x` [`SAFETY_FRACTION`]): what the run's memory guard keeps free.
pub fn safety_buffer_bytes(total_bytes: u64) -> u64 {
    (total_bytes as f64 * SAFETY_FRACTION) as u64
}

/// `hot_tier_budget = available * 0.1` ("~10% for always-resident").
pub const HOT_FRACTION: f64 = 0.1;
/// `warm_tier_budget = available * 0.9` ("~90% for on-demand").
pub const WARM_FRACTION: f64 = 0.9;
/// "llama.cpp overhead: 2-4 GB per server instance" ([`super::SECTION_RAM_ALLOCATION`]).
pub const ENGINE_OVERHEAD_GB: (f64, f64) = (2.0, 4.0);
/// "KV Cache: 1-8 GB per model" ([`super::SECTION_RAM_ALLOCATION`]).
pub const KV_CACHE_GB: (f64, f64) = (1.0, 8.0);

/// The guide's example budget table: (total RAM, available, HOT, WARM), all in GB,
/// exactly as printed (rounded by the guide; see `sizing::budget` for the formula).
pub const EXAMPLES: [(f64, f64, f64, f64); 5] = [
    (64.0, 38.0, 4.0, 34.0),
    (128.0, 93.0, 9.0, 84.0),
    (256.0, 202.0, 20.0, 182.0),
    (512.0, 420.0, 42.0, 378.0),
    (1024.0, 854.0, 85.0, 769.0),
];
