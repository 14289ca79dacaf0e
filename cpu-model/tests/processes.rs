//! Several processes (issue 10): each has its own page tables, keys are shared through the key
//! service's view permission (KEY_NEED_VIEW, granted with `keyctl(KEYCTL_SETPERM)`), and only
//! ring 0 and the attacker may name physical addresses.

use cpu_model::kernel::{FIRST_SERIAL, Kernel, KernelConfig, KernelStep, SyscallEnd};
use cpu_model::program::{
    Addr, Backing, Credentials, Errno, FaultKind, KernelCall, Op, OpKind, OpOutcome, OpTag,
    ProcessId, Program, Prot,
};
use cpu_model::{MachineConfig, System, SystemConfig};
use mem_ctrl::pconfig::{PconfigOutcome, PconfigStatus};
use sim_core::{AddressLayout, CoreId, Cycle, DramAddr, KeyId, VirtAddr};

const SUCCESS: PconfigOutcome = PconfigOutcome::Status(PconfigStatus::Success);
const VA: u64 = 0x7000_0000;

fn as_process(p: u32) -> Credentials {
    Credentials {
        process: ProcessId(p),
        ..Credentials::ROOT
    }
}

/// Runs a call; every PCONFIG succeeds.
fn run(k: &mut Kernel, who: Credentials, call: KernelCall) -> SyscallEnd {
    let syscall = k.begin(Cycle::new(10), CoreId::new(0), who, &call);
    let n = syscall
        .steps
        .iter()
        .filter(|s| matches!(s, KernelStep::Pconfig { .. }))
        .count();
    k.finish(syscall, &vec![SUCCESS; n])
}

fn mmap(len: u64) -> KernelCall {
    KernelCall::Mmap {
        addr: VirtAddr::new(VA),
        len,
        prot: Prot::READ_WRITE,
        backing: Backing::Anonymous,
    }
}

fn encrypt(key: &str) -> KernelCall {
    KernelCall::EncryptMprotect {
        addr: VirtAddr::new(VA),
        len: 4096,
        prot: Prot::READ_WRITE,
        key: key.to_owned(),
    }
}

fn add(name: &str) -> KernelCall {
    KernelCall::AddKey {
        name: name.to_owned(),
        payload: "type=cpu algorithm=aes-xts-128".to_owned(),
    }
}

fn share(name: &str, with: u32) -> KernelCall {
    KernelCall::ShareKey {
        name: name.to_owned(),
        process: ProcessId(with),
    }
}

#[test]
fn each_process_has_its_own_page_tables() {
    let mut k = Kernel::new(
        &KernelConfig::default(),
        AddressLayout::default(),
        16 << 30,
        63,
    )
    .unwrap();
    assert_eq!(run(&mut k, as_process(0), mmap(4096)).result, Ok(VA));
    // The same address in another process is another page, on another frame.
    assert_eq!(
        k.walk_in(ProcessId(1), VirtAddr::new(VA)),
        Err(FaultKind::NotMapped)
    );
    assert_eq!(run(&mut k, as_process(1), mmap(8192)).result, Ok(VA));
    let f0 = k.walk_in(ProcessId(0), VirtAddr::new(VA)).unwrap().frame;
    let f1 = k.walk_in(ProcessId(1), VirtAddr::new(VA)).unwrap().frame;
    assert_ne!(f0, f1);
    assert_eq!(
        k.walk(VirtAddr::new(VA)).unwrap().frame,
        f0,
        "walk is process 0's"
    );
    assert_eq!(
        k.direct_map_of_in(ProcessId(1), VirtAddr::new(VA + 8)),
        Ok(VirtAddr::new(0xffff_8880_0000_0000 + f1.raw() + 8))
    );
    // Unmapping in one process leaves the other's pages alone.
    let end = run(
        &mut k,
        as_process(0),
        KernelCall::Munmap {
            addr: VirtAddr::new(VA),
            len: 4096,
        },
    );
    assert_eq!(end.result, Ok(0));
    assert_eq!(end.shootdown, [VirtAddr::new(VA)]);
    assert!(k.walk_in(ProcessId(1), VirtAddr::new(VA)).is_ok());
    assert!(
        k.dump()
            .contains("process 1: 0x70000000-0x70002000 rw anonymous"),
        "{}",
        k.dump()
    );
}

