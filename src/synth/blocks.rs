//! Quantized block encoders, written directly (no full-precision intermediate).
//!
//! Two kinds of content, with the block layouts of `ggml/src/ggml-common.h`:
//! - random weights: random quant payload with small, finite f16 scales (random bytes in a
//!   scale field can be NaN or Inf and poison every logit), sub-scales masked to 0..15 so
//!   every weight stays below about 0.03 and activations stay far from f16 overflow;
//! - exact small-integer rows (values in -7..=7), used for embedding and output rows whose
//!   dot products define the `cycle` behaviour: every supported type represents them exactly
//!   (scale 1, integer quants), so the same row is the same vector in Q4_K, Q6_K or F16.

use crate::gguf::GgmlType;
use half::f16;

/// A fast non-cryptographic generator (wyrand): about a byte per cycle, so generating
/// random payload never limits the write speed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = (self.0 as u128).wrapping_mul((self.0 ^ 0xe703_7ed1_a0b4_28db) as u128);
        ((t >> 64) as u64) ^ (t as u64)
    }

    /// Uniform in `0..n` (n > 0), slightly biased for huge n, which does not matter here.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

/// The block types this module can write.
pub fn supported(ty: GgmlType) -> bool {
    use GgmlType::*;
    matches!(
        ty,
        F32 | F16 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q4_K | Q5_K | Q6_K
    )
}

/// Scale written into every random block: a normal f16, so the weights are finite.
const SCALE: f32 = 6.5e-5;

/// Fills `buf` (a whole number of blocks of `ty`) with random weights of small magnitude.
pub fn fill_random(ty: GgmlType, buf: &mut [u8], rng: &mut Rng) {
    match ty {
        // Random sign and mantissa, fixed exponent: f16 in ±[1/128, 1/64), f32 in ±[1/16, 1/8).
        GgmlType::F16 => fill_masked(buf, rng, 0x83FF_83FF_83FF_83FF, 0x2000_2000_2000_2000),
        GgmlType::F32 => fill_masked(buf, rng, 0x807F_FFFF_807F_FFFF, 0x3D80_0000_3D80_0000),
        _ => {
            rng.fill(buf);
            patch_blocks(ty, buf);
        }
    }
}

/// Random little-endian words, each 8-byte group masked with `and` then `or`, in one pass
/// (the lanes of a u64 line up with the 2- or 4-byte values, so a short tail stays valid).
fn fill_masked(buf: &mut [u8], rng: &mut Rng, and: u64, or: u64) {
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        c.copy_from_slice(&((rng.next_u64() & and) | or).to_le_bytes());
    }
    let rest = chunks.into_remainder();
    let last = ((rng.next_u64() & and) | or).to_le_bytes();
    rest.copy_from_slice(&last[..rest.len()]);
}

/// Sets the scale fields of every block of a random buffer to finite small values.
fn patch_blocks(ty: GgmlType, buf: &mut [u8]) {
    let d = f16::from_f32(SCALE).to_le_bytes();
    let size = ty.type_size() as usize;
    for b in buf.chunks_exact_mut(size) {
        match ty {
            GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => b[0..2].copy_from_slice(&d),
            GgmlType::Q4_1 | GgmlType::Q5_1 => {
                b[0..2].copy_from_slice(&d);
                b[2..4].copy_from_slice(&d);
            }
            GgmlType::Q4_K | GgmlType::Q5_K => {
                b[0..2].copy_from_slice(&d);
                b[2..4].copy_from_slice(&d);
                b[4..16].iter_mut().for_each(|s| *s &= 0x0F);
            }
            GgmlType::Q6_K => {
                b[192..208].iter_mut().for_each(|s| *s &= 0x07);
                b[208..210].copy_from_slice(&d);
            }
            _ => {}
        }
    }
}

