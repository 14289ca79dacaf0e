//! The coherency checker against a plain reference model (issue 4; style-by-example item 13).
//!
//! A small, obviously correct model of a multi-alias cache generates random event streams:
//! a few DRAM lines, two or three aliases (KeyIDs), one or two cores with a private L1D over a
//! shared inclusive LLC. Each cached alias copy carries its bytes, a dirty bit and the version
//! of its data; memory maps each DRAM line to (ciphertext, version, writer alias). Encryption
//! is a pad per (KeyID, key generation, line), XORed in: like AES-XTS under a fixed key and
//! tweak it is a bijection, so a line read through a wrong key is garbage, yet written back
//! unmodified through that key it re-encrypts to the very ciphertext it came from. Because the
//! reference knows where every copy's data came from, it knows the truth the checker must
//! infer from events alone.
//!
//! Properties, for random programs and machine shapes chosen by the seed:
//! - (a) a program that follows the aliasing rules produces no violation;
//! - (b) whenever a DRAM line's final memory content differs from the last bytes stored to
//!   it (a real data loss, by the map "line -> last written bytes"), a DataLoss was reported
//!   for that line;
//! - (c) no DataLoss is reported when none happened; more strongly, the checker's report is
//!   exactly the reference's list of violations (kind, cycle, line, KeyIDs, lost bytes);
//! - a correct model never causes a model error; chains end with the event that broke the rule.

use cache_model::{
    CacheEvent, CacheId, CacheObserver, FillCause, FlushKind, Level, RemoveCause, StoreStamp,
    WritebackCause,
};
use checker::{CheckerConfig, CoherencyChecker, ViolationKind};
use proptest::prelude::*;
use sim_core::{AddressLayout, CoreId, Cycle, DramAddr, KeyId, LineAddr, LineBytes, MemEvent};
use std::collections::{BTreeMap, BTreeSet};

/// How the generated program treats the aliasing rules.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Mode {
    /// One active alias per line; every load and store goes through it; switching flushes the
    /// old alias and the new one (whose stale prefetched copies must go too); PCONFIG only
    /// after flushing the KeyID everywhere. Prefetches through any alias are clean.
    RuleFollowing,
    /// Loads and stores through any alias, switches without flushes, PCONFIG at any time.
    Free,
    /// `Free`, on a CPU with the `writeback_speculative_lines` knob: prefetches may be dirty.
    FreeWithKnob,
}

/// One step of the random program. Indices are reduced modulo the machine's shape.
#[derive(Clone, Debug)]
enum Op {
    Store {
        core: u8,
        line: u8,
        alias: u8,
        offset: u8,
        len: u8,
        byte: u8,
    },
    Load {
        core: u8,
        line: u8,
        alias: u8,
    },
    /// An L1D capacity eviction: a dirty copy moves into the LLC.
    EvictL1 {
        core: u8,
        line: u8,
        alias: u8,
    },
    /// An LLC capacity eviction: every copy goes, dirty data to memory.
    Evict {
        line: u8,
        alias: u8,
    },
    Clflush {
        core: u8,
        line: u8,
        alias: u8,
    },
    Clwb {
        core: u8,
        line: u8,
        alias: u8,
    },
    Prefetch {
        line: u8,
        alias: u8,
        dirty: bool,
    },
    /// Make `alias` the line's active alias (the rule-following program flushes first).
    Switch {
        line: u8,
        alias: u8,
    },
    Pconfig {
        alias: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let idx = || 0u8..3;
    prop_oneof![
        4 => (idx(), idx(), idx(), 0u8..64, 1u8..=64, any::<u8>()).prop_map(
            |(core, line, alias, offset, len, byte)| Op::Store { core, line, alias, offset, len, byte }
        ),
        4 => (idx(), idx(), idx()).prop_map(|(core, line, alias)| Op::Load { core, line, alias }),
        1 => (idx(), idx(), idx()).prop_map(|(core, line, alias)| Op::EvictL1 { core, line, alias }),
        2 => (idx(), idx()).prop_map(|(line, alias)| Op::Evict { line, alias }),
        2 => (idx(), idx(), idx()).prop_map(|(core, line, alias)| Op::Clflush { core, line, alias }),
        1 => (idx(), idx(), idx()).prop_map(|(core, line, alias)| Op::Clwb { core, line, alias }),
        2 => (idx(), idx(), any::<bool>())
            .prop_map(|(line, alias, dirty)| Op::Prefetch { line, alias, dirty }),
        2 => (idx(), idx()).prop_map(|(line, alias)| Op::Switch { line, alias }),
        1 => idx().prop_map(|alias| Op::Pconfig { alias }),
    ]
}

/// A program and the machine it runs on, all chosen by the seed.
#[derive(Clone, Debug)]
struct Case {
    mode: Mode,
    lines: u8,
    aliases: u8,
    cores: u8,
    /// `CheckerConfig::idle_lines_max`: large, or tiny so the checker keeps forgetting.
    idle_lines_max: usize,
    ops: Vec<Op>,
    /// Sort keys for the end-of-run drain order of (line, alias) pairs.
    drain_keys: [u32; 9],
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![
            Just(Mode::RuleFollowing),
            Just(Mode::Free),
            Just(Mode::FreeWithKnob)
        ],
        1u8..=3,
        2u8..=3,
        1u8..=2,
        prop_oneof![3 => Just(16_384usize), 1 => 0usize..=2],
        prop::collection::vec(op(), 0..160),
        prop::array::uniform9(any::<u32>()),
    )
        .prop_map(
            |(mode, lines, aliases, cores, idle_lines_max, ops, drain_keys)| Case {
                mode,
                lines,
                aliases,
                cores,
                idle_lines_max,
                ops,
                drain_keys,
            },
        )
}

