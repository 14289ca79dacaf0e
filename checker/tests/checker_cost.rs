//! The coherency checker is cheap when nothing is wrong: once warmed up, it watches a
//! rule-abiding workload without allocating, and its memory stays bounded however many DRAM
//! lines stream past (issue 4; it watches millions of events).
//!
//! This file is its own test binary because it installs a counting global allocator; the
//! count is per thread, so the harness's other threads do not disturb it.

use cache_model::{
    CacheEvent, CacheId, CacheObserver, FillCause, FlushKind, Level, RemoveCause, StoreStamp,
    WritebackCause,
};
use checker::{CheckerConfig, CoherencyChecker};
use sim_core::{AddressLayout, CoreId, Cycle, DramAddr, KeyId};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct CountingAlloc;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers every operation to the system allocator; only counts calls.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// A rule-abiding stream over `lines` DRAM lines (each used once, in order): the page is used
/// through KeyID 1 (miss, store, load), flushed, then reused through KeyID 2 (miss, store,
/// load) and evicted. Among the first 10,000 lines, one in 64 instead stays cached, dirty,
/// through KeyID 3 (a fixed resident set, as a cache of fixed capacity would hold).
fn workload(layout: AddressLayout, first: u64, lines: u64) -> Vec<CacheEvent> {
    let core = CoreId::new(0);
    let levels = [
        CacheId {
            core: None,
            level: Level::Llc,
        },
        CacheId {
            core: Some(core),
            level: Level::L2,
        },
        CacheId {
            core: Some(core),
            level: Level::L1d,
        },
    ];
    let mut events = Vec::new();
    for n in first..first + lines {
        let cycle = Cycle::new(n * 100);
        let dram = DramAddr::new(0x1000_0000 + n * 64);
        let pinned = n % 64 == 0 && n < 10_000;
        let keyids: &[u16] = if pinned { &[3] } else { &[1, 2] };
        for (i, &k) in keyids.iter().enumerate() {
            let line = layout.compose(KeyId::new(k), dram).unwrap().line();
            let cycle = cycle.plus(i as u64 * 10);
            let data = [n as u8 ^ k as u8; 64];
            events.push(CacheEvent::MemRead {
                cycle,
                line,
                cause: FillCause::Store,
            });
            for cache in levels {
                events.push(CacheEvent::Fill {
                    cycle,
                    cache,
                    line,
                    cause: FillCause::Store,
                    dirty: false,
                });
            }
            // Stores numbered in order, as the hierarchy stamps them (lines come in order).
            let stamp = StoreStamp::new(n * 2 + i as u64 + 1);
            events.push(CacheEvent::Store {
                cycle,
                core,
                line,
                offset: 0,
                len: 64,
                data,
                stamp,
            });
            events.push(CacheEvent::Load {
                cycle,
                core,
                line,
                offset: 0,
                len: 8,
                data,
                from: Some(Level::L1d),
            });
            if pinned {
                continue;
            }
            let (remove, wb) = if k == 1 {
                (RemoveCause::Flush, WritebackCause::Flush)
            } else {
                (RemoveCause::Evicted, WritebackCause::Eviction)
            };
            if k == 1 {
                events.push(CacheEvent::FlushStart {
                    cycle,
                    core,
                    kind: FlushKind::Clflush,
                    line: Some(line),
                });
            }
            for cache in levels.iter().rev() {
                events.push(CacheEvent::Remove {
                    cycle,
                    cache: *cache,
                    line,
                    cause: remove,
                    dirty: true,
                });
            }
            events.push(CacheEvent::MemWriteback {
                cycle,
                line,
                data,
                stamp,
                cause: wb,
                dirtied_by_store: true,
            });
            if k == 1 {
                events.push(CacheEvent::FlushDone {
                    cycle,
                    core,
                    kind: FlushKind::Clflush,
                    line: Some(line),
                });
            }
        }
    }
    events
}

#[test]
fn steady_state_watching_allocates_nothing_and_memory_is_bounded() {
    let layout = AddressLayout::default();
    let config = CheckerConfig {
        idle_lines_max: 1024,
        ..CheckerConfig::default()
    };
    let mut checker = CoherencyChecker::new(layout, config);
    // Warm-up: enough lines for several sweeps, so that the line table, the copy set and the
    // buffer pools reach their steady size.
    let warm = workload(layout, 0, 20_000);
    let measured = workload(layout, 20_000, 20_000);
    for e in &warm {
        checker.on_event(e);
    }
    let before = allocations();
    for e in &measured {
        checker.on_event(e);
    }
    let during = allocations() - before;
    assert!(
        checker.violations().is_empty(),
        "{:?}",
        checker.violations()
    );
    assert!(
        checker.model_errors().is_empty(),
        "{:?}",
        checker.model_errors()
    );
    assert!(
        measured.len() > 400_000,
        "measured {} events",
        measured.len()
    );
    assert_eq!(
        during,
        0,
        "{during} allocations while watching {} events",
        measured.len()
    );
    // 40,000 lines went past; the table holds the pinned ones (still cached) and at most
    // `idle_lines_max` others.
    let pinned = 10_000usize.div_ceil(64);
    assert!(checker.tracked_lines() <= pinned + 1024 + 1);
    assert!(checker.forgotten_lines() > 30_000);
}
