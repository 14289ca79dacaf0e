//! Cycle-exact tests of the hierarchy between mock neighbours: hit latency per level, snoops,
//! MSHR merging and back-pressure, write-backs (inner to outer, to memory, write-back buffer
//! full) and back-invalidation by an inclusive LLC. Issue 4.
//!
//! Latencies: L1D 4, L2 14, LLC 40, snoop 20, memory 100 (see `hierarchy_harness::tiny`).

#[path = "hierarchy_harness.rs"]
mod harness;

use cache_model::hierarchy::{CoreRequest, MesiState};
use cache_model::{CacheEvent, FillCause, Level, RemoveCause, StoreStamp, WritebackCause};
use harness::*;
use sim_core::{CoreId, Cycle, MemOp};

const MEM: u64 = 100;
/// L1D + L2 + LLC lookups.
const TO_LLC: u64 = 4 + 14 + 40;

#[test]
fn hit_latency_per_level() {
    let mut r = Rig::new(&tiny(), MEM);
    let (a, b, c) = (pa(0, 0x0), pa(0, 0x40), pa(0, 0x80));

    // Off chip: the read leaves after the three lookups, the load completes when memory answers.
    r.load(1, 0, a);
    r.run_to(TO_LLC - 1);
    assert_eq!(r.mem.count(MemOp::Read), 0);
    r.run_to(TO_LLC);
    assert_eq!(r.mem.log, [(Cycle::new(TO_LLC), MemOp::Read, a)]);
    r.run_to(300);
    assert_eq!(r.done(1), TO_LLC + MEM);
    assert_eq!(r.response(1).from, None);

    // L1D hit.
    r.load(2, 0, a);
    r.run_to(400);
    assert_eq!((r.done(2), r.response(2).from), (304, Some(Level::L1d)));

    // B takes the L1D's only line; A stays in the L2.
    r.load(3, 0, b);
    r.run_to(600);
    assert_eq!(r.done(3), 400 + TO_LLC + MEM);

    // L2 hit.
    r.load(4, 0, a);
    r.run_to(700);
    assert_eq!((r.done(4), r.response(4).from), (618, Some(Level::L2)));

    // C evicts B (least recently used) from the L2; B stays in the inclusive LLC alone.
    r.load(5, 0, c);
    r.run_to(900);
    assert_eq!(r.h.sharers(b.line()), []);
    assert!(r.h.line(LLC, b.line()).is_some());

    // LLC hit, no other core to snoop.
    r.load(6, 0, b);
    r.run_to(1000);
    assert_eq!(
        (r.done(6), r.response(6).from),
        (900 + TO_LLC, Some(Level::Llc))
    );

    // LLC hit with a snoop: core 0 holds B in E, core 1 reads it.
    r.load(7, 1, b);
    r.run_to(1100);
    assert_eq!(
        (r.done(7), r.response(7).from),
        (1000 + TO_LLC + 20, Some(Level::Llc))
    );
    assert_eq!(
        r.h.line(l1(0), b.line()).unwrap().state,
        Some(MesiState::Shared)
    );
    assert_eq!(
        r.h.line(l1(1), b.line()).unwrap().state,
        Some(MesiState::Shared)
    );

    // A store to a shared line upgrades through the directory, snooping the other sharer.
    r.store(8, 0, b, &[0x5a]);
    r.run_to(1200);
    assert_eq!(r.done(8), 1100 + TO_LLC + 20);
    assert_eq!(
        r.h.line(l1(0), b.line()).unwrap().state,
        Some(MesiState::Modified)
    );
    assert!(r.h.line(l1(1), b.line()).is_none());
    assert!(r.h.line(l2(1), b.line()).is_none());
    let invalidated: Vec<_> = r
        .events_at(1100 + TO_LLC + 20)
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                CacheEvent::Remove {
                    cause: RemoveCause::CoherenceInvalidation,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(invalidated.len(), 2, "core 1's L1D and L2 copies");

    // A store to an E line turns it M silently: an L1D hit.
    let d = pa(0, 0xc0);
    r.load(9, 1, d);
    r.run_to(1500);
    assert_eq!(
        r.h.line(l1(1), d.line()).unwrap().state,
        Some(MesiState::Exclusive)
    );
    r.store(10, 1, d, &[1]);
    r.run_to(1600);
    assert_eq!(r.done(10), 1504);
    assert_eq!(
        r.h.line(l1(1), d.line()).unwrap().state,
        Some(MesiState::Modified)
    );
    r.h.verify_invariants().unwrap();

    let s = r.stats();
    assert_eq!(s.get_count("core0.l1d.accesses"), Some(7));
    assert_eq!(s.get_count("core0.l1d.hits"), Some(1));
    assert_eq!(s.get_count("core0.l2.hits"), Some(1));
    assert_eq!(s.get_count("llc.hits"), Some(3));
    assert_eq!(s.get_count("llc.misses"), Some(4));
    assert_eq!(s.get_count("llc.snoops"), Some(2));
    assert_eq!(s.get_count("core1.l2.coherence_invalidations"), Some(1));
}

#[test]
fn snoop_of_a_modified_line_supplies_the_stored_data() {
    let mut r = Rig::new(&tiny(), MEM);
    let a = pa(3, 0x2000);
    r.store(1, 0, a, &[9, 8, 7]);
    r.run_to(200);
    r.load(2, 1, a);
    r.run_to(300);
    assert_eq!(r.done(2), 200 + TO_LLC + 20);
    assert_eq!(r.response(2).data.unwrap()[..3], [9, 8, 7]);
    // M -> S: the data went to the LLC, which is now dirty; both cores share clean copies.
    let llc = r.h.line(LLC, a.line()).unwrap();
    assert!(llc.dirty);
    assert_eq!(llc.data[..3], [9, 8, 7]);
    for core in [0, 1] {
        let v = r.h.line(l1(core), a.line()).unwrap();
        assert_eq!((v.state, v.dirty), (Some(MesiState::Shared), false));
    }
    // Nothing went to memory.
    assert_eq!(r.mem.count(MemOp::Write), 0);
    r.h.verify_invariants().unwrap();
}

#[test]
fn mshr_merging() {
    let mut r = Rig::new(&tiny(), MEM);
    let a = pa(0, 0x3000);
    r.load(1, 0, a);
    r.run_to(1);
    // Same core, same line: merges at the L1D MSHR.
    r.go(CoreRequest::load(2, CoreId::new(0), pa(0, 0x3008), 8));
    r.run_to(2);
    // Another core: merges at the LLC MSHR.
    r.load(3, 1, a);
    r.run_to(10);
    // A store of core 0 merges too, and makes the fill a read for ownership.
    r.store(4, 0, pa(0, 0x3010), &[0xee]);
    r.run_to(300);
    assert_eq!(r.mem.count(MemOp::Read), 1, "one read for four requests");
    for id in 1..=4 {
        assert_eq!(r.done(id), TO_LLC + MEM, "request {id}");
    }
    assert_eq!(r.response(2).from, None);
    assert_eq!(r.response(3).from, None);
    // Core 0 opened the LLC MSHR, so it is served first, and the store merged into its L1D
    // entry made that fill a read for ownership: core 0's three requests complete (in order),
    // then core 1's merged load downgrades core 0's M copy and sees the store.
    let order: Vec<u64> = r.responses.iter().map(|x| x.id).collect();
    assert_eq!(order, [1, 2, 4, 3]);
    assert_eq!(
        r.response(3).data.unwrap()[0x10],
        0xee,
        "core 1 sees core 0's store"
    );
    assert_eq!(r.stat("core0.l1d.mshr_merges"), 2);
    assert_eq!(r.stat("core1.llc.mshr_merges"), 1);
    assert_eq!(r.stat("llc.mshr_merges"), 1);
    r.h.verify_invariants().unwrap();
}

#[test]
fn mshr_full_is_back_pressure() {
    let mut config = tiny();
    config.l1d = level(1, 1, 4, 2);
    config.llc.mshr_entries = 3;
    let mut r = Rig::new(&config, MEM);
    r.load(1, 0, pa(0, 0x0));
    r.load(2, 0, pa(0, 0x1000));
    // The L1D has two MSHRs: a third line is refused, unchanged.
    let third = CoreRequest::load(3, CoreId::new(0), pa(0, 0x2000), 8);
    assert_eq!(r.submit(third.clone()), Err(third.clone()));
    assert_eq!(r.stat("core0.l1d.mshr_full"), 1);
    // A second request for a line already outstanding merges: no new MSHR needed.
    r.load(4, 0, pa(0, 0x1020));
    // The other core has its own L1D MSHRs, and the LLC has room for one more line.
    r.load(5, 1, pa(0, 0x4000));
    let sixth = CoreRequest::load(6, CoreId::new(1), pa(0, 0x5000), 8);
    assert_eq!(r.submit(sixth.clone()), Err(sixth));
    assert_eq!(r.stat("core1.llc.mshr_full"), 1);
    // Core 0's MSHR frees when its first fill completes; the retry goes through then.
    r.run_to(TO_LLC + MEM - 1);
    assert_eq!(r.submit(third.clone()), Err(third.clone()));
    r.run_to(TO_LLC + MEM);
    assert_eq!(r.done(1), TO_LLC + MEM);
    r.go(third);
    r.run_to(1000);
    assert_eq!(r.done(3), 2 * (TO_LLC + MEM));
    assert_eq!(r.stat("l1d.mshr_full"), 2);
}

#[test]
fn writebacks_inner_to_outer_are_posted() {
    let mut r = Rig::new(&tiny(), MEM);
    let (a, b, c) = (pa(0, 0x0), pa(0, 0x40), pa(0, 0x80));
    r.store(1, 0, a, &[0xaa]);
    r.run_to(200);
    let v = r.h.line(l1(0), a.line()).unwrap();
    assert_eq!((v.state, v.dirty), (Some(MesiState::Modified), true));
    assert!(!r.h.line(l2(0), a.line()).unwrap().dirty);

    // B evicts A from the L1D: A's data goes into the L2 copy, at no cost to B.
    r.load(2, 0, b);
    r.run_to(400);
    assert_eq!(r.done(2), 200 + TO_LLC + MEM);
    let l2a = r.h.line(l2(0), a.line()).unwrap();
    assert_eq!(
        (l2a.state, l2a.dirty, l2a.data[0]),
        (Some(MesiState::Modified), true, 0xaa)
    );
    assert!(r.events_at(358).contains(&CacheEvent::Remove {
        cycle: Cycle::new(358),
        cache: l1(0),
        line: a.line(),
        cause: RemoveCause::Evicted,
        dirty: true,
    }));

    // C evicts A from the L2 (A is least recently used): into the LLC, still nothing to memory.
    r.load(3, 0, c);
    r.run_to(600);
    assert_eq!(r.done(3), 400 + TO_LLC + MEM);
    assert!(r.h.line(l2(0), a.line()).is_none());
    let llc = r.h.line(LLC, a.line()).unwrap();
    assert_eq!((llc.dirty, llc.data[0]), (true, 0xaa));
    assert_eq!(r.mem.count(MemOp::Write), 0);
    assert_eq!(r.stat("core0.l1d.writebacks_evicted"), 1);
    assert_eq!(r.stat("core0.l2.writebacks_evicted"), 1);
    r.h.verify_invariants().unwrap();
}

/// One line of LLC, write-back buffer of one entry.
fn one_line_llc() -> cache_model::hierarchy::HierarchyConfig {
    let mut config = tiny();
    config.llc = level(1, 1, 40, 8);
    config.writeback_buffer_entries = 1;
    config
}

#[test]
fn dirty_llc_victims_go_to_memory_and_back_invalidate() {
    let mut r = Rig::new(&one_line_llc(), MEM);
    let (a, b) = (pa(0, 0x0), pa(0, 0x1000));
    r.store(1, 0, a, &[0x11, 0x22]);
    r.run_to(200);
    // Core 1 reads B: installing it evicts A from the LLC, which back-invalidates core 0's
    // copies (the L1D one holds the newest data) and writes A to memory, all at the fill.
    r.load(2, 1, b);
    r.run_to(400);
    let fill = 200 + TO_LLC + MEM;
    assert_eq!(r.done(2), fill);
    let at_fill = r.events_at(fill);
    let expected_prefix = [
        CacheEvent::Remove {
            cycle: Cycle::new(fill),
            cache: l1(0),
            line: a.line(),
            cause: RemoveCause::BackInvalidation,
            dirty: true,
        },
        CacheEvent::Remove {
            cycle: Cycle::new(fill),
            cache: l2(0),
            line: a.line(),
            cause: RemoveCause::BackInvalidation,
            dirty: true,
        },
        CacheEvent::Remove {
            cycle: Cycle::new(fill),
            cache: LLC,
            line: a.line(),
            cause: RemoveCause::Evicted,
            dirty: true,
        },
        CacheEvent::MemWriteback {
            cycle: Cycle::new(fill),
            line: a.line(),
            data: bytes(&[0x11, 0x22]),
            // The rig's only store.
            stamp: StoreStamp::new(1),
            cause: WritebackCause::Eviction,
            dirtied_by_store: true,
        },
        CacheEvent::Fill {
            cycle: Cycle::new(fill),
            cache: LLC,
            line: b.line(),
            cause: FillCause::Load,
            dirty: false,
        },
    ];
    assert_eq!(at_fill[..5], expected_prefix);
    assert_eq!(r.mem.log[2], (Cycle::new(fill), MemOp::Write, a));
    assert_eq!(r.mem.read_plain(a), bytes(&[0x11, 0x22]));
    assert_eq!(r.stat("core0.l1d.back_invalidations"), 1);
    assert_eq!(r.stat("core0.l2.back_invalidations"), 1);
    assert_eq!(r.stat("llc.writebacks_evicted"), 1);
    r.h.verify_invariants().unwrap();
}

#[test]
fn non_inclusive_llc_keeps_private_copies() {
    let mut config = one_line_llc();
    config.llc_inclusive = false;
    config.writeback_buffer_entries = 3;
    let mut r = Rig::new(&config, MEM);
    let (a, b) = (pa(0, 0x0), pa(0, 0x1000));
    r.store(1, 0, a, &[0x33]);
    r.run_to(200);
    r.load(2, 1, b);
    r.run_to(400);
    // A left the LLC (clean there: the newest data is in core 0's L1D), core 0 keeps it.
    assert!(r.h.line(LLC, a.line()).is_none());
    assert_eq!(
        r.h.line(l1(0), a.line()).unwrap().state,
        Some(MesiState::Modified)
    );
    assert_eq!(r.mem.count(MemOp::Write), 0);
    assert_eq!(r.stat("l1d.back_invalidations"), 0);
    // The snoop filter still knows core 0 holds A: core 1 gets the data from it.
    r.load(3, 1, a);
    r.run_to(600);
    assert_eq!(r.done(3), 400 + TO_LLC + 20);
    assert_eq!(r.response(3).data.unwrap()[0], 0x33);
    r.h.verify_invariants().unwrap();
}

#[test]
fn a_fill_waits_for_a_full_writeback_buffer() {
    let mut r = Rig::new(&one_line_llc(), MEM);
    r.mem.refuse_writes_until = Cycle::new(1000);
    let (a, b, c) = (pa(0, 0x0), pa(0, 0x1000), pa(0, 0x2000));
    r.store(1, 0, a, &[1]);
    r.run_to(200);
    r.load(2, 0, b);
    r.run_to(201);
    r.load(3, 1, c);
    r.run_to(999);
    // B's fill evicted dirty A: the buffer's one entry holds A, which memory refuses.
    assert_eq!(r.done(2), 200 + TO_LLC + MEM);
    assert_eq!(r.h.writeback_buffer_len(), 1);
    // C's data arrived at 359, but installing C may evict a dirty line: it waits.
    assert!(r.responses.iter().all(|x| x.id != 3));
    assert_eq!(r.h.line(LLC, b.line()).map(|v| v.dirty), Some(false));
    r.run_to(1000);
    // Memory takes A at 1000; the entry serves C's fill from the next cycle.
    assert_eq!(r.h.writeback_buffer_len(), 0);
    assert!(r.responses.iter().all(|x| x.id != 3));
    r.run_to(1001);
    assert_eq!(r.done(3), 1001);
    assert_eq!(r.response(3).from, None);
    assert_eq!(r.stat("hierarchy.writeback_buffer_waits"), 1);
    r.h.verify_invariants().unwrap();
}

#[test]
fn refused_memory_requests_keep_their_order() {
    let mut r = Rig::new(&one_line_llc(), MEM);
    r.mem.refuse_writes_until = Cycle::new(500);
    let (a, b, c) = (pa(0, 0x0), pa(0, 0x1000), pa(0, 0x2000));
    r.store(1, 0, a, &[1]);
    r.run_to(200);
    r.load(2, 0, b);
    r.run_to(400);
    // B's fill put the write-back of A at the head of the outbox; C's read queues behind it.
    r.load(3, 1, c);
    r.run_to(2000);
    let c_read = r
        .mem
        .log
        .iter()
        .position(|&(_, op, addr)| op == MemOp::Read && addr == c)
        .unwrap();
    let a_write = r
        .mem
        .log
        .iter()
        .position(|&(_, op, addr)| op == MemOp::Write && addr == a)
        .unwrap();
    assert!(a_write < c_read);
    assert_eq!(r.mem.log[a_write].0, Cycle::new(500));
    assert_eq!(r.done(3), 500 + MEM);
}
