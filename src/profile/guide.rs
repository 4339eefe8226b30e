//! The model sizing guide's tables as data (`/work/shared/model-sizing-guide.md`, in the
//! repository as the product's reference document).
//!
//! Every figure carries the guide section it comes from, so that a report can cite it and a
//! later recalibration (an expectations TOML, see [`Expectations`]) can replace the speed
//! ranges without touching code. Nothing here is measured: these are the guide's claims,
//! which the rest of the harness checks against measurements.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::path::Path;

/// Guide section: "Model Size Estimation > Quantization Impact".
pub const SECTION_QUANT: &str = "Model Size Estimation > Quantization Impact";
/// Guide section: "Model Size Estimation > Size Formula".
pub const SECTION_SIZE_FORMULA: &str = "Model Size Estimation > Size Formula";
/// Guide section: "Memory Budgeting > Budget Calculator".
pub const SECTION_BUDGET: &str = "Memory Budgeting > Budget Calculator";
/// Guide section: "Memory Budgeting > RAM Allocation".
pub const SECTION_RAM_ALLOCATION: &str = "Memory Budgeting > RAM Allocation";
/// Guide section: "Performance Expectations > Inference Speed by Model Size".
pub const SECTION_SPEED: &str = "Performance Expectations > Inference Speed by Model Size";
/// Guide section: "Performance Expectations > Acceleration Methods".
pub const SECTION_ACCELERATION: &str = "Performance Expectations > Acceleration Methods";
/// Guide section: "Assess Your Hardware > Quick Assessment Script" and "Choosing Models for
/// Your Hardware > Decision Tree".
pub const SECTION_TIERS: &str = "Assess Your Hardware > Quick Assessment Script; Decision Tree";
/// Guide section: "Choosing Models for Your Hardware > Scaling Down".
pub const SECTION_SCALING_DOWN: &str = "Choosing Models for Your Hardware > Scaling Down";

/// One row of the guide's quantization table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QuantRow {
    /// Quant name as the guide writes it (`Q4_K_M`).
    pub quant: &'static str,
    /// The guide's bits per weight (nominal; real files carry more, see `bench size`).
    pub bits_per_weight: f64,
    /// Bytes per parameter used by the size formula.
    pub multiplier: f64,
    /// Quality relative to F16, as the guide states it.
    pub quality: &'static str,
}

/// The guide's quantization table ([`SECTION_QUANT`]).
pub const QUANTS: [QuantRow; 7] = [
    QuantRow {
        quant: "F16",
        bits_per_weight: 16.0,
        multiplier: 2.0,
        quality: "100% (baseline)",
    },
    QuantRow {
        quant: "Q8_0",
        bits_per_weight: 8.0,
        multiplier: 1.0,
        quality: "~99.9%",
    },
    QuantRow {
        quant: "Q6_K",
        bits_per_weight: 6.0,
        multiplier: 0.75,
        quality: "~99.5%",
    },
    QuantRow {
        quant: "Q5_K_M",
        bits_per_weight: 5.0,
        multiplier: 0.625,
        quality: "~99%",
    },
    QuantRow {
        quant: "Q4_K_M",
        bits_per_weight: 4.0,
        multiplier: 0.5,
        quality: "~98%",
    },
    QuantRow {
        quant: "Q3_K_M",
        bits_per_weight: 3.0,
        multiplier: 0.375,
        quality: "~95%",
    },
    QuantRow {
        quant: "Q2_K",
        bits_per_weight: 2.0,
        multiplier: 0.25,
        quality: "~90%",
    },
];

/// The size formula's overhead factor ([`SECTION_SIZE_FORMULA`]: "The 1.1 factor accounts
/// for metadata and KV cache overhead").
pub const SIZE_OVERHEAD_FACTOR: f64 = 1.1;

