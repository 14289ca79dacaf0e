//! The protocol: planning requests, completing them atomically, fills, evictions, snoops,
//! flushes, the write-back buffer, and the events observers see. It is one `impl Hierarchy`
//! spread over a module per concern:
//!
//! - `admission`: a request entering the hierarchy (its latency, its MSHR entries, merging
//!   into an outstanding miss, the L1D hit fast path), hardware prefetches, replays;
//! - `completion`: requests reaching their cycle, and the memory side (reads leaving,
//!   memory's answers, the fills they bring);
//! - `fills`: lines moving between caches (installs, the directory transaction, snoops,
//!   victims, the alias policy's eviction);
//! - `flushes`: CLFLUSH, CLFLUSHOPT, CLWB, WBINVD and the end-of-run drain;
//! - `writeback_buffer`: the buffer, and the steps that wait for room in it;
//! - `invariants`: the self-check behind [`Hierarchy::verify_invariants`].
//!
//! This module holds what they share: the scheduled events and the loop that runs them in
//! cycle order, `emit` (the one way an event reaches the observers) with the bookkeeping of
//! fills and removals, and the questions every step asks about a line.
//!
//! Two rules hold everything together:
//!
//! 1. Every change to cache contents happens in one atomic step at one cycle (a request's
//!    completion, a fill from memory, a flush), and emits its events in the order it makes
//!    the changes. The step's cycle is when the thing happened.
//! 2. A step that may write lines back to memory runs only when the write-back buffer has room
//!    for the most it can write (and no earlier step is waiting for room); otherwise it waits,
//!    in order, for the memory side to take write-backs.

mod admission;
mod completion;
mod fills;
mod flushes;
mod invariants;
mod writeback_buffer;

use super::index::cores_in;
use super::mesi::MesiState;
use super::mshr::Kind;
use super::{AliasPolicy, Hierarchy, LineData};
use crate::cache::Slot;
use crate::events::{CacheEvent, CacheId, FillCause, Level, RemoveCause};
pub(super) use flushes::{FlushOp, Walk};
use sim_core::{CoreId, Cycle, LineAddr, LineBytes, PhysAddr};
pub(super) use writeback_buffer::Step;

/// Something scheduled for a later cycle.
#[derive(Copy, Clone, Debug)]
pub(super) enum Ev {
    /// An L1D miss that hit the L2: fill the L1D from the L2 and complete.
    L1Complete { core: usize, slot: usize, gen_: u32 },
    /// A miss served on chip (the LLC or another core): complete through the directory.
    L2Complete { core: usize, slot: usize, gen_: u32 },
    /// An LLC miss reaches the memory side: its read enters the outbox.
    MemIssue { slot: usize, gen_: u32 },
    /// Memory answered a read.
    MemFill { slot: usize, gen_: u32 },
    /// A CLFLUSH, CLFLUSHOPT or CLWB reaches the LLC.
    Flush { op: usize },
    /// A WBINVD reaches the LLC.
    WalkStart { walk: usize },
    /// The write-back buffer has room again: run the steps waiting for it.
    Resume,
}

/// An L1D hit in flight: the request without its store bytes (those wait, for stores only,
/// in `Hierarchy::hit_data`, in the same order), so that the fast path moves little.
#[derive(Copy, Clone, Debug)]
pub(super) struct Hit {
    id: u64,
    addr: PhysAddr,
    done: Cycle,
    seq: u64,
    core: CoreId,
    kind: Kind,
    len: u8,
}

impl Hit {
    pub(super) fn done(&self) -> Cycle {
        self.done
    }
}

/// Where a line's copies are: the cores whose private caches hold it (the directory's bits) and
/// its LLC slot ([`Hierarchy::copies`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) struct Copies {
    sharers: u64,
    llc: Option<Slot>,
}

const NO_DATA: LineBytes = [0; sim_core::LINE_BYTES];

#[inline]
fn sufficient(write: bool, state: MesiState) -> bool {
    if write {
        state.is_exclusive()
    } else {
        state.is_valid()
    }
}

const fn private(c: usize, level: Level) -> CacheId {
    CacheId {
        core: Some(CoreId::new(c as u32)),
        level,
    }
}

const LLC: CacheId = CacheId {
    core: None,
    level: Level::Llc,
};

impl Hierarchy {
    // ---------------------------------------------------------------------------------------
    // Time.

    pub(super) fn push_event(&mut self, at: Cycle, ev: Ev) {
        self.queue.push(at, ev);
    }

