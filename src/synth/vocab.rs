//! The tokenizer metadata of a synthetic model: a copy of any GGUF's `tokenizer.*` keys
//! (`--vocab FILE.gguf`), or a built-in byte-level BPE vocabulary, either way with exactly
//! `n_vocab` tokens (llama.cpp requires the token list to match `token_embd`'s rows).
//!
//! What llama.cpp's loader needs for a `gpt2` (byte-level BPE) vocabulary
//! (`llama_vocab::impl::load` in src/llama-vocab.cpp): `tokenizer.ggml.model`, `.tokens`,
//! `.merges` (may be empty), and `.token_type` for the attributes; `.pre` picks the
//! pre-tokenizer regex. Padding follows the HF converter: `[PAD{i}]` tokens of type UNUSED.

use crate::gguf::{GgufFile, Value, ValueType};
use anyhow::Context;
use std::path::Path;

/// llama.cpp token types (`enum llama_token_type`).
pub const TOKEN_NORMAL: i32 = 1;
pub const TOKEN_CONTROL: i32 = 3;
pub const TOKEN_UNUSED: i32 = 5;
pub const TOKEN_BYTE: i32 = 6;

/// Tokenizer metadata ready to write, and the token ids that may take part in cycles.
#[derive(Debug, Clone)]
pub struct Vocab {
    pub metadata: Vec<(String, Value)>,
    /// Longest run of ordinary tokens: `domain.0 .. domain.1`.
    pub domain: (u32, u32),
}

