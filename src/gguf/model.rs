//! A model as the harness sees it: one GGUF file or all shards of a split model
//! (`NAME-00001-of-0000N.gguf`) read as one, and the facts derived from its header that
//! sizing needs: exact parameters and bytes, the quant mix, the attention shape for the KV
//! cache, and the bytes actually read per generated token (active experts, one embedding row).

use std::path::{Path, PathBuf};

use super::{GgmlType, GgufError, GgufFile, TensorInfo, Value};

/// Name of the token embedding matrix; a generated token reads one row of it.
pub const TOKEN_EMBD: &str = "token_embd.weight";
/// Name of the output (LM head) matrix; absent when the embeddings are tied.
pub const OUTPUT: &str = "output.weight";

/// A model: its shards in order (a single-file model has one).
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub shards: Vec<GgufFile>,
}

impl Model {
    /// Opens `path`; when its name is `PREFIX-0000i-of-0000N.gguf`, opens all N shards.
    pub fn open(path: &Path) -> Result<Model, GgufError> {
        let paths = match shard_paths(path) {
            Some(paths) => paths,
            None => vec![path.to_path_buf()],
        };
        let mut shards = Vec::with_capacity(paths.len());
        for (i, p) in paths.iter().enumerate() {
            // A single file that is not there is reported by the reader (no such file).
            if !p.exists() && paths.len() > 1 {
                return Err(missing_shard(path, p, i, paths.len()));
            }
            shards.push(GgufFile::open(p)?);
        }
        let model = Model { shards };
        model.check_shards()?;
        Ok(model)
    }

    /// A model of one already-parsed file.
    pub fn from_file(file: GgufFile) -> Model {
        Model { shards: vec![file] }
    }

    /// Metadata value of `key` (from the first shard, which holds the model's metadata).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.shards.iter().find_map(|s| s.get(key))
    }

    /// All tensors of all shards.
    pub fn tensors(&self) -> impl Iterator<Item = &TensorInfo> {
        self.shards.iter().flat_map(|s| s.tensors.iter())
    }

    /// `general.architecture`, e.g. "llama", "qwen2", "qwen3moe".
    pub fn architecture(&self) -> Option<&str> {
        self.get("general.architecture")?.as_str()
    }

    /// Path of the first shard.
    pub fn path(&self) -> &Path {
        self.shards
            .first()
            .map_or(Path::new(""), |s| s.path.as_path())
    }

    fn check_shards(&self) -> Result<(), GgufError> {
        let n = self.shards.len();
        for (i, shard) in self.shards.iter().enumerate() {
            let count = shard.get("split.count").and_then(Value::as_u64);
            if n > 1 && count.is_some_and(|c| c != n as u64) {
                let detail = format!("split.count says {count:?} shards, found {n} files");
                return Err(shard_error(&shard.path, detail));
            }
            let no = shard.get("split.no").and_then(Value::as_u64);
            if n > 1 && no.is_some_and(|no| no != i as u64) {
                let detail = format!("split.no is {no:?} but the file name says shard {}", i + 1);
                return Err(shard_error(&shard.path, detail));
            }
        }
        self.check_unique_tensor_names()
    }

    fn check_unique_tensor_names(&self) -> Result<(), GgufError> {
        if self.shards.len() < 2 {
            return Ok(()); // the reader checked each file
        }
        let mut names: Vec<(&str, &Path)> = self
            .shards
            .iter()
            .flat_map(|s| {
                s.tensors
                    .iter()
                    .map(move |t| (t.name.as_str(), s.path.as_path()))
            })
            .collect();
        names.sort_unstable();
        match names.windows(2).find(|w| w[0].0 == w[1].0) {
            Some(w) => Err(shard_error(
                w[1].1,
                format!("tensor {:?} also appears in {}", w[1].0, w[0].1.display()),
            )),
            None => Ok(()),
        }
    }

    /// The derived facts (see [`ModelFacts`]).
    pub fn facts(&self) -> ModelFacts {
        ModelFacts::of(self)
    }
}

fn shard_error(path: &Path, detail: String) -> GgufError {
    GgufError::Shards {
        path: path.to_path_buf(),
        offset: 0,
        detail,
    }
}

fn missing_shard(given: &Path, missing: &Path, i: usize, n: usize) -> GgufError {
    let detail = format!(
        "shard {} of {n} of this split model is missing (looked for {})",
        i + 1,
        missing.display()
    );
    shard_error(given, detail)
}