#[test]
fn a_process_uses_only_the_keys_it_may_view() {
    let mut k = Kernel::new(
        &KernelConfig::default(),
        AddressLayout::default(),
        16 << 30,
        63,
    )
    .unwrap();
    assert_eq!(
        run(&mut k, as_process(0), add("vm")).result,
        Ok(FIRST_SERIAL)
    );
    for p in [0, 1, 2] {
        assert_eq!(run(&mut k, as_process(p), mmap(4096)).result, Ok(VA));
    }
    // KEY_NEED_VIEW: the owner may; another process may not, until the owner shares the key.
    assert_eq!(run(&mut k, as_process(0), encrypt("vm")).result, Ok(0));
    assert_eq!(
        run(&mut k, as_process(1), encrypt("vm")).result,
        Err(Errno::Eacces)
    );
    // Only the owner shares it; an unknown key is ENOKEY.
    assert_eq!(
        run(&mut k, as_process(1), share("vm", 1)).result,
        Err(Errno::Eacces)
    );
    assert_eq!(
        run(&mut k, as_process(0), share("nope", 1)).result,
        Err(Errno::Enokey)
    );
    assert_eq!(run(&mut k, as_process(0), share("vm", 1)).result, Ok(0));
    assert_eq!(run(&mut k, as_process(1), encrypt("vm")).result, Ok(0));
    // Both processes' pages now use the key's KeyID; process 2 still may not.
    let keyid = k.keys()[0].keyid.unwrap();
    for p in [0, 1] {
        let frame = k.walk_in(ProcessId(p), VirtAddr::new(VA)).unwrap().frame;
        assert_eq!(AddressLayout::default().keyid(frame), keyid);
    }
    assert_eq!(
        run(&mut k, as_process(2), encrypt("vm")).result,
        Err(Errno::Eacces)
    );
    assert_eq!(
        run(
            &mut k,
            as_process(2),
            KernelCall::InvalidateKey {
                name: "vm".to_owned()
            }
        )
        .result,
        Err(Errno::Eacces)
    );
    let info = &k.keys()[0];
    assert_eq!((info.owner, info.pages), (ProcessId(0), 2));
    assert_eq!(info.viewers, [ProcessId(1)]);
    assert!(
        k.dump().contains("owner process 0, viewed by [1]"),
        "{}",
        k.dump()
    );
}

fn config() -> SystemConfig {
    SystemConfig {
        machine: MachineConfig::preset("default").unwrap(),
        kernel: KernelConfig::default(),
        cycles_max: 10_000_000,
        drain_at_end: false,
        checker: checker::CheckerConfig::default(),
    }
}

fn op(tag: u32, kind: OpKind) -> Op {
    Op {
        tag: OpTag(tag),
        kind,
    }
}

fn phys_load(tag: u32) -> Op {
    let pa = AddressLayout::default()
        .compose(KeyId::new(0), DramAddr::new(0x10000))
        .unwrap();
    op(
        tag,
        OpKind::Load {
            at: Addr::Phys(pa),
            len: 8,
        },
    )
}

#[test]
fn physical_addresses_need_ring_0_or_the_attacker() {
    let user = Credentials {
        ring0: false,
        ..Credentials::ROOT
    };
    let attacker = Credentials {
        attacker: true,
        ..user
    };
    let programs = vec![
        Program {
            ops: vec![phys_load(1)],
            credentials: user,
        },
        Program {
            ops: vec![phys_load(2)],
            credentials: attacker,
        },
    ];
    let mut sys = System::new(&config(), programs, 3).unwrap();
    sys.run();
    let outcome = |tag| {
        sys.results()
            .iter()
            .find(|r| r.tag == OpTag(tag))
            .map(|r| r.outcome.clone())
            .unwrap()
    };
    assert!(
        matches!(outcome(1), OpOutcome::Fault(f) if f.kind == FaultKind::Privilege && f.addr == VirtAddr::new(0x10000))
    );
    assert!(matches!(outcome(2), OpOutcome::Load { .. }));
}

#[test]
fn a_shootdown_reaches_the_callers_process_only() {
    // Two processes map the same address; process 0 unmaps it. Process 1's core, which has the
    // page in its TLB, keeps it (TLB hits count) and can still load from it.
    let mmap_op = |tag| op(tag, OpKind::Kernel(mmap(4096)));
    let load = |tag| {
        op(
            tag,
            OpKind::Load {
                at: Addr::Virt(VirtAddr::new(VA)),
                len: 8,
            },
        )
    };
    let barrier = |tag, id| op(tag, OpKind::Barrier { id });
    let programs = vec![
        Program {
            ops: vec![
                mmap_op(1),
                barrier(2, 0),
                op(
                    3,
                    OpKind::Kernel(KernelCall::Munmap {
                        addr: VirtAddr::new(VA),
                        len: 4096,
                    }),
                ),
                barrier(4, 1),
            ],
            credentials: as_process(0),
        },
        Program {
            ops: vec![mmap_op(5), load(6), barrier(7, 0), barrier(8, 1), load(9)],
            credentials: as_process(1),
        },
    ];
    let mut sys = System::new(&config(), programs, 3).unwrap();
    sys.run();
    let loaded = sys
        .results()
        .iter()
        .filter(|r| r.tag == OpTag(9))
        .all(|r| matches!(r.outcome, OpOutcome::Load { .. }));
    assert!(loaded, "{:?}", sys.results());
    let mut stats = sim_core::StatsReport::new();
    sys.report_stats(&mut stats);
    assert_eq!(
        stats.get_count("core.1.tlb_hits"),
        Some(1),
        "the second load hit the TLB"
    );
}
