//! A profile built in memory from model files, for `bench run -m FILE [-m FILE ...]
//! [--draft FILE] [--modes ...]`: what a llama-bench user can try without writing a
//! profile. One role per file, named after the file; its quant, parameter count and MoE
//! shape come from the GGUF header, not from a label. Nothing is written to disk; the
//! profile's hash covers its serialized form, so one command line gives one hash.

use super::schema::DEFAULT_CTX;
use super::{EngineSection, Mode, Profile, ProfileSource, Residency, Role, RoleKind, RunDefaults};
use crate::gguf::{Model, ModelFacts};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

/// Drafted tokens per step of the `spec:K` mode added when `--draft` is given without
/// `--modes`.
pub const DEFAULT_SPEC_K: u32 = 8;

/// What the command line says about the models.
#[derive(Debug, Clone, Default)]
pub struct ModelsSpec {
    /// `-m FILE`, in order.
    pub models: Vec<PathBuf>,
    /// `--draft FILE`: drafts for every model's `spec:K` modes.
    pub draft: Option<PathBuf>,
    /// `--modes`, already typed; `None` for the default (`baseline`, and `spec:8` with a
    /// draft).
    pub modes: Option<Vec<Mode>>,
    /// `--ctx`: context per slot (default: 4096, or the model's own when smaller).
    pub ctx: Option<u32>,
}

/// One file as read.
struct Loaded {
    path: PathBuf,
    facts: ModelFacts,
}

/// Builds the profile of `spec`; every error names the flag and the file.
pub fn from_models(spec: &ModelsSpec) -> anyhow::Result<Profile> {
    let Some(first) = spec.models.first() else {
        bail!("-m FILE: give at least one GGUF model");
    };
    if spec.ctx == Some(0) {
        bail!("--ctx must be at least 1 token");
    }
    let targets: Vec<Loaded> = spec
        .models
        .iter()
        .map(|p| load("-m", p))
        .collect::<anyhow::Result<_>>()?;
    let draft = spec
        .draft
        .as_deref()
        .map(|p| load("--draft", p))
        .transpose()?;
    let modes = spec
        .modes
        .clone()
        .unwrap_or_else(|| default_modes(draft.is_some()));
    check_modes(&modes, &targets, draft.is_some())?;
    let mut names: Vec<String> = Vec::new();
    let mut roles = Vec::new();
    let draft_name = draft.as_ref().map(|d| unique_name(&d.path, &mut names));
    for t in &targets {
        let name = unique_name(&t.path, &mut names);
        let mut role = role_of(name, RoleKind::Workers, t, spec.ctx);
        role.modes = modes_for(&modes, &t.facts);
        role.draft = draft_name.clone();
        roles.push(role);
    }
    if let (Some(d), Some(name)) = (&draft, draft_name) {
        roles.push(role_of(name, RoleKind::Draft, d, spec.ctx));
    }
    let mut profile = Profile {
        name: profile_name(first),
        description: format!("built from the command line: {}", command_line(spec)),
        source: ProfileSource::CommandLine(command_line(spec)),
        content_hash: String::new(),
        engine: EngineSection::default(),
        expectations: None,
        run: RunDefaults::default(),
        roles,
    };
    let serialized = serde_json::to_vec(&profile).context("serializing the -m profile")?;
    profile.content_hash = super::content_hash(&serialized);
    Ok(profile)
}

/// `baseline`, and `spec:8` when there is a draft.
fn default_modes(has_draft: bool) -> Vec<Mode> {
    let spec = has_draft.then_some(Mode::Spec { k: DEFAULT_SPEC_K });
    std::iter::once(Mode::Baseline).chain(spec).collect()
}

fn load(flag: &str, path: &Path) -> anyhow::Result<Loaded> {
    if !path.is_file() {
        bail!("{flag} {}: no such file", path.display());
    }
    let model = Model::open(path).with_context(|| format!("{flag}: reading GGUF"))?;
    let facts = model.facts();
    if facts.n_params == 0 || facts.quant.is_none() {
        bail!(
            "{flag} {}: the file holds no tensors (a vocabulary-only GGUF?)",
            path.display()
        );
    }
    // Absolute, so that a models directory (BENCH_MODELS_DIR) never re-roots it.
    let path = std::path::absolute(path)
        .with_context(|| format!("{flag} {}: resolving the path", path.display()))?;
    Ok(Loaded { path, facts })
}