/// For `DIR/PREFIX-0000i-of-0000N.gguf`, the paths of all N shards in order; `None` for a
/// name without that pattern (llama.cpp's `llama_split_path` format `%s-%05d-of-%05d.gguf`).
pub fn shard_paths(path: &Path) -> Option<Vec<PathBuf>> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".gguf")?;
    let (left, count) = stem.rsplit_once("-of-")?;
    let (prefix, no) = left.rsplit_once('-')?;
    let digits = |s: &str| s.len() >= 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(count) || !digits(no) {
        return None;
    }
    let (count, no): (usize, usize) = (count.parse().ok()?, no.parse().ok()?);
    if count == 0 || no == 0 || no > count || count > 99_999 {
        return None;
    }
    let dir = path.parent().unwrap_or(Path::new(""));
    let shard = |i| dir.join(format!("{prefix}-{i:05}-of-{count:05}.gguf"));
    Some((1..=count).map(shard).collect())
}

/// Bytes and parameters of one tensor type in a model.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TypeShare {
    pub ggml_type: GgmlType,
    /// Number of tensors of this type.
    pub n_tensors: u64,
    /// Elements (parameters) stored in this type.
    pub n_params: u64,
    /// Exact data bytes of these tensors.
    pub bytes: u64,
}

impl TypeShare {
    /// Bits per weight of this share.
    pub fn bits_per_weight(&self) -> f64 {
        bits_per_weight(self.bytes, self.n_params)
    }
}

fn bits_per_weight(bytes: u64, params: u64) -> f64 {
    if params == 0 {
        0.0
    } else {
        bytes as f64 * 8.0 / params as f64
    }
}

/// What sizing needs to know about a model, derived from its header alone. Counts the file
/// does not state are 0 (the `Option`s say "not a mixture of experts" when `None`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ModelFacts {
    /// `general.architecture`.
    pub architecture: Option<String>,
    /// `general.name`.
    pub name: Option<String>,
    /// Number of shard files.
    pub n_shards: u64,
    /// Number of tensors.
    pub n_tensors: u64,
    /// Parameters: the sum of all tensors' elements.
    pub n_params: u64,
    /// Bytes of all shard files.
    pub file_bytes: u64,
    /// Exact bytes of all tensor data (without padding).
    pub tensor_bytes: u64,
    /// tensor_bytes * 8 / n_params.
    pub bits_per_weight: f64,
    /// Quant mix, largest share first.
    pub by_type: Vec<TypeShare>,
    /// The file's quant: the name of `general.file_type` (`Q4_K_M`), else the type holding
    /// the most bytes (`None` for a file without tensors).
    pub quant: Option<String>,
    /// Transformer blocks (`ARCH.block_count`).
    pub block_count: u64,
    /// `ARCH.embedding_length` (n_embd).
    pub embedding_length: u64,
    /// Attention heads (`ARCH.attention.head_count`; the largest, when given per layer).
    pub head_count: u64,
    /// KV heads (`ARCH.attention.head_count_kv`, default head_count; largest per layer).
    pub head_count_kv: u64,
    /// Elements per head: `ARCH.attention.key_length` if present, else n_embd / n_head.
    pub head_dim: u64,
    /// Elements per value head (`ARCH.attention.value_length`, default head_dim).
    pub value_dim: u64,
    /// Sliding attention window of the layers that use one (tokens; 0: every layer attends
    /// to the whole context). As llama.cpp reads it: `ARCH.attention.sliding_window` for the
    /// architectures that implement it ([`SLIDING_WINDOW_ARCHS`]), else 0.
    pub sliding_window: u64,
    /// Layers that attend only to the last `sliding_window` tokens
    /// (`ARCH.attention.sliding_window_pattern`, else the architecture's pattern).
    pub sliding_window_layers: u64,
    /// K and V elements cached per token of context, summed over layers.
    pub kv_elements_per_token: u64,
    /// Training context length (`ARCH.context_length`).
    pub context_length: u64,
    /// Tokens in the vocabulary (tokenizer.ggml.tokens, else token_embd rows).
    pub vocab_size: u64,
    /// Experts per MoE layer (`ARCH.expert_count`).
    pub expert_count: Option<u32>,
    /// Experts used per token (`ARCH.expert_used_count`, or as set by `with_experts_used`).
    pub expert_used_count: Option<u32>,
    /// Parameters of the routed expert tensors (`*_exps`), all experts.
    pub expert_params: u64,
    /// Bytes of the routed expert tensors, all experts.
    pub expert_bytes: u64,
    /// Parameters of every other tensor except the token embedding.
    pub shared_params: u64,
    /// Bytes of every other tensor except the token embedding.
    pub shared_bytes: u64,
    /// Parameters of the token embedding matrix.
    pub embedding_params: u64,
    /// Bytes of the token embedding matrix.
    pub embedding_bytes: u64,
    /// Parameters of one embedding row (n_embd), what an untied embedding costs per token.
    pub embedding_row_params: u64,
    /// Bytes of one embedding row.
    pub embedding_row_bytes: u64,
    /// True when there is no output.weight: the embedding doubles as the LM head.
    pub tied_embeddings: bool,
    /// Parameters used per generated token.
    pub active_params: u64,
    /// Bytes of weights read per generated token.
    pub active_bytes_per_token: u64,
}

