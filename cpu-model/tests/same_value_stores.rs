//! Two stores of equal bytes are two different data (issue 16).
//!
//! With a non-inclusive LLC two dirty copies of one (KeyID, line) can coexist: core 0 stores
//! v1, core 1 reads it (the LLC keeps a dirty copy), core 0 stores again (v2, its own M copy).
//! When v2 has the same bytes as v1, the LLC's older copy written back must not be taken for
//! v2: the checker dates write-backs by the store stamp they carry, never by their bytes. The
//! machine is tiny (two-way L1D, L2 and LLC of one or two sets) so that a couple of loads
//! evict a line, and the prefetchers are off.

use cache_model::PrefetchConfig;
use checker::{CheckerConfig, ViolationKind};
use cpu_model::kernel::KernelConfig;
use cpu_model::program::{Addr, Credentials, LineFlush, Op, OpKind, OpTag, Program};
use cpu_model::{MachineConfig, RunEnd, System, SystemConfig};
use mem_ctrl::pconfig::{KeyCommand, KeyProgramStruct, PconfigCall};
use mem_ctrl::xts::XtsAlgorithm;
use sim_core::{DramAddr, KeyId, PhysAddr};

const LINE: u64 = 0x10000;
/// Lines that map to the same (only) L1D set, and to LINE's L2 and LLC sets.
const OTHERS: [u64; 4] = [0x20000, 0x30000, 0x40000, 0x50000];

fn pa(keyid: u16, dram: u64) -> PhysAddr {
    MachineConfig::preset("default")
        .unwrap()
        .memory
        .layout
        .compose(KeyId::new(keyid), DramAddr::new(dram))
        .unwrap()
}

fn at(keyid: u16, dram: u64) -> Addr {
    Addr::Phys(pa(keyid, dram))
}

/// Builds one core's ops with fresh tags.
#[derive(Default)]
struct Ops {
    ops: Vec<Op>,
}

impl Ops {
    fn push(&mut self, kind: OpKind) -> &mut Ops {
        let tag = OpTag(self.ops.len() as u32 + 1);
        self.ops.push(Op { tag, kind });
        self
    }

    fn store(&mut self, keyid: u16, dram: u64, value: u64) -> &mut Ops {
        self.push(OpKind::Store {
            at: at(keyid, dram),
            bytes: value.to_le_bytes().to_vec(),
        })
    }

    fn load(&mut self, keyid: u16, dram: u64) -> &mut Ops {
        self.push(OpKind::Load {
            at: at(keyid, dram),
            len: 8,
        })
    }

    fn barrier(&mut self, id: u32) -> &mut Ops {
        self.push(OpKind::Barrier { id })
    }

    fn clflush(&mut self, keyid: u16, dram: u64) -> &mut Ops {
        self.push(OpKind::Flush {
            kind: LineFlush::Clflush,
            at: at(keyid, dram),
        })
    }
}

#[derive(Copy, Clone, Debug)]
struct Case {
    inclusive: bool,
    /// The second store and the reader on another core than the first store; otherwise one
    /// core does everything (the LLC's dirty copy then comes from its own eviction).
    two_cores: bool,
    /// KeyID 1 writes the same DRAM line (and flushes it) after the LLC's older copy went to
    /// memory and before core 0's newer copy does: the rule is broken.
    intervene: bool,
    /// The second store's value (1 repeats the first).
    second: u64,
}