/// Quant names a profile may use: the guide's rows plus the other llama-quantize types,
/// each of which maps onto the guide row of its bit width ([`quant_row`]).
pub const KNOWN_QUANTS: [&str; 31] = [
    "F16",
    "BF16",
    "Q8_0",
    "Q6_K",
    "Q5_K_M",
    "Q5_K_S",
    "Q5_0",
    "Q5_1",
    "Q4_K_M",
    "Q4_K_S",
    "Q4_0",
    "Q4_1",
    "IQ4_XS",
    "IQ4_NL",
    "MXFP4",
    "MXFP4_MOE",
    "Q3_K_M",
    "Q3_K_S",
    "Q3_K_L",
    "IQ3_XXS",
    "IQ3_XS",
    "IQ3_S",
    "IQ3_M",
    "Q2_K",
    "Q2_K_S",
    "IQ2_XXS",
    "IQ2_XS",
    "IQ2_S",
    "IQ2_M",
    "TQ2_0",
    "F32",
];

/// The guide row a quant name belongs to: the exact row, else the row of the same bit
/// width (`Q4_0`, `Q4_K_S`, `IQ4_XS`, `MXFP4` -> `Q4_K_M`; `BF16` -> `F16`). `F32` and
/// names outside [`KNOWN_QUANTS`] have no row.
pub fn quant_row(quant: &str) -> Option<&'static QuantRow> {
    let q = quant.trim().to_ascii_uppercase();
    if let Some(row) = QUANTS.iter().find(|r| r.quant == q) {
        return Some(row);
    }
    if !KNOWN_QUANTS.contains(&q.as_str()) {
        return None;
    }
    let bits = quant_family_bits(&q)?;
    QUANTS.iter().find(|r| r.bits_per_weight == bits)
}

/// Nominal bit width of a quant name's family (`Q4_K_S` -> 4, `BF16` -> 16, `MXFP4` -> 4).
fn quant_family_bits(q: &str) -> Option<f64> {
    match q {
        "F16" | "BF16" => return Some(16.0),
        "MXFP4" | "MXFP4_MOE" => return Some(4.0),
        _ => {}
    }
    let rest = q
        .strip_prefix("IQ")
        .or_else(|| q.strip_prefix("TQ"))
        .or_else(|| q.strip_prefix('Q'))?;
    let digit = rest.chars().next()?.to_digit(10)?;
    (2..=8).contains(&digit).then_some(f64::from(digit))
}

/// The guide's family label of a quant, as the speed table writes it (`Q4`, `Q8`, `F16`).
pub fn quant_family(quant: &str) -> Option<String> {
    let row = quant_row(quant)?;
    Some(match row.quant {
        "F16" => "F16".to_string(),
        _ => format!("Q{}", row.bits_per_weight as u32),
    })
}

/// The guide's size formula ([`SECTION_SIZE_FORMULA`]): `params (B) x multiplier x 1.1`,
/// in GB (10^9 bytes). `None` when the quant has no guide row.
pub fn formula_size_gb(params_b: f64, quant: &str) -> Option<f64> {
    Some(params_b * quant_row(quant)?.multiplier * SIZE_OVERHEAD_FACTOR)
}

/// The guide's budget calculator constants ([`SECTION_BUDGET`]).
pub mod budget {
    /// `os_overhead = 16` (GB).
    pub const OS_OVERHEAD_GB: f64 = 16.0;
    /// `safety_buffer = total_ram_gb * 0.15`.
    pub const SAFETY_FRACTION: f64 = 0.15;
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
}

/// One row of an expected-speed table: the guide's ([`SECTION_SPEED`]) or a calibration's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeedRow {
    /// Row label (`7B Q4`, `235B MoE Q4`).
    pub label: Cow<'static, str>,
    /// Model size of the row in billions of parameters (total, for MoE rows).
    pub params_b: f64,
    /// Quant family of the row (`Q4`, `Q8`, `F16`).
    pub quant: Cow<'static, str>,
    /// Whether the row is about MoE models.
    #[serde(default)]
    pub moe: bool,
    /// Lower end of the expected decode rate, tokens per second.
    pub low_tps: f64,
    /// Upper end of the expected decode rate, tokens per second.
    pub high_tps: f64,
    /// The row's note (`Draft models`, `With MoE4 reduction`).
    #[serde(default)]
    pub note: Cow<'static, str>,
}

const fn speed(
    label: &'static str,
    params_b: f64,
    quant: &'static str,
    moe: bool,
    low: f64,
    high: f64,
    note: &'static str,
) -> SpeedRow {
    SpeedRow {
        label: Cow::Borrowed(label),
        params_b,
        quant: Cow::Borrowed(quant),
        moe,
        low_tps: low,
        high_tps: high,
        note: Cow::Borrowed(note),
    }
}

