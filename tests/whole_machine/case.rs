//! What the properties run: a machine drawn by the seed (swarm testing) and a plan of steps
//! that [`Case::compile`] turns into one program per core.
//!
//! A plan is a list of abstract steps, each naming a core, a line and an alias by small
//! indices that are reduced modulo the case's shape, so that shrinking (fewer cores, lines or
//! steps) always leaves a valid case. Two compilers read the same plan:
//!
//! - [`Mode::RuleAbiding`] emits only programs that follow the aliasing rules
//!   (docs/coherency-checker.md, "What following the rules means here") and computes, in
//!   program order, the value every load must return and what DRAM must hold at the end. Any
//!   subsequence of a plan compiles to a rule-abiding program, because the compiler, not the
//!   plan, inserts the discipline: phases separated by barriers, one writer per line and phase,
//!   loads and stores through the line's active KeyID only, a switch of KeyID that flushes
//!   every alias of the line first, PCONFIG alone in its phase after a WBINVD, and a whole-line
//!   store before the first use of a line whose contents are unknown;
//! - [`Mode::Arbitrary`] emits the steps as they are: any alias, any time, PCONFIG of any
//!   KeyID (KeyID 0 included) while others run.

use crate::reference::{LineRecord, Reference};
use cpu_model::program::{Addr, Credentials, LineFlush, Op, OpKind, OpTag, Program};
use mem_ctrl::pconfig::{KeyCommand, KeyProgramStruct, PconfigCall};
use mem_ctrl::xts::XtsAlgorithm;
use proptest::prelude::*;
use sim_core::{AddressLayout, DramAddr, KeyId, LineBytes};
use std::collections::BTreeMap;

/// The DRAM lines programs touch: two neighbours (the next-line prefetcher links them) and
/// lines a page apart, which share every set of the tiny caches (and, with two controllers
/// interleaved every 4 KiB, sit behind different controllers).
pub const LINES: [u64; 4] = [0x10_0000, 0x10_0040, 0x10_1000, 0x10_2000];
/// The KeyIDs programs use through physical addresses. KeyID 1 is the kernel's
/// (`kernel: (keyids: 1)`), so that the key service and the programs never fight over one.
pub const KEYIDS: [u16; 4] = [0, 2, 3, 4];
/// The kernel's KeyIDs: `1..=KERNEL_KEYIDS`.
pub const KERNEL_KEYIDS: u16 = 1;
/// The user mapping kernel steps make: two pages at a fixed address.
pub const VIRT_BASE: u64 = 0x7000_0000;
pub const VIRT_BYTES: u64 = 0x2000;
/// The lines of it that programs touch (two per page).
pub const VIRT_LINES: [u64; 4] = [0x0, 0x40, 0x1000, 0x1040];
/// The MKTME key the kernel steps add (`add_key`) and protect the mapping with.
pub const KERNEL_KEY: &str = "k";
const KERNEL_KEY_PAYLOAD: &str = "type=cpu algorithm=aes-xts-128";
/// A case that has not finished by then is a failure (deadlock or runaway).
pub const CYCLES_MAX: u64 = 5_000_000;
/// Cycles a rule-abiding PCONFIG phase waits before its WBINVD, so that hardware prefetches
/// still in flight from the previous phase have landed (and are written back and
/// invalidated) before the key changes.
const PCONFIG_SETTLE_CYCLES: u64 = 3_000;

/// How the plan is compiled.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Mode {
    /// Programs that follow the aliasing rules.
    RuleAbiding,
    /// Programs that do anything.
    Arbitrary,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::RuleAbiding => "rule-abiding",
            Mode::Arbitrary => "arbitrary",
        }
    }
}

/// One cache level as a machine file writes it.
#[derive(Clone, Debug)]
pub struct LevelSpec {
    pub sets: u64,
    pub ways: u32,
    pub latency: u64,
    pub mshrs: u32,
    /// `lru`, `plru`, `srrip` or `random`.
    pub replacement: &'static str,
}

impl LevelSpec {
    pub fn size(&self) -> u64 {
        self.sets * u64::from(self.ways) * 64
    }
}

