//! Criterion benchmark of the read-bandwidth kernels: GB/s of one thread over a
//! cache-resident buffer (256 KiB) and over a main-memory buffer (max(8 x LLC, 256 MiB)),
//! for the inline-assembly kernel that `bench hw` uses and the portable Rust kernel.
//! Run with `cargo bench --bench bandwidth`; criterion prints the throughput per case.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tpsbench::hardware::bandwidth::{dram_buffer_bytes, portable_sum, sum_bytes, ReadBuffer};
use tpsbench::hardware::cpu::llc_bytes;

/// A read kernel: sums every 64-bit word of a buffer.
type Kernel = fn(&[u8]) -> u64;

fn kernels(c: &mut Criterion) {
    let dram = dram_buffer_bytes(llc_bytes().unwrap_or(32 << 20));
    let mut group = c.benchmark_group("read_kernel");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2));
    for (label, bytes) in [("cache_256KiB", 256 << 10), ("memory", dram)] {
        let buffer = ReadBuffer::new(bytes);
        group.throughput(Throughput::BytesDecimal(buffer.bytes().len() as u64));
        let kernels: [(&str, Kernel); 2] = [("asm", sum_bytes), ("portable", portable_sum)];
        for (name, kernel) in kernels {
            group.bench_with_input(BenchmarkId::new(name, label), buffer.bytes(), |b, buf| {
                b.iter(|| kernel(black_box(buf)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