/// How each tensor counts towards the active figures.
struct Split {
    expert: (u64, u64),
    shared: (u64, u64),
    embedding: (u64, u64),
    embedding_row: (u64, u64),
}

impl ModelFacts {
    fn of(model: &Model) -> ModelFacts {
        let arch = model.architecture().map(str::to_string);
        let a = Arch {
            model,
            arch: arch.as_deref().unwrap_or(""),
        };
        let split = split_tensors(model);
        let attention = a.attention();
        let mut facts = ModelFacts {
            name: model
                .get("general.name")
                .and_then(Value::as_str)
                .map(str::to_string),
            n_shards: model.shards.len() as u64,
            n_tensors: model.tensors().count() as u64,
            n_params: model.tensors().map(|t| t.n_elements).sum(),
            file_bytes: model.shards.iter().map(|s| s.file_bytes).sum(),
            tensor_bytes: model.tensors().map(|t| t.n_bytes).sum(),
            bits_per_weight: 0.0,
            by_type: by_type(model),
            quant: None,
            block_count: a.u64("block_count").unwrap_or(0),
            embedding_length: a.u64("embedding_length").unwrap_or(0),
            head_count: attention.head_count,
            head_count_kv: attention.head_count_kv,
            head_dim: attention.head_dim,
            value_dim: attention.value_dim,
            sliding_window: attention.sliding_window,
            sliding_window_layers: attention.sliding_window_layers,
            kv_elements_per_token: attention.kv_elements_per_token,
            context_length: a.u64("context_length").unwrap_or(0),
            vocab_size: vocab_size(model, &a),
            expert_count: a.u32("expert_count").filter(|&n| n > 0),
            expert_used_count: a.u32("expert_used_count").filter(|&n| n > 0),
            expert_params: split.expert.0,
            expert_bytes: split.expert.1,
            shared_params: split.shared.0,
            shared_bytes: split.shared.1,
            embedding_params: split.embedding.0,
            embedding_bytes: split.embedding.1,
            embedding_row_params: split.embedding_row.0,
            embedding_row_bytes: split.embedding_row.1,
            tied_embeddings: !model.tensors().any(|t| t.name == OUTPUT),
            active_params: 0,
            active_bytes_per_token: 0,
            architecture: arch,
        };
        facts.bits_per_weight = bits_per_weight(facts.tensor_bytes, facts.n_params);
        facts.quant = model
            .get("general.file_type")
            .and_then(Value::as_u64)
            .and_then(super::types::ftype_name)
            .map(str::to_string)
            .or_else(|| {
                facts
                    .by_type
                    .first()
                    .map(|t| t.ggml_type.name().to_string())
            });
        facts.set_active();
        facts
    }

    /// Bytes of KV cache per token of context with cache type `cache` (F16 by default in
    /// llama.cpp): n_layer x n_kv_heads x (head_dim + value_dim) x bytes per element.
    pub fn kv_bytes_per_token(&self, cache: GgmlType) -> u64 {
        let bits = u128::from(self.kv_elements_per_token) * u128::from(cache.type_size());
        let bytes = bits.div_ceil(u128::from(cache.block_size()));
        u64::try_from(bytes).unwrap_or(u64::MAX)
    }