/// What the reference says the checker must report, in order.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Expected {
    kind: ViolationKind,
    cycle: u64,
    line: u8,
    keyids: Vec<u16>,
    lost: Option<Lost>,
    repeats: u64,
}

/// The details of a data loss, as `LostData` has them.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Lost {
    keyid: u16,
    version: u64,
    bytes: LineBytes,
    writer_version: u64,
    written: LineBytes,
    garbled: bool,
    recoverable_by: Option<(u16, u64)>,
}

/// One alias's copy of one line: in the LLC, and in the L1Ds of `l1`.
#[derive(Clone, Debug)]
struct Copy {
    data: LineBytes,
    /// The store the data carries, as the hierarchy stamps it (MEMORY: read, not stored to).
    stamp: StoreStamp,
    /// How recent `data` is: the store that wrote it, or memory's version when it was read
    /// (through any key).
    version: u64,
    /// A store changed `data` since it last matched memory (read from it, or written to it).
    modified: bool,
    /// This alias's key generation, and memory's generation (its count of content changes),
    /// when `data` last matched memory.
    read_epoch: u32,
    read_generation: u64,
    dirty: bool,
    /// Dirty without a committed store (the knob).
    phantom: bool,
    l1: BTreeSet<u8>,
    /// The L1D that holds the modified data, if it is not in the LLC.
    dirty_l1: Option<u8>,
}

#[derive(Clone, Debug)]
struct MemLine {
    /// What the DRAM holds.
    cipher: LineBytes,
    /// How many times the content changed.
    generation: u64,
    version: u64,
    /// The alias whose write-back this is, and its key generation then.
    writer: u16,
    epoch: u32,
}

struct Reference {
    layout: AddressLayout,
    checker: CoherencyChecker,
    mode: Mode,
    cycle: u64,
    last_version: u64,
    /// (line, KeyID) -> the alias's copy.
    copies: BTreeMap<(u8, u16), Copy>,
    memory: BTreeMap<u8, MemLine>,
    epochs: [u32; 4],
    newest_store: BTreeMap<(u8, u16), u64>,
    /// The ground truth for data loss: line -> the whole line after the last store to it, with
    /// the KeyID and key generation it was stored under.
    last_stored: BTreeMap<u8, (LineBytes, u16, u32)>,
    active: BTreeMap<u8, u16>,
    /// (line, reader) -> (read version, newer version, index in `expected`).
    stale_marks: BTreeMap<(u8, u16), (u64, u64, usize)>,
    /// Every stale load: (cycle, line, reader).
    stale_loads: BTreeSet<(u64, u8, u16)>,
    expected: Vec<Expected>,
}

fn keyid_of(alias: u8) -> u16 {
    u16::from(alias) + 1
}

fn dram_of(line: u8) -> DramAddr {
    // Lines in different pages, so set-index aliasing plays no part.
    DramAddr::new(0x40_0000 + u64::from(line) * 0x1040)
}

fn llc() -> CacheId {
    CacheId {
        core: None,
        level: Level::Llc,
    }
}

fn l1d(core: u8) -> CacheId {
    CacheId {
        core: Some(CoreId::new(u32::from(core))),
        level: Level::L1d,
    }
}

