//! Tensor infos: name, shape, type and where the data lies, with exact sizes.

use super::GgmlType;

/// One tensor of a GGUF file, as described by its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions, innermost (row length, `ne[0]`) first, as stored in the file.
    pub dims: Vec<u64>,
    /// Element type.
    pub ggml_type: GgmlType,
    /// Byte offset of the data from the start of the data section.
    pub offset: u64,
    /// Number of elements (product of `dims`).
    pub n_elements: u64,
    /// Exact bytes of the data (without alignment padding).
    pub n_bytes: u64,
}

/// Why a shape cannot be a tensor of the given type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeError {
    /// The element count does not fit in a signed 64-bit integer (ggml's `int64_t ne`).
    Overflow,
    /// The row length `ne[0]` is not a multiple of the type's block size.
    PartialBlock { row: u64, block_size: u64 },
}

impl std::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShapeError::Overflow => f.write_str("element count overflows a 64-bit integer"),
            ShapeError::PartialBlock { row, block_size } => write!(
                f,
                "row of {row} elements is not a multiple of the block size {block_size}"
            ),
        }
    }
}

/// Element count and exact bytes of a tensor of `dims` and `ty`, checked like ggml does:
/// the count must fit in `i64` and each row must be whole blocks.
pub fn shape_size(dims: &[u64], ty: GgmlType) -> Result<(u64, u64), ShapeError> {
    let mut n_elements: u64 = 1;
    for &d in dims {
        n_elements = n_elements.checked_mul(d).ok_or(ShapeError::Overflow)?;
    }
    if n_elements > i64::MAX as u64 || dims.iter().any(|&d| d > i64::MAX as u64) {
        return Err(ShapeError::Overflow);
    }
    let row = dims.first().copied().unwrap_or(1);
    if !row.is_multiple_of(ty.block_size()) {
        return Err(ShapeError::PartialBlock {
            row,
            block_size: ty.block_size(),
        });
    }
    let n_bytes = ty.tensor_bytes(n_elements).ok_or(ShapeError::Overflow)?;
    Ok((n_elements, n_bytes))
}

/// `offset` rounded up to a multiple of `alignment` (a power of two), `None` on overflow.
pub fn align_up(offset: u64, alignment: u64) -> Option<u64> {
    let rem = offset % alignment;
    if rem == 0 {
        Some(offset)
    } else {
        offset.checked_add(alignment - rem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_size_checks_rows_and_overflow() {
        assert_eq!(shape_size(&[256, 2], GgmlType::Q4_K), Ok((512, 288)));
        assert_eq!(shape_size(&[], GgmlType::F32), Ok((1, 4)));
        assert_eq!(
            shape_size(&[32, 8], GgmlType::Q4_K),
            Err(ShapeError::PartialBlock {
                row: 32,
                block_size: 256
            })
        );
        assert_eq!(
            shape_size(&[u64::MAX / 2, 4], GgmlType::F32),
            Err(ShapeError::Overflow)
        );
    }

    #[test]
    fn align_up_rounds_and_detects_overflow() {
        assert_eq!(align_up(0, 32), Some(0));
        assert_eq!(align_up(33, 32), Some(64));
        assert_eq!(align_up(u64::MAX - 3, 32), None);
    }
}
