//! The engine self-test: before an engine measures anything, it must prefill a prompt batch
//! and decode correctly with every weight type the profiles and presets use.
//!
//! Why: a build can run `--version` and still die at its first prompt batch (the AMX
//! kernels of a `-march=native` build on an AMX Xeon kill llama-server with SIGILL at the
//! first batch of more than one token on Q8_0, Q4_0, Q4_1 and K-quant weights, while F16
//! never reaches them; see ENGINE-FACTS.md). So each check launches the real server on a
//! small synthetic `cycle` model, sends a 64-token prompt (one batch through the matrix
//! kernels) and compares 16 greedy tokens with the successor chain known by construction.
//! A signal, a timeout or a wrong token fails the engine, with the model and the reason.
//!
//! [`SelfTest`] implements [`crate::llamacpp::EngineCheck`]; the engine module decides when
//! it runs (after every managed build variant, once per discovered engine).

use crate::engine::request::{CompletionRequest, Prompt};
use crate::llamacpp::client::Client;
use crate::llamacpp::server::{LaunchCommand, LaunchOptions, Server, ServerError};
use crate::llamacpp::{EngineCheck, SelfTestFailure, SelfTestReport};
use crate::synth::{self, Arch, BehaviorSpec, QuantMix, Recipe, Shape};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Prompt length: at least 64 tokens, so prefill runs the batched matrix kernels.
pub const PROMPT_TOKENS: usize = 64;
/// Tokens decoded and compared with the known sequence.
pub const DECODE_TOKENS: u32 = 16;
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The real self-test, with llama-server and synthetic models in `model_dir`.
#[derive(Debug, Clone)]
pub struct SelfTest {
    /// Where the self-test models are written (cached by recipe).
    pub model_dir: PathBuf,
    /// Threads given to the server.
    pub threads: u32,
}

impl Default for SelfTest {
    fn default() -> Self {
        SelfTest {
            model_dir: synth::cache_dir(),
            threads: crate::hardware::cpu::physical_cores().max(1) as u32,
        }
    }
}

/// One model of the self-test.
#[derive(Debug, Clone)]
pub struct Case {
    /// `Q4_K_M dense`, `Q8_0 moe`.
    pub label: String,
    pub recipe: Recipe,
}

/// Every quant mix synth can write (F16, Q8_0, Q4_0, Q4_1, Q4_K_M, Q5_K_M, Q6_K: the weight
/// types the profiles and presets use) in a small dense model, and the K-quant and Q8_0
/// expert kernels in a small MoE.
pub fn cases() -> anyhow::Result<Vec<Case>> {
    let mut out = Vec::new();
    for mix in QuantMix::ALL {
        out.push(case(&format!("{mix} dense"), dense_shape(), mix)?);
    }
    for mix in [QuantMix::Q8_0, QuantMix::Q4_K_M] {
        out.push(case(&format!("{mix} moe"), moe_shape(), mix)?);
    }
    Ok(out)
}

fn case(label: &str, shape: Shape, mix: QuantMix) -> anyhow::Result<Case> {
    let spec = BehaviorSpec::Cycle {
        cycle_len: 64,
        seed: 7,
        diverge: 0.0,
    };
    Ok(Case {
        label: label.to_string(),
        recipe: Recipe::new("selftest", shape, mix, spec, None)?,
    })
}

/// 4 layers of 256: every K-quant block fits a row; a few MB per file.
fn dense_shape() -> Shape {
    Shape {
        arch: Arch::Qwen2,
        n_layer: 4,
        n_embd: 256,
        n_head: 4,
        n_head_kv: 2,
        head_dim: 64,
        n_ff: 512,
        n_vocab: 8192,
        n_expert: 0,
        n_expert_used: 0,
        n_ff_exp: 0,
        tied_embeddings: false,
        context_length: 4096,
        rope_freq_base: 1e6,
        rms_norm_eps: 1e-6,
    }
}

fn moe_shape() -> Shape {
    Shape {
        arch: Arch::Qwen3Moe,
        n_layer: 2,
        n_embd: 256,
        n_head: 4,
        n_head_kv: 2,
        head_dim: 64,
        n_ff: 512,
        n_vocab: 8192,
        n_expert: 8,
        n_expert_used: 2,
        n_ff_exp: 256,
        tied_embeddings: false,
        context_length: 4096,
        rope_freq_base: 1e6,
        rms_norm_eps: 1e-6,
    }
}

impl EngineCheck for SelfTest {
    fn check(&self, server_bin: &Path) -> Result<SelfTestReport, SelfTestFailure> {
        let start = Instant::now();
        let cases = cases().map_err(|e| SelfTestFailure(format!("{e:#}")))?;
        let logs = LogDir::new().map_err(|e| SelfTestFailure(format!("{e:#}")))?;
        let mut checked = Vec::with_capacity(cases.len());
        for case in &cases {
            let line = self
                .check_case(server_bin, case, &logs.0)
                .map_err(|why| SelfTestFailure(format!("{}: {why}", case.label)))?;
            checked.push(line);
        }
        Ok(SelfTestReport {
            secs: start.elapsed().as_secs_f64(),
            checked,
        })
    }
}

