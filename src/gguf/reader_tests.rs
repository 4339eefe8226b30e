//! Unit tests of the reader: writer round trips and every hostile case with its offset.

use std::io::Write;
use std::path::Path;

use super::*;
use crate::gguf::Writer;

const PATH: &str = "/models/test.gguf";

fn parse(bytes: &[u8]) -> Result<GgufFile, GgufError> {
    GgufFile::from_bytes(Path::new(PATH), bytes)
}

fn zeros(_: usize, info: &TensorInfo, w: &mut dyn Write) -> io::Result<()> {
    io::copy(&mut io::repeat(0).take(info.n_bytes), w).map(|_| ())
}

fn write(w: &Writer) -> Vec<u8> {
    let mut buf = Vec::new();
    w.write_to(&mut buf, zeros).unwrap();
    buf
}

/// Asserts that `bytes` fail at `offset` with a message containing `needle`.
fn fails_at(bytes: &[u8], offset: u64, needle: &str) -> GgufError {
    let err = parse(bytes).expect_err("hostile input must fail");
    let msg = err.to_string();
    assert!(msg.starts_with(PATH), "{msg}");
    assert!(msg.contains(&format!("at byte {offset}:")), "{msg}");
    assert!(msg.contains(needle), "{msg}");
    assert_eq!(err.offset(), offset);
    err
}

fn every_value() -> Vec<(String, Value)> {
    let nested = Value::Array(
        ValueType::Array,
        vec![
            Value::Array(ValueType::U8, vec![Value::U8(1), Value::U8(2)]),
            Value::Array(ValueType::String, vec![Value::String("x".into())]),
            Value::Array(ValueType::I64, vec![]),
        ],
    );
    let strings = ["a", "", "ünïcödé", "Ġthe"]
        .map(|s| Value::String(s.into()))
        .to_vec();
    vec![
        ("u8".into(), Value::U8(250)),
        ("i8".into(), Value::I8(-5)),
        ("u16".into(), Value::U16(65000)),
        ("i16".into(), Value::I16(-30000)),
        ("u32".into(), Value::U32(4_000_000_000)),
        ("i32".into(), Value::I32(-2_000_000_000)),
        ("u64".into(), Value::U64(u64::MAX)),
        ("i64".into(), Value::I64(i64::MIN)),
        ("f32".into(), Value::F32(1.5e-7)),
        ("f64".into(), Value::F64(-2.25e300)),
        ("bool".into(), Value::Bool(true)),
        ("string".into(), Value::String("hello\0world".into())),
        ("strings".into(), Value::Array(ValueType::String, strings)),
        (
            "floats".into(),
            Value::Array(ValueType::F32, vec![Value::F32(0.5)]),
        ),
        (
            "bools".into(),
            Value::Array(ValueType::Bool, vec![Value::Bool(false)]),
        ),
        ("empty".into(), Value::Array(ValueType::U32, vec![])),
        ("nested".into(), nested),
    ]
}

fn sample_writer() -> Writer {
    let mut w = Writer::new();
    for (k, v) in every_value() {
        w.metadata(&k, v);
    }
    w.tensor("token_embd.weight", &[256, 10], GgmlType::Q4_K);
    w.tensor("blk.0.attn_norm.weight", &[7], GgmlType::F32);
    w.tensor("output.weight", &[32, 10, 2, 1], GgmlType::Q8_0);
    w.tensor("scalar", &[], GgmlType::F16);
    w
}

#[test]
fn round_trip_every_value_type_and_tensor() {
    let w = sample_writer();
    let bytes = write(&w);
    let f = parse(&bytes).unwrap();
    assert_eq!(f.version, 3);
    assert_eq!(f.metadata, every_value());
    assert_eq!(f.tensors, w.tensor_infos().unwrap());
    assert_eq!(f.alignment, 32);
    assert_eq!(f.data_offset % 32, 0);
    assert_eq!(f.file_bytes, bytes.len() as u64);
    assert_eq!(f.get("u16"), Some(&Value::U16(65000)));
    assert_eq!(f.n_params(), 2560 + 7 + 640 + 1);
    assert_eq!(f.tensor_bytes(), 10 * 144 + 28 + 20 * 34 + 2);
    let last = f.tensors.last().unwrap();
    assert!(f.data_offset + last.offset + last.n_bytes <= f.file_bytes);
}

