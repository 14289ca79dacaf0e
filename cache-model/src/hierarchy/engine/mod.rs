//! The protocol: planning requests, completing them atomically, fills, evictions, snoops,
//! flushes, the write-back buffer, and the events observers see.
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

use super::index::cores_in;
use super::mesi::MesiState;
use super::mshr::Kind;
use super::{AliasPolicy, Hierarchy};
use crate::events::{CacheEvent, CacheId, FillCause, Level, RemoveCause, WritebackCause};
pub(super) use flushes::{FlushOp, Walk};
use sim_core::{CoreId, Cycle, LineAddr, LineBytes, MemOp, MemRequest, PhysAddr, RequestId};

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

/// A step that may write back to memory, and so may have to wait for room.
#[derive(Copy, Clone, Debug)]
pub(super) enum Step {
    L2Complete {
        core: usize,
        slot: usize,
        gen_: u32,
        via_memory: bool,
    },
    MemFill {
        slot: usize,
        gen_: u32,
    },
    Flush {
        op: usize,
    },
    Walk {
        walk: usize,
    },
}

enum StepResult {
    Done,
    /// Out of write-back room part-way (a walk): run again when there is room.
    Blocked,
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
    // The write-back buffer.

    /// Free write-back buffer entries.
    fn room(&self) -> usize {
        self.wb_capacity.saturating_sub(self.outbox_writes)
    }

    /// The most write-backs a step can make (an upper bound, decided before the step runs:
    /// the LLC's victim is chosen only as the line is installed).
    fn step_room(&self, step: Step) -> usize {
        match step {
            Step::L2Complete { .. } => self.acquire_room(),
            Step::MemFill { slot, .. } => {
                self.install_room(self.llc_mshr.get(slot).line) + self.acquire_room()
            }
            Step::Flush { op } => {
                let line = self.flush_op(op).line;
                usize::from(self.line_dirty(line).0)
            }
            Step::Walk { .. } => 1,
        }
    }

    /// Write-backs a fill through the directory can cause: none with an inclusive LLC (every
    /// line moving outward lands on an LLC copy); with a non-inclusive one, dirty data moving
    /// into the LLC can evict up to two LLC victims (a remote owner's data, the requester's L2
    /// victim).
    fn acquire_room(&self) -> usize {
        if self.inclusive { 0 } else { 2 }
    }

    /// Write-backs installing `line` from memory can cause: the LLC victim when its set is
    /// full, and a dirty other-KeyID copy under `evict_other_keyids`.
    fn install_room(&self, line: LineAddr) -> usize {
        let set = self.llc.params().set_of(line.base());
        let full = self.llc.set_lines(set).count() == self.llc.params().ways() as usize;
        let alias_dirty = self
            .alias_on_chip(line)
            .is_some_and(|a| self.line_dirty(a).0);
        usize::from(full) + usize::from(alias_dirty)
    }

    /// Runs `step` now if it has room and nothing is waiting ahead of it; otherwise queues it.
    fn run_step(&mut self, t: Cycle, step: Step) {
        let need = self.step_room(step);
        if need == 0 || (self.blocked.is_empty() && self.room() >= need) {
            if let StepResult::Blocked = self.exec_step(t, step) {
                self.blocked.push_back(step);
                self.stats.global.writeback_buffer_waits.inc();
            }
        } else {
            self.blocked.push_back(step);
            self.stats.global.writeback_buffer_waits.inc();
        }
    }

    /// Runs the waiting steps that now have room, in order.
    fn resume(&mut self, t: Cycle) {
        while let Some(&step) = self.blocked.front() {
            if self.step_room(step) > self.room() {
                break;
            }
            self.blocked.pop_front();
            if let StepResult::Blocked = self.exec_step(t, step) {
                self.blocked.push_front(step);
                break;
            }
        }
    }

    fn exec_step(&mut self, t: Cycle, step: Step) -> StepResult {
        match step {
            Step::L2Complete {
                core,
                slot,
                gen_,
                via_memory,
            } => {
                self.l2_mshr[core].check(slot, gen_, "L2 completion step");
                self.complete_l2(t, core, slot, via_memory);
                StepResult::Done
            }
            Step::MemFill { slot, gen_ } => {
                self.llc_mshr.check(slot, gen_, "memory fill step");
                self.fill_from_memory(t, slot);
                StepResult::Done
            }
            Step::Flush { op } => {
                self.finish_flush(t, op);
                StepResult::Done
            }
            Step::Walk { walk } => self.run_walk(t, walk),
        }
    }

    /// Puts a write-back in the buffer (it leaves for memory in order) and tells observers.
    fn mem_write(
        &mut self,
        t: Cycle,
        line: LineAddr,
        data: LineBytes,
        cause: WritebackCause,
        stored: bool,
    ) {
        assert!(
            self.outbox_writes < self.wb_capacity,
            "write-back buffer overflow at cycle {t}: {line:?} ({cause:?}) with {} of {} entries \
             used; a step wrote back more than it reserved",
            self.outbox_writes,
            self.wb_capacity
        );
        let id = RequestId(self.next_mem_id);
        self.next_mem_id += 1;
        self.outbox.push_back(MemRequest {
            id,
            op: MemOp::Write,
            addr: line.base(),
            data: Some(data),
            issued: t,
        });
        self.outbox_writes += 1;
        self.stats.global.mem_writes.inc();
        if !stored {
            self.stats.global.mem_writes_not_by_store.inc();
        }
        self.emit(|| CacheEvent::MemWriteback {
            cycle: t,
            line,
            data,
            cause,
            dirtied_by_store: stored,
        });
    }

    // ---------------------------------------------------------------------------------------
    // Events.

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
    fn core_data(&self, c: usize, line: LineAddr) -> LineBytes {
        let pa = line.base();
        if let Some(s1) = self.l1[c].probe(pa) {
            return self.l1[c].payload(s1).data;
        }
        let s2 = self.l2[c]
            .probe(pa)
            .unwrap_or_else(|| panic!("directory lists core {c} for {line:?}, not in its L2"));
        self.l2[c].payload(s2).data
    }

    /// The line's current data on chip: any holder's newest copy (MESI keeps every valid copy
    /// current, an owner's being the newest), else the LLC's. `None` when the line is off
    /// chip.
    fn newest_data(&self, line: LineAddr) -> Option<LineBytes> {
        let sharers = self.dir.sharers(line);
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
        self.llc
            .probe(line.base())
            .map(|s| self.llc.payload(s).data)
    }

    /// Whether any copy of `line` is dirty, and whether a committed store made any of them so.
    fn line_dirty(&self, line: LineAddr) -> (bool, bool) {
        let pa = line.base();
        let mut dirty = false;
        let mut stored = false;
        let mut look = |d: bool, s: bool| {
            dirty |= d;
            stored |= d && s;
        };
        for c in cores_in(self.dir.sharers(line)) {
            if let Some(s) = self.l1[c].probe(pa) {
                look(self.l1[c].is_dirty(s), self.l1[c].payload(s).stored);
            }
            if let Some(s) = self.l2[c].probe(pa) {
                look(self.l2[c].is_dirty(s), self.l2[c].payload(s).stored);
            }
        }
        if let Some(s) = self.llc.probe(pa) {
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
