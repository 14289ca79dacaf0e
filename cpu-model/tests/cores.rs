//! The cores and the system run loop on a real machine (MESI hierarchy, memory controllers
//! with AES-XTS, DRAM timing). Programs use physical addresses, so nothing here depends on the
//! kernel layer's page tables; prefetchers are off so that every fill is the program's.
//!
//! Latencies of the default machine: L1D 4, L2 14, LLC 40, snoop 20 cycles. A load that misses
//! the L1D and L2 and finds the line in another core's E copy completes after
//! 4 + 14 + 40 + 20 = 78 cycles; a read for memory leaves the hierarchy 4 + 14 + 40 = 58 cycles
//! after the load is submitted.

use cache_model::{CacheEvent, CacheId, EventLog, Level, ObserverId, PrefetchConfig};
use checker::{CheckerConfig, ViolationKind};
use cpu_model::kernel::KernelConfig;
use cpu_model::program::{
    Addr, Credentials, Errno, FaultKind, KernelCall, LineFlush, Op, OpKind, OpOutcome, OpResult,
    OpTag, Program, Prot,
};
use cpu_model::{MachineConfig, RunEnd, System, SystemConfig, SystemError};
use mem_ctrl::pconfig::{
    FaultReason, FaultVector, KeyCommand, KeyProgramStruct, PconfigCall, PconfigOutcome,
    PconfigStatus,
};
use mem_ctrl::xts::XtsAlgorithm;
use sim_core::{CoreId, Cycle, DramAddr, KeyId, StatsReport, VirtAddr};

const L1: u64 = 4;
const L2: u64 = 14;
const LLC: u64 = 40;
const SNOOP: u64 = 20;
/// A load served by another core's E copy.
const REMOTE: u64 = L1 + L2 + LLC + SNOOP;
/// From submission to the read leaving for memory.
const TO_MEMORY: u64 = L1 + L2 + LLC;

fn config(tweak: impl FnOnce(&mut SystemConfig)) -> SystemConfig {
    let mut machine = MachineConfig::preset("default").unwrap();
    machine.caches.prefetch = PrefetchConfig::OFF;
    let mut c = SystemConfig {
        machine,
        kernel: KernelConfig::default(),
        cycles_max: 100_000_000,
        drain_at_end: false,
        checker: CheckerConfig::default(),
    };
    tweak(&mut c);
    c
}

/// Physical address of DRAM address `dram` through `keyid`.
fn phys(keyid: u16, dram: u64) -> Addr {
    let layout = MachineConfig::preset("default").unwrap().memory.layout;
    Addr::Phys(
        layout
            .compose(KeyId::new(keyid), DramAddr::new(dram))
            .unwrap(),
    )
}

fn op(tag: u32, kind: OpKind) -> Op {
    Op {
        tag: OpTag(tag),
        kind,
    }
}

fn load(tag: u32, at: Addr, len: u8) -> Op {
    op(tag, OpKind::Load { at, len })
}

fn store(tag: u32, at: Addr, bytes: &[u8]) -> Op {
    op(
        tag,
        OpKind::Store {
            at,
            bytes: bytes.to_vec(),
        },
    )
}

fn flush(tag: u32, kind: LineFlush, at: Addr) -> Op {
    op(tag, OpKind::Flush { kind, at })
}

fn barrier(tag: u32, id: u32) -> Op {
    op(tag, OpKind::Barrier { id })
}

fn compute(tag: u32, cycles: u64) -> Op {
    op(tag, OpKind::Compute { cycles })
}

fn mfence(tag: u32) -> Op {
    op(tag, OpKind::Mfence)
}

fn program(ops: Vec<Op>) -> Program {
    Program {
        ops,
        credentials: Credentials::default(),
    }
}

/// A system running `programs`, with the test region (lines 0 to 127 through KeyID 0) set to
/// zeros: with TME on, DRAM never written decrypts to noise.
fn system(config: &SystemConfig, programs: Vec<Vec<Op>>) -> System {
    let mut sys = System::new(config, programs.into_iter().map(program).collect(), 7).unwrap();
    for k in 0..128 {
        let Addr::Phys(pa) = phys(0, line(k)) else {
            unreachable!()
        };
        sys.machine_mut()
            .memory_mut()
            .write_line_untimed(Cycle::ZERO, pa, &[0; 64]);
    }
    sys
}

/// Runs to the end, which must be a finish.
fn finish(sys: &mut System) {
    let end = sys.run();
    assert!(
        matches!(end, RunEnd::Finished { .. }),
        "{end:?}\n{:#?}",
        sys.dump()
    );
}

/// Core `core`'s results, in order.
fn results_of(sys: &System, core: u32) -> Vec<OpResult> {
    sys.results()
        .iter()
        .filter(|r| r.core == CoreId::new(core))
        .cloned()
        .collect()
}

/// Core `core`'s load results: (tag, cycle, bytes).
fn loads_of(sys: &System, core: u32) -> Vec<(u32, u64, Vec<u8>)> {
    results_of(sys, core)
        .into_iter()
        .filter_map(|r| match r.outcome {
            OpOutcome::Load { bytes, .. } => Some((r.tag.0, r.cycle.get(), bytes)),
            _ => None,
        })
        .collect()
}

fn stats(sys: &System) -> StatsReport {
    let mut report = StatsReport::new();
    sys.report_stats(&mut report);
    report
}

fn stat(sys: &System, name: &str) -> u64 {
    stats(sys)
        .get_count(name)
        .unwrap_or_else(|| panic!("no statistic {name}"))
}

fn attach_log(sys: &mut System) -> ObserverId {
    sys.machine_mut()
        .caches_mut()
        .attach_observer(EventLog::default())
}

fn events(sys: &System, log: ObserverId) -> &[CacheEvent] {
    &sys.machine()
        .caches()
        .observer::<EventLog>(log)
        .unwrap()
        .events
}

/// DRAM line `k` of a test region.
fn line(k: u64) -> u64 {
    0x10_0000 + 64 * k
}

