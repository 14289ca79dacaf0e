//! The coherency checker on hand-written event sequences (issue 4, "checker tests"): each
//! violation kind is flagged in a program that breaks its rule and not flagged in the same
//! program made rule-abiding (CLFLUSH of the old alias before the switch); the chain of events
//! is exact and bounded; model inconsistencies are reported apart from violations.
//!
//! The sequences are what a three-level hierarchy (L1D, L2, LLC; inclusive, one core unless
//! said otherwise) emits: a miss is `MemRead` then a `Fill` per level, an eviction or a flush
//! is a `Remove` per level then a `MemWriteback` if the line was dirty.

use cache_model::{
    CacheEvent, CacheId, CacheObserver, FillCause, FlushKind, Level, RemoveCause, StoreStamp,
    WritebackCause,
};
use checker::{
    ChainEntry, ChainEvent, CheckerConfig, CoherencyChecker, ModelErrorKind, Version, Violation,
    ViolationKind, ViolationKindSet,
};
use sim_core::{
    AddressLayout, CoreId, Cycle, DimmWrite, DramAddr, KeyId, LineAddr, LineBytes, MemEvent, MemOp,
};
use std::collections::BTreeMap;

const PAGE: u64 = 0x4000;
const A: u16 = 1;
const B: u16 = 2;

/// What the rig believes one alias holds, so that the events it emits carry consistent data.
#[derive(Clone, Debug)]
struct AliasCopy {
    data: LineBytes,
    /// The store the data carries (the hierarchy's stamp).
    stamp: StoreStamp,
    /// Caches holding it, in fill order (outermost first).
    caches: Vec<CacheId>,
    dirty: bool,
    /// Dirty without a committed store (the `writeback_speculative_lines` knob).
    phantom: bool,
}

/// Emits the events of a small inclusive hierarchy into a checker.
struct Rig {
    layout: AddressLayout,
    checker: CoherencyChecker,
    cycle: u64,
    copies: BTreeMap<(u64, u16), AliasCopy>,
    /// The last store's stamp (stores are numbered 1, 2, 3... as a hierarchy numbers them).
    stamps: StoreStamp,
    /// DRAM line -> (writer KeyID, plaintext) of the last write-back.
    /// DRAM line -> ciphertext (untouched lines hold zeros).
    memory: BTreeMap<u64, LineBytes>,
    /// KeyID -> key generation (PCONFIG bumps it).
    epochs: BTreeMap<u16, u32>,
}

fn cache(core: u32, level: Level) -> CacheId {
    CacheId {
        core: (level != Level::Llc).then_some(CoreId::new(core)),
        level,
    }
}

