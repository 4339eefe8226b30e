//! A set of CPUs as Linux writes it (`0-23,48-71`: the list format of `taskset -c`,
//! `numactl --physcpubind` and `/sys/devices/system/node/node0/cpulist`), parsed once where a
//! profile gives it (a role's `cpus`) and carried as a type to the launch, which applies it
//! through the OS's affinity interface, and to the rows, which record it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// The highest CPU number accepted: Linux's own limit on x86-64 (`NR_CPUS` = 8192).
pub const MAX_CPU: u32 = 8191;

/// A non-empty set of CPU numbers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CpuSet(BTreeSet<u32>);

impl CpuSet {
    /// The CPUs, ascending.
    pub fn cpus(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().copied()
    }

    /// How many CPUs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a set is never empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether two sets share a CPU.
    pub fn overlaps(&self, other: &CpuSet) -> bool {
        !self.0.is_disjoint(&other.0)
    }

    /// The CPUs this machine has online (`/sys/devices/system/cpu/online`), when readable.
    pub fn online() -> Option<CpuSet> {
        let text = std::fs::read_to_string("/sys/devices/system/cpu/online").ok()?;
        text.trim().parse().ok()
    }

    /// The CPUs of `self` the machine lacks (for an error before anything launches).
    pub fn missing_from(&self, online: &CpuSet) -> Vec<u32> {
        self.0.difference(&online.0).copied().collect()
    }
}

impl FromStr for CpuSet {
    type Err = String;

    fn from_str(s: &str) -> Result<CpuSet, String> {
        let mut set = BTreeSet::new();
        for part in s.split(',').map(str::trim) {
            let (low, high) = match part.split_once('-') {
                Some((a, b)) => (cpu_number(a, s)?, cpu_number(b, s)?),
                None => {
                    let n = cpu_number(part, s)?;
                    (n, n)
                }
            };
            if low > high {
                return Err(format!(
                    "cpus `{s}`: range {low}-{high} runs backwards (write {high}-{low})"
                ));
            }
            set.extend(low..=high);
        }
        Ok(CpuSet(set))
    }
}

/// One CPU number of the list `whole`.
fn cpu_number(text: &str, whole: &str) -> Result<u32, String> {
    let n: u32 = text.trim().parse().map_err(|_| {
        format!("cpus `{whole}`: `{text}` is not a CPU number (write a list such as 0-3,8,10-11)")
    })?;
    if n > MAX_CPU {
        return Err(format!(
            "cpus `{whole}`: CPU {n} is beyond Linux's limit of {MAX_CPU}"
        ));
    }
    Ok(n)
}

impl fmt::Display for CpuSet {
    /// Ranges of consecutive CPUs joined by commas, as the kernel writes them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let mut cpus = self.cpus().peekable();
        while let Some(low) = cpus.next() {
            let mut high = low;
            while cpus.peek() == Some(&(high + 1)) {
                high = cpus.next().unwrap_or(high);
            }
            parts.push(match low == high {
                true => low.to_string(),
                false => format!("{low}-{high}"),
            });
        }
        f.write_str(&parts.join(","))
    }
}

impl TryFrom<String> for CpuSet {
    type Error = String;
    fn try_from(s: String) -> Result<CpuSet, String> {
        s.parse()
    }
}

impl From<CpuSet> for String {
    fn from(set: CpuSet) -> String {
        set.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kernels_list_format_and_writes_it_back() {
        // The format of /sys/devices/system/node/node0/cpulist on a 2-socket EPYC.
        let set: CpuSet = "0-23,48-71".parse().unwrap();
        assert_eq!(set.len(), 48);
        assert_eq!(set.to_string(), "0-23,48-71");
        let odd: CpuSet = "3, 1,2,7".parse().unwrap();
        assert_eq!(odd.cpus().collect::<Vec<_>>(), [1, 2, 3, 7]);
        assert_eq!(odd.to_string(), "1-3,7");
        assert!(odd.overlaps(&"7-9".parse().unwrap()));
        assert!(!odd.overlaps(&"4-6".parse().unwrap()));
    }

    #[test]
    fn a_bad_list_is_named() {
        let e = "0-x".parse::<CpuSet>().unwrap_err();
        assert!(e.contains("`x` is not a CPU number"), "{e}");
        let e = "5-2".parse::<CpuSet>().unwrap_err();
        assert!(e.contains("runs backwards"), "{e}");
        assert!("".parse::<CpuSet>().is_err());
        assert!("9000".parse::<CpuSet>().unwrap_err().contains("8191"));
    }

    #[test]
    fn the_missing_cpus_are_listed() {
        let want: CpuSet = "0-3".parse().unwrap();
        let online: CpuSet = "0-1".parse().unwrap();
        assert_eq!(want.missing_from(&online), [2, 3]);
    }
}
