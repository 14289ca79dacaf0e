//! The coherency checker of mktme-sim: watches the machine's events and reports what breaks
//! when software ignores MKTME's aliasing rules.
//!
//! Caches tag lines with the whole physical address, KeyID included, so one DRAM line reached
//! through two KeyIDs ("aliases") is two unrelated cache lines, and hardware keeps no coherence
//! between them (mktme-facts.md 4.1). Software must write through one alias at a time and
//! flush (write back and invalidate) the old alias before switching. The checker tells a
//! researcher exactly what went wrong when a program does not:
//!
//! | kind | reported when |
//! | --- | --- |
//! | [`DualDirty`](ViolationKind::DualDirty) | a second alias of a DRAM line becomes dirty |
//! | [`DataLoss`](ViolationKind::DataLoss) | a write-back replaces newer data another alias wrote back |
//! | [`StaleRead`](ViolationKind::StaleRead) | a load returns data older than a store through another alias |
//! | [`ReprogramWhileCached`](ViolationKind::ReprogramWhileCached) | a KeyID's key changes while it is still cached |
//! | [`PhantomDirty`](ViolationKind::PhantomDirty) | a line is dirty without a committed store |
//!
//! ```text
//!   cache-model ──CacheEvent──►┐
//!                              ├─ cpu-model's System ─► CoherencyChecker ──► violations()
//!   mem-ctrl ────MemEvent─────►┘   (in cycle order)       per DRAM line:  ──► model_errors()
//!                                                          memory (version, writer, bytes)
//!                                                          aliases (copies, version, dirty)
//!                                                          history (last N events)
//! ```
//!
//! The checker sits beside the model, in its own crate, and learns everything from events:
//! the hierarchy's [`CacheEvent`]s ([`CoherencyChecker::on_cache_event`]) and the memory
//! side's [`MemEvent`]s ([`CoherencyChecker::on_memory_event`]), among them the change of a
//! key-table entry at the cycle it really happens (the completion of PCONFIG, not its start).
//! It never reads or changes the model (style-by-example item 11), and no model crate calls
//! it: `cpu-model`'s `System` owns it and feeds it both streams in cycle order, the memory
//! side's events of a cycle before the caches' (the key table changes at the start of a
//! cycle, before anything else happens in it).
//!
//! # Versions
//!
//! Every committed store gets the next [`Version`] from a global counter. Memory remembers,
//! per DRAM line, the version, alias, key generation and bytes of the last write-back. An
//! alias's data has the version of the newest store through it or, when it was filled from
//! memory while no copy of that alias was cached, the version memory held at the read. A read
//! through another key than the writer's returns garbage plaintext, but the version is right:
//! written back unmodified under the same key, the garbage re-encrypts to exactly the
//! ciphertext it was read from (encryption under a fixed key is a bijection). Then:
//!
//! - a write-back is a data loss when memory held another alias's data, still readable (its
//!   key unchanged since), of a newer version; or of the same version, when the writer's key
//!   changed while its unmodified copy was cached ("garbled": it re-encrypts differently);
//! - a load is stale when its data's version is older than another alias's newest store;
//! - an alias is dirty from its first store until a write-back of its newest version.
//!
//! # Cost
//!
//! One hash lookup per event for the DRAM line (plus one on the copy set for fills and
//! removals), a linear scan of the line's few aliases, and a fixed-size history push; no
//! allocation except when a DRAM line is first seen and the pool of forgotten lines' buffers is
//! empty, and when a violation is reported. Memory is bounded: lines with nothing cached are
//! forgotten beyond [`CheckerConfig::idle_lines_max`], histories hold at most
//! [`CheckerConfig::chain_events_max`] events, and at most [`CheckerConfig::violations_max`]
//! violations and [`CheckerConfig::model_errors_max`] model errors are kept (all are counted).
//!
//! ```
//! use cache_model::{CacheEvent, CacheId, FillCause, Level, StoreStamp};
//! use checker::{CheckerConfig, CoherencyChecker, ViolationKind};
//! use sim_core::{AddressLayout, CoreId, Cycle, DramAddr, KeyId};
//!
//! let layout = AddressLayout::default();
//! let mut checker = CoherencyChecker::new(layout, CheckerConfig::default());
//! let line = |k| layout.compose(KeyId::new(k), DramAddr::new(0x4000)).unwrap().line();
//! let l1d = CacheId { core: Some(CoreId::new(0)), level: Level::L1d };
//!
//! // Store through KeyID 1 and through KeyID 2 to the same DRAM line, without a flush between.
//! let mut cycle = 0;
//! for k in [1, 2] {
//!     cycle += 10;
//!     let c = Cycle::new(cycle);
//!     checker.on_cache_event(&CacheEvent::MemRead { cycle: c, line: line(k), cause: FillCause::Store });
//!     checker.on_cache_event(&CacheEvent::Fill {
//!         cycle: c, cache: l1d, line: line(k), cause: FillCause::Store, dirty: false,
//!     });
//!     checker.on_cache_event(&CacheEvent::Store {
//!         cycle: c, core: CoreId::new(0), line: line(k), offset: 0, len: 8, data: [k as u8; 64],
//!         stamp: StoreStamp::new(u64::from(k)),
//!     });
//! }
//! let v = &checker.violations()[0];
//! assert_eq!(v.kind, ViolationKind::DualDirty);
//! assert_eq!(v.keyids, [KeyId::new(2), KeyId::new(1)]);
//! assert_eq!(v.chain.len(), 6);
//! ```

