//! Measured memory READ bandwidth: the denominator of the decode roofline
//! `decode t/s <= bandwidth / bytes read per token`.
//!
//! Honesty rules, because a fast-looking wrong figure would inflate every roofline later:
//! - The buffer is written (every page faulted, non-zero pattern) before any timing. An
//!   untouched zeroed allocation maps every page to the kernel's single zero page, which sits
//!   in cache and would report cache speed.
//! - The inner loop on x86_64 is inline assembly that loads every byte (full 32- or 16-byte
//!   vector loads into four accumulators), so the compiler can neither drop the loads nor
//!   shrink them, and it runs at the same speed in debug (opt-level 0) and release builds.
//!   Other targets use a portable Rust loop over 64-byte chunks whose sum goes through
//!   [`std::hint::black_box`]; it is honest in release but slower than memory in debug builds.
//! - Threads start together at a barrier; a pass lasts from the first thread's start to the
//!   last thread's end (the slowest thread), and the figure is the best of many passes.
//! - GB/s is decimal (10^9 bytes per second), like model file sizes in GB.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::bandwidth_centre::{centre, Pass, BLOCK};

/// Bytes one thread reads per timed pass at most. A bigger slice is read as a rotation of
/// windows of this size, one window per pass, each evicted by the rest of the buffer before
/// its next turn. A slice is never read twice within a pass: with many threads, re-reading a
/// small slice would hit the cache and report cache speed for a main-memory buffer. Short
/// passes (a few ms) matter on a shared machine: the best pass is then one that no other
/// process interrupted.
const PASS_BYTES_PER_THREAD: usize = 32 << 20;
/// Granule of the kernels: four 32-byte loads per loop iteration.
const KERNEL_BYTES: usize = 128;
/// At least this many timed passes, even when the budget is exhausted earlier.
const MIN_PASSES: usize = 3;
/// Never more passes than this, even when the budget would allow more.
const MAX_PASSES: usize = 10_000;
/// The smallest buffer that measures main memory: 256 MiB.
pub const MIN_DRAM_BUFFER_BYTES: usize = 256 << 20;
/// The DRAM buffer is at least this many times the last-level cache.
pub const LLC_MULTIPLE: usize = 8;

/// One measured figure: read bandwidth with a given number of threads.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BandwidthPoint {
    /// Number of reader threads.
    pub threads: usize,
    /// Best read bandwidth over all passes, in GB/s (10^9 bytes per second).
    pub bandwidth_gbps: f64,
    /// Median over all passes, in GB/s; far below the best when the machine is busy.
    pub median_bandwidth_gbps: f64,
    /// Number of timed passes.
    pub passes: usize,
    /// Bytes read in the best pass (all threads together).
    pub bytes_per_pass: u64,
    /// Duration of the best pass, in seconds.
    pub best_pass_secs: f64,
    /// The figure that holds still: the median rate of blocks of consecutive passes spanning
    /// at least 25 ms each, in GB/s ([`super::bandwidth_centre`]).
    pub centre_gbps: f64,
    /// Interquartile range of the block rates over `centre_gbps`, in percent.
    pub spread_pct: f64,
    /// Blocks behind `centre_gbps`.
    pub blocks: usize,
}

/// The buffer size that measures main memory rather than cache on a machine whose
/// last-level caches hold `llc_bytes` in total: max(8 x LLC, 256 MiB).
pub fn dram_buffer_bytes(llc_bytes: u64) -> usize {
    let llc = usize::try_from(llc_bytes).unwrap_or(usize::MAX);
    llc.saturating_mul(LLC_MULTIPLE).max(MIN_DRAM_BUFFER_BYTES)
}

/// A pre-faulted, 128-byte aligned buffer that bandwidth passes read; each page differs.
pub struct ReadBuffer {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl ReadBuffer {
    /// Allocates and writes `bytes` (rounded up to 128 bytes) so that every page is resident.
    pub fn new(bytes: usize) -> Self {
        let len = bytes.max(KERNEL_BYTES).div_ceil(KERNEL_BYTES) * KERNEL_BYTES;
        // vec![x; n] of u8 is one memset, which faults every page fast in any profile.
        let mut storage = vec![0x5Au8; len + KERNEL_BYTES];
        // Give every page distinct content, so that no page-merging layer (KSM in this OS
        // or in a VM host, zram) can fold the buffer into a few cached physical pages.
        for (i, page) in storage.chunks_mut(4096).enumerate() {
            let n = page.len().min(8);
            page[..n].copy_from_slice(&(i as u64).to_ne_bytes()[..n]);
        }
        let start = storage.as_ptr().align_offset(KERNEL_BYTES);
        ReadBuffer {
            storage,
            start,
            len,
        }
    }