#[test]
fn blocking_and_four_outstanding_cores_on_remote_hits_are_cycle_exact() {
    // Core 1 brings eight lines into its caches (E); after a barrier core 0 loads them, each
    // load served by core 1's copy in REMOTE = 78 cycles.
    let run = |outstanding: u32| {
        let cfg = config(|c| c.machine.core.outstanding_loads = outstanding);
        let mut warm: Vec<Op> = (0..8)
            .map(|k| load(k as u32, phys(0, line(k)), 8))
            .collect();
        warm.push(barrier(100, 1));
        let mut reader = vec![barrier(100, 1)];
        reader.extend((0..8).map(|k| load(10 + k as u32, phys(0, line(k)), 8)));
        let mut sys = system(&cfg, vec![reader, warm]);
        finish(&mut sys);
        // Core 1 reaches the barrier the cycle its last load completes; both go on the next.
        let release = loads_of(&sys, 1).iter().map(|l| l.1).max().unwrap() + 1;
        let done: Vec<u64> = loads_of(&sys, 0).iter().map(|l| l.1 - release).collect();
        (done, stat(&sys, "core.0.load_requests"))
    };

    // Blocking: each load is submitted when the previous one completes.
    let (blocking, requests) = run(1);
    let expected: Vec<u64> = (1..=8).map(|k| k * REMOTE).collect();
    assert_eq!(blocking, expected);
    assert_eq!(requests, 8);

    // Four in flight, four-wide issue. Cycle R: the barrier and loads 0-2 issue; R+1: load 3
    // (the queue is full). R+78: loads 0-2 retire, loads 4-6 issue; R+79: load 3 retires,
    // load 7 issues.
    let (four, _) = run(4);
    let r = REMOTE;
    assert_eq!(
        four,
        [r, r, r, r + 1, 2 * r, 2 * r, 2 * r, 2 * r + 1],
        "four outstanding"
    );
}

#[test]
fn memory_misses_overlap_only_with_several_loads_outstanding() {
    // Cold lines: each read leaves for memory TO_MEMORY = 58 cycles after its load is
    // submitted, whatever DRAM then does. The log shows when each load was submitted.
    let run = |outstanding: u32| {
        let cfg = config(|c| c.machine.core.outstanding_loads = outstanding);
        let ops: Vec<Op> = (0..8)
            .map(|k| load(k as u32, phys(0, line(k * 2)), 8))
            .collect();
        let mut sys = system(&cfg, vec![ops]);
        let log = attach_log(&mut sys);
        finish(&mut sys);
        let reads: Vec<u64> = events(&sys, log)
            .iter()
            .filter_map(|e| match e {
                CacheEvent::MemRead { cycle, .. } => Some(cycle.get()),
                _ => None,
            })
            .collect();
        let done: Vec<u64> = loads_of(&sys, 0).iter().map(|l| l.1).collect();
        (reads, done)
    };

    let (reads, done) = run(1);
    assert_eq!(reads.len(), 8);
    assert_eq!(reads[0], TO_MEMORY);
    for k in 1..8 {
        // Load k is submitted the cycle load k-1 completes.
        assert_eq!(reads[k], done[k - 1] + TO_MEMORY, "blocking load {k}");
    }
    let blocking_total = done[7];

    let (reads, done) = run(4);
    // Loads 0-3 are submitted at cycle 0 (four-wide issue).
    assert_eq!(&reads[..4], &[TO_MEMORY; 4]);
    for k in 0..4 {
        // Load 4+k takes the queue entry load k leaves when it retires.
        assert_eq!(reads[4 + k], done[k] + TO_MEMORY, "load {}", 4 + k);
    }
    // Results retire in program order.
    assert!(done.windows(2).all(|w| w[0] <= w[1]), "{done:?}");
    assert!(
        done[7] * 2 < blocking_total,
        "{} vs {blocking_total}",
        done[7]
    );
}

#[test]
fn issue_width_limits_l1_hits_per_cycle() {
    // A miss brings the line in; MFENCE waits for it; then eight L1D hits.
    let run = |width: u32| {
        let cfg = config(|c| c.machine.core.issue_width = width);
        let mut ops = vec![load(0, phys(0, line(0)), 8), mfence(1)];
        ops.extend((0..8).map(|k| load(10 + k, phys(0, line(0) + 8 * u64::from(k)), 8)));
        let mut sys = system(&cfg, vec![ops]);
        finish(&mut sys);
        let l = loads_of(&sys, 0);
        let miss = l[0].1;
        l[1..].iter().map(|x| x.1 - miss).collect::<Vec<u64>>()
    };
    // The miss completes at cycle C; MFENCE issues at C in the first slot.
    // Width 4: three hits issue at C, four at C+1, one at C+2; each takes L1 = 4.
    assert_eq!(run(4), [4, 4, 4, 5, 5, 5, 5, 6]);
    // Width 1: one per cycle from C+1.
    assert_eq!(run(1), [5, 6, 7, 8, 9, 10, 11, 12]);
    // Width 16: all at C.
    assert_eq!(run(16), [4; 8]);
}

#[test]
fn store_to_load_forwarding_bypasses_the_hierarchy() {
    let a = phys(0, line(0) + 8);
    let cfg = config(|_| {});
    let mut sys = system(
        &cfg,
        vec![vec![
            store(1, a, &[1, 2, 3, 4, 5, 6, 7, 8]),
            store(2, phys(0, line(0) + 12), &[0xee]),
            load(3, a, 8),
        ]],
    );
    finish(&mut sys);
    // Store, store and load issue at cycle 0; the load completes from the buffer at cycle 1,
    // the youngest store winning byte 4.
    assert_eq!(loads_of(&sys, 0), [(3, 1, vec![1, 2, 3, 4, 0xee, 6, 7, 8])]);
    assert_eq!(stat(&sys, "core.0.loads_forwarded"), 1);
    assert_eq!(stat(&sys, "core.0.load_requests"), 0);
    // The hierarchy saw only the two stores.
    let s = stats(&sys);
    assert_eq!(s.get_count("core0.l1d.accesses"), Some(2));
    assert_eq!(s.get_count("core0.l1d.reads"), Some(0));
}

#[test]
fn partial_overlap_stalls_until_the_store_drains() {
    let cfg = config(|_| {});
    let mut sys = system(
        &cfg,
        vec![vec![
            store(1, phys(0, line(0)), &[9, 9, 9, 9]),
            load(2, phys(0, line(0)), 8),
        ]],
    );
    let log = attach_log(&mut sys);
    finish(&mut sys);
    let store_done = events(&sys, log)
        .iter()
        .find_map(|e| match e {
            CacheEvent::Store { cycle, .. } => Some(cycle.get()),
            _ => None,
        })
        .unwrap();
    // The load waits for the store to complete (an RFO from memory), then hits the L1D.
    assert_eq!(
        loads_of(&sys, 0),
        [(2, store_done + L1, vec![9, 9, 9, 9, 0, 0, 0, 0])]
    );
    assert_eq!(stat(&sys, "core.0.loads_partial_forward"), 1);
    assert_eq!(stat(&sys, "core.0.loads_forwarded"), 0);
    assert_eq!(stat(&sys, "core.0.wait_cycles.partial_forward"), store_done);
}

