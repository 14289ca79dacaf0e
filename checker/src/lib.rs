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

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
mod report;
mod state;
mod step;

pub use report::{
    ChainEntry, ChainEvent, LostData, ModelError, ModelErrorKind, Version, Violation, ViolationKind,
};

use cache_model::events::{CacheEvent, CacheObserver};
use sim_core::{AddressLayout, Cycle, DramAddr, KeyId, MemEvent};
use state::{CopySet, Dirtiness, KeyIdTable, LineTable};
use step::Step;

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
    /// Kinds the researcher does not want reported: violations of these kinds are neither kept
    /// nor counted ([`CoherencyChecker::detected`] stays 0 for them). The checker's bookkeeping
    /// is unchanged (a dual-dirty episode still begins, a stale copy is still marked), so every
    /// other kind is reported exactly as without the option. Model errors cannot be ignored.
    /// Default: none.
    pub ignore: ViolationKindSet,
}

impl Default for CheckerConfig {
    /// 16 events per line, 16384 idle lines (about 1.5 KB each, so some 25 MB at most), 10000
    /// violations, 1000 model errors, no kind ignored.
    fn default() -> CheckerConfig {
        CheckerConfig {
            chain_events_max: 16,
            idle_lines_max: 16_384,
            violations_max: 10_000,
            model_errors_max: 1_000,
            ignore: ViolationKindSet::EMPTY,
        }
    }
}

/// A set of [`ViolationKind`]s, such as [`CheckerConfig::ignore`].
///
/// ```
/// use checker::{ViolationKind, ViolationKindSet};
///
/// let set: ViolationKindSet = [ViolationKind::StaleRead].into_iter().collect();
/// assert!(set.contains(ViolationKind::StaleRead));
/// assert!(!set.contains(ViolationKind::DataLoss));
/// assert_eq!(set.with(ViolationKind::DataLoss).iter().count(), 2);
/// ```
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct ViolationKindSet(u8);

impl ViolationKindSet {
    /// No kind.
    pub const EMPTY: ViolationKindSet = ViolationKindSet(0);

    /// This set and `kind`.
    pub const fn with(self, kind: ViolationKind) -> ViolationKindSet {
        ViolationKindSet(self.0 | 1 << kind.index())
    }

    /// Whether `kind` is in the set.
    pub const fn contains(self, kind: ViolationKind) -> bool {
        self.0 & 1 << kind.index() != 0
    }

    /// Whether the set holds no kind.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds in the set, in [`ViolationKind::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = ViolationKind> {
        ViolationKind::ALL
            .into_iter()
            .filter(move |&k| self.contains(k))
    }
}

impl FromIterator<ViolationKind> for ViolationKindSet {
    fn from_iter<I: IntoIterator<Item = ViolationKind>>(kinds: I) -> ViolationKindSet {
        kinds
            .into_iter()
            .fold(ViolationKindSet::EMPTY, ViolationKindSet::with)
    }
}

impl std::fmt::Debug for ViolationKindSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Kept reports and the counts of everything detected.
#[derive(Debug)]
pub(crate) struct Reports {
    violations: Vec<Violation>,
    detected: [u64; ViolationKind::ALL.len()],
    violations_not_kept: u64,
    model_errors: Vec<ModelError>,
    model_errors_not_kept: u64,
    violations_max: usize,
    model_errors_max: usize,
    ignore: ViolationKindSet,
}

impl Reports {
    /// Counts a violation and keeps it if there is room; `build` runs only when it is kept.
    /// Returns its index among the kept violations. An ignored kind is neither counted nor
    /// kept.
    fn violation(
        &mut self,
        kind: ViolationKind,
        build: impl FnOnce() -> Violation,
    ) -> Option<usize> {
        if self.ignore.contains(kind) {
            return None;
        }
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
                ignore: config.ignore,
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
            MemEvent::DimmWritten { cycle, line, by } => {
                self.attacked(cycle, line, ChainEvent::DimmWritten { by });
            }
            MemEvent::BusRewritten { cycle, line, op } => {
                self.attacked(cycle, line, ChainEvent::BusRewritten { op });
            }
            MemEvent::DimmAlias {
                cycle,
                addr,
                cells,
                op,
            } => {
                // The cells' line changes (a write) or is read under another name (a read),
                // and what the addressed line reads as is the cells' content: neither holds
                // what its own write-backs left.
                let event = ChainEvent::DimmAlias { addr, cells, op };
                self.attacked(cycle, cells.line_base(), event);
                self.attacked(cycle, addr.line_base(), event);
            }
        }
    }

    /// An attack changed what `line` reads as from memory (not a violation: the program broke
    /// no rule). Recorded in the line's chain, so that a later load or write-back there can be
    /// traced to it; from now on, until a write-back reaches memory, the checker predicts no
    /// bytes read from it (a load returning other data is no model error).
    fn attacked(&mut self, cycle: Cycle, line: DramAddr, event: ChainEvent) {
        self.touches += 1;
        let state = self.lines.touch(line, self.touches);
        state.alter_memory();
        state.push_history(
            ChainEntry {
                cycle,
                keyid: KeyId::new(0),
                event,
                version: None,
            },
            self.config.chain_events_max,
        );
    }

    /// The events the checker remembers on DRAM line `line` (its 64-byte-aligned address),
    /// oldest first: what a violation there would quote as its chain. Empty for a line it
    /// never saw or has forgotten ([`CheckerConfig::idle_lines_max`]).
    pub fn history(&self, line: DramAddr) -> Vec<ChainEntry> {
        self.lines
            .get(line)
            .map(|s| s.history.iter().cloned().collect())
            .unwrap_or_default()
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
