//! Quant names and the guide's size formula (`docs/model-sizing-guide.md`, "Model Size
//! Estimation > Quantization Impact" and "Size Formula"), with what the guide leaves implicit
//! made explicit: which guide row a llama-quantize type belongs to, and the effective bits per
//! weight of each type as written to GGUF (for the active bytes per token of a guide row).

use serde::Serialize;

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

/// The guide's quantization table ([`super::SECTION_QUANT`]).
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

/// The size formula's overhead factor ([`super::SECTION_SIZE_FORMULA`]: "The 1.1 factor accounts
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

/// The guide's size formula ([`super::SECTION_SIZE_FORMULA`]): `params (B) x multiplier x 1.1`,
/// in GB (10^9 bytes). `None` when the quant has no guide row.
pub fn formula_size_gb(params_b: f64, quant: &str) -> Option<f64> {
    Some(params_b * quant_row(quant)?.multiplier * SIZE_OVERHEAD_FACTOR)
}

/// Quant group used to pool efficiency fits in `bench calibrate`: "F32", "F16", "BF16", or
/// "Q<bits>" (Q4_K_M, IQ4_XS and MXFP4 are all "Q4"); anything else is returned upper-cased.
/// Unlike [`quant_family`], BF16 stays apart from F16 (different kernels) and every name has
/// a group.
pub fn quant_group(quant: &str) -> String {
    let q = quant.trim().to_ascii_uppercase();
    if q == "F32" || q == "F16" || q == "BF16" {
        return q;
    }
    if q == "MXFP4" {
        return "Q4".into();
    }
    let rest = q
        .strip_prefix("IQ")
        .or_else(|| q.strip_prefix('Q'))
        .or_else(|| q.strip_prefix("TQ"));
    match rest
        .and_then(|r| r.chars().next())
        .filter(|c| c.is_ascii_digit())
    {
        Some(d) => format!("Q{d}"),
        None => q,
    }
}

/// Effective bits per weight of a llama.cpp quant as written to GGUF, block scales included
/// (ggml block sizes: Q8_0 34 bytes / 32 weights = 8.5; Q6_K 6.5625; Q4_K 4.5; K-quant "_M"
/// mixes keep some tensors at a higher type: llama.cpp reports about 4.85 for Q4_K_M and 5.7
/// for Q5_K_M on 7B-class models). Unknown quants fall back to the group's nominal bits.
pub fn effective_bits_per_weight(quant: &str) -> f64 {
    match quant.to_ascii_uppercase().as_str() {
        "F32" => 32.0,
        "F16" | "BF16" => 16.0,
        "Q8_0" => 8.5,
        "Q6_K" => 6.5625,
        "Q5_K_M" => 5.7,
        "Q5_0" | "Q5_K_S" => 5.5,
        "Q4_K_M" => 4.85,
        "Q4_0" | "Q4_K_S" | "Q4_K" => 4.5,
        "Q3_K_M" => 3.9,
        "Q2_K" => 3.35,
        other => group_bits(&quant_group(other)).unwrap_or(16.0),
    }
}

fn group_bits(group: &str) -> Option<f64> {
    let digits: String = group.chars().filter(|c| c.is_ascii_digit()).collect();
    digits.parse::<f64>().ok()
}

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
        assert!(formula_size_gb(1.0, "weird").is_none());
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
    fn groups_and_effective_bits() {
        assert_eq!(quant_group("Q4_K_M"), "Q4");
        assert_eq!(quant_group("iq4_xs"), "Q4");
        assert_eq!(quant_group("MXFP4"), "Q4");
        assert_eq!(quant_group("Q8_0"), "Q8");
        assert_eq!(quant_group("F16"), "F16");
        assert_eq!(quant_group("BF16"), "BF16");
        assert_eq!(effective_bits_per_weight("Q8_0"), 8.5);
        assert_eq!(effective_bits_per_weight("IQ3_XXS"), 3.0);
    }
}
