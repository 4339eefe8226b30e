//! Another machine's facts, read back from its `bench hw --json`: what a prediction for that
//! machine needs (CPU, cores, ISA, RAM, bandwidth per thread count). Only the fields used are
//! read, so a file of a later layout that keeps them still works; `hw_schema_version` above
//! [`super::HW_SCHEMA_VERSION`] is refused.

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use super::IsaFeatures;

/// One bandwidth point of a `bench hw --json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HwPoint {
    /// Reader threads.
    pub threads: usize,
    /// Best read bandwidth (GB/s).
    pub bandwidth_gbps: f64,
}

/// The facts of a `bench hw --json` a prediction uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HwFacts {
    /// Layout version.
    pub hw_schema_version: u32,
    /// CPU model.
    pub cpu_model: String,
    /// Physical cores.
    pub physical_cores: usize,
    /// MemTotal (GiB).
    #[serde(default)]
    pub ram_total_gib: f64,
    /// ISA features.
    #[serde(default)]
    pub isa: IsaFeatures,
    /// Bandwidth per thread count.
    #[serde(default)]
    pub bandwidth: Vec<HwPoint>,
    /// Highest bandwidth (GB/s).
    pub best_bandwidth_gbps: f64,
    /// Threads that reached it.
    #[serde(default)]
    pub best_bandwidth_threads: usize,
    /// Total last-level cache (bytes, all instances), when known.
    #[serde(default)]
    pub llc_bytes: Option<u64>,
}

impl HwFacts {
    /// Reads and checks a `bench hw --json` file; errors name the file (and line and column
    /// for bad JSON).
    pub fn load(path: &Path) -> anyhow::Result<HwFacts> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading hardware facts {}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses the JSON text of `origin`.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<HwFacts> {
        let f: HwFacts = serde_json::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "{origin}:{}:{}: not a `bench hw --json` file: {e}",
                e.line(),
                e.column()
            )
        })?;
        anyhow::ensure!(
            f.hw_schema_version <= super::HW_SCHEMA_VERSION,
            "{origin}: hw_schema_version {} is newer than this tpsbench reads ({})",
            f.hw_schema_version,
            super::HW_SCHEMA_VERSION
        );
        anyhow::ensure!(
            f.best_bandwidth_gbps > 0.0 && f.physical_cores > 0,
            "{origin}: needs best_bandwidth_gbps > 0 and physical_cores > 0"
        );
        Ok(f)
    }

    /// The bandwidth with `threads` readers: the measured point, else the best (GB/s).
    pub fn bandwidth_at(&self, threads: usize) -> f64 {
        self.bandwidth
            .iter()
            .find(|p| p.threads == threads)
            .map_or(self.best_bandwidth_gbps, |p| p.bandwidth_gbps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_example_and_names_bad_input() {
        let text = r#"{"hw_schema_version": 1, "cpu_model": "AMD EPYC", "physical_cores": 2,
            "isa": {"avx512f": true}, "bandwidth": [{"threads": 1, "bandwidth_gbps": 20.9,
            "median_bandwidth_gbps": 7.5}, {"threads": 2, "bandwidth_gbps": 36.1}],
            "best_bandwidth_gbps": 36.1, "best_bandwidth_threads": 2, "tier": "dev_only",
            "llc_bytes": 33554432}"#;
        let f = HwFacts::parse(text, "a.json").unwrap();
        assert_eq!(
            (f.physical_cores, f.bandwidth_at(1), f.bandwidth_at(2)),
            (2, 20.9, 36.1)
        );
        assert!(f.isa.avx512f && !f.isa.avx2);
        assert_eq!(f.llc_bytes, Some(32 << 20));
        let no_llc = text.replace(",\n            \"llc_bytes\": 33554432", "");
        assert_eq!(HwFacts::parse(&no_llc, "d.json").unwrap().llc_bytes, None);
        let err = HwFacts::parse("{\n\"cpu_model\": 3}", "b.json")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("b.json:2:"), "{err}");
        let newer = text.replace("\"hw_schema_version\": 1", "\"hw_schema_version\": 9");
        assert!(HwFacts::parse(&newer, "c.json").is_err());
    }
}
