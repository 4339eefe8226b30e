//! Instruction-set features that decide llama.cpp's CPU kernels, read with CPUID through
//! raw-cpuid (not by grepping /proc/cpuinfo). Every field exists on every target so that the
//! JSON is stable; on non-x86 targets the x86 fields are false and the Arm ones are filled in
//! from the standard library's runtime detection.

use serde::{Deserialize, Serialize};

/// CPU features relevant to inference kernels. `true` means the CPU reports the feature.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct IsaFeatures {
    /// Target architecture of this build (`x86_64`, `aarch64`, ...).
    pub arch: String,
    /// How the features were read: `cpuid`, `std_detect` or `none`.
    pub source: String,
    pub avx2: bool,
    pub fma: bool,
    pub f16c: bool,
    pub avx512f: bool,
    pub avx512bw: bool,
    pub avx512vl: bool,
    pub avx512dq: bool,
    pub avx512cd: bool,
    pub avx512_vnni: bool,
    pub avx512_bf16: bool,
    pub avx512_vbmi: bool,
    pub avx512_ifma: bool,
    pub avx_vnni: bool,
    pub amx_tile: bool,
    pub amx_int8: bool,
    pub amx_bf16: bool,
    /// Arm Advanced SIMD.
    pub neon: bool,
    /// Arm dot-product instructions (SDOT/UDOT).
    pub dotprod: bool,
    /// Arm int8 matrix multiply.
    pub i8mm: bool,
    /// Arm Scalable Vector Extension.
    pub sve: bool,
}

impl IsaFeatures {
    /// Names of the features present, in field order, for the human table.
    pub fn present(&self) -> Vec<&'static str> {
        let flags = [
            ("AVX2", self.avx2),
            ("FMA", self.fma),
            ("F16C", self.f16c),
            ("AVX512F", self.avx512f),
            ("AVX512BW", self.avx512bw),
            ("AVX512VL", self.avx512vl),
            ("AVX512DQ", self.avx512dq),
            ("AVX512CD", self.avx512cd),
            ("AVX512_VNNI", self.avx512_vnni),
            ("AVX512_BF16", self.avx512_bf16),
            ("AVX512_VBMI", self.avx512_vbmi),
            ("AVX512_IFMA", self.avx512_ifma),
            ("AVX_VNNI", self.avx_vnni),
            ("AMX_TILE", self.amx_tile),
            ("AMX_INT8", self.amx_int8),
            ("AMX_BF16", self.amx_bf16),
            ("NEON", self.neon),
            ("DOTPROD", self.dotprod),
            ("I8MM", self.i8mm),
            ("SVE", self.sve),
        ];
        flags
            .iter()
            .filter(|(_, on)| *on)
            .map(|(n, _)| *n)
            .collect()
    }

    /// AVX-512 foundation present (the guide's "2-4x faster inference" line).
    pub fn has_avx512(&self) -> bool {
        self.avx512f
    }
}

/// Reads the features of the CPU this runs on.
pub fn detect() -> IsaFeatures {
    let base = IsaFeatures {
        arch: std::env::consts::ARCH.to_string(),
        source: "none".to_string(),
        ..IsaFeatures::default()
    };
    detect_arch(base)
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn detect_arch(mut f: IsaFeatures) -> IsaFeatures {
    let cpuid = raw_cpuid::CpuId::new();
    f.source = "cpuid".to_string();
    if let Some(fi) = cpuid.get_feature_info() {
        f.fma = fi.has_fma();
        f.f16c = fi.has_f16c();
    }
    if let Some(e) = cpuid.get_extended_feature_info() {
        f.avx2 = e.has_avx2();
        f.avx512f = e.has_avx512f();
        f.avx512bw = e.has_avx512bw();
        f.avx512vl = e.has_avx512vl();
        f.avx512dq = e.has_avx512dq();
        f.avx512cd = e.has_avx512cd();
        f.avx512_vnni = e.has_avx512vnni();
        f.avx512_bf16 = e.has_avx512_bf16();
        f.avx512_vbmi = e.has_avx512vbmi();
        f.avx512_ifma = e.has_avx512_ifma();
        f.avx_vnni = e.has_avx_vnni();
        f.amx_tile = e.has_amx_tile();
        f.amx_int8 = e.has_amx_int8();
        f.amx_bf16 = e.has_amx_bf16();
    }
    f
}

#[cfg(target_arch = "aarch64")]
fn detect_arch(mut f: IsaFeatures) -> IsaFeatures {
    use std::arch::is_aarch64_feature_detected as has;
    f.source = "std_detect".to_string();
    f.neon = has!("neon");
    f.dotprod = has!("dotprod");
    f.i8mm = has!("i8mm");
    f.sve = has!("sve");
    f
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
fn detect_arch(f: IsaFeatures) -> IsaFeatures {
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn present_lists_only_set_flags_in_order() {
        let f = IsaFeatures {
            avx2: true,
            avx512f: true,
            amx_int8: true,
            ..IsaFeatures::default()
        };
        assert_eq!(f.present(), vec!["AVX2", "AVX512F", "AMX_INT8"]);
        assert!(f.has_avx512());
    }

    /// CPUID must agree with the standard library's own detection where both know a flag.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn cpuid_agrees_with_std_detection() {
        let f = detect();
        assert_eq!(f.source, "cpuid");
        assert_eq!(f.fma, std::arch::is_x86_feature_detected!("fma"));
        assert_eq!(f.f16c, std::arch::is_x86_feature_detected!("f16c"));
        // std also checks that the OS saves the registers; a CPU flag may be set without it,
        // never the other way round.
        assert!(f.avx2 >= std::arch::is_x86_feature_detected!("avx2"));
        assert!(f.avx512f >= std::arch::is_x86_feature_detected!("avx512f"));
    }
}
