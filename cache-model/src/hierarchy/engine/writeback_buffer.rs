//! The write-back buffer, and the steps that must wait for room in it.
//!
//! Every step that may write lines back to memory (a completion through the directory, a fill
//! from memory, a flush, a walk) first reserves the most it can write. It runs only when the
//! buffer has that much room and no earlier step is waiting; otherwise it queues, in order,
//! until the memory side takes write-backs. So the buffer never overflows, and write-backs
//! reach memory in the order the steps made them.

use crate::events::{CacheEvent, WritebackCause};
use crate::hierarchy::{Hierarchy, LineData};
use sim_core::{Cycle, LineAddr, MemOp, MemRequest, RequestId};

/// A step that may write back to memory, and so may have to wait for room.
#[derive(Copy, Clone, Debug)]
pub(in crate::hierarchy) enum Step {
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

pub(super) enum StepResult {
    Done,
    /// Out of write-back room part-way (a walk): run again when there is room.
    Blocked,
}

impl Hierarchy {
    /// Free write-back buffer entries.
    pub(super) fn room(&self) -> usize {
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
    pub(super) fn run_step(&mut self, t: Cycle, step: Step) {
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
    pub(super) fn resume(&mut self, t: Cycle) {
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
    pub(super) fn mem_write(
        &mut self,
        t: Cycle,
        line: LineAddr,
        data: LineData,
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
            data: Some(data.bytes),
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
            data: data.bytes,
            stamp: data.stamp,
            cause,
            dirtied_by_store: stored,
        });
    }
}
