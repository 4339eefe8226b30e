//! Criterion benchmark of the GGUF header reader: a model with 10^5 tensors and a
//! 150k-token vocabulary (tokens, scores and token types, as real tokenizers store them),
//! written with `gguf::Writer` into a temporary directory with tiny tensors.

use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tpsbench::gguf::{GgmlType, GgufFile, Model, TensorInfo, Value, ValueType, Writer};

const N_TENSORS: u64 = 100_000;
const N_VOCAB: u64 = 150_000;

fn zeros(_: usize, info: &TensorInfo, w: &mut dyn Write) -> io::Result<()> {
    io::copy(&mut io::repeat(0).take(info.n_bytes), w).map(|_| ())
}

fn write_model(path: &Path) -> u64 {
    let mut w = Writer::new();
    w.metadata("general.architecture", Value::String("llama".into()));
    w.metadata("llama.block_count", Value::U32((N_TENSORS / 10) as u32));
    let tokens = (0..N_VOCAB)
        .map(|i| Value::String(format!("Ġtoken{i}")))
        .collect();
    w.metadata(
        "tokenizer.ggml.tokens",
        Value::Array(ValueType::String, tokens),
    );
    let scores = (0..N_VOCAB).map(|i| Value::F32(-(i as f32))).collect();
    w.metadata(
        "tokenizer.ggml.scores",
        Value::Array(ValueType::F32, scores),
    );
    let types = (0..N_VOCAB).map(|_| Value::I32(1)).collect();
    w.metadata(
        "tokenizer.ggml.token_type",
        Value::Array(ValueType::I32, types),
    );
    for i in 0..N_TENSORS {
        let name = format!("blk.{}.tensor_{}.weight", i / 10, i % 10);
        w.tensor(&name, &[32, 1], GgmlType::Q8_0);
    }
    let file = BufWriter::new(std::fs::File::create(path).unwrap());
    w.write_to(file, zeros).unwrap()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big-header.gguf");
    let file_bytes = write_model(&path);
    let header_bytes = GgufFile::open(&path).unwrap().data_offset;
    eprintln!("model: {file_bytes} bytes, header {header_bytes} bytes");
    let mut group = c.benchmark_group("gguf_header");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("open_1e5_tensors_150k_vocab", |b| {
        b.iter(|| GgufFile::open(&path).unwrap())
    });
    group.bench_function("model_facts_1e5_tensors_150k_vocab", |b| {
        b.iter(|| Model::open(&path).unwrap().facts())
    });
    group.finish();
    report_cpu_time(&path);
}

/// CPU time per open, next to criterion's wall time: on a shared machine the two differ.
fn report_cpu_time(path: &Path) {
    use nix::sys::resource::{getrusage, UsageWho};
    let cpu = || {
        let u = getrusage(UsageWho::RUSAGE_SELF).unwrap();
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 * 1e-6;
        t(u.user_time()) + t(u.system_time())
    };
    const N: u32 = 20;
    let (start_cpu, start_wall) = (cpu(), std::time::Instant::now());
    for _ in 0..N {
        criterion::black_box(GgufFile::open(path).unwrap());
    }
    let cpu_ms = (cpu() - start_cpu) * 1e3 / f64::from(N);
    let wall_ms = start_wall.elapsed().as_secs_f64() * 1e3 / f64::from(N);
    eprintln!("GgufFile::open: {cpu_ms:.1} ms CPU, {wall_ms:.1} ms wall per open");
}

criterion_group!(benches, bench);
criterion_main!(benches);