mod report;
mod state;

pub use report::{
    ChainEntry, ChainEvent, LostData, ModelError, ModelErrorKind, Version, Violation, ViolationKind,
};

use cache_model::events::{
    CacheEvent, CacheId, CacheObserver, FillCause, StoreStamp, WritebackCause,
};
use report::{cache_name, fill_cause_name, writeback_cause_name};
use sim_core::{
    AddressLayout, CoreId, Cycle, DramAddr, KeyId, LINE_BYTES, LineAddr, LineBytes, MemEvent,
};
use state::{
    AliasState, CopySet, Dirtiness, KeyIdTable, LineState, LineTable, MemWrite, PendingRead,
    StaleMark, needs_room,
};

/// Bounds on what the checker keeps. Every bound is on memory, never on what is detected:
/// violations beyond `violations_max` are still counted ([`CoherencyChecker::detected`]).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct CheckerConfig {
    /// Events remembered per DRAM line (all aliases together) and quoted as a violation's
    /// chain. Each costs 48 bytes per tracked line. 0 disables chains.
    pub chain_events_max: usize,
    /// DRAM lines with nothing in the hierarchy (no cached copy, no pending write-back under
    /// any alias) that the checker keeps; beyond it the least recently touched are forgotten.
    /// Lines with something in the hierarchy are always kept, so the table holds at most the
    /// lines resident at the last sweep plus this many. A forgotten line loses its history and
    /// its memory version: see `docs/coherency-checker.md`, "What is not checked".
    pub idle_lines_max: usize,
    /// Violations kept in [`CoherencyChecker::violations`]; later ones are only counted.
    pub violations_max: usize,
    /// Model errors kept in [`CoherencyChecker::model_errors`]; later ones are only counted.
    pub model_errors_max: usize,
}

impl Default for CheckerConfig {
    /// 16 events per line, 16384 idle lines (about 1.5 KB each, so some 25 MB at most), 10000
    /// violations, 1000 model errors.
    fn default() -> CheckerConfig {
        CheckerConfig {
            chain_events_max: 16,
            idle_lines_max: 16_384,
            violations_max: 10_000,
            model_errors_max: 1_000,
        }
    }
}

/// Kept reports and the counts of everything detected.
#[derive(Debug)]
struct Reports {
    violations: Vec<Violation>,
    detected: [u64; ViolationKind::ALL.len()],
    violations_not_kept: u64,
    model_errors: Vec<ModelError>,
    model_errors_not_kept: u64,
    violations_max: usize,
    model_errors_max: usize,
}

impl Reports {
    /// Counts a violation and keeps it if there is room; `build` runs only when it is kept.
    /// Returns its index among the kept violations.
    fn violation(
        &mut self,
        kind: ViolationKind,
        build: impl FnOnce() -> Violation,
    ) -> Option<usize> {
        self.detected[kind.index()] += 1;
        if self.violations.len() < self.violations_max {
            let v = build();
            debug_assert_eq!(v.kind, kind);
            self.violations.push(v);
            Some(self.violations.len() - 1)
        } else {
            self.violations_not_kept += 1;
            None
        }
    }

    fn model_error(&mut self, build: impl FnOnce() -> ModelError) {
        if self.model_errors.len() < self.model_errors_max {
            self.model_errors.push(build());
        } else {
            self.model_errors_not_kept += 1;
        }
    }
}

/// Watches a hierarchy's [`CacheEvent`]s and the memory side's [`MemEvent`]s (key-table
/// changes) and reports aliasing-rule violations, each with its cycle, DRAM line, KeyIDs and
/// the chain of events that led there.
///
/// Feed it every event in the order the model produced them ([`on_cache_event`] and
/// [`on_memory_event`]); of one cycle, the memory side's first. It is also a
/// [`CacheObserver`], for rigs that attach it to a hierarchy alone.
///
/// [`on_cache_event`]: CoherencyChecker::on_cache_event
/// [`on_memory_event`]: CoherencyChecker::on_memory_event
#[derive(Debug)]
pub struct CoherencyChecker {
    layout: AddressLayout,
    config: CheckerConfig,
    lines: LineTable,
    copies: CopySet,
    keyids: KeyIdTable,
    /// The last version handed to a store.
    last_version: u64,
    /// Stamps line touches (for forgetting the least recently used idle lines).
    touches: u64,
    events: u64,
    reports: Reports,
}