    /// The aligned bytes that the kernels read.
    pub fn bytes(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }

    /// Measures read bandwidth with `threads` threads for about `budget`.
    pub fn measure(&self, threads: usize, budget: Duration) -> BandwidthPoint {
        measure_slices(&split(self.bytes(), threads.max(1)), budget)
    }
}

/// Measured read bandwidth in GB/s of `threads` threads sweeping a buffer of
/// `buffer_bytes`, best pass within about `budget` (allocation and page faulting excluded).
pub fn measure_read_bandwidth(buffer_bytes: usize, threads: usize, budget: Duration) -> f64 {
    ReadBuffer::new(buffer_bytes)
        .measure(threads, budget)
        .bandwidth_gbps
}

/// Splits `bytes` into `threads` contiguous slices whose lengths are multiples of the
/// kernel granule; fewer slices when the buffer is too small for that many threads.
fn split(bytes: &[u8], threads: usize) -> Vec<&[u8]> {
    let granules = bytes.len() / KERNEL_BYTES;
    let n = threads.min(granules).max(1);
    let per = (granules / n) * KERNEL_BYTES;
    bytes.chunks_exact(per.max(KERNEL_BYTES)).take(n).collect()
}

/// Runs timed passes on one thread per slice until the budget is spent.
fn measure_slices(slices: &[&[u8]], budget: Duration) -> BandwidthPoint {
    let barrier = Barrier::new(slices.len());
    let stop = AtomicBool::new(false);
    let deadline = Instant::now() + budget;
    let per_thread: Vec<Vec<PassTiming>> = std::thread::scope(|scope| {
        let handles: Vec<_> = slices
            .iter()
            .enumerate()
            .map(|(i, slice)| {
                let ctx = PassContext {
                    leader: i == 0,
                    barrier: &barrier,
                    stop: &stop,
                    deadline,
                };
                scope.spawn(move || ctx.run(slice))
            })
            .collect();
        // A worker only panics if the kernel itself is broken; carry that panic on.
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    summarize(&per_thread)
}

/// One thread's part of one pass.
#[derive(Debug, Clone, Copy)]
struct PassTiming {
    start: Instant,
    end: Instant,
    bytes: u64,
}

/// What one worker thread needs to take part in the synchronized passes.
struct PassContext<'a> {
    leader: bool,
    barrier: &'a Barrier,
    stop: &'a AtomicBool,
    deadline: Instant,
}

impl PassContext<'_> {
    /// Reads one window of `slice` per pass (rotating) and returns every pass's timing.
    fn run(&self, slice: &[u8]) -> Vec<PassTiming> {
        let windows: Vec<&[u8]> = slice.chunks(PASS_BYTES_PER_THREAD).collect();
        let mut times = Vec::new();
        for window in windows.iter().cycle() {
            self.barrier.wait();
            let start = Instant::now();
            black_box(sum_bytes(black_box(window)));
            let end = Instant::now();
            let bytes = window.len() as u64;
            times.push(PassTiming { start, end, bytes });
            if self.should_stop(times.len()) {
                break;
            }
        }
        times
    }

    /// All threads learn together whether the leader saw the budget run out.
    fn should_stop(&self, passes: usize) -> bool {
        self.barrier.wait();
        if self.leader {
            let done = passes >= MIN_PASSES && Instant::now() >= self.deadline;
            self.stop
                .store(done || passes >= MAX_PASSES, Ordering::Relaxed);
        }
        // The barrier orders the leader's store before everyone's load.
        self.barrier.wait();
        self.stop.load(Ordering::Relaxed)
    }
}

/// Best and median pass over all threads' timings: a pass lasts from the earliest start to
/// the latest end and counts the bytes of every thread.
fn summarize(per_thread: &[Vec<PassTiming>]) -> BandwidthPoint {
    let passes = per_thread.iter().map(Vec::len).min().unwrap_or(0);
    let mut rates: Vec<(f64, u64, Duration)> = (0..passes)
        .map(|p| pass_rate(per_thread, p))
        .filter(|(gbps, _, _)| gbps.is_finite())
        .collect();
    let in_order: Vec<Pass> = rates
        .iter()
        .map(|&(_, bytes, wall)| Pass { bytes, wall })
        .collect();
    let centre = centre(&in_order, BLOCK);
    rates.sort_by(|a, b| a.0.total_cmp(&b.0));
    let best = rates.last().copied().unwrap_or((0.0, 0, Duration::ZERO));
    let median = rates.get(rates.len() / 2).map_or(0.0, |r| r.0);
    BandwidthPoint {
        threads: per_thread.len(),
        bandwidth_gbps: best.0,
        median_bandwidth_gbps: median,
        passes,
        bytes_per_pass: best.1,
        best_pass_secs: best.2.as_secs_f64(),
        centre_gbps: centre.map_or(0.0, |c| c.gbps),
        spread_pct: centre.map_or(0.0, |c| c.spread_pct),
        blocks: centre.map_or(0, |c| c.blocks),
    }
}

/// (GB/s, bytes, wall time) of pass `p`: the slowest thread decides the time.
fn pass_rate(per_thread: &[Vec<PassTiming>], p: usize) -> (f64, u64, Duration) {
    let start = per_thread.iter().map(|t| t[p].start).min();
    let end = per_thread.iter().map(|t| t[p].end).max();
    let bytes: u64 = per_thread.iter().map(|t| t[p].bytes).sum();
    let wall = match (start, end) {
        (Some(s), Some(e)) => e.saturating_duration_since(s),
        _ => Duration::ZERO,
    };
    (bytes as f64 / wall.as_secs_f64() / 1e9, bytes, wall)
}

/// Reads every byte of `bytes` (length a multiple of 128, 16-byte aligned) and returns a
/// wrapping sum of its 64-bit words, so that the loads have a use.
#[inline]
pub fn sum_bytes(bytes: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        x86::sum_bytes(bytes)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        portable_sum(bytes)
    }
}

