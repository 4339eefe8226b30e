//! CPU topology from Linux sysfs: logical and physical cores, sockets, the model string and
//! the last-level cache size. Parsers take strings so that tests can feed them fixtures;
//! non-Linux systems fall back to `std::thread::available_parallelism`.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{bail, Context};

const CPU_SYSFS: &str = "/sys/devices/system/cpu";

/// Parses a Linux CPU list such as `0-3,8,10-11` into sorted CPU ids.
pub fn parse_cpulist(text: &str) -> anyhow::Result<Vec<usize>> {
    let mut cpus = BTreeSet::new();
    for part in text.trim().split(',').filter(|p| !p.trim().is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (parse_id(lo, text)?, parse_id(hi, text)?),
            None => (parse_id(part, text)?, parse_id(part, text)?),
        };
        if lo > hi || hi - lo > 1 << 20 {
            bail!("bad CPU range {part:?} in CPU list {text:?}");
        }
        cpus.extend(lo..=hi);
    }
    Ok(cpus.into_iter().collect())
}

/// Formats sorted CPU ids back into the compact Linux form (`0-3,8`).
pub fn format_cpulist(cpus: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

fn parse_id(s: &str, list: &str) -> anyhow::Result<usize> {
    s.trim()
        .parse()
        .with_context(|| format!("bad CPU id {s:?} in CPU list {list:?}"))
}

/// Where one logical CPU sits: its package (socket) and the set of hardware threads that
/// share its core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuPlace {
    pub cpu: usize,
    pub package_id: i64,
    pub core_id: i64,
    /// `thread_siblings_list` of the CPU when sysfs has it: the threads of one core.
    pub siblings: Option<Vec<usize>>,
}

/// Counts sockets and physical cores: a core is a distinct set of thread siblings, or a
/// distinct (package, core id) pair when sibling lists are missing.
pub fn count_topology(places: &[CpuPlace]) -> (usize, usize) {
    let sockets: BTreeSet<i64> = places.iter().map(|p| p.package_id).collect();
    let cores: BTreeSet<(i64, i64, Vec<usize>)> = places
        .iter()
        .map(|p| match &p.siblings {
            Some(s) => (-1, -1, s.clone()),
            None => (p.package_id, p.core_id, Vec::new()),
        })
        .collect();
    (sockets.len().max(1), cores.len().max(1))
}

/// Online logical CPUs from sysfs, or `available_parallelism` where sysfs is missing.
pub fn online_cpus() -> Vec<usize> {
    fs::read_to_string(Path::new(CPU_SYSFS).join("online"))
        .ok()
        .and_then(|t| parse_cpulist(&t).ok())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| (0..fallback_parallelism()).collect())
}

fn fallback_parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// Reads the topology of every online CPU; `None` when sysfs has no topology.
pub fn read_places() -> Option<Vec<CpuPlace>> {
    online_cpus()
        .into_iter()
        .map(|cpu| {
            let dir = Path::new(CPU_SYSFS).join(format!("cpu{cpu}/topology"));
            let num = |f: &str| read_trimmed(&dir.join(f)).and_then(|s| s.parse().ok());
            Some(CpuPlace {
                cpu,
                package_id: num("physical_package_id")?,
                core_id: num("core_id")?,
                siblings: read_trimmed(&dir.join("thread_siblings_list"))
                    .and_then(|s| parse_cpulist(&s).ok()),
            })
        })
        .collect()
}

/// Number of online logical CPUs.
pub fn logical_cores() -> usize {
    online_cpus().len()
}

/// (sockets, physical cores) of this machine, computed once.
pub fn topology() -> (usize, usize) {
    static TOPO: OnceLock<(usize, usize)> = OnceLock::new();
    *TOPO.get_or_init(|| match read_places() {
        Some(places) if !places.is_empty() => count_topology(&places),
        _ => (1, fallback_parallelism()),
    })
}

