//! Writes a recipe as a GGUF file in one streaming pass: metadata, then each tensor's blocks
//! generated into a reusable buffer and written in big chunks, so writing runs at disk speed.
//!
//! Content per tensor under `cycle` (see the module docs of `synth`): random sign rows for
//! `token_embd`, output row j = the sum of the embedding rows of j's predecessors, zero
//! `attn_output`/`ffn_down`/`ffn_down_exps`, ones for norms, zero biases, random router and
//! everything else random. Under `random` every matrix is random and norms are ones.

use super::behavior::{Behavior, RECIPE_KEY};
use super::blocks::{encode_int_row, fill_random, Rng};
use super::plan::{PlannedTensor, TensorRole};
use super::presets::Arch;
use super::Recipe;
use crate::gguf::{GgmlType, TensorInfo, Value, Writer};
use anyhow::Context;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Size of the reusable generation buffer.
const CHUNK_BYTES: usize = 4 << 20;

/// Extra blocks in a random pool, so chunks start at one of this many offsets.
const POOL_SLACK_BLOCKS: usize = 4096;

/// What writing a model took.
#[derive(Debug, Clone)]
pub struct WriteReport {
    pub file_bytes: u64,
    /// Time to generate and write all bytes (page cache), without the final fsync.
    pub write_time: Duration,
    /// Time including `fsync` of the file.
    pub synced_time: Duration,
}

impl WriteReport {
    /// GB/s (10^9 bytes per second) including the fsync.
    pub fn synced_gbps(&self) -> f64 {
        self.file_bytes as f64 / self.synced_time.as_secs_f64().max(1e-9) / 1e9
    }

    /// GB/s into the page cache.
    pub fn write_gbps(&self) -> f64 {
        self.file_bytes as f64 / self.write_time.as_secs_f64().max(1e-9) / 1e9
    }
}

/// Writes `recipe` to `path`. With `sparse`, every tensor is zero and written as a hole:
/// a header-exact, size-exact file for `bench size` that uses no disk (not runnable).
pub fn write_model(recipe: &Recipe, path: &Path, sparse: bool) -> anyhow::Result<WriteReport> {
    let plan = recipe.plan();
    let writer = build_writer(recipe, &plan)?;
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let start = Instant::now();
    let mut filler = Filler::new(recipe, sparse);
    let total: u64 = plan
        .iter()
        .filter_map(|t| t.ty.tensor_bytes(t.n_elements()))
        .sum();
    let mut out = HoleWriter {
        file,
        sparse,
        zeros: if sparse {
            vec![0; CHUNK_BYTES]
        } else {
            Vec::new()
        },
        progress: (!sparse).then(|| WriteProgress::new(path, total)),
    };
    let bytes = writer
        .write_to(&mut out, |i, info, w| filler.fill(&plan[i], info, w))
        .with_context(|| format!("writing {}", path.display()))?;
    if let Some(p) = out.progress.take() {
        p.finish();
    }
    out.file
        .set_len(bytes)
        .with_context(|| format!("sizing {}", path.display()))?;
    let write_time = start.elapsed();
    out.file
        .sync_all()
        .with_context(|| format!("syncing {}", path.display()))?;
    Ok(WriteReport {
        file_bytes: bytes,
        write_time,
        synced_time: start.elapsed(),
    })
}

/// A file writer that, in sparse mode, skips over all-zero chunks instead of writing them.
struct HoleWriter {
    file: File,
    sparse: bool,
    /// A zero chunk to compare against (a memcmp, fast even in debug builds).
    zeros: Vec<u8>,
    /// Bytes written so far and the time left, for a full write.
    progress: Option<WriteProgress>,
}

/// Progress of a full write: a bar with bytes, rate and ETA on a terminal; without one a
/// plain line every 10 seconds, so a CI log shows the write is alive.
struct WriteProgress {
    bar: Option<indicatif::ProgressBar>,
    label: String,
    total: u64,
    done: u64,
    start: Instant,
    last_line: Instant,
}

impl WriteProgress {
    const PLAIN_EVERY: Duration = Duration::from_secs(10);

