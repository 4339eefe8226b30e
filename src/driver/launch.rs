//! What one launch asks of the engine and of the machine, derived from its key and role:
//! the llama-server settings ([`launch_spec`]), the memory the guard checks
//! ([`memory_need`]) and the name of its log file ([`log_name`]). Pure functions.

use super::guard::MemoryNeed;
use super::plan::LaunchKey;
use super::resolve::ResolvedRole;
use crate::engine::LaunchSpec;
use crate::gguf::GgmlType;
use crate::llamacpp::ServerArgs;

/// The llama-server settings of a launch; `extra` (already checked against the engine's
/// `--help`) goes after tpsbench's own arguments.
pub fn launch_spec(role: &ResolvedRole, key: &LaunchKey, extra: &ServerArgs) -> LaunchSpec {
    let mut spec = LaunchSpec::new(&role.model.path);
    spec.threads = key.threads;
    spec.extra = extra.words().to_vec();
    spec.parallel = key.parallel;
    // llama-server splits -c over its slots; give every slot the role's context.
    spec.ctx = role.role.ctx * key.parallel;
    let draft = role.draft.as_ref().map(|d| d.path.as_path());
    let arch = role.model.facts.architecture.as_deref().unwrap_or_default();
    spec.set_mode(&key.mode, draft, arch);
    // The log shows n_expert_used only at debug verbosity: the evidence that the override
    // took effect.
    spec.verbose = key.mode.moe_n().is_some();
    spec
}

/// Weights of model and draft plus their f16 KV cache for the launch's context and slots.
pub fn memory_need(role: &ResolvedRole, key: &LaunchKey) -> MemoryNeed {
    let facts = &role.model.facts;
    let slots_ctx = u64::from(role.role.ctx) * u64::from(key.parallel);
    let kv = facts.kv_bytes_per_token(GgmlType::F16) * slots_ctx;
    let draft = role.draft.as_ref().filter(|_| key.mode.needs_draft());
    let draft_kv = draft.map_or(0, |d| d.facts.kv_bytes_per_token(GgmlType::F16) * slots_ctx);
    MemoryNeed {
        model_bytes: facts.tensor_bytes,
        draft_bytes: draft.map_or(0, |d| d.facts.tensor_bytes),
        kv_bytes: kv + draft_kv,
    }
}

/// `launch-003-target-spec_16_np_1.log`: the `n`th launch of the run.
pub fn log_name(n: usize, role: &str, key: &LaunchKey) -> String {
    format!(
        "launch-{n:03}-{}-{}.log",
        crate::util::safe_file_name(role, "-"),
        crate::util::safe_file_name(&key.label(), "-")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::Mode;

    #[test]
    fn log_names_keep_letters_digits_and_dashes() {
        let key =
            LaunchKey::for_cell(&"spec:16+lookup".parse::<Mode>().unwrap(), 1, false).at_threads(2);
        assert_eq!(
            log_name(3, "hot chat", &key),
            "launch-003-hot_chat-spec_16_lookup_ngram-simple_np_1_t_2.log"
        );
    }
}
