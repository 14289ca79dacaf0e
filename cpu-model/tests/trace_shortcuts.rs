//! The trace core's shortcuts (`TraceRunConfig::shortcuts`: L1D hits completed ahead of their
//! cycle when nothing can happen before they complete, and no stepping of an idle machine)
//! change how much the simulator works, never what it reports. Each case runs one trace twice
//! on fresh machines, with and without them, and compares everything a run yields: the trace
//! core's report, every statistic of caches, controllers and DRAM, and the DIMMs' bytes.
//! Each case also checks that the shortcuts were taken, so that the comparison means something.

use cache_model::access::{Access, AccessKind};
use cache_model::{PrefetchConfig, PrefetchLevel, ReplacementPolicy};
use cpu_model::trace_run::{TraceRunConfig, TraceRunReport, Translation, run_trace};
use cpu_model::{Machine, MachineConfig};
use sim_core::{DramAddr, KeyId, LINE_BYTES, StatsReport};
use std::convert::Infallible;

/// A small deterministic generator (xorshift64*), so that the traces need no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What a trace looks like.
#[derive(Copy, Clone, Debug)]
struct Mix {
    accesses: usize,
    /// Out of 100: accesses to a small hot set (L1D hits), to random lines of `span` bytes
    /// (misses, write-backs), and the rest streaming through `span`.
    hot: u64,
    random: u64,
    /// Out of 100: stores.
    stores: u64,
    span: u64,
}

fn trace(seed: u64, mix: Mix) -> Vec<Access> {
    let mut rng = Rng(seed | 1);
    let hot: Vec<u64> = (0..256).map(|_| rng.below(1 << 20) & !7).collect();
    let sizes = [1u32, 2, 4, 8, 8, 8, 16, 64, 100];
    (0..mix.accesses)
        .map(|i| {
            let pick = rng.below(100);
            let addr = if pick < mix.hot {
                hot[rng.below(hot.len() as u64) as usize] + rng.below(64)
            } else if pick < mix.hot + mix.random {
                rng.below(mix.span)
            } else {
                (i as u64 * LINE_BYTES as u64) % mix.span
            };
            let kind = if rng.below(100) < mix.stores {
                AccessKind::Write
            } else {
                AccessKind::Read
            };
            Access {
                kind,
                addr,
                size: sizes[rng.below(sizes.len() as u64) as usize],
            }
        })
        .collect()
}

/// Everything a run yields.
#[derive(PartialEq, Debug)]
struct Outcome {
    report: TraceRunReport,
    stats: StatsReport,
    /// The DIMMs' bytes of the first lines of DRAM (where the first-touch frames lie).
    dimms: Vec<[u8; LINE_BYTES]>,
}

fn run(config: &MachineConfig, accesses: &[Access], run_config: &TraceRunConfig) -> Outcome {
    let mut machine = Machine::new(config, 7).unwrap();
    let trace = accesses.iter().map(|&a| Ok::<_, Infallible>(a));
    let report = run_trace(&mut machine, trace, run_config).unwrap();
    let mut stats = StatsReport::new();
    machine.report_stats(&mut stats);
    let dimms = (0..8192u64)
        .map(|line| {
            machine
                .memory()
                .dimm_line(DramAddr::new(line * LINE_BYTES as u64))
        })
        .collect();
    Outcome {
        report,
        stats,
        dimms,
    }
}

/// Runs `accesses` with and without the shortcuts; the outcomes must be equal, and the
/// shortcuts must have completed at least `min_at_once` pieces.
fn check(
    config: &MachineConfig,
    accesses: &[Access],
    run_config: TraceRunConfig,
    min_at_once: u64,
) {
    let fast = run(config, accesses, &run_config);
    let exact = run(
        config,
        accesses,
        &TraceRunConfig {
            shortcuts: false,
            ..run_config
        },
    );
    assert_eq!(exact.report.pieces_at_once, 0);
    assert!(
        fast.report.pieces_at_once >= min_at_once,
        "only {} of {} pieces took the shortcut",
        fast.report.pieces_at_once,
        fast.report.pieces
    );
    let fast = Outcome {
        report: TraceRunReport {
            pieces_at_once: 0,
            ..fast.report
        },
        ..fast
    };
    assert_eq!(fast.report, exact.report, "{run_config:?}");
    assert_eq!(fast.stats, exact.stats, "{run_config:?}");
    assert!(
        fast.dimms == exact.dimms,
        "DIMM contents differ ({run_config:?})"
    );
}

