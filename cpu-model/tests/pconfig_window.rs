//! The PCONFIG window (issue 9): PCONFIG changes the key table at its completion, `latency`
//! cycles after it starts. The coherency checker must learn of the change at that cycle, from
//! the memory side, not when the instruction starts:
//!
//! 1. a line filled through the KeyID during the window is decrypted with the old key and stays
//!    cached after the change: `reprogram_while_cached`, exactly as when the fill came first;
//! 2. a dirty line of the KeyID written back during the window is encrypted with the old key; a
//!    later read through the KeyID returns garbage, correctly, and is no model error.
//!
//! Everything is real: cores, the MESI hierarchy, the memory controller with its key table and
//! DRAM timing, and PCONFIG with the default machine's 1000-cycle latency.

use cache_model::PrefetchConfig;
use checker::{CheckerConfig, CoherencyChecker, ViolationKind};
use cpu_model::kernel::KernelConfig;
use cpu_model::program::{Addr, Credentials, LineFlush, Op, OpKind, OpOutcome, OpTag, Program};
use cpu_model::{MachineConfig, RunEnd, System, SystemConfig, SystemEvent};
use mem_ctrl::pconfig::{KeyCommand, KeyProgramStruct, PconfigCall, PconfigOutcome, PconfigStatus};
use mem_ctrl::xts::XtsAlgorithm;
use sim_core::{CoreId, Cycle, DramAddr, KeyId, MemEvent};

const LINE: u64 = 0x10_0000;
/// The default machine's PCONFIG latency.
const PCONFIG_LATENCY: u64 = 1000;

fn phys(keyid: u16) -> Addr {
    phys_of(keyid, LINE)
}

