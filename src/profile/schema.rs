//! The raw TOML form of a profile and its validation into [`super::Profile`].
//!
//! Serde with `deny_unknown_fields` catches bad syntax, unknown keys, wrong types, unknown
//! modes, tiers and workloads with their spans; the fields checked after parsing are kept
//! as `toml::Spanned` so that semantic errors can still name the line and column.

use super::{
    shapes, EngineSection, LocatedError, Mode, Profile, ProfileSource, Residency, Role, RoleKind,
    RunDefaults, Workload,
};
use crate::guide;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    engine: Option<Spanned<EngineSection>>,
    expectations: Option<PathBuf>,
    #[serde(default)]
    run: Option<Spanned<RawRun>>,
    #[serde(default)]
    roles: Vec<Spanned<RawRole>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRun {
    #[serde(default = "default_n_predict")]
    n_predict: u32,
    #[serde(default = "default_workloads")]
    workloads: Vec<Workload>,
    #[serde(default = "default_min_repetitions")]
    min_repetitions: u32,
    #[serde(default = "default_max_repetitions")]
    max_repetitions: u32,
    #[serde(default = "default_ci_target_pct")]
    ci_target_pct: f64,
    #[serde(default = "default_cell_time_budget_s")]
    cell_time_budget_s: f64,
    #[serde(default = "default_depths")]
    depth: Vec<u32>,
}

impl Default for RawRun {
    fn default() -> Self {
        RawRun {
            n_predict: default_n_predict(),
            workloads: default_workloads(),
            min_repetitions: default_min_repetitions(),
            max_repetitions: default_max_repetitions(),
            ci_target_pct: default_ci_target_pct(),
            cell_time_budget_s: default_cell_time_budget_s(),
            depth: default_depths(),
        }
    }
}

/// Default `[run] n_predict`.
pub const DEFAULT_N_PREDICT: u32 = 256;
/// Default `ctx` of a role.
pub const DEFAULT_CTX: u32 = 4096;

fn default_n_predict() -> u32 {
    DEFAULT_N_PREDICT
}
fn default_workloads() -> Vec<Workload> {
    vec![Workload::Chat, Workload::CodeEdit, Workload::Summarize]
}
fn default_min_repetitions() -> u32 {
    3
}
fn default_max_repetitions() -> u32 {
    10
}
fn default_ci_target_pct() -> f64 {
    2.0
}
fn default_cell_time_budget_s() -> f64 {
    300.0
}
fn default_depths() -> Vec<u32> {
    vec![0]
}
fn default_ctx() -> u32 {
    DEFAULT_CTX
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    name: Spanned<String>,
    kind: Option<Spanned<String>>,
    model: Option<PathBuf>,
    synthetic: Option<Spanned<String>>,
    quant: Option<Spanned<String>>,
    params_b: Option<Spanned<f64>>,
    active_params_b: Option<Spanned<f64>>,
    tier: Residency,
    draft: Option<Spanned<String>>,
    #[serde(default)]
    modes: Vec<Spanned<String>>,
    #[serde(default)]
    moe_experts: Vec<Spanned<u32>>,
    #[serde(default = "default_ctx")]
    ctx: u32,
    parallel: Option<Vec<Spanned<u32>>>,
    expected_tps: Option<Spanned<(f64, f64)>>,
    kv_bytes_per_token: Option<Spanned<u64>>,
    #[serde(default)]
    notes: String,
    synth: Option<super::SynthOverrides>,
    load: Option<Spanned<super::RoleLoad>>,
    deploy: Option<Spanned<String>>,
    threads: Option<Spanned<u32>>,
    cpus: Option<Spanned<String>>,
}

/// Validation context: the text and its origin, for locating errors.
struct Ctx<'a> {
    text: &'a str,
    origin: String,
}

impl Ctx<'_> {
    fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
    ) -> Result<T, LocatedError> {
        Err(LocatedError::at(
            &self.origin,
            self.text,
            span.start,
            message,
        ))
    }
}