impl CoherencyChecker {
    /// A checker for a machine with this address layout (it slices the KeyID and DRAM line out
    /// of every event's line address).
    pub fn new(layout: AddressLayout, config: CheckerConfig) -> CoherencyChecker {
        CoherencyChecker {
            layout,
            config,
            lines: LineTable::new(config.idle_lines_max, config.chain_events_max),
            copies: CopySet::default(),
            keyids: KeyIdTable::new(usize::from(layout.max_keyid()) + 1),
            last_version: 0,
            touches: 0,
            events: 0,
            reports: Reports {
                violations: Vec::new(),
                detected: [0; ViolationKind::ALL.len()],
                violations_not_kept: 0,
                model_errors: Vec::new(),
                model_errors_not_kept: 0,
                violations_max: config.violations_max,
                model_errors_max: config.model_errors_max,
            },
        }
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &CheckerConfig {
        &self.config
    }

    /// The violations found so far, in the order they happened (at most
    /// [`CheckerConfig::violations_max`]).
    pub fn violations(&self) -> &[Violation] {
        &self.reports.violations
    }

    /// Model consistency failures found so far, in order (at most
    /// [`CheckerConfig::model_errors_max`]). Empty for a correct model, whatever the program
    /// does.
    pub fn model_errors(&self) -> &[ModelError] {
        &self.reports.model_errors
    }

    /// Violations of `kind` detected, kept or not. A stale read's
    /// [`repeats`](Violation::repeats) are not counted again.
    pub fn detected(&self, kind: ViolationKind) -> u64 {
        self.reports.detected[kind.index()]
    }

    /// Violations detected beyond [`CheckerConfig::violations_max`] and not kept.
    pub fn violations_not_kept(&self) -> u64 {
        self.reports.violations_not_kept
    }

    /// Model errors found beyond [`CheckerConfig::model_errors_max`] and not kept.
    pub fn model_errors_not_kept(&self) -> u64 {
        self.reports.model_errors_not_kept
    }

    /// Events seen, cache and memory side together.
    pub fn events_seen(&self) -> u64 {
        self.events
    }

    /// DRAM lines currently tracked.
    pub fn tracked_lines(&self) -> usize {
        self.lines.len()
    }

    /// DRAM lines forgotten so far to respect [`CheckerConfig::idle_lines_max`].
    pub fn forgotten_lines(&self) -> u64 {
        self.lines.forgotten()
    }

    /// One event of the memory side, at the cycle it happened.
    pub fn on_memory_event(&mut self, event: &MemEvent) {
        self.events += 1;
        match *event {
            MemEvent::KeyChanged { cycle, keyid } => self.key_changed(cycle, keyid),
        }
    }

    /// The key-table entry of `keyid` changed at `cycle`, in every controller (a successful
    /// PCONFIG completed). Reports [`ViolationKind::ReprogramWhileCached`] once per DRAM line on
    /// which `keyid` still has a cached copy or dirty data on its way to memory, in ascending
    /// DRAM order; from now on, data `keyid` wrote back earlier reads back as garbage through
    /// it.
    fn key_changed(&mut self, cycle: Cycle, keyid: KeyId) {
        let Some(epoch) = self.keyids.epochs.get_mut(keyid.index()) else {
            let max = self.layout.max_keyid();
            self.reports.model_error(|| ModelError {
                cycle,
                line: None,
                keyid,
                kind: ModelErrorKind::KeyChangeKeyIdOutOfRange,
                detail: format!(
                    "the key of KeyID {keyid} changed, but the layout names KeyIDs 0..={max}"
                ),
            });
            return;
        };
        *epoch += 1;
        // A read through `keyid` still in flight is decrypted when its data moves, under the
        // old key or the new one depending on timing the cache events do not show: what it
        // will return is unknown from now on.
        self.lines.forget_pending_bytes(keyid);
        if self.keyids.resident_lines[keyid.index()] == 0 {
            return;
        }
        let cap = self.config.chain_events_max;
        let lines = self.lines.resident_lines(keyid);
        // The per-KeyID count is only a fast path; it must agree with the table.
        debug_assert_eq!(
            lines.len() as u64,
            self.keyids.resident_lines[keyid.index()],
            "resident-line count of KeyID {keyid} out of step with the line table"
        );
        for dram in lines {
            self.touches += 1;
            let Some(state) = self.lines.get_mut(dram) else {
                continue;
            };
            state.last_touch = self.touches;
            if let Some(a) = state.aliases.iter_mut().find(|a| a.keyid == keyid)
                && !a.modified
            {
                // Its copies hold plaintext decrypted under the old key.
                a.garbled = true;
            }
            state.push_history(
                ChainEntry {
                    cycle,
                    keyid,
                    event: ChainEvent::Pconfig,
                    version: None,
                },
                cap,
            );
            let state = &*state;
            self.reports
                .violation(ViolationKind::ReprogramWhileCached, || {
                    let a = state.alias(keyid).expect("resident alias");
                    let what = match a.dirty {
                        Dirtiness::Clean => format!(
                            "{} clean cached cop{} (data {}) that will keep returning plaintext \
                             from before the key change",
                            a.copies,
                            if a.copies == 1 { "y" } else { "ies" },
                            a.version
                        ),
                        Dirtiness::Stored { .. } | Dirtiness::Phantom => format!(
                            "dirty data ({}) that will be written back encrypted under the new \
                             key, so that data from before the key change stays readable \
                             through KeyID {keyid} after it",
                            a.version
                        ),
                    };
                    Violation {
                        kind: ViolationKind::ReprogramWhileCached,
                        cycle,
                        line: dram,
                        keyids: vec![keyid],
                        lost: None,
                        chain: state.history.iter().cloned().collect(),
                        repeats: 0,
                        explanation: format!(
                            "PCONFIG reprogrammed KeyID {keyid} while DRAM line {:#x} had {what}: \
                             flush a KeyID's lines before reprogramming it",
                            dram.raw()
                        ),
                    }
                });
        }
    }
}

impl CacheObserver for CoherencyChecker {
    fn on_event(&mut self, event: &CacheEvent) {
        self.on_cache_event(event);
    }
}

impl CoherencyChecker {
    /// One event of the cache hierarchy, in the order the hierarchy reported them.
    pub fn on_cache_event(&mut self, event: &CacheEvent) {
        self.events += 1;
        // WBINVD's start and end name no line; its effect arrives as per-line events.
        let Some(line) = event.line() else {
            return;
        };
        self.touches += 1;
        let dram = self.layout.line_dram_addr(line);
        let mut step = Step {
            state: self.lines.touch(dram, self.touches),
            copies: &mut self.copies,
            keyids: &mut self.keyids,
            reports: &mut self.reports,
            last_version: &mut self.last_version,
            chain_cap: self.config.chain_events_max,
            line,
            dram,
            keyid: self.layout.line_keyid(line),
        };
        match *event {
            CacheEvent::Fill {
                cycle,
                cache,
                cause,
                dirty,
                ..
            } => step.fill(cycle, cache, cause, dirty),
            CacheEvent::Remove {
                cycle,
                cache,
                cause,
                dirty,
                ..
            } => step.remove(
                cycle,
                cache,
                ChainEvent::Remove {
                    cache,
                    cause,
                    dirty,
                },
            ),
            CacheEvent::Load {
                cycle,
                core,
                offset,
                len,
                ref data,
                from,
                ..
            } => step.load(
                cycle,
                core,
                data,
                ChainEvent::Load {
                    core,
                    offset,
                    len,
                    from,
                },
            ),
            CacheEvent::Store {
                cycle,
                core,
                offset,
                len,
                ref data,
                stamp,
                ..
            } => step.store(cycle, core, offset, len, data, stamp),
            CacheEvent::MemRead { cycle, cause, .. } => step.mem_read(cycle, cause),
            CacheEvent::MemWriteback {
                cycle,
                ref data,
                stamp,
                cause,
                dirtied_by_store,
                ..
            } => step.writeback(cycle, data, stamp, cause, dirtied_by_store),
            CacheEvent::FlushStart {
                cycle, core, kind, ..
            } => step.record(cycle, ChainEvent::FlushStart { core, kind }, None),
            CacheEvent::FlushDone {
                cycle, core, kind, ..
            } => step.record(cycle, ChainEvent::FlushDone { core, kind }, None),
        }
    }
}

/// One event's work on one DRAM line: the line's state and the checker's shared tables,
/// borrowed separately.
struct Step<'a> {
    state: &'a mut LineState,
    copies: &'a mut CopySet,
    keyids: &'a mut KeyIdTable,
    reports: &'a mut Reports,
    last_version: &'a mut u64,
    chain_cap: usize,
    line: LineAddr,
    dram: DramAddr,
    keyid: KeyId,
}

