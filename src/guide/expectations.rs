//! Expected decode rates a run judges its cells against: the guide's speed table by default
//! (`docs/model-sizing-guide.md`, "Performance Expectations > Inference Speed by Model
//! Size"), or an expectations TOML a profile names (`expectations = "calibration/<host>.toml"`,
//! written by `bench calibrate`), parsed here and nowhere else.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// One row of an expected-speed table: the guide's ([`super::SECTION_SPEED`]) or a calibration's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedRow {
    /// Row label (`7B Q4`, `235B MoE Q4`).
    pub label: String,
    /// Model size of the row in billions of parameters (total, for MoE rows).
    pub params_b: f64,
    /// Quant family of the row (`Q4`, `Q8`, `F16`).
    pub quant: String,
    /// Whether the row is about MoE models.
    #[serde(default)]
    pub moe: bool,
    /// Lower end of the expected decode rate, tokens per second.
    pub low_tps: f64,
    /// Upper end of the expected decode rate, tokens per second.
    pub high_tps: f64,
    /// The row's note (`Draft models`, `With MoE4 reduction`).
    #[serde(default)]
    pub note: String,
}

impl ExpectedRow {
    /// The guide's own row as an expected range.
    pub fn from_guide(row: &super::SpeedRow) -> Self {
        ExpectedRow {
            label: row.label(),
            params_b: row.params_b,
            quant: row.quant_label.to_string(),
            moe: row.is_moe(),
            low_tps: row.low_tps,
            high_tps: row.high_tps,
            note: row.note.to_string(),
        }
    }
}

/// How far (as a size ratio) the nearest row may lie from the model for it to apply: a
/// 72B model uses the 70B row, a 3B model uses no row.
pub const MAX_ROW_SIZE_RATIO: f64 = 2.0;

/// The nearest row of `rows` for a model: same quant family, same dense/MoE kind, nearest
/// size on a log scale, at most [`MAX_ROW_SIZE_RATIO`] away.
pub fn nearest_row<'a>(
    rows: &'a [ExpectedRow],
    params_b: f64,
    quant: &str,
    moe: bool,
) -> Option<&'a ExpectedRow> {
    let family = super::quant_family(quant)?;
    if params_b.is_nan() || params_b <= 0.0 {
        return None;
    }
    let distance = |r: &ExpectedRow| (params_b / r.params_b).ln().abs();
    rows.iter()
        .filter(|r| r.moe == moe && r.quant.eq_ignore_ascii_case(&family))
        .filter(|r| distance(r) <= MAX_ROW_SIZE_RATIO.ln() + 1e-9)
        .min_by(|a, b| distance(a).total_cmp(&distance(b)))
}

/// A replaceable expected-speed table: the guide's by default, or a calibration file
/// (`expectations = "calibration/<host>.toml"` in a profile) written by `bench calibrate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// Where the figures come from (`guide: Performance Expectations > ...`, or the
    /// calibration's host and date).
    pub source: String,
    /// The speed rows.
    #[serde(rename = "speed")]
    pub rows: Vec<ExpectedRow>,
}

/// The parts of a `bench calibrate` file the expected ranges come from.
#[derive(Debug, Deserialize)]
struct CalibrationFile {
    calibration: CalibrationHeader,
    #[serde(default)]
    speed: Vec<CalibrationSpeed>,
}

#[derive(Debug, Deserialize)]
struct CalibrationHeader {
    host: String,
    #[serde(default)]
    generated_utc: String,
}

/// A `[[speed]]` row of a calibration file: the guide's row, predicted for the host.
#[derive(Debug, Deserialize)]
struct CalibrationSpeed {
    /// The guide's size cell (`7B`, `235B MoE`).
    size: String,
    /// The guide's quant cell (`Q4`).
    quant: String,
    params_b: f64,
    low_tps: f64,
    high_tps: f64,
}

impl CalibrationSpeed {
    fn into_row(self) -> ExpectedRow {
        ExpectedRow {
            label: format!("{} {}", self.size, self.quant),
            params_b: self.params_b,
            moe: self.size.contains("MoE"),
            quant: self.quant,
            low_tps: self.low_tps,
            high_tps: self.high_tps,
            note: "calibrated".to_string(),
        }
    }
}

/// An expected range looked up in an [`Expectations`] table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpectedRange {
    /// Lower end, tokens per second.
    pub low_tps: f64,
    /// Upper end, tokens per second.
    pub high_tps: f64,
    /// Label of the row used.
    pub label: String,
    /// Source of the table.
    pub source: String,
}

impl Default for Expectations {
    fn default() -> Self {
        Self::guide()
    }
}

impl Expectations {
    /// The guide's own table.
    pub fn guide() -> Self {
        Expectations {
            source: format!("guide: {}", super::SECTION_SPEED),
            rows: super::SPEEDS.iter().map(ExpectedRow::from_guide).collect(),
        }
    }

    /// Parses an expectations TOML: this module's form (`source = "..."` and `[[speed]]`
    /// rows as [`SpeedRow`]), or the calibration file `bench calibrate` writes (a
    /// `[calibration]` table and `[[speed]]` rows with `size`, `quant`, `params_b`,
    /// `low_tps`, `high_tps`, whose other sections are left to the analysis module).
    pub fn from_toml(text: &str, origin: &str) -> anyhow::Result<Self> {
        let is_calibration =
            toml::from_str::<toml::Table>(text).is_ok_and(|t| t.contains_key("calibration"));
        if is_calibration {
            return Self::from_calibration_toml(text, origin);
        }
        Self::from_own_toml(text, origin)
    }