/// The toy cipher: a pad per (KeyID, key generation, DRAM line), XORed in. Like AES-XTS under
/// a fixed key and tweak it is a bijection: through another key a line reads as garbage, and
/// written back unmodified through that key it re-encrypts to the same ciphertext.
fn pad(keyid: u16, epoch: u32, dram: u64) -> LineBytes {
    let mut x = (u64::from(keyid) << 48) ^ (u64::from(epoch) << 40) ^ dram ^ 0x9e37_79b9;
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

impl Rig {
    fn new() -> Rig {
        Rig::with_config(CheckerConfig::default())
    }

    fn with_config(config: CheckerConfig) -> Rig {
        let layout = AddressLayout::default();
        Rig {
            layout,
            checker: CoherencyChecker::new(layout, config),
            cycle: 0,
            copies: BTreeMap::new(),
            stamps: StoreStamp::MEMORY,
            memory: BTreeMap::new(),
            epochs: BTreeMap::new(),
        }
    }

    fn line(&self, dram: u64, keyid: u16) -> LineAddr {
        self.layout
            .compose(KeyId::new(keyid), DramAddr::new(dram))
            .unwrap()
            .line()
    }

    fn pad(&self, dram: u64, keyid: u16) -> LineBytes {
        pad(keyid, self.epochs.get(&keyid).copied().unwrap_or(0), dram)
    }

    /// What memory holds for `dram`, read through `keyid`'s current key.
    fn read_through(&self, dram: u64, keyid: u16) -> LineBytes {
        let cipher = self.memory.get(&dram).copied().unwrap_or([0; 64]);
        xor(&cipher, &self.pad(dram, keyid))
    }

    /// Stores `data`, written back through `keyid`, into memory.
    fn write_memory(&mut self, dram: u64, keyid: u16, data: &LineBytes) {
        let cipher = xor(data, &self.pad(dram, keyid));
        self.memory.insert(dram, cipher);
    }

    fn now(&self) -> Cycle {
        Cycle::new(self.cycle)
    }

    /// The stamp of the next store, for tests that write events by hand.
    fn next_stamp(&mut self) -> StoreStamp {
        self.stamps = self.stamps.next();
        self.stamps
    }

    /// Every operation starts 10 cycles after the previous one.
    fn tick(&mut self) -> Cycle {
        self.cycle += 10;
        self.now()
    }

    fn emit(&mut self, event: CacheEvent) {
        self.checker.on_event(&event);
    }

    /// A miss through `keyid` from memory into core `core`'s L1D, L2 and the LLC.
    fn miss(&mut self, core: u32, dram: u64, keyid: u16, cause: FillCause) {
        let cycle = self.tick();
        let line = self.line(dram, keyid);
        let data = self.read_through(dram, keyid);
        self.emit(CacheEvent::MemRead { cycle, line, cause });
        let levels = [Level::Llc, Level::L2, Level::L1d];
        for level in levels {
            self.emit(CacheEvent::Fill {
                cycle,
                cache: cache(core, level),
                line,
                cause,
                dirty: false,
            });
        }
        self.copies.insert(
            (dram, keyid),
            AliasCopy {
                data,
                stamp: StoreStamp::MEMORY,
                caches: levels.iter().map(|&l| cache(core, l)).collect(),
                dirty: false,
                phantom: false,
            },
        );
    }

    fn ensure_cached(&mut self, core: u32, dram: u64, keyid: u16, cause: FillCause) {
        if !self.copies.contains_key(&(dram, keyid)) {
            self.miss(core, dram, keyid, cause);
        }
    }

    /// A store by `core` through `keyid` of `bytes` at `offset` (write-allocate).
    fn store(&mut self, core: u32, dram: u64, keyid: u16, offset: u8, bytes: &[u8]) {
        self.ensure_cached(core, dram, keyid, FillCause::Store);
        let cycle = self.tick();
        let line = self.line(dram, keyid);
        let copy = self.copies.get_mut(&(dram, keyid)).unwrap();
        let start = usize::from(offset);
        copy.data[start..start + bytes.len()].copy_from_slice(bytes);
        copy.dirty = true;
        copy.phantom = false;
        self.stamps = self.stamps.next();
        copy.stamp = self.stamps;
        let (data, stamp) = (copy.data, copy.stamp);
        self.emit(CacheEvent::Store {
            cycle,
            core: CoreId::new(core),
            line,
            offset,
            len: bytes.len() as u8,
            data,
            stamp,
        });
    }

    /// A load by `core` through `keyid` of bytes 0..8; returns the line it saw.
    fn load(&mut self, core: u32, dram: u64, keyid: u16) -> LineBytes {
        let from = if self.copies.contains_key(&(dram, keyid)) {
            Some(Level::L1d)
        } else {
            self.miss(core, dram, keyid, FillCause::Load);
            None
        };
        let cycle = self.tick();
        let line = self.line(dram, keyid);
        let data = self.copies[&(dram, keyid)].data;
        self.emit(CacheEvent::Load {
            cycle,
            core: CoreId::new(core),
            line,
            offset: 0,
            len: 8,
            data,
            from,
        });
        data
    }

    /// Removes every copy of the alias, innermost first, then writes it back if dirty.
    fn drop_alias(&mut self, dram: u64, keyid: u16, remove: RemoveCause, wb: WritebackCause) {
        let cycle = self.now();
        let line = self.line(dram, keyid);
        let Some(copy) = self.copies.remove(&(dram, keyid)) else {
            return;
        };
        for (i, &c) in copy.caches.iter().enumerate().rev() {
            // Inner levels go by back-invalidation when the outermost copy is evicted.
            let cause = if remove == RemoveCause::Evicted && i > 0 {
                RemoveCause::BackInvalidation
            } else {
                remove
            };
            self.emit(CacheEvent::Remove {
                cycle,
                cache: c,
                line,
                cause,
                dirty: copy.dirty,
            });
        }
        if copy.dirty {
            self.emit(CacheEvent::MemWriteback {
                cycle,
                line,
                data: copy.data,
                stamp: copy.stamp,
                cause: wb,
                dirtied_by_store: !copy.phantom,
            });
            self.write_memory(dram, keyid, &copy.data);
        }
    }

    /// The LLC evicts the alias (capacity), writing it back if dirty.
    fn evict(&mut self, dram: u64, keyid: u16) {
        self.tick();
        self.drop_alias(dram, keyid, RemoveCause::Evicted, WritebackCause::Eviction);
    }

    /// CLFLUSH by `core` of the alias: write back if dirty, invalidate everywhere.
    fn clflush(&mut self, core: u32, dram: u64, keyid: u16) {
        let cycle = self.tick();
        let line = Some(self.line(dram, keyid));
        let core = CoreId::new(core);
        let kind = FlushKind::Clflush;
        self.emit(CacheEvent::FlushStart {
            cycle,
            core,
            kind,
            line,
        });
        self.drop_alias(dram, keyid, RemoveCause::Flush, WritebackCause::Flush);
        self.emit(CacheEvent::FlushDone {
            cycle,
            core,
            kind,
            line,
        });
    }

    /// CLWB by `core`: write back if dirty, keep a clean copy.
    fn clwb(&mut self, core: u32, dram: u64, keyid: u16) {
        let cycle = self.tick();
        let line = self.line(dram, keyid);
        let (core, kind) = (CoreId::new(core), FlushKind::Clwb);
        self.emit(CacheEvent::FlushStart {
            cycle,
            core,
            kind,
            line: Some(line),
        });
        if let Some(copy) = self.copies.get_mut(&(dram, keyid))
            && copy.dirty
        {
            let dirtied_by_store = !copy.phantom;
            copy.dirty = false;
            copy.phantom = false;
            let (data, stamp) = (copy.data, copy.stamp);
            self.write_memory(dram, keyid, &data);
            self.emit(CacheEvent::MemWriteback {
                cycle,
                line,
                data,
                stamp,
                cause: WritebackCause::Clwb,
                dirtied_by_store,
            });
        }
        self.emit(CacheEvent::FlushDone {
            cycle,
            core,
            kind,
            line: Some(line),
        });
    }

    /// A hardware prefetch through `keyid` into the LLC; `dirty` is the
    /// `writeback_speculative_lines` knob marking it dirty.
    fn prefetch(&mut self, dram: u64, keyid: u16, dirty: bool) {
        let cycle = self.tick();
        let line = self.line(dram, keyid);
        let data = self.read_through(dram, keyid);
        let cause = FillCause::Prefetch;
        self.emit(CacheEvent::MemRead { cycle, line, cause });
        self.emit(CacheEvent::Fill {
            cycle,
            cache: cache(0, Level::Llc),
            line,
            cause,
            dirty,
        });
        self.copies.insert(
            (dram, keyid),
            AliasCopy {
                data,
                stamp: StoreStamp::MEMORY,
                caches: vec![cache(0, Level::Llc)],
                dirty,
                phantom: dirty,
            },
        );
    }

    fn pconfig(&mut self, keyid: u16) {
        *self.epochs.entry(keyid).or_default() += 1;
        let cycle = self.tick();
        self.checker.on_memory_event(&MemEvent::KeyChanged {
            cycle,
            keyid: KeyId::new(keyid),
        });
    }

    fn violations(&self) -> &[Violation] {
        self.checker.violations()
    }

    fn kinds(&self) -> Vec<ViolationKind> {
        self.violations().iter().map(|v| v.kind).collect()
    }

    /// Asserts the run was clean: no violation and no model error.
    fn assert_clean(&self) {
        assert!(
            self.violations().is_empty(),
            "unexpected violations:\n{}",
            self.violations()
                .iter()
                .map(ToString::to_string)
                .collect::<String>()
        );
        self.assert_no_model_errors();
    }

    fn assert_no_model_errors(&self) {
        assert!(
            self.checker.model_errors().is_empty(),
            "unexpected model errors: {:#?}",
            self.checker.model_errors()
        );
    }
}

fn k(raw: u16) -> KeyId {
    KeyId::new(raw)
}

// ---------------------------------------------------------------------------------------------
// DualDirty

#[test]
fn dual_dirty_when_second_alias_is_stored_without_flush() {
    let mut rig = Rig::new();
    rig.store(0, PAGE, A, 0, &[0xaa; 8]);
    rig.store(0, PAGE, B, 0, &[0xbb; 8]);
    assert_eq!(rig.kinds(), [ViolationKind::DualDirty]);
    let v = &rig.violations()[0];
    assert_eq!(v.keyids, [k(B), k(A)]);
    assert_eq!(v.line, DramAddr::new(PAGE));
    assert_eq!(v.cycle, Cycle::new(40));
    assert!(v.explanation.contains("KeyID 2 became dirty (store v2"));
    assert!(
        v.explanation
            .contains("KeyID 1 (stores since v1 not written back)")
    );
    // Further stores through either alias are the same episode: no new report.
    rig.store(0, PAGE, B, 8, &[0xbc; 8]);
    rig.store(0, PAGE, A, 8, &[0xac; 8]);
    assert_eq!(rig.violations().len(), 1);
    rig.assert_no_model_errors();
}

#[test]
fn no_dual_dirty_when_old_alias_is_flushed_first() {
    let mut rig = Rig::new();
    rig.store(0, PAGE, A, 0, &[0xaa; 8]);
    rig.clflush(0, PAGE, A);
    rig.store(0, PAGE, B, 0, &[0xbb; 8]);
    rig.store(0, PAGE, B, 8, &[0xbc; 8]);
    rig.assert_clean();
}

#[test]
fn clwb_cleans_the_alias() {
    // CLWB writes back and keeps a clean copy: KeyID 1 is no longer dirty when KeyID 2 stores.
    let mut rig = Rig::new();
    rig.store(0, PAGE, A, 0, &[0xaa; 8]);
    rig.clwb(0, PAGE, A);
    rig.store(0, PAGE, B, 0, &[0xbb; 8]);
    rig.assert_clean();
}

#[test]
fn dual_dirty_reported_again_for_a_new_episode() {
    let mut rig = Rig::new();
    rig.store(0, PAGE, A, 0, &[0xaa; 8]);
    rig.store(0, PAGE, B, 0, &[0xbb; 8]);
    rig.clwb(0, PAGE, A); // KeyID 1 clean again, KeyID 2 still dirty
    rig.store(0, PAGE, A, 0, &[0xa2; 8]); // KeyID 1 dirty again: a second episode
    assert_eq!(
        rig.kinds(),
        [ViolationKind::DualDirty, ViolationKind::DualDirty]
    );
    assert_eq!(rig.violations()[1].keyids, [k(A), k(B)]);
}

#[test]
fn dual_dirty_lists_every_dirty_alias() {
    let mut rig = Rig::new();
    rig.store(0, PAGE, 3, 0, &[3; 8]);
    rig.store(0, PAGE, A, 0, &[1; 8]);
    rig.store(0, PAGE, B, 0, &[2; 8]);
    let last = rig.violations().last().unwrap();
    assert_eq!(last.kind, ViolationKind::DualDirty);
    // The acting alias first, then the others in ascending order.
    assert_eq!(last.keyids, [k(B), k(A), k(3)]);
}

#[test]
fn aliases_of_different_lines_do_not_interact() {
    let mut rig = Rig::new();
    rig.store(0, PAGE, A, 0, &[0xaa; 8]);
    rig.store(0, PAGE + 64, B, 0, &[0xbb; 8]);
    rig.evict(PAGE + 64, B);
    rig.evict(PAGE, A);
    rig.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// DataLoss: the classic page reuse.

/// KeyID 1 dirties the page; it is reused through KeyID 2 without a flush; KeyID 2 writes and
/// is written back; then KeyID 1's stale dirty line is evicted over it.
fn page_reuse(flush_before_switch: bool) -> Rig {
    let mut rig = Rig::new();
    rig.store(0, PAGE, A, 0, &[0xaa; 8]);
    if flush_before_switch {
        rig.clflush(0, PAGE, A);
    }
    rig.store(0, PAGE, B, 0, &[0xbb; 16]);
    rig.clflush(0, PAGE, B);
    rig.evict(PAGE, A);
    rig
}

#[test]
fn page_reuse_without_flush_loses_the_new_owners_data() {
    let rig = page_reuse(false);
    assert_eq!(
        rig.kinds(),
        [ViolationKind::DualDirty, ViolationKind::DataLoss]
    );
    let v = &rig.violations()[1];
    assert_eq!(v.keyids, [k(A), k(B)]);
    assert_eq!(v.line, DramAddr::new(PAGE));
    assert_eq!(v.cycle, rig.now());
    let lost = v.lost.as_ref().expect("a data loss carries the bytes lost");
    assert_eq!(lost.lost_keyid, k(B));
    assert_eq!(lost.writer_keyid, k(A));
    assert_eq!(
        (lost.writer_version, lost.lost_version),
        (Version::new(1), Version::new(2))
    );
    assert!(lost.writer_current);
    // The bytes lost are exactly what KeyID 2 wrote back; the bytes that replaced them are
    // KeyID 1's stale line.
    let mut b_line = rig.pad(PAGE, B);
    b_line[..16].copy_from_slice(&[0xbb; 16]);
    let mut a_line = rig.pad(PAGE, A);
    a_line[..8].copy_from_slice(&[0xaa; 8]);
    assert_eq!(lost.lost_bytes, b_line);
    assert_eq!(lost.written_bytes, a_line);
    assert_eq!(rig.read_through(PAGE, A), a_line);
    assert!(v.explanation.contains("KeyID 2's line is lost"));
    assert_eq!(rig.checker.detected(ViolationKind::DataLoss), 1);
    rig.assert_no_model_errors();
}

#[test]
fn page_reuse_with_flush_loses_nothing() {
    page_reuse(true).assert_clean();
}

#[test]
fn older_alias_written_back_first_is_not_a_loss() {
    // Both aliases dirty (flagged), but the newer data reaches memory last: nothing is lost.
    let mut rig = Rig::new();
    rig.store(0, PAGE, A, 0, &[0xaa; 8]);
    rig.store(0, PAGE, B, 0, &[0xbb; 8]);
    rig.evict(PAGE, A);
    rig.evict(PAGE, B);
    assert_eq!(rig.kinds(), [ViolationKind::DualDirty]);
}

#[test]
fn data_loss_dates_an_older_copy_by_the_store_it_carries() {
    // A non-inclusive hierarchy can write back an older copy of an alias while a newer one
    // stays cached. The write-back's store stamp says which data it carries (issue 16): here
    // the L2's copy holds store #2, though store #1 is the first not written back and the L1D
    // holds the newer #3. Dating by bytes could only give the lower bound #1.
    let mut rig = Rig::new();
    let (a, b) = (rig.line(PAGE, A), rig.line(PAGE, B));
    let (l2, l1d) = (cache(0, Level::L2), cache(0, Level::L1d));
    let core = CoreId::new(0);
    let c = |n| Cycle::new(n);
    let store = |cycle, line, data: LineBytes, stamp| CacheEvent::Store {
        cycle,
        core,
        line,
        offset: 0,
        len: 64,
        data,
        stamp: StoreStamp::new(stamp),
    };
    let second = [2u8; 64];
    let events = [
        CacheEvent::MemRead {
            cycle: c(1),
            line: a,
            cause: FillCause::Store,
        },
        CacheEvent::Fill {
            cycle: c(1),
            cache: l2,
            line: a,
            cause: FillCause::Store,
            dirty: false,
        },
        CacheEvent::Fill {
            cycle: c(1),
            cache: l1d,
            line: a,
            cause: FillCause::Store,
            dirty: false,
        },
        store(c(2), a, [1; 64], 1),
        store(c(2), a, second, 2),
        // L1D victim into L2 (already present), then refetched and stored again.
        CacheEvent::Remove {
            cycle: c(3),
            cache: l1d,
            line: a,
            cause: RemoveCause::Evicted,
            dirty: true,
        },
        CacheEvent::Fill {
            cycle: c(3),
            cache: l2,
            line: a,
            cause: FillCause::InnerWriteback,
            dirty: true,
        },
        CacheEvent::Fill {
            cycle: c(4),
            cache: l1d,
            line: a,
            cause: FillCause::Store,
            dirty: false,
        },
        store(c(5), a, [3; 64], 3),
        // KeyID 2 stores and is flushed: memory holds v4 from KeyID 2.
        CacheEvent::MemRead {
            cycle: c(6),
            line: b,
            cause: FillCause::Store,
        },
        CacheEvent::Fill {
            cycle: c(6),
            cache: l1d,
            line: b,
            cause: FillCause::Store,
            dirty: false,
        },
        store(c(7), b, [4; 64], 4),
        CacheEvent::Remove {
            cycle: c(8),
            cache: l1d,
            line: b,
            cause: RemoveCause::Flush,
            dirty: true,
        },
        CacheEvent::MemWriteback {
            cycle: c(8),
            line: b,
            data: [4; 64],
            stamp: StoreStamp::new(4),
            cause: WritebackCause::Flush,
            dirtied_by_store: true,
        },
        // L2 (non-inclusive) evicts its older copy of KeyID 1 while L1D keeps the newer one.
        CacheEvent::Remove {
            cycle: c(9),
            cache: l2,
            line: a,
            cause: RemoveCause::Evicted,
            dirty: true,
        },
        CacheEvent::MemWriteback {
            cycle: c(9),
            line: a,
            data: second,
            stamp: StoreStamp::new(2),
            cause: WritebackCause::Eviction,
            dirtied_by_store: true,
        },
    ];
    for e in &events {
        rig.emit(e.clone());
    }
    assert_eq!(
        rig.kinds(),
        [ViolationKind::DualDirty, ViolationKind::DataLoss]
    );
    let lost = rig.violations()[1].lost.as_ref().unwrap();
    assert!(!lost.writer_current);
    assert_eq!(lost.writer_version, Version::new(2));
    assert_eq!(lost.lost_version, Version::new(4));
    assert_eq!(lost.written_bytes, second);
    assert!(
        rig.violations()[1]
            .explanation
            .contains("an older copy, data v2,")
    );
    assert!(
        rig.violations()[1]
            .to_string()
            .contains("written (KeyID 1, older copy v2)")
    );
    // KeyID 1 still has unwritten data (v3 in L1D): another alias storing now is dual dirty.
    rig.emit(CacheEvent::MemRead {
        cycle: c(10),
        line: b,
        cause: FillCause::Store,
    });
    rig.emit(CacheEvent::Fill {
        cycle: c(10),
        cache: l1d,
        line: b,
        cause: FillCause::Store,
        dirty: false,
    });
    rig.emit(store(c(11), b, [5; 64], 5));
    assert_eq!(
        rig.violations().last().unwrap().kind,
        ViolationKind::DualDirty
    );
    rig.assert_no_model_errors();
}

// ---------------------------------------------------------------------------------------------
// StaleRead

/// KeyID 2 has a clean copy; KeyID 1 writes and flushes; KeyID 2 reads.
fn stale_clean_copy(flush_b_before_a_writes: bool) -> Rig {
    let mut rig = Rig::new();
    rig.load(0, PAGE, B);
    if flush_b_before_a_writes {
        rig.clflush(0, PAGE, B);
    }
    rig.store(0, PAGE, A, 0, &[0xaa; 8]);
    rig.clflush(0, PAGE, A);
    rig.load(0, PAGE, B);
    rig
}

#[test]
fn stale_clean_copy_is_a_stale_read() {
    let rig = stale_clean_copy(false);
    assert_eq!(rig.kinds(), [ViolationKind::StaleRead]);
    let v = &rig.violations()[0];
    assert_eq!(v.keyids, [k(B), k(A)]);
    assert_eq!(v.cycle, rig.now());
    assert!(
        v.explanation
            .contains("returned data v0, older than store v1 through KeyID 1")
    );
    assert!(v.explanation.contains("cached copy predates that store"));
    assert_eq!(v.chain.last().unwrap().version, Some(Version::INITIAL));
    rig.assert_no_model_errors();
}

#[test]
fn flushed_alias_reads_fresh_data() {
    stale_clean_copy(true).assert_clean();
}

#[test]
fn reading_memory_before_the_other_alias_is_written_back_is_stale() {
    let mut rig = Rig::new();
    rig.store(0, PAGE, A, 0, &[0xaa; 8]);
    rig.load(0, PAGE, B); // from memory, which does not hold KeyID 1's store yet
    assert_eq!(rig.kinds(), [ViolationKind::StaleRead]);
    assert!(
        rig.violations()[0]
            .explanation
            .contains("the store is still in KeyID 1's dirty copy")
    );
    // Rule-abiding: flush KeyID 1 first, then KeyID 2's read finds v1 in memory.
    let mut rig = Rig::new();
    rig.store(0, PAGE, A, 0, &[0xaa; 8]);
    rig.clflush(0, PAGE, A);
    rig.load(0, PAGE, B);
    rig.assert_clean();
}

#[test]
fn repeated_stale_loads_are_counted_on_one_violation() {
    let mut rig = stale_clean_copy(false);
    rig.load(0, PAGE, B);
    rig.load(0, PAGE, B);
    assert_eq!(rig.kinds(), [ViolationKind::StaleRead]);
    assert_eq!(rig.violations()[0].repeats, 2);
    assert_eq!(rig.checker.detected(ViolationKind::StaleRead), 1);
    // A newer store through KeyID 1 makes the copy stale against something new: a new report.
    rig.store(0, PAGE, A, 0, &[0xa2; 8]);
    rig.load(0, PAGE, B);
    assert_eq!(
        rig.kinds(),
        [ViolationKind::StaleRead, ViolationKind::StaleRead]
    );
    assert!(
        rig.violations()[1]
            .explanation
            .contains("older than store v2")
    );
}

#[test]
fn reading_through_the_writing_alias_is_never_stale() {
    let mut rig = Rig::new();
    rig.load(0, PAGE, A);
    rig.store(0, PAGE, A, 0, &[0xaa; 8]);
    assert_eq!(rig.load(0, PAGE, A)[..8], [0xaa; 8]);
    rig.evict(PAGE, A);
    assert_eq!(rig.load(0, PAGE, A)[..8], [0xaa; 8]);
    rig.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// ReprogramWhileCached

#[test]
fn pconfig_of_a_cached_keyid_is_flagged_per_line() {
    let mut rig = Rig::new();
    rig.load(0, PAGE + 128, A);
    rig.store(0, PAGE, A, 0, &[0xaa; 8]);
    rig.load(0, PAGE + 64, B); // another KeyID: not involved
    rig.pconfig(A);
    assert_eq!(
        rig.kinds(),
        [
            ViolationKind::ReprogramWhileCached,
            ViolationKind::ReprogramWhileCached
        ]
    );
    let (first, second) = (&rig.violations()[0], &rig.violations()[1]);
    // Ascending DRAM order, whatever the order of caching.
    assert_eq!(first.line, DramAddr::new(PAGE));
    assert_eq!(second.line, DramAddr::new(PAGE + 128));
    assert_eq!(first.keyids, [k(A)]);
    assert!(
        first
            .explanation
            .contains("dirty data (v1) that will be written back encrypted under the new key")
    );
    // Issue 10, item 9: written back under the new key, the old data stays readable.
    assert!(
        first
            .explanation
            .contains("data from before the key change stays readable through KeyID 1 after it")
    );
    assert!(second.explanation.contains("3 clean cached copies"));
    assert_eq!(
        first.chain.last().unwrap(),
        &ChainEntry {
            cycle: rig.now(),
            keyid: k(A),
            event: ChainEvent::Pconfig,
            version: None
        }
    );
    rig.assert_no_model_errors();
}

#[test]
fn pconfig_after_flushing_the_keyid_is_clean() {
    let mut rig = Rig::new();
    rig.load(0, PAGE + 128, A);
    rig.store(0, PAGE, A, 0, &[0xaa; 8]);
    rig.clflush(0, PAGE + 128, A);
    rig.clflush(0, PAGE, A);
    rig.pconfig(A);
    rig.assert_clean();
    // After the key change, memory KeyID 1 wrote reads back as garbage: the checker must not
    // expect the old bytes (no model error), nor call it stale.
    assert_ne!(rig.load(0, PAGE, A)[..8], [0xaa; 8]);
    rig.assert_clean();
}

#[test]
fn pconfig_with_a_write_back_in_flight_is_flagged() {
    // The last copy left the LLC dirty, but the write-back has not reached memory: the data
    // is still in the hierarchy and will be encrypted under whichever key is current then.
    let mut rig = Rig::new();
    rig.store(0, PAGE, A, 0, &[0xaa; 8]);
    let line = rig.line(PAGE, A);
    let cycle = rig.tick();
    for level in [Level::L1d, Level::L2, Level::Llc] {
        rig.emit(CacheEvent::Remove {
            cycle,
            cache: cache(0, level),
            line,
            cause: RemoveCause::Evicted,
            dirty: true,
        });
    }
    rig.pconfig(A);
    assert_eq!(rig.kinds(), [ViolationKind::ReprogramWhileCached]);
    assert!(rig.violations()[0].explanation.contains("dirty data (v1)"));
    // Once the write-back lands, the KeyID has nothing left in the hierarchy.
    let cycle = rig.tick();
    rig.emit(CacheEvent::MemWriteback {
        cycle,
        line,
        data: rig.copies[&(PAGE, A)].data,
        stamp: rig.copies[&(PAGE, A)].stamp,
        cause: WritebackCause::Eviction,
        dirtied_by_store: true,
    });
    rig.pconfig(A);
    assert_eq!(rig.violations().len(), 1);
    rig.assert_no_model_errors();
}

// ---------------------------------------------------------------------------------------------
// PhantomDirty (only under the `writeback_speculative_lines` knob)

#[test]
fn dirty_prefetch_is_phantom_and_can_lose_data() {
    // KeyID 2 owns the page; a prefetch through KeyID 1 (say the kernel's direct map) comes in
    // dirty under the knob, and its write-back replaces KeyID 2's newer data.
    let mut rig = Rig::new();
    rig.store(0, PAGE, B, 0, &[0xb1; 8]);
    rig.clflush(0, PAGE, B);
    rig.prefetch(PAGE, A, true);
    rig.store(0, PAGE, B, 0, &[0xb2; 8]);
    rig.clflush(0, PAGE, B);
    rig.evict(PAGE, A);
    assert_eq!(
        rig.kinds(),
        [
            ViolationKind::PhantomDirty,
            ViolationKind::DualDirty,
            ViolationKind::DataLoss
        ]
    );
    let phantom = &rig.violations()[0];
    assert_eq!(phantom.keyids, [k(A)]);
    assert!(
        phantom
            .explanation
            .contains("arrived dirty in llc (prefetch fill)")
    );
    // KeyID 1's copy was read before KeyID 2's second store reached memory: written back, it
    // restores the older ciphertext over store v2.
    let loss = rig.violations()[2].lost.as_ref().unwrap();
    assert_eq!(
        (loss.writer_version, loss.lost_version),
        (Version::new(1), Version::new(2))
    );
    assert!(!loss.writer_garbled);
    rig.assert_no_model_errors();
}

#[test]
fn phantom_write_back_of_an_unchanged_line_loses_nothing() {
    // Regression (found against the real hierarchy's mock memory): KeyID 1 reads KeyID 2's
    // line (garbage through its key) and, under the knob, writes it back unmodified. Under a
    // fixed key encryption is a bijection, so the very ciphertext memory held goes back:
    // KeyID 2's data is intact, and memory's data is still KeyID 2's.
    let mut rig = Rig::new();
    rig.store(0, PAGE, 3, 0, &[0xc1; 8]); // a stale dirty line, older than KeyID 2's store
    rig.store(0, PAGE, B, 0, &[0xb1; 8]);
    rig.clflush(0, PAGE, B);
    let b_line = rig.read_through(PAGE, B);
    rig.prefetch(PAGE, A, true);
    rig.evict(PAGE, A);
    assert_eq!(rig.read_through(PAGE, B), b_line);
    assert_eq!(
        rig.kinds(),
        [
            ViolationKind::DualDirty,
            ViolationKind::PhantomDirty,
            ViolationKind::DualDirty
        ]
    );
    // The stale line written over it now loses KeyID 2's store, not KeyID 1's round trip.
    rig.evict(PAGE, 3);
    let v = rig.violations().last().unwrap();
    assert_eq!(v.kind, ViolationKind::DataLoss);
    assert_eq!(v.keyids, [k(3), k(B)]);
    assert_eq!(v.lost.as_ref().unwrap().lost_bytes, b_line);
    rig.assert_no_model_errors();
}

#[test]
fn garbled_phantom_write_back_loses_data() {
    // Regression (found against the real hierarchy's mock memory): KeyID 1's unmodified
    // phantom copy of KeyID 2's line was read under KeyID 1's old key; PCONFIG changes that
    // key while it is cached; written back, it re-encrypts to other ciphertext and destroys
    // KeyID 2's data, though its version is as recent as memory's.
    let mut rig = Rig::new();
    rig.store(0, PAGE, B, 0, &[0xb1; 8]);
    rig.clflush(0, PAGE, B);
    let b_line = rig.read_through(PAGE, B);
    rig.prefetch(PAGE, A, true);
    rig.evict(PAGE, A); // a harmless round trip, as above
    rig.prefetch(PAGE, A, true);
    rig.pconfig(A);
    rig.evict(PAGE, A);
    assert_ne!(rig.read_through(PAGE, B), b_line);
    assert_eq!(
        rig.kinds(),
        [
            ViolationKind::PhantomDirty,
            ViolationKind::PhantomDirty,
            ViolationKind::ReprogramWhileCached,
            ViolationKind::DataLoss
        ]
    );
    let v = &rig.violations()[3];
    assert_eq!(v.keyids, [k(A), k(B)]);
    let loss = v.lost.as_ref().unwrap();
    assert!(loss.writer_garbled);
    assert_eq!(
        (loss.writer_version, loss.lost_version),
        (Version::new(1), Version::new(1))
    );
    assert!(
        v.explanation
            .contains("read under its previous key (PCONFIG since)")
    );
    assert!(v.to_string().contains("written (KeyID 1, v1, garbled)"));
    rig.assert_no_model_errors();
}

#[test]
fn data_destroyed_by_a_key_change_is_not_lost_again() {
    // KeyID 1's own data is unreadable once PCONFIG replaced its key; a later phantom
    // write-back through KeyID 1 (read under the new key: a round trip) destroys nothing.
    let mut rig = Rig::new();
    rig.store(0, PAGE, A, 0, &[0xa1; 8]);
    rig.evict(PAGE, A);
    rig.pconfig(A);
    rig.prefetch(PAGE, A, true);
    rig.evict(PAGE, A);
    assert_eq!(rig.kinds(), [ViolationKind::PhantomDirty]);
    rig.assert_no_model_errors();

    // Likewise another alias's stale line written back over data whose key is gone.
    let mut rig = Rig::new();
    rig.store(0, PAGE, A, 0, &[0xa1; 8]);
    rig.store(0, PAGE, B, 0, &[0xb1; 8]);
    rig.clflush(0, PAGE, B);
    rig.pconfig(B);
    rig.evict(PAGE, A);
    assert_eq!(rig.kinds(), [ViolationKind::DualDirty]);
    // With KeyID 2's key unchanged, the same program loses KeyID 2's store.
    let mut rig = Rig::new();
    rig.store(0, PAGE, A, 0, &[0xa1; 8]);
    rig.store(0, PAGE, B, 0, &[0xb1; 8]);
    rig.clflush(0, PAGE, B);
    rig.evict(PAGE, A);
    assert_eq!(
        rig.kinds(),
        [ViolationKind::DualDirty, ViolationKind::DataLoss]
    );
}

#[test]
fn clean_prefetch_is_never_written_back() {
    // The same program on a CPU without the knob: prefetched lines are clean and vanish.
    let mut rig = Rig::new();
    rig.store(0, PAGE, B, 0, &[0xb1; 8]);
    rig.clflush(0, PAGE, B);
    rig.prefetch(PAGE, A, false);
    rig.store(0, PAGE, B, 0, &[0xb2; 8]);
    rig.clflush(0, PAGE, B);
    rig.evict(PAGE, A);
    rig.assert_clean();
}

#[test]
fn phantom_write_back_without_a_dirty_fill_is_flagged() {
    // The knob can also make a line dirty without the fill saying so; the write-back that
    // admits `dirtied_by_store = false` is then where the episode is seen.
    let mut rig = Rig::new();
    rig.load(0, PAGE, A);
    let line = rig.line(PAGE, A);
    let data = rig.copies[&(PAGE, A)].data;
    let cycle = rig.tick();
    for level in [Level::L1d, Level::L2, Level::Llc] {
        rig.emit(CacheEvent::Remove {
            cycle,
            cache: cache(0, level),
            line,
            cause: RemoveCause::Evicted,
            dirty: level == Level::Llc,
        });
    }
    rig.emit(CacheEvent::MemWriteback {
        cycle,
        line,
        data,
        stamp: StoreStamp::MEMORY,
        cause: WritebackCause::Eviction,
        dirtied_by_store: false,
    });
    assert_eq!(rig.kinds(), [ViolationKind::PhantomDirty]);
    assert!(
        rig.violations()[0]
            .explanation
            .contains("no committed store made dirty")
    );
    rig.assert_no_model_errors();
}

#[test]
fn phantom_episode_is_reported_once() {
    // A dirty prefetch and the write-back of that same copy are one episode: one report.
    let mut rig = Rig::new();
    rig.prefetch(PAGE, A, true);
    rig.evict(PAGE, A);
    assert_eq!(rig.kinds(), [ViolationKind::PhantomDirty]);
    // A store into a phantom copy makes it store-dirty: its write-back is not phantom.
    rig.prefetch(PAGE, A, true);
    rig.store(0, PAGE, A, 0, &[0xaa; 8]);
    rig.evict(PAGE, A);
    assert_eq!(
        rig.kinds(),
        [ViolationKind::PhantomDirty, ViolationKind::PhantomDirty]
    );
    rig.assert_no_model_errors();
}

#[test]
fn store_dirtied_claim_without_a_store_is_a_model_error() {
    let mut rig = Rig::new();
    rig.load(0, PAGE, A);
    let line = rig.line(PAGE, A);
    let data = rig.copies[&(PAGE, A)].data;
    rig.emit(CacheEvent::MemWriteback {
        cycle: Cycle::new(100),
        line,
        data,
        stamp: StoreStamp::MEMORY,
        cause: WritebackCause::Eviction,
        dirtied_by_store: true,
    });
    let kinds: Vec<_> = rig.checker.model_errors().iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [ModelErrorKind::WritebackWithoutStore]);
    assert!(rig.violations().is_empty());
}

// ---------------------------------------------------------------------------------------------
// The chain of events

#[test]
fn chain_is_the_lines_history_in_order_ending_with_the_trigger() {
    let rig = page_reuse(false);
    let loss = &rig.violations()[1];
    let l1d = cache(0, Level::L1d);
    let l2 = cache(0, Level::L2);
    let llc = cache(0, Level::Llc);
    let core = CoreId::new(0);
    let e = |cycle: u64, keyid: u16, event: ChainEvent, version: Option<u64>| ChainEntry {
        cycle: Cycle::new(cycle),
        keyid: k(keyid),
        event,
        version: version.map(Version::new),
    };
    let fill = |cache| ChainEvent::Fill {
        cache,
        cause: FillCause::Store,
        dirty: false,
    };
    let flush_remove = |cache| ChainEvent::Remove {
        cache,
        cause: RemoveCause::Flush,
        dirty: true,
    };
    // 16 events fit the default history exactly: KeyID 1's miss and store, KeyID 2's miss,
    // store and CLFLUSH, KeyID 1's eviction.
    let expected = vec![
        e(
            10,
            A,
            ChainEvent::MemRead {
                cause: FillCause::Store,
            },
            Some(0),
        ),
        e(10, A, fill(llc), Some(0)),
        e(10, A, fill(l2), Some(0)),
        e(10, A, fill(l1d), Some(0)),
        e(
            20,
            A,
            ChainEvent::Store {
                core,
                offset: 0,
                len: 8,
            },
            Some(1),
        ),
        e(
            30,
            B,
            ChainEvent::MemRead {
                cause: FillCause::Store,
            },
            Some(0),
        ),
        e(30, B, fill(llc), Some(0)),
        e(30, B, fill(l2), Some(0)),
        e(30, B, fill(l1d), Some(0)),
        e(
            40,
            B,
            ChainEvent::Store {
                core,
                offset: 0,
                len: 16,
            },
            Some(2),
        ),
        e(
            50,
            B,
            ChainEvent::FlushStart {
                core,
                kind: FlushKind::Clflush,
            },
            None,
        ),
        e(50, B, flush_remove(l1d), Some(2)),
        e(50, B, flush_remove(l2), Some(2)),
        e(50, B, flush_remove(llc), Some(2)),
        e(
            50,
            B,
            ChainEvent::MemWriteback {
                cause: WritebackCause::Flush,
                dirtied_by_store: true,
            },
            Some(2),
        ),
        e(
            50,
            B,
            ChainEvent::FlushDone {
                core,
                kind: FlushKind::Clflush,
            },
            None,
        ),
    ];
    // The loss's own chain: the history above minus what fell out, then KeyID 1's eviction.
    let evict = |cache, cause| ChainEvent::Remove {
        cache,
        cause,
        dirty: true,
    };
    let tail = vec![
        e(60, A, evict(l1d, RemoveCause::BackInvalidation), Some(1)),
        e(60, A, evict(l2, RemoveCause::BackInvalidation), Some(1)),
        e(60, A, evict(llc, RemoveCause::Evicted), Some(1)),
        e(
            60,
            A,
            ChainEvent::MemWriteback {
                cause: WritebackCause::Eviction,
                dirtied_by_store: true,
            },
            Some(1),
        ),
    ];
    let mut full: Vec<ChainEntry> = expected.clone();
    full.extend(tail);
    assert_eq!(loss.chain, full[full.len() - 16..]);
    // The dual-dirty report, made at KeyID 2's store, ends there.
    let dual = &rig.violations()[0];
    assert_eq!(dual.chain, expected[..10]);
}

#[test]
fn chain_is_bounded_by_the_config() {
    let mut rig = Rig::with_config(CheckerConfig {
        chain_events_max: 3,
        ..CheckerConfig::default()
    });
    rig.store(0, PAGE, A, 0, &[0xaa; 8]);
    rig.store(0, PAGE, B, 0, &[0xbb; 8]);
    let v = &rig.violations()[0];
    assert_eq!(v.chain.len(), 3);
    assert_eq!(
        v.chain.iter().map(|e| e.event).collect::<Vec<_>>(),
        [
            ChainEvent::Fill {
                cache: cache(0, Level::L2),
                cause: FillCause::Store,
                dirty: false
            },
            ChainEvent::Fill {
                cache: cache(0, Level::L1d),
                cause: FillCause::Store,
                dirty: false
            },
            ChainEvent::Store {
                core: CoreId::new(0),
                offset: 0,
                len: 8
            },
        ]
    );
    assert!(v.chain.iter().all(|e| e.keyid == k(B)));

    let mut rig = Rig::with_config(CheckerConfig {
        chain_events_max: 0,
        ..CheckerConfig::default()
    });
    rig.store(0, PAGE, A, 0, &[0xaa; 8]);
    rig.store(0, PAGE, B, 0, &[0xbb; 8]);
    assert!(rig.violations()[0].chain.is_empty());
}

#[test]
fn ignored_kinds_are_neither_kept_nor_counted_and_change_nothing_else() {
    // The page reuse (dual_dirty, then data_loss) with dual_dirty ignored: the data loss is
    // reported exactly as before.
    let reuse = |ignore: ViolationKindSet| {
        let mut rig = Rig::with_config(CheckerConfig {
            ignore,
            ..CheckerConfig::default()
        });
        rig.store(0, PAGE, A, 0, &[0xaa; 8]);
        rig.store(0, PAGE, B, 0, &[0xbb; 16]);
        rig.clflush(0, PAGE, B);
        rig.evict(PAGE, A);
        rig
    };
    let all = reuse(ViolationKindSet::EMPTY);
    let quiet = reuse(ViolationKindSet::EMPTY.with(ViolationKind::DualDirty));
    assert_eq!(quiet.kinds(), [ViolationKind::DataLoss]);
    assert_eq!(quiet.violations()[0], all.violations()[1]);
    assert_eq!(quiet.checker.detected(ViolationKind::DualDirty), 0);
    assert_eq!(quiet.checker.detected(ViolationKind::DataLoss), 1);
    assert_eq!(
        quiet.checker.config().ignore.iter().collect::<Vec<_>>(),
        [ViolationKind::DualDirty]
    );
    quiet.assert_no_model_errors();

    // Stale reads ignored: the repeats of an unreported stale read are not counted anywhere,
    // and a later stale read is not reported either.
    let mut rig = Rig::with_config(CheckerConfig {
        ignore: [ViolationKind::StaleRead].into_iter().collect(),
        ..CheckerConfig::default()
    });
    rig.load(0, PAGE, B);
    rig.store(0, PAGE, A, 0, &[0xaa; 8]);
    rig.clflush(0, PAGE, A);
    rig.load(0, PAGE, B);
    rig.load(0, PAGE, B);
    rig.store(0, PAGE, A, 0, &[0xa2; 8]);
    rig.load(0, PAGE, B);
    rig.assert_clean();
    assert_eq!(rig.checker.detected(ViolationKind::StaleRead), 0);
}

#[test]
fn report_renders_kind_line_bytes_and_chain() {
    let rig = page_reuse(false);
    let text = rig.violations()[1].to_string();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("data_loss at cycle 60, DRAM line 0x4000, KeyIDs 1, 2")
    );
    assert!(text.contains("  lost    (KeyID 2, v2): bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"));
    assert!(text.contains("  written (KeyID 1, v1): aaaaaaaaaaaaaaaa"));
    assert!(text.contains("    cycle 60: KeyID 1 write-back to memory (eviction) [v1]\n"));
    assert!(text.contains("    cycle 40: KeyID 2 store by core 0 to bytes 0..16 [v2]\n"));
}

// ---------------------------------------------------------------------------------------------
// Model errors are reported apart from violations.

#[test]
fn remove_of_a_copy_never_filled_is_a_model_error() {
    let mut rig = Rig::new();
    let line = rig.line(PAGE, A);
    rig.emit(CacheEvent::Remove {
        cycle: Cycle::new(5),
        cache: cache(1, Level::L2),
        line,
        cause: RemoveCause::Evicted,
        dirty: false,
    });
    let errors = rig.checker.model_errors();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, ModelErrorKind::RemoveWithoutFill);
    // Named like every other report entry: the DRAM line and the KeyID.
    assert_eq!(errors[0].line, Some(DramAddr::new(PAGE)));
    assert_eq!(errors[0].keyid, KeyId::new(A));
    assert_eq!(rig.layout.line_dram_addr(line), DramAddr::new(PAGE));
    assert!(errors[0].detail.contains("core 1 l2"));
    assert_eq!(
        errors[0].to_string(),
        format!(
            "model error remove_without_fill at cycle 5, DRAM line {PAGE:#x}, KeyID {A}: {}",
            errors[0].detail
        )
    );
    assert!(rig.violations().is_empty());
}

