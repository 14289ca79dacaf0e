//! KeyID aliasing in the hierarchy (mktme-facts.md 4.1): caches tag lines with the full
//! physical address, so one DRAM line under two KeyIDs is two unrelated lines; hardware keeps
//! no coherence between them, unless the `evict_other_keyids` alias policy models the eviction
//! flows Intel's TDX guidance says some processors have. Issue 4.

#[path = "hierarchy_harness.rs"]
mod harness;

use cache_model::hierarchy::{AliasPolicy, CoreOp, HierarchyConfig, MesiState};
use cache_model::{CacheEvent, FillCause, RemoveCause, StoreStamp, WritebackCause};
use harness::*;
use sim_core::{Cycle, MemOp};

const TO_LLC: u64 = 4 + 14 + 40;

/// Private caches big enough to hold both aliases (they share a set: the set index comes from
/// the DRAM bits).
fn roomy() -> HierarchyConfig {
    HierarchyConfig {
        l1d: level(4, 2, 4, 4),
        l2: level(8, 4, 14, 4),
        ..tiny()
    }
}

#[test]
fn two_keyids_are_two_lines() {
    let mut r = Rig::new(&roomy(), 100);
    let (a1, a2) = (pa(1, 0x4000), pa(2, 0x4000));
    r.store(1, 0, a1, &[1, 2, 3]);
    r.run_to(200);
    // The same DRAM line through KeyID 2 misses, and does not see the store through KeyID 1
    // (still cached, dirty, in core 0).
    r.load(2, 0, a2);
    r.run_to(400);
    assert_eq!(r.done(2), 200 + TO_LLC + 100);
    assert_eq!(r.response(2).data, Some(untouched(a2)));
    assert_eq!(r.mem.count(MemOp::Read), 2);
    // Both aliases can be dirty at once.
    r.store(3, 0, a2, &[9]);
    r.run_to(500);
    assert_eq!(r.done(3), 404, "E -> M: an L1D hit");
    for (a, first) in [(a1, 1), (a2, 9)] {
        let v = r.h.line(l1(0), a.line()).unwrap();
        assert_eq!(
            (v.state, v.dirty, v.data[0]),
            (Some(MesiState::Modified), true, first)
        );
    }
    // Another core reading through KeyID 1 snoops only that alias.
    r.load(4, 1, a1);
    r.run_to(600);
    assert_eq!(r.response(4).data.unwrap()[..3], [1, 2, 3]);
    assert_eq!(
        r.h.line(l1(0), a1.line()).unwrap().state,
        Some(MesiState::Shared)
    );
    assert_eq!(
        r.h.line(l1(0), a2.line()).unwrap().state,
        Some(MesiState::Modified)
    );
    // The drain writes both back: two write-backs of one DRAM line, the later one wins in
    // memory (the data loss the coherency checker is there to flag).
    r.h.drain(r.now);
    r.run_idle(1000);
    let writebacks: Vec<(sim_core::LineAddr, u8)> = r
        .events()
        .iter()
        .filter_map(|e| match e {
            CacheEvent::MemWriteback { line, data, .. } => Some((*line, data[0])),
            _ => None,
        })
        .collect();
    assert_eq!(writebacks.len(), 2);
    assert!(writebacks.contains(&(a1.line(), 1)) && writebacks.contains(&(a2.line(), 9)));
    let (last, value) = *writebacks.last().unwrap();
    let through_last = if last == a1.line() { a1 } else { a2 };
    assert_eq!(r.mem.read_plain(through_last)[0], value);
    r.h.verify_invariants().unwrap();
}

#[test]
fn clflush_of_one_alias_leaves_the_other() {
    let mut r = Rig::new(&roomy(), 100);
    let (a1, a2) = (pa(1, 0x4000), pa(2, 0x4000));
    r.store(1, 0, a1, &[0x11]);
    r.store(2, 1, a2, &[0x22]);
    r.run_to(200);
    r.op(3, 0, a1, CoreOp::Clflush);
    r.run_to(300);
    assert_eq!(r.done(3), 200 + TO_LLC);
    for cache in [l1(0), l2(0), LLC] {
        assert!(r.h.line(cache, a1.line()).is_none());
    }
    let v = r.h.line(l1(1), a2.line()).unwrap();
    assert_eq!(
        (v.state, v.dirty, v.data[0]),
        (Some(MesiState::Modified), true, 0x22)
    );
    assert!(r.h.line(LLC, a2.line()).is_some());
    assert_eq!(r.mem.read_plain(a1), with_prefix(untouched(a1), &[0x11]));
    assert_eq!(r.mem.count(MemOp::Write), 1);
}