    /// The same model run with `n` experts per token (llama.cpp's override of
    /// `ARCH.expert_used_count`): active figures recomputed. No effect on a dense model.
    pub fn with_experts_used(&self, n: u32) -> ModelFacts {
        let mut facts = self.clone();
        if facts.expert_count.is_some() {
            facts.expert_used_count = Some(n);
        }
        facts.set_active();
        facts
    }

    fn set_active(&mut self) {
        let (mut params, mut bytes) = (self.shared_params, self.shared_bytes);
        let (ep, eb) = self.active_expert_share();
        params += ep;
        bytes += eb;
        // A tied embedding is read whole as the LM head (which includes the looked-up row).
        let (emb_p, emb_b) = if self.tied_embeddings {
            (self.embedding_params, self.embedding_bytes)
        } else {
            (self.embedding_row_params, self.embedding_row_bytes)
        };
        self.active_params = params + emb_p;
        self.active_bytes_per_token = bytes + emb_b;
    }

    /// Parameters and bytes of the experts used per token: used/total of the expert tensors.
    fn active_expert_share(&self) -> (u64, u64) {
        match (self.expert_count, self.expert_used_count) {
            (Some(total), Some(used)) if total > 0 => {
                let used = used.min(total);
                let part = |x: u64| (u128::from(x) * u128::from(used) / u128::from(total)) as u64;
                (part(self.expert_params), part(self.expert_bytes))
            }
            _ => (self.expert_params, self.expert_bytes),
        }
    }
}

fn split_tensors(model: &Model) -> Split {
    let mut s = Split {
        expert: (0, 0),
        shared: (0, 0),
        embedding: (0, 0),
        embedding_row: (0, 0),
    };
    for t in model.tensors() {
        let slot = if t.name == TOKEN_EMBD {
            s.embedding_row = row_of(t);
            &mut s.embedding
        } else if is_expert_tensor(&t.name) {
            &mut s.expert
        } else {
            &mut s.shared
        };
        slot.0 += t.n_elements;
        slot.1 += t.n_bytes;
    }
    s
}

/// Routed expert tensors are named `blk.N.ffn_{gate,up,down,gate_up}_exps.*`; shared experts
/// (`*_shexp`) run for every token and count as shared.
pub fn is_expert_tensor(name: &str) -> bool {
    name.contains("_exps.") || name.ends_with("_exps")
}

/// Elements and bytes of one row (`ne[0]` elements) of a matrix.
fn row_of(t: &TensorInfo) -> (u64, u64) {
    let rows: u64 = t.dims.iter().skip(1).product();
    match (t.dims.first(), rows) {
        (Some(&row), rows) if rows > 0 => (row, t.n_bytes / rows),
        _ => (t.n_elements, t.n_bytes),
    }
}

fn by_type(model: &Model) -> Vec<TypeShare> {
    let mut shares: Vec<TypeShare> = Vec::new();
    for t in model.tensors() {
        let i = match shares.iter().position(|s| s.ggml_type == t.ggml_type) {
            Some(i) => i,
            None => {
                shares.push(TypeShare {
                    ggml_type: t.ggml_type,
                    n_tensors: 0,
                    n_params: 0,
                    bytes: 0,
                });
                shares.len() - 1
            }
        };
        shares[i].n_tensors += 1;
        shares[i].n_params += t.n_elements;
        shares[i].bytes += t.n_bytes;
    }
    shares.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.ggml_type.cmp(&b.ggml_type)));
    shares
}

fn vocab_size(model: &Model, a: &Arch) -> u64 {
    if let Some(tokens) = model.get("tokenizer.ggml.tokens").and_then(Value::as_array) {
        return tokens.len() as u64;
    }
    let embd = model.tensors().find(|t| t.name == TOKEN_EMBD);
    if let Some(rows) = embd.and_then(|t| t.dims.get(1)) {
        return *rows;
    }
    a.u64("vocab_size").unwrap_or(0)
}

/// Attention shape and the KV cache elements per token.
struct Attention {
    head_count: u64,
    head_count_kv: u64,
    head_dim: u64,
    value_dim: u64,
    sliding_window: u64,
    sliding_window_layers: u64,
    kv_elements_per_token: u64,
}