/// `spec:K` needs `--draft`; `moe:N` needs a MoE model among the `-m` files, with at least
/// N experts in each MoE model.
fn check_modes(modes: &[Mode], targets: &[Loaded], has_draft: bool) -> anyhow::Result<()> {
    for mode in modes {
        if mode.needs_draft() && !has_draft {
            bail!("--modes {mode}: a spec:K mode needs a draft model (--draft FILE)");
        }
        let Some(n) = mode.moe_n() else { continue };
        if !targets.iter().any(|t| t.facts.expert_count.is_some()) {
            bail!(
                "--modes {mode}: expert reduction needs a mixture-of-experts model, and every -m \
                 file is dense ({})",
                file_names(targets)
            );
        }
        for t in targets {
            if let Some(total) = t.facts.expert_count.filter(|&total| n > total) {
                bail!(
                    "--modes {mode}: {} has {total} experts per layer, fewer than {n}",
                    t.path.display()
                );
            }
        }
    }
    Ok(())
}

/// The modes a model runs: every mode, less expert reduction on a dense model.
fn modes_for(modes: &[Mode], facts: &ModelFacts) -> Vec<Mode> {
    let moe = facts.expert_count.is_some();
    modes
        .iter()
        .filter(|m| moe || m.moe_n().is_none())
        .cloned()
        .collect()
}

fn role_of(name: String, kind: RoleKind, m: &Loaded, ctx: Option<u32>) -> Role {
    let f = &m.facts;
    let own_ctx = u32::try_from(f.context_length).unwrap_or(u32::MAX);
    let default_ctx = if own_ctx > 0 {
        DEFAULT_CTX.min(own_ctx)
    } else {
        DEFAULT_CTX
    };
    Role {
        name,
        kind,
        model: Some(m.path.clone()),
        synthetic: None,
        quant: f.quant.clone(),
        params_b: Some(f.n_params as f64 / 1e9),
        active_params_b: f.expert_count.map(|_| f.active_params as f64 / 1e9),
        tier: Residency::Hot,
        draft: None,
        modes: Vec::new(),
        moe_experts: Vec::new(),
        ctx: ctx.unwrap_or(default_ctx),
        parallel: vec![1],
        expected_tps: None,
        kv_bytes_per_token: None,
        notes: String::new(),
        synth: None,
        load: None,
        deploy: Default::default(),
    }
}

/// The file name without `.gguf`, made unique among `taken` with `-2`, `-3`, ...
fn unique_name(path: &Path, taken: &mut Vec<String>) -> String {
    let base = stem(path);
    let mut name = base.clone();
    let mut i = 2;
    while taken.contains(&name) {
        name = format!("{base}-{i}");
        i += 1;
    }
    taken.push(name.clone());
    name
}

fn stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map_or_else(|| "model".to_string(), |n| n.to_string_lossy().into_owned());
    name.strip_suffix(".gguf").unwrap_or(&name).to_string()
}

