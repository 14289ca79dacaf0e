//! Cycle-exact tests of the cache-control instructions (CLFLUSH, CLFLUSHOPT, CLWB, WBINVD) and
//! of the end-of-run drain: what is written back, what stays cached, when each completes.
//! Issue 4; semantics per mktme-facts.md 4.1 (EvictPage step 4).
//!
//! Latencies: L1D 4, L2 14, LLC 40, snoop 20, memory 100 (see `hierarchy_harness::tiny`). A
//! per-line flush completes when it reaches the LLC: `now + 4 + 14 + 40`, plus a snoop when
//! another core holds the line; its write-back enters the write-back buffer then.

#[path = "hierarchy_harness.rs"]
mod harness;

use cache_model::hierarchy::{CoreOp, MesiState};
use cache_model::{CacheEvent, FlushKind, RemoveCause, StoreStamp, WritebackCause};
use harness::*;
use sim_core::{CoreId, Cycle, MemOp};

const TO_LLC: u64 = 4 + 14 + 40;

fn flush_events(kind: FlushKind, issuer: u32, dirty: bool) -> Vec<(u64, CacheEvent)> {
    let a = line(0, 0x0);
    let done = 200 + TO_LLC + u64::from(issuer != 0) * 20;
    let remove_cause = RemoveCause::Flush;
    let mut v = vec![
        (
            200,
            CacheEvent::FlushStart {
                cycle: Cycle::new(200),
                core: CoreId::new(issuer),
                kind,
                line: Some(a),
            },
        ),
        (
            done,
            CacheEvent::Remove {
                cycle: Cycle::new(done),
                cache: l1(0),
                line: a,
                cause: remove_cause,
                dirty,
            },
        ),
        (
            done,
            CacheEvent::Remove {
                cycle: Cycle::new(done),
                cache: l2(0),
                line: a,
                cause: remove_cause,
                dirty,
            },
        ),
        (
            done,
            CacheEvent::Remove {
                cycle: Cycle::new(done),
                cache: LLC,
                line: a,
                cause: remove_cause,
                dirty,
            },
        ),
    ];
    if dirty {
        v.push((
            done,
            CacheEvent::MemWriteback {
                cycle: Cycle::new(done),
                line: a,
                data: bytes(&[0xaa, 0xbb]),
                // The rig's only store.
                stamp: StoreStamp::new(1),
                cause: WritebackCause::Flush,
                dirtied_by_store: true,
            },
        ));
    }
    v.push((
        done,
        CacheEvent::FlushDone {
            cycle: Cycle::new(done),
            core: CoreId::new(issuer),
            kind,
            line: Some(a),
        },
    ));
    v
}

/// Core 0 holds line A (stored to when `dirty`); `issuer` flushes it at 200.
fn flush_case(kind: FlushKind, op: CoreOp, issuer: u32, dirty: bool) {
    let mut r = Rig::new(&tiny(), 100);
    let a = pa(0, 0x0);
    if dirty {
        r.store(1, 0, a, &[0xaa, 0xbb]);
    } else {
        r.load(1, 0, a);
    }
    r.run_to(200);
    r.op(2, issuer, a, op);
    r.run_to(400);
    let expected = flush_events(kind, issuer, dirty);
    let done = expected.last().unwrap().0;
    assert_eq!(r.done(2), done);
    assert_eq!(r.response(2).data, None);
    let got: Vec<CacheEvent> = r
        .events()
        .iter()
        .filter(|e| e.cycle() >= Cycle::new(200) && e.cycle() <= Cycle::new(done))
        .cloned()
        .collect();
    let want: Vec<CacheEvent> = expected.into_iter().map(|(_, e)| e).collect();
    assert_eq!(got, want);
    // Gone from every level of every core and from the LLC.
    for cache in [l1(0), l2(0), l1(1), l2(1), LLC] {
        assert!(r.h.line(cache, a.line()).is_none(), "{cache:?}");
    }
    assert_eq!(r.mem.count(MemOp::Write), usize::from(dirty));
    // The next load goes to memory, which has the newest data.
    r.load(3, 0, a);
    r.run_to(600);
    assert_eq!(r.done(3), 400 + TO_LLC + 100);
    let expected = if dirty { bytes(&[0xaa, 0xbb]) } else { [0; 64] };
    assert_eq!(r.response(3).data, Some(expected));
    r.h.verify_invariants().unwrap();
}

#[test]
fn clflush_of_a_dirty_line_by_another_core() {
    flush_case(FlushKind::Clflush, CoreOp::Clflush, 1, true);
    assert_eq!(
        Rig::new(&tiny(), 100).stat("hierarchy.clflush"),
        0,
        "counters start at zero"
    );
}

#[test]
fn clflush_of_a_clean_line_writes_nothing() {
    flush_case(FlushKind::Clflush, CoreOp::Clflush, 0, false);
}

#[test]
fn clflushopt_by_the_owner() {
    flush_case(FlushKind::Clflushopt, CoreOp::Clflushopt, 0, true);
}