/// Physical cores (hyper-threads of one core counted once); the driver's default thread count.
pub fn physical_cores() -> usize {
    topology().1
}

/// The CPU model string: the CPUID brand string on x86, else /proc/cpuinfo.
pub fn cpu_model() -> String {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        let brand = raw_cpuid::CpuId::new()
            .get_processor_brand_string()
            .map(|b| b.as_str().trim().to_string());
        if let Some(b) = brand.filter(|b| !b.is_empty()) {
            return b;
        }
    }
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| model_from_cpuinfo(&t))
        .unwrap_or_else(|| format!("unknown {} CPU", std::env::consts::ARCH))
}

/// The first "model name", "Processor", "cpu model" or "Hardware" line of /proc/cpuinfo.
pub fn model_from_cpuinfo(text: &str) -> Option<String> {
    const KEYS: [&str; 4] = ["model name", "Processor", "cpu model", "Hardware"];
    KEYS.iter().find_map(|key| {
        text.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            (k.trim() == *key && !v.trim().is_empty()).then(|| v.trim().to_string())
        })
    })
}

/// One cache of one CPU as sysfs describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRecord {
    pub level: u32,
    pub kind: String,
    pub size_bytes: u64,
    pub shared_cpu_list: String,
}

/// Parses sysfs cache sizes such as `32768K`, `1M` or `512`.
pub fn parse_cache_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (digits, mult) = match t.chars().last()? {
        'K' | 'k' => (&t[..t.len() - 1], 1u64 << 10),
        'M' | 'm' => (&t[..t.len() - 1], 1 << 20),
        'G' | 'g' => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(mult)
}

/// Total bytes of the highest cache level, each shared instance counted once (so a
/// two-socket machine with one L3 per socket counts both L3s).
pub fn total_llc_bytes(records: &[CacheRecord]) -> Option<u64> {
    let data = records.iter().filter(|r| r.kind != "Instruction");
    let top = data.clone().map(|r| r.level).max()?;
    let instances: BTreeSet<(&str, u64)> = data
        .filter(|r| r.level == top)
        .map(|r| (r.shared_cpu_list.as_str(), r.size_bytes))
        .collect();
    Some(instances.iter().map(|(_, b)| b).sum())
}

fn read_cache_records() -> Vec<CacheRecord> {
    let mut out = Vec::new();
    for cpu in online_cpus() {
        let dir = Path::new(CPU_SYSFS).join(format!("cpu{cpu}/cache"));
        for index in 0..16 {
            let d = dir.join(format!("index{index}"));
            let rec = (|| {
                Some(CacheRecord {
                    level: read_trimmed(&d.join("level"))?.parse().ok()?,
                    kind: read_trimmed(&d.join("type"))?,
                    size_bytes: parse_cache_size(&read_trimmed(&d.join("size"))?)?,
                    shared_cpu_list: read_trimmed(&d.join("shared_cpu_list"))?,
                })
            })();
            match rec {
                Some(r) => out.push(r),
                None => break,
            }
        }
    }
    out
}

