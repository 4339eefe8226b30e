//! The GGUF header parser. It reads only the header region (metadata and tensor infos)
//! through a buffered reader and never touches the weights, so a 300 GB model is parsed in
//! milliseconds. Hostile input never panics and never makes it allocate more than the bytes
//! left in the file could hold: every length and count is checked against them first.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use super::error::What;
use super::tensor::{align_up, shape_size};
use super::{
    GgmlType, GgufError, Problem, TensorInfo, Value, ValueType, ALIGNMENT_KEY, DEFAULT_ALIGNMENT,
    GGUF_MAGIC,
};

/// Deepest nesting of arrays accepted (real files nest at most two levels).
pub const MAX_ARRAY_DEPTH: u32 = 8;
/// Longest string accepted, as in ggml's `GGUF_MAX_STRING_LENGTH`.
pub const MAX_STRING_BYTES: u64 = 1 << 30;
/// Most dimensions of a tensor (`GGML_MAX_DIMS`).
pub const MAX_DIMS: u32 = 4;
/// Smallest encoded metadata entry: 8-byte key length, 4-byte type, 1-byte value.
const MIN_KV_BYTES: u64 = 13;
/// Smallest encoded tensor info: 8-byte name length, 4-byte n_dims, 4-byte type, 8-byte offset.
const MIN_TENSOR_INFO_BYTES: u64 = 24;
/// Most metadata array items accepted in one file, all arrays together. Each item costs a
/// 32-byte `Value` however small its encoding (a u8 is one byte in the file), so this bounds
/// the memory a hostile file can make us use; real files hold about a million (a 256k-token
/// vocabulary with scores, types and merges).
pub const MAX_ARRAY_ITEMS: u64 = 1 << 24;
/// Elements preallocated for an array before its items have been seen.
const MAX_PREALLOC_ITEMS: u64 = 1 << 16;

/// The parsed header of one GGUF file.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufFile {
    /// The file this header was read from.
    pub path: PathBuf,
    /// GGUF format version (2 or 3).
    pub version: u32,
    /// Metadata entries in file order.
    pub metadata: Vec<(String, Value)>,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
    /// Data alignment in bytes (`general.alignment`, default 32).
    pub alignment: u64,
    /// Byte offset of the data section from the start of the file.
    pub data_offset: u64,
    /// Size of the file in bytes.
    pub file_bytes: u64,
}

impl GgufFile {
    /// Opens and parses the header of the GGUF file at `path`.
    pub fn open(path: &Path) -> Result<GgufFile, GgufError> {
        let io_err = |error| GgufError::Io {
            path: path.to_path_buf(),
            offset: 0,
            error,
        };
        let file = File::open(path).map_err(io_err)?;
        let file_bytes = file.metadata().map_err(io_err)?.len();
        Self::from_reader(path, BufReader::with_capacity(256 << 10, file), file_bytes)
    }

    /// Parses a header from `reader`, a stream of a file of `file_bytes` bytes; `path` only
    /// names the file in errors.
    pub fn from_reader<R: Read>(
        path: &Path,
        reader: R,
        file_bytes: u64,
    ) -> Result<GgufFile, GgufError> {
        Parser {
            path,
            r: reader,
            pos: 0,
            len: file_bytes,
            items_left: MAX_ARRAY_ITEMS,
        }
        .parse()
    }

    /// Parses a whole file held in memory (used by the fuzzer and tests).
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<GgufFile, GgufError> {
        Self::from_reader(path, bytes, bytes.len() as u64)
    }

    /// The value of metadata `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Sum of the tensors' element counts.
    pub fn n_params(&self) -> u64 {
        self.tensors.iter().map(|t| t.n_elements).sum()
    }

    /// Sum of the tensors' exact data bytes (without padding).
    pub fn tensor_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.n_bytes).sum()
    }
}

/// Where each header item started, kept beside the parse for error offsets.
struct Offsets {
    kv_keys: Vec<u64>,
    kv_values: Vec<u64>,
    tensor_names: Vec<u64>,
    tensor_offsets: Vec<u64>,
}

