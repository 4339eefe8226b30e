//! GGUF reader and writer: parses headers, metadata and tensor infos of GGUF v2/v3 files
//! (reading only the header region) and derives exact sizes from the tensor types.
//!
//! The harness sizes models from the files themselves rather than from a flat bytes-per-param
//! multiplier, so every byte count here is exact: tensor bytes come from the ggml type table.

mod error;
mod model;
mod reader;
mod tensor;
mod types;
mod value;
mod writer;

pub use error::{GgufError, Problem};
pub use model::{is_expert_tensor, shard_paths, Model, ModelFacts, TypeShare, OUTPUT, TOKEN_EMBD};
pub use reader::{GgufFile, MAX_ARRAY_DEPTH, MAX_ARRAY_ITEMS, MAX_DIMS, MAX_STRING_BYTES};
pub use tensor::{align_up, shape_size, ShapeError, TensorInfo};
pub use types::{ftype_name, GgmlType};
pub use value::{Value, ValueType};
pub use writer::{Writer, ALIGNMENT_KEY, MAX_TENSOR_NAME_BYTES};

/// The four magic bytes that open every GGUF file.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";

/// Data alignment when `general.alignment` is absent (`GGUF_DEFAULT_ALIGNMENT`).
pub const DEFAULT_ALIGNMENT: u64 = 32;
