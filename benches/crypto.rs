//! Criterion benchmarks of the AES-XTS engine (`mem_ctrl::xts`).
//!
//! Every available backend, AES-XTS-128: one `encrypt_line` call per line, `encrypt_lines`
//! batches of 1, 8, 64 and 256 lines at scattered DRAM addresses, and 4 KiB pages through
//! `encrypt_run` (64 lines, each tweaked by its own address). On the detected backend also
//! decryption and AES-XTS-256. Each iteration covers a 64 KiB working set (it stays in L2), and
//! throughput is reported in plaintext bytes. Run with `cargo bench --bench crypto`; filter with
//! e.g. `cargo bench --bench crypto -- vaes-512`. `mktme-sim bench-crypto` gives the same
//! figures next to OpenSSL's.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mem_ctrl::xts::{Backend, XtsAlgorithm, XtsCipher};
use sim_core::addr::LINES_PER_PAGE;
use sim_core::{DramAddr, LINE_BYTES, LineBytes, PAGE_BYTES};
use std::hint::black_box;
use std::time::Duration;

/// Bytes per iteration.
const WORKING_SET: usize = 64 * 1024;
const LINES: usize = WORKING_SET / LINE_BYTES;

struct Workload {
    lines: Vec<LineBytes>,
    line_addrs: Vec<DramAddr>,
    page_addrs: Vec<DramAddr>,
}

/// Deterministic bytes and scattered addresses below 2^46 (SplitMix64).
fn workload() -> Workload {
    let mut state = 0x5eed_u64;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mask = (1u64 << 46) - 1;
    let lines = (0..LINES)
        .map(|_| std::array::from_fn(|_| next() as u8))
        .collect();
    let line_addrs = (0..LINES)
        .map(|_| DramAddr::new(next() & mask & !(LINE_BYTES as u64 - 1)))
        .collect();
    let page_addrs = (0..LINES / LINES_PER_PAGE)
        .map(|_| DramAddr::new(next() & mask & !(PAGE_BYTES as u64 - 1)))
        .collect();
    Workload {
        lines,
        line_addrs,
        page_addrs,
    }
}

fn cipher(backend: Backend, alg: XtsAlgorithm) -> XtsCipher {
    let n = alg.key_bytes();
    let key1: Vec<u8> = (0..n as u8).collect();
    let key2: Vec<u8> = (0..n as u8).map(|b| b ^ 0x80).collect();
    XtsCipher::with_backend(backend, alg, &key1, &key2).expect("available backend")
}

fn per_line(c: &XtsCipher, w: &mut Workload, decrypt: bool) {
    for (line, addr) in w.lines.iter_mut().zip(&w.line_addrs) {
        if decrypt {
            c.decrypt_line(black_box(*addr), line);
        } else {
            c.encrypt_line(black_box(*addr), line);
        }
    }
}

fn batches(c: &XtsCipher, w: &mut Workload, batch: usize, decrypt: bool) {
    for (lines, addrs) in w.lines.chunks_mut(batch).zip(w.line_addrs.chunks(batch)) {
        if decrypt {
            c.decrypt_lines(black_box(addrs), lines);
        } else {
            c.encrypt_lines(black_box(addrs), lines);
        }
    }
}

fn pages(c: &XtsCipher, w: &mut Workload, decrypt: bool) {
    for (page, addr) in w.lines.chunks_exact_mut(LINES_PER_PAGE).zip(&w.page_addrs) {
        if decrypt {
            c.decrypt_run(black_box(*addr), page);
        } else {
            c.encrypt_run(black_box(*addr), page);
        }
    }
}

/// The three access shapes for one cipher, under `group/<shape>/<label>`.
fn shapes(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    c: &XtsCipher,
    label: &str,
    decrypt: bool,
) {
    let mut w = workload();
    g.bench_function(BenchmarkId::new("per_line", label), |b| {
        b.iter(|| per_line(c, &mut w, decrypt))
    });
    for batch in [1usize, 8, 64, 256] {
        g.bench_function(
            BenchmarkId::new(format!("lines_batch_{batch}"), label),
            |b| b.iter(|| batches(c, &mut w, batch, decrypt)),
        );
    }
    g.bench_function(BenchmarkId::new("page_4k", label), |b| {
        b.iter(|| pages(c, &mut w, decrypt))
    });
    black_box(&w.lines);
}

fn bench_backends(crit: &mut Criterion) {
    let mut g = crit.benchmark_group("xts128_encrypt");
    g.throughput(Throughput::Bytes(WORKING_SET as u64));
    for backend in Backend::available() {
        let c = cipher(backend, XtsAlgorithm::Aes128);
        shapes(&mut g, &c, backend.name(), false);
    }
    g.finish();
}

fn bench_detected_variants(crit: &mut Criterion) {
    let backend = Backend::detect();
    let mut g = crit.benchmark_group("xts128_decrypt");
    g.throughput(Throughput::Bytes(WORKING_SET as u64));
    shapes(
        &mut g,
        &cipher(backend, XtsAlgorithm::Aes128),
        backend.name(),
        true,
    );
    g.finish();
    let mut g = crit.benchmark_group("xts256_encrypt");
    g.throughput(Throughput::Bytes(WORKING_SET as u64));
    shapes(
        &mut g,
        &cipher(backend, XtsAlgorithm::Aes256),
        backend.name(),
        false,
    );
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_backends, bench_detected_variants
}
criterion_main!(benches);