/// The guide's "Inference Speed by Model Size" table ([`SECTION_SPEED`]), "With AVX-512
/// (AMD EPYC or Intel Xeon)".
pub static SPEEDS: [SpeedRow; 8] = [
    speed("0.5B Q8", 0.5, "Q8", false, 80.0, 120.0, "Draft models"),
    speed("1.5B Q4", 1.5, "Q4", false, 50.0, 70.0, "Fast workers"),
    speed("7B Q4", 7.0, "Q4", false, 25.0, 40.0, "Workers"),
    speed("14B Q4", 14.0, "Q4", false, 15.0, 25.0, ""),
    speed("32B Q4", 32.0, "Q4", false, 8.0, 15.0, ""),
    speed("70B Q4", 70.0, "Q4", false, 4.0, 8.0, ""),
    speed(
        "235B MoE Q4",
        235.0,
        "Q4",
        true,
        5.0,
        7.0,
        "With MoE4 reduction",
    ),
    speed(
        "480B MoE Q4",
        480.0,
        "Q4",
        true,
        8.0,
        12.0,
        "With MoE3 reduction",
    ),
];

/// How far (as a size ratio) the nearest row may lie from the model for it to apply: a
/// 72B model uses the 70B row, a 3B model uses no row.
pub const MAX_ROW_SIZE_RATIO: f64 = 2.0;

/// The nearest row of `rows` for a model: same quant family, same dense/MoE kind, nearest
/// size on a log scale, at most [`MAX_ROW_SIZE_RATIO`] away.
pub fn nearest_row<'a>(
    rows: &'a [SpeedRow],
    params_b: f64,
    quant: &str,
    moe: bool,
) -> Option<&'a SpeedRow> {
    let family = quant_family(quant)?;
    if params_b.is_nan() || params_b <= 0.0 {
        return None;
    }
    let distance = |r: &SpeedRow| (params_b / r.params_b).ln().abs();
    rows.iter()
        .filter(|r| r.moe == moe && r.quant.eq_ignore_ascii_case(&family))
        .filter(|r| distance(r) <= MAX_ROW_SIZE_RATIO.ln() + 1e-9)
        .min_by(|a, b| distance(a).total_cmp(&distance(b)))
}

/// The guide's expected decode rate for a model: `(low_tps, high_tps, row label)` of the
/// nearest row by size ([`nearest_row`]), or `None` when the guide has no such row.
pub fn expected_tps(params_b: f64, quant: &str, moe: bool) -> Option<(f64, f64, &'static str)> {
    let row = nearest_row(&SPEEDS, params_b, quant, moe)?;
    let label = match row.label {
        Cow::Borrowed(s) => s,
        Cow::Owned(_) => unreachable!("SPEEDS holds only borrowed labels"),
    };
    Some((row.low_tps, row.high_tps, label))
}

/// A replaceable expected-speed table: the guide's by default, or a calibration file
/// (`expectations = "calibration/<host>.toml"` in a profile) written by `bench calibrate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// Where the figures come from (`guide: Performance Expectations > ...`, or the
    /// calibration's host and date).
    pub source: String,
    /// The speed rows.
    #[serde(rename = "speed")]
    pub rows: Vec<SpeedRow>,
}

/// The parts of a `bench calibrate` file the expected ranges come from.
#[derive(Debug, Deserialize)]
struct CalibrationFile {
    calibration: CalibrationHeader,
    #[serde(default)]
    speed: Vec<CalibrationSpeed>,
}

#[derive(Debug, Deserialize)]
struct CalibrationHeader {
    host: String,
    #[serde(default)]
    generated_utc: String,
}

/// A `[[speed]]` row of a calibration file: the guide's row, predicted for the host.
#[derive(Debug, Deserialize)]
struct CalibrationSpeed {
    /// The guide's size cell (`7B`, `235B MoE`).
    size: String,
    /// The guide's quant cell (`Q4`).
    quant: String,
    params_b: f64,
    low_tps: f64,
    high_tps: f64,
}