#[test]
fn load_returning_other_than_the_newest_store_is_a_model_error() {
    let mut rig = Rig::new();
    rig.store(0, PAGE, A, 0, &[0xaa; 8]);
    let line = rig.line(PAGE, A);
    let mut wrong = rig.copies[&(PAGE, A)].data;
    wrong[3] ^= 1;
    rig.emit(CacheEvent::Load {
        cycle: Cycle::new(100),
        core: CoreId::new(0),
        line,
        offset: 0,
        len: 8,
        data: wrong,
        from: Some(Level::L1d),
    });
    let kinds: Vec<_> = rig.checker.model_errors().iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [ModelErrorKind::LoadDataMismatch]);
    assert!(rig.violations().is_empty());
}

#[test]
fn load_after_own_write_back_must_return_it() {
    // KeyID 1 wrote the line back and nothing changed the key: a refill must return the same
    // bytes. A hierarchy that returns something else lost the alias's own data.
    let mut rig = Rig::new();
    rig.store(0, PAGE, A, 0, &[0xaa; 8]);
    rig.evict(PAGE, A);
    rig.memory.insert(PAGE, [0x11; 64]); // memory changes behind the hierarchy's back
    rig.load(0, PAGE, A);
    let kinds: Vec<_> = rig.checker.model_errors().iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [ModelErrorKind::LoadDataMismatch]);
}

