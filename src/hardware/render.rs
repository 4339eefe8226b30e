//! The `bench hw` report as two tables of the one output mechanism (facts, then bandwidth
//! per thread count): an aligned list and a bordered table on the terminal, two Markdown
//! or CSV tables otherwise. Formatting only; nothing here measures.

use crate::util::output::{Report, Style, Table};

use super::cpu::format_cpulist;
use super::Hardware;

/// The report: the facts, a blank line, the bandwidth table.
pub fn report(hw: &Hardware) -> Report {
    Report::tables([facts(hw), bandwidth(hw)])
}

fn facts(hw: &Hardware) -> Table {
    let mut t = Table::new(["fact", "value"]).styled(Style::Plain);
    for (key, value) in fact_rows(hw) {
        t.push(vec![key.to_string(), value]);
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
                "{:.1} GB/s best, with {} thread{}; {:.1} GB/s median of 25-ms blocks \
                 (spread {:.1}%), with {}",
                hw.best_bandwidth_gbps,
                hw.best_bandwidth_threads,
                if hw.best_bandwidth_threads == 1 {
                    ""
                } else {
                    "s"
                },
                hw.centre_bandwidth_gbps,
                hw.centre_bandwidth_spread_pct,
                hw.centre_bandwidth_threads
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
    let mut t = Table::new([
        "threads",
        "read GB/s (best)",
        "median GB/s",
        "passes",
        "best pass ms",
        "blocks median GB/s",
        "spread",
    ])
    .styled(Style::Borders)
    .right_aligned(0..7);
    for p in &hw.bandwidth {
        t.push(vec![
            p.threads.to_string(),
            format!("{:.1}", p.bandwidth_gbps),
            format!("{:.1}", p.median_bandwidth_gbps),
            p.passes.to_string(),
            format!("{:.2}", p.best_pass_secs * 1e3),
            format!("{:.1}", p.centre_gbps),
            format!("{:.1}%", p.spread_pct),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::{BandwidthPoint, IsaFeatures, NumaNode, Storage, Tier};

    fn fixture() -> Hardware {
        Hardware {
            hw_schema_version: 1,
            ram_total_gib: 251.4,
            ram_available_gib: 200.0,
            cpu_model: "Test CPU 9000".into(),
            sockets: 2,
            physical_cores: 64,
            logical_cores: 128,
            isa: IsaFeatures {
                arch: "x86_64".into(),
                avx2: true,
                amx_int8: true,
                ..IsaFeatures::default()
            },
            numa: vec![NumaNode {
                id: 0,
                cpus: vec![0, 1, 2, 3, 8],
                mem_total_gib: 125.7,
                mem_free_gib: 100.0,
            }],
            storage: Storage {
                models_dir: "/models".into(),
                free_bytes: 0,
                total_bytes: 0,
                free_gib: 1000.0,
                total_gib: 2000.0,
            },
            llc_bytes: Some(256 << 20),
            bandwidth_buffer_bytes: 2 << 30,
            bandwidth: vec![BandwidthPoint {
                threads: 1,
                bandwidth_gbps: 31.25,
                median_bandwidth_gbps: 30.0,
                passes: 40,
                bytes_per_pass: 32 << 20,
                best_pass_secs: 0.001,
                centre_gbps: 29.5,
                spread_pct: 4.2,
                blocks: 40,
            }],
            best_bandwidth_gbps: 31.25,
            best_bandwidth_threads: 1,
            centre_bandwidth_gbps: 29.5,
            centre_bandwidth_threads: 1,
            centre_bandwidth_spread_pct: 4.2,
            tier: Tier::Standard,
            tier_reason: "because".into(),
        }
    }

    #[test]
    fn table_shows_every_fact_and_each_bandwidth_row() {
        let text = report(&fixture()).terminal();
        for needle in [
            "Test CPU 9000",
            "2 socket(s), 64 physical, 128 logical",
            "251.4 GiB total",
            "AVX2 AMX_INT8",
            "node0: CPUs 0-3,8, 125.7 GiB",
            "256 MiB (bandwidth buffer 2048 MiB)",
            "/models: 1000.0 GiB free of 2000.0 GiB",
            "31.2 GB/s best, with 1 thread",
            "29.5 GB/s median of 25-ms blocks (spread 4.2%), with 1",
            "STANDARD: because",
            "read GB/s (best)",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert!(
            text.lines().all(|l| l == l.trim_end()),
            "trailing spaces in\n{text}"
        );
    }

    #[test]
    fn table_markdown_csv_and_json_hold_the_same_facts() {
        use crate::util::output::Format;
        let hw = fixture();
        let r = report(&hw);
        let json: serde_json::Value =
            serde_json::from_str(&r.render(Format::Json, &hw).unwrap()).unwrap();
        let p = &json["bandwidth"][0];
        let bw_row = vec![
            p["threads"].to_string(),
            format!("{:.1}", p["bandwidth_gbps"].as_f64().unwrap()),
            format!("{:.1}", p["median_bandwidth_gbps"].as_f64().unwrap()),
            p["passes"].to_string(),
            format!("{:.2}", p["best_pass_secs"].as_f64().unwrap() * 1e3),
            format!("{:.1}", p["centre_gbps"].as_f64().unwrap()),
            format!("{:.1}%", p["spread_pct"].as_f64().unwrap()),
        ];
        assert_eq!(bw_row, ["1", "31.2", "30.0", "40", "1.00", "29.5", "4.2%"]);
        let md = crate::util::output::markdown_cells(&r.markdown());
        assert_eq!(md.last().unwrap(), &bw_row);
        let csv = r.csv().unwrap();
        assert!(csv.ends_with(&format!("{}\n", bw_row.join(","))), "{csv}");
        assert!(md.contains(&vec![
            "CPU".to_string(),
            json["cpu_model"].as_str().unwrap().into()
        ]));
        let terminal = r.terminal();
        for row in &md[1..] {
            for cell in row
                .iter()
                .filter(|c| c.as_str() != "value" && c.as_str() != "threads")
            {
                assert!(
                    terminal.contains(cell.as_str()),
                    "{cell:?} not in\n{terminal}"
                );
                assert!(csv.contains(cell.as_str()), "{cell:?} not in\n{csv}");
            }
        }
    }
}