/// The first model's name, safe in a results file name.
fn profile_name(first: &Path) -> String {
    stem(first)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn file_names(models: &[Loaded]) -> String {
    let names: Vec<String> = models.iter().map(|m| stem(&m.path)).collect();
    names.join(", ")
}

/// The flags this profile stands for (`-m a.gguf --draft d.gguf --modes baseline,spec:8`).
fn command_line(spec: &ModelsSpec) -> String {
    let mut parts: Vec<String> = spec
        .models
        .iter()
        .map(|m| format!("-m {}", m.display()))
        .collect();
    if let Some(d) = &spec.draft {
        parts.push(format!("--draft {}", d.display()));
    }
    if let Some(modes) = &spec.modes {
        let modes: Vec<String> = modes.iter().map(Mode::to_string).collect();
        parts.push(format!("--modes {}", modes.join(",")));
    }
    if let Some(ctx) = spec.ctx {
        parts.push(format!("--ctx {ctx}"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{self, SynthArgs};

    /// A small synthetic model written by `bench synth` into `dir`.
    fn synth_model(dir: &Path, quant: &str, experts: Option<(u32, u32)>) -> (PathBuf, u64) {
        let mut args = SynthArgs::for_role(quant, None, &Default::default());
        args.layers = Some(2);
        args.embd = Some(128);
        args.heads = Some(2);
        args.ff = Some(256);
        args.n_vocab = Some(1024);
        if let Some((total, used)) = experts {
            args.experts = Some(total);
            args.experts_used = Some(used);
            args.expert_ff = Some(64);
        }
        let recipe = args.recipe().unwrap();
        let params = synth::plan::n_params(&recipe.plan());
        (synth::ensure_model(&recipe, dir).unwrap(), params)
    }

    fn spec(models: &[&Path], draft: Option<&Path>, modes: Option<&str>) -> ModelsSpec {
        ModelsSpec {
            models: models.iter().map(|p| p.to_path_buf()).collect(),
            draft: draft.map(Path::to_path_buf),
            modes: modes.map(|m| m.split(',').map(|t| t.parse().unwrap()).collect()),
            ctx: None,
        }
    }

    #[test]
    fn roles_take_quant_parameters_and_moe_shape_from_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let (dense, dense_params) = synth_model(dir.path(), "Q8_0", None);
        let (moe, moe_params) = synth_model(dir.path(), "F16", Some((4, 2)));
        let (draft, _) = synth_model(dir.path(), "F16", None);
        let p = from_models(&spec(
            &[&dense, &moe],
            Some(&draft),
            Some("baseline,spec:4,moe:2"),
        ))
        .unwrap();
        assert_eq!(p.roles.len(), 3, "two targets and the draft");
        let (d, m, dr) = (&p.roles[0], &p.roles[1], &p.roles[2]);
        assert_eq!(d.name, stem(&dense));
        assert_eq!(
            (d.quant.as_deref(), m.quant.as_deref()),
            (Some("Q8_0"), Some("F16"))
        );
        assert_eq!(d.params_b, Some(dense_params as f64 / 1e9));
        assert_eq!(m.params_b, Some(moe_params as f64 / 1e9));
        assert!(!d.is_moe() && m.is_moe());
        // Two of four experts used: the active count is below the total.
        assert!(m.active_params_b.unwrap() < m.params_b.unwrap());
        let spec4 = Mode::Spec { k: 4 };
        assert_eq!(d.expanded_modes(), vec![Mode::Baseline, spec4.clone()]);
        assert_eq!(
            m.expanded_modes(),
            vec![Mode::Baseline, spec4, Mode::Moe { n: 2 }]
        );
        assert_eq!(d.draft.as_deref(), Some(dr.name.as_str()));
        assert_eq!(dr.kind, RoleKind::Draft);
        assert_eq!(dr.expanded_modes(), vec![Mode::Baseline]);
        assert!(d.model.as_ref().unwrap().is_absolute());
        // The synthetic files say 32768 tokens of context: the default 4096 applies.
        assert_eq!(d.ctx, DEFAULT_CTX);
        assert_eq!(p.name, stem(&dense));
        let again = from_models(&spec(
            &[&dense, &moe],
            Some(&draft),
            Some("baseline,spec:4,moe:2"),
        ))
        .unwrap();
        assert_eq!(p.content_hash, again.content_hash);
    }

    #[test]
    fn default_modes_and_duplicate_files() {
        let dir = tempfile::tempdir().unwrap();
        let (dense, _) = synth_model(dir.path(), "F16", None);
        let p = from_models(&spec(&[&dense, &dense], None, None)).unwrap();
        assert_eq!(p.roles[0].expanded_modes(), vec![Mode::Baseline]);
        assert_eq!(p.roles[1].name, format!("{}-2", stem(&dense)));
        let p = from_models(&spec(&[&dense], Some(&dense), None)).unwrap();
        assert_eq!(
            p.roles[0].expanded_modes(),
            vec![Mode::Baseline, Mode::Spec { k: 8 }]
        );
    }

    #[test]
    fn bad_input_names_the_flag_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (dense, _) = synth_model(dir.path(), "F16", None);
        let (moe, _) = synth_model(dir.path(), "F16", Some((4, 2)));
        let err = |s: ModelsSpec| format!("{:#}", from_models(&s).unwrap_err());
        let missing = dir.path().join("absent.gguf");
        let e = err(spec(&[&missing], None, None));
        assert!(
            e.contains("-m ") && e.contains("absent.gguf: no such file"),
            "{e}"
        );
        let e = err(spec(&[&dense], None, Some("baseline,spec:8")));
        assert!(e.contains("--draft FILE"), "{e}");
        let e = err(spec(&[&dense], None, Some("moe:2")));
        assert!(
            e.contains("mixture-of-experts") && e.contains("dense"),
            "{e}"
        );
        let e = err(spec(&[&moe], None, Some("moe:8")));
        assert!(e.contains("4 experts per layer, fewer than 8"), "{e}");
        let not_gguf = dir.path().join("notes.gguf");
        std::fs::write(&not_gguf, b"not a model").unwrap();
        let e = err(spec(&[&not_gguf], None, None));
        // The path once: the GGUF reader names it.
        assert!(
            e.starts_with("-m: reading GGUF: ") && e.contains("notes.gguf"),
            "{e}"
        );
        assert_eq!(e.matches("notes.gguf").count(), 1, "{e}");
        let e = err(spec(&[&dense], Some(&missing), None));
        assert!(
            e.starts_with("--draft ") && e.contains("absent.gguf"),
            "{e}"
        );
    }
}
