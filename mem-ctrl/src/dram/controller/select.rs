//! Step 4's choice of a command: a due refresh's PRE or REF, else DRAMsim3's round-robin
//! FR-FCFS search over the command queues. Both the reference search (every queue, every entry,
//! as DRAMsim3 does it) and the skipping one (only the queues that hold entries and whose bound
//! has come, each scanned for its first ready command or the first cycle it can have one) are
//! here, next to the FR-FCFS rules they share.

use super::{Channel, Origin, QueueSet, Selected};
use crate::dram::bank::{self, BankCommand, BankState, CommandKind};
use crate::dram::config::QueueStructure;
use crate::dram::timing::BankId;
use sim_core::Cycle;

impl Channel {
    /// DRAMsim3 `CommandQueue::FinishRefresh` + `ChannelState::GetReadyCommand` for REF: the
    /// first open bank of the rank (in bank-group, bank order) whose PRE is ready, else REF if
    /// every bank is closed and ready for it, else nothing this cycle.
    pub(super) fn refresh_command(&self, rank: u32, now: Cycle) -> Option<Selected> {
        let mut all_ready = true;
        for b in self.rank_banks(rank) {
            let command = bank::required_for_refresh(self.banks[self.bank_index(b)]);
            if self.timing.ready(b, command.kind(), now) {
                if command == BankCommand::Precharge {
                    return Some(Selected {
                        bank: b,
                        command,
                        origin: Origin::Refresh,
                    });
                }
            } else {
                all_ready = false;
            }
        }
        all_ready.then_some(Selected {
            bank: BankId {
                rank,
                bankgroup: 0,
                bank: 0,
            },
            command: BankCommand::Refresh,
            origin: Origin::Refresh,
        })
    }

    /// DRAMsim3 `CommandQueue::GetCommandToIssue`: round-robin over the command queues,
    /// skipping those of a rank being refreshed, as DRAMsim3 does it: every queue, every
    /// entry. The reference for [`Channel::select_from_queues`]; the cursor ends on the queue
    /// that issued, or where it started when none did.
    pub(super) fn select_exhaustive(&mut self, now: Cycle) -> Option<Selected> {
        let (q, sel) = self.reference_selection(now, self.refresh.held_rank())?;
        self.queue_cursor = q;
        Some(sel)
    }

    /// The queue and command DRAMsim3's search would pick at `now` with the queues of `held`
    /// skipped, without moving the cursor.
    pub(super) fn reference_selection(
        &self,
        now: Cycle,
        held: Option<u32>,
    ) -> Option<(usize, Selected)> {
        let n = self.command_queues.len();
        let mut q = self.queue_cursor;
        for _ in 0..n {
            q = (q + 1) % n;
            if held == Some(self.queue_rank(q)) {
                continue;
            }
            if let Some(sel) = self.first_ready_in_queue(q, now) {
                return Some((q, sel));
            }
        }
        None
    }

