//! DineroIV reference counts (validation-data.md, section 1) on the strided trace: a 32 KiB,
//! 8-way, 64-byte-line LRU write-back write-allocate cache, whole trace and every phase prefix.

use cache_model::{CacheConfig, LevelStats, ReplacementPolicy, SingleLevelSim, TraceCounts};
use scenarios::formats::trace::{self, TraceFormat};
use sim_core::RngFactory;
use std::path::PathBuf;

fn strided() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/strided.mtrace.gz")
}

/// Runs the first `limit` accesses of the strided trace (all of it for `None`) through a fresh
/// cache and ends with the final write-back.
fn run(limit: Option<u64>) -> (TraceCounts, LevelStats) {
    let config = CacheConfig {
        replacement: ReplacementPolicy::Lru,
        ..CacheConfig::with_size(32 * 1024, 8, 64).unwrap()
    };
    let mut sim = SingleLevelSim::new(config.validate().unwrap(), RngFactory::new(0).fork("l1d"));
    let reader = trace::open(&strided(), None).unwrap();
    assert_eq!(reader.format(), TraceFormat::Mtrace);
    sim.run(reader.take(limit.map_or(usize::MAX, |n| n as usize)))
        .unwrap();
    let counts = *sim.trace_counts();
    (counts, sim.finish())
}

#[test]
fn whole_trace_matches_dinero() {
    let (trace, s) = run(None);
    assert_eq!(trace.accesses, 33_968);
    assert_eq!((s.accesses, s.reads, s.writes), (38_576, 31_743, 6_833));
    assert_eq!(
        (s.misses, s.read_misses, s.write_misses),
        (20_146, 15_360, 4_786)
    );
    assert_eq!(s.hits, 18_430);
    assert_eq!(s.multi_line, 4_608);
    assert_eq!(s.lines_fetched, 20_146);
    assert_eq!((s.writebacks_evicted, s.writebacks_at_end), (4_615, 171));
    assert_eq!(s.writebacks(), 4_786);
    assert_eq!(s.bytes_written(), 306_304);
    assert_eq!(s.writes_forwarded, 0);
}

/// One row of the cumulative phase table.
struct Phase {
    name: &'static str,
    lines: u64,
    reads: u64,
    writes: u64,
    read_misses: u64,
    write_misses: u64,
    multi_line: u64,
    bytes_written: u64,
}

const PHASES: [Phase; 5] = [
    Phase {
        name: "A",
        lines: 16_384,
        reads: 16_384,
        writes: 0,
        read_misses: 2_048,
        write_misses: 0,
        multi_line: 0,
        bytes_written: 0,
    },
    Phase {
        name: "B",
        lines: 17_584,
        reads: 16_384,
        writes: 1_200,
        read_misses: 2_048,
        write_misses: 1_200,
        multi_line: 0,
        bytes_written: 76_800,
    },
    Phase {
        name: "C",
        lines: 21_680,
        reads: 20_480,
        writes: 5_296,
        read_misses: 4_097,
        write_misses: 3_249,
        multi_line: 4_096,
        bytes_written: 207_936,
    },
    Phase {
        name: "D",
        lines: 29_872,
        reads: 28_672,
        writes: 5_296,
        read_misses: 12_289,
        write_misses: 3_249,
        multi_line: 4_096,
        bytes_written: 207_936,
    },
    Phase {
        name: "E",
        lines: 33_968,
        reads: 31_743,
        writes: 6_833,
        read_misses: 15_360,
        write_misses: 4_786,
        multi_line: 4_608,
        bytes_written: 306_304,
    },
];

#[test]
fn every_phase_prefix_matches_dinero() {
    for p in &PHASES {
        let (trace, s) = run(Some(p.lines));
        assert_eq!(trace.accesses, p.lines, "phase {}", p.name);
        assert_eq!(
            (s.accesses, s.reads, s.writes),
            (p.reads + p.writes, p.reads, p.writes),
            "phase {} accesses",
            p.name
        );
        assert_eq!(
            (s.misses, s.read_misses, s.write_misses),
            (
                p.read_misses + p.write_misses,
                p.read_misses,
                p.write_misses
            ),
            "phase {} misses",
            p.name
        );
        assert_eq!(s.multi_line, p.multi_line, "phase {} multi-block", p.name);
        assert_eq!(
            s.bytes_written(),
            p.bytes_written,
            "phase {} bytes written",
            p.name
        );
        assert_eq!(
            s.bytes_written(),
            64 * (s.writebacks_evicted + s.writebacks_at_end)
        );
    }
}
