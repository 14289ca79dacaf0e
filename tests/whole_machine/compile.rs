//! A plan compiled into programs, one per core. Two compilers read the same plan:
//!
//! - [`Mode::RuleAbiding`] emits only programs that follow the aliasing rules
//!   (docs/coherency-checker.md, "What following the rules means here") and computes, in
//!   program order, the value every load must return and what DRAM must hold at the end. Any
//!   subsequence of a plan compiles to a rule-abiding program, because the compiler, not the
//!   plan, inserts the discipline: phases separated by barriers, one writer per line and phase,
//!   loads and stores through the line's active KeyID only, a switch of KeyID that flushes
//!   every alias of the line first, PCONFIG alone in its phase after a WBINVD, system calls in
//!   a phase of their own, and a whole-line store before the first use of a line whose
//!   contents are unknown;
//! - [`Mode::Arbitrary`] emits the steps as they are: any alias, any time, PCONFIG of any
//!   KeyID (KeyID 0 included) while others run, the direct map of an encrypted page.
//!
//! Tags are numbered in file order over every core (shadow ops after their branch), as
//! scenario files number them.

use crate::case::{
    Case, KERNEL_KEY, KERNEL_KEY_PAYLOAD, KEYIDS, LINES, Mode, PCONFIG_SETTLE_CYCLES, Step,
    VIRT_BASE, VIRT_BYTES, VIRT_LINES, direct_key, pattern, phys,
};
use crate::reference::{LineRecord, Reference};
use cpu_model::program::{Addr, Credentials, LineFlush, Op, OpKind, OpTag, Program};
use mem_ctrl::pconfig::{KeyCommand, KeyProgramStruct, PconfigCall};
use mem_ctrl::xts::XtsAlgorithm;
use sim_core::{LineBytes, VirtAddr};
use std::collections::BTreeMap;

/// A plan compiled: the programs, and for a rule-abiding plan what they must produce.
#[derive(Clone, Debug, Default)]
pub struct Compiled {
    pub programs: Vec<Program>,
    /// Rule-abiding only: the bytes each load must return, by tag.
    pub load_values: BTreeMap<OpTag, Vec<u8>>,
    /// Rule-abiding only: what each line must read as through its KeyID at the end, when
    /// the program left it with known contents: (KeyID, DRAM line, bytes).
    pub final_lines: Vec<(u16, u64, LineBytes)>,
}

impl Compiled {
    /// The programs and expectations of a scenario file written from a case: its loads'
    /// expected values and its `plaintext` expectations.
    pub fn from_scenario(s: &scenarios::scenario::Scenario) -> Compiled {
        use scenarios::scenario::ExpectKind;
        let mut c = Compiled {
            programs: s.programs.clone(),
            ..Compiled::default()
        };
        for e in &s.expectations {
            match &e.kind {
                ExpectKind::LoadValue { op, bytes } => {
                    c.load_values.insert(*op, bytes.clone());
                }
                ExpectKind::Plaintext { keyid, line, bytes } => c.final_lines.push((
                    keyid.get(),
                    line.raw(),
                    bytes.as_slice().try_into().expect("64 bytes"),
                )),
                _ => {}
            }
        }
        c
    }
}

/// An op before its tag (tags are numbered at the end, in file order over every core, as
/// scenario files number them).
struct Pending {
    kind: OpKind,
    /// The value a rule-abiding load must return.
    expect: Option<Vec<u8>>,
}

/// Who uses a line in the current phase.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Use {
    None,
    Reader(u8),
    Readers,
    Writer(u8),
}

struct Compiler<'a> {
    case: &'a Case,
    cores: u8,
    ops: Vec<Vec<Pending>>,
    barriers: u32,
    /// Rule-abiding state per line: the active alias index, its use in this phase, and the
    /// program-order reference (what the line holds through its active KeyID).
    active: Vec<usize>,
    uses: Vec<Use>,
    reference: Reference,
    /// The key generation of every KeyID index (rule-abiding PCONFIGs always succeed).
    generations: Vec<u32>,
    /// The MKTME key has been added (`add_key` emitted).
    key_added: bool,
    /// Rule-abiding: the user mapping's state (`None`: unmapped) and what each of its lines
    /// holds.
    mapping: Option<Mapping>,
}

/// The user mapping, as a rule-abiding program knows it.
#[derive(Clone, Copy, Debug)]
struct Mapping {
    encrypted: bool,
    lines: [LineBytes; 4],
}