/// Total last-level cache bytes, from sysfs, else from CPUID (one instance).
pub fn llc_bytes() -> Option<u64> {
    total_llc_bytes(&read_cache_records()).or_else(llc_from_cpuid)
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn llc_from_cpuid() -> Option<u64> {
    raw_cpuid::CpuId::new()
        .get_cache_parameters()?
        .filter(|c| c.cache_type() != raw_cpuid::CacheType::Instruction)
        .map(|c| {
            let bytes = c.associativity() * c.physical_line_partitions() * c.coherency_line_size();
            (c.level(), (bytes * c.sets()) as u64)
        })
        .max()
        .map(|(_, bytes)| bytes)
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
fn llc_from_cpuid() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpulist_ranges_singles_and_whitespace() {
        assert_eq!(
            parse_cpulist("0-3,8,10-11\n").unwrap(),
            vec![0, 1, 2, 3, 8, 10, 11]
        );
        assert_eq!(parse_cpulist("5").unwrap(), vec![5]);
        assert_eq!(parse_cpulist("").unwrap(), Vec::<usize>::new());
        assert_eq!(parse_cpulist("1,0-1").unwrap(), vec![0, 1]);
    }

    #[test]
    fn cpulist_round_trips_through_format() {
        for text in ["0-3,8,10-11", "5", "", "0,2,4", "0-1"] {
            assert_eq!(format_cpulist(&parse_cpulist(text).unwrap()), text);
        }
    }

    #[test]
    fn cpulist_rejects_garbage_and_reversed_ranges() {
        assert!(parse_cpulist("0-x").is_err());
        assert!(parse_cpulist("3-1").is_err());
        assert!(parse_cpulist("0-99999999").is_err());
    }

    fn place(cpu: usize, pkg: i64, core: i64, sib: Option<&str>) -> CpuPlace {
        CpuPlace {
            cpu,
            package_id: pkg,
            core_id: core,
            siblings: sib.map(|s| parse_cpulist(s).unwrap()),
        }
    }

    #[test]
    fn two_sockets_with_smt_count_each_core_once() {
        // 2 sockets x 2 cores x 2 threads; core ids repeat across sockets.
        let places = vec![
            place(0, 0, 0, Some("0,4")),
            place(1, 0, 1, Some("1,5")),
            place(2, 1, 0, Some("2,6")),
            place(3, 1, 1, Some("3,7")),
            place(4, 0, 0, Some("0,4")),
            place(5, 0, 1, Some("1,5")),
            place(6, 1, 0, Some("2,6")),
            place(7, 1, 1, Some("3,7")),
        ];
        assert_eq!(count_topology(&places), (2, 4));
    }

    #[test]
    fn without_sibling_lists_package_and_core_id_decide() {
        let places = vec![
            place(0, 0, 0, None),
            place(1, 0, 0, None),
            place(2, 1, 0, None),
        ];
        assert_eq!(count_topology(&places), (2, 2));
    }

    #[test]
    fn cache_sizes_and_llc_total_across_instances() {
        assert_eq!(parse_cache_size("32768K"), Some(32 << 20));
        assert_eq!(parse_cache_size("2M"), Some(2 << 20));
        assert_eq!(parse_cache_size("lots"), None);
        let rec = |level, kind: &str, size, shared: &str| CacheRecord {
            level,
            kind: kind.into(),
            size_bytes: size,
            shared_cpu_list: shared.into(),
        };
        let records = vec![
            rec(1, "Instruction", 32 << 10, "0"),
            rec(2, "Unified", 1 << 20, "0"),
            rec(3, "Unified", 32 << 20, "0-7"),
            rec(3, "Unified", 32 << 20, "0-7"),
            rec(3, "Unified", 32 << 20, "8-15"),
        ];
        assert_eq!(total_llc_bytes(&records), Some(64 << 20));
        assert_eq!(total_llc_bytes(&[]), None);
    }

    #[test]
    fn model_name_from_cpuinfo_on_x86_and_arm() {
        let x86 = "processor\t: 0\nmodel name\t: AMD EPYC 9654\nflags\t: fpu\n";
        assert_eq!(model_from_cpuinfo(x86).as_deref(), Some("AMD EPYC 9654"));
        let arm = "processor\t: 0\nBogoMIPS\t: 48.00\nHardware\t: BCM2835\n";
        assert_eq!(model_from_cpuinfo(arm).as_deref(), Some("BCM2835"));
        assert_eq!(model_from_cpuinfo("nothing here"), None);
    }

    #[test]
    fn this_machine_has_consistent_counts() {
        let (sockets, physical) = topology();
        assert!(sockets >= 1 && physical >= 1);
        assert!(physical <= logical_cores());
    }
}