    /// Processes everything due up to and including `now`: L1D hits and scheduled events in
    /// cycle order (at one cycle, hits first, then events in the order they were scheduled).
    #[inline]
    pub(super) fn advance(&mut self, now: Cycle) {
        assert!(
            now >= self.clock && now < Cycle::NEVER,
            "hierarchy: called at cycle {now}, after cycle {} was processed",
            self.clock
        );
        // Most calls find nothing due: keep them cheap.
        let hit_at = self.hits.front().map_or(Cycle::NEVER, Hit::done);
        if hit_at > now && self.queue.peek_cycle().is_none_or(|at| at > now) {
            self.clock = now;
            return;
        }
        self.advance_due(now);
    }

    fn advance_due(&mut self, now: Cycle) {
        loop {
            let hit_at = self.hits.front().map_or(Cycle::NEVER, Hit::done);
            let ev_at = self.queue.peek_cycle().unwrap_or(Cycle::NEVER);
            let at = hit_at.min(ev_at);
            if at > now {
                break;
            }
            self.clock = at;
            if hit_at <= ev_at {
                let hit = self.hits.pop_front().expect("a hit is due");
                self.complete_hit(hit);
            } else {
                let (at, ev) = self.queue.pop().expect("an event is due");
                self.handle(at, ev);
            }
            if self.mshr_freed {
                self.mshr_freed = false;
                self.retry_stalled(at);
            }
            if self.drain_pending {
                self.try_start_drain(at);
            }
        }
        self.clock = now;
    }

