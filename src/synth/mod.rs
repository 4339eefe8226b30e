//! Synthetic GGUF models with the exact tensor shapes and quant types of real models and a
//! known greedy behaviour (`bench synth`).
//!
//! Decode throughput depends on the shapes and types of the weights, not on their values,
//! so a file with Qwen2.5-7B's tensors in llama.cpp's Q4_K_M layout costs llama.cpp what the
//! real model costs, and any machine can measure the guide's models without downloading one.
//!
//! The `cycle` behaviour gives the weights a ground truth: with zero attention-output and
//! FFN-down projections every layer does its full work but leaves the residual stream at the
//! token's embedding, and output row j = sum of the embeddings of j's predecessors, so
//! greedy decoding emits `successor(last token)` every step. That needs an `output.weight`
//! separate from `token_embd`, which is written even for presets published with tied
//! embeddings (0.5B/1.5B/3B): those files hold n_vocab*n_embd more parameters than the
//! published model and read one more [n_embd, n_vocab] matrix per token (the tied model
//! reads the same matrix as output, so the bytes per token differ only by the type of that
//! matrix). The `random` behaviour keeps the published tying and has no ground truth.

pub mod behavior;
pub mod blocks;
pub mod plan;
pub mod presets;
pub mod vocab;
pub mod write;

pub use behavior::{Behavior, Cycle};
pub use plan::QuantMix;
pub use presets::{Arch, Preset, Shape};
pub use write::{write_model, WriteReport};

use crate::profile::SynthOverrides;
use anyhow::Context;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Bump when the bytes written for a recipe change, so cached models are rewritten.
const FORMAT_VERSION: u32 = 2;

/// Everything that determines a synthetic model file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recipe {
    /// Preset name or "custom", for file names and `general.name`.
    pub label: String,
    pub shape: Shape,
    pub quant: QuantMix,
    pub behavior: Behavior,
    /// GGUF whose tokenizer is copied; the built-in byte-level vocabulary when None.
    pub vocab: Option<PathBuf>,
}

/// The behaviour asked for on the command line, before the vocabulary fixes its domain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BehaviorSpec {
    Cycle {
        cycle_len: u32,
        seed: u64,
        diverge: f64,
    },
    Random {
        seed: u64,
    },
}

impl Recipe {
    /// A recipe; reads the vocabulary file (if any) to find the tokens cycles may use.
    pub fn new(
        label: &str,
        shape: Shape,
        quant: QuantMix,
        spec: BehaviorSpec,
        vocab: Option<PathBuf>,
    ) -> anyhow::Result<Recipe> {
        shape
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid shape: {e}"))?;
        let mut recipe = Recipe {
            label: label.to_string(),
            shape,
            quant,
            behavior: Behavior::Random { seed: 0 },
            vocab,
        };
        recipe.behavior = match spec {
            BehaviorSpec::Random { seed } => Behavior::Random { seed },
            BehaviorSpec::Cycle {
                cycle_len,
                seed,
                diverge,
            } => {
                anyhow::ensure!(cycle_len >= 1, "--cycle-len must be at least 1");
                anyhow::ensure!((0.0..=1.0).contains(&diverge), "--diverge must be in 0..=1");
                let domain = recipe.vocab()?.domain;
                let n_vocab = recipe.shape.n_vocab as u32;
                Behavior::Cycle(Cycle::new(cycle_len, seed, diverge, domain, n_vocab))
            }
        };
        Ok(recipe)
    }

    /// A preset as published, with the default `cycle` behaviour (64-token cycles).
    pub fn preset(name: &str, quant: QuantMix) -> anyhow::Result<Recipe> {
        let p = presets::by_name(name).with_context(|| unknown_preset(name))?;
        let spec = BehaviorSpec::Cycle {
            cycle_len: 64,
            seed: 1,
            diverge: 0.0,
        };
        Recipe::new(p.name, p.shape, quant, spec, None)
    }