/// The hardware prefetchers, when on.
#[derive(Clone, Debug)]
pub struct PrefetchSpec {
    pub next_line: bool,
    pub stride: bool,
    pub degree: u32,
    pub train_on_l1d: bool,
    pub fill_into_l1d: bool,
    pub stride_table: u32,
}

/// The machine, drawn with the case: every field is one a machine file can set, so the case
/// replays from its RON file.
#[derive(Clone, Debug)]
pub struct MachineSpec {
    pub cores: u32,
    pub l1d: LevelSpec,
    pub l2: LevelSpec,
    pub llc: LevelSpec,
    pub llc_inclusive: bool,
    pub snoop_latency: u64,
    pub writeback_buffer: u32,
    pub prefetch: Option<PrefetchSpec>,
    /// The counterfactual `writeback_speculative_lines` knob.
    pub knob: bool,
    /// `alias_policy: evict_other_keyids`.
    pub evict_other_keyids: bool,
    pub pconfig_latency: u64,
    pub controllers: u32,
    pub dram: &'static str,
    /// TME bypass: KeyID 0 (and every KeyID in TME behaviour) is plaintext in DRAM.
    pub tme_bypass: bool,
    pub issue_width: u32,
    pub outstanding_loads: u32,
    pub store_buffer: u32,
    pub branch_resolve: u64,
}

/// One abstract step of a plan. Indices are reduced modulo the case's cores, lines and
/// KeyIDs when the plan is compiled.
#[derive(Clone, Debug)]
pub enum Step {
    Load {
        core: u8,
        line: u8,
        alias: u8,
        offset: u8,
        len: u8,
    },
    /// Bytes `offset..offset + len` of pattern `pattern` (a whole-line store when
    /// `offset = 0, len = 64`).
    Store {
        core: u8,
        line: u8,
        alias: u8,
        offset: u8,
        len: u8,
        pattern: u8,
    },
    /// 0: CLFLUSH, 1: CLFLUSHOPT, 2: CLWB.
    Flush {
        core: u8,
        line: u8,
        alias: u8,
        kind: u8,
    },
    Wbinvd {
        core: u8,
    },
    Fence {
        core: u8,
        mfence: bool,
    },
    Speculative {
        core: u8,
        line: u8,
        alias: u8,
    },
    Prefetch {
        core: u8,
        line: u8,
        alias: u8,
    },
    /// A mispredicted branch whose shadow runs these (kind, line, alias): 0 load, 1 store of
    /// pattern 3, 2 prefetch.
    Mispredict {
        core: u8,
        shadow: Vec<(u8, u8, u8)>,
    },
    Compute {
        core: u8,
        cycles: u16,
    },
    /// Rule-abiding: make `alias` the line's active KeyID (flushing every alias first with
    /// the flush kinds in `kinds`' bits, then storing pattern `pattern` through it). Arbitrary:
    /// a CLFLUSH of that alias.
    Switch {
        core: u8,
        line: u8,
        alias: u8,
        kinds: u8,
        pattern: u8,
    },
    /// Every core meets at a barrier.
    Sync,
    /// A system call on the user mapping: 0 `mmap` (two pages, read-write), 1
    /// `encrypt_mprotect` with the case's MKTME key (added first), 2 `munmap`.
    Kernel {
        core: u8,
        call: u8,
    },
    /// An access to line `line` of the user mapping: 0 load, 1 store, 2 CLFLUSH through the
    /// user address; 3 load, 4 store through the kernel's direct map of its frame (KeyID 0).
    Virt {
        core: u8,
        line: u8,
        kind: u8,
        offset: u8,
        len: u8,
        pattern: u8,
    },
    /// PCONFIG of the KeyID `alias` names: command 0 SET_KEY_DIRECT (key `key` of a pool of
    /// two), 1 SET_KEY_RANDOM, 2 CLEAR_KEY, 3 NO_ENCRYPT.
    Pconfig {
        core: u8,
        alias: u8,
        command: u8,
        key: u8,
        aes256: bool,
    },
}

