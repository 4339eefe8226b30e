//! Which rows of a database a command reads: the `--db FILE` flag and its filters.
//!
//! Every filter is on the row's own columns (a run's rows may span several hosts or engine
//! builds, as an import of several llama-bench files does): `--host` and `--profile` exact,
//! `--engine` a prefix of the engine hash or a piece of its version text, `--model` a piece
//! of the model file name, `--mode` the mode as profiles write it, `--since` / `--until` a
//! UTC date or time (`2026-12-01`, `2026-12-01T12:00`) on the cell's timestamp, both ends
//! included, `--run` the run ids that `bench history` shows.

use std::path::PathBuf;

use rusqlite::types::Value;

use crate::mode::Mode;

/// `--db FILE` and the filters, for the commands that read results (`compare`, `calibrate`,
/// `report`, `export`, `history`).
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct DbArgs {
    /// A results database (`--db` of run, ab, import): read its runs as well as any files.
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// With --db: only rows of this profile.
    #[arg(long, requires = "db")]
    pub profile: Option<String>,
    /// The filters.
    #[command(flatten)]
    pub select: DbSelect,
}

/// The filters other than the profile, for `check`, whose `--profile` already names one.
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct DbSelect {
    /// With --db: only rows of this host.
    #[arg(long, requires = "db")]
    pub host: Option<String>,
    /// With --db: only rows of this engine (a prefix of its hash, or part of its version,
    /// e.g. `963f0ab7`, `11434.0.0` or a llama.cpp commit).
    #[arg(long, requires = "db")]
    pub engine: Option<String>,
    /// With --db: only rows whose model file name contains this.
    #[arg(long, requires = "db")]
    pub model: Option<String>,
    /// With --db: only rows of this mode (`baseline`, `spec:8`...).
    #[arg(long, requires = "db")]
    pub mode: Option<Mode>,
    /// With --db: only cells measured at or after this UTC date or time (`2026-12-01`).
    #[arg(long, requires = "db", value_parser = parse_when)]
    pub since: Option<String>,
    /// With --db: only cells measured on or before this UTC date or time (a date includes
    /// its whole day).
    #[arg(long, requires = "db", value_parser = parse_when)]
    pub until: Option<String>,
    /// With --db: only these runs (ids as `bench history` shows them; repeatable).
    #[arg(long = "run", value_name = "ID", requires = "db")]
    pub runs: Vec<i64>,
}

/// The filters as one value, whatever command they came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DbFilter {
    /// Exact profile name.
    pub profile: Option<String>,
    /// The other filters.
    pub select: DbSelect,
}

impl DbArgs {
    /// The filters of these arguments.
    pub fn filter(&self) -> DbFilter {
        DbFilter {
            profile: self.profile.clone(),
            select: self.select.clone(),
        }
    }
}

impl DbFilter {
    /// The SQL condition on `rows` (and `runs`) and its parameters, in order.
    pub fn condition(&self) -> (String, Vec<Value>) {
        let s = &self.select;
        let text = |v: &String| Value::Text(v.clone());
        let mut parts: Vec<(&str, Vec<Value>)> = Vec::new();
        if let Some(v) = &s.host {
            parts.push(("rows.host = ?", vec![text(v)]));
        }
        if let Some(v) = &s.engine {
            let engine = "(rows.engine_sha256 LIKE ? || '%' OR instr(rows.engine_version, ?) > 0 \
                 OR rows.engine_package_version = ?)";
            parts.push((engine, vec![text(v), text(v), text(v)]));
        }
        if let Some(v) = &self.profile {
            parts.push(("rows.profile = ?", vec![text(v)]));
        }
        if let Some(v) = &s.model {
            parts.push(("instr(rows.model_file, ?) > 0", vec![text(v)]));
        }
        if let Some(v) = &s.mode {
            parts.push(("rows.mode = ?", vec![Value::Text(v.to_string())]));
        }
        if let Some(v) = &s.since {
            parts.push(("rows.timestamp_utc >= ?", vec![text(v)]));
        }
        if let Some(v) = &s.until {
            let until = "substr(rows.timestamp_utc, 1, length(?)) <= ?";
            parts.push((until, vec![text(v), text(v)]));
        }
        let runs = vec!["?"; s.runs.len()].join(", ");
        let runs_sql = format!("rows.run_id IN ({runs})");
        if !s.runs.is_empty() {
            parts.push((
                &runs_sql,
                s.runs.iter().map(|r| Value::Integer(*r)).collect(),
            ));
        }
        let sql = match parts.is_empty() {
            true => "1".to_string(),
            false => parts.iter().map(|p| p.0).collect::<Vec<_>>().join(" AND "),
        };
        (sql, parts.into_iter().flat_map(|p| p.1).collect())
    }
}

/// A UTC date or time as a prefix of `YYYY-MM-DDTHH:MM:SSZ` (a space for the `T` too).
pub fn parse_when(text: &str) -> Result<String, String> {
    const SHAPE: &str = "dddd-dd-ddTdd:dd:ddZ";
    let text = text.trim().replacen(' ', "T", 1);
    let fits = text.len() >= 10
        && text.len() <= SHAPE.len()
        && text.chars().zip(SHAPE.chars()).all(|(c, s)| match s {
            'd' => c.is_ascii_digit(),
            _ => c == s,
        });
    match fits {
        true => Ok(text),
        false => Err(format!(
            "`{text}` is not a UTC date or time: write 2026-12-01, 2026-12-01T12:00 or \
             2026-12-01T12:00:00Z"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_are_prefixes_of_the_timestamp_shape() {
        assert_eq!(parse_when("2026-12-01").unwrap(), "2026-12-01");
        assert_eq!(parse_when("2026-12-01 12:00").unwrap(), "2026-12-01T12:00");
        assert!(parse_when("2026-12-01T12:00:00Z").is_ok());
        for bad in [
            "yesterday",
            "2026-12",
            "12/01/2026",
            "2026-12-01T12:00:00+01:00",
        ] {
            assert!(parse_when(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_filter_selects_everything_and_each_filter_adds_its_parameters() {
        assert_eq!(DbFilter::default().condition(), ("1".into(), vec![]));
        let f = DbFilter {
            profile: Some("smoke".into()),
            select: DbSelect {
                engine: Some("963f0ab7".into()),
                runs: vec![2, 5],
                ..DbSelect::default()
            },
        };
        let (sql, params) = f.condition();
        assert_eq!(sql.matches('?').count(), params.len());
        assert_eq!(params.len(), 3 + 1 + 2);
    }
}
