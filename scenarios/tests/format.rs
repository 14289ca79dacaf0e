//! The scenario format, read into the typed scenario: every op, every expectation, defaults,
//! `Some(...)` left out or written, and the places the locator finds.

use checker::ViolationKind;
use cpu_model::kernel::KernelConfig;
use cpu_model::program::{
    Addr, Backing, Credentials, Errno, FaultKind, KernelCall, LineFlush, OpKind, OpTag, Prot,
};
use cpu_model::{CoreConfig, MachineConfig};
use mem_ctrl::pconfig::{FaultVector, KeyCommand, KeyProgramStruct, PconfigCall, PconfigStatus};
use mem_ctrl::xts::XtsAlgorithm;
use scenarios::locate::{PathSeg, RonIndex};
use scenarios::scenario::{
    AttackerPlan, DramDumpPlan, DumpTime, ExpectKind, Expectation, Location, PconfigExpect,
    Scenario, ViolationExpect,
};
use scenarios::validate::parse;
use sim_core::{CoreId, DramAddr, KeyId, PhysAddr, VirtAddr};

const FULL: &str = r#"// A scenario that uses every op and every expectation.
(
    name: "every-op",
    description: "all of it",
    seed: 42,
    machine: (
        preset: "default",
        caches: (cores: 4),
        memory: (tme: (max_keys: 15)),
        core: (issue_width: 2, store_buffer: 8),
    ),
    kernel: (keyids: 8, program_retries: 5, flush_on_keyid_change: false,
             unmap_encrypted_from_direct_map: true, frames: (base: 0x8000_0000, size: "256m")),
    run: (cycles_max: 5_000_000, drain_at_end: false),
    cores: [
        (
            ops: [
                add_key(key: "k1", payload: "type=cpu algorithm=aes-xts-128", label: "ak", expect: value(1)),
                mmap(addr: 0x7000_0000, len: "8k", prot: rw, label: "m", expect: ok),
                mmap(addr: 0x7100_0000, len: 4096, prot: r, file: "f", offset: 0x1000),
                encrypt_mprotect(addr: 0x7000_0000, len: "8k", prot: rw, key: "k1", expect: ok),
                store(at: virt(0x7000_0000), data: hex("00112233 44556677"), label: "s"),
                load(at: virt(0x7000_0000), label: "r1", expect: u64(0x7766554433221100)),
                load(at: phys(keyid: 3, addr: 0x10000), len: 4, label: "r2"),
                clflush(at: direct_map_of(0x7000_0000), label: "cf", expect_fault: direct_map_unmapped),
                clflushopt(at: virt(0x7000_0040)),
                clwb(at: virt(0x7000_0080), expect_fault: any),
                prefetch(at: virt(0x7000_1000)),
                speculative_load(at: virt(0x7000_1000), len: 16),
                wbinvd, mfence, sfence,
                mispredict([load(at: virt(0x7000_2000), label: "shadow"), store(at: virt(0x7000_2000), data: u8(1))]),
                compute(100),
                barrier("go"),
                repeat(times: 3, ops: [
                    store(at: virt(0x7000_0000), data: fill(byte: 0xaa, len: 64)),
                    repeat(times: 0, ops: [mfence]),
                ]),
                pconfig(keyid: 2, command: set_key_direct, algorithm: aes_xts_256, key: "KEY",
                        tweak: "TWEAK", leaf: 0, struct_addr: 0x2000, label: "p", expect: success),
                pconfig_raw(bytes: "RAW", leaf: 7, label: "praw", expect: gp),
                munmap(addr: 0x7100_0000, len: "4k", label: "un"),
                mprotect(addr: 0x7000_0000, len: "4k", prot: none),
                invalidate_key(key: "k1", expect: err(enokey)),
            ],
        ),
        (ring0: false, cap_sys_resource: false, ops: [
            barrier("go"),
            load(at: virt(0x10), len: Some(2), label: "r1", expect_fault: not_mapped),
            pconfig(keyid: 1, command: clear_key, label: "up", expect: ud),
        ]),
        (ops: []),
    ],
    attacker: (bus_log: true, dram_dumps: [
        (at: end, lines: [0x10000, 0x10040]),
        (at: cycle(5000), range: (start: 0x20000, lines: 4)),
    ]),
    expect: [
        load(core: 0, label: "r2", value: text("abcd")),
        pconfig(core: 1, label: "up", outcome: ud),
        kernel(core: 0, label: "m", result: ok),
        fault(core: 1, label: "r1", kind: not_mapped),
        fault(core: 0, label: "cf"),
        no_faults, no_violations, any_violation,
        violation(kind: dual_dirty, line: 0x10000),
        violation(kind: stale_read),
        plaintext(keyid: 3, line: 0x10000, data: fill(byte: 0, len: 64)),
        cycles(min: 1, max: 100000),
        cycles(max: 10),
    ],
)
"#;