fn phys_of(keyid: u16, dram: u64) -> Addr {
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

fn pconfig(tag: u32, keyid: u16) -> Op {
    let p = KeyProgramStruct::new(keyid, KeyCommand::SetKeyDirect, XtsAlgorithm::Aes128)
        .with_keys(&[0x5a; 16], &[0xa5; 16]);
    op(
        tag,
        OpKind::Pconfig {
            call: PconfigCall::key_program(p),
        },
    )
}

fn run(programs: Vec<Vec<Op>>) -> System {
    run_recording(programs, None)
}

/// `run`, recording at most `events_max` events of what the checker is fed.
fn run_recording(programs: Vec<Vec<Op>>, events_max: Option<usize>) -> System {
    let mut machine = MachineConfig::preset("default").unwrap();
    machine.caches.prefetch = PrefetchConfig::OFF;
    assert_eq!(machine.memory.pconfig_latency_cycles, PCONFIG_LATENCY);
    let config = SystemConfig {
        machine,
        kernel: KernelConfig::default(),
        cycles_max: 10_000_000,
        drain_at_end: false,
        checker: CheckerConfig::default(),
    };
    let programs = programs
        .into_iter()
        .map(|ops| Program {
            ops,
            credentials: Credentials::default(),
        })
        .collect();
    let mut sys = System::new(&config, programs, 3).unwrap();
    if let Some(max) = events_max {
        sys.record_events(max);
    }
    let end = sys.run();
    assert!(matches!(end, RunEnd::Finished { .. }), "{end:?}");
    sys
}

/// The cycle op `tag` of `core` completed.
fn done(sys: &System, core: u32, tag: u32) -> Cycle {
    sys.results()
        .iter()
        .find(|r| r.core == CoreId::new(core) && r.tag == OpTag(tag))
        .unwrap_or_else(|| panic!("no result for core {core} op {tag}"))
        .cycle
}

fn pconfig_succeeded(sys: &System) -> Cycle {
    let r = sys
        .results()
        .iter()
        .find(|r| matches!(r.outcome, OpOutcome::Pconfig(_)))
        .expect("a PCONFIG result");
    assert_eq!(
        r.outcome,
        OpOutcome::Pconfig(PconfigOutcome::Status(PconfigStatus::Success))
    );
    r.cycle
}

#[test]
fn a_fill_during_the_pconfig_window_is_reprogrammed_while_cached() {
    // Core 0 reprograms KeyID 1; meanwhile core 1 loads through KeyID 1 and keeps the line.
    let sys = run(vec![
        vec![pconfig(1, 1)],
        vec![op(
            2,
            OpKind::Load {
                at: phys(1),
                len: 8,
            },
        )],
    ]);
    let changed = pconfig_succeeded(&sys);
    let filled = done(&sys, 1, 2);
    assert!(
        filled < changed,
        "the load ({filled}) must complete inside the window (key change at {changed})"
    );
    let checker = sys.checker();
    assert!(
        checker.model_errors().is_empty(),
        "{:?}",
        checker.model_errors()
    );
    let kinds: Vec<ViolationKind> = checker.violations().iter().map(|v| v.kind).collect();
    assert_eq!(kinds, [ViolationKind::ReprogramWhileCached]);
    let v = &checker.violations()[0];
    // Reported when the key table really changed, not when PCONFIG started.
    assert_eq!(v.cycle, changed);
    assert_eq!(
        (v.line, v.keyids.as_slice()),
        (DramAddr::new(LINE), &[KeyId::new(1)][..])
    );
}

#[test]
fn a_fill_before_the_pconfig_is_reported_the_same_way() {
    // The same end state, reached with the fill before PCONFIG starts.
    let sys = run(vec![
        vec![op(1, OpKind::Barrier { id: 1 }), pconfig(2, 1)],
        vec![
            op(
                3,
                OpKind::Load {
                    at: phys(1),
                    len: 8,
                },
            ),
            op(4, OpKind::Barrier { id: 1 }),
        ],
    ]);
    let changed = pconfig_succeeded(&sys);
    let checker = sys.checker();
    assert!(
        checker.model_errors().is_empty(),
        "{:?}",
        checker.model_errors()
    );
    let kinds: Vec<ViolationKind> = checker.violations().iter().map(|v| v.kind).collect();
    assert_eq!(kinds, [ViolationKind::ReprogramWhileCached]);
    assert_eq!(checker.violations()[0].cycle, changed);
}

#[test]
fn a_write_back_during_the_pconfig_window_reads_back_as_garbage_without_model_error() {
    // Core 1 stores through KeyID 1 and flushes the line while core 0's PCONFIG of KeyID 1 is
    // in flight: the write-back is encrypted with the old key. After the change, core 1 reads
    // the line through KeyID 1 again: garbage, and nothing the model did was wrong.
    let stored = [0x77u8; 8];
    let sys = run(vec![
        vec![pconfig(1, 1), op(2, OpKind::Barrier { id: 1 })],
        vec![
            op(
                3,
                OpKind::Store {
                    at: phys(1),
                    bytes: stored.to_vec(),
                },
            ),
            op(
                4,
                OpKind::Flush {
                    kind: LineFlush::Clflush,
                    at: phys(1),
                },
            ),
            op(5, OpKind::Mfence),
            // A marker: it completes only after the fence, so after the write-back.
            op(
                8,
                OpKind::Load {
                    at: phys_of(0, LINE + 0x1000),
                    len: 8,
                },
            ),
            op(6, OpKind::Barrier { id: 1 }),
            op(
                7,
                OpKind::Load {
                    at: phys(1),
                    len: 8,
                },
            ),
        ],
    ]);
    let changed = pconfig_succeeded(&sys);
    let flushed = done(&sys, 1, 8);
    assert!(
        flushed < changed,
        "the write-back ({flushed}) must happen inside the window (key change at {changed})"
    );
    let read = sys
        .results()
        .iter()
        .find_map(|r| match (&r.outcome, r.tag) {
            (OpOutcome::Load { bytes, .. }, OpTag(7)) => Some(bytes.clone()),
            _ => None,
        })
        .expect("the load's value");
    assert_ne!(
        read, stored,
        "written under the old key, read under the new one"
    );
    let checker = sys.checker();
    assert!(
        checker.model_errors().is_empty(),
        "{:?}",
        checker.model_errors()
    );
    assert!(
        checker.violations().is_empty(),
        "{:?}",
        checker.violations()
    );
}

#[test]
fn the_recorded_stream_is_what_the_checker_saw() {
    // The first program above, recorded: the key change is in the stream at the completion
    // cycle, the memory side's event before the caches' of that cycle, and the stream fed to
    // a fresh checker gives the very report the system's checker made.
    let programs = || {
        vec![
            vec![pconfig(1, 1)],
            vec![op(
                2,
                OpKind::Load {
                    at: phys(1),
                    len: 8,
                },
            )],
        ]
    };
    let sys = run_recording(programs(), Some(usize::MAX));
    let changed = pconfig_succeeded(&sys);
    let events = sys.recorded_events();
    assert_eq!(sys.events_not_recorded(), 0);
    assert_eq!(events.len() as u64, sys.checker().events_seen());
    let key_changes: Vec<&SystemEvent> = events
        .iter()
        .filter(|e| matches!(e, SystemEvent::Memory(_)))
        .collect();
    assert_eq!(
        key_changes,
        [&SystemEvent::Memory(MemEvent::KeyChanged {
            cycle: changed,
            keyid: KeyId::new(1)
        })]
    );
    assert!(events.windows(2).all(|w| w[0].cycle() <= w[1].cycle()));
    let mut replay = CoherencyChecker::new(
        MachineConfig::preset("default").unwrap().memory.layout,
        CheckerConfig::default(),
    );
    for e in events {
        e.feed(&mut replay);
    }
    assert_eq!(replay.violations(), sys.checker().violations());
    assert!(replay.model_errors().is_empty());

    // Bounded: the first events are kept, the rest counted.
    let bounded = run_recording(programs(), Some(3));
    assert_eq!(bounded.recorded_events(), &events[..3]);
    assert_eq!(bounded.events_not_recorded(), events.len() as u64 - 3);
    // Off by default.
    assert!(run(programs()).recorded_events().is_empty());
}