#[test]
fn line_crossing_accesses_are_split_and_reassembled() {
    let at = phys(0, line(1) - 3);
    let cfg = config(|_| {});
    let mut sys = system(
        &cfg,
        vec![vec![
            store(1, at, &[1, 2, 3, 4, 5, 6]),
            mfence(2),
            load(3, at, 6),
            load(4, phys(0, line(1) - 4), 8),
        ]],
    );
    finish(&mut sys);
    let l = loads_of(&sys, 0);
    assert_eq!(l[0].2, [1, 2, 3, 4, 5, 6]);
    assert_eq!(l[1].2, [0, 1, 2, 3, 4, 5, 6, 0]);
    assert_eq!(stat(&sys, "core.0.stores_drained"), 2);
    assert_eq!(stat(&sys, "core.0.load_requests"), 4);
    match &results_of(&sys, 0)[0].outcome {
        OpOutcome::Load { pa, .. } => {
            let Addr::Phys(p) = at else { unreachable!() };
            assert_eq!(*pa, p, "the result names the first byte's address");
        }
        o => panic!("{o:?}"),
    }
}

/// Store buffering: `x = 1; r0 = y` against `y = 1; r1 = x`, after both cores cached both
/// lines; core 1 starts `delay` cycles later. Returns (r0, r1).
fn store_buffering(delay: u64, fence: bool) -> (u8, u8) {
    let (x, y) = (phys(0, line(0)), phys(0, line(8)));
    let side = |mine: Addr, other: Addr, delay: u64| {
        let mut ops = vec![
            load(1, x, 1),
            load(2, y, 1),
            barrier(3, 1),
            compute(4, delay),
            store(5, mine, &[1]),
        ];
        if fence {
            ops.push(mfence(6));
        }
        ops.push(load(7, other, 1));
        ops
    };
    let cfg = config(|c| c.machine.core.outstanding_loads = 10);
    let mut sys = system(&cfg, vec![side(x, y, 0), side(y, x, delay)]);
    finish(&mut sys);
    let r = |core| loads_of(&sys, core).last().unwrap().2[0];
    (r(0), r(1))
}

#[test]
fn tso_store_buffering_is_observable_without_mfence_and_never_with_it() {
    let mut both_zero = 0;
    for delay in 0..160 {
        let r = store_buffering(delay, false);
        if r == (0, 0) {
            both_zero += 1;
        }
        let r = store_buffering(delay, true);
        assert_ne!(r, (0, 0), "MFENCE, delay {delay}");
    }
    // The loads hit the L1D while the stores wait for ownership: both read 0.
    assert_eq!(store_buffering(0, false), (0, 0));
    assert!(both_zero > 10, "{both_zero}");
    // With MFENCE and no skew both stores complete first: both read 1.
    assert_eq!(store_buffering(0, true), (1, 1));
}

#[test]
fn tso_message_passing_never_shows_the_flag_without_the_data() {
    // Core 0: x = 1; y = 1. Core 1 (10 loads in flight), `delay` cycles later: r1 = y;
    // r2 = x. Core 1 has x cached (E), core 0 has y. From the barrier's release R: core 0's
    // store to x takes ownership from core 1 at R+78, its store to y hits its L1D at R+82.
    // Core 1's load of y is served by core 0 at R+delay+78 (reading 1 from delay 4 on); its
    // load of x hits the L1D at R+delay+4, reading 0 up to delay 74 (at R+78 hits complete
    // before the store's event). It completed while the load of y was outstanding, and when
    // that one completes x has left core 1's L1D: the machine clear replays the load of x,
    // which then reads 1. Without it, delays 4 to 74 would give r1 = 1, r2 = 0.
    let (x, y) = (phys(0, line(0)), phys(0, line(8)));
    let mut outcomes = std::collections::BTreeSet::new();
    for delay in 0..200 {
        let writer = vec![
            load(1, y, 1),
            barrier(2, 1),
            store(3, x, &[1]),
            store(4, y, &[1]),
        ];
        let reader = vec![
            load(1, x, 1),
            barrier(2, 1),
            compute(3, delay),
            load(4, y, 1),
            load(5, x, 1),
        ];
        let cfg = config(|c| c.machine.core.outstanding_loads = 10);
        let mut sys = system(&cfg, vec![writer, reader]);
        finish(&mut sys);
        let l = loads_of(&sys, 1);
        let (r1, r2) = (l[1].2[0], l[2].2[0]);
        assert_ne!((r1, r2), (1, 0), "delay {delay}");
        outcomes.insert((r1, r2));
        let replays = stat(&sys, "core.1.load_replays");
        assert_eq!(replays, u64::from(delay <= 74), "delay {delay}");
        let expected = if delay < 4 { (0, 1) } else { (1, 1) };
        assert_eq!((r1, r2), expected, "delay {delay}");
        outcomes.insert((r1, r2));
    }
    assert_eq!(outcomes.len(), 2);
}

/// The cycle of the first event matching `f`.
fn first(events: &[CacheEvent], f: impl Fn(&CacheEvent) -> bool) -> u64 {
    events
        .iter()
        .find(|e| f(e))
        .map(|e| e.cycle().get())
        .unwrap()
}