fn key() -> Vec<u8> {
    (0u8..32).collect()
}

fn tweak() -> Vec<u8> {
    (0x80u8..0x90).collect()
}

fn raw_struct() -> KeyProgramStruct {
    KeyProgramStruct::from_fields(5, 0x11, 0x0104, 0x80).with_keys(&[0xee; 16], &[])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn full_text() -> String {
    FULL.replace("KEY", &hex(&key()))
        .replace("TWEAK", &hex(&tweak()))
        .replace("RAW", &hex(&raw_struct().to_bytes()))
}

fn full() -> Scenario {
    match parse(&full_text(), "lib/every.ron") {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

/// Where the `n`-th (0-based) occurrence of `needle` starts, found by plain text search.
fn pos(text: &str, needle: &str, n: usize) -> Location {
    let (offset, _) = text
        .match_indices(needle)
        .nth(n)
        .unwrap_or_else(|| panic!("no occurrence {n} of {needle:?}"));
    let before = &text[..offset];
    Location {
        line: 1 + before.matches('\n').count(),
        column: 1 + before.rsplit('\n').next().unwrap().chars().count(),
    }
}

#[test]
fn header_machine_kernel_and_run() {
    let s = full();
    assert_eq!(s.name, "every-op");
    assert_eq!(s.file, "lib/every.ron");
    assert_eq!(s.description, "all of it");
    assert_eq!(s.seed, 42);
    let m = &s.system.machine;
    assert_eq!(m.caches.cores, 4);
    assert_eq!(m.memory.tme.max_keys, 15);
    assert_eq!(
        m.core,
        CoreConfig {
            issue_width: 2,
            store_buffer_entries: 8,
            ..CoreConfig::default()
        }
    );
    let d = MachineConfig::preset("default").unwrap();
    assert_eq!(m.caches.l1d, d.caches.l1d);
    assert_eq!(
        s.system.kernel,
        KernelConfig {
            keyids: Some(8),
            program_retries: 5,
            flush_on_keyid_change: false,
            unmap_encrypted_from_direct_map: true,
            frames_base: 0x8000_0000,
            frames_bytes: 256 << 20,
        }
    );
    assert_eq!(s.system.cycles_max, 5_000_000);
    assert!(!s.system.drain_at_end);
}

#[test]
fn programs_ops_and_tags() {
    let s = full();
    assert_eq!(s.programs.len(), 3);
    assert_eq!(s.programs[0].credentials, Credentials::default());
    assert_eq!(
        s.programs[1].credentials,
        Credentials {
            ring0: false,
            cap_sys_resource: false,
            ..Credentials::ROOT
        }
    );
    assert!(s.programs[2].ops.is_empty());
    assert_eq!(s.ops.len(), 32);

    let p0 = &s.programs[0].ops;
    assert_eq!(p0.len(), 24);
    // Top-level tags of core 0; nested ops are numbered in between (pre-order).
    let tags: Vec<u32> = p0.iter().map(|o| o.tag.0).collect();
    assert_eq!(
        tags,
        [
            0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 18, 19, 20, 24, 25, 26, 27, 28
        ]
    );
    let layout = s.system.machine.memory.layout;

    assert_eq!(
        p0[0].kind,
        OpKind::Kernel(KernelCall::AddKey {
            name: "k1".into(),
            payload: "type=cpu algorithm=aes-xts-128".into()
        })
    );
    assert_eq!(
        p0[1].kind,
        OpKind::Kernel(KernelCall::Mmap {
            addr: VirtAddr::new(0x7000_0000),
            len: 8192,
            prot: Prot::READ_WRITE,
            backing: Backing::Anonymous
        })
    );
    assert_eq!(
        p0[2].kind,
        OpKind::Kernel(KernelCall::Mmap {
            addr: VirtAddr::new(0x7100_0000),
            len: 4096,
            prot: Prot::READ,
            backing: Backing::File {
                name: "f".into(),
                offset: 0x1000
            }
        })
    );
    assert_eq!(
        p0[3].kind,
        OpKind::Kernel(KernelCall::EncryptMprotect {
            addr: VirtAddr::new(0x7000_0000),
            len: 8192,
            prot: Prot::READ_WRITE,
            key: "k1".into()
        })
    );
    assert_eq!(
        p0[4].kind,
        OpKind::Store {
            at: Addr::Virt(VirtAddr::new(0x7000_0000)),
            bytes: vec![0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]
        }
    );
    assert_eq!(
        p0[5].kind,
        OpKind::Load {
            at: Addr::Virt(VirtAddr::new(0x7000_0000)),
            len: 8
        }
    );
    let pa = layout
        .compose(KeyId::new(3), DramAddr::new(0x10000))
        .unwrap();
    assert_eq!(pa, PhysAddr::new((3 << 46) | 0x10000));
    assert_eq!(
        p0[6].kind,
        OpKind::Load {
            at: Addr::Phys(pa),
            len: 4
        }
    );
    assert_eq!(
        p0[7].kind,
        OpKind::Flush {
            kind: LineFlush::Clflush,
            at: Addr::DirectMapOf(VirtAddr::new(0x7000_0000))
        }
    );
    assert_eq!(
        p0[8].kind,
        OpKind::Flush {
            kind: LineFlush::Clflushopt,
            at: Addr::Virt(VirtAddr::new(0x7000_0040))
        }
    );
    assert_eq!(
        p0[9].kind,
        OpKind::Flush {
            kind: LineFlush::Clwb,
            at: Addr::Virt(VirtAddr::new(0x7000_0080))
        }
    );
    assert_eq!(
        p0[10].kind,
        OpKind::Prefetch {
            at: Addr::Virt(VirtAddr::new(0x7000_1000))
        }
    );
    assert_eq!(
        p0[11].kind,
        OpKind::SpeculativeLoad {
            at: Addr::Virt(VirtAddr::new(0x7000_1000)),
            len: 16
        }
    );
    assert_eq!(p0[12].kind, OpKind::Wbinvd);
    assert_eq!(p0[13].kind, OpKind::Mfence);
    assert_eq!(p0[14].kind, OpKind::Sfence);
    let OpKind::Mispredict { shadow } = &p0[15].kind else {
        panic!("{:?}", p0[15]);
    };
    assert_eq!(
        shadow.iter().map(|o| o.tag).collect::<Vec<_>>(),
        [OpTag(16), OpTag(17)]
    );
    assert_eq!(
        shadow[1].kind,
        OpKind::Store {
            at: Addr::Virt(VirtAddr::new(0x7000_2000)),
            bytes: vec![1]
        }
    );
    assert_eq!(p0[16].kind, OpKind::Compute { cycles: 100 });
    assert_eq!(p0[17].kind, OpKind::Barrier { id: 0 });
    let OpKind::Repeat { times: 3, body } = &p0[18].kind else {
        panic!("{:?}", p0[18]);
    };
    assert_eq!(body[0].tag, OpTag(21));
    assert_eq!(
        body[0].kind,
        OpKind::Store {
            at: Addr::Virt(VirtAddr::new(0x7000_0000)),
            bytes: vec![0xaa; 64]
        }
    );
    let OpKind::Repeat {
        times: 0,
        body: inner,
    } = &body[1].kind
    else {
        panic!("{:?}", body[1]);
    };
    assert_eq!((body[1].tag, inner[0].tag), (OpTag(22), OpTag(23)));
    assert_eq!(inner[0].kind, OpKind::Mfence);
    assert_eq!(p0[19].tag, OpTag(24));
    assert_eq!(
        p0[19].kind,
        OpKind::Pconfig {
            call: PconfigCall {
                leaf: 0,
                struct_addr: 0x2000,
                privileged: true,
                program: KeyProgramStruct::new(2, KeyCommand::SetKeyDirect, XtsAlgorithm::Aes256)
                    .with_keys(&key(), &tweak()),
            }
        }
    );
    assert_eq!(
        p0[20].kind,
        OpKind::Pconfig {
            call: PconfigCall {
                leaf: 7,
                struct_addr: 0x1000,
                privileged: true,
                program: raw_struct(),
            }
        }
    );
    assert_eq!(
        p0[21].kind,
        OpKind::Kernel(KernelCall::Munmap {
            addr: VirtAddr::new(0x7100_0000),
            len: 4096
        })
    );
    assert_eq!(
        p0[22].kind,
        OpKind::Kernel(KernelCall::Mprotect {
            addr: VirtAddr::new(0x7000_0000),
            len: 4096,
            prot: Prot::NONE
        })
    );

    let p1 = &s.programs[1].ops;
    assert_eq!(p1.iter().map(|o| o.tag.0).collect::<Vec<_>>(), [29, 30, 31]);
    assert_eq!(p1[0].kind, OpKind::Barrier { id: 0 });
    assert_eq!(
        p1[1].kind,
        OpKind::Load {
            at: Addr::Virt(VirtAddr::new(0x10)),
            len: 2
        }
    );
    // Privilege comes from the core's ring0.
    assert_eq!(
        p1[2].kind,
        OpKind::Pconfig {
            call: PconfigCall {
                leaf: 0,
                struct_addr: 0x1000,
                privileged: false,
                program: KeyProgramStruct::new(1, KeyCommand::ClearKey, XtsAlgorithm::Aes128),
            }
        }
    );
}

#[test]
fn the_last_top_level_op_of_core_0() {
    let s = full();
    let last = s.programs[0].ops.last().unwrap();
    // invalidate_key is tag 28, after munmap (26) and mprotect (27).
    assert_eq!(last.tag, OpTag(28));
    assert_eq!(
        last.kind,
        OpKind::Kernel(KernelCall::InvalidateKey { name: "k1".into() })
    );
    assert_eq!(s.ops[28].summary, "invalidate_key `k1`");
}

#[test]
fn op_infos_places_names_and_summaries() {
    let s = full();
    let text = full_text();
    let info = |t: usize| &s.ops[t];
    assert_eq!(info(0).place, pos(&text, "add_key(", 0));
    assert_eq!(
        info(0).place,
        Location {
            line: 18,
            column: 17
        }
    );
    assert_eq!(info(0).core, CoreId::new(0));
    assert_eq!(info(0).name.as_deref(), Some("ak"));
    assert_eq!(
        info(0).summary,
        "add_key `k1` (type=cpu algorithm=aes-xts-128)"
    );
    assert_eq!(info(1).summary, "mmap 0x7000_0000 len 0x2000 rw anonymous");
    assert_eq!(
        info(2).summary,
        "mmap 0x7100_0000 len 0x1000 r file `f` offset 0x1000"
    );
    assert_eq!(
        info(3).summary,
        "encrypt_mprotect 0x7000_0000 len 0x2000 rw key `k1`"
    );
    assert_eq!(info(4).summary, "store 8 bytes at virt 0x7000_0000");
    assert_eq!(info(5).summary, "load 8 bytes at virt 0x7000_0000");
    assert_eq!(info(6).summary, "load 4 bytes at phys keyid 3 0x1_0000");
    assert_eq!(info(7).summary, "clflush at direct_map_of 0x7000_0000");
    assert_eq!(info(8).summary, "clflushopt at virt 0x7000_0040");
    assert_eq!(info(9).summary, "clwb at virt 0x7000_0080");
    assert_eq!(info(10).summary, "prefetch at virt 0x7000_1000");
    assert_eq!(
        info(11).summary,
        "speculative load 16 bytes at virt 0x7000_1000"
    );
    assert_eq!(info(12).summary, "wbinvd");
    assert_eq!(info(12).place, pos(&text, "wbinvd", 0));
    assert_eq!(info(13).place, pos(&text, "mfence", 0));
    assert_eq!(info(14).place, pos(&text, "sfence", 0));
    assert_eq!(info(15).summary, "mispredict with 2 shadow op(s)");
    assert_eq!(info(16).place, pos(&text, "load(at: virt(0x7000_2000)", 0));
    assert_eq!(info(16).name.as_deref(), Some("shadow"));
    assert_eq!(info(17).place, pos(&text, "store(at: virt(0x7000_2000)", 0));
    assert_eq!(info(18).summary, "compute 100 cycles");
    assert_eq!(info(19).summary, "barrier `go`");
    assert_eq!(info(20).summary, "repeat 3 times: 2 op(s)");
    assert_eq!(
        info(21).place,
        pos(&text, "store(at: virt(0x7000_0000), data: fill", 0)
    );
    assert_eq!(info(22).summary, "repeat 0 times: 1 op(s)");
    assert_eq!(info(23).place, pos(&text, "mfence]", 0));
    assert_eq!(
        info(24).summary,
        "pconfig set_key_direct keyid 2 aes_xts_256"
    );
    assert_eq!(info(24).name.as_deref(), Some("p"));
    assert_eq!(
        info(25).summary,
        "pconfig_raw keyid 5 command 17 enc_alg 0x104"
    );
    assert_eq!(info(26).summary, "munmap 0x7100_0000 len 0x1000");
    assert_eq!(info(27).summary, "mprotect 0x7000_0000 len 0x1000 none");
    assert_eq!(info(28).place, pos(&text, "invalidate_key(", 0));
    assert_eq!(info(29).core, CoreId::new(1));
    assert_eq!(info(29).place, pos(&text, "barrier(\"go\")", 1));
    assert_eq!(info(30).name.as_deref(), Some("r1"));
    assert_eq!(info(30).summary, "load 2 bytes at virt 0x10");
    assert_eq!(info(31).place, pos(&text, "pconfig(keyid: 1", 0));
    assert_eq!(info(31).summary, "pconfig clear_key keyid 1 aes_xts_128");
    // Every op's place is where its text starts.
    for (t, op) in s.ops.iter().enumerate() {
        let line = text.lines().nth(op.place.line - 1).unwrap();
        let rest: String = line.chars().skip(op.place.column - 1).collect();
        let head = op.summary.split(' ').next().unwrap();
        let head = if head == "speculative" {
            "speculative_load"
        } else {
            head
        };
        assert!(
            rest.starts_with(head),
            "op {t} at {}: {rest:?} vs {head}",
            op.place
        );
    }
}

#[test]
fn expectations_in_file_order() {
    let s = full();
    let text = full_text();
    let at = |needle: &str, n: usize| pos(&text, needle, n);
    let pa3 = DramAddr::new(0x10000);
    let expected = vec![
        Expectation {
            place: at("add_key(", 0),
            kind: ExpectKind::Kernel {
                op: OpTag(0),
                result: Ok(Some(1)),
            },
        },
        Expectation {
            place: at("mmap(", 0),
            kind: ExpectKind::Kernel {
                op: OpTag(1),
                result: Ok(None),
            },
        },
        Expectation {
            place: at("encrypt_mprotect(", 0),
            kind: ExpectKind::Kernel {
                op: OpTag(3),
                result: Ok(None),
            },
        },
        Expectation {
            place: at("load(at: virt(0x7000_0000)", 0),
            kind: ExpectKind::LoadValue {
                op: OpTag(5),
                bytes: 0x7766554433221100u64.to_le_bytes().to_vec(),
            },
        },
        Expectation {
            place: at("clflush(", 0),
            kind: ExpectKind::Fault {
                op: OpTag(7),
                kind: Some(FaultKind::DirectMapUnmapped),
            },
        },
        Expectation {
            place: at("clwb(", 0),
            kind: ExpectKind::Fault {
                op: OpTag(9),
                kind: None,
            },
        },
        Expectation {
            place: at("pconfig(keyid: 2", 0),
            kind: ExpectKind::Pconfig {
                op: OpTag(24),
                outcome: PconfigExpect::Status(PconfigStatus::Success),
            },
        },
        Expectation {
            place: at("pconfig_raw(", 0),
            kind: ExpectKind::Pconfig {
                op: OpTag(25),
                outcome: PconfigExpect::Fault(FaultVector::GeneralProtection),
            },
        },
        Expectation {
            place: at("invalidate_key(", 0),
            kind: ExpectKind::Kernel {
                op: OpTag(28),
                result: Err(Errno::Enokey),
            },
        },
        Expectation {
            place: at("load(at: virt(0x10)", 0),
            kind: ExpectKind::Fault {
                op: OpTag(30),
                kind: Some(FaultKind::NotMapped),
            },
        },
        Expectation {
            place: at("pconfig(keyid: 1", 0),
            kind: ExpectKind::Pconfig {
                op: OpTag(31),
                outcome: PconfigExpect::Fault(FaultVector::InvalidOpcode),
            },
        },
        Expectation {
            place: at("load(core: 0", 0),
            kind: ExpectKind::LoadValue {
                op: OpTag(6),
                bytes: b"abcd".to_vec(),
            },
        },
        Expectation {
            place: at("pconfig(core: 1", 0),
            kind: ExpectKind::Pconfig {
                op: OpTag(31),
                outcome: PconfigExpect::Fault(FaultVector::InvalidOpcode),
            },
        },
        Expectation {
            place: at("kernel(core: 0", 0),
            kind: ExpectKind::Kernel {
                op: OpTag(1),
                result: Ok(None),
            },
        },
        Expectation {
            place: at("fault(core: 1", 0),
            kind: ExpectKind::Fault {
                op: OpTag(30),
                kind: Some(FaultKind::NotMapped),
            },
        },
        Expectation {
            place: at("fault(core: 0", 0),
            kind: ExpectKind::Fault {
                op: OpTag(7),
                kind: None,
            },
        },
        Expectation {
            place: at("no_faults", 0),
            kind: ExpectKind::NoFaults,
        },
        Expectation {
            place: at("no_violations", 0),
            kind: ExpectKind::Violations(ViolationExpect::None),
        },
        Expectation {
            place: at("any_violation", 0),
            kind: ExpectKind::Violations(ViolationExpect::Any),
        },
        Expectation {
            place: at("violation(kind: dual_dirty", 0),
            kind: ExpectKind::Violations(ViolationExpect::Kind {
                kind: ViolationKind::DualDirty,
                line: Some(pa3),
                chain: vec![],
            }),
        },
        Expectation {
            place: at("violation(kind: stale_read", 0),
            kind: ExpectKind::Violations(ViolationExpect::Kind {
                kind: ViolationKind::StaleRead,
                line: None,
                chain: vec![],
            }),
        },
        Expectation {
            place: at("plaintext(", 0),
            kind: ExpectKind::Plaintext {
                keyid: KeyId::new(3),
                line: pa3,
                bytes: vec![0; 64],
            },
        },
        Expectation {
            place: at("cycles(min", 0),
            kind: ExpectKind::Cycles {
                min: Some(1),
                max: Some(100_000),
            },
        },
        Expectation {
            place: at("cycles(max", 0),
            kind: ExpectKind::Cycles {
                min: None,
                max: Some(10),
            },
        },
    ];
    assert_eq!(s.expectations.len(), expected.len());
    for (got, want) in s.expectations.iter().zip(&expected) {
        assert_eq!(got, want);
    }
}

#[test]
fn attacker_plan() {
    let s = full();
    let text = full_text();
    assert_eq!(
        s.attacker,
        AttackerPlan {
            bus_log: true,
            dram_dumps: vec![
                DramDumpPlan {
                    at: DumpTime::End,
                    lines: vec![DramAddr::new(0x10000), DramAddr::new(0x10040)],
                    place: pos(&text, "(at: end", 0),
                    label: None,
                },
                DramDumpPlan {
                    at: DumpTime::Cycle(5000),
                    lines: (0..4).map(|i| DramAddr::new(0x20000 + 64 * i)).collect(),
                    place: pos(&text, "(at: cycle", 0),
                    label: None,
                },
            ],
            ..AttackerPlan::default()
        }
    );
}

#[test]
fn defaults_apply() {
    let s = parse(
        "(cores: [(ops: [load(at: virt(0x1000))])])",
        "dir/some-name.ron",
    )
    .unwrap();
    assert_eq!(s.name, "some-name");
    assert_eq!(s.description, "");
    assert_eq!(s.seed, 0);
    let d = MachineConfig::preset("default").unwrap();
    assert_eq!(s.system.machine.caches, d.caches);
    assert_eq!(s.system.machine.core, d.core);
    assert_eq!(s.system.kernel, KernelConfig::default());
    assert_eq!(s.system.cycles_max, 10_000_000);
    assert!(s.system.drain_at_end);
    assert_eq!(s.programs[0].credentials, Credentials::default());
    assert_eq!(
        s.programs[0].ops[0].kind,
        OpKind::Load {
            at: Addr::Virt(VirtAddr::new(0x1000)),
            len: 8
        }
    );
    assert_eq!(s.attacker, AttackerPlan::default());
    assert!(s.expectations.is_empty());

    // A load's len defaults to its expectation's length.
    let s = parse(
        "(cores: [(ops: [load(at: virt(0), expect: u16(0x1234)), \
         pconfig(keyid: 1, command: set_key_random), speculative_load(at: virt(0))])])",
        "x.ron",
    )
    .unwrap();
    assert_eq!(
        s.programs[0].ops[0].kind,
        OpKind::Load {
            at: Addr::Virt(VirtAddr::new(0)),
            len: 2
        }
    );
    assert_eq!(
        s.expectations[0].kind,
        ExpectKind::LoadValue {
            op: OpTag(0),
            bytes: vec![0x34, 0x12]
        }
    );
    assert_eq!(
        s.programs[0].ops[1].kind,
        OpKind::Pconfig {
            call: PconfigCall::key_program(KeyProgramStruct::new(
                1,
                KeyCommand::SetKeyRandom,
                XtsAlgorithm::Aes128
            ))
        }
    );
    assert_eq!(
        s.programs[0].ops[2].kind,
        OpKind::SpeculativeLoad {
            at: Addr::Virt(VirtAddr::new(0)),
            len: 8
        }
    );
}

#[test]
fn implicit_some_and_explicit_some_read_alike() {
    let bare = parse(
        "(seed: 3, run: (cycles_max: 50), kernel: (keyids: 2), \
         cores: [(ring0: false, ops: [load(at: virt(8), len: 2, label: \"a\")])], \
         expect: [cycles(min: 1)])",
        "a.ron",
    )
    .unwrap();
    let wrapped = parse(
        "(seed: Some(3), run: Some((cycles_max: Some(50))), kernel: Some((keyids: Some(2))), \
         cores: [(ring0: Some(false), ops: [load(at: virt(8), len: Some(2), label: Some(\"a\"))])], \
         expect: [cycles(min: Some(1), max: None)])",
        "a.ron",
    )
    .unwrap();
    assert_eq!(bare.seed, wrapped.seed);
    assert_eq!(bare.system.cycles_max, 50);
    assert_eq!(bare.system.cycles_max, wrapped.system.cycles_max);
    assert_eq!(bare.system.kernel, wrapped.system.kernel);
    assert_eq!(bare.programs, wrapped.programs);
    assert_eq!(bare.ops[0].name, wrapped.ops[0].name);
    assert_eq!(
        bare.expectations
            .iter()
            .map(|e| &e.kind)
            .collect::<Vec<_>>(),
        wrapped
            .expectations
            .iter()
            .map(|e| &e.kind)
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_byte_order_mark_is_ignored() {
    let s = parse("\u{feff}(cores: [(ops: [mfence])])", "bom.ron").unwrap();
    assert_eq!(
        s.ops[0].place,
        Location {
            line: 1,
            column: 17
        }
    );
}

#[test]
fn data_forms() {
    let cases: [(&str, Vec<u8>); 7] = [
        ("hex(\"00 11_22\\n33\")", vec![0, 0x11, 0x22, 0x33]),
        ("u8(0xfe)", vec![0xfe]),
        ("u16(0x0102)", vec![2, 1]),
        ("u32(0x01020304)", vec![4, 3, 2, 1]),
        ("u64(1)", vec![1, 0, 0, 0, 0, 0, 0, 0]),
        ("fill(byte: 7, len: 3)", vec![7, 7, 7]),
        ("text(\"hi!\")", b"hi!".to_vec()),
    ];
    for (data, bytes) in cases {
        let text = format!("(cores: [(ops: [store(at: virt(0), data: {data})])])");
        let s = parse(&text, "d.ron").unwrap_or_else(|e| panic!("{data}: {e}"));
        assert_eq!(
            s.programs[0].ops[0].kind,
            OpKind::Store {
                at: Addr::Virt(VirtAddr::new(0)),
                bytes
            },
            "{data}"
        );
    }
}

#[test]
fn machine_sections_reach_the_system() {
    let s = parse(
        "(machine: (preset: \"server\", memory: (keyid_bits: 4, tme: (max_keys: 15)), \
         core: (tlb_entries: 8, page_walk_cycles: 100, syscall_cycles: 0, \
         outstanding_loads: 1, branch_resolve_cycles: 5)), \
         cores: [(ops: [load(at: phys(keyid: 15, addr: 0))])])",
        "m.ron",
    )
    .unwrap();
    let m = &s.system.machine;
    assert_eq!(m.caches.cores, 8);
    assert_eq!(m.memory.layout.keyid_bits(), 4);
    assert_eq!(
        m.core,
        CoreConfig {
            tlb_entries: 8,
            page_walk_cycles: 100,
            syscall_cycles: 0,
            outstanding_loads: 1,
            branch_resolve_cycles: 5,
            ..CoreConfig::default()
        }
    );
    let pa = m
        .memory
        .layout
        .compose(KeyId::new(15), DramAddr::new(0))
        .unwrap();
    assert_eq!(
        s.programs[0].ops[0].kind,
        OpKind::Load {
            at: Addr::Phys(pa),
            len: 8
        }
    );
}

#[test]
fn barriers_are_numbered_by_first_appearance() {
    let s = parse(
        "(cores: [(ops: [barrier(\"b\"), barrier(\"a\"), barrier(\"b\")]), \
         (ops: [barrier(\"a\"), barrier(\"b\"), barrier(\"b\")])])",
        "b.ron",
    )
    .unwrap();
    let ids: Vec<Vec<u32>> = s
        .programs
        .iter()
        .map(|p| {
            p.ops
                .iter()
                .map(|o| match o.kind {
                    OpKind::Barrier { id } => id,
                    _ => panic!(),
                })
                .collect()
        })
        .collect();
    assert_eq!(ids, [[0, 1, 0], [1, 0, 0]]);
}

#[test]
fn the_locator_finds_exact_positions() {
    let text = "(\n    // a comment with ( [ brackets\n    name: \"str with ) ] , : inside\",\n    \
                /* block /* nested ( */ still ] */ cores: [\n        (ops: [mispredict([load(at: \
                virt(1)), compute(3)]), repeat(times: 2, ops: [mfence])]),\n    ],\n)\n";
    let index = RonIndex::new(text);
    use PathSeg::{Field, Index};
    let ops = [Field("cores"), Index(0), Field("ops")];
    let at = |extra: &[PathSeg<'static>]| {
        let mut p = ops.to_vec();
        p.extend_from_slice(extra);
        index.locate(&p)
    };
    assert_eq!(
        index.locate(&[Field("name")]),
        Some(Location {
            line: 3,
            column: 11
        })
    );
    assert_eq!(
        index.locate(&[Field("cores")]),
        Some(Location {
            line: 4,
            column: 47
        })
    );
    assert_eq!(at(&[Index(0)]), Some(pos(text, "mispredict", 0)));
    assert_eq!(at(&[Index(0), Index(0)]), Some(pos(text, "[load", 0)));
    assert_eq!(
        at(&[Index(0), Index(0), Index(0)]),
        Some(pos(text, "load(", 0))
    );
    assert_eq!(
        at(&[Index(0), Index(0), Index(0), Field("at")]),
        Some(pos(text, "virt(1)", 0))
    );
    assert_eq!(
        at(&[Index(0), Index(0), Index(0), Field("at"), Index(0)]),
        Some(pos(text, "1)", 0))
    );
    assert_eq!(
        at(&[Index(0), Index(0), Index(1), Index(0)]),
        Some(pos(text, "3)", 0))
    );
    assert_eq!(at(&[Index(1), Field("times")]), Some(pos(text, "2,", 0)));
    assert_eq!(
        at(&[Index(1), Field("ops"), Index(0)]),
        Some(pos(text, "mfence", 0))
    );
    assert_eq!(at(&[Index(2)]), None);
    // And the validated scenario agrees.
    let s = parse(text, "l.ron").unwrap();
    assert_eq!(s.ops[1].place, pos(text, "load(", 0));
    assert_eq!(s.ops[4].place, pos(text, "mfence", 0));
}

/// The ```ron blocks of a document.
fn ron_blocks(doc: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_start()) {
            // The info string may carry a marker: ```ron fragment=machine
            (None, l) if l.starts_with("```ron") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn the_documented_examples_parse() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/");
    let doc = std::fs::read_to_string(format!("{root}scenario-format.md")).unwrap();
    let blocks = ron_blocks(&doc);
    assert!(blocks.len() >= 2);
    let s = parse(&blocks[0], "docs/alias-without-flush.ron").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.name, "alias-without-flush");
    assert_eq!(s.programs.len(), 2);
    assert!(!s.programs[1].credentials.ring0);
    // The attacker fragment, inside a scenario.
    let attacker = blocks
        .iter()
        .find(|b| b.trim_start().starts_with("attacker:"))
        .expect("the attacker fragment");
    let fragment = format!("(cores: [], {})", attacker.trim());
    let s = parse(&fragment, "f.ron").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.attacker.dram_dumps.len(), 2);

    // The machine-format example is a valid `machine:` section, `core` included.
    let doc = std::fs::read_to_string(format!("{root}machine-format.md")).unwrap();
    let machine = &ron_blocks(&doc)[0];
    let s = parse(&format!("(machine: {machine}, cores: [])"), "m.ron")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.system.machine.core, CoreConfig::default());
    assert_eq!(s.system.machine.caches.cores, 4);
}