#[test]
fn round_trip_with_custom_alignment_through_a_real_file() {
    let mut w = sample_writer();
    w.metadata(ALIGNMENT_KEY, Value::U32(128));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    let n = w
        .write_to(std::fs::File::create(&path).unwrap(), zeros)
        .unwrap();
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(
        (f.alignment, f.data_offset % 128, f.file_bytes),
        (128, 0, n)
    );
    assert!(f.tensors.iter().all(|t| t.offset % 128 == 0));
}

#[test]
fn version_2_is_read_like_version_3() {
    let mut bytes = write(&sample_writer());
    bytes[4] = 2;
    let f = parse(&bytes).unwrap();
    assert_eq!(f.version, 2);
    assert_eq!(f.metadata, every_value());
}

#[test]
fn missing_file_names_the_path() {
    let err = GgufFile::open(Path::new("/nonexistent/x.gguf")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/x.gguf: I/O error"),
        "{err}"
    );
}

/// A hand-built file, so tests can place hostile fields exactly.
#[derive(Default)]
struct Raw(Vec<u8>);

impl Raw {
    fn header(n_tensors: u64, n_kv: u64) -> Raw {
        let mut r = Raw::default();
        r.0.extend_from_slice(b"GGUF");
        r.u32(3).u64(n_tensors).u64(n_kv);
        r
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    fn pos(&self) -> u64 {
        self.0.len() as u64
    }
    fn kv_u32(&mut self, key: &str, v: u32) -> &mut Self {
        self.str(key).u32(ValueType::U32.id()).u32(v)
    }
    fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> &mut Self {
        self.str(name).u32(dims.len() as u32);
        for d in dims {
            self.u64(*d);
        }
        self.u32(ty).u64(offset)
    }
    /// Pads to 32 and appends `data_bytes` zero bytes of tensor data.
    fn data(&mut self, data_bytes: usize) -> &mut Self {
        while !self.0.len().is_multiple_of(32) {
            self.0.push(0);
        }
        self.0.resize(self.0.len() + data_bytes, 0);
        self
    }
}

#[test]
fn bad_magic() {
    fails_at(b"GGML\x03\0\0\0", 0, "bad magic \"GGML\"");
    fails_at(b"", 0, "bad magic");
    fails_at(b"GG", 0, "bad magic");
}

#[test]
fn unsupported_versions() {
    let mut raw = Raw::header(0, 0);
    raw.0[4] = 1;
    fails_at(&raw.0, 4, "version 1 (GGUF v1 is obsolete");
    raw.0[4] = 4;
    fails_at(&raw.0, 4, "unsupported GGUF version 4");
    raw.0[4..8].copy_from_slice(&3u32.to_be_bytes());
    fails_at(&raw.0, 4, "big-endian");
}

#[test]
fn truncated_header_counts() {
    let raw = Raw::header(0, 0);
    fails_at(&raw.0[..6], 4, "truncated: header version needs 4 bytes");
    fails_at(
        &raw.0[..12],
        8,
        "header tensor count needs 8 bytes but the file has only 4 left",
    );
    fails_at(&raw.0[..20], 16, "metadata entry count");
}

#[test]
fn absurd_counts() {
    let raw = Raw::header(0, u64::MAX);
    fails_at(
        &raw.0,
        16,
        "absurd metadata entry count 18446744073709551615",
    );
    let mut raw = Raw::header(1 << 40, 1);
    raw.kv_u32("a", 1);
    fails_at(&raw.0, 8, "absurd tensor count 1099511627776");
}

#[test]
fn string_length_beyond_the_file() {
    let mut raw = Raw::header(0, 1);
    raw.u64(1 << 50).u32(4).u64(0);
    fails_at(
        &raw.0,
        24,
        "key of metadata entry 0: string length 1125899906842624 exceeds the 12 bytes left",
    );
    let mut raw = Raw::header(0, 1);
    raw.str("general.name").u32(ValueType::String.id());
    let at = raw.pos();
    raw.u64(100).u64(0);
    fails_at(
        &raw.0,
        at,
        "value of metadata key \"general.name\": string length 100",
    );
}

#[test]
fn array_length_beyond_the_file() {
    let mut raw = Raw::header(0, 1);
    raw.str("tokenizer.ggml.tokens").u32(ValueType::Array.id());
    raw.u32(ValueType::String.id());
    let at = raw.pos();
    raw.u64(u64::MAX).u64(0);
    fails_at(&raw.0, at, "array of 18446744073709551615 string values");
}

#[test]
fn unknown_value_types() {
    let mut raw = Raw::header(0, 1);
    raw.str("k");
    let at = raw.pos();
    raw.u32(13).u64(0);
    fails_at(&raw.0, at, "\"k\": unknown metadata value type id 13");
    let mut raw = Raw::header(0, 1);
    raw.str("k").u32(ValueType::Array.id());
    let at = raw.pos();
    raw.u32(99).u64(0);
    fails_at(&raw.0, at, "unknown metadata value type id 99");
}

#[test]
fn arrays_nested_too_deep() {
    let mut raw = Raw::header(0, 1);
    raw.str("deep").u32(ValueType::Array.id());
    let mut at = 0;
    for level in 0..=MAX_ARRAY_DEPTH {
        if level == MAX_ARRAY_DEPTH {
            at = raw.pos();
        }
        raw.u32(ValueType::Array.id()).u64(1);
    }
    raw.0.resize(raw.0.len() + 64, 0);
    fails_at(&raw.0, at, "nested deeper than 8 levels");
}

#[test]
fn duplicate_keys() {
    let mut raw = Raw::header(0, 2);
    raw.kv_u32("a", 1);
    let at = raw.pos();
    raw.kv_u32("a", 2);
    fails_at(&raw.0, at, "duplicate metadata key \"a\"");
}

#[test]
fn bad_alignment() {
    let mut raw = Raw::header(0, 1);
    raw.str(ALIGNMENT_KEY);
    let at = raw.pos();
    raw.u32(ValueType::U32.id()).u32(24);
    fails_at(&raw.0, at, "alignment 24 is not a power of two");
    let mut raw = Raw::header(0, 1);
    raw.str(ALIGNMENT_KEY);
    let at = raw.pos();
    raw.u32(ValueType::U64.id()).u64(32);
    fails_at(&raw.0, at, "must be a uint32, found a uint64");
}

#[test]
fn too_many_dims() {
    let mut raw = Raw::header(1, 0);
    raw.str("t");
    let at = raw.pos();
    raw.u32(5);
    raw.0.resize(raw.0.len() + 64, 0);
    fails_at(&raw.0, at, "tensor \"t\": 5 dimensions");
}

#[test]
fn unknown_tensor_type_names_the_id() {
    for id in [4u32, 31, 43, 0xdead] {
        let mut raw = Raw::header(1, 0);
        raw.str("blk.0.ffn_up.weight").u32(1).u64(32);
        let at = raw.pos();
        raw.u32(id).u64(0).data(64);
        fails_at(
            &raw.0,
            at,
            &format!("\"blk.0.ffn_up.weight\": unknown ggml type id {id}"),
        );
    }
}

#[test]
fn partial_blocks_and_overflowing_shapes() {
    let mut raw = Raw::header(1, 0);
    raw.str("t");
    let at = raw.pos();
    raw.u32(1)
        .u64(100)
        .u32(GgmlType::Q4_K.id())
        .u64(0)
        .data(256);
    fails_at(
        &raw.0,
        at,
        "row of 100 elements is not a multiple of the block size 256",
    );
    let mut raw = Raw::header(1, 0);
    raw.str("t");
    let at = raw.pos();
    raw.u32(2).u64(1 << 40).u64(1 << 40).u32(0).u64(0).data(64);
    fails_at(&raw.0, at, "overflows");
}

#[test]
fn tensor_data_beyond_the_end() {
    let mut raw = Raw::header(1, 0);
    raw.str("t").u32(1).u64(16).u32(0);
    let at = raw.pos();
    raw.u64(0).data(63);
    fails_at(
        &raw.0,
        at,
        "\"t\": data at file bytes 64..128 lies beyond the end of the file (127 bytes)",
    );
    let mut raw = Raw::header(1, 0);
    raw.tensor("t", &[1], 0, u64::MAX - 31);
    fails_at(&raw.0, raw.pos() - 8, "beyond the end");
}

#[test]
fn misaligned_offset() {
    let mut raw = Raw::header(1, 0);
    raw.str("t").u32(1).u64(4).u32(0);
    let at = raw.pos();
    raw.u64(8).data(64);
    fails_at(
        &raw.0,
        at,
        "data offset 8 is not a multiple of the alignment 32",
    );
}

#[test]
fn overlapping_tensors() {
    let mut raw = Raw::header(2, 0);
    raw.tensor("a", &[16], 0, 0);
    raw.str("b").u32(1).u64(8).u32(0);
    let at = raw.pos();
    raw.u64(64).data(96);
    assert!(parse(&raw.0).is_ok());
    raw.0[at as usize..at as usize + 8].copy_from_slice(&32u64.to_le_bytes());
    fails_at(
        &raw.0,
        at,
        "tensor \"b\" (data offset 32) overlaps tensor \"a\" (data offset 0, ends at 64)",
    );
}

#[test]
fn duplicate_tensor_names() {
    let mut raw = Raw::header(2, 0);
    raw.tensor("a", &[8], 0, 0);
    let at = raw.pos();
    raw.tensor("a", &[8], 0, 32).data(64);
    fails_at(&raw.0, at, "duplicate tensor name \"a\"");
}

#[test]
fn every_truncation_fails_with_an_offset_inside_the_file() {
    let bytes = write(&sample_writer());
    let f = parse(&bytes).unwrap();
    let last = f.tensors.last().unwrap();
    let data_end = f.data_offset + last.offset + last.n_bytes;
    // The padding after the last tensor may be cut: the data is all there.
    assert!(parse(&bytes[..data_end as usize]).is_ok());
    for len in 0..data_end as usize {
        let err = parse(&bytes[..len]).expect_err("truncated file must fail");
        assert!(err.offset() <= len as u64, "len {len}: {err}");
        assert!(err.to_string().starts_with(PATH));
    }
}

#[test]
fn invalid_utf8_is_kept_readable_like_ggml_does() {
    let mut raw = Raw::header(0, 1);
    raw.str("k").u32(ValueType::String.id()).u64(2);
    raw.0.extend_from_slice(&[0xff, b'a']);
    let f = parse(&raw.0).unwrap();
    assert_eq!(f.get("k"), Some(&Value::String("\u{fffd}a".into())));
}

#[test]
fn too_many_array_items_in_all() {
    // Two u8 arrays whose counts fit the file only if it were huge: the first passes the
    // per-array length check against a long enough file, the second exceeds the total.
    let half = MAX_ARRAY_ITEMS / 2 + 1;
    let mut raw = Raw::header(0, 2);
    raw.str("a")
        .u32(ValueType::Array.id())
        .u32(ValueType::U8.id())
        .u64(half);
    raw.0.resize(raw.0.len() + half as usize, 0);
    raw.str("b")
        .u32(ValueType::Array.id())
        .u32(ValueType::U8.id());
    let at = raw.pos();
    raw.u64(half);
    raw.0.resize(raw.0.len() + half as usize, 0);
    let err = fails_at(
        &raw.0,
        at,
        "\"b\": array of 8388609 items would take the metadata arrays past 16777216",
    );
    assert!(matches!(
        err.problem(),
        Some(Problem::TooManyArrayItems { .. })
    ));
}