    /// The tokenizer metadata this recipe writes.
    pub fn vocab(&self) -> anyhow::Result<vocab::Vocab> {
        let n = u32::try_from(self.shape.n_vocab).context("vocab size exceeds u32")?;
        match &self.vocab {
            Some(path) => vocab::from_file(path, n),
            None => Ok(vocab::builtin(n)),
        }
    }

    /// The tensors, typed by the quant mix (untied output under `cycle`).
    pub fn plan(&self) -> Vec<plan::PlannedTensor> {
        plan::plan(&self.shape, self.quant, self.behavior.has_ground_truth())
    }

    /// The recipe as JSON, stored in the file's `tpsbench.synth.recipe`.
    pub fn describe_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Content hash: format version, recipe, and the vocabulary file's size and mtime.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(FORMAT_VERSION.to_le_bytes());
        h.update(self.describe_json());
        if let Some(meta) = self.vocab.as_ref().and_then(|p| std::fs::metadata(p).ok()) {
            h.update(meta.len().to_le_bytes());
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
            h.update(mtime.unwrap_or_default().as_nanos().to_le_bytes());
        }
        hex::encode(&h.finalize()[..6])
    }

    /// File name in the cache: label, quant, behaviour and hash.
    pub fn file_name(&self) -> String {
        let b = match &self.behavior {
            Behavior::Cycle(c) if c.diverge > 0.0 => {
                format!("cycle{}-div{}", c.cycle_len, c.diverge)
            }
            Behavior::Cycle(c) => format!("cycle{}", c.cycle_len),
            Behavior::Random { .. } => "random".into(),
        };
        format!("{}-{}-{}-{}.gguf", self.label, self.quant, b, self.hash())
    }
}

fn unknown_preset(name: &str) -> String {
    format!(
        "unknown preset {name:?}; known: {}",
        presets::names().join(", ")
    )
}

/// `$XDG_CACHE_HOME/tpsbench/models` (or `~/.cache/tpsbench/models`).
pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("tpsbench").join("models")
}

/// The model file of `recipe` in `cache_dir`, written first if it is not there yet
/// (to a temporary name, then renamed, so a crash never leaves a truncated model).
pub fn ensure_model(recipe: &Recipe, cache_dir: &Path) -> anyhow::Result<PathBuf> {
    let path = cache_dir.join(recipe.file_name());
    if path.is_file() {
        return Ok(path);
    }
    std::fs::create_dir_all(cache_dir)
        .with_context(|| format!("creating {}", cache_dir.display()))?;
    check_space(recipe, cache_dir)?;
    write_in_place(recipe, &path, false)?;
    Ok(path)
}

/// Writes `recipe` to `path` through a temporary file beside it (`.NAME.PID.tmp`), renamed
/// into place only when complete: a reader never sees a partial model under its final name.
/// Ctrl-C or SIGTERM stops the write and the temporary file goes with it (the error is
/// [`crate::util::interrupt::Interrupted`], exit 130 or 143); so does any other failure.
pub fn write_in_place(recipe: &Recipe, path: &Path, sparse: bool) -> anyhow::Result<WriteReport> {
    let name = path
        .file_name()
        .map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let guard = crate::util::interrupt::Guard::install();
    let result = write_model(recipe, &tmp, sparse);
    let signal = guard.received();
    drop(guard);
    if let Some(sig) = signal {
        let _ = std::fs::remove_file(&tmp);
        return Err(crate::util::interrupt::Interrupted(sig).into());
    }
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(report)
}

/// Disk space a full write leaves free (other files and the system need room too).
pub const DISK_MARGIN_BYTES: u64 = 1 << 30;

/// A full stand-in that does not fit the free space of its directory.
#[derive(Debug, thiserror::Error)]
#[error(
    "not enough disk space for {file} in {}: needs {:.2} GB, has {:.2} GB free \
     (1 GiB is kept free)",
    dir.display(),
    *needs as f64 / 1e9,
    *has as f64 / 1e9
)]
pub struct NoSpace {
    /// The file that would be written.
    pub file: String,
    /// Its directory.
    pub dir: PathBuf,
    /// Tensor bytes to write.
    pub needs: u64,
    /// Free bytes of the directory's filesystem.
    pub has: u64,
}