    fn from_calibration_toml(text: &str, origin: &str) -> anyhow::Result<Self> {
        let file: CalibrationFile = toml::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "{}",
                crate::util::located::LocatedError::from_toml(origin, text, &e)
            )
        })?;
        let rows = file
            .speed
            .into_iter()
            .map(CalibrationSpeed::into_row)
            .collect();
        let info = file.calibration;
        let source = format!(
            "calibration of {} ({}, {origin})",
            info.host, info.generated_utc
        );
        Self::checked(Expectations { source, rows }, origin)
    }

    fn from_own_toml(text: &str, origin: &str) -> anyhow::Result<Self> {
        let table: Self = toml::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "{}",
                crate::util::located::LocatedError::from_toml(origin, text, &e)
            )
        })?;
        Self::checked(table, origin)
    }

    fn checked(table: Self, origin: &str) -> anyhow::Result<Self> {
        for row in &table.rows {
            if !(row.low_tps <= row.high_tps && row.low_tps >= 0.0 && row.params_b > 0.0) {
                anyhow::bail!(
                    "{origin}: speed row `{}` needs 0 <= low_tps <= high_tps and params_b > 0",
                    row.label
                );
            }
        }
        Ok(table)
    }

    /// Reads an expectations TOML file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading expectations {}", path.display()))?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// The expected range for a model, from the nearest row ([`nearest_row`]).
    pub fn expected(&self, params_b: f64, quant: &str, moe: bool) -> Option<ExpectedRange> {
        let row = nearest_row(&self.rows, params_b, quant, moe)?;
        Some(ExpectedRange {
            low_tps: row.low_tps,
            high_tps: row.high_tps,
            label: row.label.to_string(),
            source: self.source.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guide_range(params_b: f64, quant: &str, moe: bool) -> Option<(f64, f64, String)> {
        let r = Expectations::guide().expected(params_b, quant, moe)?;
        Some((r.low_tps, r.high_tps, r.label))
    }

    #[test]
    fn the_guide_table_picks_the_nearest_row_of_the_same_kind() {
        let row = |lo, hi, label: &str| Some((lo, hi, label.to_string()));
        assert_eq!(guide_range(7.6, "Q4_K_M", false), row(25.0, 40.0, "7B Q4"));
        assert_eq!(guide_range(72.7, "Q4_K_M", false), row(4.0, 8.0, "70B Q4"));
        assert_eq!(
            guide_range(0.49, "Q8_0", false),
            row(80.0, 120.0, "0.5B Q8")
        );
        assert_eq!(guide_range(235.0, "Q4_K_M", true).unwrap().2, "235B MoE Q4");
        // No dense row near 200B, no F16 row, no 30B MoE row: the guide says nothing.
        assert_eq!(guide_range(200.0, "Q4_K_M", false), None);
        assert_eq!(guide_range(3.0, "Q4_K_M", false).unwrap().2, "1.5B Q4");
        assert_eq!(guide_range(7.6, "F16", false), None);
        assert_eq!(guide_range(30.5, "Q4_K_M", true), None);
    }

    #[test]
    fn expectations_toml_replaces_the_guide_rows() {
        let text = r#"
source = "calibration of host x"
[[speed]]
label = "7B Q4 (measured)"
params_b = 7.0
quant = "Q4"
low_tps = 9.5
high_tps = 11.0
"#;
        let e = Expectations::from_toml(text, "x.toml").unwrap();
        let r = e.expected(7.6, "Q4_K_M", false).unwrap();
        assert_eq!((r.low_tps, r.high_tps), (9.5, 11.0));
        assert_eq!(r.source, "calibration of host x");
        assert!(e.expected(32.0, "Q4_K_M", false).is_none());
        let bad = text.replace("high_tps = 11.0", "high_tps = 11.0\nspeed_up = 2");
        let err = Expectations::from_toml(&bad, "x.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.toml:") && err.contains("speed_up"), "{err}");
    }

    #[test]
    fn a_bench_calibrate_file_is_read_too() {
        // The shape `analysis::calibrate` writes; sections other than the header and the
        // speed rows are ignored here.
        let text = r#"
[calibration]
host = "box"
cpu_model = "x"
bandwidth_gbps = 20.0
generated_utc = "2026-11-27T12:00:00Z"
sources = ["a.csv"]

[[efficiency]]
family = "Q4"
moe = false
efficiency = 0.7

[[speed]]
size = "235B MoE"
quant = "Q4"
params_b = 235.0
active_params_b = 11.0
active_bytes_per_token = 6.6e9
low_tps = 1.5
high_tps = 2.5
guide_low_tps = 5.0
guide_high_tps = 7.0
fit = "Q4/moe"
"#;
        let e = Expectations::from_toml(text, "calibration/box.toml").unwrap();
        let r = e.expected(235.0, "Q4_K_M", true).unwrap();
        assert_eq!(
            (r.low_tps, r.high_tps, r.label.as_str()),
            (1.5, 2.5, "235B MoE Q4")
        );
        assert!(
            r.source.contains("box") && r.source.contains("calibration/box.toml"),
            "{}",
            r.source
        );
        assert!(e.expected(235.0, "Q4_K_M", false).is_none());
    }
}