impl CalibrationSpeed {
    fn into_row(self) -> SpeedRow {
        SpeedRow {
            label: Cow::Owned(format!("{} {}", self.size, self.quant)),
            params_b: self.params_b,
            moe: self.size.contains("MoE"),
            quant: Cow::Owned(self.quant),
            low_tps: self.low_tps,
            high_tps: self.high_tps,
            note: Cow::Borrowed("calibrated"),
        }
    }
}

/// An expected range looked up in an [`Expectations`] table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpectedRange {
    /// Lower end, tokens per second.
    pub low_tps: f64,
    /// Upper end, tokens per second.
    pub high_tps: f64,
    /// Label of the row used.
    pub label: String,
    /// Source of the table.
    pub source: String,
}

impl Default for Expectations {
    fn default() -> Self {
        Self::guide()
    }
}

impl Expectations {
    /// The guide's own table.
    pub fn guide() -> Self {
        Expectations {
            source: format!("guide: {SECTION_SPEED}"),
            rows: SPEEDS.to_vec(),
        }
    }

    /// Parses an expectations TOML: this module's form (`source = "..."` and `[[speed]]`
    /// rows as [`SpeedRow`]), or the calibration file `bench calibrate` writes (a
    /// `[calibration]` table and `[[speed]]` rows with `size`, `quant`, `params_b`,
    /// `low_tps`, `high_tps`, whose other sections are left to the analysis module).
    pub fn from_toml(text: &str, origin: &str) -> anyhow::Result<Self> {
        let is_calibration =
            toml::from_str::<toml::Table>(text).is_ok_and(|t| t.contains_key("calibration"));
        if is_calibration {
            return Self::from_calibration_toml(text, origin);
        }
        Self::from_own_toml(text, origin)
    }

    fn from_calibration_toml(text: &str, origin: &str) -> anyhow::Result<Self> {
        let file: CalibrationFile = toml::from_str(text).map_err(|e| {
            anyhow::anyhow!("{}", crate::profile::describe_toml_error(origin, text, &e))
        })?;
        let rows = file
            .speed
            .into_iter()
            .map(CalibrationSpeed::into_row)
            .collect();
        let info = file.calibration;
        let source = format!(
            "calibration of {} ({}, {origin})",
            info.host, info.generated_utc
        );
        Self::checked(Expectations { source, rows }, origin)
    }

    fn from_own_toml(text: &str, origin: &str) -> anyhow::Result<Self> {
        let table: Self = toml::from_str(text).map_err(|e| {
            anyhow::anyhow!("{}", crate::profile::describe_toml_error(origin, text, &e))
        })?;
        Self::checked(table, origin)
    }

    fn checked(table: Self, origin: &str) -> anyhow::Result<Self> {
        for row in &table.rows {
            if !(row.low_tps <= row.high_tps && row.low_tps >= 0.0 && row.params_b > 0.0) {
                anyhow::bail!(
                    "{origin}: speed row `{}` needs 0 <= low_tps <= high_tps and params_b > 0",
                    row.label
                );
            }
        }
        Ok(table)
    }

    /// Reads an expectations TOML file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading expectations {}", path.display()))?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// The expected range for a model, from the nearest row ([`nearest_row`]).
    pub fn expected(&self, params_b: f64, quant: &str, moe: bool) -> Option<ExpectedRange> {
        let row = nearest_row(&self.rows, params_b, quant, moe)?;
        Some(ExpectedRange {
            low_tps: row.low_tps,
            high_tps: row.high_tps,
            label: row.label.to_string(),
            source: self.source.clone(),
        })
    }
}

/// One row of the guide's acceleration table ([`SECTION_ACCELERATION`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AccelerationRow {
    /// Method as the guide names it.
    pub method: &'static str,
    /// The profile mode(s) that implement it.
    pub modes: &'static str,
    /// Lower end of the typical speedup (x).
    pub low_speedup: f64,
    /// Upper end of the typical speedup (x).
    pub high_speedup: f64,
    /// "Best For" column.
    pub best_for: &'static str,
}