#[test]
fn garbage_read_through_a_foreign_key_must_stay_the_same() {
    // KeyID 2 reads what KeyID 1 wrote: garbage the checker cannot predict. It learns it from
    // the first load; while the copy stays cached, later loads must return the same bytes.
    let mut rig = Rig::new();
    rig.store(0, PAGE, A, 0, &[0xaa; 8]);
    rig.clflush(0, PAGE, A);
    let seen = rig.load(0, PAGE, B);
    rig.load(0, PAGE, B);
    rig.assert_clean();
    let mut changed = seen;
    changed[63] ^= 0x80;
    let line = rig.line(PAGE, B);
    rig.emit(CacheEvent::Load {
        cycle: Cycle::new(1000),
        core: CoreId::new(0),
        line,
        offset: 56,
        len: 8,
        data: changed,
        from: Some(Level::L1d),
    });
    let kinds: Vec<_> = rig.checker.model_errors().iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [ModelErrorKind::LoadDataMismatch]);
}

#[test]
fn memory_read_while_cached_does_not_source_a_later_fill() {
    // A memory read for an alias that is cached (a prefetch that found the line already
    // there, say) is answered by the caches, not dated by memory. If the alias later empties
    // and is refilled with no memory read of its own, the fill has no source.
    let mut rig = Rig::new();
    let line = rig.line(PAGE, A);
    let l1d = cache(0, Level::L1d);
    let c = Cycle::new;
    rig.emit(CacheEvent::MemRead {
        cycle: c(1),
        line,
        cause: FillCause::Load,
    });
    rig.emit(CacheEvent::Fill {
        cycle: c(1),
        cache: l1d,
        line,
        cause: FillCause::Load,
        dirty: false,
    });
    rig.emit(CacheEvent::MemRead {
        cycle: c(2),
        line,
        cause: FillCause::Prefetch,
    });
    rig.emit(CacheEvent::Remove {
        cycle: c(3),
        cache: l1d,
        line,
        cause: RemoveCause::Evicted,
        dirty: false,
    });
    rig.emit(CacheEvent::Fill {
        cycle: c(9),
        cache: l1d,
        line,
        cause: FillCause::Load,
        dirty: false,
    });
    let kinds: Vec<_> = rig.checker.model_errors().iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [ModelErrorKind::FillWithoutSource]);
    assert!(
        rig.checker.model_errors()[0]
            .detail
            .contains("load fill of KeyID 1 into core 0 l1d")
    );
}