#[test]
fn clflush_counts_and_holds_an_l1d_mshr() {
    let mut config = tiny();
    config.l1d.mshr_entries = 1;
    let mut r = Rig::new(&config, 100);
    r.op(1, 0, pa(0, 0x0), CoreOp::Clflush);
    // The flush holds core 0's only L1D MSHR until it completes.
    let load = cache_model::hierarchy::CoreRequest::load(2, CoreId::new(0), pa(0, 0x1000), 8);
    assert!(r.submit(load.clone()).is_err());
    r.run_to(TO_LLC);
    assert_eq!(r.done(1), TO_LLC);
    r.go(load);
    assert_eq!(r.stat("hierarchy.clflush"), 1);
}

#[test]
fn clwb_writes_back_and_keeps_a_clean_copy() {
    let mut r = Rig::new(&tiny(), 100);
    let a = pa(0, 0x0);
    r.store(1, 0, a, &[0xaa, 0xbb]);
    r.run_to(200);
    r.op(2, 0, a, CoreOp::Clwb);
    r.run_to(300);
    assert_eq!(r.done(2), 200 + TO_LLC);
    assert_eq!(
        r.events_at(258),
        [
            CacheEvent::MemWriteback {
                cycle: Cycle::new(258),
                line: a.line(),
                data: bytes(&[0xaa, 0xbb]),
                // The rig's only store.
                stamp: StoreStamp::new(1),
                cause: WritebackCause::Clwb,
                dirtied_by_store: true,
            },
            CacheEvent::FlushDone {
                cycle: Cycle::new(258),
                core: CoreId::new(0),
                kind: FlushKind::Clwb,
                line: Some(a.line()),
            },
        ]
    );
    // M -> E: every copy stays, clean.
    let v = r.h.line(l1(0), a.line()).unwrap();
    assert_eq!((v.state, v.dirty), (Some(MesiState::Exclusive), false));
    assert!(!r.h.line(l2(0), a.line()).unwrap().dirty);
    assert!(!r.h.line(LLC, a.line()).unwrap().dirty);
    assert_eq!(r.mem.read_plain(a), bytes(&[0xaa, 0xbb]));
    // Still an L1D hit, and a store needs no upgrade (E -> M).
    r.store(3, 0, a, &[0xcc]);
    r.run_to(400);
    assert_eq!(r.done(3), 304);
    // A second CLWB of a clean line writes nothing.
    r.op(4, 1, pa(0, 0x1000), CoreOp::Clwb);
    r.run_to(500);
    assert_eq!(r.done(4), 400 + TO_LLC);
    assert_eq!(r.mem.count(MemOp::Write), 1);
    r.h.verify_invariants().unwrap();
}

#[test]
fn clwb_of_a_shared_line_writes_the_llc_copy() {
    let mut r = Rig::new(&tiny(), 100);
    let a = pa(0, 0x0);
    r.store(1, 0, a, &[7]);
    r.run_to(200);
    r.load(2, 1, a); // core 0: M -> S, the LLC copy dirty
    r.run_to(400);
    assert!(r.h.line(LLC, a.line()).unwrap().dirty);
    r.op(3, 1, a, CoreOp::Clwb);
    r.run_to(500);
    // Core 0 holds the line too: a snoop.
    assert_eq!(r.done(3), 400 + TO_LLC + 20);
    assert_eq!(r.mem.read_plain(a), bytes(&[7]));
    assert!(!r.h.line(LLC, a.line()).unwrap().dirty);
    for core in [0, 1] {
        assert_eq!(
            r.h.line(l1(core), a.line()).unwrap().state,
            Some(MesiState::Shared)
        );
    }
}

/// Core 0 stores A (0x0) and D (0x3000), core 1 stores B (0x1000) and loads C (0x2000): every
/// line in LLC set 0, in that order of ways; the private caches keep A and B dirty in L2 only.
fn four_lines(r: &mut Rig) {
    r.store(1, 0, pa(0, 0x0), &[0xa]);
    r.run_to(200);
    r.store(2, 1, pa(0, 0x1000), &[0xb]);
    r.run_to(400);
    r.load(3, 1, pa(0, 0x2000));
    r.run_to(600);
    r.store(4, 0, pa(0, 0x3000), &[0xd]);
    r.run_to(1000);
}

