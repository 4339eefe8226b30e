//! The human form of the `bench hw` report: two small aligned tables (facts, then bandwidth
//! per thread count). Formatting only; nothing here measures.

use comfy_table::{presets, CellAlignment, Table};

use super::cpu::format_cpulist;
use super::Hardware;

/// The report as text, ready to print.
pub fn table(hw: &Hardware) -> String {
    format!("{}\n\n{}\n", facts(hw), bandwidth(hw))
}

fn facts(hw: &Hardware) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    for (key, value) in fact_rows(hw) {
        t.add_row(vec![key.to_string(), value]);
    }
    t
}

fn fact_rows(hw: &Hardware) -> Vec<(&'static str, String)> {
    let isa = hw.isa.present();
    vec![
        ("CPU", hw.cpu_model.clone()),
        (
            "Cores",
            format!(
                "{} socket(s), {} physical, {} logical",
                hw.sockets, hw.physical_cores, hw.logical_cores
            ),
        ),
        (
            "RAM",
            format!(
                "{:.1} GiB total, {:.1} GiB available",
                hw.ram_total_gib, hw.ram_available_gib
            ),
        ),
        (
            "ISA",
            if isa.is_empty() {
                format!("{} (none of the listed features)", hw.isa.arch)
            } else {
                isa.join(" ")
            },
        ),
        ("NUMA", numa(hw)),
        ("Last-level cache", llc(hw)),
        (
            "Models dir",
            format!(
                "{}: {:.1} GiB free of {:.1} GiB",
                hw.storage.models_dir.display(),
                hw.storage.free_gib,
                hw.storage.total_gib
            ),
        ),
        (
            "Read bandwidth",
            format!(
                "{:.1} GB/s best ({} threads)",
                hw.best_bandwidth_gbps, hw.best_bandwidth_threads
            ),
        ),
        ("Tier", format!("{}: {}", hw.tier, hw.tier_reason)),
    ]
}

fn numa(hw: &Hardware) -> String {
    if hw.numa.is_empty() {
        return "no NUMA information".to_string();
    }
    let nodes: Vec<String> = hw
        .numa
        .iter()
        .map(|n| {
            format!(
                "node{}: CPUs {}, {:.1} GiB",
                n.id,
                format_cpulist(&n.cpus),
                n.mem_total_gib
            )
        })
        .collect();
    format!("{} node(s); {}", hw.numa.len(), nodes.join("; "))
}

fn llc(hw: &Hardware) -> String {
    let buffer = format!("bandwidth buffer {} MiB", hw.bandwidth_buffer_bytes >> 20);
    match hw.llc_bytes {
        Some(b) => format!("{} MiB ({buffer})", b >> 20),
        None => format!("unknown ({buffer})"),
    }
}

fn bandwidth(hw: &Hardware) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_BORDERS_ONLY);
    t.set_header(vec![
        "threads",
        "read GB/s (best)",
        "median GB/s",
        "passes",
        "best pass ms",
    ]);
    for p in &hw.bandwidth {
        t.add_row(vec![
            p.threads.to_string(),
            format!("{:.1}", p.bandwidth_gbps),
            format!("{:.1}", p.median_bandwidth_gbps),
            p.passes.to_string(),
            format!("{:.2}", p.best_pass_secs * 1e3),
        ]);
    }
    for i in 0..5 {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}
