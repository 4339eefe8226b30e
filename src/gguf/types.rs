//! The ggml tensor type table: every type of `ggml/include/ggml.h` with its block size and
//! bytes per block (from `type_traits` in `ggml/src/ggml.c` and the block structs of
//! `ggml-common.h`), so that the byte size of every tensor is exact.
//!
//! Ids removed from GGUF files upstream (4, 5, 31-33, 36-38) are deliberately absent: a file
//! that uses them cannot be loaded by llama.cpp either, so the reader reports them as unknown.

use std::fmt;

/// Super-block size of the k-quants and i-quants (`QK_K` in ggml-common.h).
const QK_K: u64 = 256;

/// A ggml tensor element type as stored in GGUF tensor infos.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    IQ2_XXS,
    IQ2_XS,
    IQ3_XXS,
    IQ1_S,
    IQ4_NL,
    IQ3_S,
    IQ2_S,
    IQ4_XS,
    I8,
    I16,
    I32,
    I64,
    F64,
    IQ1_M,
    BF16,
    TQ1_0,
    TQ2_0,
    MXFP4,
    NVFP4,
    Q1_0,
    Q2_0,
}

/// One row of the type table: type, ggml id, canonical name, elements per block, bytes per block.
struct Traits {
    ty: GgmlType,
    id: u32,
    name: &'static str,
    block_size: u64,
    type_size: u64,
}

const fn t(ty: GgmlType, id: u32, name: &'static str, block_size: u64, type_size: u64) -> Traits {
    Traits {
        ty,
        id,
        name,
        block_size,
        type_size,
    }
}

use GgmlType as G;

/// The table, in id order. Byte sizes spelled out as the block structs of ggml-common.h
/// (`ggml_half` = 2 bytes, `float` = 4), cross-checked with gguf-py's `GGML_QUANT_SIZES`.
const TABLE: &[Traits] = &[
    t(G::F32, 0, "F32", 1, 4),
    t(G::F16, 1, "F16", 1, 2),
    t(G::Q4_0, 2, "Q4_0", 32, 2 + 16),
    t(G::Q4_1, 3, "Q4_1", 32, 2 + 2 + 16),
    t(G::Q5_0, 6, "Q5_0", 32, 2 + 4 + 16),
    t(G::Q5_1, 7, "Q5_1", 32, 2 + 2 + 4 + 16),
    t(G::Q8_0, 8, "Q8_0", 32, 2 + 32),
    t(G::Q8_1, 9, "Q8_1", 32, 2 + 2 + 32),
    t(G::Q2_K, 10, "Q2_K", QK_K, 2 + 2 + QK_K / 16 + QK_K / 4),
    t(G::Q3_K, 11, "Q3_K", QK_K, 2 + QK_K / 4 + QK_K / 8 + 12),
    t(G::Q4_K, 12, "Q4_K", QK_K, 2 + 2 + QK_K / 2 + 12),
    t(G::Q5_K, 13, "Q5_K", QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12),
    t(
        G::Q6_K,
        14,
        "Q6_K",
        QK_K,
        2 + QK_K / 2 + QK_K / 4 + QK_K / 16,
    ),
    t(G::Q8_K, 15, "Q8_K", QK_K, 4 + QK_K + QK_K / 8),
    t(G::IQ2_XXS, 16, "IQ2_XXS", QK_K, 2 + QK_K / 4),
    t(G::IQ2_XS, 17, "IQ2_XS", QK_K, 2 + QK_K / 4 + QK_K / 32),
    t(G::IQ3_XXS, 18, "IQ3_XXS", QK_K, 2 + QK_K / 4 + QK_K / 8),
    t(G::IQ1_S, 19, "IQ1_S", QK_K, 2 + QK_K / 8 + QK_K / 16),
    t(G::IQ4_NL, 20, "IQ4_NL", 32, 2 + 16),
    t(
        G::IQ3_S,
        21,
        "IQ3_S",
        QK_K,
        2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4,
    ),
    t(G::IQ2_S, 22, "IQ2_S", QK_K, 2 + QK_K / 4 + QK_K / 16),
    t(G::IQ4_XS, 23, "IQ4_XS", QK_K, 2 + 2 + QK_K / 2 + QK_K / 64),
    t(G::I8, 24, "I8", 1, 1),
    t(G::I16, 25, "I16", 1, 2),
    t(G::I32, 26, "I32", 1, 4),
    t(G::I64, 27, "I64", 1, 8),
    t(G::F64, 28, "F64", 1, 8),
    t(
        G::IQ1_M,
        29,
        "IQ1_M",
        QK_K,
        QK_K / 8 + QK_K / 16 + QK_K / 32,
    ),
    t(G::BF16, 30, "BF16", 1, 2),
    t(
        G::TQ1_0,
        34,
        "TQ1_0",
        QK_K,
        2 + QK_K / 64 + (QK_K - 4 * QK_K / 64) / 5,
    ),
    t(G::TQ2_0, 35, "TQ2_0", QK_K, 2 + QK_K / 4),
    t(G::MXFP4, 39, "MXFP4", 32, 1 + 16),
    t(G::NVFP4, 40, "NVFP4", 64, 4 + 32),
    t(G::Q1_0, 41, "Q1_0", 128, 2 + 128 / 8),
    t(G::Q2_0, 42, "Q2_0", 64, 2 + 64 / 4),
];

impl GgmlType {
    /// Every type, in id order.
    pub fn all() -> impl Iterator<Item = GgmlType> {
        TABLE.iter().map(|r| r.ty)
    }

