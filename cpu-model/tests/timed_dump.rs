//! The dump of a stopped run walks every timed component (`sim_core::TimedComponent`): each
//! core, the machine, the caches, the memory system, each memory controller and its DRAM model.
//! A researcher reading it sees what is stuck, down to the requests waiting in the DRAM queues
//! (issue 9: the "memory" line used to say only whether work was in flight).

use cache_model::PrefetchConfig;
use cache_model::access::{Access, AccessKind};
use checker::CheckerConfig;
use cpu_model::kernel::KernelConfig;
use cpu_model::program::{Addr, Credentials, LineFlush, Op, OpKind, OpTag, Program};
use cpu_model::trace_run::{TraceRunConfig, TraceRunError, run_trace};
use cpu_model::{Machine, MachineConfig, RunEnd, System, SystemConfig};
use mem_ctrl::dram::{DramConfig, MACHINE_IDLE_WRITE_DRAIN_CYCLES};
use sim_core::{Cycle, DramAddr, KeyId};

fn config(preset: &str, cycles_max: u64) -> SystemConfig {
    let mut machine = MachineConfig::preset(preset).unwrap();
    machine.caches.prefetch = PrefetchConfig::OFF;
    SystemConfig {
        machine,
        kernel: KernelConfig::default(),
        cycles_max,
        drain_at_end: false,
        checker: CheckerConfig::default(),
    }
}

/// Physical address of DRAM address `dram` through `keyid` (both presets share the layout).
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

fn program(ops: Vec<Op>) -> Program {
    Program {
        ops,
        credentials: Credentials::default(),
    }
}

fn names(dump: &[(String, String)]) -> Vec<&str> {
    dump.iter().map(|(name, _)| name.as_str()).collect()
}

fn state<'a>(dump: &'a [(String, String)], name: &str) -> &'a str {
    &dump
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no {name:?} in the dump: {:?}", names(dump)))
        .1
}

/// The requests a memory controller's entry lists: `(id, "read" or "write", DRAM address)`.
fn listed_requests(state: &str) -> Vec<(u64, String, u64)> {
    let (_, list) = state
        .split_once("): ")
        .unwrap_or_else(|| panic!("no request list in {state:?}"));
    let list = list.split(';').next().unwrap();
    list.split(", ")
        .map(|entry| {
            let mut words = entry.split(' ');
            let id = words.next().unwrap().strip_prefix('#').unwrap();
            let op = words.next().unwrap().to_owned();
            let addr = words.next().unwrap().strip_prefix("0x").unwrap();
            (
                id.parse().unwrap(),
                op,
                u64::from_str_radix(addr, 16).unwrap(),
            )
        })
        .collect()
}

/// The `N` of `requests accepted and not answered: N (...)`.
fn accepted_count(state: &str) -> usize {
    let rest = state
        .strip_prefix("requests accepted and not answered: ")
        .unwrap_or_else(|| panic!("{state:?}"));
    rest.split(' ').next().unwrap().parse().unwrap()
}

/// The sum of every channel's `outstanding N` in a DRAM model's entry.
fn dram_outstanding(state: &str) -> usize {
    state
        .split("outstanding ")
        .skip(1)
        .map(|rest| rest.split(',').next().unwrap().parse::<usize>().unwrap())
        .sum()
}