#[test]
fn store_that_changes_other_bytes_is_a_model_error() {
    let mut rig = Rig::new();
    rig.store(0, PAGE, A, 0, &[0xaa; 8]);
    let line = rig.line(PAGE, A);
    let mut data = rig.copies[&(PAGE, A)].data;
    data[8] = 0xcc; // the store's range
    data[40] ^= 0xff; // outside it
    let stamp = rig.next_stamp();
    rig.emit(CacheEvent::Store {
        cycle: Cycle::new(100),
        core: CoreId::new(0),
        line,
        offset: 8,
        len: 1,
        data,
        stamp,
    });
    let kinds: Vec<_> = rig.checker.model_errors().iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [ModelErrorKind::StoreMergeMismatch]);
}

#[test]
fn fill_from_nowhere_is_a_model_error() {
    let mut rig = Rig::new();
    let line = rig.line(PAGE, A);
    rig.emit(CacheEvent::Fill {
        cycle: Cycle::new(3),
        cache: cache(0, Level::L1d),
        line,
        cause: FillCause::Load,
        dirty: false,
    });
    let kinds: Vec<_> = rig.checker.model_errors().iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [ModelErrorKind::FillWithoutSource]);
}

#[test]
fn same_cycle_transfer_between_cores_is_not_a_fill_from_nowhere() {
    // Core 0 holds the only copy (clean or dirty); core 1's store takes it over. Whether the
    // hierarchy reports the source's invalidation or the destination's fill first, the data
    // is the alias's own and no memory read happened.
    for (dirty, remove_first) in [(false, false), (false, true), (true, false), (true, true)] {
        let mut rig = Rig::new();
        let line = rig.line(PAGE, A);
        let (l1_0, l1_1) = (cache(0, Level::L1d), cache(1, Level::L1d));
        let c = Cycle::new;
        let mut data = [0u8; 64];
        rig.emit(CacheEvent::MemRead {
            cycle: c(1),
            line,
            cause: FillCause::Load,
        });
        rig.emit(CacheEvent::Fill {
            cycle: c(1),
            cache: l1_0,
            line,
            cause: FillCause::Load,
            dirty: false,
        });
        rig.emit(CacheEvent::Load {
            cycle: c(1),
            core: CoreId::new(0),
            line,
            offset: 0,
            len: 8,
            data,
            from: None,
        });
        if dirty {
            data[0] = 1;
            let stamp = rig.next_stamp();
            rig.emit(CacheEvent::Store {
                cycle: c(2),
                core: CoreId::new(0),
                line,
                offset: 0,
                len: 1,
                data,
                stamp,
            });
        }
        let remove = CacheEvent::Remove {
            cycle: c(3),
            cache: l1_0,
            line,
            cause: RemoveCause::CoherenceInvalidation,
            dirty,
        };
        let fill = CacheEvent::Fill {
            cycle: c(3),
            cache: l1_1,
            line,
            cause: FillCause::Store,
            dirty,
        };
        if remove_first {
            rig.emit(remove);
            rig.emit(fill);
        } else {
            rig.emit(fill);
            rig.emit(remove);
        }
        data[1] = 2;
        let stamp = rig.next_stamp();
        rig.emit(CacheEvent::Store {
            cycle: c(4),
            core: CoreId::new(1),
            line,
            offset: 1,
            len: 1,
            data,
            stamp,
        });
        rig.emit(CacheEvent::Load {
            cycle: c(5),
            core: CoreId::new(1),
            line,
            offset: 0,
            len: 2,
            data,
            from: Some(Level::L1d),
        });
        rig.assert_clean();
    }
}