#[test]
fn evict_other_keyids_evicts_and_writes_back_the_other_alias() {
    let config = HierarchyConfig {
        alias_policy: AliasPolicy::EvictOtherKeyIds,
        ..roomy()
    };
    let mut r = Rig::new(&config, 100);
    let (a1, a2) = (pa(1, 0x4000), pa(2, 0x4000));
    r.store(1, 0, a1, &[0x11, 0x12]);
    r.run_to(200);
    r.load(2, 1, a2);
    r.run_to(400);
    let fill = 200 + TO_LLC + 100;
    assert_eq!(r.done(2), fill);
    let events = r.events_at(fill);
    let alias_removals: Vec<_> = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                CacheEvent::Remove {
                    cause: RemoveCause::AliasEviction,
                    ..
                }
            )
        })
        .cloned()
        .collect();
    assert_eq!(
        alias_removals,
        [l1(0), l2(0), LLC].map(|cache| CacheEvent::Remove {
            cycle: Cycle::new(fill),
            cache,
            line: a1.line(),
            cause: RemoveCause::AliasEviction,
            dirty: true,
        })
    );
    // Written back before the KeyID-2 line is installed.
    let wb = events
        .iter()
        .position(|e| {
            *e == CacheEvent::MemWriteback {
                cycle: Cycle::new(fill),
                line: a1.line(),
                data: with_prefix(untouched(a1), &[0x11, 0x12]),
                // The rig's only store.
                stamp: StoreStamp::new(1),
                cause: WritebackCause::AliasEviction,
                dirtied_by_store: true,
            }
        })
        .expect("the alias is written back");
    let installed = events
        .iter()
        .position(|e| {
            *e == CacheEvent::Fill {
                cycle: Cycle::new(fill),
                cache: LLC,
                line: a2.line(),
                cause: FillCause::Load,
                dirty: false,
            }
        })
        .unwrap();
    assert!(wb < installed);
    // KeyID 2's read left at 258, before the write-back: it read the old DRAM contents.
    assert_eq!(r.response(2).data, Some(untouched(a2)));
    assert_eq!(
        r.mem.read_plain(a1),
        with_prefix(untouched(a1), &[0x11, 0x12])
    );
    assert_ne!(
        r.mem.read_plain(a2),
        with_prefix(untouched(a1), &[0x11, 0x12]),
        "another key, other bytes"
    );
    assert_eq!(r.stat("hierarchy.alias_evictions"), 1);
    r.h.verify_invariants().unwrap();

    // Back through KeyID 1: the clean KeyID-2 copy goes, without a write-back.
    r.load(3, 0, a1);
    r.run_to(600);
    assert_eq!(
        r.response(3).data,
        Some(with_prefix(untouched(a1), &[0x11, 0x12]))
    );
    assert!(r.h.line(l1(1), a2.line()).is_none());
    assert_eq!(r.mem.count(MemOp::Write), 1);
    assert_eq!(r.stat("hierarchy.alias_evictions"), 2);
    r.h.verify_invariants().unwrap();
}

#[test]
fn without_the_policy_nothing_is_evicted() {
    let mut r = Rig::new(&roomy(), 100);
    let (a1, a2) = (pa(1, 0x4000), pa(2, 0x4000));
    r.store(1, 0, a1, &[0x11]);
    r.run_to(200);
    r.load(2, 1, a2);
    r.run_to(400);
    assert!(r.h.line(l1(0), a1.line()).unwrap().dirty);
    assert!(r.h.line(l1(1), a2.line()).is_some());
    assert_eq!(r.mem.count(MemOp::Write), 0);
    assert!(r.events().iter().all(|e| !matches!(
        e,
        CacheEvent::Remove {
            cause: RemoveCause::AliasEviction,
            ..
        }
    )));
}
