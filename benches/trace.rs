//! Criterion benchmarks of cache-only trace mode (`scenarios::formats::trace` readers and
//! `SingleLevelSim`), throughput in trace accesses (Lackey `M` lines count as two, as the
//! simulator sees them).
//!
//! - `trace/parse/{mtrace,lackey,champsim}`: reading alone, from memory, on a synthetic trace
//!   of the same 400,000 accesses in each format (Lackey with three fetch lines per access, as
//!   in real programs).
//! - `trace/simulate/<policy>`: reading the Lackey text and simulating a 32 KiB 8-way cache,
//!   for each replacement policy; `trace/simulate-ways/<ways>`: LRU with 32 KiB split into
//!   1 to 32 ways.
//! - `trace/full-system/synthetic`: the same Lackey text through the whole machine
//!   (`default` preset: MESI hierarchy, memory controller with AES-XTS, DRAM timing), as
//!   full-system `mktme-sim trace` runs it.
//! - `trace/file` and `trace/full-system-file`: the whole of `mktme-sim trace`'s work on a real
//!   trace file (open, decompress if needed, parse, simulate, final write-back), cache-only and
//!   full-system, when the environment variable `MKTME_TRACE_BENCH` names one; otherwise
//!   skipped with a note. docs/benchmarks-trace.md says how the recorded figures were made.
//!
//! Run with `cargo bench --bench trace`; filter with e.g. `cargo bench --bench trace -- parse`.

use cache_model::{CacheConfig, ReplacementPolicy, SingleLevelSim};
use cpu_model::trace_run::{TraceRunConfig, run_trace};
use cpu_model::{Machine, MachineConfig};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use scenarios::formats::trace::champsim::encode_record;
use scenarios::formats::trace::{self, Access, ChampsimReader, LackeyReader, MtraceReader};
use sim_core::RngFactory;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

/// Accesses in the synthetic traces.
const ACCESSES: usize = 400_000;

/// A deterministic access stream shaped like a program's: mostly a stack and a few arrays,
/// 8-byte accesses, a third of them writes, with some misses in a 32 KiB cache.
fn accesses() -> Vec<Access> {
    let mut state = 0x5eed_u64;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (0..ACCESSES)
        .map(|i| {
            let r = next();
            let addr = match r % 4 {
                0 | 1 => 0x1f_fefe_f000 + (r >> 8) % 4096,
                2 => 0x0040_0000 + 8 * (i as u64 % 65_536),
                _ => 0x0480_0000 + (r >> 8) % (1 << 20),
            } & !7;
            let size = 8;
            if r % 3 == 0 {
                Access::write(addr, size)
            } else {
                Access::read(addr, size)
            }
        })
        .collect()
}

fn mtrace_text(a: &[Access]) -> Vec<u8> {
    let mut out = String::from("# synthetic benchmark trace\n");
    for x in a {
        let k = if x.kind.is_write() { 'W' } else { 'R' };
        out.push_str(&format!("{k} 0x{:x} {}\n", x.addr, x.size));
    }
    out.into_bytes()
}

fn lackey_text(a: &[Access]) -> Vec<u8> {
    let mut out = String::from("==1== Lackey, an example Valgrind tool\n");
    for (i, x) in a.iter().enumerate() {
        for f in 0..3 {
            out.push_str(&format!(
                "I  {:08x},{}\n",
                0x0040_1000 + 12 * i + 4 * f,
                3 + f
            ));
        }
        let k = if x.kind.is_write() { 'S' } else { 'L' };
        out.push_str(&format!(" {k} {:08x},{}\n", x.addr, x.size));
    }
    out.into_bytes()
}

fn champsim_bytes(a: &[Access]) -> Vec<u8> {
    a.iter()
        .enumerate()
        .flat_map(|(i, x)| {
            if x.kind.is_write() {
                encode_record(i as u64, [x.addr, 0], [0; 4])
            } else {
                encode_record(i as u64, [0, 0], [x.addr, 0, 0, 0])
            }
        })
        .collect()
}

/// Drains a reader, returning a checksum so the work cannot be optimised away.
fn drain(reader: impl Iterator<Item = Result<Access, trace::TraceError>>) -> u64 {
    reader
        .map(|a| a.expect("well-formed").addr)
        .fold(0, u64::wrapping_add)
}