impl Step<'_> {
    /// Appends the event to the line's history. Every handler records its event before
    /// reporting, so a violation's chain ends with the event that caused it.
    fn record(&mut self, cycle: Cycle, event: ChainEvent, version: Option<Version>) {
        self.state.push_history(
            ChainEntry {
                cycle,
                keyid: self.keyid,
                event,
                version,
            },
            self.chain_cap,
        );
    }

    /// This event's alias, and whether it was resident before the event.
    fn alias(&mut self) -> (usize, bool) {
        let i = self.state.alias_index(self.keyid);
        (i, self.state.aliases[i].resident())
    }

    /// Keeps the per-KeyID count of lines with something in the hierarchy in step.
    fn update_residency(&mut self, i: usize, was_resident: bool) {
        let now = self.state.aliases[i].resident();
        let count = &mut self.keyids.resident_lines[self.keyid.index()];
        match (was_resident, now) {
            (false, true) => *count += 1,
            (true, false) => *count -= 1,
            (false, false) | (true, true) => {}
        }
    }

    /// What a memory read through this event's alias finds: memory's version, and the
    /// plaintext only if the alias itself wrote memory back under its current key (any other
    /// key decrypts to garbage the checker cannot predict).
    fn read_memory(&self) -> PendingRead {
        let epochs = &self.keyids.epochs;
        let generation = self.state.mem_generation;
        match &self.state.mem {
            Some(m) => PendingRead {
                version: m.version,
                generation,
                bytes: (m.keyid == self.keyid && m.key_epoch == epochs[self.keyid.index()])
                    .then_some(m.bytes),
            },
            None => PendingRead {
                version: Version::INITIAL,
                generation,
                bytes: None,
            },
        }
    }

    fn model_error(&mut self, cycle: Cycle, kind: ModelErrorKind, detail: impl FnOnce() -> String) {
        let (line, keyid) = (self.dram, self.keyid);
        self.reports.model_error(|| ModelError {
            cycle,
            line: Some(line),
            keyid,
            kind,
            detail: detail(),
        });
    }

    /// Builds a violation on this line; the chain is the line's history, which already ends
    /// with the current event.
    fn violation(
        &mut self,
        kind: ViolationKind,
        cycle: Cycle,
        keyids: Vec<KeyId>,
        lost: Option<Box<LostData>>,
        explanation: String,
    ) -> Option<usize> {
        let (state, dram) = (&*self.state, self.dram);
        self.reports.violation(kind, || Violation {
            kind,
            cycle,
            line: dram,
            keyids,
            lost,
            chain: state.history.iter().cloned().collect(),
            repeats: 0,
            explanation,
        })
    }

    fn fill(&mut self, cycle: Cycle, cache: CacheId, cause: FillCause, dirty: bool) {
        let (i, was_resident) = self.alias();
        if needs_room(self.copies.len(), self.copies.capacity()) {
            self.copies.reserve(self.copies.len() + 1);
        }
        // A second Fill of a copy already present is an upgrade or an inner write-back into an
        // outer level that still held the line: no new copy, and no new data source.
        if self.copies.insert((self.line, cache)) {
            if self.state.aliases[i].copies == 0 {
                self.refill(i, cycle, cache, cause);
            }
            self.state.aliases[i].copies += 1;
        }
        let a = &mut self.state.aliases[i];
        let phantom = dirty && a.dirty == Dirtiness::Clean;
        if phantom {
            a.dirty = Dirtiness::Phantom;
        }
        let version = a.version;
        self.record(
            cycle,
            ChainEvent::Fill {
                cache,
                cause,
                dirty,
            },
            Some(version),
        );
        if phantom {
            let keyid = self.keyid;
            self.violation(
                ViolationKind::PhantomDirty,
                cycle,
                vec![keyid],
                None,
                format!(
                    "a copy through KeyID {keyid} arrived dirty in {} ({} fill) though no \
                     committed store through KeyID {keyid} awaits write-back: only a committed \
                     store may make a line dirty",
                    cache_name(cache),
                    fill_cause_name(cause)
                ),
            );
            self.dual_dirty(i, cycle, || {
                format!(
                    "a dirty {} fill into {}",
                    fill_cause_name(cause),
                    cache_name(cache)
                )
            });
        }
        self.update_residency(i, was_resident);
    }

    /// The first copy of an uncached alias arrived: date its data by where it came from.
    fn refill(&mut self, i: usize, cycle: Cycle, cache: CacheId, cause: FillCause) {
        let a = &mut self.state.aliases[i];
        if a.dirty != Dirtiness::Clean {
            // The alias's dirty data is still on its way to memory (a write-back buffer); a
            // correct hierarchy refills from it, so the alias keeps its data and version.
            a.pending_read = None;
            return;
        }
        if let Some(read) = a.pending_read.take() {
            a.version = read.version;
            a.read_version = read.version;
            a.stamp = StoreStamp::MEMORY;
            a.bytes = read.bytes;
            a.modified = false;
            a.generation = read.generation;
            a.garbled = false;
            return;
        }
        if a.last_emptied == Some(cycle) {
            // A copy left another cache this cycle: a transfer, same data.
            return;
        }
        let read = self.read_memory();
        let version = read.version;
        let a = &mut self.state.aliases[i];
        a.version = read.version;
        a.read_version = read.version;
        a.stamp = StoreStamp::MEMORY;
        a.bytes = read.bytes;
        a.modified = false;
        a.generation = read.generation;
        a.garbled = false;
        let keyid = self.keyid;
        self.model_error(cycle, ModelErrorKind::FillWithoutSource, || {
            format!(
                "{} fill of KeyID {keyid} into {} while no copy of that alias was cached, \
                 without a MemRead before it or a copy leaving another cache in the same cycle; \
                 dating it with memory's {version}",
                fill_cause_name(cause),
                cache_name(cache)
            )
        });
    }

    fn remove(&mut self, cycle: Cycle, cache: CacheId, event: ChainEvent) {
        let (i, was_resident) = self.alias();
        if self.copies.remove(&(self.line, cache)) {
            let a = &mut self.state.aliases[i];
            a.copies -= 1;
            if a.copies == 0 {
                a.last_emptied = Some(cycle);
            }
        } else {
            let keyid = self.keyid;
            self.model_error(cycle, ModelErrorKind::RemoveWithoutFill, || {
                format!(
                    "{} removed a copy of KeyID {keyid}'s alias that no Fill put there",
                    cache_name(cache)
                )
            });
        }
        let version = self.state.aliases[i].version;
        self.record(cycle, event, Some(version));
        self.update_residency(i, was_resident);
    }

    fn store(
        &mut self,
        cycle: Cycle,
        core: CoreId,
        offset: u8,
        len: u8,
        data: &LineBytes,
        stamp: StoreStamp,
    ) {
        let (i, was_resident) = self.alias();
        // A store's version is the hierarchy's number for it: the stamp its data carries from
        // now on, in the caches and to memory (how a write-back is dated, whatever its bytes).
        let last = *self.last_version;
        if stamp.get() <= last {
            let keyid = self.keyid;
            self.model_error(cycle, ModelErrorKind::StoreStampOutOfOrder, || {
                format!(
                    "store by core {} through KeyID {keyid} carries {stamp}, not after the \
                     previous store's #{last}: the hierarchy must number committed stores in \
                     the order it applies them",
                    core.get()
                )
            });
        }
        *self.last_version = last.max(stamp.get());
        let version = Version::new(stamp.get());
        let a = &mut self.state.aliases[i];
        // A store merges into the alias's current line; the bytes it did not write must be
        // the ones the alias held. Checked only while the alias has data in the hierarchy (a
        // no-write-allocate store to an uncached line merges into nothing the checker saw).
        let start = usize::from(offset).min(LINE_BYTES);
        let end = (start + usize::from(len)).min(LINE_BYTES);
        let merge_mismatch = a.resident()
            && a.bytes
                .as_ref()
                .is_some_and(|old| old[..start] != data[..start] || old[end..] != data[end..]);
        let was_clean = a.dirty == Dirtiness::Clean;
        a.version = version;
        a.stamp = stamp;
        a.modified = true;
        a.garbled = false;
        a.newest_store = a.newest_store.max(version);
        a.bytes = Some(*data);
        a.dirty = match a.dirty {
            Dirtiness::Stored { since } => Dirtiness::Stored { since },
            Dirtiness::Clean | Dirtiness::Phantom => Dirtiness::Stored { since: version },
        };
        if merge_mismatch {
            let keyid = self.keyid;
            self.model_error(cycle, ModelErrorKind::StoreMergeMismatch, || {
                format!(
                    "store {version} by core {} through KeyID {keyid} to bytes {start}..{end} \
                     changed bytes outside that range, or merged into data other than the \
                     alias's current line",
                    core.get()
                )
            });
        }
        self.record(
            cycle,
            ChainEvent::Store { core, offset, len },
            Some(version),
        );
        // A Phantom alias was already dirty; its dual-dirty report, if any, was made then.
        if was_clean {
            self.dual_dirty(i, cycle, || {
                format!("store {version} by core {}", core.get())
            });
        }
        self.update_residency(i, was_resident);
    }

    /// Alias `i` just became dirty: report if another alias of the line is dirty too.
    fn dual_dirty(&mut self, i: usize, cycle: Cycle, how: impl FnOnce() -> String) {
        let others = || {
            self.state
                .aliases
                .iter()
                .enumerate()
                .filter(move |&(j, a)| j != i && a.dirty != Dirtiness::Clean)
                .map(|(_, a)| a)
        };
        if others().next().is_none() {
            return;
        }
        let mut dirty: Vec<&AliasState> = others().collect();
        dirty.sort_unstable_by_key(|a| a.keyid);
        let mut keyids = vec![self.keyid];
        keyids.extend(dirty.iter().map(|a| a.keyid));
        let described: Vec<String> = dirty
            .iter()
            .map(|a| match a.dirty {
                Dirtiness::Stored { since } => {
                    format!("KeyID {} (stores since {since} not written back)", a.keyid)
                }
                Dirtiness::Phantom => format!("KeyID {} (a phantom-dirty copy)", a.keyid),
                Dirtiness::Clean => unreachable!("filtered out"),
            })
            .collect();
        let explanation = format!(
            "KeyID {} became dirty ({}) while {} still held unwritten data: two aliases of DRAM \
             line {:#x} are dirty at once, and whichever is written back last overwrites the \
             other",
            self.keyid,
            how(),
            described.join(" and "),
            self.dram.raw()
        );
        self.violation(ViolationKind::DualDirty, cycle, keyids, None, explanation);
    }

    fn load(&mut self, cycle: Cycle, core: CoreId, data: &LineBytes, event: ChainEvent) {
        let (i, _) = self.alias();
        let mem_version = self.state.mem_version();
        let a = &mut self.state.aliases[i];
        let cached = a.resident();
        // Which data did the load see? A resident alias's own; otherwise memory's, as of the
        // read request if one is pending (a load may be reported before the fill that answers
        // it).
        let read = if cached {
            a.version
        } else {
            a.pending_read.as_ref().map_or(mem_version, |r| r.version)
        };
        let mismatch = cached && a.bytes.as_ref().is_some_and(|known| known != data);
        if cached {
            // Learn the alias's bytes (after a fill through another key they are garbage the
            // checker cannot predict; from here on they must stay put).
            a.bytes = Some(*data);
        }
        if mismatch {
            let keyid = self.keyid;
            self.model_error(cycle, ModelErrorKind::LoadDataMismatch, || {
                format!(
                    "load by core {} through KeyID {keyid} returned bytes other than the alias's \
                     current data ({read}) while the alias stayed cached",
                    core.get()
                )
            });
        }
        self.record(cycle, event, Some(read));

        // The newest store through any other alias.
        let newer = self
            .state
            .aliases
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, a)| (a.newest_store, a.keyid))
            .max();
        let Some((newer, by)) = newer else {
            return;
        };
        if read >= newer {
            return;
        }
        if let Some(mark) = self.state.aliases[i].stale
            && mark.read == read
            && mark.newer == newer
        {
            if let Some(v) = mark.violation {
                self.reports.violations[v].repeats += 1;
            }
            return;
        }
        let keyid = self.keyid;
        let store_unwritten = self
            .state
            .alias(by)
            .is_some_and(|a| a.dirty != Dirtiness::Clean);
        let why = if store_unwritten {
            format!("the store is still in KeyID {by}'s dirty copy, which no flush wrote back")
        } else if mem_version >= newer {
            format!(
                "KeyID {keyid}'s cached copy predates that store and no flush of KeyID {keyid} \
                 invalidated it"
            )
        } else {
            "memory no longer holds that store: an older write-back replaced it".to_string()
        };
        let explanation = format!(
            "load by core {} through KeyID {keyid} returned data {read}, older than store \
             {newer} through KeyID {by}: {why}",
            core.get()
        );
        let v = self.violation(
            ViolationKind::StaleRead,
            cycle,
            vec![keyid, by],
            None,
            explanation,
        );
        self.state.aliases[i].stale = Some(StaleMark {
            violation: v,
            read,
            newer,
        });
    }

    fn mem_read(&mut self, cycle: Cycle, cause: FillCause) {
        let (i, _) = self.alias();
        let read = self.read_memory();
        let version = read.version;
        let a = &mut self.state.aliases[i];
        // Only a read for an uncached, clean alias dates the alias: a resident alias's copies
        // (or its pending write-back) stay the authority on its data.
        if !a.resident() {
            a.pending_read = Some(read);
        }
        self.record(cycle, ChainEvent::MemRead { cause }, Some(version));
    }

    fn writeback(
        &mut self,
        cycle: Cycle,
        data: &LineBytes,
        stamp: StoreStamp,
        cause: WritebackCause,
        dirtied_by_store: bool,
    ) {
        let (i, was_resident) = self.alias();
        let keyid = self.keyid;
        let epoch = self.keyids.epochs[keyid.index()];
        let a = &mut self.state.aliases[i];
        // Date the data written by the store it carries, never by its bytes (two stores of
        // equal bytes are different data). Normally it is the alias's current data. Another
        // stamp means an older copy (a non-inclusive hierarchy can write one back while a
        // newer copy stays cached): its version is its stamp's store, or what the alias last
        // read from memory if no store touched it.
        let current = stamp == a.stamp;
        let written = if current {
            a.version
        } else if stamp == StoreStamp::MEMORY {
            a.read_version
        } else {
            Version::new(stamp.get())
        };
        let bytes_differ = current && a.bytes.as_ref().is_some_and(|b| b != data);
        let garbled = current && a.garbled;
        // Data read from memory and written back unmodified, under the key it was read with,
        // while memory is still as it was read, re-encrypts to the very ciphertext memory
        // holds: nothing changes, and memory's data stays whoever wrote it (a phantom copy of
        // another alias's line does not make that line its own).
        let unchanged =
            current && !a.modified && !garbled && a.generation == self.state.mem_generation;
        let never_stored = a.newest_store == Version::INITIAL;
        let was_phantom = a.dirty == Dirtiness::Phantom;
        if current {
            // Memory now holds the alias's data under its current key.
            a.garbled = false;
            a.modified = false;
            a.generation = self.state.mem_generation + u64::from(!unchanged);
            if written == a.version {
                // Memory has the alias's newest data: nothing of it is left unwritten.
                a.dirty = Dirtiness::Clean;
            }
        }

        if dirtied_by_store && never_stored {
            self.model_error(cycle, ModelErrorKind::WritebackWithoutStore, || {
                format!(
                    "write-back ({}) through KeyID {keyid} claims a committed store dirtied the \
                     line, but no store through KeyID {keyid} was seen",
                    writeback_cause_name(cause)
                )
            });
        }
        let previous = if unchanged {
            None
        } else {
            self.state.mem_generation += 1;
            self.state.mem.replace(MemWrite {
                version: written,
                generation: self.state.mem_generation,
                keyid,
                key_epoch: epoch,
                bytes: *data,
            })
        };
        // Data under a key that PCONFIG has since replaced is unreadable by anyone: it is no
        // longer there to lose.
        let live = |p: &MemWrite, epochs: &[u32]| p.key_epoch == epochs[p.keyid.index()];
        if bytes_differ {
            self.model_error(cycle, ModelErrorKind::WritebackDataMismatch, || {
                format!(
                    "write-back ({}) through KeyID {keyid} carries the alias's current data \
                     ({stamp}, {written}) but other bytes than that data",
                    writeback_cause_name(cause)
                )
            });
        }
        if let Some(p) = &previous
            && p.keyid == keyid
            && current
            && written < p.version
        {
            let before = p.version;
            self.model_error(cycle, ModelErrorKind::WritebackRegression, || {
                format!(
                    "KeyID {keyid} wrote back data {written} over its own newer write-back \
                     {before}: the hierarchy held two versions of one alias"
                )
            });
        }
        self.record(
            cycle,
            ChainEvent::MemWriteback {
                cause,
                dirtied_by_store,
            },
            Some(written),
        );

        // The loss: memory held another alias's readable data, and this write-back, which
        // re-encrypts the whole line under this alias's key, is older; or as old, but
        // garbled by a key change, so that it no longer re-encrypts to what memory held.
        if let Some(p) = previous
            && p.keyid != keyid
            && live(&p, &self.keyids.epochs)
            && (written < p.version || (garbled && written == p.version))
        {
            let what = if garbled {
                format!(
                    "data {written} read under its previous key (PCONFIG since), which \
                     re-encrypts to other ciphertext,"
                )
            } else if current {
                format!("data {written}")
            } else {
                format!("an older copy, data {written},")
            };
            // Dirty data still in the caches that would put the lost data back, or newer data,
            // makes the loss transient (see `LostData::recoverable_by`).
            let recoverable_by = self
                .state
                .aliases
                .iter()
                .filter(|a| match a.dirty {
                    Dirtiness::Clean => false,
                    Dirtiness::Stored { .. } => a.newest_store > p.version,
                    Dirtiness::Phantom => !a.modified && !a.garbled && a.generation == p.generation,
                })
                .map(|a| (a.version, a.keyid))
                .max()
                .map(|(version, k)| (k, version));
            let finality = match recoverable_by {
                None => format!("KeyID {}'s line is lost", p.keyid),
                Some((k, v)) => format!(
                    "KeyID {}'s line is lost, though KeyID {k} still holds dirty data {v}, which \
                     would put it back or supersede it",
                    p.keyid
                ),
            };
            let explanation = format!(
                "write-back ({}) through KeyID {keyid} of {what} overwrote data {} that KeyID \
                 {} had written back: {finality}",
                writeback_cause_name(cause),
                p.version,
                p.keyid,
            );
            let lost = LostData {
                lost_keyid: p.keyid,
                lost_version: p.version,
                lost_bytes: p.bytes,
                writer_keyid: keyid,
                writer_version: written,
                writer_current: current,
                writer_garbled: garbled,
                written_bytes: *data,
                recoverable_by,
            };
            self.violation(
                ViolationKind::DataLoss,
                cycle,
                vec![keyid, p.keyid],
                Some(Box::new(lost)),
                explanation,
            );
        }
        // A phantom episode is reported once, when it starts: at the dirty fill if there was
        // one, otherwise here.
        if !dirtied_by_store && !was_phantom {
            self.violation(
                ViolationKind::PhantomDirty,
                cycle,
                vec![keyid],
                None,
                format!(
                    "write-back ({}) through KeyID {keyid} of a line no committed store made \
                     dirty: only a committed store may make a line dirty",
                    writeback_cause_name(cause)
                ),
            );
        }
        self.update_residency(i, was_resident);
    }
}
