//! Property test: a valid GGUF file truncated or bit-flipped anywhere must end in a clean
//! parse or a `GgufError` that names the file and an offset inside it; never a panic, and
//! anything that does parse must be self-consistent.

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use tpsbench::gguf::{GgmlType, GgufFile, Model, TensorInfo, Value, ValueType, Writer};

const PATH: &str = "/hostile/model.gguf";

fn zeros(_: usize, info: &TensorInfo, w: &mut dyn Write) -> io::Result<()> {
    io::copy(&mut io::repeat(0).take(info.n_bytes), w).map(|_| ())
}

/// A small but complete model: every value type, nested arrays, several tensor types.
fn valid_file() -> &'static [u8] {
    static FILE: OnceLock<Vec<u8>> = OnceLock::new();
    FILE.get_or_init(|| {
        let mut w = Writer::new();
        w.metadata("general.architecture", Value::String("qwen3moe".into()));
        w.metadata("qwen3moe.block_count", Value::U32(1));
        w.metadata("qwen3moe.embedding_length", Value::U64(256));
        w.metadata("qwen3moe.attention.head_count", Value::I32(4));
        w.metadata("qwen3moe.expert_count", Value::U16(4));
        w.metadata("qwen3moe.expert_used_count", Value::U8(2));
        w.metadata("f", Value::F64(0.5));
        w.metadata("b", Value::Bool(false));
        let tokens = ["<s>", "a", "bc"].map(|s| Value::String(s.into())).to_vec();
        w.metadata(
            "tokenizer.ggml.tokens",
            Value::Array(ValueType::String, tokens),
        );
        let scores = vec![Value::F32(0.0), Value::F32(-1.0), Value::F32(2.0)];
        w.metadata(
            "tokenizer.ggml.scores",
            Value::Array(ValueType::F32, scores),
        );
        let inner = Value::Array(ValueType::I16, vec![Value::I16(-1)]);
        w.metadata("nested", Value::Array(ValueType::Array, vec![inner]));
        w.tensor("token_embd.weight", &[256, 3], GgmlType::Q4_K);
        w.tensor("blk.0.ffn_up_exps.weight", &[256, 2, 4], GgmlType::Q8_0);
        w.tensor("blk.0.attn_norm.weight", &[256], GgmlType::F32);
        w.tensor("output.weight", &[256, 3], GgmlType::IQ4_XS);
        let mut buf = Vec::new();
        w.write_to(&mut buf, zeros).unwrap();
        buf
    })
}

fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    match GgufFile::from_bytes(Path::new(PATH), bytes) {
        Ok(f) => {
            prop_assert!(f.data_offset % f.alignment == 0);
            for t in &f.tensors {
                prop_assert!(f.data_offset + t.offset + t.n_bytes <= bytes.len() as u64);
                prop_assert_eq!(t.ggml_type.tensor_bytes(t.n_elements), Some(t.n_bytes));
            }
            let facts = Model::from_file(f).facts();
            prop_assert!(facts.active_bytes_per_token <= facts.tensor_bytes);
            let _ = facts.with_experts_used(3).kv_bytes_per_token(GgmlType::F16);
        }
        Err(e) => {
            let msg = e.to_string();
            prop_assert!(msg.starts_with(&format!("{PATH}: at byte ")), "{}", msg);
            prop_assert!(e.offset() <= bytes.len() as u64, "{}", msg);
        }
    }
    Ok(())
}

#[test]
fn the_valid_file_parses() {
    let f = GgufFile::from_bytes(Path::new(PATH), valid_file()).unwrap();
    assert_eq!(f.tensors.len(), 4);
}

#[test]
fn every_truncation_is_an_error_or_a_parse() {
    let file = valid_file();
    for len in 0..file.len() {
        check(&file[..len]).unwrap();
    }
}

#[test]
fn every_single_bit_flip_in_the_header_is_handled() {
    let file = valid_file();
    let header = GgufFile::from_bytes(Path::new(PATH), file)
        .unwrap()
        .data_offset as usize;
    let mut bytes = file.to_vec();
    for i in 0..header {
        for bit in 0..8 {
            bytes[i] ^= 1 << bit;
            check(&bytes).unwrap();
            bytes[i] ^= 1 << bit;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn flips_and_truncations_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = valid_file().to_vec();
        for (at, mask) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= mask;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        check(&bytes)?;
    }

    #[test]
    fn random_bytes_after_a_valid_preamble_never_panic(
        tail in prop::collection::vec(any::<u8>(), 0..512),
        version in 2u32..=3,
    ) {
        let mut bytes = b"GGUF".to_vec();
        bytes.extend(version.to_le_bytes());
        bytes.extend(tail);
        check(&bytes)?;
    }
}