    /// [`Channel::select_exhaustive`], visiting only the queues that hold entries and whose
    /// `queue_ready` bound has come. The others would be scanned and yield nothing, and the
    /// cursor only moves when a queue issues, so the choice is the same; the debug build
    /// checks it on every tick.
    pub(super) fn select_from_queues(&mut self, now: Cycle) -> Option<Selected> {
        let n = self.command_queues.len();
        let held_rank = self.refresh.held_rank();
        let held = held_rank.map_or(0..0, |rank| self.rank_queues(rank));
        // One walk over the members: whose bound has passed, and the earliest of the others,
        // recorded for the end of the tick (`plan`), which needs the same.
        let all = 0..n;
        for w in QueueSet::words_of(&all) {
            let members = self.nonempty.word(w, &all, &held);
            self.walk
                .record(w, QueueSet::split(members, w, &self.queue_ready, now));
        }
        self.walk.recorded(held);
        // The queue after the cursor, wrapping (no division on every tick).
        let start = if self.queue_cursor + 1 >= n {
            0
        } else {
            self.queue_cursor + 1
        };
        let mut selected = None;
        // Round-robin over the passed ones: from `start` on, then those before it.
        'search: for range in [start..n, 0..start] {
            for w in QueueSet::words_of(&range) {
                let mut bits = self.walk.passed_in(w, &range);
                while bits != 0 {
                    let q = w * 64 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    match self.scan_queue(q, now) {
                        Ok(sel) => {
                            selected = Some((q, sel));
                            break 'search;
                        }
                        Err(ready) => {
                            self.queue_ready[q] = ready;
                            self.walk.scanned(q, ready);
                        }
                    }
                }
            }
        }
        #[cfg(debug_assertions)]
        {
            let reference = self.reference_selection(now, held_rank);
            assert_eq!(
                selected, reference,
                "cycle {now}: channel {}: the skipping scheduler chose differently from the \
                 exhaustive one",
                self.index
            );
        }
        let (q, sel) = selected?;
        self.queue_cursor = q;
        Some(sel)
    }

    /// [`Channel::first_ready_in_queue`] that, when nothing in queue `q` may issue at `now`,
    /// returns the first cycle at which something may if no other command issues before:
    /// the earliest ready cycle among the entries whose command the FR-FCFS rules allow.
    /// Whether a rule allows an entry depends only on the queue and the bank states, not on
    /// time, so an entry disallowed now stays disallowed until one of those changes.
    pub(super) fn scan_queue(&self, q: usize, now: Cycle) -> Result<Selected, Cycle> {
        if self.queue_structure == QueueStructure::PerBank {
            return self.scan_bank_queue(q, now);
        }
        let queue = &self.command_queues[q];
        // In a per-bank queue every entry is for the same bank, so (1) on a closed bank every
        // entry needs the same ACT, always allowed, and only the oldest can be chosen or set the
        // bound; (2) only the oldest entry may PRE (`arbitrate_precharge`'s first rule).
        let per_bank = self.queue_structure == QueueStructure::PerBank;
        let mut ready = Cycle::NEVER;
        for (index, qc) in queue.iter().enumerate() {
            let bank_index = qc.bank_index as usize;
            let state = self.banks[bank_index];
            let command = bank::required_command(state, qc.txn.loc.row, qc.column);
            if per_bank && index > 0 && command == BankCommand::Precharge {
                continue;
            }
            let at = self.timing.ready_at(qc.bank, bank_index, command.kind());
            // Neither issuable now nor earlier than an entry already found: the (costlier)
            // FR-FCFS rules need not be asked.
            if (at > now && at >= ready) || !self.allowed(q, index, command, state) {
                continue;
            }
            if at <= now {
                return Ok(Selected {
                    bank: qc.bank,
                    command,
                    origin: Origin::Queue { queue: q, index },
                });
            }
            ready = at;
            if per_bank && state == BankState::Closed {
                break;
            }
        }
        Err(ready)
    }

    /// [`Channel::scan_queue`] for a per-bank queue, whose entries all share one bank: its
    /// state and the ready cycles of its commands are looked up once for the whole queue, not
    /// entry by entry. On a closed bank every entry needs the same ACT, so the oldest decides;
    /// on an open one an entry needs its column command (READ or WRITE class) if it hits the
    /// open row, else PRE, which only the oldest entry may issue. Then the same FR-FCFS walk,
    /// with [`Channel::allowed`]'s rules asked without comparing banks (every entry has the
    /// same): PRE (of the oldest entry) only when no entry hits the open row or the row has
    /// served `row_hit_cap` column commands; a WRITE only with no older READ of its line.
    #[inline]
    fn scan_bank_queue(&self, q: usize, now: Cycle) -> Result<Selected, Cycle> {
        let queue = &self.command_queues[q];
        let Some(first) = queue.first() else {
            return Err(Cycle::NEVER);
        };
        let (bank, bank_index) = (first.bank, first.bank_index as usize);
        let state = self.banks[bank_index];
        let open = match state {
            BankState::Closed => {
                let at = self
                    .timing
                    .ready_at(bank, bank_index, CommandKind::Activate);
                return if at <= now {
                    Ok(Selected {
                        bank,
                        command: BankCommand::Activate {
                            row: first.txn.loc.row,
                        },
                        origin: Origin::Queue { queue: q, index: 0 },
                    })
                } else {
                    Err(at)
                };
            }
            BankState::Open {
                row,
                column_commands,
            } => (row, column_commands),
        };
        let (open, column_commands) = open;
        let [read_at, write_at, precharge_at] =
            self.timing.ready_at_column_and_precharge(bank, bank_index);
        let mut ready = Cycle::NEVER;
        for (index, qc) in queue.iter().enumerate() {
            let (command, at) = if qc.txn.loc.row == open {
                let at = if qc.column.is_write() {
                    write_at
                } else {
                    read_at
                };
                (qc.column.command(), at)
            } else if index == 0 {
                (BankCommand::Precharge, precharge_at)
            } else {
                continue;
            };
            if at > now && at >= ready {
                continue;
            }
            let allowed = match command {
                BankCommand::Precharge => {
                    column_commands >= self.row_hit_cap
                        || !queue.iter().any(|p| p.txn.loc.row == open)
                }
                BankCommand::Write | BankCommand::WritePrecharge => {
                    !queue[..index].iter().any(|p| {
                        !p.column.is_write()
                            && p.txn.loc.row == qc.txn.loc.row
                            && p.txn.loc.column == qc.txn.loc.column
                    })
                }
                BankCommand::Activate { .. }
                | BankCommand::Read
                | BankCommand::ReadPrecharge
                | BankCommand::Refresh => true,
            };
            if !allowed {
                continue;
            }
            if at <= now {
                return Ok(Selected {
                    bank,
                    command,
                    origin: Origin::Queue { queue: q, index },
                });
            }
            ready = at;
        }
        Err(ready)
    }

    /// FR-FCFS within one queue (DRAMsim3 `GetFirstReadyInQueue`): the oldest entry whose next
    /// command meets its timing, where a PRE is only allowed for the oldest entry of its bank
    /// and only when no queued row hit to the open row remains (or the row already served
    /// `row_hit_cap` column commands), and a WRITE never passes an older READ of the same
    /// location.
    fn first_ready_in_queue(&self, q: usize, now: Cycle) -> Option<Selected> {
        let queue = &self.command_queues[q];
        for (index, qc) in queue.iter().enumerate() {
            let b = qc.txn.bank();
            let state = self.banks[self.bank_index(b)];
            let command = bank::required_command(state, qc.txn.loc.row, qc.column);
            if !self.timing.ready(b, command.kind(), now) {
                continue;
            }
            if self.allowed(q, index, command, state) {
                return Some(Selected {
                    bank: b,
                    command,
                    origin: Origin::Queue { queue: q, index },
                });
            }
        }
        None
    }

    /// The FR-FCFS rules beyond timing for entry `index` of queue `q`, whose bank is in `state`
    /// and needs `command`.
    #[inline]
    fn allowed(&self, q: usize, index: usize, command: BankCommand, state: BankState) -> bool {
        match command {
            BankCommand::Precharge => self.arbitrate_precharge(q, index, state),
            BankCommand::Write | BankCommand::WritePrecharge => !self.has_rw_dependency(q, index),
            BankCommand::Activate { .. }
            | BankCommand::Read
            | BankCommand::ReadPrecharge
            | BankCommand::Refresh => true,
        }
    }

    /// DRAMsim3 `ArbitratePrecharge`.
    fn arbitrate_precharge(&self, q: usize, index: usize, state: BankState) -> bool {
        let queue = &self.command_queues[q];
        let b = queue[index].txn.bank();
        if queue.iter().take(index).any(|p| p.txn.bank() == b) {
            return false;
        }
        let (open_row, column_commands) = match state {
            BankState::Open {
                row,
                column_commands,
            } => (row, column_commands),
            BankState::Closed => panic!("PRE requested for closed bank {b:?}"),
        };
        let pending_hits = queue
            .iter()
            .skip(index)
            .any(|p| p.txn.bank() == b && p.txn.loc.row == open_row);
        !pending_hits || column_commands >= self.row_hit_cap
    }

    /// DRAMsim3 `HasRWDependency`: an older READ of the same location in the same queue.
    fn has_rw_dependency(&self, q: usize, index: usize) -> bool {
        let queue = &self.command_queues[q];
        let w = queue[index].txn;
        queue.iter().take(index).any(|p| {
            !p.column.is_write()
                && p.txn.bank() == w.bank()
                && p.txn.loc.row == w.loc.row
                && p.txn.loc.column == w.loc.column
        })
    }
}