    fn new(path: &Path, total: u64) -> WriteProgress {
        use std::io::IsTerminal;
        let label = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            let style = indicatif::ProgressStyle::with_template(
                "writing {msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_message(label.trim_start_matches('.').to_owned());
            bar
        });
        let now = Instant::now();
        WriteProgress {
            bar,
            label,
            total,
            done: 0,
            start: now,
            last_line: now,
        }
    }

    fn add(&mut self, bytes: usize) {
        self.done += bytes as u64;
        match &self.bar {
            Some(bar) => bar.set_position(self.done.min(self.total)),
            None if self.last_line.elapsed() >= Self::PLAIN_EVERY => {
                self.last_line = Instant::now();
                let secs = self.start.elapsed().as_secs_f64();
                let rate = self.done as f64 / secs.max(1e-9);
                let left = self.total.saturating_sub(self.done) as f64 / rate.max(1.0);
                eprintln!(
                    "writing {}: {:.2} of {:.2} GB, {:.0} MB/s, about {left:.0} s left",
                    self.label,
                    self.done as f64 / 1e9,
                    self.total as f64 / 1e9,
                    rate / 1e6
                );
            }
            None => {}
        }
    }

    fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Write for HoleWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // SIGINT/SIGTERM while a guard is installed (`ensure_model`): stop the write, so the
        // caller removes the temporary file (gigabytes for a big stand-in).
        if let Some(sig) = crate::util::interrupt::pending() {
            return Err(io::Error::other(crate::util::interrupt::Interrupted(sig)));
        }
        // In sparse mode the filler writes only zeros, in CHUNK_BYTES pieces, while header
        // bytes arrive in BufWriter flushes of at most 1 MB: a full chunk needs no check.
        let zero = |b: &[u8]| {
            b.len() == CHUNK_BYTES || (b.len() <= self.zeros.len() && b == &self.zeros[..b.len()])
        };
        if self.sparse && buf.len() >= 4096 && zero(buf) {
            self.file.seek(SeekFrom::Current(buf.len() as i64))?;
            return Ok(buf.len());
        }
        let n = self.file.write(buf)?;
        if let Some(p) = &mut self.progress {
            p.add(n);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Metadata and tensor infos of the file.
fn build_writer(recipe: &Recipe, plan: &[PlannedTensor]) -> anyhow::Result<Writer> {
    let mut w = Writer::new();
    for (k, v) in model_metadata(recipe) {
        w.metadata(&k, v);
    }
    for (k, v) in recipe.vocab()?.metadata {
        w.metadata(&k, v);
    }
    for t in plan {
        w.tensor(&t.name, &t.dims, t.ty);
    }
    Ok(w)
}

/// `general.*`, the architecture's hyperparameters (keys of gguf-py's constants.py as the
/// HF converter writes them for Qwen2 / Qwen3MoE) and our own `tpsbench.*` provenance.
fn model_metadata(recipe: &Recipe) -> Vec<(String, Value)> {
    let s = &recipe.shape;
    let a = s.arch.name();
    let u = |v: u64| Value::U32(v as u32);
    let mut md = vec![
        ("general.architecture".into(), Value::String(a.into())),
        (
            "general.name".into(),
            Value::String(format!("tpsbench synthetic {}", recipe.label)),
        ),
        (
            "general.file_type".into(),
            Value::U32(recipe.quant.file_type()),
        ),
        ("general.quantization_version".into(), Value::U32(2)),
        (format!("{a}.context_length"), Value::U32(s.context_length)),
        (format!("{a}.embedding_length"), u(s.n_embd)),
        (format!("{a}.block_count"), Value::U32(s.n_layer)),
        (format!("{a}.feed_forward_length"), u(s.n_ff)),
        (format!("{a}.attention.head_count"), Value::U32(s.n_head)),
        (
            format!("{a}.attention.head_count_kv"),
            Value::U32(s.n_head_kv),
        ),
        (format!("{a}.rope.freq_base"), Value::F32(s.rope_freq_base)),
        (
            format!("{a}.attention.layer_norm_rms_epsilon"),
            Value::F32(s.rms_norm_eps),
        ),
    ];
    if s.arch == Arch::Qwen3Moe {
        md.extend([
            (format!("{a}.expert_count"), Value::U32(s.n_expert)),
            (
                format!("{a}.expert_used_count"),
                Value::U32(s.n_expert_used),
            ),
            (format!("{a}.expert_feed_forward_length"), u(s.n_ff_exp)),
            (format!("{a}.attention.key_length"), u(s.head_dim)),
            (format!("{a}.attention.value_length"), u(s.head_dim)),
        ]);
    }
    md.push((RECIPE_KEY.into(), Value::String(recipe.describe_json())));
    md
}

/// Generates tensor contents into one reusable buffer.
struct Filler {
    behavior: Behavior,
    sparse: bool,
    rng: Rng,
    embd_seed: u64,
    buf: Vec<u8>,
    /// CHUNK_BYTES zero bytes (calloc'ed once).
    zero_chunk: Vec<u8>,
    /// Pre-generated random blocks per type.
    pools: HashMap<GgmlType, Vec<u8>>,
    /// Predecessors of each token (CSR), for the output rows of `cycle`.
    pred_start: Vec<u32>,
    pred: Vec<u32>,
}

impl Filler {
    fn new(recipe: &Recipe, sparse: bool) -> Filler {
        let seed = recipe.behavior.seed();
        let n_vocab = recipe.shape.n_vocab as usize;
        let (pred_start, pred) = match (&recipe.behavior, sparse) {
            (Behavior::Cycle(c), false) => predecessors(c.table(), n_vocab),
            _ => (Vec::new(), Vec::new()),
        };
        Filler {
            behavior: recipe.behavior.clone(),
            sparse,
            rng: Rng::new(seed),
            embd_seed: seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xE3B0,
            buf: Vec::with_capacity(CHUNK_BYTES + (1 << 16)),
            pools: HashMap::new(),
            zero_chunk: vec![0; CHUNK_BYTES],
            pred_start,
            pred,
        }
    }

    fn fill(&mut self, t: &PlannedTensor, info: &TensorInfo, w: &mut dyn Write) -> io::Result<()> {
        let cycle = self.behavior.has_ground_truth() && !self.sparse;
        match t.role {
            _ if self.sparse => self.zeros(info.n_bytes, w),
            r if r.is_norm() => self.f32_constant(info.n_elements, 1.0, w),
            TensorRole::AttnQBias | TensorRole::AttnKBias | TensorRole::AttnVBias => {
                self.zeros(info.n_bytes, w)
            }
            r if cycle && r.writes_residual() => self.zeros(info.n_bytes, w),
            TensorRole::TokenEmbd if cycle => self.int_rows(t, w, |f, row, v| f.embd_row(row, v)),
            TensorRole::Output if cycle => self.int_rows(t, w, |f, row, v| f.output_row(row, v)),
            _ => self.random(t.ty, info.n_bytes, w),
        }
    }

    fn zeros(&mut self, n_bytes: u64, w: &mut dyn Write) -> io::Result<()> {
        write_repeated(&self.zero_chunk, n_bytes, w)
    }

    fn f32_constant(&mut self, n: u64, v: f32, w: &mut dyn Write) -> io::Result<()> {
        let bytes: Vec<u8> = (0..n).flat_map(|_| v.to_le_bytes()).collect();
        w.write_all(&bytes)
    }

    /// Random blocks, written straight from a per-type pool of pre-generated blocks at a
    /// random block offset: one memcpy-free write per 4 MB, so even a debug build writes
    /// at disk speed. The contents repeat every few MB, which no kernel can exploit.
    fn random(&mut self, ty: GgmlType, n_bytes: u64, w: &mut dyn Write) -> io::Result<()> {
        let block = ty.type_size() as usize;
        let chunk = (CHUNK_BYTES / block).max(1) * block;
        let rng = &mut self.rng;
        let pool = self.pools.entry(ty).or_insert_with(|| {
            let mut p = vec![0u8; chunk + POOL_SLACK_BLOCKS * block];
            fill_random(ty, &mut p, rng);
            p
        });
        let mut left = n_bytes as usize;
        while left > 0 {
            let n = left.min(chunk);
            let off = self.rng.below(POOL_SLACK_BLOCKS as u64) as usize * block;
            w.write_all(&pool[off..off + n])?;
            left -= n;
        }
        Ok(())
    }

    /// Writes a `[n_embd, n_vocab]` matrix row by row, each row a small-integer vector.
    fn int_rows(
        &mut self,
        t: &PlannedTensor,
        w: &mut dyn Write,
        row_fn: impl Fn(&Filler, usize, &mut [i8]),
    ) -> io::Result<()> {
        let (n_embd, n_rows) = (t.dims[0] as usize, t.dims[1] as usize);
        let mut values = vec![0i8; n_embd];
        let mut out = std::mem::take(&mut self.buf);
        out.clear();
        for row in 0..n_rows {
            row_fn(self, row, &mut values);
            if !encode_int_row(t.ty, &values, &mut out) {
                return Err(io::Error::other(format!(
                    "no exact integer encoding for {} in {}",
                    t.name, t.ty
                )));
            }
            if out.len() >= CHUNK_BYTES {
                w.write_all(&out)?;
                out.clear();
            }
        }
        w.write_all(&out)?;
        self.buf = out;
        Ok(())
    }

    /// Embedding row of token `row`: a seeded random vector of ±1 (8 signs per table
    /// lookup: this runs for every element of token_embd and output).
    fn embd_row(&self, row: usize, v: &mut [i8]) {
        let mut rng = Rng::new(self.embd_seed ^ (row as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        for chunk in v.chunks_mut(64) {
            let bits = rng.next_u64().to_le_bytes();
            for (c8, byte) in chunk.chunks_mut(8).zip(bits) {
                c8.copy_from_slice(&SIGNS[byte as usize][..c8.len()]);
            }
        }
    }

    /// Output row `row`: the sum of the embedding rows of the tokens whose successor it is.
    fn output_row(&self, row: usize, v: &mut [i8]) {
        let preds = &self.pred[self.pred_start[row] as usize..self.pred_start[row + 1] as usize];
        match preds {
            [] => v.fill(0),
            [p] => self.embd_row(*p as usize, v),
            [first, rest @ ..] => {
                self.embd_row(*first as usize, v);
                let mut e = vec![0i8; v.len()];
                for &p in rest {
                    self.embd_row(p as usize, &mut e);
                    v.iter_mut()
                        .zip(&e)
                        .for_each(|(x, y)| *x = x.saturating_add(*y).clamp(-7, 7));
                }
            }
        }
    }
}

/// `SIGNS[b][i]` = +1 if bit i of b is set, else -1.
static SIGNS: [[i8; 8]; 256] = {
    let mut t = [[0i8; 8]; 256];
    let mut b = 0;
    while b < 256 {
        let mut i = 0;
        while i < 8 {
            t[b][i] = if (b >> i) & 1 == 1 { 1 } else { -1 };
            i += 1;
        }
        b += 1;
    }
    t
};

/// Writes `n_bytes` bytes taken from `buf` over and over.
fn write_repeated(buf: &[u8], n_bytes: u64, w: &mut dyn Write) -> io::Result<()> {
    let mut left = n_bytes;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        w.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Inverts a successor table into CSR form: predecessors of j are
/// `pred[start[j] .. start[j + 1]]`.
fn predecessors(succ: &[u32], n_vocab: usize) -> (Vec<u32>, Vec<u32>) {
    let mut count = vec![0u32; n_vocab + 1];
    for &s in succ {
        count[s as usize + 1] += 1;
    }
    for j in 0..n_vocab {
        count[j + 1] += count[j];
    }
    let mut next = count.clone();
    let mut pred = vec![0u32; succ.len()];
    for (t, &s) in succ.iter().enumerate() {
        pred[next[s as usize] as usize] = t as u32;
        next[s as usize] += 1;
    }
    (count, pred)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predecessors_invert_the_successor() {
        let succ = [2u32, 0, 1, 1];
        let (start, pred) = predecessors(&succ, 4);
        let of = |j: usize| pred[start[j] as usize..start[j + 1] as usize].to_vec();
        assert_eq!(of(0), vec![1]);
        assert_eq!(of(1), vec![2, 3]);
        assert_eq!(of(2), vec![0]);
        assert!(of(3).is_empty());
    }
}
