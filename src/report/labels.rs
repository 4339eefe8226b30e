//! Names in charts and tables that a reader can tell apart: a cell by its role, mode,
//! workload and slots (and threads and depth when they vary), marked when its output was
//! lossy or a near-tie flip; a machine by its host name, and by its CPU too when two machines
//! of a report share a host name (cloud VMs are all called `vm`). Labels too long for a
//! chart's label column are shortened in the middle, never cut at the left edge.

use crate::results::load::LoadedFile;
#[cfg(test)]
use crate::results::ResultRow;

/// Longest category label a chart shows whole (characters).
pub const MAX_LABEL: usize = 56;

/// `label` at most `max` characters, shortened in the middle (`abc…xyz`) so that both the
/// role at the start and the mode or mark at the end stay readable.
pub fn fit(label: &str, max: usize) -> String {
    let chars: Vec<char> = label.chars().collect();
    if chars.len() <= max || max < 5 {
        return label.to_owned();
    }
    let keep = max - 1;
    let head = keep / 2;
    let tail = keep - head;
    let mut s: String = chars[..head].iter().collect();
    s.push('…');
    s.extend(&chars[chars.len() - tail..]);
    s
}

/// Width in pixels of a label column holding `labels` at a 14-pixel font.
pub fn column_px(labels: &[String]) -> u32 {
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    (longest as u32 * 8 + 16).clamp(120, MAX_LABEL as u32 * 8 + 16)
}

/// One machine of a report: its name and the median bandwidth of its rows (GB/s).
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// Host name, with the CPU model when another machine shares the host name.
    pub name: String,
    /// Median of its rows' `bandwidth_gbps`, when any row has one.
    pub bandwidth_gbps: Option<f64>,
}

/// The machines of the files (a machine is a host name and a CPU model) and, per file, the
/// index of its machine.
pub fn machines(files: &[LoadedFile]) -> (Vec<Machine>, Vec<usize>) {
    let key = |f: &LoadedFile| {
        f.rows.first().map_or((String::new(), String::new()), |r| {
            (r.host.clone(), r.cpu_model.clone())
        })
    };
    let mut keys: Vec<(String, String)> = Vec::new();
    let mut of_file = Vec::new();
    for f in files {
        let k = key(f);
        let i = keys.iter().position(|x| *x == k).unwrap_or_else(|| {
            keys.push(k.clone());
            keys.len() - 1
        });
        of_file.push(i);
    }
    let machines = keys
        .iter()
        .enumerate()
        .map(|(i, (host, cpu))| {
            let shared = keys.iter().filter(|(h, _)| h == host).count() > 1;
            let host = if host.is_empty() { "?" } else { host };
            let mut bw: Vec<f64> = files
                .iter()
                .zip(&of_file)
                .filter(|(_, m)| **m == i)
                .flat_map(|(f, _)| f.rows.iter().filter_map(|r| r.bandwidth_gbps))
                .collect();
            bw.sort_by(f64::total_cmp);
            Machine {
                name: if shared {
                    format!("{host} ({cpu})")
                } else {
                    host.to_owned()
                },
                bandwidth_gbps: bw.get(bw.len() / 2).copied(),
            }
        })
        .collect();
    (machines, of_file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::PathBuf;

    fn file(host: &str, cpu: &str, bw: f64) -> LoadedFile {
        LoadedFile {
            path: PathBuf::from(format!("{host}.csv")),
            rows: vec![ResultRow {
                host: host.into(),
                cpu_model: cpu.into(),
                bandwidth_gbps: Some(bw),
                ..ResultRow::default()
            }],
            raw: HashMap::new(),
            raw_note: None,
            name: None,
        }
    }

    #[test]
    fn long_labels_lose_their_middle_not_their_ends() {
        let long = "qwen2.5-coder-32b-instruct-q4_k_m spec:16+lookup code-edit np=4";
        let short = fit(long, 30);
        assert_eq!(short.chars().count(), 30);
        assert!(short.starts_with("qwen2.5-coder-") && short.ends_with("code-edit np=4"));
        assert_eq!(fit("short", 30), "short");
    }

    #[test]
    fn two_machines_called_vm_are_told_apart_by_their_cpu() {
        let files = [
            file("vm", "AMD EPYC 9V74", 30.0),
            file("vm", "Intel Xeon Platinum 8480C", 60.0),
            file("vm", "AMD EPYC 9V74", 34.0),
            file("box1", "AMD EPYC 7B13", 20.0),
        ];
        let (machines, of_file) = machines(&files);
        assert_eq!(of_file, [0, 1, 0, 2]);
        let names: Vec<&str> = machines.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "vm (AMD EPYC 9V74)",
                "vm (Intel Xeon Platinum 8480C)",
                "box1"
            ]
        );
        // the median of 30 and 34 by rank: the upper one
        assert_eq!(machines[0].bandwidth_gbps, Some(34.0));
    }
}
