//! Synthetic stand-ins for roles whose model files are absent (`--synthetic`, or a role
//! that only names a recipe): every recipe checked before the first byte is written, and a
//! stand-in the memory guard would always refuse written sparse instead of filling the disk.

use crate::driver::guard;
use crate::profile::Role;
use crate::synth::{self, Behavior, SynthArgs};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

/// Why a role without a model file and without a recipe is skipped under `--synthetic`.
pub(super) const NO_RECIPE: &str =
    "no synthetic stand-in: the role names neither `synthetic` (a preset) \
    nor a [roles.synth] shape; give it a model file (--models-dir)";

/// The role names a recipe for a synthetic stand-in.
pub(super) fn has_recipe(role: &Role) -> bool {
    role.synthetic.is_some() || role.synth.is_some()
}

/// Every stand-in the run may write is checked before the first byte is written: a recipe
/// that does not validate (no quant, an unknown preset, a bad shape) is an error naming every
/// such role, instead of one found after gigabytes of other stand-ins. `roles` are the
/// run's roles and the drafts they use.
pub(super) fn validate_recipes<'r>(roles: impl Iterator<Item = &'r Role>) -> anyhow::Result<()> {
    let mut problems: Vec<String> = Vec::new();
    for role in roles {
        if !has_recipe(role) {
            continue;
        }
        if let Err(e) = synth_args(role, None).and_then(|a| a.recipe()) {
            let line = format!("role `{}`: {e:#}", role.name);
            if !problems.contains(&line) {
                problems.push(line);
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "synthetic stand-ins that cannot be made (nothing was written):\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(())
}

/// The role's synthetic stand-in, written into `cache` unless there already (sparse when
/// the guard would refuse every launch of it), and its known behaviour. A draft of a
/// synthetic target (`target`) shares the target's vocabulary and cycles.
pub(super) fn synthesize(
    role: &Role,
    cache: &Path,
    target: Option<&Behavior>,
) -> anyhow::Result<(PathBuf, Behavior)> {
    let args = synth_args(role, target)?;
    let recipe = args.recipe()?;
    let path = if could_never_run(role, &recipe) {
        // The memory guard would skip every launch of it (with its figures): write a
        // size-exact sparse file instead of filling the disk.
        sparse_model(&recipe, cache)?
    } else {
        synth::ensure_model(&recipe, cache)
            .with_context(|| format!("writing the synthetic stand-in of `{}`", role.name))?
    };
    Ok((path, recipe.behavior))
}

/// The memory guard would refuse even the smallest launch of the stand-in here: its weights,
/// an F16 KV cache for the role's context with its fewest slots, and the engine's overhead
/// exceed MemAvailable less the guide's safety buffer (the guard's own rule, checked before
/// the file exists).
fn could_never_run(role: &Role, recipe: &synth::Recipe) -> bool {
    match crate::hardware::memory::read_meminfo() {
        Ok(mem) => could_never_run_in(role, recipe, mem.total_bytes),
        Err(_) => false,
    }
}

/// [`could_never_run`] on a machine of `total` bytes of RAM. Judged as if all of it were
/// available (nothing else running): what is free at the moment of writing says whether a
/// launch fits now, not whether the model could ever run here (a 30B stand-in that ran at one
/// moment was written sparse ten minutes later, on the same machine, at a lower MemAvailable).
fn could_never_run_in(role: &Role, recipe: &synth::Recipe, total: u64) -> bool {
    let s = &recipe.shape;
    // K and V, F16 (2 bytes), per layer and KV head.
    let kv_per_token = 2 * u64::from(s.n_layer) * u64::from(s.n_head_kv) * s.head_dim * 2;
    let slots = role.parallel.iter().copied().min().unwrap_or(1);
    let need = guard::MemoryNeed {
        model_bytes: synth::plan::tensor_bytes(&recipe.plan()),
        draft_bytes: 0,
        kv_bytes: kv_per_token * u64::from(role.ctx) * u64::from(slots),
    };
    guard::check(&need, total, total) != guard::Fit::Fits
}

/// A size-exact sparse stand-in (real header, tensor data as holes), cached by recipe.
fn sparse_model(recipe: &synth::Recipe, cache: &Path) -> anyhow::Result<PathBuf> {
    let path = cache.join(recipe.file_name().replace(".gguf", "-sparse.gguf"));
    if !path.is_file() {
        std::fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
        synth::write_in_place(recipe, &path, true)?;
    }
    Ok(path)
}

/// `bench synth` arguments for a role's stand-in, so that the profile and the CLI share one
/// validation ([`SynthArgs::recipe`]).
fn synth_args(role: &Role, target: Option<&Behavior>) -> anyhow::Result<SynthArgs> {
    if !has_recipe(role) {
        bail!("{NO_RECIPE}");
    }
    let mut overrides = role.synth.clone().unwrap_or_default();
    if let Some(Behavior::Cycle(c)) = target {
        // The draft must share the target's vocabulary and cycles to agree with it.
        overrides.n_vocab = Some(u64::from(c.n_vocab));
        overrides.cycle_len = Some(c.cycle_len);
        overrides.seed = Some(c.seed);
    }
    let quant = role.quant.as_deref().with_context(|| {
        format!(
            "role `{}` has no `quant`: a synthetic stand-in needs one (Q4_K_M, Q8_0, F16, ...)",
            role.name
        )
    })?;
    Ok(SynthArgs::for_role(
        quant,
        role.synthetic.as_deref(),
        &overrides,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{self, ProfileSource};

    #[test]
    fn only_a_stand_in_the_guard_would_always_refuse_is_written_sparse() {
        let p = profile::parse(
            super::super::tests::SYNTHETIC,
            ProfileSource::File("s.toml".into()),
        )
        .unwrap();
        let tiny = &p.roles[0];
        let recipe = synth_args(tiny, None).unwrap().recipe().unwrap();
        assert!(
            !could_never_run(tiny, &recipe),
            "a 1-layer model fits anywhere"
        );
        // Qwen3-Coder-480B-A35B at Q4_K_M is about 270 GB of weights: more than this
        // machine's (or CI's) RAM.
        let mut huge = tiny.clone();
        (huge.synthetic, huge.synth, huge.quant) = (
            Some("qwen3-coder-480b-a35b".into()),
            None,
            Some("Q4_K_M".into()),
        );
        let recipe = synth_args(&huge, None).unwrap().recipe().unwrap();
        let ram = crate::hardware::memory::read_meminfo().unwrap().total_bytes;
        assert!(ram < 250 << 30, "this test needs less than 250 GiB of RAM");
        assert!(could_never_run(&huge, &recipe));
        // Qwen3-30B-A3B at Q4_K_M: 18.55 GB of weights plus its KV cache and overhead (18.9
        // GiB, as the guard reported it) against 85% of the RAM: fits 24 GiB (20.4 GiB usable),
        // never fits 20 GiB (17.0) — whatever happens to be free at the moment.
        let mut moe = tiny.clone();
        (moe.synthetic, moe.synth, moe.quant, moe.ctx) = (
            Some("qwen3-30b-a3b".into()),
            None,
            Some("Q4_K_M".into()),
            8192,
        );
        let recipe = synth_args(&moe, None).unwrap().recipe().unwrap();
        assert!(!could_never_run_in(&moe, &recipe, 24 << 30));
        assert!(could_never_run_in(&moe, &recipe, 20 << 30));
    }
}