/// The architectures whose llama.cpp graph uses a sliding attention window, with the
/// pattern their loader applies when the GGUF has no `ARCH.attention.sliding_window_pattern`
/// (pinned engine's `src/models/*.cpp`: `load_swa_pattern(ml, n, dense_first)`) and the
/// window it assumes when the GGUF has no `ARCH.attention.sliding_window` (0: none, the
/// model then attends fully). Other architectures are costed as attending to the whole
/// context, whatever their header says (llama.cpp ignores the key for them too, e.g. qwen2).
pub const SLIDING_WINDOW_ARCHS: [(&str, u64, bool, u64); 6] = [
    ("gemma2", 2, false, 4096),
    ("gemma3", 6, false, 0),
    ("gemma3n", 5, false, 0),
    ("cohere2", 4, false, 0),
    ("gpt-oss", 2, false, 0),
    ("olmo2", 4, false, 0),
];

/// How many of `n_layer` layers slide with llama.cpp's `set_swa_pattern(n, dense_first)`:
/// every layer when `n` is 0, else all but one in each group of `n` (the group's last, or its
/// first when `dense_first`).
fn sliding_layers(n_layer: u64, n: u64, dense_first: bool) -> u64 {
    (0..n_layer)
        .filter(|il| match n {
            0 => true,
            n if dense_first => il % n != 0,
            n => il % n < n - 1,
        })
        .count() as u64
}

/// Reads `ARCH.*` keys of one model.
struct Arch<'m> {
    model: &'m Model,
    arch: &'m str,
}

impl Arch<'_> {
    fn value(&self, suffix: &str) -> Option<&Value> {
        self.model.get(&format!("{}.{suffix}", self.arch))
    }

    fn u64(&self, suffix: &str) -> Option<u64> {
        self.value(suffix)?.as_u64()
    }

    fn u32(&self, suffix: &str) -> Option<u32> {
        self.u64(suffix).and_then(|v| u32::try_from(v).ok())
    }

    /// A value that may be one number or one number per layer (e.g. OpenELM, hybrids).
    fn per_layer(&self, suffix: &str, n_layer: u64) -> Option<Vec<u64>> {
        match self.value(suffix)? {
            Value::Array(_, items) => Some(items.iter().map(|v| v.as_u64().unwrap_or(0)).collect()),
            v => v.as_u64().map(|x| vec![x; n_layer.min(1 << 20) as usize]),
        }
    }

    /// The sliding window and how many layers use it, as llama.cpp's loader decides.
    fn sliding_window(&self, n_layer: u64) -> (u64, u64) {
        let Some(&(_, pattern, dense_first, default)) =
            SLIDING_WINDOW_ARCHS.iter().find(|a| a.0 == self.arch)
        else {
            return (0, 0);
        };
        let window = self.u64("attention.sliding_window").unwrap_or(default);
        if window == 0 {
            return (0, 0);
        }
        let n_layer = n_layer.min(1 << 20);
        let layers = match self.value("attention.sliding_window_pattern") {
            Some(Value::Array(_, flags)) => flags
                .iter()
                .take(n_layer as usize)
                .filter(|f| matches!(f, Value::Bool(true)))
                .count() as u64,
            Some(v) => sliding_layers(n_layer, v.as_u64().unwrap_or(pattern), dense_first),
            None => sliding_layers(n_layer, pattern, dense_first),
        };
        (window, layers)
    }

    fn attention(&self) -> Attention {
        let n_layer = self.u64("block_count").unwrap_or(0);
        let heads = self
            .per_layer("attention.head_count", n_layer)
            .unwrap_or_default();
        let kv_heads = self
            .per_layer("attention.head_count_kv", n_layer)
            .unwrap_or_else(|| heads.clone());
        let head_count = heads.iter().copied().max().unwrap_or(0);
        let n_embd = self.u64("embedding_length").unwrap_or(0);
        let head_dim = self
            .u64("attention.key_length")
            .unwrap_or_else(|| n_embd.checked_div(head_count).unwrap_or(0));
        let value_dim = self.u64("attention.value_length").unwrap_or(head_dim);
        let kv_heads_sum: u64 = kv_heads.iter().fold(0u64, |a, &h| a.saturating_add(h));
        let (sliding_window, sliding_window_layers) = self.sliding_window(n_layer);
        Attention {
            sliding_window,
            sliding_window_layers,
            head_count,
            head_count_kv: kv_heads.iter().copied().max().unwrap_or(0),
            head_dim,
            value_dim,
            kv_elements_per_token: kv_heads_sum.saturating_mul(head_dim.saturating_add(value_dim)),
        }
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