#[test]
fn wbinvd_writes_back_everything_and_empties_every_cache() {
    let mut r = Rig::new(&tiny(), 100);
    four_lines(&mut r);
    r.op(5, 1, pa(0, 0), CoreOp::Wbinvd);
    r.run_to(1200);
    // It reaches the LLC after the three lookups; the buffer holds all three write-backs.
    assert_eq!(r.done(5), 1000 + TO_LLC);
    let writebacks: Vec<_> = r
        .events()
        .iter()
        .filter_map(|e| match e {
            CacheEvent::MemWriteback {
                cycle, line, cause, ..
            } => Some((cycle.get(), *line, *cause)),
            _ => None,
        })
        .collect();
    assert_eq!(
        writebacks,
        [
            (1058, line(0, 0x0), WritebackCause::Wbinvd),
            (1058, line(0, 0x1000), WritebackCause::Wbinvd),
            (1058, line(0, 0x3000), WritebackCause::Wbinvd),
        ]
    );
    for (dram, byte) in [(0x0, 0xa), (0x1000, 0xb), (0x3000, 0xd)] {
        assert_eq!(r.mem.read_plain(pa(0, dram)), bytes(&[byte]));
    }
    for cache in [l1(0), l2(0), l1(1), l2(1), LLC] {
        assert!(r.h.lines(cache).is_empty(), "{cache:?} not empty");
    }
    let removed = r
        .events()
        .iter()
        .filter(|e| {
            matches!(
                e,
                CacheEvent::Remove {
                    cause: RemoveCause::Wbinvd,
                    ..
                }
            )
        })
        .count();
    // A, B, C, D in the LLC; A, D in core 0's L2 and D in its L1D; B, C in core 1's L2, C in
    // its L1D.
    assert_eq!(removed, 4 + 3 + 3);
    assert!(r.events_at(1000).contains(&CacheEvent::FlushStart {
        cycle: Cycle::new(1000),
        core: CoreId::new(1),
        kind: FlushKind::Wbinvd,
        line: None,
    }));
    assert_eq!(r.stat("hierarchy.wbinvd"), 1);
}

#[test]
fn wbinvd_completes_when_its_last_writeback_enters_the_buffer() {
    let mut config = tiny();
    config.writeback_buffer_entries = 1;
    let mut r = Rig::new(&config, 100);
    four_lines(&mut r);
    r.op(5, 1, pa(0, 0), CoreOp::Wbinvd);
    r.run_to(1200);
    // One entry: each write-back waits for the previous one to leave (the memory takes it in
    // the cycle it is made; its entry serves the walk from the next cycle). C is clean.
    assert_eq!(r.done(5), 1060);
    let writes: Vec<u64> = r
        .mem
        .log
        .iter()
        .filter(|(_, op, _)| *op == MemOp::Write)
        .map(|(c, _, _)| c.get())
        .collect();
    assert_eq!(writes, [1058, 1059, 1060]);
    r.h.verify_invariants().unwrap();
}

#[test]
fn drain_writes_back_dirty_lines_and_keeps_them_cached() {
    let mut r = Rig::new(&tiny(), 100);
    four_lines(&mut r);
    r.h.drain(r.now);
    assert!(r.h.has_work());
    r.run_idle(1000);
    let drained: Vec<_> = r
        .events()
        .iter()
        .filter_map(|e| match e {
            CacheEvent::MemWriteback {
                line,
                cause: WritebackCause::Drain,
                dirtied_by_store: true,
                ..
            } => Some(*line),
            _ => None,
        })
        .collect();
    assert_eq!(drained, [line(0, 0x0), line(0, 0x1000), line(0, 0x3000)]);
    // Nothing left the caches; nothing is dirty.
    assert_eq!(r.h.lines(LLC).len(), 4);
    for cache in [l1(0), l2(0), l1(1), l2(1), LLC] {
        for l in r.h.lines(cache) {
            assert!(!r.h.line(cache, l).unwrap().dirty);
        }
    }
    assert_eq!(
        r.h.line(l1(0), line(0, 0x3000)).unwrap().state,
        Some(MesiState::Exclusive)
    );
    // Dirty copies per level when drained: D in core 0's L1D, A in core 0's L2, B in core 1's
    // L2; none in the LLC.
    assert_eq!(r.stat("core0.l1d.writebacks_at_end"), 1);
    assert_eq!(r.stat("l2.writebacks_at_end"), 2);
    assert_eq!(r.stat("llc.writebacks_at_end"), 0);
    assert_eq!(r.mem.read_plain(pa(0, 0x3000)), bytes(&[0xd]));
}

#[test]
fn drain_walks_way_by_way_so_consecutive_writebacks_are_consecutive_lines() {
    // The LLC has 64 sets: 0x0 and 0x1000 share set 0 (ways 0 and 1, in fill order), 0x40 and
    // 0x1040 share set 1. Way by way, the drain writes way 0 of both sets first: 0x0, 0x40
    // (neighbours in DRAM), then 0x1000, 0x1040. Set by set would give 0x0, 0x1000, 0x40,
    // 0x1040, each write-back in another DRAM row than the one before.
    let mut r = Rig::new(&tiny(), 100);
    for (id, dram) in [(1, 0x0), (2, 0x1000), (3, 0x40), (4, 0x1040)] {
        r.store(id, 0, pa(0, dram), &[id as u8]);
        r.run_to(200 * id);
    }
    r.h.drain(r.now);
    r.run_idle(1000);
    let drained: Vec<_> = r
        .events()
        .iter()
        .filter_map(|e| match e {
            CacheEvent::MemWriteback {
                line,
                cause: WritebackCause::Drain,
                ..
            } => Some(*line),
            _ => None,
        })
        .collect();
    assert_eq!(
        drained,
        [
            line(0, 0x0),
            line(0, 0x40),
            line(0, 0x1000),
            line(0, 0x1040)
        ]
    );
    for (id, dram) in [(1, 0x0), (2, 0x1000), (3, 0x40), (4, 0x1040)] {
        assert_eq!(r.mem.read_plain(pa(0, dram)), bytes(&[id as u8]));
    }
}