#[test]
fn clflushopt_passes_older_stores_to_other_lines_unless_fenced() {
    let (a, b) = (phys(0, line(0)), phys(0, line(8)));
    let b_line = match b {
        Addr::Phys(p) => p.line(),
        _ => unreachable!(),
    };
    // Returns (store to A done, flush of B done).
    let run = |ops: Vec<Op>| {
        let cfg = config(|_| {});
        let mut sys = system(&cfg, vec![ops]);
        let log = attach_log(&mut sys);
        finish(&mut sys);
        let ev = events(&sys, log);
        let store = first(ev, |e| matches!(e, CacheEvent::Store { .. }));
        let flush = first(
            ev,
            |e| matches!(e, CacheEvent::FlushDone { line: Some(l), .. } if *l == b_line),
        );
        (store, flush)
    };
    // The store needs the line from memory; the CLFLUSHOPT of an uncached line completes
    // TO_MEMORY = 58 cycles after it is sent at cycle 0: before the older store.
    let (s, f) = run(vec![store(1, a, &[1]), flush(2, LineFlush::Clflushopt, b)]);
    assert_eq!(f, TO_MEMORY);
    assert!(s > f, "store {s}, flush {f}");
    // SFENCE: the flush is sent when the store completes.
    let (s, f) = run(vec![
        store(1, a, &[1]),
        op(2, OpKind::Sfence),
        flush(3, LineFlush::Clflushopt, b),
    ]);
    assert_eq!(f, s + TO_MEMORY);
    // CLFLUSH is ordered with stores through the store buffer.
    let (s, f) = run(vec![store(1, a, &[1]), flush(2, LineFlush::Clflush, b)]);
    assert_eq!(f, s + TO_MEMORY);
    // CLWB too passes an older store to another line.
    let (s, f) = run(vec![store(1, a, &[1]), flush(2, LineFlush::Clwb, b)]);
    assert!(f == TO_MEMORY && s > f);
}

#[test]
fn clflushopt_waits_for_an_older_store_to_its_line() {
    let a = phys(0, line(0));
    let cfg = config(|_| {});
    let mut sys = system(
        &cfg,
        vec![vec![store(1, a, &[7]), flush(2, LineFlush::Clflushopt, a)]],
    );
    let log = attach_log(&mut sys);
    finish(&mut sys);
    let ev = events(&sys, log);
    let s = first(ev, |e| matches!(e, CacheEvent::Store { .. }));
    let f = first(ev, |e| matches!(e, CacheEvent::FlushDone { .. }));
    let wb = first(ev, |e| matches!(e, CacheEvent::MemWriteback { .. }));
    // Sent the cycle the store completes; the dirty line is written back.
    assert_eq!(f, s + TO_MEMORY);
    assert!(wb >= s && wb <= f);
}

#[test]
fn speculative_load_fills_the_line_but_records_nothing() {
    let y = phys(0, line(3));
    let cfg = config(|_| {});
    let mut sys = system(
        &cfg,
        vec![vec![
            op(1, OpKind::SpeculativeLoad { at: y, len: 8 }),
            compute(2, 300),
            load(3, y, 8),
        ]],
    );
    let log = attach_log(&mut sys);
    finish(&mut sys);
    // The speculative load and the compute issue at cycle 0; the load at 300 hits the L1D.
    assert_eq!(loads_of(&sys, 0), [(3, 300 + L1, vec![0; 8])]);
    assert_eq!(sys.results().len(), 1, "no result for the speculative load");
    assert_eq!(stat(&sys, "core.0.speculative_loads"), 1);
    let committed = events(&sys, log)
        .iter()
        .filter(|e| matches!(e, CacheEvent::Load { .. }))
        .count();
    assert_eq!(committed, 1, "only the committed load emits a Load event");
}

#[test]
fn mispredicted_path_fills_lines_but_its_stores_never_leave_the_core() {
    let (x, y) = (phys(0, line(0)), phys(0, line(5)));
    let shadow = vec![
        store(10, x, &[0xaa; 8]),
        load(11, y, 8),
        load(12, x, 8), // forwarded from the shadow's store: nothing sent
        compute(13, 1), // ends the shadow
        load(14, phys(0, line(9)), 8),
    ];
    let cfg = config(|c| c.machine.core.branch_resolve_cycles = 20);
    let mut sys = system(
        &cfg,
        vec![vec![
            op(1, OpKind::Mispredict { shadow }),
            compute(2, 500),
            load(3, y, 8),
            load(4, x, 8),
        ]],
    );
    let log = attach_log(&mut sys);
    finish(&mut sys);
    let l = loads_of(&sys, 0);
    // The branch resolves at 20, the compute runs to 520; y is in the L1D by then.
    assert_eq!((l[0].0, l[0].1, &l[0].2), (3, 520 + L1, &vec![0; 8]));
    // The shadow's store never became visible.
    assert_eq!(l[1].2, [0; 8]);
    assert_eq!(sys.results().len(), 2);
    let ev = events(&sys, log);
    assert!(!ev.iter().any(|e| matches!(e, CacheEvent::Store { .. })));
    assert_eq!(stat(&sys, "core.0.shadow_ops_squashed"), 3);
    assert_eq!(stat(&sys, "core.0.shadow_stores_discarded"), 1);
    assert_eq!(stat(&sys, "core.0.shadow_loads_forwarded"), 1);
    assert_eq!(stat(&sys, "core.0.speculative_loads"), 1);
    // The three shadow ops issue at cycle 0 beside the branch; at cycle 1 the shadow's compute
    // stops it, and the core waits for the resolution at 20.
    assert_eq!(stat(&sys, "core.0.wait_cycles.branch"), 19);
}

#[test]
fn a_barrier_nobody_else_reaches_is_a_deadlock() {
    let cfg = config(|_| {});
    let mut sys = system(
        &cfg,
        vec![vec![barrier(1, 4), barrier(2, 4)], vec![barrier(1, 4)]],
    );
    let end = sys.run();
    assert!(matches!(end, RunEnd::Deadlock { .. }), "{end:?}");
    let dump = sys.dump();
    let core0 = &dump.iter().find(|(k, _)| k == "core 0").unwrap().1;
    assert!(core0.contains("barrier 4, occurrence 2"), "{core0}");
    // Later calls give the same end.
    assert_eq!(sys.run(), end);

    // The same barrier reached twice by both (once inside a repeat) is fine.
    let mut sys = system(
        &cfg,
        vec![
            vec![barrier(1, 4), barrier(2, 4)],
            vec![op(
                1,
                OpKind::Repeat {
                    times: 2,
                    body: vec![barrier(2, 4)],
                },
            )],
        ],
    );
    finish(&mut sys);
}