struct Parser<'p, R> {
    path: &'p Path,
    r: R,
    pos: u64,
    len: u64,
    /// Array items still allowed (see MAX_ARRAY_ITEMS).
    items_left: u64,
}

impl<R: Read> Parser<'_, R> {
    fn parse(mut self) -> Result<GgufFile, GgufError> {
        let version = self.read_preamble()?;
        let (n_tensors, n_kv) = self.read_counts()?;
        let mut offsets = Offsets {
            kv_keys: Vec::new(),
            kv_values: Vec::new(),
            tensor_names: Vec::new(),
            tensor_offsets: Vec::new(),
        };
        let metadata = self.read_metadata(n_kv, &mut offsets)?;
        let alignment = self.alignment(&metadata, &offsets)?;
        let tensors = self.read_tensor_infos(n_tensors, &mut offsets)?;
        let data_offset = align_up(self.pos, alignment).unwrap_or(u64::MAX);
        let file = GgufFile {
            path: self.path.to_path_buf(),
            version,
            metadata,
            tensors,
            alignment,
            data_offset,
            file_bytes: self.len,
        };
        self.check_duplicate_keys(&file.metadata, &offsets)?;
        self.check_tensor_names(&file.tensors, &offsets)?;
        self.check_tensor_data(&file, &offsets)?;
        Ok(file)
    }

    fn err(&self, offset: u64, problem: Problem) -> GgufError {
        GgufError::Malformed {
            path: self.path.to_path_buf(),
            offset,
            problem,
        }
    }

    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    /// Fills `buf` from the file, or reports truncation at the current offset.
    fn fill(&mut self, buf: &mut [u8], what: What) -> Result<(), GgufError> {
        let needed = buf.len() as u64;
        if needed > self.remaining() {
            return Err(self.truncated(what, needed));
        }
        match self.r.read_exact(buf) {
            Ok(()) => {
                self.pos += needed;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                // The file shrank while we read it.
                self.len = self.pos;
                Err(self.truncated(what, needed))
            }
            Err(error) => Err(GgufError::Io {
                path: self.path.to_path_buf(),
                offset: self.pos,
                error,
            }),
        }
    }

    fn truncated(&self, what: What, needed: u64) -> GgufError {
        self.err(
            self.pos,
            Problem::Truncated {
                what: what.to_string(),
                needed,
                available: self.remaining(),
            },
        )
    }

    fn bytes<const N: usize>(&mut self, what: What) -> Result<[u8; N], GgufError> {
        let mut buf = [0u8; N];
        self.fill(&mut buf, what)?;
        Ok(buf)
    }

    fn u32(&mut self, what: What) -> Result<u32, GgufError> {
        self.bytes(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: What) -> Result<u64, GgufError> {
        self.bytes(what).map(u64::from_le_bytes)
    }

    fn read_preamble(&mut self) -> Result<u32, GgufError> {
        let magic: [u8; 4] = match self.bytes(What::Header("magic")) {
            Ok(m) => m,
            Err(_) if self.len < 4 => {
                let mut found = vec![0u8; self.len as usize];
                let _ = self.r.read_exact(&mut found);
                return Err(self.err(0, Problem::BadMagic { found }));
            }
            Err(e) => return Err(e),
        };
        if magic != GGUF_MAGIC {
            let found = magic.to_vec();
            return Err(self.err(0, Problem::BadMagic { found }));
        }
        let version = self.u32(What::Header("version"))?;
        if !matches!(version, 2 | 3) {
            return Err(self.err(4, Problem::UnsupportedVersion { version }));
        }
        Ok(version)
    }

    fn read_counts(&mut self) -> Result<(u64, u64), GgufError> {
        let n_tensors = self.u64(What::Header("tensor count"))?;
        let n_kv = self.u64(What::Header("metadata entry count"))?;
        let available = self.remaining();
        let kv_needed = u128::from(n_kv) * u128::from(MIN_KV_BYTES);
        if kv_needed > u128::from(available) {
            let p = absurd("metadata entry", n_kv, kv_needed, available);
            return Err(self.err(16, p));
        }
        let needed = kv_needed + u128::from(n_tensors) * u128::from(MIN_TENSOR_INFO_BYTES);
        if needed > u128::from(available) {
            return Err(self.err(8, absurd("tensor", n_tensors, needed, available)));
        }
        Ok((n_tensors, n_kv))
    }

    fn read_metadata(
        &mut self,
        n_kv: u64,
        offsets: &mut Offsets,
    ) -> Result<Vec<(String, Value)>, GgufError> {
        let mut metadata = Vec::with_capacity(n_kv.min(MAX_PREALLOC_ITEMS) as usize);
        for i in 0..n_kv {
            offsets.kv_keys.push(self.pos);
            let key = self.string(What::Key(i))?;
            offsets.kv_values.push(self.pos);
            let type_pos = self.pos;
            let id = self.u32(What::Value(&key))?;
            let Some(ty) = ValueType::from_id(id) else {
                let what = What::Value(&key).to_string();
                return Err(self.err(type_pos, Problem::UnknownValueType { what, id }));
            };
            let value = self.value(ty, &key, 0)?;
            metadata.push((key, value));
        }
        Ok(metadata)
    }

    fn string(&mut self, what: What) -> Result<String, GgufError> {
        let start = self.pos;
        let len = self.u64(what)?;
        if len > self.remaining() || len > MAX_STRING_BYTES {
            let available = self.remaining();
            let what = what.to_string();
            return Err(self.err(
                start,
                Problem::StringTooLong {
                    what,
                    len,
                    available,
                },
            ));
        }
        let mut buf = vec![0u8; len as usize];
        self.fill(&mut buf, what)?;
        // ggml does not validate UTF-8 either; keep such files readable.
        Ok(String::from_utf8(buf)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    fn value(&mut self, ty: ValueType, key: &str, depth: u32) -> Result<Value, GgufError> {
        let what = What::Value(key);
        Ok(match ty {
            ValueType::U8 => Value::U8(u8::from_le_bytes(self.bytes(what)?)),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.bytes(what)?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.bytes(what)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.bytes(what)?)),
            ValueType::U32 => Value::U32(self.u32(what)?),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.bytes(what)?)),
            ValueType::U64 => Value::U64(self.u64(what)?),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.bytes(what)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.bytes(what)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.bytes(what)?)),
            ValueType::Bool => Value::Bool(self.bytes::<1>(what)?[0] != 0),
            ValueType::String => Value::String(self.string(what)?),
            ValueType::Array => self.array(key, depth)?,
        })
    }

    fn array(&mut self, key: &str, depth: u32) -> Result<Value, GgufError> {
        let what = What::Value(key);
        let start = self.pos;
        if depth >= MAX_ARRAY_DEPTH {
            let p = Problem::NestedTooDeep {
                what: what.to_string(),
                limit: MAX_ARRAY_DEPTH,
            };
            return Err(self.err(start, p));
        }
        let id = self.u32(what)?;
        let Some(elem) = ValueType::from_id(id) else {
            let what = what.to_string();
            return Err(self.err(start, Problem::UnknownValueType { what, id }));
        };
        let count = self.u64(what)?;
        let needed = u128::from(count) * u128::from(elem.min_encoded_size());
        let available = self.remaining();
        if needed > u128::from(available) {
            let what = what.to_string();
            let p = Problem::ArrayTooLong {
                what,
                elem,
                count,
                needed,
                available,
            };
            return Err(self.err(start + 4, p));
        }
        if count > self.items_left {
            let p = Problem::TooManyArrayItems {
                what: what.to_string(),
                count,
                limit: MAX_ARRAY_ITEMS,
            };
            return Err(self.err(start + 4, p));
        }
        self.items_left -= count;
        let mut items = Vec::with_capacity(count.min(MAX_PREALLOC_ITEMS) as usize);
        match elem.fixed_size() {
            Some(size) => self.fixed_items(elem, size, count, what, &mut items)?,
            None => {
                for _ in 0..count {
                    items.push(self.value(elem, key, depth + 1)?);
                }
            }
        }
        Ok(Value::Array(elem, items))
    }

    /// Reads `count` values of a fixed-size type in chunks rather than one read per value.
    fn fixed_items(
        &mut self,
        elem: ValueType,
        size: u64,
        count: u64,
        what: What,
        items: &mut Vec<Value>,
    ) -> Result<(), GgufError> {
        const CHUNK_ITEMS: u64 = 8192;
        let mut buf = vec![0u8; (CHUNK_ITEMS.min(count) * size) as usize];
        let mut left = count;
        while left > 0 {
            let n = left.min(CHUNK_ITEMS);
            let chunk = &mut buf[..(n * size) as usize];
            self.fill(chunk, what)?;
            items.extend(
                chunk
                    .chunks_exact(size as usize)
                    .map(|b| decode_fixed(elem, b)),
            );
            left -= n;
        }
        Ok(())
    }

    fn alignment(&self, metadata: &[(String, Value)], offsets: &Offsets) -> Result<u64, GgufError> {
        let Some(i) = metadata.iter().position(|(k, _)| k == ALIGNMENT_KEY) else {
            return Ok(DEFAULT_ALIGNMENT);
        };
        let detail = match &metadata[i].1 {
            Value::U32(a) if a.is_power_of_two() => return Ok(u64::from(*a)),
            Value::U32(a) => format!("alignment {a} is not a power of two"),
            other => format!("must be a uint32, found a {}", other.value_type()),
        };
        Err(self.err(offsets.kv_values[i], Problem::BadAlignment { detail }))
    }

    fn read_tensor_infos(
        &mut self,
        n_tensors: u64,
        offsets: &mut Offsets,
    ) -> Result<Vec<TensorInfo>, GgufError> {
        let cap = n_tensors.min(self.remaining() / MIN_TENSOR_INFO_BYTES);
        let mut tensors = Vec::with_capacity(cap as usize);
        offsets.tensor_names.reserve(cap as usize);
        offsets.tensor_offsets.reserve(cap as usize);
        for i in 0..n_tensors {
            offsets.tensor_names.push(self.pos);
            let name = self.string(What::Tensor(i, "name"))?;
            let (dims, ty) = self.tensor_shape(&name)?;
            offsets.tensor_offsets.push(self.pos);
            let offset = self.u64(What::Named(&name, "data offset"))?;
            tensors.push(tensor_info(name, dims, ty, offset));
        }
        Ok(tensors)
    }

    fn tensor_shape(&mut self, name: &str) -> Result<(Vec<u64>, GgmlType), GgufError> {
        let dims_pos = self.pos;
        let n_dims = self.u32(What::Named(name, "dimension count"))?;
        if n_dims > MAX_DIMS {
            let p = Problem::TooManyDims {
                tensor: name.to_string(),
                n_dims,
            };
            return Err(self.err(dims_pos, p));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(self.u64(What::Named(name, "dimensions"))?);
        }
        let type_pos = self.pos;
        let id = self.u32(What::Named(name, "type"))?;
        let ty = GgmlType::from_id(id).ok_or_else(|| {
            let tensor = name.to_string();
            self.err(type_pos, Problem::UnknownTensorType { tensor, id })
        })?;
        if let Err(problem) = shape_size(&dims, ty) {
            let tensor = name.to_string();
            return Err(self.err(
                dims_pos,
                Problem::BadShape {
                    tensor,
                    ty,
                    problem,
                },
            ));
        }
        Ok((dims, ty))
    }

    fn check_duplicate_keys(
        &self,
        metadata: &[(String, Value)],
        offsets: &Offsets,
    ) -> Result<(), GgufError> {
        let names: Vec<&str> = metadata.iter().map(|(k, _)| k.as_str()).collect();
        match first_duplicate(&names) {
            Some(i) => {
                let key = names[i].to_string();
                Err(self.err(offsets.kv_keys[i], Problem::DuplicateKey { key }))
            }
            None => Ok(()),
        }
    }

    fn check_tensor_names(
        &self,
        tensors: &[TensorInfo],
        offsets: &Offsets,
    ) -> Result<(), GgufError> {
        let names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
        match first_duplicate(&names) {
            Some(i) => {
                let tensor = names[i].to_string();
                Err(self.err(offsets.tensor_names[i], Problem::DuplicateTensor { tensor }))
            }
            None => Ok(()),
        }
    }

    fn check_tensor_data(&self, file: &GgufFile, offsets: &Offsets) -> Result<(), GgufError> {
        for (i, t) in file.tensors.iter().enumerate() {
            self.check_tensor_bounds(file, t, offsets.tensor_offsets[i])?;
        }
        let mut order: Vec<usize> = (0..file.tensors.len()).collect();
        order.sort_unstable_by_key(|&i| (file.tensors[i].offset, file.tensors[i].n_bytes));
        for pair in order.windows(2) {
            let (a, b) = (&file.tensors[pair[0]], &file.tensors[pair[1]]);
            let a_end = a.offset + a.n_bytes; // bounds checked above: no overflow
            if b.offset < a_end && b.n_bytes > 0 && a.n_bytes > 0 {
                let p = Problem::OverlappingTensors {
                    first: a.name.clone(),
                    first_offset: a.offset,
                    first_end: a_end,
                    second: b.name.clone(),
                    second_offset: b.offset,
                };
                return Err(self.err(offsets.tensor_offsets[pair[1]], p));
            }
        }
        Ok(())
    }

    fn check_tensor_bounds(
        &self,
        file: &GgufFile,
        t: &TensorInfo,
        at: u64,
    ) -> Result<(), GgufError> {
        if !t.offset.is_multiple_of(file.alignment) {
            let p = Problem::MisalignedOffset {
                tensor: t.name.clone(),
                offset: t.offset,
                alignment: file.alignment,
            };
            return Err(self.err(at, p));
        }
        let start = u128::from(file.data_offset) + u128::from(t.offset);
        let end = start + u128::from(t.n_bytes);
        if end > u128::from(file.file_bytes) {
            let p = Problem::TensorBeyondEnd {
                tensor: t.name.clone(),
                start: u64::try_from(start).unwrap_or(u64::MAX),
                end,
                file_bytes: file.file_bytes,
            };
            return Err(self.err(at, p));
        }
        Ok(())
    }
}