/// The toy cipher's pad for `line` under `keyid`'s key of generation `epoch`.
fn pad(keyid: u16, epoch: u32, line: u8) -> LineBytes {
    let mut x = (u64::from(keyid) << 40) ^ (u64::from(epoch) << 20) ^ u64::from(line);
    x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    std::array::from_fn(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    })
}

fn xor(a: &LineBytes, b: &LineBytes) -> LineBytes {
    std::array::from_fn(|i| a[i] ^ b[i])
}

impl Reference {
    fn new(mode: Mode, idle_lines_max: usize) -> Reference {
        let layout = AddressLayout::new(40, 4).unwrap();
        Reference {
            layout,
            checker: CoherencyChecker::new(
                layout,
                CheckerConfig {
                    idle_lines_max,
                    ..CheckerConfig::default()
                },
            ),
            mode,
            cycle: 0,
            last_version: 0,
            copies: BTreeMap::new(),
            memory: BTreeMap::new(),
            epochs: [0; 4],
            newest_store: BTreeMap::new(),
            last_stored: BTreeMap::new(),
            active: BTreeMap::new(),
            stale_marks: BTreeMap::new(),
            stale_loads: BTreeSet::new(),
            expected: Vec::new(),
        }
    }

    fn line_addr(&self, line: u8, keyid: u16) -> LineAddr {
        self.layout
            .compose(KeyId::new(keyid), dram_of(line))
            .unwrap()
            .line()
    }

    fn cycle(&self) -> Cycle {
        Cycle::new(self.cycle)
    }

    fn emit(&mut self, event: CacheEvent) {
        self.checker.on_event(&event);
    }

    fn expect(&mut self, kind: ViolationKind, line: u8, keyids: Vec<u16>) {
        self.expected.push(Expected {
            kind,
            cycle: self.cycle,
            line,
            keyids,
            lost: None,
            repeats: 0,
        });
    }

    /// Aliases of `line` other than `keyid` with a dirty copy, ascending.
    fn other_dirty(&self, line: u8, keyid: u16) -> Vec<u16> {
        self.copies
            .iter()
            .filter(|&(&(l, k), c)| l == line && k != keyid && c.dirty)
            .map(|(&(_, k), _)| k)
            .collect()
    }

    fn expect_dual_dirty_if_any(&mut self, line: u8, keyid: u16) {
        let others = self.other_dirty(line, keyid);
        if !others.is_empty() {
            let mut keyids = vec![keyid];
            keyids.extend(others);
            self.expect(ViolationKind::DualDirty, line, keyids);
        }
    }

    fn generation(&self, line: u8) -> u64 {
        self.memory.get(&line).map_or(0, |m| m.generation)
    }

    /// What a fill through `keyid` reads from memory: plaintext under its current key, and
    /// the version. Untouched DRAM holds zeros.
    fn read_memory(&self, line: u8, keyid: u16) -> (LineBytes, u64) {
        let pad = pad(keyid, self.epochs[usize::from(keyid)], line);
        match self.memory.get(&line) {
            Some(m) => (xor(&m.cipher, &pad), m.version),
            None => (pad, 0),
        }
    }

    /// Brings the alias into `core`'s L1D (with ownership for a store).
    fn ensure_l1(&mut self, core: u8, line: u8, keyid: u16, cause: FillCause) {
        let (cycle, addr) = (self.cycle(), self.line_addr(line, keyid));
        let Some(copy) = self.copies.get(&(line, keyid)).cloned() else {
            let (data, version) = self.read_memory(line, keyid);
            self.emit(CacheEvent::MemRead {
                cycle,
                line: addr,
                cause,
            });
            for cache in [llc(), l1d(core)] {
                self.emit(CacheEvent::Fill {
                    cycle,
                    cache,
                    line: addr,
                    cause,
                    dirty: false,
                });
            }
            let copy = Copy {
                data,
                stamp: StoreStamp::MEMORY,
                version,
                modified: false,
                read_epoch: self.epochs[usize::from(keyid)],
                read_generation: self.generation(line),
                dirty: false,
                phantom: false,
                l1: BTreeSet::from([core]),
                dirty_l1: None,
            };
            self.copies.insert((line, keyid), copy);
            return;
        };
        let mut copy = copy;
        if !copy.l1.contains(&core) {
            // From the LLC, or the owning core's L1D: modified data travels with ownership.
            let dirty = cause == FillCause::Store && copy.dirty_l1.is_some();
            self.emit(CacheEvent::Fill {
                cycle,
                cache: l1d(core),
                line: addr,
                cause,
                dirty,
            });
            if cause != FillCause::Store {
                // M -> S: the owner's data goes to the LLC copy (no event: it is present).
                copy.dirty_l1 = None;
            }
            copy.l1.insert(core);
        }
        if cause == FillCause::Store {
            for other in copy.l1.clone() {
                if other != core {
                    self.emit(CacheEvent::Remove {
                        cycle,
                        cache: l1d(other),
                        line: addr,
                        cause: RemoveCause::CoherenceInvalidation,
                        dirty: copy.dirty_l1 == Some(other),
                    });
                    copy.l1.remove(&other);
                }
            }
        }
        self.copies.insert((line, keyid), copy);
    }