/// The request ids (`#N`) a DRAM model's entry lists in its queues.
fn dram_ids(state: &str) -> Vec<u64> {
    state
        .split('#')
        .skip(1)
        .map(|rest| rest.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

/// The line core 0 stores to and flushes in [`deadlock_with_a_parked_write`].
const FLUSHED: u64 = 0x10_0040;

/// Core 0 stores to a line, flushes it and passes one barrier; at the second nobody joins it.
/// Core 1 passes the first barrier and ends. The flushed line's write-back waits in the DRAM
/// write buffer. With `idle_drain` (the default machine) the controller drains it once idle
/// for its timeout; without (DRAMsim3's controller), the buffer drains only once enough writes
/// gather or at the end of a run: here, never.
fn deadlock_with_a_parked_write(idle_drain: bool) -> System {
    let mut cfg = config("default", 100_000);
    if !idle_drain {
        let mut dram = cfg.machine.memory.dram.params().clone();
        dram.controller.idle_write_drain_cycles = None;
        cfg.machine.memory.dram = DramConfig::new(dram).unwrap();
    }
    let a = phys(0, FLUSHED);
    let core0 = vec![
        op(
            1,
            OpKind::Store {
                at: a,
                bytes: vec![0xab],
            },
        ),
        op(
            2,
            OpKind::Flush {
                kind: LineFlush::Clflush,
                at: a,
            },
        ),
        op(3, OpKind::Mfence),
        op(4, OpKind::Barrier { id: 1 }),
        op(5, OpKind::Barrier { id: 1 }),
    ];
    let core1 = vec![op(1, OpKind::Barrier { id: 1 })];
    System::new(&cfg, vec![program(core0), program(core1)], 7).unwrap()
}

#[test]
fn a_barrier_deadlock_dump_names_the_write_parked_in_the_dram_write_buffer() {
    let mut sys = deadlock_with_a_parked_write(false);
    let end = sys.run();
    // The cores are deadlocked, and the memory side holds a write that nothing will move: its
    // DRAM only refreshes, which answers nobody, so the run ends as a deadlock (it used to run
    // to cycles_max, refreshing). The dump shows both: the core at its barrier, the write in
    // the buffer.
    let RunEnd::Deadlock { cycle } = end else {
        panic!("{end:?}")
    };
    assert!(cycle.get() < 2_000, "{end:?}");
    let dump = sys.dump();
    assert_eq!(
        names(&dump),
        [
            "system",
            "core 0",
            "core 1",
            "barriers",
            "machine",
            "caches",
            "memory",
            "memory controller 0",
            "memory controller 0 DRAM",
            "checker",
            "kernel",
        ]
    );
    let core0 = state(&dump, "core 0");
    assert!(
        core0.contains("waiting since cycle ")
            && core0.contains("for the other participants of a barrier (barrier 1, occurrence 2)"),
        "{core0}"
    );
    assert!(state(&dump, "core 1").starts_with("program finished at cycle "));
    assert_eq!(
        state(&dump, "barriers"),
        "barrier 1: core 0 arrived 2x, core 1 arrived 1x"
    );
    assert_eq!(
        state(&dump, "machine"),
        "work in flight: true; next event never"
    );
    // The caches are empty: the write-back left them.
    let caches = state(&dump, "caches");
    assert!(caches.contains("LLC MSHRs 0/64\nwrite-back buffer 0/16; outbox 0\n"));
    assert!(caches.ends_with("drain pending: false; work in flight: false; next event never"));
    assert_eq!(
        state(&dump, "memory"),
        "PCONFIG update pending: none; responses waiting 0; events not taken 0; work in flight: \
         true; next event never"
    );
    // The controller names the write (the read for ownership, #0, was answered) and its line,
    // not yet in DRAM ...
    assert_eq!(
        state(&dump, "memory controller 0"),
        "requests accepted and not answered: 1 (reads 0, writes 1): #1 write 0x100040; requests \
         refused for a full queue and not accepted since: 0; lines whose writes have not reached \
         DRAM: 0x100040"
    );
    assert_eq!(
        sys.machine().memory().pending_write_lines(),
        [DramAddr::new(FLUSHED)]
    );
    // ... and its DRAM model says where it waits: in the write buffer, reads being served.
    let dram = state(&dump, "memory controller 0 DRAM");
    let lines: Vec<&str> = dram.lines().collect();
    assert!(
        lines[0].starts_with("DRAM controller `ddr4-2400` (DRAM cycles): last tick at cycle "),
        "{dram}"
    );
    assert!(
        lines[1].starts_with(
            "channel 0: read queue 0/32 (+0 coalesced), write buffer 1/32 (+0 encrypting), \
             serving reads, flush writes off, outstanding 1, completions pending 0, last \
             activity "
        ),
        "{dram}"
    );
    assert!(
        lines[2].starts_with("  write buffer: write 0x100040 #1 accepted "),
        "{dram}"
    );
    assert_eq!(
        lines[3],
        "  refresh: 0 due, first due rank None, held rank None"
    );
    // The run stops before any refresh: the row the read for ownership opened is still open.
    assert_eq!(
        lines[4],
        "  rank 0 bg 0 bank 0: open row 4 (1 column commands)"
    );
    assert_eq!(lines.len(), 5, "{dram}");

    // The same run dumps the same text.
    let mut again = deadlock_with_a_parked_write(false);
    assert_eq!(again.run(), end);
    assert_eq!(again.dump(), dump);
}

/// The same program on the default machine, whose controller drains its write buffer once idle
/// for `MACHINE_IDLE_WRITE_DRAIN_CYCLES`: the flushed and fenced line reaches DRAM within the
/// timeout (plus the write's own DRAM latency), and the run, with nothing left in flight, ends
/// as a deadlock with the memory side empty.
#[test]
fn with_idle_write_drain_a_flushed_line_reaches_dram_within_the_timeout() {
    let mut sys = deadlock_with_a_parked_write(true);
    let line = DramAddr::new(FLUSHED);
    let pending = |sys: &System| sys.machine().memory().pending_write_lines().contains(&line);
    // The cycle the controller accepts the write-back, then the cycle its burst has put the
    // line in DRAM.
    let mut cycle = 0;
    let mut step_while = |sys: &mut System, want: bool| {
        while pending(sys) == want {
            cycle += 1;
            assert!(cycle < 20_000, "line {line} pending: {want} until {cycle}");
            sys.run_until(Cycle::new(cycle));
        }
        cycle
    };
    let accepted = step_while(&mut sys, false);
    let written = step_while(&mut sys, true);
    assert_ne!(sys.machine().memory().dimm_line(line), [0u8; 64]);
    // The controller is idle from the acceptance on: its drain starts the timeout later, and
    // the WRITE (ACT + tRCD, then CWL + tBurst) lands well within 60 more DRAM cycles.
    let ratio = sys.machine().memory().clock_ratio();
    let timeout = u64::from(MACHINE_IDLE_WRITE_DRAIN_CYCLES);
    let at_least = ratio.to_fast(Cycle::new(timeout)).get() - 3;
    let at_most = ratio.to_fast(Cycle::new(timeout + 60)).get();
    let waited = written - accepted;
    assert!(
        (at_least..=at_most).contains(&waited),
        "accepted at {accepted}, in DRAM at {written}: {waited} cycles, not in \
         {at_least}..={at_most}"
    );
    // Nothing is in flight any more: a true deadlock, reported as one right away.
    let end = sys.run();
    assert!(matches!(end, RunEnd::Deadlock { .. }), "{end:?}");
    let dump = sys.dump();
    assert_eq!(
        state(&dump, "memory controller 0"),
        "requests accepted and not answered: 0 (reads 0, writes 0); requests refused for a full \
         queue and not accepted since: 0"
    );
    assert_eq!(
        state(&dump, "machine"),
        "work in flight: false; next event never"
    );
}

/// Eight cores of the `server` machine (two memory controllers, interleaved every 4 KiB) each
/// load, store and CLFLUSHOPT lines spread over many pages through KeyID 3, stopped at cycle
/// 3000 while both controllers are busy.
fn heavy_traffic() -> System {
    let cfg = config("server", 3_000);
    let programs = (0..8u64)
        .map(|c| {
            let mut ops = Vec::new();
            for k in 0..48u64 {
                let base = 0x100_0000 + c * 0x10_0000 + k * 0x840;
                let (w, r) = (phys(3, base), phys(3, base + 0x8_0000));
                ops.push(op(1, OpKind::Load { at: r, len: 8 }));
                ops.push(op(
                    2,
                    OpKind::Store {
                        at: w,
                        bytes: vec![c as u8],
                    },
                ));
                ops.push(op(
                    3,
                    OpKind::Flush {
                        kind: LineFlush::Clflushopt,
                        at: w,
                    },
                ));
            }
            program(ops)
        })
        .collect();
    System::new(&cfg, programs, 7).unwrap()
}

#[test]
fn a_cycles_max_dump_under_heavy_traffic_lists_every_controllers_queued_requests() {
    let mut sys = heavy_traffic();
    assert_eq!(
        sys.run(),
        RunEnd::CyclesMax {
            cycle: Cycle::new(3_000)
        }
    );
    let dump = sys.dump();
    let mut expected = vec!["system".to_owned()];
    expected.extend((0..8).map(|c| format!("core {c}")));
    expected.extend(
        [
            "barriers",
            "machine",
            "caches",
            "memory",
            "memory controller 0",
            "memory controller 0 DRAM",
            "memory controller 1",
            "memory controller 1 DRAM",
            "checker",
            "kernel",
        ]
        .map(str::to_owned),
    );
    assert_eq!(names(&dump), expected);

    let caches = state(&dump, "caches");
    for c in 0..8 {
        assert!(
            caches.contains(&format!("\ncore {c}: L1D MSHRs (flushes included) "))
                || caches.starts_with(&format!("core {c}: L1D MSHRs (flushes included) ")),
            "{caches}"
        );
    }
    assert!(caches.contains("LLC MSHRs "), "{caches}");
    assert!(caches.contains("sent, waiting for memory"), "{caches}");

    let (mut reads, mut writes) = (0, 0);
    for mc in 0..2u64 {
        let own = state(&dump, &format!("memory controller {mc}"));
        let requests = listed_requests(own);
        assert!(!requests.is_empty(), "controller {mc} is idle: {own}");
        assert_eq!(accepted_count(own), requests.len(), "{own}");
        // Listed by id, each with the KeyID its read decrypts for, each on this controller
        // (address bit 12 selects it).
        let ids: Vec<u64> = requests.iter().map(|r| r.0).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{own}");
        for (id, op, addr) in &requests {
            assert_eq!(
                (addr >> 12) & 1,
                mc,
                "#{id} {op} {addr:#x} on controller {mc}"
            );
            match op.as_str() {
                "read" => {
                    reads += 1;
                    assert!(
                        own.contains(&format!("#{id} read {addr:#x} KeyID 3")),
                        "{own}"
                    );
                }
                "write" => writes += 1,
                other => panic!("{other} in {own}"),
            }
        }
        // The DRAM model accounts for the same requests and lists its queued ones, by the same
        // ids, with controller-local addresses (the controller-select bit squeezed out).
        let dram = state(&dump, &format!("memory controller {mc} DRAM"));
        assert_eq!(dram_outstanding(dram), requests.len(), "{dram}");
        let queued = dram_ids(dram);
        assert!(!queued.is_empty(), "{dram}");
        for id in &queued {
            let (_, op, addr) = requests
                .iter()
                .find(|r| r.0 == *id)
                .unwrap_or_else(|| panic!("#{id} in the DRAM queues only:\n{dram}\n{own}"));
            let local = (addr >> 13) << 12 | (addr & 0xfff);
            assert!(
                dram.contains(&format!("{op} {local:#x} #{id} accepted ")),
                "#{id} {op} {local:#x} not in\n{dram}"
            );
        }
    }
    assert!(reads > 0 && writes > 0, "{reads} reads, {writes} writes");
    // The writes wait in a write buffer while reads are served.
    assert!(
        (0..2).any(|mc| state(&dump, &format!("memory controller {mc} DRAM"))
            .contains("\n  write buffer: write ")),
        "{dump:#?}"
    );

    // Deterministic, byte for byte.
    let mut again = heavy_traffic();
    again.run();
    assert_eq!(again.dump(), dump);
}

#[test]
fn a_trace_run_past_cycles_max_reports_every_component() {
    let mut machine = Machine::new(&MachineConfig::preset("default").unwrap(), 1).unwrap();
    let trace = (0..256u64).map(|i| {
        Ok::<_, std::io::Error>(Access {
            kind: if i % 2 == 0 {
                AccessKind::Write
            } else {
                AccessKind::Read
            },
            addr: 0x10_0000 + 0x1040 * i,
            size: 8,
        })
    });
    let config = TraceRunConfig {
        cycles_max: 500,
        ..TraceRunConfig::default()
    };
    let err = run_trace(&mut machine, trace, &config).unwrap_err();
    let TraceRunError::CycleLimit { state, .. } = &err else {
        panic!("{err}");
    };
    let headings: Vec<&str> = state.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(
        headings,
        [
            "trace core:",
            "machine:",
            "caches:",
            "memory:",
            "memory controller 0:",
            "memory controller 0 DRAM:",
        ]
    );
    assert!(
        state.contains("\n  line pieces in flight 8 of 8; pieces waiting to issue "),
        "{state}"
    );
    assert!(
        state.contains("\n  requests accepted and not answered: "),
        "{state}"
    );
    assert!(state.contains("\n  channel 0: read queue "), "{state}");
    assert!(
        err.to_string().contains("machine state:\ntrace core:\n"),
        "{err}"
    );
}
