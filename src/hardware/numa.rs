//! NUMA nodes from /sys/devices/system/node: each node's CPUs and memory. Bandwidth and
//! llama.cpp's `--numa` behaviour depend on where memory sits relative to the threads.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use super::cpu::parse_cpulist;
use super::memory::{meminfo_value, GIB};

const NODE_SYSFS: &str = "/sys/devices/system/node";

/// One NUMA node.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NumaNode {
    /// Node id (the N of nodeN).
    pub id: u32,
    /// Logical CPU ids of the node.
    pub cpus: Vec<usize>,
    /// Memory of the node, in GiB (`Node N MemTotal`).
    pub mem_total_gib: f64,
    /// Free memory of the node, in GiB (`Node N MemFree`).
    pub mem_free_gib: f64,
}

/// Node id of a sysfs directory name such as `node12`.
pub fn node_id(dir_name: &str) -> Option<u32> {
    dir_name.strip_prefix("node")?.parse().ok()
}

/// Builds a node from the texts of its `cpulist` and `meminfo` files.
pub fn parse_node(id: u32, cpulist: &str, meminfo: &str) -> anyhow::Result<NumaNode> {
    let plain = rewrite(meminfo, id);
    let gib = |k: &str| meminfo_value(&plain, k).map_or(0.0, |b| b as f64 / GIB);
    Ok(NumaNode {
        id,
        cpus: parse_cpulist(cpulist)?,
        mem_total_gib: gib("MemTotal"),
        mem_free_gib: gib("MemFree"),
    })
}

/// Drops the `Node N ` prefix of each line so the /proc/meminfo parser applies.
fn rewrite(meminfo: &str, id: u32) -> String {
    let prefix = format!("Node {id} ");
    meminfo
        .lines()
        .map(|l| l.trim_start().strip_prefix(&prefix).unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads every node of this machine, sorted by id; empty when sysfs has no NUMA view.
pub fn read_nodes() -> anyhow::Result<Vec<NumaNode>> {
    let root = Path::new(NODE_SYSFS);
    let Ok(entries) = std::fs::read_dir(root) else {
        return Ok(Vec::new());
    };
    let mut ids: Vec<u32> = entries
        .filter_map(|e| node_id(&e.ok()?.file_name().to_string_lossy()))
        .collect();
    ids.sort_unstable();
    ids.into_iter().map(|id| read_node(root, id)).collect()
}

fn read_node(root: &Path, id: u32) -> anyhow::Result<NumaNode> {
    let dir = root.join(format!("node{id}"));
    let read = |f: &str| {
        let p = dir.join(f);
        std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
    };
    parse_node(id, &read("cpulist")?, &read("meminfo")?)
        .with_context(|| format!("parsing NUMA node {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &str = "Node 1 MemTotal:       13330636 kB\n\
Node 1 MemFree:         3818780 kB\nNode 1 MemUsed:         9511856 kB\n";

    #[test]
    fn parses_node_cpus_and_memory() {
        let node = parse_node(1, "8-11,24\n", MEMINFO).unwrap();
        assert_eq!(node.cpus, vec![8, 9, 10, 11, 24]);
        assert!((node.mem_total_gib - 13_330_636.0 * 1024.0 / GIB).abs() < 1e-9);
        assert!((node.mem_free_gib - 3_818_780.0 * 1024.0 / GIB).abs() < 1e-9);
    }

    #[test]
    fn lines_of_another_node_are_not_read() {
        let node = parse_node(0, "0", MEMINFO).unwrap();
        assert_eq!(node.mem_total_gib, 0.0);
    }

    #[test]
    fn memoryless_node_with_empty_cpulist() {
        let node = parse_node(2, "\n", "Node 2 MemTotal: 0 kB\n").unwrap();
        assert!(node.cpus.is_empty());
    }

    #[test]
    fn node_dir_names() {
        assert_eq!(node_id("node0"), Some(0));
        assert_eq!(node_id("node12"), Some(12));
        assert_eq!(node_id("possible"), None);
        assert_eq!(node_id("nodex"), None);
    }
}