/// Encodes a row of small integers (each in -7..=7; `values.len()` a multiple of the block
/// size) exactly in `ty`, appending to `out`. Returns false for a type without an exact
/// integer encoding here.
pub fn encode_int_row(ty: GgmlType, values: &[i8], out: &mut Vec<u8>) -> bool {
    let bs = ty.block_size() as usize;
    if !values.len().is_multiple_of(bs) || !supported(ty) {
        return false;
    }
    for block in values.chunks_exact(bs) {
        match ty {
            GgmlType::F32 => block
                .iter()
                .for_each(|&v| out.extend((v as f32).to_le_bytes())),
            GgmlType::F16 => block
                .iter()
                .for_each(|&v| out.extend(f16::from_f32(v as f32).to_le_bytes())),
            GgmlType::Q8_0 => enc_q8_0(block, out),
            GgmlType::Q4_0 => enc_q4_0(block, out),
            GgmlType::Q4_1 => enc_q4_1(block, out),
            GgmlType::Q5_0 => enc_q5_0(block, out),
            GgmlType::Q5_1 => enc_q5_1(block, out),
            GgmlType::Q4_K => enc_q4_k(block, out),
            GgmlType::Q5_K => enc_q5_k(block, out),
            GgmlType::Q6_K => enc_q6_k(block, out),
            _ => return false,
        }
    }
    true
}

const ONE: [u8; 2] = [0x00, 0x3C]; // f16 1.0, little endian
const MINUS_8: [u8; 2] = [0x00, 0xC8]; // f16 -8.0
const MINUS_16: [u8; 2] = [0x00, 0xCC]; // f16 -16.0

fn clamp(v: i8) -> i32 {
    v.clamp(-7, 7) as i32
}

/// block_q8_0 { d: f16, qs: [i8; 32] }: x = d * q.
fn enc_q8_0(v: &[i8], out: &mut Vec<u8>) {
    out.extend(ONE);
    out.extend(v.iter().map(|&x| clamp(x) as i8 as u8));
}

/// Low nibbles hold elements 0..16, high nibbles 16..32 (`dequantize_row_q4_0`).
fn nibbles(q: impl Fn(usize) -> u8, out: &mut Vec<u8>) {
    out.extend((0..16).map(|j| (q(j) & 0x0F) | ((q(j + 16) & 0x0F) << 4)));
}

/// block_q4_0 { d, qs[16] }: x = d * (q - 8).
fn enc_q4_0(v: &[i8], out: &mut Vec<u8>) {
    out.extend(ONE);
    nibbles(|j| (clamp(v[j]) + 8) as u8, out);
}

/// block_q4_1 { d, m, qs[16] }: x = d * q + m, with m = -8.
fn enc_q4_1(v: &[i8], out: &mut Vec<u8>) {
    out.extend(ONE);
    out.extend(MINUS_8);
    nibbles(|j| (clamp(v[j]) + 8) as u8, out);
}

/// The fifth bits of a 32-element block: bit j of qh is element j's bit 4.
fn high_bits(q: impl Fn(usize) -> u8) -> [u8; 4] {
    let qh: u32 = (0..32).map(|j| (((q(j) >> 4) & 1) as u32) << j).sum();
    qh.to_le_bytes()
}

/// block_q5_0 { d, qh[4], qs[16] }: x = d * (q - 16).
fn enc_q5_0(v: &[i8], out: &mut Vec<u8>) {
    let q = |j: usize| (clamp(v[j]) + 16) as u8;
    out.extend(ONE);
    out.extend(high_bits(q));
    nibbles(q, out);
}

/// block_q5_1 { d, m, qh[4], qs[16] }: x = d * q + m, with m = -16.
fn enc_q5_1(v: &[i8], out: &mut Vec<u8>) {
    let q = |j: usize| (clamp(v[j]) + 16) as u8;
    out.extend(ONE);
    out.extend(MINUS_16);
    out.extend(high_bits(q));
    nibbles(q, out);
}

/// K-quant scales[12] giving every sub-block scale 1 and min 8 (`get_scale_min_k4`).
const K_SCALES_1_MIN_8: [u8; 12] = [1, 1, 1, 1, 8, 8, 8, 8, 0x81, 0x81, 0x81, 0x81];

/// block_q4_K { d, dmin, scales[12], qs[128] }: x = d*sc*q - dmin*m = q - 8. In each 64
/// chunk, element w < 32 is the low nibble of byte w, element w >= 32 the high nibble.
fn enc_q4_k(v: &[i8], out: &mut Vec<u8>) {
    out.extend(ONE);
    out.extend(ONE);
    out.extend(K_SCALES_1_MIN_8);
    let q = |e: usize| (clamp(v[e]) + 8) as u8;
    for c in 0..4 {
        out.extend((0..32).map(|l| q(64 * c + l) | (q(64 * c + 32 + l) << 4)));
    }
}