const HIT_HEAVY: Mix = Mix {
    accesses: 20_000,
    hot: 97,
    random: 1,
    stores: 35,
    span: 16 << 20,
};

const MISS_HEAVY: Mix = Mix {
    accesses: 12_000,
    hot: 40,
    random: 40,
    stores: 40,
    span: 32 << 20,
};

#[test]
fn shortcuts_change_nothing_on_the_default_machine_at_any_window() {
    let config = MachineConfig::preset("default").unwrap();
    // Of about 27,000 pieces, 4,500 to 18,000 take the shortcut when hits dominate, 140 to
    // 1,100 when misses keep memory busy.
    for (seed, mix, at_once) in [(1, HIT_HEAVY, 2700), (2, MISS_HEAVY, 100)] {
        let accesses = trace(seed, mix);
        for outstanding in [1, 2, 3, 8, 32] {
            let run_config = TraceRunConfig {
                max_outstanding: outstanding,
                ..TraceRunConfig::default()
            };
            check(&config, &accesses, run_config, at_once);
        }
    }
}

#[test]
fn shortcuts_change_nothing_on_the_server_machine_and_under_a_keyid() {
    let config = MachineConfig::preset("server").unwrap();
    let accesses = trace(3, MISS_HEAVY);
    let run_config = TraceRunConfig {
        keyid: KeyId::new(5),
        ..TraceRunConfig::default()
    };
    check(&config, &accesses, run_config, 100);
    let run_config = TraceRunConfig {
        translation: Translation::Identity,
        ..TraceRunConfig::default()
    };
    check(&config, &accesses, run_config, 100);
}

#[test]
fn shortcuts_change_nothing_when_tiny_caches_keep_memory_busy() {
    // 1 KiB L1D, 4 KiB L2, 16 KiB LLC: most accesses miss, the write-back buffer and the
    // controller's queues fill, and hits land among refills, write-backs and refusals.
    let mut config = MachineConfig::preset("default").unwrap();
    let caches = &mut config.caches;
    for (cache, size, ways) in [
        (&mut caches.l1d.cache, 1024, 2),
        (&mut caches.l2.cache, 4096, 4),
        (&mut caches.llc.cache, 16 * 1024, 4),
    ] {
        cache.size_bytes = size;
        cache.ways = ways;
        cache.sets = size / (u64::from(ways) * LINE_BYTES as u64);
    }
    let every_window = |config: &MachineConfig, accesses: &[Access]| {
        for outstanding in [1, 8, 32] {
            let run_config = TraceRunConfig {
                max_outstanding: outstanding,
                ..TraceRunConfig::default()
            };
            check(config, accesses, run_config, 10);
        }
    };
    every_window(&config, &trace(4, MISS_HEAVY));
    // Under LRU a fill never evicts a line just hit (it is the most recent); under random
    // replacement it may, and the hit must then start over as it would have at its cycle.
    for cache in [&mut config.caches.l1d.cache, &mut config.caches.l2.cache] {
        cache.replacement = ReplacementPolicy::Random;
    }
    every_window(&config, &trace(6, HIT_HEAVY));
}

#[test]
fn prefetchers_that_train_on_l1d_hits_keep_every_hit_on_the_stepped_path() {
    // A hit that trains may schedule prefetches: the shortcut stands aside (every piece takes
    // the usual path), and the run is the same.
    let mut config = MachineConfig::preset("default").unwrap();
    config.caches.prefetch = PrefetchConfig {
        next_line: true,
        stride: true,
        train_on: PrefetchLevel::L1d,
        fill_into: PrefetchLevel::L1d,
        ..PrefetchConfig::OFF
    };
    let accesses = trace(5, HIT_HEAVY);
    check(&config, &accesses, TraceRunConfig::default(), 0);
    let fast = run(&config, &accesses, &TraceRunConfig::default());
    assert_eq!(fast.report.pieces_at_once, 0);
}