pub(super) fn parse(text: &str, source: ProfileSource) -> Result<Profile, LocatedError> {
    let ctx = Ctx {
        text,
        origin: source.to_string(),
    };
    let raw: RawProfile =
        toml::from_str(text).map_err(|e| LocatedError::from_toml(&ctx.origin, text, &e))?;
    if raw.name.get_ref().trim().is_empty() {
        return ctx.err(raw.name.span(), "`name` must not be empty");
    }
    if raw.roles.is_empty() {
        return ctx.err(0..0, "a profile needs at least one [[roles]] table");
    }
    let engine = validate_engine(&ctx, raw.engine)?;
    let run = validate_run(&ctx, raw.run)?;
    let mut roles = Vec::with_capacity(raw.roles.len());
    for raw_role in &raw.roles {
        roles.push(validate_role(&ctx, raw_role)?);
    }
    validate_cross_refs(&ctx, &raw.roles, &roles)?;
    Ok(Profile {
        name: raw.name.into_inner(),
        description: raw.description,
        source,
        content_hash: super::content_hash(text.as_bytes()),
        engine,
        expectations: raw.expectations,
        run,
        roles,
    })
}

fn validate_engine(
    ctx: &Ctx,
    engine: Option<Spanned<EngineSection>>,
) -> Result<EngineSection, LocatedError> {
    let Some(engine) = engine else {
        return Ok(EngineSection::default());
    };
    if let Some(problem) = super::sweep_problem("[engine] threads", &engine.get_ref().threads, 1) {
        return ctx.err(engine.span(), problem);
    }
    Ok(engine.into_inner())
}

fn validate_run(ctx: &Ctx, run: Option<Spanned<RawRun>>) -> Result<RunDefaults, LocatedError> {
    let Some(run) = run else {
        return Ok(run_defaults(RawRun::default()));
    };
    let span = run.span();
    let r = run.get_ref();
    let problem = if r.n_predict == 0 {
        Some("[run] n_predict must be at least 1".to_string())
    } else if r.workloads.is_empty() {
        Some("[run] workloads must list at least one of chat, code-edit, summarize".to_string())
    } else if r.min_repetitions < 2 {
        Some(
            "[run] min_repetitions must be at least 2 (a confidence interval needs two points)"
                .to_string(),
        )
    } else if r.max_repetitions < r.min_repetitions {
        Some("[run] max_repetitions must be >= min_repetitions".to_string())
    } else if !(r.ci_target_pct > 0.0 && r.ci_target_pct < 100.0) {
        Some("[run] ci_target_pct must lie between 0 and 100 (exclusive)".to_string())
    } else if !(r.cell_time_budget_s > 0.0 && r.cell_time_budget_s.is_finite()) {
        Some("[run] cell_time_budget_s must be a positive number of seconds".to_string())
    } else if r.depth.is_empty() {
        Some("[run] depth must list at least one depth (0: an empty context)".to_string())
    } else {
        super::sweep_problem("[run] depth", &r.depth, 0)
    };
    match problem {
        Some(message) => ctx.err(span, message),
        None => Ok(run_defaults(run.into_inner())),
    }
}

impl Default for RunDefaults {
    /// The `[run]` of a profile that has none.
    fn default() -> Self {
        run_defaults(RawRun::default())
    }
}

fn run_defaults(r: RawRun) -> RunDefaults {
    RunDefaults {
        n_predict: r.n_predict,
        workloads: r.workloads,
        min_repetitions: r.min_repetitions,
        max_repetitions: r.max_repetitions,
        ci_target_pct: r.ci_target_pct,
        cell_time_budget: Duration::from_secs_f64(r.cell_time_budget_s),
        depths: r.depth,
    }
}

fn validate_kind(ctx: &Ctx, raw: &RawRole) -> Result<RoleKind, LocatedError> {
    let (text, span) = match &raw.kind {
        Some(k) => (k.get_ref().as_str(), k.span()),
        None => (raw.name.get_ref().as_str(), raw.name.span()),
    };
    match RoleKind::from_name(text) {
        Some(kind) => Ok(kind),
        None if raw.kind.is_none() => ctx.err(
            span,
            format!(
                "role `{text}` is not a role kind; add `kind = ...` (allowed: {})",
                RoleKind::names()
            ),
        ),
        None => ctx.err(
            span,
            format!(
                "unknown role kind `{text}` (allowed: {})",
                RoleKind::names()
            ),
        ),
    }
}

