//! Criterion benchmarks that each sweep one parameter (issue 13), so a change's effect shows
//! as a curve, not a single number (docs/benchmarks.md says what each measures):
//!
//! - `params/xts-threads/N`: AES-XTS-128 `encrypt_lines` in batches of 64, on N threads at
//!   once, each 64 times over its own 64 KiB (throughput: plaintext bytes of all threads);
//! - `params/dram-row-hit/P`: one DDR4-2400 controller (encryption stage on) serving 4096 reads
//!   to one bank, P percent of them to the row the previous read opened and the rest to
//!   another row (throughput: requests);
//! - `params/scenario-ops/N`: `scenarios/sweeps/workloads/stream.ron` validated and run, N
//!   lines written then 2N read (throughput: ops executed);
//! - `params/trace-outstanding/N`: 20,000 synthetic accesses on the whole default machine
//!   with N line pieces in flight (throughput: trace accesses).
//!
//! The XTS batch sizes are swept in `benches/crypto.rs` and the cache's associativity in
//! `benches/trace.rs` (`trace/simulate-ways`). Run with `cargo bench --bench params`.

use cpu_model::trace_run::{TraceRunConfig, run_trace};
use cpu_model::{Machine, MachineConfig};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mem_ctrl::dram::{DramConfig, DriverLimits, Encryption, TraceRecord};
use mem_ctrl::xts::{Backend, XtsAlgorithm, XtsCipher};
use scenarios::formats::trace::Access;
use scenarios::runner::{self, RunOptions};
use scenarios::validate::{self, Override};
use sim_core::{Cycle, DramAddr, LINE_BYTES, LineBytes, MemOp};
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

/// Lines of each thread's buffer (64 KiB: it stays in L2).
const XTS_LINES: usize = 1024;
/// Passes over the buffer per iteration: 4 MiB per thread, so that starting the threads
/// (tens of microseconds) stays a small part of an iteration.
const XTS_PASSES: usize = 64;

fn xts_threads(c: &mut Criterion) {
    let key1: Vec<u8> = (0..16).collect();
    let key2: Vec<u8> = (16..32).collect();
    let cipher = XtsCipher::with_backend(Backend::detect(), XtsAlgorithm::Aes128, &key1, &key2)
        .expect("the detected backend");
    let mut g = c.benchmark_group("params/xts-threads");
    for threads in [1usize, 2, 4] {
        let mut buffers: Vec<(Vec<LineBytes>, Vec<DramAddr>)> = (0..threads)
            .map(|t| {
                let lines = vec![[t as u8; LINE_BYTES]; XTS_LINES];
                let addrs = (0..XTS_LINES)
                    .map(|i| DramAddr::new(((t * XTS_LINES + i) * 4160) as u64 & !63))
                    .collect();
                (lines, addrs)
            })
            .collect();
        let bytes = threads * XTS_PASSES * XTS_LINES * LINE_BYTES;
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function(BenchmarkId::from_parameter(threads), |b| {
            b.iter(|| {
                std::thread::scope(|s| {
                    for (lines, addrs) in buffers.iter_mut() {
                        let cipher = &cipher;
                        s.spawn(move || {
                            for _ in 0..XTS_PASSES {
                                for (l, a) in lines.chunks_mut(64).zip(addrs.chunks(64)) {
                                    cipher.encrypt_lines(black_box(a), l);
                                }
                            }
                        });
                    }
                })
            })
        });
    }
    g.finish();
}

/// Reads to bank 0 of rank 0 of DDR4-2400 (mapping: column [12:6], bank group [14:13], bank
/// [16:15], rank [17], row [33:18]): `hit_percent` of them to the open row's next column.
fn row_hit_records(hit_percent: u64, n: u64) -> Vec<TraceRecord> {
    let mut row = 0u64;
    let mut column = 0u64;
    (0..n)
        .map(|i| {
            // Deterministic: out of every 20 reads, hit_percent / 5 stay in the row.
            if (i % 20) * 5 >= hit_percent {
                row = (row + 1) % 1024;
            }
            column = (column + 1) % 128;
            TraceRecord {
                addr: DramAddr::new((row << 18) | (column << 6)),
                op: MemOp::Read,
                cycle: Cycle::new(0),
            }
        })
        .collect()
}

fn dram_row_hit(c: &mut Criterion) {
    let config = DramConfig::preset("ddr4-2400").expect("a preset");
    let mut g = c.benchmark_group("params/dram-row-hit");
    const READS: u64 = 4096;
    g.throughput(Throughput::Elements(READS));
    for hit in [0u64, 25, 50, 75, 100] {
        let records = row_hit_records(hit, READS);
        g.bench_function(BenchmarkId::from_parameter(hit), |b| {
            b.iter(|| {
                let input = records
                    .iter()
                    .map(|r| Ok::<_, std::convert::Infallible>(*r));
                mem_ctrl::dram::run_trace(
                    &config,
                    Encryption::On,
                    input,
                    DriverLimits::for_config(&config),
                )
                .expect("the trace runs")
                .cycles
            })
        });
    }
    g.finish();
}

fn scenario_ops(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/sweeps/workloads/stream.ron");
    let mut g = c.benchmark_group("params/scenario-ops");
    g.sample_size(10);
    for lines in [256u64, 1024, 4096] {
        let set = |op: usize, n: u64| Override {
            path: format!("cores.0.ops.{op}.times"),
            value: n.to_string(),
        };
        let overrides = [set(1, lines), set(2, 2 * lines)];
        // The PCONFIG, each store and each load.
        g.throughput(Throughput::Elements(1 + 3 * lines));
        g.bench_function(BenchmarkId::from_parameter(lines), |b| {
            b.iter(|| {
                let scenario = validate::load_with(&path, &overrides).expect("valid");
                runner::run(&scenario, &RunOptions::default()).expect("runs")
            })
        });
    }
    g.finish();
}

/// A synthetic trace: a strided sweep over 1 MiB mixed with a hot 16 KiB set, a write in four.
fn accesses(n: u64) -> Vec<Access> {
    (0..n)
        .map(|i| {
            let addr = if i % 3 == 0 {
                0x10_0000 + (i * 64) % (1 << 20)
            } else {
                0x80_0000 + (i * 8) % (16 << 10)
            };
            if i % 4 == 0 {
                Access::write(addr, 8)
            } else {
                Access::read(addr, 8)
            }
        })
        .collect()
}

fn trace_outstanding(c: &mut Criterion) {
    const ACCESSES: u64 = 20_000;
    let trace = accesses(ACCESSES);
    let config = MachineConfig::preset("default").expect("a preset");
    let mut g = c.benchmark_group("params/trace-outstanding");
    g.sample_size(10);
    g.throughput(Throughput::Elements(ACCESSES));
    for outstanding in [1usize, 4, 16] {
        let run = TraceRunConfig {
            max_outstanding: outstanding,
            ..TraceRunConfig::default()
        };
        g.bench_function(BenchmarkId::from_parameter(outstanding), |b| {
            b.iter(|| {
                let mut machine = Machine::new(&config, 0).expect("a machine");
                let input = trace.iter().map(|a| Ok::<_, std::convert::Infallible>(*a));
                run_trace(&mut machine, input, &run).expect("runs").cycles
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = xts_threads, dram_row_hit, scenario_ops, trace_outstanding
}
criterion_main!(benches);
