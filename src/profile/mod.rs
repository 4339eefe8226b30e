//! Profiles (`profiles/*.toml`): which roles, models, modes and contexts a run covers, and
//! which expected-speed table judges them (the guide's, [`crate::guide`], or a calibration).
//!
//! A profile is read in two stages: serde parses the TOML into raw structs that keep the
//! source spans ([`schema`]), then validation turns them into the typed [`Profile`] the
//! rest of the harness uses. Every error names the file, line and column and, where the
//! value comes from a fixed set, the allowed values.

pub mod command;
mod from_models;
mod load;
pub mod locate;
mod schema;
pub mod shapes;

use crate::guide;
use crate::llamacpp::ServerArgs;
use crate::mode::Mode;
pub use crate::util::located::LocatedError;

pub use command::{command, ProfileArgs};
pub use from_models::{from_models, ModelsSpec, DEFAULT_SPEC_K};
pub use load::{RoleLoad, SloTable};
pub use locate::{Located, MatchKind};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The profiles compiled into the binary, so that `bench` works from any directory.
pub const EMBEDDED: [(&str, &str); 9] = [
    ("dev", include_str!("../../profiles/dev.toml")),
    ("minimal", include_str!("../../profiles/minimal.toml")),
    ("basic", include_str!("../../profiles/basic.toml")),
    ("standard", include_str!("../../profiles/standard.toml")),
    ("production", include_str!("../../profiles/production.toml")),
    ("full", include_str!("../../profiles/full.toml")),
    ("smoke", include_str!("../../profiles/smoke.toml")),
    ("real-small", include_str!("../../profiles/real-small.toml")),
    (
        "deploy-smoke",
        include_str!("../../profiles/deploy-smoke.toml"),
    ),
];

/// A validated profile.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// `name` of the file.
    pub name: String,
    /// `description` of the file.
    pub description: String,
    /// Where it was read from.
    pub source: ProfileSource,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub content_hash: String,
    /// `[engine]`.
    pub engine: EngineSection,
    /// `expectations`: a calibration TOML that replaces the guide's speed table.
    pub expectations: Option<PathBuf>,
    /// `[run]` defaults.
    pub run: RunDefaults,
    /// `[[roles]]`, in file order.
    pub roles: Vec<Role>,
}

/// Where a profile came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum ProfileSource {
    /// A file on disk.
    File(PathBuf),
    /// The copy compiled into the binary, by name.
    Embedded(String),
    /// Built in memory from `bench run -m` flags (given here).
    CommandLine(String),
}

impl fmt::Display for ProfileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileSource::File(p) => write!(f, "{}", p.display()),
            ProfileSource::Embedded(n) => write!(f, "<embedded profiles/{n}.toml>"),
            ProfileSource::CommandLine(flags) => write!(f, "<command line {flags}>"),
        }
    }
}

/// `[engine]`: how to run llama-server for this profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    /// `server_bin`: a llama-server binary to use instead of discovery.
    pub server_bin: Option<PathBuf>,
    /// `threads`: server thread counts, `2` or `[1, 2]`; each is its own launch (empty:
    /// the physical core count).
    #[serde(default, deserialize_with = "one_or_many")]
    pub threads: Vec<u32>,
    /// `args`: extra llama-server arguments, passed after tpsbench's own once the engine's
    /// `--help` has accepted them.
    #[serde(default)]
    pub args: ServerArgs,
}

/// `threads = 2` or `threads = [1, 2]`.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged, expecting = "an integer or an array of integers")]
    enum OneOrMany {
        One(u32),
        Many(Vec<u32>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(n) => vec![n],
        OneOrMany::Many(list) => list,
    })
}

/// A workload shipped with the tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// A short question, 256 tokens out.
    Chat,
    /// A source file returned with a small change (where lookup shines).
    CodeEdit,
    /// A long document to summarise.
    Summarize,
}

impl std::str::FromStr for Workload {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Workload::Chat, Workload::CodeEdit, Workload::Summarize]
            .into_iter()
            .find(|w| w.to_string() == s)
            .ok_or_else(|| format!("unknown workload `{s}` (allowed: chat, code-edit, summarize)"))
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Workload::Chat => "chat",
            Workload::CodeEdit => "code-edit",
            Workload::Summarize => "summarize",
        })
    }
}

