//! Service-level objectives: the per-request targets goodput counts against (vllm's
//! `--goodput ttft:… tpot:… e2el:…`, written here as `ttft=2000ms,tpot=100ms,e2e=30s`). A
//! request is good when it succeeded and met every target that is set.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Targets per request; `None` is no target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Slo {
    /// Scheduled send to first token.
    pub ttft: Option<Duration>,
    /// Time per output token after the first.
    pub tpot: Option<Duration>,
    /// Scheduled send to the end of the answer.
    pub e2e: Option<Duration>,
}

/// The keys an SLO accepts, for error messages.
const KEYS: &str = "ttft, tpot, e2e";

/// Why an SLO text does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SloError {
    #[error("empty SLO: expected KEY=DURATION[,KEY=DURATION…] with keys {KEYS} (e.g. ttft=2000ms,tpot=100ms)")]
    Empty,
    #[error("SLO part `{part}` is not KEY=DURATION (keys: {KEYS})")]
    NotKeyValue { part: String },
    #[error("unknown SLO key `{key}`: the keys are {KEYS}")]
    UnknownKey { key: String },
    #[error("SLO key `{key}` is given twice")]
    Repeated { key: String },
    #[error(
        "bad duration `{value}` for SLO key `{key}` ({reason}); write e.g. 2000ms, 1.5s or 30s"
    )]
    BadValue {
        key: String,
        value: String,
        reason: String,
    },
}

impl Slo {
    /// True when no target is set (goodput is then not reported).
    pub fn is_empty(&self) -> bool {
        self.ttft.is_none() && self.tpot.is_none() && self.e2e.is_none()
    }

    /// The target named `key`.
    fn slot(&mut self, key: &str) -> Result<&mut Option<Duration>, SloError> {
        match key {
            "ttft" => Ok(&mut self.ttft),
            "tpot" => Ok(&mut self.tpot),
            "e2e" => Ok(&mut self.e2e),
            _ => Err(SloError::UnknownKey { key: key.into() }),
        }
    }
}

impl FromStr for Slo {
    type Err = SloError;

    fn from_str(text: &str) -> Result<Slo, SloError> {
        if text.trim().is_empty() {
            return Err(SloError::Empty);
        }
        let mut slo = Slo::default();
        for part in text.split(',').map(str::trim) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(SloError::NotKeyValue { part: part.into() });
            };
            let (key, value) = (key.trim(), value.trim());
            let target = slo.slot(key)?;
            if target.is_some() {
                return Err(SloError::Repeated { key: key.into() });
            }
            *target = Some(parse_duration(key, value)?);
        }
        Ok(slo)
    }
}

fn parse_duration(key: &str, value: &str) -> Result<Duration, SloError> {
    humantime::parse_duration(value).map_err(|e| SloError::BadValue {
        key: key.into(),
        value: value.into(),
        reason: e.to_string(),
    })
}

impl fmt::Display for Slo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = [("ttft", self.ttft), ("tpot", self.tpot), ("e2e", self.e2e)];
        let text: Vec<String> = parts
            .iter()
            .filter_map(|(key, d)| Some(format!("{key}={}", duration_text(d.as_ref()?))))
            .collect();
        f.write_str(&text.join(","))
    }
}

/// A duration as users write SLOs: whole seconds from 10 s up (`30s`), else whole
/// milliseconds (`2000ms`, as vllm's goodput takes them), else humantime's text.
fn duration_text(d: &Duration) -> String {
    if d.subsec_nanos() == 0 && d.as_secs() >= 10 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        humantime::format_duration(*d).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    #[test]
    fn parses_and_displays_the_same_text() {
        let text = "ttft=2000ms,tpot=100ms,e2e=30s";
        let slo: Slo = text.parse().unwrap();
        assert_eq!(
            slo,
            Slo {
                ttft: ms(2000),
                tpot: ms(100),
                e2e: ms(30_000)
            }
        );
        assert_eq!(slo.to_string(), text);
        let partial: Slo = " tpot = 50ms ".parse().unwrap();
        assert_eq!(partial.to_string(), "tpot=50ms");
        assert!(!partial.is_empty());
        assert!(Slo::default().is_empty());
        let odd: Slo = "e2e=1500us".parse().unwrap();
        assert_eq!(odd.to_string().parse::<Slo>().unwrap(), odd);
    }

    #[test]
    fn errors_name_the_key_and_the_allowed_keys() {
        let err = |text: &str| text.parse::<Slo>().unwrap_err().to_string();
        let unknown = err("ttft=1s,latency=2s");
        assert!(
            unknown.contains("`latency`") && unknown.contains("ttft, tpot, e2e"),
            "{unknown}"
        );
        let bad = err("tpot=fast");
        assert!(bad.contains("`fast`") && bad.contains("`tpot`"), "{bad}");
        assert!(err("ttft").contains("KEY=DURATION"));
        assert!(err("").contains("empty"));
        assert!(err("e2e=1s,e2e=2s").contains("twice"));
    }
}