/// Refuses a full write of `recipe` into `dir` that would leave less than
/// [`DISK_MARGIN_BYTES`] free, before a byte is written.
pub fn check_space(recipe: &Recipe, dir: &Path) -> anyhow::Result<()> {
    let needs = plan::tensor_bytes(&recipe.plan());
    let has = crate::hardware::storage::read_storage(dir)?.free_bytes;
    if needs.saturating_add(DISK_MARGIN_BYTES) > has {
        return Err(NoSpace {
            file: recipe.file_name(),
            dir: dir.to_path_buf(),
            needs,
            has,
        }
        .into());
    }
    Ok(())
}

/// `--quant` when not given.
pub const DEFAULT_QUANT: &str = "Q4_K_M";
/// `--behavior` when not given.
pub const DEFAULT_BEHAVIOR: &str = "cycle";
/// `--cycle-len` when not given.
pub const DEFAULT_CYCLE_LEN: u32 = 64;
/// `--seed` when not given.
pub const DEFAULT_SEED: u64 = 1;

/// Arguments of `bench synth`, and the one description of a synthetic model before it is
/// validated into a [`Recipe`]: the command line parses into it, and a profile role's
/// `synthetic` preset and `[roles.synth]` table convert into it ([`SynthArgs::for_role`]).
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct SynthArgs {
    /// Shape preset (qwen2.5-0.5b, -1.5b, -3b, -7b, -14b, -32b, -72b, qwen2.5-coder-0.5b,
    /// qwen3-30b-a3b, qwen3-235b-a22b, qwen3-coder-480b-a35b). Without it, a custom shape
    /// from --embd/--heads/--ff (and --experts/--expert-ff for MoE).
    #[arg(long)]
    pub preset: Option<String>,
    /// Number of layers (overrides the preset's, e.g. to make a small stand-in).
    #[arg(long)]
    pub layers: Option<u32>,
    /// Embedding width (hidden_size).
    #[arg(long)]
    pub embd: Option<u64>,
    /// Attention heads.
    #[arg(long)]
    pub heads: Option<u32>,
    /// Key/value heads (default: --heads).
    #[arg(long)]
    pub kv_heads: Option<u32>,
    /// Per-head dimension (default: embd / heads).
    #[arg(long)]
    pub head_dim: Option<u64>,
    /// Dense FFN width (intermediate_size).
    #[arg(long)]
    pub ff: Option<u64>,
    /// Vocabulary size (default: the preset's, the --vocab file's, or 16384).
    #[arg(long)]
    pub n_vocab: Option<u64>,
    /// Experts per layer (makes a custom shape a qwen3moe MoE).
    #[arg(long)]
    pub experts: Option<u32>,
    /// Experts used per token.
    #[arg(long)]
    pub experts_used: Option<u32>,
    /// Width of one expert's FFN (moe_intermediate_size).
    #[arg(long)]
    pub expert_ff: Option<u64>,
    /// Quant mix as llama-quantize lays it out: F16, Q8_0, Q4_0, Q4_1, Q4_K_M, Q5_K_M, Q6_K.
    #[arg(long, default_value = DEFAULT_QUANT)]
    pub quant: String,
    /// Behaviour: `cycle` (known greedy output) or `random` (published tying, no ground truth).
    #[arg(long, default_value = DEFAULT_BEHAVIOR)]
    pub behavior: String,
    /// Length of the successor cycles.
    #[arg(long, default_value_t = DEFAULT_CYCLE_LEN)]
    pub cycle_len: u32,
    /// Fraction of tokens whose successor differs (for a draft model), 0..=1.
    #[arg(long, default_value_t = 0.0)]
    pub diverge: f64,
    /// Seed of the weights and of the successor function.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// GGUF file whose tokenizer (tokenizer.* keys) is copied, e.g. models/ggml-vocab-qwen2.gguf.
    #[arg(long)]
    pub vocab: Option<PathBuf>,
    /// Write a size-exact sparse file (header real, tensor data holes): for `bench size`
    /// on models larger than the disk; llama.cpp can load it but it has no behaviour.
    #[arg(long)]
    pub sparse: bool,
    /// Output file (default: the model cache, reused when it exists).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

impl SynthArgs {
    /// The stand-in of a profile role: its quant, its `synthetic` preset (if any) and its
    /// `[roles.synth]` settings, everything else at the command line's defaults.
    pub fn for_role(quant: &str, preset: Option<&str>, synth: &SynthOverrides) -> SynthArgs {
        SynthArgs {
            preset: preset.map(str::to_string),
            layers: synth.layers,
            embd: synth.embd,
            heads: synth.heads,
            kv_heads: synth.kv_heads,
            head_dim: synth.head_dim,
            ff: synth.ff,
            n_vocab: synth.n_vocab,
            experts: synth.experts,
            experts_used: synth.experts_used,
            expert_ff: synth.expert_ff,
            quant: quant.to_string(),
            behavior: DEFAULT_BEHAVIOR.to_string(),
            cycle_len: synth.cycle_len.unwrap_or(DEFAULT_CYCLE_LEN),
            diverge: synth.diverge.unwrap_or(0.0),
            seed: synth.seed.unwrap_or(DEFAULT_SEED),
            vocab: None,
            sparse: false,
            output: None,
        }
    }

    /// Turns the raw arguments into a validated recipe.
    pub fn recipe(&self) -> anyhow::Result<Recipe> {
        let quant: QuantMix = self.quant.parse().map_err(anyhow::Error::msg)?;
        let (label, shape) = self.shape()?;
        let spec = match self.behavior.as_str() {
            "cycle" => BehaviorSpec::Cycle {
                cycle_len: self.cycle_len,
                seed: self.seed,
                diverge: self.diverge,
            },
            "random" => BehaviorSpec::Random { seed: self.seed },
            other => anyhow::bail!("unknown behavior {other:?}; known: cycle, random"),
        };
        Recipe::new(&label, shape, quant, spec, self.vocab.clone())
    }

    fn shape(&self) -> anyhow::Result<(String, Shape)> {
        let (label, mut s) = match &self.preset {
            Some(name) => {
                let p = presets::by_name(name).with_context(|| unknown_preset(name))?;
                (p.name.to_string(), p.shape)
            }
            None => ("custom".to_string(), self.custom_base()?),
        };
        s.n_layer = self.layers.unwrap_or(s.n_layer);
        s.n_embd = self.embd.unwrap_or(s.n_embd);
        s.n_head = self.heads.unwrap_or(s.n_head);
        s.n_head_kv = self.kv_heads.unwrap_or(s.n_head_kv);
        s.n_ff = self.ff.unwrap_or(s.n_ff);
        s.n_expert = self.experts.unwrap_or(s.n_expert);
        s.n_expert_used = self.experts_used.unwrap_or(s.n_expert_used);
        s.n_ff_exp = self.expert_ff.unwrap_or(s.n_ff_exp);
        s.n_vocab = self.n_vocab.unwrap_or(s.n_vocab);
        if let Some(hd) = self.head_dim {
            s.head_dim = hd;
        } else if self.embd.is_some() || self.heads.is_some() {
            s.head_dim = s.n_embd / s.n_head.max(1) as u64;
        }
        let custom = self.preset.is_none() || self.layers.is_some() || self.embd.is_some();
        let label = if custom && self.preset.is_some() {
            format!("{label}-custom")
        } else {
            label
        };
        Ok((label, s))
    }

    /// A custom shape's starting point: qwen2, or qwen3moe when --experts is given.
    fn custom_base(&self) -> anyhow::Result<Shape> {
        let embd = self
            .embd
            .context("a custom shape needs --embd (or use --preset)")?;
        let heads = self.heads.context("a custom shape needs --heads")?;
        let moe = self.experts.is_some_and(|e| e > 0);
        let n_vocab = match (&self.n_vocab, &self.vocab) {
            (Some(n), _) => *n,
            (None, Some(path)) => vocab_file_tokens(path)?,
            (None, None) => 16_384,
        };
        Ok(Shape {
            arch: if moe { Arch::Qwen3Moe } else { Arch::Qwen2 },
            n_layer: self.layers.unwrap_or(4),
            n_embd: embd,
            n_head: heads,
            n_head_kv: self.kv_heads.unwrap_or(heads),
            head_dim: embd / heads.max(1) as u64,
            n_ff: self.ff.unwrap_or(if moe { 0 } else { 4 * embd }),
            n_vocab,
            n_expert: 0,
            n_expert_used: 0,
            n_ff_exp: 0,
            tied_embeddings: false,
            context_length: 32_768,
            rope_freq_base: 1_000_000.0,
            rms_norm_eps: 1e-6,
        })
    }
}

/// Number of tokens in a GGUF's tokenizer.
fn vocab_file_tokens(path: &Path) -> anyhow::Result<u64> {
    let f = crate::gguf::GgufFile::open(path).context("reading the vocabulary file")?;
    let tokens = f.get("tokenizer.ggml.tokens").and_then(|v| v.as_array());
    let n = tokens.with_context(|| format!("{} has no tokenizer.ggml.tokens", path.display()))?;
    Ok(n.len() as u64)
}

/// Runs `bench synth`.
pub fn command(args: &SynthArgs) -> anyhow::Result<ExitCode> {
    let recipe = args.recipe()?;
    let plan = recipe.plan();
    let path = match &args.output {
        Some(out) => {
            if !args.sparse {
                let dir = out.parent().filter(|d| !d.as_os_str().is_empty());
                check_space(&recipe, dir.unwrap_or(Path::new(".")))?;
            }
            let report = write_in_place(&recipe, out, args.sparse)?;
            print_report(&report);
            out.clone()
        }
        None if args.sparse => {
            anyhow::bail!("--sparse needs -o FILE (sparse files are never cached)")
        }
        None => ensure_model(&recipe, &cache_dir())?,
    };
    // A closed stdout (`| head`) is not an error of the write.
    let _ = writeln!(
        std::io::stdout(),
        "{}: {} {} ({}), {} layers, {:.3} B parameters, {:.2} GB tensor data",
        path.display(),
        recipe.label,
        recipe.quant,
        recipe.shape.arch.name(),
        recipe.shape.n_layer,
        plan::n_params(&plan) as f64 / 1e9,
        plan::tensor_bytes(&plan) as f64 / 1e9,
    );
    Ok(ExitCode::SUCCESS)
}

fn print_report(r: &WriteReport) {
    let _ = writeln!(
        std::io::stdout(),
        "wrote {:.2} GB in {:.2} s: {:.2} GB/s into the page cache, {:.2} GB/s including fsync",
        r.file_bytes as f64 / 1e9,
        r.synced_time.as_secs_f64(),
        r.write_gbps(),
        r.synced_gbps()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SynthArgs,
    }

    #[test]
    fn a_profile_role_converts_to_what_the_same_flags_parse_to() {
        let table = SynthOverrides {
            layers: Some(2),
            embd: Some(256),
            heads: Some(4),
            ff: Some(768),
            n_vocab: Some(8192),
            cycle_len: Some(32),
            seed: Some(7),
            ..SynthOverrides::default()
        };
        let flags = [
            "synth",
            "--quant",
            "F16",
            "--layers",
            "2",
            "--embd",
            "256",
            "--heads",
            "4",
            "--ff",
            "768",
            "--n-vocab",
            "8192",
            "--cycle-len",
            "32",
            "--seed",
            "7",
        ];
        let parsed = Cli::try_parse_from(flags).unwrap().args;
        assert_eq!(SynthArgs::for_role("F16", None, &table), parsed);
        let preset = Cli::try_parse_from(["synth", "--quant", "Q8_0", "--preset", "qwen2.5-0.5b"])
            .unwrap()
            .args;
        let from_role = SynthArgs::for_role("Q8_0", Some("qwen2.5-0.5b"), &Default::default());
        assert_eq!(from_role, preset);
        assert_eq!(
            from_role.recipe().unwrap().file_name(),
            preset.recipe().unwrap().file_name()
        );
    }
}