#[test]
fn a_huge_repeat_stops_at_cycles_max_with_its_position_in_the_dump() {
    let cfg = config(|c| c.cycles_max = 50_000);
    let body = vec![
        load(1, phys(0, line(0)), 8),
        store(2, phys(0, line(0)), &[1]),
        compute(3, 10),
    ];
    let mut sys = system(
        &cfg,
        vec![vec![op(
            7,
            OpKind::Repeat {
                times: 1_000_000_000_000_000,
                body,
            },
        )]],
    );
    let started = std::time::Instant::now();
    let end = sys.run();
    assert_eq!(
        end,
        RunEnd::CyclesMax {
            cycle: Cycle::new(50_000)
        }
    );
    assert_eq!(sys.now(), Cycle::new(50_000));
    let dump = sys.dump();
    let core0 = &dump.iter().find(|(k, _)| k == "core 0").unwrap().1;
    assert!(
        core0.contains("repeat (tag 7) iteration ") && core0.contains(" of 1000000000000000"),
        "{core0}"
    );
    for component in [
        "system", "caches", "memory", "kernel", "barriers", "checker",
    ] {
        assert!(dump.iter().any(|(k, _)| k == component), "{component}");
    }
    assert!(started.elapsed().as_secs() < 30);
}

#[test]
fn compute_costs_nothing_to_skip() {
    // (Much longer computes are as cheap for the cores; the memory controllers then catch up
    // on the DRAM refreshes of the idle time when next touched.)
    const N: u64 = 100_000_000;
    let cfg = config(|c| c.cycles_max = u64::MAX);
    let mut sys = system(
        &cfg,
        vec![vec![
            compute(1, N),
            load(2, phys(0, line(0)), 8),
            compute(3, N),
        ]],
    );
    finish(&mut sys);
    let l = loads_of(&sys, 0);
    // (A DRAM refresh may be under way when the load arrives.)
    assert!(l[0].1 > N + TO_MEMORY && l[0].1 < N + 3000, "{}", l[0].1);
    assert_eq!(stat(&sys, "core.0.wait_cycles.compute"), 2 * N);
    // The second compute issues beside the load (no dependency) and ends the program.
    assert_eq!(sys.program_done(CoreId::new(0)), Some(Cycle::new(2 * N)));
    // A few cycles around the load, not 2 * 10^8.
    assert!(sys.cycles_executed() < 100, "{}", sys.cycles_executed());
}

fn key_program(keyid: u16) -> PconfigCall {
    let p = KeyProgramStruct::new(keyid, KeyCommand::SetKeyDirect, XtsAlgorithm::Aes128)
        .with_keys(&[0x11 * keyid as u8; 16], &[0x22; 16]);
    PconfigCall::key_program(p)
}