fn validate_sizes(ctx: &Ctx, raw: &RawRole) -> Result<(), LocatedError> {
    if let Some(q) = &raw.quant {
        let quant = q.get_ref();
        if guide::quant_row(quant).is_none() && !quant.eq_ignore_ascii_case("F32") {
            let allowed = guide::KNOWN_QUANTS.join(", ");
            return ctx.err(
                q.span(),
                format!("unknown quant `{quant}` (allowed: {allowed})"),
            );
        }
    }
    for p in [&raw.params_b, &raw.active_params_b].into_iter().flatten() {
        if !(*p.get_ref() > 0.0 && p.get_ref().is_finite()) {
            return ctx.err(p.span(), "parameter counts (billions) must be positive");
        }
    }
    if let (Some(total), Some(active)) = (&raw.params_b, &raw.active_params_b) {
        if active.get_ref() > total.get_ref() {
            return ctx.err(active.span(), "active_params_b cannot exceed params_b");
        }
    }
    if let Some(s) = &raw.synthetic {
        if shapes::preset(s.get_ref()).is_none() {
            let message = format!(
                "unknown synthetic preset `{}` (allowed: {})",
                s.get_ref(),
                shapes::preset_names()
            );
            return ctx.err(s.span(), message);
        }
    }
    Ok(())
}

/// Parses the mode strings, keeping their spans (serde would only give the array's span).
fn parse_modes(ctx: &Ctx, raw: &[Spanned<String>]) -> Result<Vec<Spanned<Mode>>, LocatedError> {
    raw.iter()
        .map(|text| match text.get_ref().parse::<Mode>() {
            Ok(mode) => Ok(Spanned::new(text.span(), mode)),
            Err(e) => ctx.err(text.span(), e.to_string()),
        })
        .collect()
}

fn validate_role(ctx: &Ctx, spanned: &Spanned<RawRole>) -> Result<Role, LocatedError> {
    let raw = spanned.get_ref();
    let kind = validate_kind(ctx, raw)?;
    validate_sizes(ctx, raw)?;
    let name = raw.name.get_ref().clone();
    if raw.model.is_none()
        && raw.synthetic.is_none()
        && raw.params_b.is_none()
        && raw.synth.is_none()
    {
        let message = format!(
            "role `{name}` needs `model` (a GGUF file under the models directory), or `synthetic` \
             (allowed: {}) or `params_b` to be sized without one",
            shapes::preset_names()
        );
        return ctx.err(spanned.span(), message);
    }
    if raw.ctx == 0 {
        return ctx.err(
            spanned.span(),
            format!("role `{name}`: ctx must be at least 1 token"),
        );
    }
    for p in raw.parallel.iter().flatten() {
        if *p.get_ref() == 0 {
            return ctx.err(p.span(), "parallel slot counts must be at least 1");
        }
    }
    for n in &raw.moe_experts {
        if *n.get_ref() == 0 {
            return ctx.err(n.span(), "moe_experts counts must be at least 1");
        }
    }
    if let Some(k) = raw
        .kv_bytes_per_token
        .as_ref()
        .filter(|k| *k.get_ref() == 0)
    {
        return ctx.err(k.span(), "kv_bytes_per_token must be at least 1");
    }
    let modes = parse_modes(ctx, &raw.modes)?;
    let expected_tps = match &raw.expected_tps {
        Some(e) if !(e.get_ref().0 >= 0.0 && e.get_ref().0 <= e.get_ref().1) => {
            return ctx.err(
                e.span(),
                "expected_tps must be [low, high] with 0 <= low <= high",
            );
        }
        other => other.as_ref().map(|e| *e.get_ref()),
    };
    Ok(Role {
        name,
        kind,
        model: raw.model.clone(),
        synthetic: raw.synthetic.as_ref().map(|s| s.get_ref().clone()),
        quant: raw.quant.as_ref().map(|q| q.get_ref().clone()),
        params_b: raw.params_b.as_ref().map(|p| *p.get_ref()),
        active_params_b: raw.active_params_b.as_ref().map(|p| *p.get_ref()),
        tier: raw.tier,
        draft: raw.draft.as_ref().map(|d| d.get_ref().clone()),
        modes: modes.into_iter().map(|m| m.into_inner()).collect(),
        moe_experts: raw.moe_experts.iter().map(|n| *n.get_ref()).collect(),
        ctx: raw.ctx,
        parallel: match &raw.parallel {
            Some(list) if !list.is_empty() => list.iter().map(|p| *p.get_ref()).collect(),
            _ => vec![1],
        },
        expected_tps,
        kv_bytes_per_token: raw.kv_bytes_per_token.as_ref().map(|k| *k.get_ref()),
        notes: raw.notes.clone(),
        synth: raw.synth.clone(),
        load: role_load(ctx, raw.load.as_ref())?,
        deploy: deployed(ctx, raw)?,
    })
}