/// What the checks need to know of a case besides its programs: also what a scenario file
/// written from a case says (its description carries the mode, lines and KeyIDs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    pub mode: Mode,
    pub cores: u32,
    pub knob: bool,
    pub llc_inclusive: bool,
    pub tme_bypass: bool,
    pub pconfig_latency: u64,
    /// The DRAM lines and KeyIDs the programs use.
    pub lines: Vec<u64>,
    pub keyids: Vec<u16>,
}

impl Shape {
    /// The scenario description that carries the shape's mode, lines and KeyIDs.
    pub fn description(&self) -> String {
        let lines: Vec<String> = self.lines.iter().map(|l| format!("{l:#x}")).collect();
        let keyids: Vec<String> = self.keyids.iter().map(u16::to_string).collect();
        format!(
            "mode: {}; lines: {}; keyids: {}",
            self.mode.name(),
            lines.join(" "),
            keyids.join(" ")
        )
    }

    /// The shape of a scenario file written from a case.
    pub fn from_scenario(s: &scenarios::scenario::Scenario) -> Result<Shape, String> {
        let mut mode = None;
        let (mut lines, mut keyids) = (Vec::new(), Vec::new());
        for part in s.description.split(';') {
            let (key, value) = part
                .split_once(':')
                .ok_or_else(|| format!("description `{}`: no `key: value`", s.description))?;
            let words = value.split_whitespace();
            match key.trim() {
                "mode" => {
                    mode = match value.trim() {
                        "rule-abiding" => Some(Mode::RuleAbiding),
                        "arbitrary" => Some(Mode::Arbitrary),
                        m => return Err(format!("unknown mode `{m}`")),
                    }
                }
                "lines" => {
                    for w in words {
                        let hex = w.trim_start_matches("0x");
                        lines.push(u64::from_str_radix(hex, 16).map_err(|e| e.to_string())?);
                    }
                }
                "keyids" => {
                    for w in words {
                        keyids.push(
                            w.parse()
                                .map_err(|e: std::num::ParseIntError| e.to_string())?,
                        );
                    }
                }
                k => return Err(format!("unknown description key `{k}`")),
            }
        }
        let m = &s.system.machine;
        Ok(Shape {
            mode: mode.ok_or("the description names no mode")?,
            cores: m.caches.cores,
            knob: m.caches.writeback_speculative_lines,
            llc_inclusive: m.caches.llc_inclusive,
            tme_bypass: m.memory.tme.bypass,
            pconfig_latency: m.memory.pconfig_latency_cycles,
            lines,
            keyids,
        })
    }
}

/// A generated case: everything a run needs, and how to judge it.
#[derive(Clone, Debug)]
pub struct Case {
    pub mode: Mode,
    /// The System's seed.
    pub seed: u64,
    pub machine: MachineSpec,
    /// How many of [`LINES`] and [`KEYIDS`] the case uses.
    pub lines: usize,
    pub keyids: usize,
    pub steps: Vec<Step>,
}

/// The bytes of data pattern `p` (four patterns; few, so that equal plaintext recurs at
/// several addresses and under several keys, and stores repeat equal bytes: issue 16).
pub fn pattern(p: u8) -> LineBytes {
    let mut x = 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(u64::from(p % 4) + 1) | 1;
    std::array::from_fn(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    })
}

/// Direct keys (data key, tweak key) of the pool SET_KEY_DIRECT draws from.
pub fn direct_key(k: u8, aes256: bool) -> (Vec<u8>, Vec<u8>) {
    let n = if aes256 { 32 } else { 16 };
    let b = 0x11u8.wrapping_mul(k % 2 + 1);
    (vec![b; n], vec![b ^ 0xff; n])
}

/// The layout of every generated machine (the default preset's).
pub fn layout() -> AddressLayout {
    cpu_model::MachineConfig::preset("default")
        .expect("the default preset")
        .memory
        .layout
}

pub fn phys(keyid: u16, dram: u64) -> Addr {
    Addr::Phys(
        layout()
            .compose(KeyId::new(keyid), DramAddr::new(dram))
            .expect("a generated address fits the layout"),
    )
}

// ---- strategies -----------------------------------------------------------------------------