fn tensor_info(name: String, dims: Vec<u64>, ty: GgmlType, offset: u64) -> TensorInfo {
    // tensor_shape has validated the shape already.
    let (n_elements, n_bytes) = shape_size(&dims, ty).unwrap_or((0, 0));
    TensorInfo {
        name,
        dims,
        ggml_type: ty,
        offset,
        n_elements,
        n_bytes,
    }
}

fn absurd(what: &'static str, count: u64, needed: u128, available: u64) -> Problem {
    Problem::AbsurdCount {
        what,
        count,
        needed,
        available,
    }
}

/// Index (in `names`) of the first entry, in file order, whose name appeared before.
fn first_duplicate(names: &[&str]) -> Option<usize> {
    let mut seen = std::collections::HashSet::with_capacity(names.len());
    names.iter().position(|name| !seen.insert(*name))
}

/// Decodes one little-endian value of fixed-size type `ty` from exactly its bytes.
fn decode_fixed(ty: ValueType, b: &[u8]) -> Value {
    let a2 = || [b[0], b[1]];
    let a4 = || [b[0], b[1], b[2], b[3]];
    let a8 = || [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
    match ty {
        ValueType::U8 => Value::U8(b[0]),
        ValueType::I8 => Value::I8(b[0] as i8),
        ValueType::Bool => Value::Bool(b[0] != 0),
        ValueType::U16 => Value::U16(u16::from_le_bytes(a2())),
        ValueType::I16 => Value::I16(i16::from_le_bytes(a2())),
        ValueType::U32 => Value::U32(u32::from_le_bytes(a4())),
        ValueType::I32 => Value::I32(i32::from_le_bytes(a4())),
        ValueType::F32 => Value::F32(f32::from_le_bytes(a4())),
        ValueType::U64 => Value::U64(u64::from_le_bytes(a8())),
        ValueType::I64 => Value::I64(i64::from_le_bytes(a8())),
        ValueType::F64 => Value::F64(f64::from_le_bytes(a8())),
        ValueType::String | ValueType::Array => unreachable!("not a fixed-size type"),
    }
}

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