/// The role's deployment keys (`deploy`, `threads`, `cpus`), checked; an error points at
/// the key.
fn deployed(ctx: &Ctx, raw: &RawRole) -> Result<super::Deployed, LocatedError> {
    let mode = match &raw.deploy {
        None => Mode::Baseline,
        Some(text) => match text.get_ref().parse::<Mode>() {
            Ok(mode) if mode.needs_draft() && raw.draft.is_none() => {
                return ctx.err(
                    text.span(),
                    format!("deploy = \"{mode}\" needs a draft: add `draft = ...` to the role"),
                )
            }
            Ok(mode) => mode,
            Err(e) => return ctx.err(text.span(), e.to_string()),
        },
    };
    if let Some(t) = raw.threads.as_ref().filter(|t| *t.get_ref() == 0) {
        return ctx.err(t.span(), "threads must be at least 1");
    }
    let cpus = match &raw.cpus {
        None => None,
        Some(text) => match text.get_ref().parse::<crate::hardware::CpuSet>() {
            Ok(set) => Some(set),
            Err(e) => return ctx.err(text.span(), e),
        },
    };
    Ok(super::Deployed {
        mode,
        threads: raw.threads.as_ref().map(|t| *t.get_ref()),
        cpus,
    })
}

/// The role's `load` table, checked; an error points at it.
fn role_load(
    ctx: &Ctx,
    load: Option<&Spanned<super::RoleLoad>>,
) -> Result<Option<super::RoleLoad>, LocatedError> {
    let Some(load) = load else { return Ok(None) };
    match load.get_ref().problem() {
        Some(problem) => ctx.err(load.span(), problem),
        None => Ok(Some(load.get_ref().clone())),
    }
}

/// Checks that need the whole role list: unique names, draft references, spec needs a
/// draft, moe only on MoE roles.
fn validate_cross_refs(
    ctx: &Ctx,
    raws: &[Spanned<RawRole>],
    roles: &[Role],
) -> Result<(), LocatedError> {
    for (i, (raw, role)) in raws.iter().zip(roles).enumerate() {
        let raw = raw.get_ref();
        if roles[..i].iter().any(|r| r.name == role.name) {
            return ctx.err(
                raw.name.span(),
                format!("duplicate role name `{}`", role.name),
            );
        }
        validate_draft_ref(ctx, raw, role, roles)?;
        validate_mode_fit(ctx, raw, role)?;
    }
    Ok(())
}

fn validate_draft_ref(
    ctx: &Ctx,
    raw: &RawRole,
    role: &Role,
    roles: &[Role],
) -> Result<(), LocatedError> {
    let Some(draft) = &raw.draft else {
        return Ok(());
    };
    let target = draft.get_ref();
    if target == &role.name {
        return ctx.err(
            draft.span(),
            format!("role `{}` cannot be its own draft", role.name),
        );
    }
    if !roles.iter().any(|r| &r.name == target) {
        let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
        return ctx.err(
            draft.span(),
            format!(
                "draft `{target}` is not a role of this profile (roles: {})",
                names.join(", ")
            ),
        );
    }
    Ok(())
}

