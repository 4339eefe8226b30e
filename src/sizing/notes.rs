//! The text notes under `bench plan`'s table: which roles were sized how, how far the
//! formula lies from the preset layouts, and where the plan departs from the guide's HOT and
//! WARM shares.

use super::plan::{Plan, RolePlan};
use super::role_size::{SizeSource, GIB};

fn names_with(plan: &Plan, source: SizeSource) -> Vec<&str> {
    let roles = plan
        .roles
        .iter()
        .filter(|r| r.size.weights_source == source);
    roles.map(|r| r.name.as_str()).collect()
}

/// Which roles were sized how, and how far the formula lies from the preset layouts.
fn source_notes(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    let dir = plan.models_dir.display();
    let formula = names_with(plan, SizeSource::GuideFormula);
    if !formula.is_empty() {
        out.push(format!(
            "sized by the guide's formula (no GGUF file under {dir}): {}",
            formula.join(", ")
        ));
    }
    let layout = names_with(plan, SizeSource::SynthLayout);
    if !layout.is_empty() {
        out.push(format!(
            "sized by their synthetic layout (no GGUF file under {dir}): {}",
            layout.join(", ")
        ));
    }
    let pairs = plan
        .roles
        .iter()
        .filter(|r| r.size.weights_source == SizeSource::GuideFormula);
    let (formula_sum, layout_sum) = pairs
        .filter_map(|r| Some((r.size.formula_bytes?, r.size.layout_bytes?)))
        .fold((0u64, 0u64), |(f, l), (a, b)| (f + a, l + b));
    if layout_sum > formula_sum {
        out.push(format!(
            "the synthetic layouts of the formula-sized roles need {:.1} GiB more than the formula ({:+.1}%); `--layout` plans with them",
            (layout_sum - formula_sum) as f64 / GIB,
            (layout_sum as f64 - formula_sum as f64) / formula_sum as f64 * 100.0
        ));
    }
    out.extend(plan.roles.iter().filter_map(quant_label_note));
    out
}

/// A profile quant label that disagrees with the file's own type (which the plan uses).
fn quant_label_note(r: &RolePlan) -> Option<String> {
    let file = r.size.file_quant.as_deref()?;
    let label = r.profile_quant.as_deref()?;
    (!label.eq_ignore_ascii_case(file)).then(|| {
        format!(
            "role {}: the profile says quant {label} but its file is {file}; planned as {file}",
            r.name
        )
    })
}

/// The notes of a plan, one line each.
pub fn notes(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    let hot_gib = plan.hot_bytes as f64 / GIB;
    if hot_gib > plan.budget.hot_gb {
        out.push(format!(
            "HOT roles take {hot_gib:.1} GiB, more than the guide's HOT share of {:.1} GiB (10% of the budget); \
             the guide's own configurations do the same (Standard: ~48 GB HOT against 20 GB), so only the total \
             is enforced",
            plan.budget.hot_gb
        ));
    }
    out.extend(source_notes(plan));
    for r in plan.roles.iter().filter(|r| r.size.read_error.is_some()) {
        out.push(format!(
            "{}: file present but unreadable, formula used: {}",
            r.name,
            r.size.read_error.as_deref().unwrap_or("")
        ));
    }
    out.push(
        "KV cache is f16 at each role's ctx; llama.cpp's compute buffers (guide: 2-4 GB per server) are left to \
         the 15% safety buffer"
            .into(),
    );
    if plan.roles.iter().any(RolePlan::dropped) && !plan.roles.iter().any(RolePlan::kept) {
        out.push(format!(
            "nothing fits: the guide's tier for {:.1} GiB is {} (profile `{}`)",
            plan.ram_gib, plan.guide_tier, plan.guide_tier_profile
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sizing::plan::tests::production_at;

    #[test]
    fn a_machine_too_small_for_anything_is_told_its_tier() {
        let notes = notes(&production_at(32.0));
        assert!(notes.iter().any(|n| n.contains("MINIMAL")), "{notes:?}");
    }

    #[test]
    fn formula_sizing_says_how_to_size_by_layout() {
        let notes = notes(&production_at(512.0));
        assert!(
            notes
                .iter()
                .any(|n| n.contains("need") && n.contains("`--layout`")),
            "{notes:?}"
        );
    }
}