/// The guide's "Acceleration Methods" table ([`SECTION_ACCELERATION`]).
pub const ACCELERATIONS: [AccelerationRow; 4] = [
    AccelerationRow {
        method: "Speculative Decoding",
        modes: "spec:K",
        low_speedup: 3.0,
        high_speedup: 11.0,
        best_for: "Dense models with compatible drafts",
    },
    AccelerationRow {
        method: "Prompt Lookup",
        modes: "lookup[:TYPE]",
        low_speedup: 1.5,
        high_speedup: 12.0,
        best_for: "Tasks with repeated context",
    },
    AccelerationRow {
        method: "MoE Expert Reduction",
        modes: "moe:N",
        low_speedup: 1.5,
        high_speedup: 2.0,
        best_for: "MoE models only",
    },
    AccelerationRow {
        method: "Combined Spec+Lookup",
        modes: "spec:K+lookup",
        low_speedup: 5.0,
        high_speedup: 12.0,
        best_for: "Best results",
    },
];

/// One tier of the guide's decision tree ([`SECTION_TIERS`]): applies below `below_ram_gb`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TierRow {
    /// Tier name as the script prints it (`DEV ONLY`).
    pub name: &'static str,
    /// The profile of this repository that implements the tier.
    pub profile: &'static str,
    /// Upper bound (exclusive) of total RAM in GB; `f64::INFINITY` for the last tier.
    pub below_ram_gb: f64,
    /// The script's recommendation.
    pub summary: &'static str,
}

/// The guide's tiers, in order of RAM ([`SECTION_TIERS`]).
pub const TIERS: [TierRow; 6] = [
    TierRow {
        name: "DEV ONLY",
        profile: "dev",
        below_ram_gb: 32.0,
        summary: "Use mock mode or 0.5B-1.5B models",
    },
    TierRow {
        name: "MINIMAL",
        profile: "minimal",
        below_ram_gb: 64.0,
        summary: "One 7B model for all roles",
    },
    TierRow {
        name: "BASIC",
        profile: "basic",
        below_ram_gb: 128.0,
        summary: "Frontdoor + workers, no architects",
    },
    TierRow {
        name: "STANDARD",
        profile: "standard",
        below_ram_gb: 256.0,
        summary: "HOT tier + one architect",
    },
    TierRow {
        name: "PRODUCTION",
        profile: "production",
        below_ram_gb: 512.0,
        summary: "HOT + architect_general",
    },
    TierRow {
        name: "FULL",
        profile: "full",
        below_ram_gb: f64::INFINITY,
        summary: "All tiers including 480B architect",
    },
];

/// The guide's tier for a total RAM in GB.
pub fn tier_for_ram(total_ram_gb: f64) -> &'static TierRow {
    TIERS
        .iter()
        .find(|t| total_ram_gb < t.below_ram_gb)
        .unwrap_or(&TIERS[TIERS.len() - 1])
}

/// The guide's "Scaling Down" priority list ([`SECTION_SCALING_DOWN`]), most important
/// first, exactly as the guide lists it. `draft` and `worker_vision` are not in the guide's
/// list; see [`SCALING_ORDER`] for where the planner puts them.
pub const SCALING_DOWN_GUIDE: [&str; 6] = [
    "frontdoor",
    "workers",
    "coder_escalation",
    "ingest",
    "architect_general",
    "architect_coding",
];