#[test]
fn refill_from_a_write_back_in_flight_keeps_the_alias_data() {
    // The last copy left dirty; before the write-back reaches memory the line is refilled
    // (served from the write-back buffer). The alias still has its newest data: reading it
    // is neither stale nor a mismatch, and memory's older content does not date it.
    let mut rig = Rig::new();
    rig.store(0, PAGE, A, 0, &[0xa1; 8]);
    rig.clflush(0, PAGE, A);
    rig.load(0, PAGE, B); // KeyID 2 now has v1 cached: the line's history involves two aliases
    rig.clflush(0, PAGE, B);
    rig.store(0, PAGE, A, 0, &[0xa2; 8]);
    let line = rig.line(PAGE, A);
    let (data, stamp) = (rig.copies[&(PAGE, A)].data, rig.copies[&(PAGE, A)].stamp);
    let l1d = cache(0, Level::L1d);
    let c = Cycle::new(1000);
    for level in [Level::L1d, Level::L2, Level::Llc] {
        rig.emit(CacheEvent::Remove {
            cycle: c,
            cache: cache(0, level),
            line,
            cause: RemoveCause::Evicted,
            dirty: true,
        });
    }
    rig.emit(CacheEvent::MemRead {
        cycle: c.plus(1),
        line,
        cause: FillCause::Load,
    });
    rig.emit(CacheEvent::Fill {
        cycle: c.plus(2),
        cache: l1d,
        line,
        cause: FillCause::Load,
        dirty: false,
    });
    rig.emit(CacheEvent::Load {
        cycle: c.plus(2),
        core: CoreId::new(0),
        line,
        offset: 0,
        len: 8,
        data,
        from: None,
    });
    rig.emit(CacheEvent::MemWriteback {
        cycle: c.plus(3),
        line,
        data,
        stamp,
        cause: WritebackCause::Eviction,
        dirtied_by_store: true,
    });
    rig.assert_clean();
}

