//! Errors of the GGUF reader. Every error names the file; every parse error also names the
//! byte offset where the offending field starts and says what was wrong with it, so a user
//! can open a hex dump at that offset.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::{GgmlType, ShapeError, ValueType};

/// A GGUF file (or sharded model) that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The operating system refused a read (open, stat, read). The OS error is part of the
    /// message and not a separate cause, so that an error chain prints it once.
    #[error("{}: I/O error at byte {offset}: {error}", path.display())]
    Io {
        path: PathBuf,
        offset: u64,
        error: io::Error,
    },
    /// The bytes at `offset` are not a valid GGUF file.
    #[error("{}: at byte {offset}: {problem}", path.display())]
    Malformed {
        path: PathBuf,
        offset: u64,
        problem: Problem,
    },
    /// A shard of a split model is missing or does not belong to the others.
    #[error("{}: at byte {offset}: {detail}", path.display())]
    Shards {
        path: PathBuf,
        offset: u64,
        detail: String,
    },
}

impl GgufError {
    /// The byte offset the error points at.
    pub fn offset(&self) -> u64 {
        match self {
            GgufError::Io { offset, .. }
            | GgufError::Malformed { offset, .. }
            | GgufError::Shards { offset, .. } => *offset,
        }
    }

    /// The parse problem, when the file is malformed.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            GgufError::Malformed { problem, .. } => Some(problem),
            _ => None,
        }
    }
}

/// What was wrong with a malformed file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    #[error("bad magic {}, expected \"GGUF\" (not a GGUF file)", show_bytes(found))]
    BadMagic { found: Vec<u8> },
    #[error("unsupported GGUF version {version}{}", version_hint(*version))]
    UnsupportedVersion { version: u32 },
    #[error("truncated: {what} needs {needed} bytes but the file has only {available} left")]
    Truncated {
        what: String,
        needed: u64,
        available: u64,
    },
    #[error("{what}: string length {len} exceeds the {available} bytes left in the file")]
    StringTooLong {
        what: String,
        len: u64,
        available: u64,
    },
    #[error(
        "{what}: array of {count} {elem} values needs at least {needed} bytes but the file has only {available} left"
    )]
    ArrayTooLong {
        what: String,
        elem: ValueType,
        count: u64,
        needed: u128,
        available: u64,
    },
    #[error("absurd {what} count {count}: it needs at least {needed} bytes but the file has only {available} left")]
    AbsurdCount {
        what: &'static str,
        count: u64,
        needed: u128,
        available: u64,
    },
    #[error(
        "{what}: array of {count} items would take the metadata arrays past {limit} items in all"
    )]
    TooManyArrayItems {
        what: String,
        count: u64,
        limit: u64,
    },
    #[error("{what}: unknown metadata value type id {id}")]
    UnknownValueType { what: String, id: u32 },
    #[error("{what}: arrays nested deeper than {limit} levels")]
    NestedTooDeep { what: String, limit: u32 },
    #[error("duplicate metadata key {key:?}")]
    DuplicateKey { key: String },
    #[error("general.alignment: {detail}")]
    BadAlignment { detail: String },
    #[error("tensor {tensor:?}: {n_dims} dimensions, ggml supports at most 4")]
    TooManyDims { tensor: String, n_dims: u32 },
    #[error("tensor {tensor:?}: unknown ggml type id {id}")]
    UnknownTensorType { tensor: String, id: u32 },
    #[error("tensor {tensor:?} of type {ty}: {problem}")]
    BadShape {
        tensor: String,
        ty: GgmlType,
        problem: ShapeError,
    },
    #[error("duplicate tensor name {tensor:?}")]
    DuplicateTensor { tensor: String },
    #[error(
        "tensor {tensor:?}: data offset {offset} is not a multiple of the alignment {alignment}"
    )]
    MisalignedOffset {
        tensor: String,
        offset: u64,
        alignment: u64,
    },
    #[error("tensor {tensor:?}: data at file bytes {start}..{end} lies beyond the end of the file ({file_bytes} bytes)")]
    TensorBeyondEnd {
        tensor: String,
        start: u64,
        end: u128,
        file_bytes: u64,
    },
    #[error("tensor {second:?} (data offset {second_offset}) overlaps tensor {first:?} (data offset {first_offset}, ends at {first_end})")]
    OverlappingTensors {
        first: String,
        first_offset: u64,
        first_end: u64,
        second: String,
        second_offset: u64,
    },
}

fn show_bytes(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes)) + &format!(" ({})", hex::encode(bytes))
}

fn version_hint(version: u32) -> &'static str {
    match version {
        1 => " (GGUF v1 is obsolete; this reader supports versions 2 and 3)",
        v if matches!(v.swap_bytes(), 2 | 3) => {
            " (looks like a big-endian file; this reader supports little-endian versions 2 and 3)"
        }
        _ => " (this reader supports versions 2 and 3)",
    }
}

/// What a read is for, named in error messages; cheap to pass around on the hot path.
#[derive(Clone, Copy)]
pub(crate) enum What<'a> {
    Header(&'static str),
    Key(u64),
    Value(&'a str),
    Tensor(u64, &'static str),
    Named(&'a str, &'static str),
}

impl fmt::Display for What<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            What::Header(field) => write!(f, "header {field}"),
            What::Key(i) => write!(f, "key of metadata entry {i}"),
            What::Value(key) => write!(f, "value of metadata key {key:?}"),
            What::Tensor(i, field) => write!(f, "{field} of tensor info {i}"),
            What::Named(name, field) => write!(f, "{field} of tensor {name:?}"),
        }
    }
}