impl Case {
    /// The programs, and for a rule-abiding plan what they must produce.
    pub fn compile(&self) -> Compiled {
        let cores = self.machine.cores as u8;
        let mut c = Compiler {
            case: self,
            cores,
            ops: (0..cores).map(|_| Vec::new()).collect(),
            barriers: 0,
            active: vec![0; self.lines],
            uses: vec![Use::None; self.lines + VIRT_LINES.len()],
            reference: Reference::default(),
            generations: vec![0; self.keyids],
            key_added: false,
            mapping: None,
        };
        for step in &self.steps {
            match self.mode {
                Mode::RuleAbiding => c.rule_abiding(step),
                Mode::Arbitrary => c.arbitrary(step),
            }
        }
        c.finish()
    }
}

fn flush_kind(kind: u8) -> LineFlush {
    match kind % 3 {
        0 => LineFlush::Clflush,
        1 => LineFlush::Clflushopt,
        _ => LineFlush::Clwb,
    }
}

fn pconfig_call(keyid: u16, command: u8, key: u8, aes256: bool) -> OpKind {
    let algorithm = if aes256 {
        XtsAlgorithm::Aes256
    } else {
        XtsAlgorithm::Aes128
    };
    let command = KeyCommand::ALL[usize::from(command % 4)];
    let (k, t) = if command == KeyCommand::SetKeyDirect {
        direct_key(key, aes256)
    } else {
        (Vec::new(), Vec::new())
    };
    let program = KeyProgramStruct::new(keyid, command, algorithm).with_keys(&k, &t);
    OpKind::Pconfig {
        call: PconfigCall::key_program(program),
    }
}

fn virt(line: u8, offset: u8) -> u64 {
    VIRT_BASE + VIRT_LINES[usize::from(line) % VIRT_LINES.len()] + u64::from(offset)
}