    fn store(&mut self, core: u8, line: u8, keyid: u16, offset: u8, len: u8, byte: u8) {
        self.ensure_l1(core, line, keyid, FillCause::Store);
        self.last_version += 1;
        let version = self.last_version;
        let copy = self.copies.get_mut(&(line, keyid)).unwrap();
        let (start, end) = (usize::from(offset), usize::from(offset) + usize::from(len));
        for (i, b) in copy.data[start..end].iter_mut().enumerate() {
            *b = byte.wrapping_add(i as u8);
        }
        let was_dirty = copy.dirty;
        copy.version = version;
        // Stores are numbered in order from 1, as the hierarchy stamps them.
        copy.stamp = StoreStamp::new(version);
        copy.modified = true;
        copy.dirty = true;
        copy.phantom = false;
        copy.dirty_l1 = Some(core);
        let data = copy.data;
        let event = CacheEvent::Store {
            cycle: self.cycle(),
            core: CoreId::new(u32::from(core)),
            line: self.line_addr(line, keyid),
            offset,
            len,
            data,
            stamp: StoreStamp::new(version),
        };
        self.emit(event);
        self.newest_store.insert((line, keyid), version);
        let epoch = self.epochs[usize::from(keyid)];
        self.last_stored.insert(line, (data, keyid, epoch));
        if !was_dirty {
            self.expect_dual_dirty_if_any(line, keyid);
        }
    }

    fn load(&mut self, core: u8, line: u8, keyid: u16) {
        self.ensure_l1(core, line, keyid, FillCause::Load);
        let copy = &self.copies[&(line, keyid)];
        let (data, read) = (copy.data, copy.version);
        let event = CacheEvent::Load {
            cycle: self.cycle(),
            core: CoreId::new(u32::from(core)),
            line: self.line_addr(line, keyid),
            offset: 0,
            len: 8,
            data,
            from: Some(Level::L1d),
        };
        self.emit(event);
        let newer = self
            .newest_store
            .iter()
            .filter(|&(&(l, k), _)| l == line && k != keyid)
            .map(|(&(_, k), &v)| (v, k))
            .max();
        let Some((newer, by)) = newer else {
            return;
        };
        if read >= newer {
            return;
        }
        self.stale_loads.insert((self.cycle, line, keyid));
        match self.stale_marks.get(&(line, keyid)) {
            Some(&(r, n, index)) if (r, n) == (read, newer) => self.expected[index].repeats += 1,
            _ => {
                self.expect(ViolationKind::StaleRead, line, vec![keyid, by]);
                let index = self.expected.len() - 1;
                self.stale_marks.insert((line, keyid), (read, newer, index));
            }
        }
    }

