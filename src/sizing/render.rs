//! The `bench plan` table: the budget as its title, one row per role, then what fits, what
//! was dropped and why as its notes (terminal, Markdown; CSV has the rows alone).
//! Formatting only; the plan is computed elsewhere.

use super::plan::{KvSource, Plan, PlanStatus, RamSource, RolePlan, SizeSource, GIB};
use crate::guide;
use crate::util::output::Table;

fn gib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / GIB)
}

fn weights_source(r: &RolePlan) -> &'static str {
    match r.size.weights_source {
        SizeSource::GgufExact => "GGUF exact",
        SizeSource::GuideFormula if r.size.read_error.is_some() => "formula (file unreadable)",
        SizeSource::GuideFormula => "formula (no file)",
        SizeSource::SynthLayout => "synthetic layout (no file)",
        SizeSource::Unknown => "unknown",
    }
}

fn kv_source(r: &RolePlan) -> &'static str {
    match r.size.kv_source {
        KvSource::GgufExact => "GGUF exact",
        KvSource::SynthShape => "synthetic shape",
        KvSource::Profile => "profile",
        KvSource::Estimate => "estimate",
    }
}

fn header(p: &Plan) -> String {
    let b = &p.budget;
    let ram = match p.ram_source {
        RamSource::Flag => "--ram",
        RamSource::ThisMachine => "MemTotal of this machine",
    };
    format!(
        "profile {} ({}, sha256 {})\nRAM {:.1} GiB ({ram}); guide tier for it: {} (profile `{}`)\n\
         budget ({}): {:.1} - OS {:.1} - safety {:.1} = {:.1} GiB for models (HOT share {:.1}, WARM share {:.1})\n",
        p.profile,
        p.profile_source,
        &p.profile_sha256[..12.min(p.profile_sha256.len())],
        p.ram_gib,
        p.guide_tier,
        p.guide_tier_profile,
        guide::SECTION_BUDGET,
        b.total_ram_gb,
        b.os_overhead_gb,
        b.safety_buffer_gb,
        b.available_gb,
        b.hot_gb,
        b.warm_gb,
    )
}

/// The whole report as one table (its notes for stderr are [`notes`]).
pub fn table(p: &Plan) -> Table {
    let mut t = Table::new([
        "role",
        "tier",
        "model",
        "quant",
        "weights GiB",
        "from",
        "layout GiB",
        "ctx",
        "KV GiB",
        "KV from",
        "total GiB",
        "keep",
        "status",
    ])
    .titled(header(p).trim_end());
    for r in &p.roles {
        let model = r
            .model
            .as_ref()
            .map_or("-".to_string(), |m| m.display().to_string());
        let status = match &r.status {
            PlanStatus::Kept => "fits".to_string(),
            PlanStatus::Dropped(_) => "DROPPED".to_string(),
            PlanStatus::Unsized(_) => "UNSIZED".to_string(),
        };
        t.push(vec![
            r.name.clone(),
            r.tier.to_string(),
            model,
            r.quant.clone(),
            r.size.weights_bytes.map_or("?".into(), gib),
            weights_source(r).to_string(),
            r.size.layout_bytes.map_or("-".into(), gib),
            r.ctx.to_string(),
            gib(r.size.kv_bytes),
            kv_source(r).to_string(),
            gib(r.size.total_bytes),
            r.keep_rank.to_string(),
            status,
        ]);
    }
    t.notes = summary(p).lines().map(String::from).collect();
    t.note(format!(
        "keep order ({}): {}; a draft ranks with its most important user and goes when all its users are gone",
        guide::SECTION_SCALING_DOWN,
        guide::SCALING_ORDER.join(" > ")
    ));
    t
}

fn summary(p: &Plan) -> String {
    let kept: Vec<&str> = p
        .roles
        .iter()
        .filter(|r| r.kept())
        .map(|r| r.name.as_str())
        .collect();
    let mut out = format!(
        "fits: {} ({} GiB of {:.1} GiB; HOT {} GiB, WARM {} GiB)\n",
        if kept.is_empty() {
            "nothing".to_string()
        } else {
            kept.join(", ")
        },
        gib(p.kept_bytes),
        p.budget.available_gb.max(0.0),
        gib(p.hot_bytes),
        gib(p.warm_bytes),
    );
    for r in &p.roles {
        if let PlanStatus::Unsized(reason) = &r.status {
            out.push_str(&format!("not sized: {}: {reason}\n", r.name));
        }
    }
    let mut dropped: Vec<&RolePlan> = p.roles.iter().filter(|r| r.dropped()).collect();
    dropped.sort_by_key(|r| r.drop_step.unwrap_or(0));
    for r in dropped {
        if let PlanStatus::Dropped(reason) = &r.status {
            out.push_str(&format!(
                "dropped: {} ({} GiB): {reason}\n",
                r.name,
                gib(r.size.total_bytes)
            ));
        }
    }
    out
}

/// The plan's notes, one `note: ...` line each (printed on stderr, apart from the report).
pub fn notes(p: &Plan) -> String {
    p.notes.iter().map(|n| format!("note: {n}\n")).collect()
}