/// The planner's keep order, most important first: the guide's list with `worker_vision`
/// inserted after `coder_escalation` (the guide's Basic configuration keeps
/// `coder_escalation` but not `worker_vision`; Standard adds it together with `ingest`).
/// `draft` has no place of its own: it is kept while a kept role names it as its draft.
pub const SCALING_ORDER: [&str; 7] = [
    "frontdoor",
    "workers",
    "coder_escalation",
    "worker_vision",
    "ingest",
    "architect_general",
    "architect_coding",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_reproduces_the_guide_examples() {
        // "Examples" table of the Size Formula section: 7B -> ~4, 32B -> ~18, 235B -> ~130, 480B -> ~265.
        let cases = [(7.0, 3.85), (32.0, 17.6), (235.0, 129.25), (480.0, 264.0)];
        for (params, want) in cases {
            let got = formula_size_gb(params, "Q4_K_M").unwrap();
            assert!((got - want).abs() < 1e-9, "{params}B: {got}");
        }
    }

    #[test]
    fn quant_families_map_onto_guide_rows() {
        assert_eq!(quant_row("Q4_K_S").unwrap().quant, "Q4_K_M");
        assert_eq!(quant_row("iq4_xs").unwrap().quant, "Q4_K_M");
        assert_eq!(quant_row("BF16").unwrap().quant, "F16");
        assert_eq!(quant_row("Q5_0").unwrap().quant, "Q5_K_M");
        assert_eq!(quant_row("Q8_0").unwrap().multiplier, 1.0);
        assert!(quant_row("F32").is_none());
        assert!(quant_row("Q9_K").is_none());
        assert_eq!(quant_family("Q6_K").as_deref(), Some("Q6"));
    }

    #[test]
    fn expected_tps_picks_the_nearest_row_of_the_same_kind() {
        assert_eq!(
            expected_tps(7.6, "Q4_K_M", false),
            Some((25.0, 40.0, "7B Q4"))
        );
        assert_eq!(
            expected_tps(72.7, "Q4_K_M", false),
            Some((4.0, 8.0, "70B Q4"))
        );
        assert_eq!(
            expected_tps(0.49, "Q8_0", false),
            Some((80.0, 120.0, "0.5B Q8"))
        );
        assert_eq!(
            expected_tps(235.0, "Q4_K_M", true).unwrap().2,
            "235B MoE Q4"
        );
        // No dense row near 200B, no F16 row, no 30B MoE row: the guide says nothing.
        assert_eq!(expected_tps(200.0, "Q4_K_M", false), None);
        assert_eq!(expected_tps(3.0, "Q4_K_M", false).unwrap().2, "1.5B Q4");
        assert_eq!(expected_tps(7.6, "F16", false), None);
        assert_eq!(expected_tps(30.5, "Q4_K_M", true), None);
    }

    #[test]
    fn expectations_toml_replaces_the_guide_rows() {
        let text = r#"
source = "calibration of host x"
[[speed]]
label = "7B Q4 (measured)"
params_b = 7.0
quant = "Q4"
low_tps = 9.5
high_tps = 11.0
"#;
        let e = Expectations::from_toml(text, "x.toml").unwrap();
        let r = e.expected(7.6, "Q4_K_M", false).unwrap();
        assert_eq!((r.low_tps, r.high_tps), (9.5, 11.0));
        assert_eq!(r.source, "calibration of host x");
        assert!(e.expected(32.0, "Q4_K_M", false).is_none());
        let bad = text.replace("high_tps = 11.0", "high_tps = 11.0\nspeed_up = 2");
        let err = Expectations::from_toml(&bad, "x.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.toml:") && err.contains("speed_up"), "{err}");
    }

    #[test]
    fn a_bench_calibrate_file_is_read_too() {
        // The shape `analysis::calibrate` writes; sections other than the header and the
        // speed rows are ignored here.
        let text = r#"
[calibration]
host = "box"
cpu_model = "x"
bandwidth_gbps = 20.0
generated_utc = "2026-11-27T12:00:00Z"
sources = ["a.csv"]

[[efficiency]]
family = "Q4"
moe = false
efficiency = 0.7

[[speed]]
size = "235B MoE"
quant = "Q4"
params_b = 235.0
active_params_b = 11.0
active_bytes_per_token = 6.6e9
low_tps = 1.5
high_tps = 2.5
guide_low_tps = 5.0
guide_high_tps = 7.0
fit = "Q4/moe"
"#;
        let e = Expectations::from_toml(text, "calibration/box.toml").unwrap();
        let r = e.expected(235.0, "Q4_K_M", true).unwrap();
        assert_eq!(
            (r.low_tps, r.high_tps, r.label.as_str()),
            (1.5, 2.5, "235B MoE Q4")
        );
        assert!(
            r.source.contains("box") && r.source.contains("calibration/box.toml"),
            "{}",
            r.source
        );
        assert!(e.expected(235.0, "Q4_K_M", false).is_none());
    }

    #[test]
    fn tiers_follow_the_assessment_script() {
        assert_eq!(tier_for_ram(31.9).name, "DEV ONLY");
        assert_eq!(tier_for_ram(32.0).name, "MINIMAL");
        assert_eq!(tier_for_ram(128.0).name, "STANDARD");
        assert_eq!(tier_for_ram(511.0).profile, "production");
        assert_eq!(tier_for_ram(2048.0).name, "FULL");
    }
}