    fn write_back(&mut self, line: u8, keyid: u16, copy: &Copy, cause: WritebackCause) {
        let epoch = self.epochs[usize::from(keyid)];
        // Read under an older key and unmodified: re-encrypts to other ciphertext.
        let garbled = !copy.modified && copy.read_epoch != epoch;
        // Unmodified, under the key it was read with, while memory is as it was read: the same
        // ciphertext goes back, and memory's data stays its writer's.
        let generation = self.generation(line);
        let unchanged = !copy.modified && !garbled && copy.read_generation == generation;
        // A loss: memory held readable data of another alias (its key unchanged since), and
        // this write-back is older, or as old but garbled.
        if let Some(m) = self.memory.get(&line)
            && !unchanged
            && m.writer != keyid
            && m.epoch == self.epochs[usize::from(m.writer)]
            && (copy.version < m.version || (garbled && copy.version == m.version))
        {
            // Another alias's dirty copy that would put the lost data back or supersede it: a
            // newer store, or an unmodified phantom copy read while memory held the lost data
            // (under the same key since, it re-encrypts to the same ciphertext).
            let recoverable_by = self
                .copies
                .iter()
                .filter(|&(&(l, k), c)| {
                    let round_trip = c.phantom
                        && !c.modified
                        && c.read_epoch == self.epochs[usize::from(k)]
                        && c.read_generation == m.generation;
                    let newer = !c.phantom && c.version > m.version;
                    l == line && k != keyid && c.dirty && (round_trip || newer)
                })
                .map(|(&(_, k), c)| (c.version, k))
                .max()
                .map(|(v, k)| (k, v));
            let lost_plain = xor(&m.cipher, &pad(m.writer, m.epoch, line));
            self.expected.push(Expected {
                kind: ViolationKind::DataLoss,
                cycle: self.cycle,
                line,
                keyids: vec![keyid, m.writer],
                lost: Some(Lost {
                    keyid: m.writer,
                    version: m.version,
                    bytes: lost_plain,
                    writer_version: copy.version,
                    written: copy.data,
                    garbled,
                    recoverable_by,
                }),
                repeats: 0,
            });
        }
        let event = CacheEvent::MemWriteback {
            cycle: self.cycle(),
            line: self.line_addr(line, keyid),
            data: copy.data,
            stamp: copy.stamp,
            cause,
            dirtied_by_store: !copy.phantom,
        };
        self.emit(event);
        let cipher = xor(&copy.data, &pad(keyid, epoch, line));
        if unchanged {
            // The physics behind the rule: nothing changes in DRAM.
            let before = self.memory.get(&line).map_or([0; 64], |m| m.cipher);
            assert_eq!(cipher, before, "an unchanged write-back changed memory");
        } else {
            self.memory.insert(
                line,
                MemLine {
                    cipher,
                    generation: generation + 1,
                    version: copy.version,
                    writer: keyid,
                    epoch,
                },
            );
        }
    }

    /// Every copy of the alias leaves (L1Ds first), then dirty data goes to memory.
    fn drop_alias(&mut self, line: u8, keyid: u16, remove: RemoveCause, wb: WritebackCause) {
        let Some(copy) = self.copies.remove(&(line, keyid)) else {
            return;
        };
        let (cycle, addr) = (self.cycle(), self.line_addr(line, keyid));
        let inner = if remove == RemoveCause::Evicted {
            RemoveCause::BackInvalidation
        } else {
            remove
        };
        for &core in &copy.l1 {
            self.emit(CacheEvent::Remove {
                cycle,
                cache: l1d(core),
                line: addr,
                cause: inner,
                dirty: copy.dirty_l1 == Some(core),
            });
        }
        self.emit(CacheEvent::Remove {
            cycle,
            cache: llc(),
            line: addr,
            cause: remove,
            dirty: copy.dirty,
        });
        if copy.dirty {
            self.write_back(line, keyid, &copy, wb);
        }
    }

    fn evict_l1(&mut self, core: u8, line: u8, keyid: u16) {
        let (cycle, addr) = (self.cycle(), self.line_addr(line, keyid));
        let Some(copy) = self.copies.get_mut(&(line, keyid)) else {
            return;
        };
        if !copy.l1.remove(&core) {
            return;
        }
        let dirty = copy.dirty_l1 == Some(core);
        if dirty {
            copy.dirty_l1 = None;
        }
        self.emit(CacheEvent::Remove {
            cycle,
            cache: l1d(core),
            line: addr,
            cause: RemoveCause::Evicted,
            dirty,
        });
        if dirty {
            let cause = FillCause::InnerWriteback;
            self.emit(CacheEvent::Fill {
                cycle,
                cache: llc(),
                line: addr,
                cause,
                dirty,
            });
        }
    }

    fn flush_marker(&mut self, start: bool, core: u8, line: u8, keyid: u16, kind: FlushKind) {
        let (cycle, core, line) = (
            self.cycle(),
            CoreId::new(u32::from(core)),
            Some(self.line_addr(line, keyid)),
        );
        self.emit(if start {
            CacheEvent::FlushStart {
                cycle,
                core,
                kind,
                line,
            }
        } else {
            CacheEvent::FlushDone {
                cycle,
                core,
                kind,
                line,
            }
        });
    }

    fn clflush(&mut self, core: u8, line: u8, keyid: u16) {
        self.flush_marker(true, core, line, keyid, FlushKind::Clflush);
        self.drop_alias(line, keyid, RemoveCause::Flush, WritebackCause::Flush);
        self.flush_marker(false, core, line, keyid, FlushKind::Clflush);
    }