impl SelfTest {
    fn check_case(&self, server_bin: &Path, case: &Case, logs: &Path) -> Result<String, String> {
        let model = synth::ensure_model(&case.recipe, &self.model_dir)
            .map_err(|e| format!("writing its model: {e:#}"))?;
        let cmd = LaunchCommand {
            bin: server_bin.to_path_buf(),
            args: [
                "-m".into(),
                model.into_os_string(),
                "-t".into(),
                self.threads.to_string().into(),
                "-c".into(),
                "512".into(),
                "-np".into(),
                "1".into(),
            ]
            .to_vec(),
            cpus: None,
        };
        let log = logs.join(format!("{}.log", case.label.replace(' ', "-")));
        let server = Server::launch(&cmd, &LaunchOptions::new(&log, STARTUP_TIMEOUT))
            .map_err(|e| describe_server_error(&e, "starting (its warm-up decodes a batch)"))?;
        let behavior = &case.recipe.behavior;
        let prompt = behavior.cycle_prompt(PROMPT_TOKENS);
        let want = behavior.predicted(&prompt, DECODE_TOKENS as usize);
        let got = complete(&server, prompt);
        let got = match got {
            Ok(tokens) => tokens,
            Err(e) => {
                return Err(match server.check() {
                    Err(dead) => describe_server_error(&dead, "prefilling and decoding"),
                    Ok(()) => e,
                })
            }
        };
        server
            .stop()
            .map_err(|e| format!("stopping the server: {e}"))?;
        compare_tokens(&got, &want)?;
        Ok(format!(
            "{}: {PROMPT_TOKENS}-token prompt, {}/{} tokens as predicted",
            case.label,
            got.len(),
            want.len()
        ))
    }
}

/// One greedy completion; its token ids.
fn complete(server: &Server, prompt: Vec<u32>) -> Result<Vec<u32>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the HTTP runtime: {e}"))?;
    let client = Client::new(&server.base_url()).map_err(|e| e.to_string())?;
    let mut req = CompletionRequest::new(Prompt::Tokens(prompt), DECODE_TOKENS);
    req.first_token_timeout = REQUEST_TIMEOUT;
    let mut watch = server.exit_watch();
    runtime.block_on(async {
        tokio::select! {
            r = client.complete(&req) => r.map(|rec| rec.token_ids).map_err(|e| e.to_string()),
            dead = watch.exited() => Err(describe_server_error(&dead, "prefilling and decoding")),
        }
    })
}

/// `Ok` when the tokens are the known sequence, else the first difference.
pub fn compare_tokens(got: &[u32], want: &[u32]) -> Result<(), String> {
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        return Err(format!(
            "wrong output: token {i} is {}, the model's construction says {} (a miscomputing kernel)",
            got[i], want[i]
        ));
    }
    if got.len() != want.len() {
        return Err(format!(
            "wrong output: {} tokens, {} asked for",
            got.len(),
            want.len()
        ));
    }
    Ok(())
}

/// The reason of a server failure; [`ServerError`] names the signal and its meaning.
pub fn describe_server_error(e: &ServerError, while_doing: &str) -> String {
    format!("while {while_doing}: {e}")
}

/// A temporary directory for the servers' logs, removed when dropped.
struct LogDir(PathBuf);

impl LogDir {
    fn new() -> anyhow::Result<LogDir> {
        let dir = std::env::temp_dir().join(format!("tpsbench-selftest-{}", std::process::id()));
        crate::util::create_dir_all(&dir)?;
        Ok(LogDir(dir))
    }
}

impl Drop for LogDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::GgmlType;

    #[test]
    fn the_cases_cover_every_weight_type_of_the_profiles() {
        let mut types = std::collections::BTreeSet::new();
        for case in cases().unwrap() {
            for t in case.recipe.plan() {
                types.insert(t.ty);
            }
        }
        for ty in [
            GgmlType::F16,
            GgmlType::Q8_0,
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::Q4_K,
            GgmlType::Q5_K,
            GgmlType::Q6_K,
        ] {
            assert!(types.contains(&ty), "{ty:?} is not self-tested");
        }
    }

    #[test]
    fn the_prompt_is_one_batch_of_at_least_64_tokens() {
        for case in cases().unwrap() {
            assert!(case.recipe.behavior.cycle_prompt(PROMPT_TOKENS).len() >= 64);
        }
    }

    #[test]
    fn wrong_tokens_are_named_by_position() {
        assert!(compare_tokens(&[1, 2, 3], &[1, 2, 3]).is_ok());
        let e = compare_tokens(&[1, 9, 3], &[1, 2, 3]).unwrap_err();
        assert!(e.contains("token 1 is 9") && e.contains("says 2"), "{e}");
        assert!(compare_tokens(&[1, 2], &[1, 2, 3]).is_err());
    }

    #[test]
    fn sigill_is_explained() {
        use nix::sys::signal::Signal;
        let e = ServerError::Exited {
            pid: 7,
            exit: crate::llamacpp::server::ExitInfo {
                code: None,
                signal: Some(Signal::SIGILL as i32),
            },
            log_tail: "load_tensors: done".into(),
        };
        let text = describe_server_error(&e, "prefilling");
        assert!(text.contains("SIGILL"), "{text}");
        assert!(
            text.contains("instruction this CPU does not execute"),
            "{text}"
        );
        assert!(text.contains("load_tensors: done"), "{text}");
    }
}
