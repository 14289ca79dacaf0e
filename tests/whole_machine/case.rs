//! What the properties run: a machine drawn by the seed (swarm testing), a plan of abstract
//! steps ([`Step`]) that `compile` turns into one program per core, and the strategies that
//! generate both. A plan names cores, lines and aliases by small indices reduced modulo the
//! case's shape, so that shrinking (fewer cores, lines or steps) always leaves a valid case.

use cpu_model::program::Addr;
use proptest::prelude::*;
use sim_core::{AddressLayout, DramAddr, KeyId, LineBytes};

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
pub const KERNEL_KEY_PAYLOAD: &str = "type=cpu algorithm=aes-xts-128";
/// A case that has not finished by then is a failure (deadlock or runaway).
pub const CYCLES_MAX: u64 = 5_000_000;
/// Cycles a rule-abiding PCONFIG phase waits before its WBINVD, so that hardware prefetches
/// still in flight from the previous phase have landed (and are written back and
/// invalidated) before the key changes.
pub const PCONFIG_SETTLE_CYCLES: u64 = 3_000;

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