    fn clwb(&mut self, core: u8, line: u8, keyid: u16) {
        self.flush_marker(true, core, line, keyid, FlushKind::Clwb);
        if let Some(copy) = self.copies.get(&(line, keyid)).cloned()
            && copy.dirty
        {
            self.write_back(line, keyid, &copy, WritebackCause::Clwb);
            // The copy now matches memory under the current key.
            let epoch = self.epochs[usize::from(keyid)];
            let generation = self.generation(line);
            let copy = self.copies.get_mut(&(line, keyid)).unwrap();
            copy.dirty = false;
            copy.phantom = false;
            copy.dirty_l1 = None;
            copy.modified = false;
            copy.read_epoch = epoch;
            copy.read_generation = generation;
        }
        self.flush_marker(false, core, line, keyid, FlushKind::Clwb);
    }

    fn prefetch(&mut self, line: u8, keyid: u16, dirty: bool) {
        if self.copies.contains_key(&(line, keyid)) {
            return;
        }
        let (cycle, addr) = (self.cycle(), self.line_addr(line, keyid));
        let (data, version) = self.read_memory(line, keyid);
        let cause = FillCause::Prefetch;
        self.emit(CacheEvent::MemRead {
            cycle,
            line: addr,
            cause,
        });
        self.emit(CacheEvent::Fill {
            cycle,
            cache: llc(),
            line: addr,
            cause,
            dirty,
        });
        let copy = Copy {
            data,
            stamp: StoreStamp::MEMORY,
            version,
            modified: false,
            read_epoch: self.epochs[usize::from(keyid)],
            read_generation: self.generation(line),
            dirty,
            phantom: dirty,
            l1: BTreeSet::new(),
            dirty_l1: None,
        };
        self.copies.insert((line, keyid), copy);
        if dirty {
            self.expect(ViolationKind::PhantomDirty, line, vec![keyid]);
            self.expect_dual_dirty_if_any(line, keyid);
        }
    }

    fn pconfig(&mut self, keyid: u16, lines: u8) {
        if self.mode == Mode::RuleFollowing {
            for line in 0..lines {
                self.clflush(0, line, keyid);
            }
        }
        for line in 0..lines {
            if self.copies.contains_key(&(line, keyid)) {
                self.expect(ViolationKind::ReprogramWhileCached, line, vec![keyid]);
            }
        }
        self.epochs[usize::from(keyid)] += 1;
        let cycle = self.cycle();
        self.checker.on_memory_event(&MemEvent::KeyChanged {
            cycle,
            keyid: KeyId::new(keyid),
        });
    }

    fn run(&mut self, case: &Case) {
        let rules = self.mode == Mode::RuleFollowing;
        let (lines, aliases, cores) = (case.lines, case.aliases, case.cores);
        let line_of = |l: u8| l % lines;
        let keyid = |a: u8| keyid_of(a % aliases);
        let core_of = |c: u8| c % cores;
        for op in &case.ops {
            self.cycle += 1;
            // The rule-following program touches data only through the line's active alias.
            let through = |me: &Reference, line: u8, alias: u8| {
                if rules {
                    me.active.get(&line).copied().unwrap_or(keyid_of(0))
                } else {
                    keyid(alias)
                }
            };
            match *op {
                Op::Store {
                    core,
                    line,
                    alias,
                    offset,
                    len,
                    byte,
                } => {
                    let line = line_of(line);
                    let k = through(self, line, alias);
                    let len = len.min(64 - offset);
                    self.store(core_of(core), line, k, offset, len, byte);
                }
                Op::Load { core, line, alias } => {
                    let line = line_of(line);
                    let k = through(self, line, alias);
                    self.load(core_of(core), line, k);
                }
                Op::EvictL1 { core, line, alias } => {
                    self.evict_l1(core_of(core), line_of(line), keyid(alias));
                }
                Op::Evict { line, alias } => {
                    let (l, k) = (line_of(line), keyid(alias));
                    self.drop_alias(l, k, RemoveCause::Evicted, WritebackCause::Eviction);
                }
                Op::Clflush { core, line, alias } => {
                    self.clflush(core_of(core), line_of(line), keyid(alias));
                }
                Op::Clwb { core, line, alias } => {
                    self.clwb(core_of(core), line_of(line), keyid(alias));
                }
                Op::Prefetch { line, alias, dirty } => {
                    let dirty = dirty && self.mode == Mode::FreeWithKnob;
                    self.prefetch(line_of(line), keyid(alias), dirty);
                }
                Op::Switch { line, alias } => {
                    let line = line_of(line);
                    if rules {
                        // Flush the old alias (its dirty data goes to memory) and every other
                        // alias, the new one included: its stale prefetched copies must go.
                        for a in 0..aliases {
                            self.clflush(0, line, keyid_of(a));
                        }
                    }
                    self.active.insert(line, keyid(alias));
                }
                Op::Pconfig { alias } => self.pconfig(keyid(alias), lines),
            }
        }
        // End of run: drain every copy, in an order the seed picked.
        self.cycle += 1;
        let mut pairs: Vec<(u32, u8, u16)> = (0..lines)
            .flat_map(|l| (0..aliases).map(move |a| (l, keyid_of(a))))
            .map(|(l, k)| {
                (
                    case.drain_keys[usize::from(l) * 3 + usize::from(k - 1)],
                    l,
                    k,
                )
            })
            .collect();
        pairs.sort_unstable();
        for (_, l, k) in pairs {
            self.drop_alias(l, k, RemoveCause::Evicted, WritebackCause::Drain);
        }
        assert!(self.copies.is_empty());
    }
}