/// `[run]`: measurement defaults of the profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunDefaults {
    /// Tokens generated per request.
    pub n_predict: u32,
    /// Workloads to run.
    pub workloads: Vec<Workload>,
    /// Repetitions at least.
    pub min_repetitions: u32,
    /// Repetitions at most.
    pub max_repetitions: u32,
    /// Stop when the 95% CI half-width of decode t/s is within this percent of the mean.
    pub ci_target_pct: f64,
    /// Time budget of one cell (repetitions stop when it is spent).
    pub cell_time_budget: Duration,
    /// Context depths (tokens already in the context when decode is measured), each a cell.
    pub depths: Vec<u32>,
}

/// One of the guide's roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleKind {
    Frontdoor,
    CoderEscalation,
    Workers,
    WorkerVision,
    Draft,
    Ingest,
    ArchitectGeneral,
    ArchitectCoding,
}

impl RoleKind {
    /// Every kind, in the guide's order of appearance.
    pub const ALL: [RoleKind; 8] = [
        RoleKind::Frontdoor,
        RoleKind::CoderEscalation,
        RoleKind::Workers,
        RoleKind::WorkerVision,
        RoleKind::Draft,
        RoleKind::Ingest,
        RoleKind::ArchitectGeneral,
        RoleKind::ArchitectCoding,
    ];

    /// The snake_case name (`coder_escalation`).
    pub fn as_str(self) -> &'static str {
        match self {
            RoleKind::Frontdoor => "frontdoor",
            RoleKind::CoderEscalation => "coder_escalation",
            RoleKind::Workers => "workers",
            RoleKind::WorkerVision => "worker_vision",
            RoleKind::Draft => "draft",
            RoleKind::Ingest => "ingest",
            RoleKind::ArchitectGeneral => "architect_general",
            RoleKind::ArchitectCoding => "architect_coding",
        }
    }

    /// Parses a snake_case name.
    pub fn from_name(name: &str) -> Option<RoleKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The names, comma-separated, for error messages.
    pub fn names() -> String {
        Self::ALL.map(RoleKind::as_str).join(", ")
    }
}

impl fmt::Display for RoleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The guide's residency tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Residency {
    /// Always resident.
    #[serde(rename = "HOT", alias = "hot")]
    Hot,
    /// Loaded on demand.
    #[serde(rename = "WARM", alias = "warm")]
    Warm,
}

impl fmt::Display for Residency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Residency::Hot => "HOT",
            Residency::Warm => "WARM",
        })
    }
}

/// One role of a profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Role {
    /// Role name, unique in the profile (defaults the kind).
    pub name: String,
    /// The guide's role this one plays.
    pub kind: RoleKind,
    /// GGUF file, relative to the models directory (or absolute).
    pub model: Option<PathBuf>,
    /// Synthetic preset of a shape-exact stand-in ([`shapes::PRESETS`]).
    pub synthetic: Option<String>,
    /// Quant label (`Q4_K_M`), optional: a model file's own type is what is recorded; the
    /// label sizes a role without a file and types its synthetic stand-in.
    pub quant: Option<String>,
    /// Total parameters, billions (nominal; the GGUF gives the exact count).
    pub params_b: Option<f64>,
    /// Active parameters per token, billions (MoE only).
    pub active_params_b: Option<f64>,
    /// Residency tier.
    pub tier: Residency,
    /// Name of the role whose model drafts for this one.
    pub draft: Option<String>,
    /// Modes as written.
    pub modes: Vec<Mode>,
    /// Experts-used counts to try (adds `moe:N` modes).
    pub moe_experts: Vec<u32>,
    /// Context size, tokens.
    pub ctx: u32,
    /// Parallel slot counts to run.
    pub parallel: Vec<u32>,
    /// Override of the guide's expected decode range (low, high) in t/s.
    pub expected_tps: Option<(f64, f64)>,
    /// KV-cache bytes per token (f16) for planning when neither a GGUF file nor a preset
    /// gives the attention shape.
    pub kv_bytes_per_token: Option<u64>,
    /// Free text.
    pub notes: String,
    /// `[roles.synth]`: shape and behaviour of the synthetic stand-in (overrides the
    /// `synthetic` preset, or a custom shape without one).
    pub synth: Option<SynthOverrides>,
    /// The load this role is served under (`load = { rates = [...] }`), when the profile
    /// gives one: a serving run instead of repeated batches.
    pub load: Option<RoleLoad>,
    /// How the role runs in a deployment (`bench run --deployment`): `deploy`, `threads`,
    /// `cpus`.
    pub deploy: Deployed,
}

/// A role's deployment keys: the mode its server is deployed with (`deploy = "spec:16"`,
/// default `baseline`), its threads (default: the machine's cores split by bytes per token)
/// and the CPUs it is pinned to (`cpus = "0-23"`, default none).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Deployed {
    /// The deployed mode.
    pub mode: Mode,
    /// Server threads in the deployment.
    pub threads: Option<u32>,
    /// CPUs the server is confined to.
    pub cpus: Option<crate::hardware::CpuSet>,
}