fn level(sets: &[u64], ways: std::ops::RangeInclusive<u32>) -> impl Strategy<Value = LevelSpec> {
    (
        prop::sample::select(sets.to_vec()),
        ways,
        1u64..=6,
        1u32..=4,
        prop::sample::select(vec!["lru", "plru", "srrip", "random"]),
    )
        .prop_map(|(sets, ways, latency, mshrs, replacement)| LevelSpec {
            sets,
            ways,
            latency,
            mshrs,
            // Tree-PLRU needs a power-of-two associativity.
            replacement: if replacement == "plru" && !ways.is_power_of_two() {
                "lru"
            } else {
                replacement
            },
        })
}

fn prefetch() -> impl Strategy<Value = Option<PrefetchSpec>> {
    prop_oneof![
        1 => Just(None),
        2 => (any::<bool>(), any::<bool>(), 1u32..=3, any::<bool>(), any::<bool>(), 1u32..=4)
            .prop_map(|(next_line, stride, degree, train_on_l1d, fill_into_l1d, stride_table)| {
                Some(PrefetchSpec {
                    next_line: next_line || !stride,
                    stride,
                    degree,
                    train_on_l1d,
                    fill_into_l1d,
                    stride_table,
                })
            }),
    ]
}

/// A machine: 2 to 4 cores, caches of one to a few lines per set (the LLC may be smaller
/// than the L2s when inclusive), prefetchers or not, either alias policy, one or two
/// controllers, the counterfactual knob when `knob` allows it.
pub fn machine(knob: bool) -> impl Strategy<Value = MachineSpec> {
    let caches = (
        2u32..=4,
        level(&[1, 2], 1..=2),
        level(&[1, 2, 4], 1..=3),
        level(&[1, 2, 4], 1..=4),
        any::<bool>(),
        0u64..=20,
        0u32..=2,
        prefetch(),
    );
    let memory = (
        prop_oneof![3 => Just(false), 1 => Just(true)],
        any::<bool>(),
        prop_oneof![3 => Just(1000u64), 1 => 50u64..=2000],
        1u32..=2,
        prop::sample::select(vec!["ddr4-2400", "ddr4-3200", "ddr5-4800"]),
        prop_oneof![4 => Just(false), 1 => Just(true)],
    );
    let core = (1u32..=4, 1u32..=4, 1u32..=8, 2u64..=30);
    (caches, memory, core).prop_map(
        move |(
            (cores, a, b, llc, llc_inclusive, snoop_latency, extra_wb, prefetch),
            (knob_drawn, evict, pconfig_latency, controllers, dram, tme_bypass),
            (issue_width, outstanding_loads, store_buffer, branch_resolve),
        )| {
            // The L2 includes the L1D: never smaller (validation refuses it, issue 16).
            let (l1d, mut l2) = if a.size() > b.size() { (b, a) } else { (a, b) };
            // Hit latencies grow outward.
            l2.latency += l1d.latency;
            let mut llc = llc;
            llc.latency += l2.latency;
            // The least the write-back buffer may hold (HierarchyConfig::
            // writeback_lines_per_step_max).
            let least = 1 + u32::from(evict) + if llc_inclusive { 0 } else { 2 };
            MachineSpec {
                cores,
                l1d,
                l2,
                llc,
                llc_inclusive,
                snoop_latency,
                writeback_buffer: least + extra_wb,
                prefetch,
                knob: knob && knob_drawn,
                evict_other_keyids: evict,
                pconfig_latency,
                controllers,
                dram,
                tme_bypass,
                issue_width,
                outstanding_loads,
                store_buffer,
                branch_resolve,
            }
        },
    )
}