/// The checker's violations of `kinds`, in the reference's terms.
fn reported(reference: &Reference, kinds: &[ViolationKind]) -> Vec<Expected> {
    reference
        .checker
        .violations()
        .iter()
        .filter(|v| kinds.contains(&v.kind))
        .map(|v| Expected {
            kind: v.kind,
            cycle: v.cycle.get(),
            line: (0..3)
                .find(|&l| dram_of(l) == v.line)
                .expect("a generated line"),
            keyids: v.keyids.iter().map(|k| k.get()).collect(),
            lost: v.lost.as_ref().map(|l| {
                assert!(
                    l.writer_current,
                    "the reference never writes back older copies"
                );
                Lost {
                    keyid: l.lost_keyid.get(),
                    version: l.lost_version.get(),
                    bytes: l.lost_bytes,
                    writer_version: l.writer_version.get(),
                    written: l.written_bytes,
                    garbled: l.writer_garbled,
                    recoverable_by: l.recoverable_by.map(|(k, v)| (k.get(), v.get())),
                }
            }),
            repeats: v.repeats,
        })
        .collect()
}

fn check(case: &Case) -> Result<(), TestCaseError> {
    let mut reference = Reference::new(case.mode, case.idle_lines_max);
    reference.run(case);
    let checker = &reference.checker;

    prop_assert!(
        checker.model_errors().is_empty(),
        "a correct model caused model errors: {:#?}",
        checker.model_errors()
    );
    prop_assert_eq!(checker.violations_not_kept(), 0);

    // (a) Rule-following programs are never flagged.
    if case.mode == Mode::RuleFollowing {
        prop_assert!(
            checker.violations().is_empty(),
            "rule-following program flagged:\n{}",
            checker
                .violations()
                .iter()
                .map(ToString::to_string)
                .collect::<String>()
        );
    }

    // The one loss a checker that forgot a line can miss (docs/coherency-checker.md, "What is
    // not checked"): a copy garbled by PCONFIG while cached (under the knob) written back over
    // data the checker no longer knows memory holds.
    let forgot = checker.forgotten_lines() > 0;
    let garbled_loss_on = |line: u8| {
        reference.expected.iter().any(|e| {
            e.kind == ViolationKind::DataLoss && e.line == line && e.lost.as_ref().unwrap().garbled
        })
    };

    // (b) Every real data loss is reported. The ground truth: the last store to a line, read
    // back at the end through the KeyID that made it. A line whose last store's KeyID was
    // reprogrammed since is skipped: the program destroyed that data by changing the key, not
    // through an alias.
    for (&line, &(last, keyid, epoch)) in &reference.last_stored {
        let now = reference.epochs[usize::from(keyid)];
        if now != epoch {
            continue;
        }
        let cipher = reference
            .memory
            .get(&line)
            .map(|m| m.cipher)
            .unwrap_or([0; 64]);
        if xor(&cipher, &pad(keyid, now, line)) != last {
            let flagged = checker
                .violations()
                .iter()
                .any(|v| v.kind == ViolationKind::DataLoss && v.line == dram_of(line));
            prop_assert!(
                flagged || (forgot && garbled_loss_on(line)),
                "line {} ends with other bytes than its last store, but no data loss was reported",
                line
            );
        }
    }

    // (c) No data loss is reported that did not happen, and every one that happened is: the
    // reports equal the reference's, field by field, bytes and versions included; the other
    // kinds too. A checker that forgot a line dates data read after that from memory as `v0`
    // (it no longer knows memory's version); only then are versions in loss reports left out,
    // and garbled losses may be missing (see above).
    let exact_kinds = [
        ViolationKind::DualDirty,
        ViolationKind::DataLoss,
        ViolationKind::ReprogramWhileCached,
        ViolationKind::PhantomDirty,
    ];
    let of_kinds = |kinds: &[ViolationKind]| -> Vec<Expected> {
        reference
            .expected
            .iter()
            .filter(|e| kinds.contains(&e.kind))
            .cloned()
            .collect()
    };
    let without_versions = |mut reports: Vec<Expected>| {
        if forgot {
            for lost in reports.iter_mut().filter_map(|e| e.lost.as_mut()) {
                lost.version = 0;
                lost.writer_version = 0;
            }
        }
        reports
    };
    let (got, want) = (
        without_versions(reported(&reference, &exact_kinds)),
        without_versions(of_kinds(&exact_kinds)),
    );
    if forgot {
        // `got` is `want` with some garbled losses left out, in order.
        let mut got_iter = got.iter().peekable();
        for w in &want {
            if got_iter.peek() == Some(&w) {
                got_iter.next();
            } else {
                prop_assert!(
                    w.lost.as_ref().is_some_and(|l| l.garbled),
                    "missing report {:?}",
                    w
                );
            }
        }
        prop_assert!(
            got_iter.next().is_none(),
            "reports the reference did not expect"
        );
    } else {
        prop_assert_eq!(got, want);
    }

    // Stale reads: exact while the checker remembers everything. A forgotten line loses the
    // newest stores of its aliases, which matters only after a data loss left memory older
    // than a store; then every reported stale read must still be a real one.
    let stale = reported(&reference, &[ViolationKind::StaleRead]);
    let lost_any = reference
        .expected
        .iter()
        .any(|e| e.kind == ViolationKind::DataLoss);
    if !forgot || !lost_any {
        prop_assert_eq!(stale, of_kinds(&[ViolationKind::StaleRead]));
    } else {
        for s in &stale {
            let reader = s.keyids[0];
            prop_assert!(reference.stale_loads.contains(&(s.cycle, s.line, reader)));
        }
    }

    // Chains end with the event that broke the rule.
    for v in checker.violations() {
        let last = v.chain.last().expect("a chain");
        prop_assert!(v.chain.len() <= checker.config().chain_events_max);
        prop_assert_eq!(last.cycle, v.cycle);
        prop_assert_eq!(last.keyid, v.keyids[0]);
    }
    Ok(())
}