/// `[roles.synth]`: the `bench synth` options of a role's synthetic stand-in. Each key is
/// the `bench synth` flag of the same name (`layers` is `--layers`, `n_vocab` `--n-vocab`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthOverrides {
    pub layers: Option<u32>,
    pub embd: Option<u64>,
    pub heads: Option<u32>,
    pub kv_heads: Option<u32>,
    pub head_dim: Option<u64>,
    pub ff: Option<u64>,
    pub n_vocab: Option<u64>,
    pub experts: Option<u32>,
    pub experts_used: Option<u32>,
    pub expert_ff: Option<u64>,
    pub cycle_len: Option<u32>,
    pub diverge: Option<f64>,
    pub seed: Option<u64>,
}

impl Role {
    /// Every mode the role runs: `baseline` first (the reference of every speedup), then
    /// the listed modes, then `moe:N` for each entry of `moe_experts` not already listed.
    pub fn expanded_modes(&self) -> Vec<Mode> {
        let mut out = vec![Mode::Baseline];
        let extra = self.moe_experts.iter().map(|&n| Mode::Moe { n });
        for mode in self.modes.iter().cloned().chain(extra) {
            if !out.contains(&mode) {
                out.push(mode);
            }
        }
        out
    }

    /// True for a mixture-of-experts model (`active_params_b` given or a MoE preset).
    pub fn is_moe(&self) -> bool {
        self.active_params_b.is_some()
            || self.preset().is_some_and(|p| p.is_moe())
            || self
                .synth
                .as_ref()
                .is_some_and(|s| s.experts.is_some_and(|n| n > 0))
    }

    /// The synthetic preset's shape facts.
    pub fn preset(&self) -> Option<&'static shapes::PresetShape> {
        self.synthetic.as_deref().and_then(shapes::preset)
    }

    /// Total parameters in billions: the profile's figure, else the preset's.
    pub fn nominal_params_b(&self) -> Option<f64> {
        self.params_b.or_else(|| self.preset().map(|p| p.params_b))
    }

    /// The expected decode range of this role: its `expected_tps` override, else the row of
    /// `table` for its size (`exact_params_b` from the GGUF when known, else the profile's
    /// or the preset's), quant (`file_quant` when known, else the label) and kind.
    pub fn expected_range(
        &self,
        table: &guide::Expectations,
        exact_params_b: Option<f64>,
        file_quant: Option<&str>,
    ) -> Option<guide::ExpectedRange> {
        if let Some((low_tps, high_tps)) = self.expected_tps {
            return Some(guide::ExpectedRange {
                low_tps,
                high_tps,
                label: format!("expected_tps of role {}", self.name),
                source: "profile".to_string(),
            });
        }
        let params_b = exact_params_b.or(self.nominal_params_b())?;
        let quant = file_quant.or(self.quant.as_deref())?;
        table.expected(params_b, quant, self.is_moe())
    }

    /// The model path under a models directory, as written.
    pub fn model_path(&self, models_dir: &Path) -> Option<PathBuf> {
        self.model.as_ref().map(|m| models_dir.join(m))
    }

    /// The model file in a models directory: the name as written, else a case or
    /// publisher variant of it ([`locate::locate`]); `None` without a `model`.
    pub fn locate_model(&self, models_dir: &Path) -> Option<Located> {
        self.model.as_deref().map(|m| locate::locate(models_dir, m))
    }
}

impl Profile {
    /// The file the profile was read from (`None` for an embedded copy).
    pub fn path(&self) -> Option<&Path> {
        match &self.source {
            ProfileSource::File(p) => Some(p),
            ProfileSource::Embedded(_) | ProfileSource::CommandLine(_) => None,
        }
    }

    /// The role of that name.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name == name)
    }

    /// The expected-speed table of this profile: its `expectations` file, else the guide's.
    pub fn load_expectations(&self) -> anyhow::Result<guide::Expectations> {
        match &self.expectations {
            Some(path) => guide::Expectations::load(path),
            None => Ok(guide::Expectations::guide()),
        }
    }
}

/// Parses and validates profile text; `origin` names it in errors.
pub fn parse(text: &str, source: ProfileSource) -> Result<Profile, LocatedError> {
    schema::parse(text, source)
}