/// block_q5_K { d, dmin, scales[12], qh[32], qs[128] }: x = q - 8 with q 5-bit; the fifth
/// bit of element 64c+l (l < 32) is bit 2c of qh[l], of 64c+32+l bit 2c+1.
fn enc_q5_k(v: &[i8], out: &mut Vec<u8>) {
    out.extend(ONE);
    out.extend(ONE);
    out.extend(K_SCALES_1_MIN_8);
    let q = |e: usize| (clamp(v[e]) + 8) as u8;
    out.extend((0..32).map(|l| {
        (0..4).fold(0u8, |h, c| {
            h | (((q(64 * c + l) >> 4) & 1) << (2 * c))
                | (((q(64 * c + 32 + l) >> 4) & 1) << (2 * c + 1))
        })
    }));
    for c in 0..4 {
        out.extend((0..32).map(|l| (q(64 * c + l) & 0xF) | ((q(64 * c + 32 + l) & 0xF) << 4)));
    }
}

/// block_q6_K { ql[128], qh[64], scales[16] (i8), d }: x = d * sc * (q - 32), q 6-bit.
/// Per 128 half: element l (l < 32) is ql[l] low + qh[l] bits 0-1, l+32 ql[l+32] low +
/// bits 2-3, l+64 ql[l] high + bits 4-5, l+96 ql[l+32] high + bits 6-7.
fn enc_q6_k(v: &[i8], out: &mut Vec<u8>) {
    let q = |e: usize| (clamp(v[e]) + 32) as u8;
    let mut ql = [0u8; 128];
    let mut qh = [0u8; 64];
    for half in 0..2 {
        let (y, l0, h0) = (128 * half, 64 * half, 32 * half);
        for l in 0..32 {
            let (a, b, c, d) = (q(y + l), q(y + l + 32), q(y + l + 64), q(y + l + 96));
            ql[l0 + l] = (a & 0xF) | ((c & 0xF) << 4);
            ql[l0 + l + 32] = (b & 0xF) | ((d & 0xF) << 4);
            qh[h0 + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((d >> 4) << 6);
        }
    }
    out.extend(ql);
    out.extend(qh);
    out.extend([1u8; 16]);
    out.extend(ONE);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(b: &[u8], at: usize) -> f32 {
        f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
    }

    /// `get_scale_min_k4` of ggml-quants.c.
    fn scale_min_k4(j: usize, q: &[u8]) -> (f32, f32) {
        if j < 4 {
            ((q[j] & 63) as f32, (q[j + 4] & 63) as f32)
        } else {
            let d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
            let m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
            (d as f32, m as f32)
        }
    }

    /// Straight ports of ggml's dequantize_row_* for one block.
    fn dequant(ty: GgmlType, b: &[u8]) -> Vec<f32> {
        match ty {
            GgmlType::Q8_0 => (0..32).map(|j| h(b, 0) * (b[2 + j] as i8) as f32).collect(),
            GgmlType::Q4_0 | GgmlType::Q4_1 => {
                let (off, m) = if ty == GgmlType::Q4_0 {
                    (2, None)
                } else {
                    (4, Some(h(b, 2)))
                };
                let mut y = vec![0.0; 32];
                for j in 0..16 {
                    let (x0, x1) = ((b[off + j] & 0xF) as f32, (b[off + j] >> 4) as f32);
                    (y[j], y[j + 16]) = match m {
                        None => (h(b, 0) * (x0 - 8.0), h(b, 0) * (x1 - 8.0)),
                        Some(m) => (h(b, 0) * x0 + m, h(b, 0) * x1 + m),
                    };
                }
                y
            }
            GgmlType::Q5_0 | GgmlType::Q5_1 => {
                let (qh_at, m) = if ty == GgmlType::Q5_0 {
                    (2, None)
                } else {
                    (4, Some(h(b, 2)))
                };
                let qh = u32::from_le_bytes(b[qh_at..qh_at + 4].try_into().unwrap());
                let qs = &b[qh_at + 4..];
                let mut y = vec![0.0; 32];
                for j in 0..16 {
                    let xh0 = ((qh >> j) << 4) & 0x10;
                    let xh1 = (qh >> (j + 12)) & 0x10;
                    let x0 = ((qs[j] as u32 & 0xF) | xh0) as f32;
                    let x1 = ((qs[j] as u32 >> 4) | xh1) as f32;
                    (y[j], y[j + 16]) = match m {
                        None => (h(b, 0) * (x0 - 16.0), h(b, 0) * (x1 - 16.0)),
                        Some(m) => (h(b, 0) * x0 + m, h(b, 0) * x1 + m),
                    };
                }
                y
            }
            GgmlType::Q4_K | GgmlType::Q5_K => dequant_k45(ty, b),
            GgmlType::Q6_K => dequant_q6_k(b),
            GgmlType::F16 => b.chunks(2).map(|c| h(c, 0)).collect(),
            _ => unreachable!(),
        }
    }

    fn dequant_k45(ty: GgmlType, b: &[u8]) -> Vec<f32> {
        let (d, dmin, scales) = (h(b, 0), h(b, 2), &b[4..16]);
        let (qh, qs) = if ty == GgmlType::Q5_K {
            (&b[16..48], &b[48..])
        } else {
            (&b[0..0], &b[16..])
        };
        let mut y = Vec::new();
        for c in 0..4 {
            let (s1, m1) = scale_min_k4(2 * c, scales);
            let (s2, m2) = scale_min_k4(2 * c + 1, scales);
            let ql = &qs[32 * c..];
            let hb = |l: usize, bit: usize| {
                if qh.is_empty() {
                    0.0
                } else {
                    ((qh[l] >> bit) & 1) as f32 * 16.0
                }
            };
            y.extend((0..32).map(|l| d * s1 * ((ql[l] & 0xF) as f32 + hb(l, 2 * c)) - dmin * m1));
            y.extend(
                (0..32).map(|l| d * s2 * ((ql[l] >> 4) as f32 + hb(l, 2 * c + 1)) - dmin * m2),
            );
        }
        y
    }

    fn dequant_q6_k(b: &[u8]) -> Vec<f32> {
        let d = h(b, 208);
        let mut y = vec![0.0; 256];
        for half in 0..2 {
            let (ql, qh, sc) = (&b[64 * half..], &b[128 + 32 * half..], &b[192 + 8 * half..]);
            for l in 0..32 {
                let is = l / 16;
                let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
                let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                let s = |k: usize| (sc[is + k] as i8) as f32;
                let y0 = 128 * half;
                y[y0 + l] = d * s(0) * q1 as f32;
                y[y0 + l + 32] = d * s(2) * q2 as f32;
                y[y0 + l + 64] = d * s(4) * q3 as f32;
                y[y0 + l + 96] = d * s(6) * q4 as f32;
            }
        }
        y
    }

    const INT_TYPES: [GgmlType; 9] = [
        GgmlType::F16,
        GgmlType::Q8_0,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
    ];

    #[test]
    fn integer_rows_decode_exactly_in_every_type() {
        let mut rng = Rng::new(7);
        let values: Vec<i8> = (0..512).map(|_| rng.below(15) as i8 - 7).collect();
        for ty in INT_TYPES {
            let mut out = Vec::new();
            assert!(encode_int_row(ty, &values, &mut out), "{ty:?}");
            let size = ty.type_size() as usize;
            assert_eq!(out.len(), values.len() / ty.block_size() as usize * size);
            let decoded: Vec<f32> = out.chunks(size).flat_map(|b| dequant(ty, b)).collect();
            let want: Vec<f32> = values.iter().map(|&v| v as f32).collect();
            assert_eq!(decoded, want, "{ty:?}");
        }
    }

    #[test]
    fn random_blocks_are_finite_and_small() {
        let mut rng = Rng::new(1);
        for ty in INT_TYPES {
            let mut buf = vec![0u8; ty.type_size() as usize * 64];
            fill_random(ty, &mut buf, &mut rng);
            let vals: Vec<f32> = buf
                .chunks(ty.type_size() as usize)
                .flat_map(|b| dequant(ty, b))
                .collect();
            assert!(
                vals.iter().all(|v| v.is_finite() && v.abs() < 0.04),
                "{ty:?}"
            );
            assert!(vals.iter().any(|v| v.abs() > 1e-4), "{ty:?} is all zero");
        }
        let mut f = vec![0u8; 4 * 100];
        fill_random(GgmlType::F32, &mut f, &mut rng);
        assert!(f
            .chunks(4)
            .all(|c| f32::from_le_bytes(c.try_into().unwrap()).abs() < 0.13));
    }

    #[test]
    fn unsupported_types_and_ragged_rows_are_refused() {
        assert!(!encode_int_row(
            GgmlType::IQ2_XXS,
            &[0; 256],
            &mut Vec::new()
        ));
        assert!(!encode_int_row(GgmlType::Q4_K, &[0; 32], &mut Vec::new()));
    }
}