#[test]
fn write_through_store_to_an_uncached_line_is_consistent() {
    // Write-through, no-write-allocate: the store goes to memory, no copy is cached.
    let mut rig = Rig::new();
    let line = rig.line(PAGE, A);
    let data = [7u8; 64];
    let stamp = rig.next_stamp();
    rig.emit(CacheEvent::Store {
        cycle: Cycle::new(1),
        core: CoreId::new(0),
        line,
        offset: 0,
        len: 64,
        data,
        stamp,
    });
    rig.emit(CacheEvent::MemWriteback {
        cycle: Cycle::new(2),
        line,
        data,
        stamp,
        cause: WritebackCause::Eviction,
        dirtied_by_store: true,
    });
    // Now KeyID 2 stores: KeyID 1 is clean, so this is not dual dirty.
    let b = rig.line(PAGE, B);
    let stamp = rig.next_stamp();
    rig.emit(CacheEvent::Store {
        cycle: Cycle::new(3),
        core: CoreId::new(0),
        line: b,
        offset: 0,
        len: 64,
        data,
        stamp,
    });
    rig.assert_clean();
}

#[test]
fn writeback_regression_is_a_model_error() {
    // A fill requested before KeyID 1's own write-through store reached memory arrives after
    // it with the old data, and is later written back over the newer data: the hierarchy
    // held two versions of one alias, which a correct one never does.
    let mut rig = Rig::new();
    let line = rig.line(PAGE, A);
    let (core, c) = (CoreId::new(0), Cycle::new);
    let new = [0x22u8; 64];
    let old = [0x11u8; 64];
    rig.emit(CacheEvent::MemRead {
        cycle: c(1),
        line,
        cause: FillCause::Load,
    });
    rig.emit(CacheEvent::Store {
        cycle: c(2),
        core,
        line,
        offset: 0,
        len: 64,
        data: new,
        stamp: StoreStamp::new(1),
    });
    rig.emit(CacheEvent::MemWriteback {
        cycle: c(3),
        line,
        data: new,
        stamp: StoreStamp::new(1),
        cause: WritebackCause::Eviction,
        dirtied_by_store: true,
    });
    rig.emit(CacheEvent::Fill {
        cycle: c(4),
        cache: cache(0, Level::L1d),
        line,
        cause: FillCause::Load,
        dirty: false,
    });
    // The old data, as read from memory: no store's stamp.
    rig.emit(CacheEvent::MemWriteback {
        cycle: c(5),
        line,
        data: old,
        stamp: StoreStamp::MEMORY,
        cause: WritebackCause::Eviction,
        dirtied_by_store: true,
    });
    let errors = rig.checker.model_errors();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, ModelErrorKind::WritebackRegression);
    assert!(
        errors[0]
            .detail
            .contains("wrote back data v0 over its own newer write-back v1")
    );
    assert!(rig.violations().is_empty());
}

