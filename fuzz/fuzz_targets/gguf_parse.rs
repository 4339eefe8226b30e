//! Fuzz target: any byte string given to the GGUF reader must end in a parse or a
//! `GgufError`, never a panic, and a parse must be self-consistent.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

#[allow(dead_code, unused_imports)]
#[path = "../../src/gguf/mod.rs"]
mod gguf;

fuzz_target!(|data: &[u8]| {
    match gguf::GgufFile::from_bytes(Path::new("fuzz.gguf"), data) {
        Ok(f) => {
            assert!(f.data_offset % f.alignment == 0);
            for t in &f.tensors {
                assert!(f.data_offset + t.offset + t.n_bytes <= f.file_bytes);
                assert_eq!(t.ggml_type.tensor_bytes(t.n_elements), Some(t.n_bytes));
            }
            // Derived facts must not panic on any header that parses.
            let facts = gguf::Model::from_file(f).facts();
            assert!(facts.active_bytes_per_token <= facts.tensor_bytes);
            let _ = facts.kv_bytes_per_token(gguf::GgmlType::Q8_0);
            let _ = facts.with_experts_used(u32::MAX).with_experts_used(0);
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("fuzz.gguf: "), "{msg}");
            assert!(e.offset() <= data.len() as u64, "{msg}");
        }
    }
});