    fn handle(&mut self, t: Cycle, ev: Ev) {
        match ev {
            Ev::L1Complete { core, slot, gen_ } => {
                self.l1_mshr[core].check(slot, gen_, "L1D completion");
                self.complete_l1(t, core, slot);
            }
            Ev::L2Complete { core, slot, gen_ } => {
                self.l2_mshr[core].check(slot, gen_, "L2 completion");
                self.run_step(
                    t,
                    Step::L2Complete {
                        core,
                        slot,
                        gen_,
                        via_memory: false,
                    },
                );
            }
            Ev::MemIssue { slot, gen_ } => {
                self.llc_mshr.check(slot, gen_, "memory read issue");
                self.issue_read(t, slot);
            }
            Ev::MemFill { slot, gen_ } => {
                self.llc_mshr.check(slot, gen_, "memory fill");
                self.run_step(t, Step::MemFill { slot, gen_ });
            }
            Ev::Flush { op } => self.run_step(t, Step::Flush { op }),
            Ev::WalkStart { walk } => self.run_step(t, Step::Walk { walk }),
            Ev::Resume => {
                if self.resume_at == Some(t) {
                    self.resume_at = None;
                }
                self.resume(t);
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Events.

    /// Hands an event to the observers; the event is built only when one is attached.
    #[inline]
    fn emit(&mut self, event: impl FnOnce() -> CacheEvent) {
        if self.observers.any() {
            let e = event();
            self.observers.notify(&e);
        }
    }

    fn fill_event(
        &mut self,
        t: Cycle,
        cache: CacheId,
        line: LineAddr,
        cause: FillCause,
        dirty: bool,
    ) {
        if self.alias_policy == AliasPolicy::EvictOtherKeyIds {
            let dram = self.layout.line_dram_addr(line).line_index();
            self.aliases.add(dram, self.layout.line_keyid(line));
        }
        self.emit(|| CacheEvent::Fill {
            cycle: t,
            cache,
            line,
            cause,
            dirty,
        });
    }

    fn remove_event(
        &mut self,
        t: Cycle,
        cache: CacheId,
        line: LineAddr,
        cause: RemoveCause,
        dirty: bool,
    ) {
        if self.alias_policy == AliasPolicy::EvictOtherKeyIds {
            let dram = self.layout.line_dram_addr(line).line_index();
            self.aliases.remove(dram, self.layout.line_keyid(line));
        }
        self.emit(|| CacheEvent::Remove {
            cycle: t,
            cache,
            line,
            cause,
            dirty,
        });
    }

    // ---------------------------------------------------------------------------------------
    // Looking at lines.

    pub(super) fn l1_occupied(&self, c: usize) -> usize {
        self.l1_mshr[c].used() + self.flushes_in_flight[c]
    }

    fn on_chip(&self, line: LineAddr) -> bool {
        self.dir.sharers(line) != 0 || self.llc.contains(line.base())
    }

    /// Core `c`'s MESI state for `line` (its L2 copy's; the L1D copy, if any, agrees).
    fn core_state(&self, c: usize, line: LineAddr) -> MesiState {
        self.l2[c]
            .probe(line.base())
            .map_or(MesiState::Invalid, |s| self.l2[c].payload(s).state)
    }

    fn set_core_state(&mut self, c: usize, line: LineAddr, state: MesiState) {
        let pa = line.base();
        let s2 = self.l2[c]
            .probe(pa)
            .unwrap_or_else(|| panic!("core {c} changes the state of {line:?}, not in its L2"));
        self.l2[c].payload_mut(s2).state = state;
        if let Some(s1) = self.l1[c].probe(pa) {
            self.l1[c].payload_mut(s1).state = state;
        }
    }

    /// Core `c`'s newest copy of `line`: its L1D copy if it has one (never older than the L2's),
    /// else its L2 copy.
    fn core_data(&self, c: usize, line: LineAddr) -> LineData {
        let pa = line.base();
        if let Some(s1) = self.l1[c].probe(pa) {
            return self.l1[c].payload(s1).data;
        }
        let s2 = self.l2[c]
            .probe(pa)
            .unwrap_or_else(|| panic!("directory lists core {c} for {line:?}, not in its L2"));
        self.l2[c].payload(s2).data
    }

    /// Core `c`'s L1D slot holding `addr`'s line with the permission an access needs (`write`:
    /// a store's), and the line's state: where an L1D hit is performed. `None` when the line is
    /// absent or its state is not enough.
    #[inline(always)]
    fn l1_hit(&self, c: usize, addr: PhysAddr, write: bool) -> Option<(Slot, MesiState)> {
        let s1 = self.l1[c].probe(addr)?;
        let st = self.l1[c].payload(s1).state;
        sufficient(write, st).then_some((s1, st))
    }

    /// Where `line`'s copies are, looked up once for a step that asks several questions about
    /// it (a flush): valid until the step changes a cache or the directory.
    fn copies(&self, line: LineAddr) -> Copies {
        Copies {
            sharers: self.dir.sharers(line),
            llc: self.llc.probe(line.base()),
        }
    }

    /// The line's current data on chip: any holder's newest copy (MESI keeps every valid copy
    /// current, an owner's being the newest), else the LLC's. `None` when the line is off
    /// chip.
    fn newest_data(&self, line: LineAddr) -> Option<LineData> {
        self.newest_data_of(line, self.copies(line))
    }

    /// [`Hierarchy::newest_data`], from `line`'s copies as they are now.
    fn newest_data_of(&self, line: LineAddr, copies: Copies) -> Option<LineData> {
        let sharers = copies.sharers;
        if let Some(first) = cores_in(sharers).next() {
            let data = self.core_data(first, line);
            if cfg!(debug_assertions) {
                for o in cores_in(sharers).skip(1) {
                    assert_eq!(
                        self.core_data(o, line),
                        data,
                        "incoherent copies of {line:?} in cores {first} and {o}"
                    );
                }
            }
            return Some(data);
        }
        copies.llc.map(|s| self.llc.payload(s).data)
    }

    /// Whether any copy of `line` is dirty, and whether a committed store made any of them so.
    fn line_dirty(&self, line: LineAddr) -> (bool, bool) {
        self.line_dirty_of(line, self.copies(line))
    }

    /// [`Hierarchy::line_dirty`], from `line`'s copies as they are now.
    fn line_dirty_of(&self, line: LineAddr, copies: Copies) -> (bool, bool) {
        debug_assert_eq!(copies, self.copies(line), "stale copies of {line:?}");
        let pa = line.base();
        let mut dirty = false;
        let mut stored = false;
        let mut look = |d: bool, s: bool| {
            dirty |= d;
            stored |= d && s;
        };
        for c in cores_in(copies.sharers) {
            if let Some(s) = self.l1[c].probe(pa) {
                look(self.l1[c].is_dirty(s), self.l1[c].payload(s).stored);
            }
            if let Some(s) = self.l2[c].probe(pa) {
                look(self.l2[c].is_dirty(s), self.l2[c].payload(s).stored);
            }
        }
        if let Some(s) = copies.llc {
            look(self.llc.is_dirty(s), self.llc.payload(s).stored);
        }
        (dirty, stored)
    }

    /// Another KeyID's copy of `line`'s DRAM line on chip (tracked under `evict_other_keyids`
    /// only).
    fn alias_on_chip(&self, line: LineAddr) -> Option<LineAddr> {
        if self.alias_policy != AliasPolicy::EvictOtherKeyIds {
            return None;
        }
        let dram = self.layout.line_dram_addr(line).line_index();
        let other = self.aliases.keyid_on_chip(dram)?;
        if other == self.layout.line_keyid(line) {
            return None;
        }
        let pa = self
            .layout
            .with_keyid(line.base(), other)
            .expect("a KeyID found in a cache fits the layout");
        Some(pa.line())
    }

    /// True when a directory transaction of core `c` for `line` must snoop another core: a
    /// store with other holders, or a read with an E/M owner or with the data only in another
    /// core (a non-inclusive LLC without the line).
    fn snoop_needed(&self, c: usize, line: LineAddr, write: bool) -> bool {
        let others = self.dir.sharers(line) & !(1u64 << c);
        if others == 0 {
            return false;
        }
        write
            || !self.llc.contains(line.base())
            || cores_in(others).any(|o| self.core_state(o, line).is_exclusive())
    }
}