fn step() -> impl Strategy<Value = Step> {
    let core = || 0u8..4;
    let line = || 0u8..4;
    let alias = || 0u8..4;
    // (offset, len) within one line, most often 8 bytes or more (long enough to recognise).
    let span = || {
        prop_oneof![
            2 => Just((0u8, 64u8)),
            3 => (0u8..=56).prop_flat_map(|o| (Just(o), 8u8..=(64 - o))),
            1 => (0u8..64).prop_flat_map(|o| (Just(o), 1u8..=(64 - o))),
        ]
    };
    prop_oneof![
        20 => (core(), line(), alias(), span())
            .prop_map(|(core, line, alias, (offset, len))| Step::Load { core, line, alias, offset, len }),
        20 => (core(), line(), alias(), span(), 0u8..4).prop_map(
            |(core, line, alias, (offset, len), pattern)| Step::Store { core, line, alias, offset, len, pattern }
        ),
        8 => (core(), line(), alias(), 0u8..3)
            .prop_map(|(core, line, alias, kind)| Step::Flush { core, line, alias, kind }),
        1 => core().prop_map(|core| Step::Wbinvd { core }),
        3 => (core(), any::<bool>()).prop_map(|(core, mfence)| Step::Fence { core, mfence }),
        4 => (core(), line(), alias()).prop_map(|(core, line, alias)| Step::Speculative { core, line, alias }),
        4 => (core(), line(), alias()).prop_map(|(core, line, alias)| Step::Prefetch { core, line, alias }),
        3 => (core(), prop::collection::vec((0u8..3, line(), alias()), 1..4))
            .prop_map(|(core, shadow)| Step::Mispredict { core, shadow }),
        2 => (core(), 1u16..400).prop_map(|(core, cycles)| Step::Compute { core, cycles }),
        6 => (core(), line(), alias(), any::<u8>(), 0u8..4).prop_map(
            |(core, line, alias, kinds, pattern)| Step::Switch { core, line, alias, kinds, pattern }
        ),
        3 => Just(Step::Sync),
        3 => (core(), 0u8..3).prop_map(|(core, call)| Step::Kernel { core, call }),
        10 => (core(), line(), 0u8..5, span(), 0u8..4).prop_map(
            |(core, line, kind, (offset, len), pattern)| Step::Virt { core, line, kind, offset, len, pattern }
        ),
        3 => (core(), alias(), 0u8..4, 0u8..2, any::<bool>()).prop_map(
            |(core, alias, command, key, aes256)| Step::Pconfig { core, alias, command, key, aes256 }
        ),
    ]
}

/// A case of `mode`: the machine, the seed, the shape and the plan.
pub fn case(mode: Mode) -> impl Strategy<Value = Case> {
    (
        machine(mode == Mode::Arbitrary),
        any::<u64>(),
        2usize..=LINES.len(),
        2usize..=KEYIDS.len(),
        prop::collection::vec(step(), 1..60),
    )
        .prop_map(move |(machine, seed, lines, keyids, steps)| Case {
            mode,
            seed,
            machine,
            lines,
            keyids,
            steps,
        })
}

// ---- compiling a plan -----------------------------------------------------------------------

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
    pub fn keyid(&self, alias: u8) -> u16 {
        KEYIDS[usize::from(alias) % self.keyids]
    }

    pub fn line(&self, line: u8) -> u64 {
        LINES[usize::from(line) % self.lines]
    }

    /// The DRAM lines the case touches.
    pub fn dram_lines(&self) -> &[u64] {
        &LINES[..self.lines]
    }

    /// The KeyIDs the case uses.
    pub fn keyid_list(&self) -> &[u16] {
        &KEYIDS[..self.keyids]
    }

    pub fn shape(&self) -> Shape {
        let m = &self.machine;
        Shape {
            mode: self.mode,
            cores: m.cores,
            knob: m.knob,
            llc_inclusive: m.llc_inclusive,
            tme_bypass: m.tme_bypass,
            pconfig_latency: m.pconfig_latency,
            lines: self.dram_lines().to_vec(),
            keyids: self.keyid_list().to_vec(),
        }
    }

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
                addr: VIRT_BASE,
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
                    addr: VIRT_BASE,
                    len: VIRT_BYTES,
                    prot: Prot::READ_WRITE,
                    key: KERNEL_KEY.to_owned(),
                }
            }
            _ => KernelCall::Munmap {
                addr: VIRT_BASE,
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
                at: Addr::Virt(at),
                len,
            },
            1 => OpKind::Store {
                at: Addr::Virt(at),
                bytes: bytes(),
            },
            2 => OpKind::Flush {
                kind: LineFlush::Clflush,
                at: Addr::Virt(at),
            },
            3 => OpKind::Load {
                at: Addr::DirectMapOf(at),
                len,
            },
            _ => OpKind::Store {
                at: Addr::DirectMapOf(at),
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