    fn traits(self) -> &'static Traits {
        // The table is in declaration order, so the discriminant is the row index.
        &TABLE[self as usize]
    }

    /// The type with ggml id `id`, or `None` for an unknown or removed id.
    pub fn from_id(id: u32) -> Option<Self> {
        TABLE.iter().find(|r| r.id == id).map(|r| r.ty)
    }

    /// The ggml id (`GGML_TYPE_*` value) written in GGUF tensor infos.
    pub fn id(self) -> u32 {
        self.traits().id
    }

    /// Canonical upper-case name as llama.cpp prints it in quant mixes ("Q4_K", "BF16").
    pub fn name(self) -> &'static str {
        self.traits().name
    }

    /// Looks a type up by name, case-insensitively ("q4_K", "Q4_K" and "q4_k" all work).
    pub fn from_name(name: &str) -> Option<Self> {
        TABLE
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))
            .map(|r| r.ty)
    }

    /// Elements per block.
    pub fn block_size(self) -> u64 {
        self.traits().block_size
    }

    /// Bytes per block.
    pub fn type_size(self) -> u64 {
        self.traits().type_size
    }

    /// Bits per element of a full block (e.g. 4.5 for Q4_K).
    pub fn bits_per_weight(self) -> f64 {
        (self.type_size() * 8) as f64 / self.block_size() as f64
    }

    /// Exact bytes of `n_elements` elements, or `None` when `n_elements` is not a whole number
    /// of blocks or the size overflows `u64`.
    pub fn tensor_bytes(self, n_elements: u64) -> Option<u64> {
        let t = self.traits();
        if !n_elements.is_multiple_of(t.block_size) {
            return None;
        }
        (n_elements / t.block_size).checked_mul(t.type_size)
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `llama_ftype` names by id (`include/llama.h` of the pinned llama.cpp).
pub fn ftype_name(id: u64) -> Option<&'static str> {
    const NAMES: [(u64, &str); 35] = [
        (0, "F32"),
        (1, "F16"),
        (2, "Q4_0"),
        (3, "Q4_1"),
        (7, "Q8_0"),
        (8, "Q5_0"),
        (9, "Q5_1"),
        (10, "Q2_K"),
        (11, "Q3_K_S"),
        (12, "Q3_K_M"),
        (13, "Q3_K_L"),
        (14, "Q4_K_S"),
        (15, "Q4_K_M"),
        (16, "Q5_K_S"),
        (17, "Q5_K_M"),
        (18, "Q6_K"),
        (19, "IQ2_XXS"),
        (20, "IQ2_XS"),
        (21, "Q2_K_S"),
        (22, "IQ3_XS"),
        (23, "IQ3_XXS"),
        (24, "IQ1_S"),
        (25, "IQ4_NL"),
        (26, "IQ3_S"),
        (27, "IQ3_M"),
        (28, "IQ2_S"),
        (29, "IQ2_M"),
        (30, "IQ4_XS"),
        (31, "IQ1_M"),
        (32, "BF16"),
        (36, "TQ1_0"),
        (37, "TQ2_0"),
        (38, "MXFP4_MOE"),
        (39, "NVFP4"),
        (40, "Q1_0"),
    ];
    NAMES.iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_declaration_order() {
        for (i, row) in TABLE.iter().enumerate() {
            assert_eq!(row.ty as usize, i, "{}", row.name);
            assert_eq!(row.ty.traits().id, row.id);
        }
        assert_eq!(TABLE.len(), 35);
    }

    #[test]
    fn ids_and_names_round_trip() {
        for ty in GgmlType::all() {
            assert_eq!(GgmlType::from_id(ty.id()), Some(ty));
            assert_eq!(GgmlType::from_name(ty.name()), Some(ty));
            assert_eq!(GgmlType::from_name(&ty.name().to_lowercase()), Some(ty));
        }
    }

    #[test]
    fn removed_and_unknown_ids_are_none() {
        for id in [4, 5, 31, 32, 33, 36, 37, 38, 43, 1000, u32::MAX] {
            assert_eq!(GgmlType::from_id(id), None, "id {id}");
        }
    }

    #[test]
    fn block_struct_sizes_match_ggml_common() {
        // Sizes asserted by static_assert in ggml-common.h.
        let expect = [
            (G::Q4_0, 32, 18),
            (G::Q8_0, 32, 34),
            (G::Q2_K, 256, 84),
            (G::Q3_K, 256, 110),
            (G::Q4_K, 256, 144),
            (G::Q5_K, 256, 176),
            (G::Q6_K, 256, 210),
            (G::Q8_K, 256, 292),
            (G::IQ2_XXS, 256, 66),
            (G::IQ1_S, 256, 50),
            (G::IQ1_M, 256, 56),
            (G::IQ4_XS, 256, 136),
            (G::TQ1_0, 256, 54),
            (G::TQ2_0, 256, 66),
            (G::MXFP4, 32, 17),
            (G::NVFP4, 64, 36),
        ];
        for (ty, block, bytes) in expect {
            assert_eq!((ty.block_size(), ty.type_size()), (block, bytes), "{ty}");
        }
    }

    #[test]
    fn tensor_bytes_is_exact_and_rejects_partial_blocks() {
        assert_eq!(
            G::Q4_K.tensor_bytes(4096 * 4096),
            Some(4096 * 4096 / 256 * 144)
        );
        assert_eq!(G::F16.tensor_bytes(3), Some(6));
        assert_eq!(G::Q4_0.tensor_bytes(33), None);
        assert_eq!(G::F64.tensor_bytes(u64::MAX), None);
        assert!((G::Q4_K.bits_per_weight() - 4.5).abs() < 1e-12);
    }
}