/// GPT-2's `bytes_to_unicode`: printable bytes stand for themselves, the rest are shifted
/// to U+0100.. so that every byte is one visible character.
fn byte_char(b: u8) -> char {
    let printable = (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
    if printable {
        return char::from(b);
    }
    let rank = (0..b)
        .filter(|&x| !((b'!'..=b'~').contains(&x) || (0xA1..=0xAC).contains(&x) || x >= 0xAE))
        .count() as u32;
    char::from_u32(256 + rank).unwrap_or('?')
}

/// Qwen2's ordinary tokens end here (151643 = `<|endoftext|>`; specials and padding
/// follow). The built-in vocabulary's cycles stay below it, so the 151936-token and the
/// 152064-token presets (a draft and its target) get the same successor function.
pub const QWEN_ORDINARY_TOKENS: u32 = 151_643;

/// The built-in vocabulary: 256 byte tokens, `<|endoftext|>` (BOS/EOS) at 256, then
/// `<|tok{i}|>` fillers (ordinary tokens). Token i's text does not depend on `n_vocab`, so
/// models of different vocab sizes pass llama.cpp's draft/target compatibility check
/// (`common_speculative_are_compatible`: same text for every id both have).
pub fn builtin(n_vocab: u32) -> Vocab {
    let n = n_vocab.max(258) as usize;
    let mut tokens: Vec<String> = (0..=255u8).map(|b| byte_char(b).to_string()).collect();
    tokens.push("<|endoftext|>".into());
    tokens.extend((257..n).map(|i| format!("<|tok{i}|>")));
    let mut types = vec![TOKEN_NORMAL; n];
    types[256] = TOKEN_CONTROL;
    let metadata = vec![
        kv("tokenizer.ggml.model", Value::String("gpt2".into())),
        kv("tokenizer.ggml.pre", Value::String("qwen2".into())),
        kv("tokenizer.ggml.tokens", strings(tokens)),
        kv("tokenizer.ggml.token_type", i32s(types)),
        kv("tokenizer.ggml.merges", strings(Vec::new())),
        kv("tokenizer.ggml.bos_token_id", Value::U32(256)),
        kv("tokenizer.ggml.eos_token_id", Value::U32(256)),
        kv("tokenizer.ggml.add_bos_token", Value::Bool(false)),
    ];
    Vocab {
        metadata,
        domain: (257, builtin_domain_end(n as u32)),
    }
}

/// End of the built-in vocabulary's cycle domain: below Qwen2's specials and rounded down
/// to a multiple of 256, so that a draft and a target whose vocab sizes differ by the
/// padding (e.g. 8192 and 8320, or Qwen's 151936 and 152064) share one successor function.
fn builtin_domain_end(n_vocab: u32) -> u32 {
    let end = n_vocab.min(QWEN_ORDINARY_TOKENS) / 256 * 256;
    end.max(258)
}

fn kv(k: &str, v: Value) -> (String, Value) {
    (k.to_string(), v)
}

fn strings(v: Vec<String>) -> Value {
    Value::Array(
        ValueType::String,
        v.into_iter().map(Value::String).collect(),
    )
}

fn i32s(v: Vec<i32>) -> Value {
    Value::Array(ValueType::I32, v.into_iter().map(Value::I32).collect())
}

/// Copies the `tokenizer.*` keys of `path`, padded or truncated to `n_vocab` tokens.
pub fn from_file(path: &Path, n_vocab: u32) -> anyhow::Result<Vocab> {
    let file = GgufFile::open(path).context("reading the vocabulary file")?;
    let n = n_vocab as usize;
    let mut metadata: Vec<(String, Value)> = Vec::new();
    for (key, value) in file
        .metadata
        .iter()
        .filter(|(k, _)| k.starts_with("tokenizer."))
    {
        if let Some(v) = resize_key(key, value, n) {
            metadata.push((key.clone(), v));
        }
    }
    let tokens = metadata.iter().find(|(k, _)| k == "tokenizer.ggml.tokens");
    anyhow::ensure!(
        tokens.is_some(),
        "{} has no tokenizer.ggml.tokens",
        path.display()
    );
    if !metadata
        .iter()
        .any(|(k, _)| k == "tokenizer.ggml.token_type")
    {
        metadata.push(kv("tokenizer.ggml.token_type", i32s(vec![TOKEN_NORMAL; n])));
    }
    let domain = ordinary_run(&metadata);
    anyhow::ensure!(
        domain.1 > domain.0,
        "{} has no ordinary tokens",
        path.display()
    );
    Ok(Vocab { metadata, domain })
}

/// The value of one tokenizer key for a vocabulary of `n` tokens; None drops the key
/// (a special token id that truncation removed).
fn resize_key(key: &str, value: &Value, n: usize) -> Option<Value> {
    let per_token = [
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.token_type",
        "tokenizer.ggml.scores",
    ];
    if per_token.contains(&key) {
        let Value::Array(t, items) = value else {
            return Some(value.clone());
        };
        let mut items = items.clone();
        let start = items.len();
        items.truncate(n);
        items.extend((start..n).map(|i| pad_item(key, i)));
        return Some(Value::Array(*t, items));
    }
    if key.ends_with("_token_id") && value.as_u64().is_some_and(|id| id >= n as u64) {
        return None;
    }
    Some(value.clone())
}

/// A padding entry, as the HF converter writes them.
fn pad_item(key: &str, i: usize) -> Value {
    match key {
        "tokenizer.ggml.tokens" => Value::String(format!("[PAD{i}]")),
        "tokenizer.ggml.token_type" => Value::I32(TOKEN_UNUSED),
        _ => Value::F32(0.0),
    }
}

/// The longest run of normal or byte tokens that are no special token id.
fn ordinary_run(metadata: &[(String, Value)]) -> (u32, u32) {
    let types: Vec<i64> = metadata
        .iter()
        .find(|(k, _)| k == "tokenizer.ggml.token_type")
        .and_then(|(_, v)| v.as_array())
        .map(|a| a.iter().map(|x| x.as_f64().unwrap_or(0.0) as i64).collect())
        .unwrap_or_default();
    let special: Vec<u64> = metadata
        .iter()
        .filter(|(k, _)| k.ends_with("_token_id"))
        .filter_map(|(_, v)| v.as_u64())
        .collect();
    let ok = |i: usize| {
        matches!(types[i] as i32, TOKEN_NORMAL | TOKEN_BYTE) && !special.contains(&(i as u64))
    };
    let (mut best, mut start) = ((0, 0), 0);
    for i in 0..=types.len() {
        if i == types.len() || !ok(i) {
            if i - start > best.1 - best.0 {
                best = (start, i);
            }
            start = i + 1;
        }
    }
    (best.0 as u32, best.1 as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_chars_are_gpt2s_mapping() {
        assert_eq!(byte_char(b'A'), 'A');
        assert_eq!(byte_char(b' '), '\u{120}'); // GPT-2's "Ġ"
        assert_eq!(byte_char(b'\n'), '\u{10A}'); // "Ċ"
        let all: std::collections::HashSet<char> = (0..=255u8).map(byte_char).collect();
        assert_eq!(all.len(), 256);
    }

    #[test]
    fn builtin_vocab_has_exactly_n_tokens_and_keeps_eos_out_of_cycles() {
        let v = builtin(4096);
        let tokens = v
            .metadata
            .iter()
            .find(|(k, _)| k == "tokenizer.ggml.tokens")
            .unwrap();
        assert_eq!(tokens.1.as_array().unwrap().len(), 4096);
        assert_eq!(v.domain, (257, 4096));
        assert_eq!(builtin(152_064).domain, builtin(151_936).domain);
        assert_eq!(builtin(8320).domain, builtin(8192).domain);
    }

    #[test]
    fn ordinary_run_skips_specials() {
        let md = vec![
            kv(
                "tokenizer.ggml.token_type",
                i32s(vec![3, 1, 1, 1, 1, 3, 1, 5]),
            ),
            kv("tokenizer.ggml.eos_token_id", Value::U32(2)),
        ];
        assert_eq!(ordinary_run(&md), (3, 5));
    }
}
