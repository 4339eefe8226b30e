//! The model sizing guide (`docs/model-sizing-guide.md`) as data, defined once.
//!
//! The guide is the product's reference document: the harness puts measurements where it
//! has estimates. Its tables (quantization, speed by model size, acceleration methods,
//! hardware tiers), its size formula, its budget calculator and its scaling-down order live
//! here and nowhere else; `profile`, `hardware`, `sizing`, `driver`, `analysis` and `report`
//! read them from this module. Every figure names the guide section it comes from (the
//! `SECTION_*` constants, headings of `docs/model-sizing-guide.md`), so that a report can cite
//! it, and an expectations TOML ([`Expectations`], written by `bench calibrate`) can replace
//! the speed ranges without touching code. Nothing here is measured: these are the guide's
//! claims, which the rest of the harness checks against measurements.

pub mod acceleration;
pub mod budget;
pub mod expectations;
pub mod quant;
pub mod speed;
pub mod tiers;

pub use acceleration::{AccelerationRow, ACCELERATIONS};
pub use expectations::{nearest_row, Expectations, ExpectedRange, ExpectedRow, MAX_ROW_SIZE_RATIO};
pub use quant::{
    effective_bits_per_weight, formula_size_gb, quant_family, quant_group, quant_row, QuantRow,
    KNOWN_QUANTS, QUANTS, SIZE_OVERHEAD_FACTOR,
};
pub use speed::{moe_active_params_b, SpeedRow, SPEEDS};
pub use tiers::{tier_for_ram, TierRow, SCALING_DOWN_GUIDE, SCALING_ORDER, TIERS};

/// Where the guide is kept in this repository.
pub const GUIDE_PATH: &str = "docs/model-sizing-guide.md";

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

#[cfg(test)]
mod tests {
    #[test]
    fn every_cited_section_is_a_heading_of_the_committed_guide() {
        let text = include_str!("../../docs/model-sizing-guide.md");
        let headings: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("### ").or_else(|| l.strip_prefix("## ")))
            .collect();
        for section in [
            super::SECTION_QUANT,
            super::SECTION_SIZE_FORMULA,
            super::SECTION_BUDGET,
            super::SECTION_RAM_ALLOCATION,
            super::SECTION_SPEED,
            super::SECTION_ACCELERATION,
            super::SECTION_TIERS,
            super::SECTION_SCALING_DOWN,
        ] {
            for path in section.split("; ") {
                for part in path.split(" > ") {
                    assert!(headings.contains(&part), "`{part}` of `{section}`");
                }
            }
        }
    }
}
