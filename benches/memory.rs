//! Memory of a full-system trace run against the bytes it writes to DRAM: a generated trace
//! writes every line of a buffer once (64-byte writes at line-aligned addresses), through the
//! whole `default` machine as `mktme-sim trace` runs it, and the run's peak resident set size
//! (Linux `VmHWM`) is compared with the bytes of distinct lines the DIMMs end up holding.
//! docs/benchmarks.md ("Memory") has the recorded figures.
//!
//! ```text
//! cargo bench --bench memory                     # 1 GiB, sequential order, in this process
//! MKTME_MEMORY_BENCH_MIB=256 MKTME_MEMORY_BENCH_ORDER=random cargo bench --bench memory
//! MKTME_MEMORY_BENCH_WRITE=seq1g.mtrace cargo bench --bench memory    # write the trace only
//! /usr/bin/time -v target/release/mktme-sim trace seq1g.mtrace      # ... and measure the CLI
//! ```
//!
//! - `MKTME_MEMORY_BENCH_MIB`: the buffer's size (default 1024: 16,777,216 lines).
//! - `MKTME_MEMORY_BENCH_ORDER`: `sequential` (default; pages fill one after the other),
//!   `random` (every line once, in a fixed pseudo-random order: every page fills gradually), or
//!   `sparse` (one line per 4 KiB page, so the buffer's size counts pages of one line each).
//! - `MKTME_MEMORY_BENCH_WRITE=PATH`: write the trace as mtrace text (`W 0xADDR 64` lines) to
//!   PATH instead of running it; about 16 bytes per line, so 256 MiB of text for 1 GiB.
//!
//! The in-process figure includes the bench binary and the generator (an iterator: the trace
//! is never held in memory); it is given with and without the fixed base, measured first by
//! the same run on one line.

use cache_model::access::Access;
use cpu_model::trace_run::{TraceRunConfig, run_trace};
use cpu_model::{Machine, MachineConfig};
use sim_core::{LINE_BYTES, PAGE_BYTES};
use std::convert::Infallible;
use std::io::Write as _;
use std::time::Instant;

/// Where the buffer starts in the trace's (virtual) address space; first-touch translation
/// places its pages in DRAM in the order the trace touches them.
const BASE: u64 = 0x1000_0000;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Order {
    Sequential,
    Random,
    Sparse,
}

/// The trace: `lines` writes of 64 bytes, each to a distinct line.
fn trace(lines: u64, order: Order) -> impl Iterator<Item = Access> {
    assert!(
        lines.is_power_of_two(),
        "the buffer's line count must be a power of two"
    );
    let mask = lines - 1;
    (0..lines).map(move |i| {
        let addr = match order {
            Order::Sequential => BASE + i * LINE_BYTES as u64,
            // An odd multiplier permutes 0..2^k: every line once, scattered.
            Order::Random => BASE + ((i.wrapping_mul(0x9e37_79b1)) & mask) * LINE_BYTES as u64,
            // One line per page, at a varying place in the page.
            Order::Sparse => BASE + i * PAGE_BYTES as u64 + (i * 7 % 64) * LINE_BYTES as u64,
        };
        Access::write(addr, LINE_BYTES as u32)
    })
}

/// This process's peak resident set size in KiB (`VmHWM`), if the system reports it.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `lines` writes in `order` on the default machine; returns the lines the DIMMs hold
/// and the bytes the stores allocated.
fn run(lines: u64, order: Order) -> (u64, u64) {
    let config = MachineConfig::preset("default").unwrap();
    let mut machine = Machine::new(&config, 0).unwrap();
    let accesses = trace(lines, order).map(Ok::<_, Infallible>);
    let report = run_trace(&mut machine, accesses, &TraceRunConfig::default())
        .unwrap_or_else(|e| panic!("the generated trace runs: {e}"));
    assert_eq!(report.accesses, lines);
    let controllers = machine.memory().controllers();
    let touched = controllers
        .iter()
        .map(|mc| mc.store().touched_lines() as u64)
        .sum();
    let allocated = controllers
        .iter()
        .map(|mc| mc.store().allocated_bytes() as u64)
        .sum();
    (touched, allocated)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects nothing here.
    let mib: u64 = std::env::var("MKTME_MEMORY_BENCH_MIB")
        .ok()
        .map(|v| v.parse().expect("MKTME_MEMORY_BENCH_MIB: a number of MiB"))
        .unwrap_or(1024);
    let order = match std::env::var("MKTME_MEMORY_BENCH_ORDER").as_deref() {
        Err(_) | Ok("sequential") => Order::Sequential,
        Ok("random") => Order::Random,
        Ok("sparse") => Order::Sparse,
        Ok(other) => panic!("MKTME_MEMORY_BENCH_ORDER: sequential, random or sparse, not {other}"),
    };
    let lines = mib * (1 << 20) / LINE_BYTES as u64;

    if let Some(path) = std::env::var_os("MKTME_MEMORY_BENCH_WRITE") {
        let file = std::fs::File::create(&path).expect("MKTME_MEMORY_BENCH_WRITE: a writable path");
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        for a in trace(lines, order) {
            writeln!(out, "W {:#x} {}", a.addr, a.size).expect("write the trace");
        }
        out.flush().expect("write the trace");
        println!(
            "memory: wrote {lines} writes ({order:?}) to {}",
            path.to_string_lossy()
        );
        return;
    }

    // The fixed base: the same machine and run on one line.
    run(1, order);
    let base = peak_rss_kib();
    let start = Instant::now();
    let (touched, allocated) = run(lines, order);
    let seconds = start.elapsed().as_secs_f64();
    let touched_kib = touched * LINE_BYTES as u64 / 1024;
    match (base, peak_rss_kib()) {
        (Some(base), Some(peak)) => println!(
            "memory/{order:?}/{mib}MiB: {touched} distinct lines ({touched_kib} KiB) in DRAM; \
             stores allocated {} KiB; peak RSS {peak} KiB = {:.3} x the bytes touched; \
             without the fixed base ({base} KiB, the same run on one line) {:.3} x; \
             {seconds:.1} s",
            allocated / 1024,
            peak as f64 / touched_kib as f64,
            peak.saturating_sub(base) as f64 / touched_kib as f64
        ),
        _ => println!(
            "memory/{order:?}/{mib}MiB: {touched} distinct lines ({touched_kib} KiB); stores \
             allocated {} KiB; peak RSS not reported by this system; {seconds:.1} s",
            allocated / 1024
        ),
    }
}