/// What is wrong with a sweep list (`[engine] threads`, `[run] depth`): a value below `min`
/// or a value listed twice.
pub fn sweep_problem(what: &str, values: &[u32], min: u32) -> Option<String> {
    if let Some(v) = values.iter().find(|&&v| v < min) {
        return Some(format!("{what}: {v} is below the least allowed, {min}"));
    }
    let twice = values
        .iter()
        .enumerate()
        .find(|(i, v)| values[..*i].contains(v));
    twice.map(|(_, v)| format!("{what} lists {v} twice"))
}

/// SHA-256 of bytes, lowercase hex.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Loads a profile: `name_or_path` as a file when it names one (a path, or ends in
/// `.toml`), else `profiles/NAME.toml` under the current directory, else the embedded copy.
pub fn load(name_or_path: &str) -> anyhow::Result<Profile> {
    let (text, source) = source_text(name_or_path)?;
    Ok(parse(&text, source)?)
}

/// The text of the profile [`load`] would read, and where it is from.
pub fn source_text(name_or_path: &str) -> anyhow::Result<(String, ProfileSource)> {
    let as_path = Path::new(name_or_path);
    let looks_like_path =
        name_or_path.contains(std::path::MAIN_SEPARATOR) || name_or_path.ends_with(".toml");
    if looks_like_path || as_path.is_file() {
        return read_file(as_path);
    }
    let local = Path::new("profiles").join(format!("{name_or_path}.toml"));
    if local.is_file() {
        return read_file(&local);
    }
    match EMBEDDED.iter().find(|(n, _)| *n == name_or_path) {
        Some((name, text)) => Ok((text.to_string(), ProfileSource::Embedded(name.to_string()))),
        None => anyhow::bail!(
            "no profile `{name_or_path}`: not a file, no {}, and not embedded (embedded: {})",
            local.display(),
            EMBEDDED.map(|(n, _)| n).join(", ")
        ),
    }
}

/// Loads a profile file.
pub fn load_file(path: &Path) -> anyhow::Result<Profile> {
    let (text, source) = read_file(path)?;
    Ok(parse(&text, source)?)
}

fn read_file(path: &Path) -> anyhow::Result<(String, ProfileSource)> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading profile {}", path.display()))?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("profile {} is not UTF-8", path.display()))?;
    Ok((text, ProfileSource::File(path.to_path_buf())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_profile_parses() {
        for (name, text) in EMBEDDED {
            let p = parse(text, ProfileSource::Embedded(name.into()))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(p.name, name);
            assert!(!p.roles.is_empty(), "{name}");
        }
    }

    #[test]
    fn load_falls_back_to_the_embedded_copy() {
        let p = load("production").unwrap();
        assert_eq!(p.name, "production");
        assert_eq!(p.content_hash, content_hash(EMBEDDED[4].1.as_bytes()));
        assert!(load("no-such-profile")
            .unwrap_err()
            .to_string()
            .contains("embedded: dev, minimal"));
    }

    #[test]
    fn error_location_counts_lines_and_columns() {
        let text = "a = 1\nbb = \"x\"\n";
        let e = LocatedError::at("f.toml", text, 11, "bad");
        assert_eq!((e.line, e.column), (2, 6));
        assert!(e.to_string().starts_with("f.toml:2:6: bad\n"), "{e}");
        assert!(e.snippet.ends_with("|      ^"), "{}", e.snippet);
    }

    #[test]
    fn expected_range_prefers_the_override_then_the_table() {
        let p = load("production").unwrap();
        let table = guide::Expectations::guide();
        let coder = p.role("coder_escalation").unwrap();
        let r = coder.expected_range(&table, None, None).unwrap();
        assert_eq!(
            (r.low_tps, r.high_tps, r.label.as_str()),
            (8.0, 15.0, "32B Q4")
        );
        let mut custom = coder.clone();
        custom.expected_tps = Some((1.0, 2.0));
        assert_eq!(
            custom.expected_range(&table, None, None).unwrap().source,
            "profile"
        );
        // 7B F16 workers: the guide has no F16 row.
        assert!(p
            .role("workers")
            .unwrap()
            .expected_range(&table, Some(7.6), None)
            .is_none());
    }

    #[test]
    fn expanded_modes_put_baseline_first_and_add_moe_counts() {
        let p = load("production").unwrap();
        let front = p
            .roles
            .iter()
            .find(|r| r.kind == RoleKind::Frontdoor)
            .unwrap();
        let modes = front.expanded_modes();
        assert_eq!(modes[0], Mode::Baseline);
        for n in &front.moe_experts {
            assert!(modes.contains(&Mode::Moe { n: *n }));
        }
        let unique: std::collections::HashSet<_> = modes.iter().collect();
        assert_eq!(unique.len(), modes.len());
    }
}