/// Portable kernel: eight independent 64-bit sums over 64-byte chunks (vectorised by the
/// optimiser in release builds).
#[inline]
pub fn portable_sum(bytes: &[u8]) -> u64 {
    let mut acc = [0u64; 8];
    let (chunks, tail) = bytes.as_chunks::<64>();
    for chunk in chunks {
        let (words, _) = chunk.as_chunks::<8>();
        for (a, w) in acc.iter_mut().zip(words) {
            *a = a.wrapping_add(u64::from_ne_bytes(*w));
        }
    }
    let (tail_words, tail_bytes) = tail.as_chunks::<8>();
    let tail_sum = tail_words
        .iter()
        .map(|w| u64::from_ne_bytes(*w))
        .chain(tail_bytes.iter().map(|b| u64::from(*b)))
        .fold(0u64, u64::wrapping_add);
    acc.iter().fold(tail_sum, |s, a| s.wrapping_add(*a))
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! Inline-assembly read kernels: the loads are written out, so no optimiser can drop
    //! or merge them, and opt-level does not change their speed.

    use std::arch::asm;

    /// Dispatches to the AVX2 kernel when the CPU and OS support it, else SSE2 (baseline).
    #[inline]
    pub fn sum_bytes(bytes: &[u8]) -> u64 {
        let aligned = (bytes.as_ptr() as usize).is_multiple_of(16);
        if bytes.len() < super::KERNEL_BYTES
            || !bytes.len().is_multiple_of(super::KERNEL_BYTES)
            || !aligned
        {
            return super::portable_sum(bytes);
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is present; the slice is non-empty, a multiple of 128 bytes and
            // 16-byte aligned, which is all the kernel reads.
            unsafe { sum_avx2(bytes.as_ptr(), bytes.len()) }
        } else {
            // SAFETY: as above; SSE2 is part of x86_64.
            unsafe { sum_sse2(bytes.as_ptr(), bytes.len()) }
        }
    }

    /// # Safety
    /// AVX2 must be available; `ptr..ptr+len` readable; `len` a non-zero multiple of 128.
    #[target_feature(enable = "avx2")]
    unsafe fn sum_avx2(ptr: *const u8, len: usize) -> u64 {
        let mut out = [0u64; 4];
        asm!(
            "vpxor ymm0, ymm0, ymm0",
            "vpxor ymm1, ymm1, ymm1",
            "vpxor ymm2, ymm2, ymm2",
            "vpxor ymm3, ymm3, ymm3",
            "2:",
            "vpaddq ymm0, ymm0, ymmword ptr [{p}]",
            "vpaddq ymm1, ymm1, ymmword ptr [{p} + 32]",
            "vpaddq ymm2, ymm2, ymmword ptr [{p} + 64]",
            "vpaddq ymm3, ymm3, ymmword ptr [{p} + 96]",
            "add {p}, 128",
            "cmp {p}, {end}",
            "jb 2b",
            "vpaddq ymm0, ymm0, ymm1",
            "vpaddq ymm2, ymm2, ymm3",
            "vpaddq ymm0, ymm0, ymm2",
            "vmovdqu ymmword ptr [{out}], ymm0",
            "vzeroupper",
            p = inout(reg) ptr => _,
            end = in(reg) ptr.add(len),
            out = in(reg) out.as_mut_ptr(),
            out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _,
            options(nostack),
        );
        out.iter().fold(0, |s, w| s.wrapping_add(*w))
    }

    /// # Safety
    /// `ptr` 16-byte aligned, `ptr..ptr+len` readable, `len` a non-zero multiple of 128.
    unsafe fn sum_sse2(ptr: *const u8, len: usize) -> u64 {
        let mut out = [0u64; 2];
        asm!(
            "pxor xmm0, xmm0",
            "pxor xmm1, xmm1",
            "pxor xmm2, xmm2",
            "pxor xmm3, xmm3",
            "2:",
            "paddq xmm0, xmmword ptr [{p}]",
            "paddq xmm1, xmmword ptr [{p} + 16]",
            "paddq xmm2, xmmword ptr [{p} + 32]",
            "paddq xmm3, xmmword ptr [{p} + 48]",
            "paddq xmm0, xmmword ptr [{p} + 64]",
            "paddq xmm1, xmmword ptr [{p} + 80]",
            "paddq xmm2, xmmword ptr [{p} + 96]",
            "paddq xmm3, xmmword ptr [{p} + 112]",
            "add {p}, 128",
            "cmp {p}, {end}",
            "jb 2b",
            "paddq xmm0, xmm1",
            "paddq xmm2, xmm3",
            "paddq xmm0, xmm2",
            "movdqu xmmword ptr [{out}], xmm0",
            p = inout(reg) ptr => _,
            end = in(reg) ptr.add(len),
            out = in(reg) out.as_mut_ptr(),
            out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
            options(nostack),
        );
        out.iter().fold(0, |s, w| s.wrapping_add(*w))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn words(n: usize) -> Vec<u8> {
            (0..n as u64)
                .flat_map(|i| (i * 7 + 1).to_ne_bytes())
                .collect()
        }

        #[test]
        fn asm_kernels_sum_every_word_like_the_portable_kernel() {
            let src = words(512);
            let expected: u64 = (0..512u64).map(|i| i * 7 + 1).sum();
            let mut buf = crate::hardware::bandwidth::ReadBuffer::new(src.len());
            buf.fill_for_test(&src);
            let p = buf.bytes();
            assert_eq!(super::super::portable_sum(p), expected);
            // SAFETY: the buffer is 128-byte aligned and 4096 bytes long.
            assert_eq!(unsafe { sum_sse2(p.as_ptr(), p.len()) }, expected);
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: as above, and AVX2 is present.
                assert_eq!(unsafe { sum_avx2(p.as_ptr(), p.len()) }, expected);
            }
            assert_eq!(sum_bytes(p), expected);
            // An unaligned or odd-length slice falls back to the portable kernel.
            assert_eq!(sum_bytes(&p[8..]), expected - 1);
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
impl ReadBuffer {
    /// Overwrites the buffer with `src` (same length) for kernel correctness tests.
    fn fill_for_test(&mut self, src: &[u8]) {
        let (start, len) = (self.start, self.len);
        self.storage[start..start + len].copy_from_slice(src);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_gives_equal_granule_multiples_and_never_empty_slices() {
        let buf = ReadBuffer::new(1 << 20);
        let parts = split(buf.bytes(), 3);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.len() == parts[0].len()));
        assert!(parts
            .iter()
            .all(|p| p.len() % KERNEL_BYTES == 0 && !p.is_empty()));
        // A buffer of two granules cannot feed eight threads.
        let tiny = ReadBuffer::new(2 * KERNEL_BYTES);
        assert_eq!(split(tiny.bytes(), 8).len(), 2);
    }

    #[test]
    fn buffer_is_aligned_rounded_and_written() {
        let buf = ReadBuffer::new(1000);
        assert_eq!(buf.bytes().len(), 1024);
        assert_eq!(buf.bytes().as_ptr() as usize % KERNEL_BYTES, 0);
        // Pattern everywhere except each page's first word, which numbers the page.
        let bytes = buf.bytes();
        assert!(bytes.iter().filter(|b| **b == 0x5A).count() >= bytes.len() - 16);
        let big = ReadBuffer::new(3 * 4096);
        let firsts: std::collections::BTreeSet<&[u8]> =
            big.storage.chunks(4096).map(|p| &p[..8]).collect();
        assert_eq!(firsts.len(), big.storage.chunks(4096).count());
    }

    #[test]
    fn dram_buffer_is_eight_llc_or_256_mib() {
        assert_eq!(dram_buffer_bytes(0), 256 << 20);
        assert_eq!(dram_buffer_bytes(32 << 20), 256 << 20);
        assert_eq!(dram_buffer_bytes(64 << 20), 512 << 20);
    }

    #[test]
    fn measurement_reports_passes_and_bytes() {
        let point = ReadBuffer::new(1 << 20).measure(2, Duration::from_millis(20));
        assert_eq!(point.threads, 2);
        assert!(point.passes >= MIN_PASSES);
        // 1 MiB split in two, each half read once per pass.
        assert_eq!(point.bytes_per_pass, 1 << 20);
        assert!(point.bandwidth_gbps > 0.0 && point.bandwidth_gbps.is_finite());
        assert!(point.median_bandwidth_gbps <= point.bandwidth_gbps);
    }

    /// With many threads each slice is small; reading it twice in one pass would hit the
    /// cache. Every byte is read at most once per pass, whatever the thread count.
    #[test]
    fn no_byte_is_read_twice_in_a_pass() {
        for threads in [1, 3, 8] {
            let buf = ReadBuffer::new(1 << 20);
            let point = buf.measure(threads, Duration::from_millis(10));
            assert!(
                point.bytes_per_pass <= buf.bytes().len() as u64,
                "{point:?}"
            );
        }
        let big = ReadBuffer::new(3 * PASS_BYTES_PER_THREAD);
        let point = big.measure(1, Duration::from_millis(10));
        assert_eq!(point.bytes_per_pass, PASS_BYTES_PER_THREAD as u64);
    }

    /// The kernel really reads memory: a cache-resident buffer reads clearly faster than one
    /// many times the last-level cache. Timing on a shared machine is noisy, so the best of
    /// a few tries must clear a modest ratio; the figures themselves go to `bench hw`.
    #[test]
    fn cache_resident_buffer_reads_faster_than_main_memory() {
        let llc = crate::hardware::cpu::llc_bytes().unwrap_or(32 << 20);
        // One thread uses one LLC instance; 1 GiB is many times any single instance and
        // keeps the test's memory use bounded on machines with many large L3s.
        let dram = ReadBuffer::new(dram_buffer_bytes(llc).min(1 << 30));
        let cache = ReadBuffer::new(256 << 10);
        let mut ratios = Vec::new();
        for _ in 0..4 {
            let fast = cache.measure(1, Duration::from_millis(150)).bandwidth_gbps;
            let slow = dram.measure(1, Duration::from_millis(300)).bandwidth_gbps;
            ratios.push(fast / slow);
            eprintln!(
                "cache {fast:.1} GB/s, memory {slow:.1} GB/s, ratio {:.2}",
                fast / slow
            );
            if fast / slow > 1.3 {
                return;
            }
        }
        panic!("cache-resident reads were not clearly faster than memory: ratios {ratios:?}");
    }
}