/// `moe:N` cannot use more experts than the preset's layers have.
fn check_expert_count(
    ctx: &Ctx,
    role: &Role,
    n: Option<u32>,
    span: std::ops::Range<usize>,
) -> Result<(), LocatedError> {
    let total = role
        .preset()
        .and_then(|p| p.experts)
        .map(|(total, _)| total);
    match (n, total) {
        (Some(n), Some(total)) if n > total => ctx.err(
            span,
            format!(
                "{n} experts used is more than the {total} experts of preset `{}`",
                role.synthetic.as_deref().unwrap_or("")
            ),
        ),
        _ => Ok(()),
    }
}

fn validate_mode_fit(ctx: &Ctx, raw: &RawRole, role: &Role) -> Result<(), LocatedError> {
    for mode in &parse_modes(ctx, &raw.modes)? {
        let m = mode.get_ref();
        if m.needs_draft() && role.draft.is_none() {
            let message = format!(
                "mode `{m}` needs a draft model: set `draft = \"<role name>\"` on role `{}`",
                role.name
            );
            return ctx.err(mode.span(), message);
        }
        if m.moe_n().is_some() && !role.is_moe() {
            let message = format!(
                "mode `{m}` is for MoE models only; role `{}` is dense (set `active_params_b` or a MoE `synthetic` preset if it is MoE)",
                role.name
            );
            return ctx.err(mode.span(), message);
        }
        check_expert_count(ctx, role, m.moe_n(), mode.span())?;
    }
    for n in &raw.moe_experts {
        check_expert_count(ctx, role, Some(*n.get_ref()), n.span())?;
    }
    if let Some(first) = raw.moe_experts.first() {
        if !role.is_moe() {
            return ctx.err(
                first.span(),
                format!(
                    "moe_experts is for MoE models only; role `{}` is dense",
                    role.name
                ),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "t"
[[roles]]
name = "frontdoor"
synthetic = "qwen3-30b-a3b"
quant = "Q4_K_M"
tier = "HOT"
draft = "draft"
modes = ["spec:8", "moe:4+lookup"]
moe_experts = [4, 6]

[[roles]]
name = "draft"
model = "d.gguf"
quant = "Q8_0"
params_b = 0.5
tier = "HOT"
"#;

    fn parse_err(text: &str) -> LocatedError {
        parse(text, ProfileSource::File("p.toml".into())).unwrap_err()
    }

    #[test]
    fn a_good_profile_gets_defaults() {
        let p = parse(GOOD, ProfileSource::File("p.toml".into())).unwrap();
        assert_eq!(p.run.n_predict, DEFAULT_N_PREDICT);
        assert_eq!(p.roles[1].ctx, DEFAULT_CTX);
        assert_eq!(p.roles[1].parallel, vec![1]);
        assert!(p.roles[0].is_moe());
        assert_eq!(p.roles[0].expanded_modes().len(), 5);
    }

    #[test]
    fn unknown_key_names_line_column_and_allowed_keys() {
        let e =
            parse_err(&GOOD.replace("tier = \"HOT\"\ndraft", "tier = \"HOT\"\nquanta = 1\ndraft"));
        assert_eq!(e.line, 8, "{e}");
        assert_eq!(e.column, 1, "{e}");
        assert!(
            e.message.contains("unknown field `quanta`") && e.message.contains("`quant`"),
            "{e}"
        );
    }

    #[test]
    fn unknown_mode_points_at_the_mode() {
        let e = parse_err(&GOOD.replace("\"moe:4+lookup\"", "\"moe:4+lokup\""));
        assert_eq!(e.line, 9, "{e}");
        assert_eq!(e.column, 20, "{e}");
        assert!(
            e.message.contains("unknown mode `lokup`") && e.message.contains("allowed: baseline"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_and_unknown_tier_are_located() {
        let e = parse_err(&GOOD.replace("params_b = 0.5", "params_b = \"half\""));
        assert_eq!(e.line, 16, "{e}");
        let e = parse_err(&GOOD.replacen("tier = \"HOT\"", "tier = \"LUKEWARM\"", 1));
        assert_eq!(e.line, 7, "{e}");
        assert!(
            e.message.contains("HOT") && e.message.contains("WARM"),
            "{e}"
        );
    }

    #[test]
    fn semantic_errors_are_located() {
        let e = parse_err(&GOOD.replace("draft = \"draft\"\n", ""));
        assert!(e.message.contains("needs a draft model"), "{e}");
        assert_eq!((e.line, e.column), (8, 10), "{e}");
        let e = parse_err(&GOOD.replace(
            "synthetic = \"qwen3-30b-a3b\"",
            "synthetic = \"qwen2.5-7b\"",
        ));
        assert!(e.message.contains("MoE models only"), "{e}");
        let e = parse_err(&GOOD.replace("name = \"draft\"", "name = \"drafty\""));
        assert!(
            e.message.contains("not a role kind") && e.message.contains("architect_coding"),
            "{e}"
        );
        let e = parse_err(
            &GOOD
                .replace("model = \"d.gguf\"\n", "")
                .replace("params_b = 0.5\n", ""),
        );
        assert!(e.message.contains("needs `model`"), "{e}");
        assert_eq!(e.line, 12, "{e}");
        let e = parse_err(&GOOD.replace("[4, 6]", "[4, 129]"));
        assert!(e.message.contains("more than the 128 experts"), "{e}");
        assert_eq!((e.line, e.column), (10, 19), "{e}");
        let e = parse_err(&GOOD.replace("\"qwen3-30b-a3b\"", "\"qwen9\""));
        assert!(
            e.message.contains("unknown synthetic preset") && e.message.contains("qwen2.5-72b"),
            "{e}"
        );
        let e = parse_err(&GOOD.replace("Q8_0", "Q9"));
        assert!(
            e.message.contains("unknown quant `Q9`") && e.message.contains("Q4_K_M"),
            "{e}"
        );
    }

    #[test]
    fn quant_is_optional() {
        let p = parse(
            &GOOD.replace("quant = \"Q8_0\"\n", ""),
            ProfileSource::File("p.toml".into()),
        )
        .unwrap();
        assert_eq!(p.roles[1].quant, None);
        assert_eq!(p.roles[0].quant.as_deref(), Some("Q4_K_M"));
    }

    #[test]
    fn engine_threads_and_args_and_run_depths_parse() {
        let p = parse(GOOD, ProfileSource::File("p.toml".into())).unwrap();
        assert!(p.engine.threads.is_empty() && p.engine.args.is_empty());
        assert_eq!(p.run.depths, [0]);
        // `name` must come first in TOML, so the tables go after GOOD's top-level keys.
        let text = format!(
            "{GOOD}\n[engine]\nthreads = [1, 2]\nargs = [\"--numa distribute\", \"-fa\", \"on\"]\n[run]\ndepth = [0, 4096]\n"
        );
        let p = parse(&text, ProfileSource::File("p.toml".into())).unwrap();
        assert_eq!(p.engine.threads, [1, 2]);
        assert_eq!(p.engine.args.to_string(), "--numa distribute -fa on");
        assert_eq!(p.run.depths, [0, 4096]);
        let one = format!("{GOOD}\n[engine]\nthreads = 4\n");
        let p = parse(&one, ProfileSource::File("p.toml".into())).unwrap();
        assert_eq!(p.engine.threads, [4]);
        for (bad, says) in [
            (
                "[engine]\nthreads = [1, 1]",
                "[engine] threads lists 1 twice",
            ),
            (
                "[engine]\nthreads = 0",
                "[engine] threads: 0 is below the least allowed, 1",
            ),
            (
                "[engine]\nthreads = \"two\"",
                "an integer or an array of integers",
            ),
            ("[engine]\nargs = [\" \"]", "empty argument"),
            (
                "[run]\ndepth = []",
                "[run] depth must list at least one depth",
            ),
            ("[run]\ndepth = [0, 0]", "[run] depth lists 0 twice"),
        ] {
            let e = parse_err(&format!("{GOOD}\n{bad}\n"));
            assert!(e.message.contains(says), "{bad}: {e}");
            assert!(e.line > 17, "{bad}: located after GOOD: {e}");
        }
    }

    #[test]
    fn bad_toml_syntax_is_located() {
        let e = parse_err("name = \"t\"\n[[roles]\n");
        assert_eq!(e.line, 2, "{e}");
    }
}