proptest! {
    #![proptest_config(test_support::proptest_config(1024))]

    #[test]
    fn checker_agrees_with_the_reference_model(case in case()) {
        check(&case)?;
    }
}

/// The generator really produces what the properties are about: rule-following runs with
/// alias switches, and free runs with every kind of violation, data losses (final,
/// recoverable and garbled) among them.
#[test]
fn generated_runs_cover_every_kind() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen = BTreeSet::new();
    let mut rule_following_switches = 0;
    // Data losses that were final, and ones that dirty data still cached could undo.
    let mut losses = [0; 2];
    let mut garbled = 0;
    for _ in 0..400 {
        let case = case().new_tree(&mut runner).unwrap().current();
        let mut reference = Reference::new(case.mode, case.idle_lines_max);
        reference.run(&case);
        for e in &reference.expected {
            seen.insert((case.mode == Mode::FreeWithKnob, e.kind));
            if let Some(lost) = &e.lost {
                losses[usize::from(lost.recoverable_by.is_some())] += 1;
                garbled += usize::from(lost.garbled);
            }
        }
        if case.mode == Mode::RuleFollowing {
            rule_following_switches += case
                .ops
                .iter()
                .filter(|op| matches!(op, Op::Switch { .. }))
                .count();
        }
    }
    for kind in [
        ViolationKind::DualDirty,
        ViolationKind::DataLoss,
        ViolationKind::StaleRead,
        ViolationKind::ReprogramWhileCached,
    ] {
        assert!(
            seen.contains(&(false, kind)),
            "free runs never produced {kind}"
        );
    }
    assert!(seen.contains(&(true, ViolationKind::PhantomDirty)));
    assert!(!seen.contains(&(false, ViolationKind::PhantomDirty)));
    assert!(rule_following_switches > 500);
    assert!(
        losses[0] > 20 && losses[1] > 20,
        "final and recoverable losses: {losses:?}"
    );
    // Losses through a copy read under a key PCONFIG has since replaced (knob runs only).
    assert!(garbled >= 3, "garbled losses: {garbled}");
}