impl Compiler<'_> {
    /// The system call of a kernel step (`add_key` first, once, before the first
    /// `encrypt_mprotect`).
    fn kernel_call(&mut self, core: usize, call: u8) {
        use cpu_model::program::{Backing, KernelCall, Prot};
        let call = match call % 3 {
            0 => KernelCall::Mmap {
                addr: VirtAddr::new(VIRT_BASE),
                len: VIRT_BYTES,
                prot: Prot::READ_WRITE,
                backing: Backing::Anonymous,
            },
            1 => {
                if !self.key_added {
                    self.key_added = true;
                    self.push(
                        core,
                        OpKind::Kernel(KernelCall::AddKey {
                            name: KERNEL_KEY.to_owned(),
                            payload: KERNEL_KEY_PAYLOAD.to_owned(),
                        }),
                    );
                }
                KernelCall::EncryptMprotect {
                    addr: VirtAddr::new(VIRT_BASE),
                    len: VIRT_BYTES,
                    prot: Prot::READ_WRITE,
                    key: KERNEL_KEY.to_owned(),
                }
            }
            _ => KernelCall::Munmap {
                addr: VirtAddr::new(VIRT_BASE),
                len: VIRT_BYTES,
            },
        };
        self.push(core, OpKind::Kernel(call));
    }

    /// The op of a `Step::Virt`.
    fn virt_op(line: u8, kind: u8, offset: u8, len: u8, p: u8) -> OpKind {
        let (offset, len) = clamp_span(offset, len);
        let at = virt(line, offset);
        let bytes = || pattern(p)[usize::from(offset)..usize::from(offset + len)].to_vec();
        match kind % 5 {
            0 => OpKind::Load {
                at: Addr::Virt(VirtAddr::new(at)),
                len,
            },
            1 => OpKind::Store {
                at: Addr::Virt(VirtAddr::new(at)),
                bytes: bytes(),
            },
            2 => OpKind::Flush {
                kind: LineFlush::Clflush,
                at: Addr::Virt(VirtAddr::new(at)),
            },
            3 => OpKind::Load {
                at: Addr::DirectMapOf(VirtAddr::new(at)),
                len,
            },
            _ => OpKind::Store {
                at: Addr::DirectMapOf(VirtAddr::new(at)),
                bytes: bytes(),
            },
        }
    }

    fn core(&self, core: u8) -> usize {
        usize::from(core % self.cores)
    }

    fn push(&mut self, core: usize, kind: OpKind) {
        self.ops[core].push(Pending { kind, expect: None });
    }

    /// Every core meets at a new barrier; a new phase begins.
    fn barrier(&mut self) {
        let id = self.barriers;
        self.barriers += 1;
        for core in 0..self.ops.len() {
            self.push(core, OpKind::Barrier { id });
        }
        self.uses.fill(Use::None);
    }

    fn shadow(&self, shadow: &[(u8, u8, u8)]) -> Vec<Op> {
        shadow
            .iter()
            .map(|&(kind, line, alias)| {
                let at = phys(self.case.keyid(alias), self.case.line(line));
                let kind = match kind % 3 {
                    0 => OpKind::Load { at, len: 8 },
                    1 => OpKind::Store {
                        at,
                        bytes: pattern(3)[..8].to_vec(),
                    },
                    _ => OpKind::Prefetch { at },
                };
                // Tags are given when the programs are finished.
                Op {
                    tag: OpTag(0),
                    kind,
                }
            })
            .collect()
    }

    /// The step as it is.
    fn arbitrary(&mut self, step: &Step) {
        let case = self.case;
        let at = |line: u8, alias: u8| phys(case.keyid(alias), case.line(line));
        match *step {
            Step::Load {
                core,
                line,
                alias,
                offset,
                len,
            } => {
                let len = len.clamp(1, 64 - offset.min(63));
                let addr = phys_offset(at(line, alias), offset);
                self.push(self.core(core), OpKind::Load { at: addr, len });
            }
            Step::Store {
                core,
                line,
                alias,
                offset,
                len,
                pattern: p,
            } => {
                let (offset, len) = clamp_span(offset, len);
                let bytes = pattern(p)[usize::from(offset)..usize::from(offset + len)].to_vec();
                let addr = phys_offset(at(line, alias), offset);
                self.push(self.core(core), OpKind::Store { at: addr, bytes });
            }
            Step::Flush {
                core,
                line,
                alias,
                kind,
            } => self.push(
                self.core(core),
                OpKind::Flush {
                    kind: flush_kind(kind),
                    at: at(line, alias),
                },
            ),
            Step::Wbinvd { core } => self.push(self.core(core), OpKind::Wbinvd),
            Step::Fence { core, mfence } => self.push(
                self.core(core),
                if mfence {
                    OpKind::Mfence
                } else {
                    OpKind::Sfence
                },
            ),
            Step::Speculative { core, line, alias } => self.push(
                self.core(core),
                OpKind::SpeculativeLoad {
                    at: at(line, alias),
                    len: 8,
                },
            ),
            Step::Prefetch { core, line, alias } => self.push(
                self.core(core),
                OpKind::Prefetch {
                    at: at(line, alias),
                },
            ),
            Step::Mispredict { core, ref shadow } => {
                let shadow = self.shadow(shadow);
                self.push(self.core(core), OpKind::Mispredict { shadow });
            }
            Step::Compute { core, cycles } => self.push(
                self.core(core),
                OpKind::Compute {
                    cycles: u64::from(cycles),
                },
            ),
            Step::Switch {
                core, line, alias, ..
            } => self.push(
                self.core(core),
                OpKind::Flush {
                    kind: LineFlush::Clflush,
                    at: at(line, alias),
                },
            ),
            Step::Sync => self.barrier(),
            Step::Pconfig {
                core,
                alias,
                command,
                key,
                aes256,
            } => {
                let kind = pconfig_call(case.keyid(alias), command, key, aes256);
                self.push(self.core(core), kind);
            }
            Step::Kernel { core, call } => self.kernel_call(self.core(core), call),
            Step::Virt {
                core,
                line,
                kind,
                offset,
                len,
                pattern: p,
            } => {
                let op = Compiler::virt_op(line, kind, offset, len, p);
                self.push(self.core(core), op);
            }
        }
    }

    /// `core` is about to load (or store, `write`) line `l`: starts a new phase if another
    /// core used it in a way that conflicts (one writer, or any number of readers).
    fn use_line(&mut self, core: u8, l: usize, write: bool) {
        let next = match (self.uses[l], write) {
            (Use::None, false) => Some(Use::Reader(core)),
            (Use::None, true) => Some(Use::Writer(core)),
            (Use::Reader(c), false) if c == core => Some(Use::Reader(c)),
            (Use::Reader(_) | Use::Readers, false) => Some(Use::Readers),
            (Use::Reader(c), true) if c == core => Some(Use::Writer(c)),
            (Use::Writer(c), _) if c == core => Some(Use::Writer(c)),
            _ => None,
        };
        self.uses[l] = match next {
            Some(u) => u,
            None => {
                self.barrier();
                if write {
                    Use::Writer(core)
                } else {
                    Use::Reader(core)
                }
            }
        };
    }

    /// A store through line `l`'s active KeyID, recorded in the reference.
    fn store_active(&mut self, core: u8, l: usize, offset: u8, bytes: &[u8]) {
        self.use_line(core, l, true);
        let keyid = KEYIDS[self.active[l]];
        let dram = LINES[l];
        let generation = self.generations[self.active[l]];
        self.reference.store(dram, keyid, generation, offset, bytes);
        let at = phys_offset(phys(keyid, dram), offset);
        self.push(
            usize::from(core),
            OpKind::Store {
                at,
                bytes: bytes.to_vec(),
            },
        );
    }

    /// Whether line `l` holds known bytes through its active KeyID (its last whole-line
    /// store was through it, under its current key).
    fn known(&self, l: usize) -> Option<&LineRecord> {
        let keyid = KEYIDS[self.active[l]];
        let generation = self.generations[self.active[l]];
        self.reference
            .current(LINES[l])
            .filter(|r| r.keyid == keyid && r.generation == generation && r.all_known())
    }

    /// Makes line `l`'s contents known before `core` uses it: a whole-line store of pattern
    /// `p` when they are not.
    fn ensure_known(&mut self, core: u8, l: usize, p: u8) {
        if self.known(l).is_none() {
            self.store_active(core, l, 0, &pattern(p));
        }
    }

    /// The step, made to follow the rules.
    fn rule_abiding(&mut self, step: &Step) {
        let case = self.case;
        match *step {
            Step::Load {
                core,
                line,
                offset,
                len,
                ..
            } => {
                let core = core % self.cores;
                let l = usize::from(line) % case.lines;
                let len = len.clamp(1, 64 - offset.min(63));
                self.ensure_known(core, l, line);
                self.use_line(core, l, false);
                let record = self.known(l).expect("made known above");
                let expect = record.bytes(offset, len).expect("every byte known");
                let at = phys_offset(phys(KEYIDS[self.active[l]], LINES[l]), offset);
                self.ops[usize::from(core)].push(Pending {
                    kind: OpKind::Load { at, len },
                    expect: Some(expect),
                });
            }
            Step::Store {
                core,
                line,
                offset,
                len,
                pattern: p,
                ..
            } => {
                let core = core % self.cores;
                let l = usize::from(line) % case.lines;
                let (offset, len) = clamp_span(offset, len);
                self.ensure_known(core, l, p);
                let bytes = pattern(p)[usize::from(offset)..usize::from(offset + len)].to_vec();
                self.store_active(core, l, offset, &bytes);
            }
            // Flushes, fences, WBINVD, speculation and prefetches through any alias never
            // break a rule: they change no data, and speculative and prefetched fills are
            // clean. (A stale copy they leave is flushed before its KeyID becomes active, and
            // a PCONFIG phase begins with a WBINVD.)
            Step::Flush { .. }
            | Step::Wbinvd { .. }
            | Step::Fence { .. }
            | Step::Speculative { .. }
            | Step::Prefetch { .. }
            | Step::Mispredict { .. }
            | Step::Compute { .. } => self.arbitrary(step),
            Step::Switch {
                core,
                line,
                alias,
                kinds,
                pattern: p,
            } => {
                let core = core % self.cores;
                let l = usize::from(line) % case.lines;
                let to = usize::from(alias) % case.keyids;
                // A phase of its own: nobody else uses the line meanwhile.
                self.barrier();
                let c = usize::from(core);
                if kinds & 0x80 != 0 {
                    self.push(c, OpKind::Wbinvd);
                } else {
                    // Every alias: the old one's dirty data goes to memory, and stale copies
                    // of the others (the new one included) go away.
                    for (i, &keyid) in case.keyid_list().iter().enumerate() {
                        let kind = flush_kind(kinds >> (2 * (i % 3)));
                        self.push(
                            c,
                            OpKind::Flush {
                                kind,
                                at: phys(keyid, LINES[l]),
                            },
                        );
                    }
                    // CLFLUSHOPT and CLWB are ordered with the new KeyID's store by a fence.
                    self.push(
                        c,
                        if kinds & 0x40 != 0 {
                            OpKind::Mfence
                        } else {
                            OpKind::Sfence
                        },
                    );
                }
                self.active[l] = to;
                // The new owner overwrites the line: its old contents read through the new
                // KeyID are garbage.
                self.store_active(core, l, 0, &pattern(p));
            }
            Step::Kernel { core, call } => {
                // A phase of its own: the kernel's flushes and zeroing race with nobody.
                let c = self.core(core);
                let call = match (self.mapping, call % 3) {
                    (None, _) => 0,
                    (Some(_), 0) => 1,
                    (Some(_), c) => c,
                };
                self.barrier();
                self.kernel_call(c, call);
                self.barrier();
                self.mapping = match (self.mapping, call) {
                    // Anonymous memory is zeroed.
                    (None, _) => Some(Mapping {
                        encrypted: false,
                        lines: [[0; 64]; 4],
                    }),
                    // A page that changes KeyID loses its contents and is zeroed through the
                    // new one; one that has the key's KeyID already keeps them.
                    (Some(m), 1) if !m.encrypted => Some(Mapping {
                        encrypted: true,
                        lines: [[0; 64]; 4],
                    }),
                    (Some(m), 1) => Some(m),
                    (Some(_), _) => None,
                };
            }
            Step::Virt {
                core,
                line,
                kind,
                offset,
                len,
                pattern: p,
            } => {
                let Some(mut mapping) = self.mapping else {
                    return;
                };
                let kind = kind % 5;
                // Through the direct map, only while the page has KeyID 0 (then it is the
                // very alias the user mapping uses).
                if kind >= 3 && mapping.encrypted {
                    return;
                }
                let core = core % self.cores;
                let v = usize::from(line) % VIRT_LINES.len();
                let (o, n) = clamp_span(offset, len);
                let op = Compiler::virt_op(line, kind, offset, len, p);
                let (lo, hi) = (usize::from(o), usize::from(o + n));
                let expect = match kind {
                    0 | 3 => {
                        self.use_line(core, case.lines + v, false);
                        Some(mapping.lines[v][lo..hi].to_vec())
                    }
                    1 | 4 => {
                        self.use_line(core, case.lines + v, true);
                        mapping.lines[v][lo..hi].copy_from_slice(&pattern(p)[lo..hi]);
                        None
                    }
                    _ => None,
                };
                self.mapping = Some(mapping);
                self.ops[usize::from(core)].push(Pending { kind: op, expect });
            }
            Step::Sync => self.barrier(),
            Step::Pconfig {
                core,
                alias,
                command,
                key,
                aes256,
            } => {
                // KeyID 0 is the TME KeyID, which PCONFIG refuses: the next one instead.
                let mut a = usize::from(alias) % case.keyids;
                if KEYIDS[a] == 0 {
                    a = 1;
                }
                let c = usize::from(core % self.cores);
                self.barrier();
                // No line of the KeyID may be cached when its key changes: let prefetches in
                // flight land, then write back and invalidate everything.
                self.push(
                    c,
                    OpKind::Compute {
                        cycles: PCONFIG_SETTLE_CYCLES,
                    },
                );
                self.push(c, OpKind::Wbinvd);
                self.push(c, pconfig_call(KEYIDS[a], command, key, aes256));
                self.barrier();
                self.generations[a] += 1;
            }
        }
    }

    fn finish(self) -> Compiled {
        let mut load_values = BTreeMap::new();
        let mut programs = Vec::new();
        let mut next = 0u32;
        let mut tag = || {
            let t = OpTag(next);
            next += 1;
            t
        };
        for core in self.ops {
            let mut ops = Vec::new();
            for p in core {
                let t = tag();
                if let Some(bytes) = p.expect {
                    load_values.insert(t, bytes);
                }
                let kind = match p.kind {
                    OpKind::Mispredict { shadow } => OpKind::Mispredict {
                        shadow: shadow
                            .into_iter()
                            .map(|op| Op {
                                tag: tag(),
                                kind: op.kind,
                            })
                            .collect(),
                    },
                    kind => kind,
                };
                ops.push(Op { tag: t, kind });
            }
            programs.push(Program {
                ops,
                credentials: Credentials::default(),
            });
        }
        let mut final_lines = Vec::new();
        if self.case.mode == Mode::RuleAbiding {
            for l in 0..self.case.lines {
                let keyid = KEYIDS[self.active[l]];
                let generation = self.generations[self.active[l]];
                if let Some(r) = self.reference.current(LINES[l])
                    && r.keyid == keyid
                    && r.generation == generation
                    && r.all_known()
                {
                    let bytes = r.bytes(0, 64).expect("all known");
                    final_lines.push((keyid, LINES[l], bytes.try_into().expect("64 bytes")));
                }
            }
        }
        Compiled {
            programs,
            load_values,
            final_lines,
        }
    }
}

/// `(offset, len)` clamped inside one line.
fn clamp_span(offset: u8, len: u8) -> (u8, u8) {
    let offset = offset.min(63);
    (offset, len.clamp(1, 64 - offset))
}

fn phys_offset(at: Addr, offset: u8) -> Addr {
    match at {
        Addr::Phys(pa) => Addr::Phys(
            pa.checked_add(u64::from(offset))
                .expect("inside the address space"),
        ),
        other => other,
    }
}