#[test]
fn key_change_of_an_impossible_keyid_is_a_model_error() {
    let mut rig = Rig::new();
    rig.checker.on_memory_event(&MemEvent::KeyChanged {
        cycle: Cycle::new(1),
        keyid: KeyId::new(64),
    });
    let errors = rig.checker.model_errors();
    assert_eq!(errors[0].kind, ModelErrorKind::KeyChangeKeyIdOutOfRange);
    assert_eq!((errors[0].line, errors[0].keyid), (None, KeyId::new(64)));
    assert!(rig.violations().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Bounds

#[test]
fn idle_lines_are_forgotten_but_resident_ones_are_kept() {
    let config = CheckerConfig {
        idle_lines_max: 64,
        ..CheckerConfig::default()
    };
    let mut rig = Rig::with_config(config);
    // KeyID 1 dirties the page and keeps it cached through everything that follows.
    rig.store(0, PAGE, A, 0, &[0xaa; 8]);
    // A streaming workload through KeyID 3 over 10,000 other lines.
    for i in 1..=10_000u64 {
        let dram = 0x10_0000 + i * 64;
        rig.store(0, dram, 3, 0, &[i as u8; 8]);
        rig.evict(dram, 3);
        // The page, at most 64 idle lines, and the line being streamed.
        assert!(rig.checker.tracked_lines() <= 1 + 64 + 1);
    }
    assert_eq!(
        rig.checker.forgotten_lines() + rig.checker.tracked_lines() as u64,
        10_001
    );
    assert!(rig.checker.forgotten_lines() >= 10_000 - 64);
    rig.assert_clean();
    // The page was never forgotten: the page reuse is still caught in full.
    rig.store(0, PAGE, B, 0, &[0xbb; 8]);
    rig.clflush(0, PAGE, B);
    rig.evict(PAGE, A);
    assert_eq!(
        rig.kinds(),
        [ViolationKind::DualDirty, ViolationKind::DataLoss]
    );
    assert_eq!(
        rig.violations()[1].lost.as_ref().unwrap().lost_version,
        Version::new(10_002)
    );
}

#[test]
fn violations_beyond_the_cap_are_counted_not_kept() {
    let mut rig = Rig::with_config(CheckerConfig {
        violations_max: 2,
        ..CheckerConfig::default()
    });
    for i in 0..5u64 {
        rig.store(0, PAGE + i * 64, A, 0, &[1; 8]);
        rig.store(0, PAGE + i * 64, B, 0, &[2; 8]);
    }
    assert_eq!(rig.violations().len(), 2);
    assert_eq!(rig.checker.detected(ViolationKind::DualDirty), 5);
    assert_eq!(rig.checker.violations_not_kept(), 3);
}

#[test]
fn wbinvd_markers_without_a_line_are_accepted() {
    let mut rig = Rig::new();
    rig.store(0, PAGE, A, 0, &[0xaa; 8]);
    let cycle = rig.tick();
    let core = CoreId::new(0);
    rig.emit(CacheEvent::FlushStart {
        cycle,
        core,
        kind: FlushKind::Wbinvd,
        line: None,
    });
    rig.drop_alias(PAGE, A, RemoveCause::Wbinvd, WritebackCause::Wbinvd);
    rig.emit(CacheEvent::FlushDone {
        cycle,
        core,
        kind: FlushKind::Wbinvd,
        line: None,
    });
    rig.store(0, PAGE, B, 0, &[0xbb; 8]);
    rig.assert_clean();
    // Miss (4) and store (1), WBINVD start, 3 removes and a write-back, WBINVD end, then
    // KeyID 2's miss and store.
    assert_eq!(rig.checker.events_seen(), 5 + 1 + 4 + 1 + 5);
}

#[test]
fn checker_can_be_attached_to_the_hierarchy() {
    // `Hierarchy::attach_observer` takes `CacheObserver + Send + 'static`.
    fn attachable<O: CacheObserver + Send + 'static>(_: &O) {}
    attachable(&CoherencyChecker::new(
        AddressLayout::default(),
        CheckerConfig::default(),
    ));
}

// ---------------------------------------------------------------------------------------------
// Attacks on the DIMMs and the bus (issue 11): recorded in the line's chain, no violation by
// themselves, and what memory returns after one is no model error.
// ---------------------------------------------------------------------------------------------

impl Rig {
    /// KeyID `keyid` stores `byte` over the whole line and flushes it to memory.
    fn store_and_flush(&mut self, dram: u64, keyid: u16, byte: u8) {
        self.store(0, dram, keyid, 0, &[byte; 64]);
        self.clflush(0, dram, keyid);
    }

    /// An attacker puts `cipher` into the line's DIMM cells; `report` says whether the memory
    /// side tells the checker.
    fn write_cells(&mut self, dram: u64, cipher: LineBytes, by: DimmWrite, report: bool) {
        let cycle = self.tick();
        self.memory.insert(dram, cipher);
        if report {
            self.checker.on_memory_event(&MemEvent::DimmWritten {
                cycle,
                line: DramAddr::new(dram),
                by,
            });
        }
    }
}

#[test]
fn a_replay_is_recorded_in_the_chain_and_the_old_data_it_brings_back_is_no_model_error() {
    for report in [true, false] {
        let mut rig = Rig::new();
        rig.store_and_flush(PAGE, A, 0x11);
        let recorded_at = rig.now();
        let old = rig.memory[&PAGE];
        rig.store_and_flush(PAGE, A, 0x22);
        let by = DimmWrite::Replay {
            recorded: recorded_at,
        };
        rig.write_cells(PAGE, old, by, report);
        // The replayed ciphertext decrypts fine through the same KeyID: the old data is back.
        assert_eq!(rig.load(0, PAGE, A), [0x11; 64]);
        assert!(rig.violations().is_empty(), "{:?}", rig.violations());
        let errors: Vec<ModelErrorKind> =
            rig.checker.model_errors().iter().map(|e| e.kind).collect();
        if report {
            assert!(errors.is_empty(), "{errors:?}");
            let history = rig.checker.history(DramAddr::new(PAGE));
            let attack = history
                .iter()
                .position(|e| e.event == ChainEvent::DimmWritten { by })
                .expect("the replay is in the line's history");
            // The fill and the load that followed come after it.
            assert!(
                history[attack + 1..]
                    .iter()
                    .any(|e| matches!(e.event, ChainEvent::Load { .. }))
            );
            assert_eq!(
                history[attack].to_string(),
                format!(
                    "cycle {}: attacker wrote the DIMM cells: a replay of the ciphertext \
                     recorded at cycle {}",
                    history[attack].cycle.get(),
                    recorded_at.get()
                )
            );
        } else {
            // Untold, the checker takes the replayed data for a model that returned the wrong
            // bytes: why every attack must be reported.
            assert_eq!(errors, [ModelErrorKind::LoadDataMismatch]);
        }
    }
}

#[test]
fn a_write_back_after_an_attack_makes_memory_predictable_again() {
    let mut rig = Rig::new();
    rig.store_and_flush(PAGE, A, 0x11);
    rig.write_cells(PAGE, [0xee; 64], DimmWrite::BitFlip { bits: 3 }, true);
    rig.store_and_flush(PAGE, A, 0x33);
    // Memory holds KeyID 1's new write-back again: a load that returned anything else would
    // be a model error once more.
    assert_eq!(rig.load(0, PAGE, A), [0x33; 64]);
    rig.assert_clean();
}

#[test]
fn a_ghost_address_is_recorded_on_both_lines() {
    let mut rig = Rig::new();
    let (addr, cells) = (DramAddr::new(PAGE | 1 << 30), DramAddr::new(PAGE));
    rig.store_and_flush(PAGE, A, 0x11);
    let cycle = rig.tick();
    rig.checker.on_memory_event(&MemEvent::DimmAlias {
        cycle,
        addr,
        cells,
        op: MemOp::Write,
    });
    let event = ChainEvent::DimmAlias {
        addr,
        cells,
        op: MemOp::Write,
    };
    for line in [addr, cells] {
        let history = rig.checker.history(line);
        let last = history.last().unwrap();
        assert_eq!(last.event, event);
        assert_eq!(
            last.to_string(),
            format!(
                "cycle {}: the faulty DIMM took a write of {:#x} to the cells of {:#x}",
                cycle.get(),
                addr.raw(),
                cells.raw()
            )
        );
    }
    assert!(rig.violations().is_empty());
    assert!(rig.checker.history(DramAddr::new(0x9_0000)).is_empty());
}