fn simulate(text: &[u8], config: &CacheConfig) -> u64 {
    let mut sim = SingleLevelSim::new(config.validate().unwrap(), RngFactory::new(0).fork("l1d"));
    let mut reader = LackeyReader::new(text, "bench");
    while let Some(a) = reader.next_access().expect("well-formed") {
        sim.access(a);
    }
    sim.finish().misses
}

fn bench(c: &mut Criterion) {
    let a = accesses();
    let mtrace = mtrace_text(&a);
    let lackey = lackey_text(&a);
    let champsim = champsim_bytes(&a);

    let mut g = c.benchmark_group("trace/parse");
    g.throughput(Throughput::Elements(ACCESSES as u64));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("mtrace", |b| {
        b.iter(|| drain(MtraceReader::new(black_box(&mtrace[..]), "m")))
    });
    g.bench_function("lackey", |b| {
        b.iter(|| drain(LackeyReader::new(black_box(&lackey[..]), "l")))
    });
    g.bench_function("champsim", |b| {
        b.iter(|| drain(ChampsimReader::new(black_box(&champsim[..]), "c")))
    });
    g.finish();

    let mut g = c.benchmark_group("trace/simulate");
    g.throughput(Throughput::Elements(ACCESSES as u64));
    g.measurement_time(Duration::from_secs(3));
    for policy in ReplacementPolicy::ALL {
        let config = CacheConfig {
            replacement: policy,
            ..CacheConfig::default()
        };
        g.bench_with_input(
            BenchmarkId::from_parameter(policy.name()),
            &config,
            |b, config| b.iter(|| simulate(black_box(&lackey), config)),
        );
    }
    g.finish();

    let mut g = c.benchmark_group("trace/simulate-ways");
    g.throughput(Throughput::Elements(ACCESSES as u64));
    g.measurement_time(Duration::from_secs(3));
    for ways in [1u32, 2, 4, 8, 16, 32] {
        let config = CacheConfig::with_size(32 * 1024, ways, 64).unwrap();
        g.bench_with_input(BenchmarkId::from_parameter(ways), &config, |b, config| {
            b.iter(|| simulate(black_box(&lackey), config))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("trace/full-system");
    g.throughput(Throughput::Elements(ACCESSES as u64));
    g.sample_size(10);
    g.bench_function("synthetic", |b| {
        b.iter(|| full_system(LackeyReader::new(black_box(&lackey[..]), "l")))
    });
    g.finish();

    match std::env::var_os("MKTME_TRACE_BENCH") {
        None => eprintln!(
            "trace/file: skipped; set MKTME_TRACE_BENCH to a trace file (for example a Lackey \
             trace, docs/benchmarks-trace.md) to measure it"
        ),
        Some(path) => {
            let path = Path::new(&path);
            let mut count = 0;
            for access in trace::open(path, None).expect("open MKTME_TRACE_BENCH") {
                access.expect("well-formed trace");
                count += 1;
            }
            let mut g = c.benchmark_group("trace");
            g.throughput(Throughput::Elements(count as u64));
            g.sample_size(10);
            g.bench_function("file", |b| b.iter(|| run_file(path)));
            g.bench_function("full-system-file", |b| {
                b.iter(|| full_system(trace::open(path, None).unwrap()))
            });
            g.finish();
        }
    }
}

/// What `mktme-sim trace FILE` does, minus printing.
fn run_file(path: &Path) -> u64 {
    let mut sim = SingleLevelSim::new(
        CacheConfig::default().validate().unwrap(),
        RngFactory::new(0).fork("l1d"),
    );
    let mut reader = trace::open(path, None).unwrap();
    while let Some(a) = reader.next_access().unwrap() {
        sim.access(a);
    }
    sim.finish().misses
}

/// What full-system `mktme-sim trace` does, minus printing: returns the cycles taken.
fn full_system(reader: impl Iterator<Item = Result<Access, trace::TraceError>>) -> u64 {
    let config = MachineConfig::preset("default").unwrap();
    let mut machine = Machine::new(&config, 0).unwrap();
    run_trace(&mut machine, reader, &TraceRunConfig::default())
        .expect("well-formed trace")
        .cycles
}

criterion_group!(benches, bench);
criterion_main!(benches);