#[test]
fn pconfig_from_ring_3_faults() {
    let cfg = config(|_| {});
    let mut sys = System::new(
        &cfg,
        vec![Program {
            ops: vec![op(
                1,
                OpKind::Pconfig {
                    call: key_program(1),
                },
            )],
            credentials: Credentials {
                ring0: false,
                cap_sys_resource: false,
                ..Credentials::ROOT
            },
        }],
        7,
    )
    .unwrap();
    finish(&mut sys);
    let r = &sys.results()[0];
    assert_eq!(r.cycle, Cycle::new(1));
    match &r.outcome {
        OpOutcome::Pconfig(PconfigOutcome::Fault(f)) => {
            assert_eq!(f.reason, FaultReason::NotPrivileged);
            // CPL > 0 raises #UD (mktme-facts.md 2.5).
            assert_eq!(f.vector(), FaultVector::InvalidOpcode);
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn pconfig_programs_a_key_that_later_accesses_use() {
    let a1 = phys(1, line(0));
    let pattern: Vec<u8> = (0..16).map(|i| 0x40 + i).collect();
    let cfg = config(|_| {});
    let mut sys = system(
        &cfg,
        vec![vec![
            op(
                1,
                OpKind::Pconfig {
                    call: key_program(1),
                },
            ),
            store(2, a1, &pattern),
            flush(3, LineFlush::Clflush, a1),
            mfence(4),
            load(5, a1, 16),
            load(6, phys(0, line(0)), 16),
        ]],
    );
    finish(&mut sys);
    let r = results_of(&sys, 0);
    // PCONFIG holds the core for its latency (1000 cycles by default).
    assert_eq!(
        (r[0].cycle, &r[0].outcome),
        (
            Cycle::new(1000),
            &OpOutcome::Pconfig(PconfigOutcome::Status(PconfigStatus::Success))
        )
    );
    let l = loads_of(&sys, 0);
    // Written back, read back through KeyID 1: decrypted to the same bytes.
    assert_eq!(l[0].2, pattern);
    // Through KeyID 0 the same DRAM line decrypts to something else.
    assert_ne!(l[1].2, pattern);
    // And DRAM holds ciphertext.
    let memory = sys.machine().memory();
    let addr = DramAddr::new(line(0));
    let mc = memory.controller_of(addr);
    let stored = memory.controllers()[mc]
        .store()
        .read(memory.local_addr(addr));
    assert_ne!(&stored[..16], &pattern[..]);
    assert!(sys.checker().violations().is_empty());
}

#[test]
fn two_pconfigs_at_once_find_the_key_table_busy() {
    let cfg = config(|_| {});
    let mut sys = system(
        &cfg,
        vec![
            vec![op(
                1,
                OpKind::Pconfig {
                    call: key_program(1),
                },
            )],
            vec![op(
                1,
                OpKind::Pconfig {
                    call: key_program(2),
                },
            )],
        ],
    );
    finish(&mut sys);
    let r0 = &results_of(&sys, 0)[0];
    let r1 = &results_of(&sys, 1)[0];
    assert_eq!(
        (r0.cycle.get(), &r0.outcome),
        (
            1000,
            &OpOutcome::Pconfig(PconfigOutcome::Status(PconfigStatus::Success))
        )
    );
    assert_eq!(
        (r1.cycle.get(), &r1.outcome),
        (
            1,
            &OpOutcome::Pconfig(PconfigOutcome::Status(PconfigStatus::DeviceBusy))
        )
    );
}

#[test]
fn the_checker_sees_two_keyids_dirty_at_once() {
    let cfg = config(|_| {});
    let mut sys = system(
        &cfg,
        vec![
            vec![store(1, phys(1, line(0)), &[1; 8])],
            vec![store(1, phys(2, line(0)), &[2; 8])],
        ],
    );
    finish(&mut sys);
    let kinds: Vec<ViolationKind> = sys.checker().violations().iter().map(|v| v.kind).collect();
    assert_eq!(kinds, [ViolationKind::DualDirty]);
    assert_eq!(sys.checker().violations()[0].line, DramAddr::new(line(0)));
}

#[test]
fn physical_addresses_outside_the_machine_fault_instead_of_panicking() {
    let cfg = config(|_| {});
    let dram = cfg.machine.memory.dram_bytes();
    let beyond = phys(0, dram);
    let Addr::Phys(p) = beyond else {
        unreachable!()
    };
    let mut sys = system(
        &cfg,
        vec![vec![
            load(1, beyond, 8),
            store(2, beyond, &[1]),
            op(3, OpKind::Prefetch { at: beyond }),
            op(4, OpKind::SpeculativeLoad { at: beyond, len: 8 }),
            load(5, Addr::Phys(sim_core::PhysAddr::new(u64::MAX - 2)), 8),
            load(6, phys(0, line(0)), 0),
        ]],
    );
    finish(&mut sys);
    let r = results_of(&sys, 0);
    let fault = |r: &OpResult| match r.outcome {
        OpOutcome::Fault(f) => (f.kind, f.addr.raw()),
        ref o => panic!("{o:?}"),
    };
    assert_eq!(fault(&r[0]), (FaultKind::NotMapped, p.raw()));
    assert_eq!(fault(&r[1]), (FaultKind::NotMapped, p.raw()));
    assert_eq!(fault(&r[2]), (FaultKind::NotMapped, u64::MAX - 2));
    // A zero-length load returns no bytes, the next cycle.
    assert_eq!(
        (r[3].tag.0, &r[3].outcome),
        (
            6,
            &OpOutcome::Load {
                bytes: vec![],
                pa: match phys(0, line(0)) {
                    Addr::Phys(p) => p,
                    _ => unreachable!(),
                },
            }
        )
    );
    assert_eq!(stat(&sys, "core.0.prefetches_dropped"), 1);
    assert_eq!(stat(&sys, "core.0.speculative_dropped"), 1);
}

#[test]
fn a_failing_system_call_costs_the_syscall_entry() {
    let cfg = config(|c| c.machine.core.syscall_cycles = 200);
    let mut sys = system(
        &cfg,
        vec![vec![op(
            1,
            OpKind::Kernel(KernelCall::Mmap {
                addr: VirtAddr::new(0x1001),
                len: 4096,
                prot: Prot::READ_WRITE,
                backing: cpu_model::program::Backing::Anonymous,
            }),
        )]],
    );
    finish(&mut sys);
    let r = &sys.results()[0];
    assert_eq!(
        (r.cycle.get(), &r.outcome),
        (200, &OpOutcome::Kernel(Err(Errno::Einval)))
    );
}

#[test]
fn a_system_can_move_between_threads() {
    fn send<T: Send>() {}
    send::<System>();
}

#[test]
fn too_many_programs_are_refused() {
    let cfg = config(|_| {});
    let err = System::new(&cfg, vec![Program::default(); 3], 1).unwrap_err();
    assert_eq!(
        err,
        SystemError::TooManyPrograms {
            programs: 3,
            cores: 2
        }
    );
}

/// A two-core program with a bit of everything.
fn mixed() -> Vec<Vec<Op>> {
    let (x, y) = (phys(0, line(0)), phys(0, line(40)));
    let body = |me: u8| {
        vec![
            store(1, x, &[me; 4]),
            load(2, y, 8),
            op(
                3,
                OpKind::Prefetch {
                    at: phys(0, line(60 + u64::from(me))),
                },
            ),
            flush(4, LineFlush::Clflushopt, y),
            store(5, y, &[me]),
            load(6, x, 8),
            op(
                7,
                OpKind::Mispredict {
                    shadow: vec![store(8, x, &[0xff]), load(9, phys(0, line(90)), 4)],
                },
            ),
            compute(10, u64::from(me) * 3),
        ]
    };
    (0..2u8)
        .map(|me| {
            vec![
                op(
                    20,
                    OpKind::Repeat {
                        times: 25,
                        body: body(me),
                    },
                ),
                barrier(21, 1),
                op(22, OpKind::Wbinvd),
                load(23, x, 8),
            ]
        })
        .collect()
}

#[test]
fn runs_are_deterministic_and_pausing_changes_nothing() {
    let cfg = config(|c| c.drain_at_end = true);
    let run = || {
        let mut sys = system(&cfg, mixed());
        let end = sys.run();
        (end, sys.results().to_vec(), stats(&sys))
    };
    let (end, results, report) = run();
    assert!(matches!(end, RunEnd::Finished { .. }), "{end:?}");
    assert!(results.len() > 100);
    let again = run();
    assert_eq!(again.0, end);
    assert_eq!(again.1, results);
    assert_eq!(again.2, report);

    // Paused every 97 cycles: the same run.
    let mut sys = system(&cfg, mixed());
    let mut limit = 0;
    let paused_end = loop {
        limit += 97;
        match sys.run_until(Cycle::new(limit)) {
            RunEnd::Paused { cycle } => {
                assert_eq!(cycle, Cycle::new(limit));
                assert_eq!(sys.now(), cycle);
                assert!(sys.results().iter().all(|r| r.cycle < cycle));
            }
            end => break end,
        }
    };
    assert_eq!(paused_end, end);
    assert_eq!(sys.results(), &results[..]);
    let RunEnd::Finished {
        programs_done,
        cycle,
    } = end
    else {
        unreachable!()
    };
    // The drain wrote the dirty lines back after the programs ended.
    assert!(cycle > programs_done);
    assert!(!sys.machine().has_work());
    assert_eq!(
        Some(programs_done),
        (0..2)
            .map(|c| sys.program_done(CoreId::new(c)).unwrap())
            .max()
    );
    let _ = CacheId {
        core: None,
        level: Level::Llc,
    };
}

fn kernel(tag: u32, call: KernelCall) -> Op {
    op(tag, OpKind::Kernel(call))
}

const VA: u64 = 0x4000_0000;

fn mmap(tag: u32, addr: u64, pages: u64) -> Op {
    kernel(
        tag,
        KernelCall::Mmap {
            addr: VirtAddr::new(addr),
            len: pages * 4096,
            prot: Prot::READ_WRITE,
            backing: cpu_model::program::Backing::Anonymous,
        },
    )
}

#[test]
fn virtual_accesses_walk_the_page_tables_and_fault_where_they_must() {
    let cfg = config(|c| {
        c.machine.core.page_walk_cycles = 30;
        c.machine.core.tlb_entries = 8;
    });
    let crossing = Addr::Virt(VirtAddr::new(VA + 0xffc));
    let mut sys = system(
        &cfg,
        vec![vec![
            mmap(1, VA, 2),
            store(2, crossing, &[1, 2, 3, 4, 5, 6, 7, 8]), // two pages: two walks
            mfence(3),
            load(4, crossing, 8),                               // two TLB hits
            load(5, Addr::Virt(VirtAddr::new(0x5000_0000)), 8), // unmapped
            kernel(
                6,
                KernelCall::Mprotect {
                    addr: VirtAddr::new(VA),
                    len: 4096,
                    prot: Prot::READ,
                },
            ),
            store(7, Addr::Virt(VirtAddr::new(VA)), &[9]), // the entry was shot down: re-walked, read-only
            load(8, Addr::DirectMapOf(VirtAddr::new(VA + 0xffc)), 4),
        ]],
    );
    finish(&mut sys);
    let r = results_of(&sys, 0);
    let outcomes: Vec<&OpOutcome> = r.iter().map(|r| &r.outcome).collect();
    assert_eq!(outcomes[0], &OpOutcome::Kernel(Ok(VA)));
    match outcomes[1] {
        OpOutcome::Load { bytes, pa } => {
            assert_eq!(bytes, &[1, 2, 3, 4, 5, 6, 7, 8]);
            assert_eq!(pa.raw() & 0xfff, 0xffc);
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(
        outcomes[2],
        &OpOutcome::Fault(cpu_model::program::Fault {
            addr: VirtAddr::new(0x5000_0000),
            kind: FaultKind::NotMapped
        })
    );
    assert_eq!(outcomes[3], &OpOutcome::Kernel(Ok(0)));
    assert_eq!(
        outcomes[4],
        &OpOutcome::Fault(cpu_model::program::Fault {
            addr: VirtAddr::new(VA),
            kind: FaultKind::Protection
        })
    );
    // The kernel reads the same line through the direct map (KeyID 0).
    match outcomes[5] {
        OpOutcome::Load { bytes, .. } => assert_eq!(bytes, &[1, 2, 3, 4]),
        o => panic!("{o:?}"),
    }
    // Misses: the store's two pages, the unmapped page, the re-walk after the shootdown, the
    // direct-map page; hits: the load's two pages. Each miss stops issue for the walk.
    assert_eq!(stat(&sys, "core.0.tlb_misses"), 5);
    assert_eq!(stat(&sys, "core.0.tlb_hits"), 2);
    assert_eq!(stat(&sys, "core.0.wait_cycles.page_walk"), 5 * 30);
    assert_eq!(stat(&sys, "core.0.faults"), 2);
}

#[test]
fn user_mode_cannot_use_the_direct_map() {
    let cfg = config(|_| {});
    let mut sys = System::new(
        &cfg,
        vec![Program {
            ops: vec![
                mmap(1, VA, 1),
                load(2, Addr::DirectMapOf(VirtAddr::new(VA + 8)), 8),
            ],
            credentials: Credentials {
                ring0: false,
                cap_sys_resource: false,
                ..Credentials::ROOT
            },
        }],
        7,
    )
    .unwrap();
    finish(&mut sys);
    match &sys.results()[1].outcome {
        OpOutcome::Fault(f) => assert_eq!(f.kind, FaultKind::Privilege),
        o => panic!("{o:?}"),
    }
}

#[test]
fn encrypt_mprotect_runs_its_pconfig_and_zeroing_through_the_machine() {
    let cfg = config(|c| c.drain_at_end = true);
    let key = "key=000102030405060708090a0b0c0d0e0f tweak=101112131415161718191a1b1c1d1e1f";
    let pattern = [0x5a; 16];
    let mut sys = system(
        &cfg,
        vec![vec![
            kernel(
                1,
                KernelCall::AddKey {
                    name: "k".to_owned(),
                    payload: format!("type=user algorithm=aes-xts-128 {key}"),
                },
            ),
            mmap(2, VA, 1),
            kernel(
                3,
                KernelCall::EncryptMprotect {
                    addr: VirtAddr::new(VA),
                    len: 4096,
                    prot: Prot::READ_WRITE,
                    key: "k".to_owned(),
                },
            ),
            load(4, Addr::Virt(VirtAddr::new(VA + 64)), 8), // zeroed through the new KeyID
            store(5, Addr::Virt(VirtAddr::new(VA)), &pattern),
            flush(6, LineFlush::Clflush, Addr::Virt(VirtAddr::new(VA))),
            mfence(7),
            load(8, Addr::Virt(VirtAddr::new(VA)), 16),
        ]],
    );
    finish(&mut sys);
    let r = results_of(&sys, 0);
    assert_eq!(
        r[0].outcome,
        OpOutcome::Kernel(Ok(cpu_model::kernel::FIRST_SERIAL))
    );
    assert_eq!(r[1].outcome, OpOutcome::Kernel(Ok(VA)));
    assert_eq!(r[2].outcome, OpOutcome::Kernel(Ok(0)));
    let layout = cfg.machine.memory.layout;
    let l = loads_of(&sys, 0);
    assert_eq!(l[0].2, [0; 8]);
    assert_eq!(l[1].2, pattern);
    match &r[4].outcome {
        OpOutcome::Load { pa, .. } => assert_eq!(layout.keyid(*pa), KeyId::new(1)),
        o => panic!("{o:?}"),
    }
    // The kernel's flushes kept the aliases apart.
    assert!(
        sys.checker().violations().is_empty(),
        "{:?}",
        sys.checker().violations()
    );
    assert!(sys.checker().model_errors().is_empty());
    // add_key's programming took the key-table lock for PCONFIG's latency.
    assert!(r[0].cycle.get() >= 1000 + cfg.machine.core.syscall_cycles);
}

#[test]
fn a_full_store_buffer_stalls_issue_and_drains_one_store_at_a_time() {
    let cfg = config(|c| c.machine.core.store_buffer_entries = 2);
    let mut ops = vec![load(0, phys(0, line(0)), 8), mfence(1)];
    ops.extend((0..6).map(|k| store(10 + k, phys(0, line(0) + 8 * u64::from(k)), &[k as u8])));
    let mut sys = system(&cfg, vec![ops]);
    finish(&mut sys);
    // The load fills the line E at cycle C; MFENCE and two stores issue at C. Each store is an
    // L1D hit (4 cycles), sent when the previous one completes; each completion frees an
    // entry for the next store: stores 2 to 5 wait 4 cycles each.
    let c = loads_of(&sys, 0)[0].1;
    assert_eq!(stat(&sys, "core.0.wait_cycles.sb_full"), 4 * L1);
    assert_eq!(stat(&sys, "core.0.stores_drained"), 6);
    assert_eq!(
        sys.program_done(CoreId::new(0)),
        Some(Cycle::new(c + 6 * L1))
    );
}

#[test]
fn key_programming_in_a_system_call_retries_after_device_busy() {
    let add = |name: &str| {
        kernel(
            1,
            KernelCall::AddKey {
                name: name.to_owned(),
                payload: "type=cpu algorithm=aes-xts-128".to_owned(),
            },
        )
    };
    let run = |retries: u32| {
        let cfg = config(|c| {
            c.machine.core.syscall_cycles = 200;
            c.kernel.program_retries = retries;
        });
        let mut sys = system(&cfg, vec![vec![add("a")], vec![add("b")]]);
        finish(&mut sys);
        let r = |core| {
            let r = &results_of(&sys, core)[0];
            (r.cycle.get(), r.outcome.clone())
        };
        (r(0), r(1), stat(&sys, "pconfig.device_busy"))
    };
    let serial = cpu_model::kernel::FIRST_SERIAL;
    // Both enter at 200; core 0 takes the key-table lock for 1000 cycles, core 1 finds it busy
    // and retries when it frees, at 1200.
    let (a, b, busy) = run(3);
    assert_eq!(a, (1200, OpOutcome::Kernel(Ok(serial))));
    assert_eq!(b, (2200, OpOutcome::Kernel(Ok(serial + 1))));
    assert_eq!(busy, 1);
    // Without retries the second call fails once its PCONFIG completes (one cycle).
    let (a, b, _) = run(0);
    assert_eq!(a, (1200, OpOutcome::Kernel(Ok(serial))));
    assert_eq!(b, (201, OpOutcome::Kernel(Err(Errno::Enokey))));
}

#[test]
fn wbinvd_writes_back_and_invalidates_before_the_core_goes_on() {
    let a = phys(0, line(2));
    let cfg = config(|_| {});
    let mut sys = system(
        &cfg,
        vec![vec![
            store(1, a, &[0xc3; 8]),
            op(2, OpKind::Wbinvd),
            load(3, a, 8),
        ]],
    );
    let log = attach_log(&mut sys);
    finish(&mut sys);
    let ev = events(&sys, log);
    let store_done = first(ev, |e| matches!(e, CacheEvent::Store { .. }));
    let wb = first(ev, |e| matches!(e, CacheEvent::MemWriteback { .. }));
    let done = first(ev, |e| {
        matches!(e, CacheEvent::FlushDone { line: None, .. })
    });
    // The load is sent once WBINVD has completed, and misses everywhere.
    let reads: Vec<u64> = ev
        .iter()
        .filter_map(|e| match e {
            CacheEvent::MemRead { cycle, .. } => Some(cycle.get()),
            _ => None,
        })
        .collect();
    assert!(store_done < wb && wb <= done);
    assert_eq!(reads.len(), 2, "the store's RFO, then the load");
    assert_eq!(reads[1], done + TO_MEMORY);
    assert_eq!(loads_of(&sys, 0)[0].2, [0xc3; 8]);
}

#[test]
fn odd_programs_run_without_panicking() {
    let cfg = config(|c| c.cycles_max = 1_000_000);
    let at = phys(0, line(4));
    let mut sys = system(
        &cfg,
        vec![vec![
            store(1, at, &[0x77; 100]), // cut to 64 bytes
            store(2, at, &[]),          // nothing
            mfence(3),
            load(4, at, 200), // cut to 64 bytes
            op(5, OpKind::SpeculativeLoad { at, len: 0 }),
            op(6, OpKind::Mispredict { shadow: vec![] }),
            op(
                7,
                OpKind::Mispredict {
                    shadow: vec![op(
                        8,
                        OpKind::Mispredict {
                            shadow: vec![load(9, phys(0, line(20)), 8)],
                        },
                    )],
                },
            ),
            barrier(10, 3), // this core alone takes part
            load(11, Addr::Virt(VirtAddr::new(u64::MAX - 3)), 8),
            compute(12, u64::MAX),
        ]],
    );
    let end = sys.run();
    assert_eq!(
        end,
        RunEnd::CyclesMax {
            cycle: Cycle::new(1_000_000)
        }
    );
    let r = results_of(&sys, 0);
    assert_eq!(loads_of(&sys, 0)[0].2, [0x77; 64]);
    match r[1].outcome {
        OpOutcome::Fault(f) => {
            assert_eq!((f.addr.raw(), f.kind), (u64::MAX - 3, FaultKind::NotMapped))
        }
        ref o => panic!("{o:?}"),
    }
    // The nested shadow's load was followed; both shadows waited for their resolution.
    assert_eq!(stat(&sys, "core.0.speculative_loads"), 1);
    assert_eq!(stat(&sys, "core.0.shadow_ops_squashed"), 2);
    assert_eq!(stat(&sys, "core.0.ops.barrier"), 1);
    let dump = sys.dump();
    let core0 = &dump.iter().find(|(k, _)| k == "core 0").unwrap().1;
    assert!(core0.contains("computing until cycle"), "{core0}");
}

#[test]
fn only_the_chosen_loads_keep_their_values() {
    let cfg = config(|_| {});
    let ops = || {
        vec![
            store(0, phys(0, 0x1000), &[7; 8]),
            op(
                1,
                OpKind::Repeat {
                    times: 3,
                    body: vec![load(2, phys(0, 0x1000), 8), load(3, phys(0, 0x1040), 8)],
                },
            ),
            // A fault is kept whatever the filter.
            load(4, Addr::Virt(VirtAddr::new(0x1234_5000)), 8),
        ]
    };
    let mut all = system(&cfg, vec![ops()]);
    all.run();
    let mut some = system(&cfg, vec![ops()]);
    some.keep_load_results_of([OpTag(2)]);
    some.run();
    let tags = |s: &System| s.results().iter().map(|r| r.tag.0).collect::<Vec<_>>();
    // In completion order: the fault is found at translation, while the misses to 0x1040
    // are still in flight.
    assert_eq!(tags(&all), [2, 4, 3, 2, 3, 2, 3]);
    assert_eq!(tags(&some), [2, 4, 2, 2]);
    // Filtering changes what is recorded, never what happens.
    let kept: Vec<_> = all
        .results()
        .iter()
        .filter(|r| r.tag.0 != 3)
        .cloned()
        .collect();
    assert_eq!(some.results(), &kept[..]);
    assert_eq!(stats(&some), stats(&all));
}
