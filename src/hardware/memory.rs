//! System memory from /proc/meminfo: total and available RAM. `MemAvailable` is the kernel's
//! estimate of what can be allocated without swapping; the driver's memory guard uses it.

use anyhow::{bail, Context};

const MEMINFO: &str = "/proc/meminfo";

/// Bytes per GiB (the unit of `free -g`, which the guide's tiers are based on).
pub const GIB: f64 = (1u64 << 30) as f64;

/// The two figures of /proc/meminfo that `bench hw` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemInfo {
    /// `MemTotal`, in bytes.
    pub total_bytes: u64,
    /// `MemAvailable` in bytes (older kernels: MemFree + Buffers + Cached).
    pub available_bytes: u64,
}

/// Reads one `Key:   1234 kB` value of a meminfo-style text, in bytes.
pub fn meminfo_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, rest) = line.split_once(':')?;
        if k.trim() != key {
            return None;
        }
        let mut parts = rest.split_whitespace();
        let n: u64 = parts.next()?.parse().ok()?;
        match parts.next() {
            Some("kB") => n.checked_mul(1024),
            None => Some(n),
            Some(_) => None,
        }
    })
}

/// Parses the text of /proc/meminfo.
pub fn parse_meminfo(text: &str) -> anyhow::Result<MemInfo> {
    let Some(total_bytes) = meminfo_value(text, "MemTotal") else {
        bail!("no MemTotal line");
    };
    let available_bytes = match meminfo_value(text, "MemAvailable") {
        Some(a) => a,
        None => ["MemFree", "Buffers", "Cached"]
            .iter()
            .filter_map(|k| meminfo_value(text, k))
            .sum(),
    };
    Ok(MemInfo {
        total_bytes,
        available_bytes,
    })
}

/// Reads /proc/meminfo.
pub fn read_meminfo() -> anyhow::Result<MemInfo> {
    let text = std::fs::read_to_string(MEMINFO).with_context(|| format!("reading {MEMINFO}"))?;
    parse_meminfo(&text).with_context(|| format!("parsing {MEMINFO}"))
}

/// `MemTotal` in bytes (what `free` shows as total; the guide's tiers use it in GiB).
pub fn mem_total_bytes() -> anyhow::Result<u64> {
    Ok(read_meminfo()?.total_bytes)
}

/// `MemAvailable` in bytes: what can still be allocated without swapping.
pub fn mem_available_bytes() -> anyhow::Result<u64> {
    Ok(read_meminfo()?.available_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = "MemTotal:       24684084 kB\nMemFree:        14650032 kB\n\
MemAvailable:   23417580 kB\nBuffers:           30288 kB\nCached:          8740192 kB\n\
HugePages_Total:       0\n";

    #[test]
    fn parses_total_and_available_in_bytes() {
        let m = parse_meminfo(FIXTURE).unwrap();
        assert_eq!(m.total_bytes, 24_684_084 * 1024);
        assert_eq!(m.available_bytes, 23_417_580 * 1024);
        assert_eq!(meminfo_value(FIXTURE, "HugePages_Total"), Some(0));
    }

    #[test]
    fn old_kernels_without_memavailable_sum_free_buffers_cached() {
        let old = "MemTotal: 100 kB\nMemFree: 10 kB\nBuffers: 1 kB\nCached: 5 kB\n";
        assert_eq!(parse_meminfo(old).unwrap().available_bytes, 16 * 1024);
    }

    #[test]
    fn missing_total_or_bad_unit_is_an_error_or_absent() {
        assert!(parse_meminfo("MemFree: 10 kB\n").is_err());
        assert_eq!(meminfo_value("MemTotal: 10 MB\n", "MemTotal"), None);
        // A key that is a prefix of another must not match it.
        assert_eq!(meminfo_value("MemTotalX: 10 kB\n", "MemTotal"), None);
    }

    #[test]
    fn this_machine_has_some_memory_available() {
        let avail = mem_available_bytes().unwrap();
        assert!(avail > 0 && avail <= mem_total_bytes().unwrap());
    }
}