fn run(case: Case) -> System {
    let mut machine = MachineConfig::preset("default").unwrap();
    machine.caches.cores = 2;
    machine.caches.prefetch = PrefetchConfig::OFF;
    // An inclusive LLC may not be smaller than an L2 (validation refuses it): two sets then,
    // and every line used here maps to the first.
    let llc_size = if case.inclusive { 256 } else { 128 };
    for (level, size) in [
        (&mut machine.caches.l1d.cache, 128),
        (&mut machine.caches.l2.cache, 256),
        (&mut machine.caches.llc.cache, llc_size),
    ] {
        level.size_bytes = size;
        level.ways = 2;
        level.sets = size / (2 * 64);
    }
    machine.caches.llc_inclusive = case.inclusive;
    let config = SystemConfig {
        machine,
        kernel: KernelConfig::default(),
        cycles_max: 10_000_000,
        drain_at_end: true,
        checker: CheckerConfig::default(),
    };
    let (mut c0, mut c1) = (Ops::default(), Ops::default());
    if case.intervene {
        let p = KeyProgramStruct::new(1, KeyCommand::SetKeyDirect, XtsAlgorithm::Aes128)
            .with_keys(&[0x11; 16], &[0x12; 16]);
        c0.push(OpKind::Pconfig {
            call: PconfigCall::key_program(p),
        });
    }
    c0.store(0, LINE, 1);
    if case.two_cores {
        // Core 1 reads the modified line: the LLC receives it and keeps a dirty copy.
        c0.barrier(1);
        c1.barrier(1).load(0, LINE).barrier(2);
        c0.barrier(2);
    } else {
        // Core 0's own copies leave for the LLC (dirty), and the line comes back.
        c0.load(0, OTHERS[0]).load(0, OTHERS[1]).load(0, LINE);
    }
    c0.store(0, LINE, case.second);
    // The LLC's older copy is evicted by lines core 1 brings in (core 0 keeps its own).
    c0.barrier(3);
    c1.barrier(3).load(0, OTHERS[2]).load(0, OTHERS[3]);
    if case.intervene {
        c1.store(1, LINE, 0x2222).clflush(1, LINE);
    }
    c1.barrier(4);
    c0.barrier(4);
    // Core 0's newer copy is evicted last.
    c0.load(0, OTHERS[0]).load(0, OTHERS[1]);
    let programs = [c0, c1]
        .into_iter()
        .map(|o| Program {
            ops: o.ops,
            credentials: Credentials::default(),
        })
        .collect();
    let mut sys = System::new(&config, programs, 5).unwrap();
    let end = sys.run();
    assert!(matches!(end, RunEnd::Finished { .. }), "{case:?}: {end:?}");
    sys
}

fn kinds(sys: &System, case: Case) -> Vec<ViolationKind> {
    let checker = sys.checker();
    assert!(
        checker.model_errors().is_empty(),
        "{case:?}: {:?}",
        checker.model_errors()
    );
    checker.violations().iter().map(|v| v.kind).collect()
}

/// The value DRAM holds for the line through KeyID `keyid` after the run (drained).
fn final_value(sys: &System, keyid: u16) -> u64 {
    let line = sys.machine().memory().peek_line(pa(keyid, LINE));
    u64::from_le_bytes(line[..8].try_into().unwrap())
}

fn cases() -> impl Iterator<Item = Case> {
    [false, true].into_iter().flat_map(|inclusive| {
        [false, true].into_iter().flat_map(move |two_cores| {
            [1, 2].into_iter().map(move |second| Case {
                inclusive,
                two_cores,
                intervene: false,
                second,
            })
        })
    })
}

#[test]
fn a_repeated_store_of_equal_bytes_is_no_violation() {
    // The program in issue 16: on the old checker, phantom_dirty on line 0x10000.
    for case in cases() {
        let sys = run(case);
        assert_eq!(kinds(&sys, case), [], "{case:?}");
        assert_eq!(final_value(&sys, 0), case.second, "{case:?}");
    }
}

#[test]
fn the_non_inclusive_llc_really_holds_two_dirty_copies() {
    // The case is what it claims: the LLC's older copy goes to memory while core 0 still
    // holds the newer one, dirty. Two write-backs of the line, the older first.
    let case = Case {
        inclusive: false,
        two_cores: true,
        intervene: false,
        second: 1,
    };
    let mut report = sim_core::StatsReport::new();
    run(case).report_stats(&mut report);
    assert_eq!(report.get_count("hierarchy.mem_writes"), Some(2));
}

#[test]
fn an_intervening_write_through_another_keyid_is_dual_dirty_then_data_loss() {
    // With equal bytes the old checker missed the dual_dirty (it had taken the older copy's
    // write-back for the newer store and marked the alias clean).
    for case in cases() {
        let case = Case {
            intervene: true,
            ..case
        };
        let sys = run(case);
        let got = kinds(&sys, case);
        if case.inclusive {
            // An inclusive LLC never keeps an older copy: its eviction takes core 0's newest
            // data with it. Then KeyID 1 writes, and nothing of KeyID 0 is left to lose.
            assert_eq!(got, [], "{case:?}");
            assert_eq!(final_value(&sys, 1), 0x2222, "{case:?}");
            continue;
        }
        assert_eq!(
            got,
            [ViolationKind::DualDirty, ViolationKind::DataLoss],
            "{case:?}"
        );
        let loss = &sys.checker().violations()[1];
        assert_eq!(loss.keyids, [KeyId::new(0), KeyId::new(1)], "{case:?}");
        // KeyID 0's newest data overwrote KeyID 1's.
        assert_eq!(final_value(&sys, 0), case.second, "{case:?}");
    }
}
