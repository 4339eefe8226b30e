//! The typed launch of one server: the model, the mode's settings (speculative types, the
//! draft, the expert count), threads, context, slots, address and extra arguments. The run
//! loop builds it from a cell; an engine turns it into its own command line (llama.cpp's in
//! `llamacpp::caps`, checked against the binary's `--help`).

use crate::hardware::CpuSet;
use crate::mode::Mode;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Speculative decoding settings of one launch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpeculativeArgs {
    /// `--spec-type` values, e.g. `["draft-simple"]`, `["ngram-simple"]`, or both.
    pub types: Vec<String>,
    /// Longest draft, `--spec-draft-n-max` (older builds: `--draft-max`).
    pub draft_n_max: Option<u32>,
}

/// Everything that decides one server's command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchSpec {
    pub model: PathBuf,
    /// Draft model for `draft-*` speculative types.
    pub draft: Option<PathBuf>,
    /// Generation threads, `-t`.
    pub threads: u32,
    /// Context size in tokens, `-c`.
    pub ctx: u32,
    /// Server slots, `-np`.
    pub parallel: u32,
    /// TCP port, `--port`.
    pub port: u16,
    /// Bind address, `--host`.
    pub host: String,
    pub spec: Option<SpeculativeArgs>,
    /// MoE expert reduction: (`general.architecture`, experts used per token).
    pub moe_experts_used: Option<(String, u32)>,
    /// Log at trace level (`-lv 4`), so the log shows `n_expert_used` and `system_info`.
    pub verbose: bool,
    /// Appended verbatim after everything else.
    pub extra: Vec<String>,
    /// The CPUs the server may run on (a deployment role's `cpus`), set through the OS's
    /// affinity interface before it starts; `None`: wherever the OS schedules it.
    pub cpus: Option<CpuSet>,
}

impl LaunchSpec {
    /// A baseline launch of `model`: all logical cores, 4096 context, one slot,
    /// 127.0.0.1, port 0 (the caller picks a free port).
    pub fn new(model: impl Into<PathBuf>) -> LaunchSpec {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        LaunchSpec {
            model: model.into(),
            draft: None,
            threads,
            ctx: 4096,
            parallel: 1,
            port: 0,
            host: "127.0.0.1".to_string(),
            spec: None,
            moe_experts_used: None,
            verbose: false,
            extra: Vec::new(),
            cpus: None,
        }
    }

    /// Sets what `mode` adds to the command line, as the mode table says: its `--spec-type`
    /// values with the draft length, the draft model when a part needs one, and the experts
    /// used of the model's `arch` (`general.architecture`).
    pub fn set_mode(&mut self, mode: &Mode, draft: Option<&Path>, arch: &str) {
        self.draft = draft.filter(|_| mode.needs_draft()).map(Path::to_path_buf);
        self.spec = mode.is_speculative().then(|| SpeculativeArgs {
            types: mode.spec_types(),
            draft_n_max: mode.spec_k(),
        });
        self.moe_experts_used = mode.moe_n().map(|n| (arch.to_string(), n));
    }

    /// The mode this launch measures, in the profile's words (`baseline`, `spec:16`,
    /// `lookup`, `lookup:ngram-mod`, `moe:4`, `moe:4+spec:16+lookup`), for error messages:
    /// its settings read back through the mode table. A launch with a `--spec-type` value
    /// no mode launches with (or `draft-simple` without a draft length) is no mode, and is
    /// labelled `spec-type:VALUE`.
    pub fn mode_label(&self) -> String {
        let moe = self
            .moe_experts_used
            .as_ref()
            .map(|(_, n)| Mode::Moe { n: *n });
        let k = self.spec.as_ref().and_then(|s| s.draft_n_max);
        let speculative = self
            .spec
            .iter()
            .flat_map(|s| &s.types)
            .map(|t| Mode::of_spec_type(t, k).map(|part| part.briefly()).ok_or(t));
        let parts: Result<Vec<Mode>, _> = moe.map(Ok).into_iter().chain(speculative).collect();
        match parts {
            Ok(parts) => Mode::from_parts(parts).to_string(),
            Err(t) => format!("spec-type:{t}"),
        }
    }
}
