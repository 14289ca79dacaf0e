//! Step 5: one transaction moves from the read queue or the write buffer into its command queue
//! (DRAMsim3 `ScheduleTransaction`), with the write-drain rules that decide which of the two it
//! serves (the configured rule, the flush at end of input, the idle drain).

use super::{Channel, QueuedCmd, StepFive, TxnMove, TxnSource};
use crate::dram::config::WriteDrain;
use sim_core::Cycle;

impl Channel {
    /// The drain rule in force: the configured one, or while flushing the same rule with its
    /// least threshold (any write at all).
    fn drain_rule(&self) -> WriteDrain {
        match (self.flush_writes, self.write_drain) {
            (false, rule) => rule,
            (true, WriteDrain::CommandQueuesEmpty { .. }) => {
                WriteDrain::CommandQueuesEmpty { above: 0 }
            }
            (true, WriteDrain::ReadQueueEmpty { .. }) => WriteDrain::ReadQueueEmpty { at_least: 1 },
        }
    }

    /// Whether step 5 at `now`, with no drain running, starts one (DRAMsim3's
    /// `ScheduleTransaction` decision): the write buffer is full, the drain rule fires, or the
    /// idle drain's timeout has passed.
    fn drain_starts(&self, now: Cycle) -> bool {
        let writes = self.write_buffer.len();
        if writes == 0 {
            return false;
        }
        let rule = match self.drain_rule() {
            WriteDrain::CommandQueuesEmpty { above } => {
                writes > above as usize && self.nonempty.is_empty()
            }
            WriteDrain::ReadQueueEmpty { at_least } => {
                self.read_queue.is_empty() && writes >= at_least as usize
            }
        };
        writes >= self.transaction_queue_entries
            || rule
            || self.idle_drain_deadline().is_some_and(|at| now >= at)
    }

    /// With idle write drain on, writes buffered and the read queue and every command queue
    /// empty: the cycle the buffer drains if the channel stays idle (its last activity plus the
    /// timeout). `None` otherwise, or while a drain runs.
    pub(super) fn idle_drain_deadline(&self) -> Option<Cycle> {
        let timeout = self.idle_write_drain_cycles?;
        (self.write_draining == 0
            && !self.write_buffer.is_empty()
            && self.read_queue.is_empty()
            && self.nonempty.is_empty())
        .then(|| self.last_activity.plus(timeout))
    }

    /// Whether buffered writes may start draining without another request arriving: enough of
    /// them for the drain rule (whatever the queues' state), or idle write drain on.
    pub(super) fn drain_may_start(&self) -> bool {
        let writes = self.write_buffer.len();
        writes > 0
            && (writes >= self.transaction_queue_entries
                || self.idle_write_drain_cycles.is_some()
                || match self.drain_rule() {
                    WriteDrain::CommandQueuesEmpty { above } => writes > above as usize,
                    WriteDrain::ReadQueueEmpty { at_least } => writes >= at_least as usize,
                })
    }

    /// DRAMsim3 `ScheduleTransaction`. Returns whether anything changed (a transaction moved,
    /// or draining started or stopped).
    pub(super) fn schedule_transaction(&mut self, now: Cycle) -> bool {
        if self.step5_settled
            && !self.exhaustive
            && self.idle_drain_deadline().is_none_or(|at| now < at)
        {
            #[cfg(debug_assertions)]
            assert!(
                self.step_five_idle(now),
                "cycle {now}: channel {}: step 5 marked settled but has work",
                self.index
            );
            return false;
        }
        let StepFive {
            write_draining,
            drain_aborted,
            chosen,
        } = self.transaction_move(now);
        let changed = write_draining != self.write_draining
            || drain_aborted != self.drain_aborted
            || chosen.is_some();
        self.step5_settled = !changed;
        self.write_draining = write_draining;
        self.drain_aborted = drain_aborted;
        if let Some(mv) = chosen {
            self.departures += 1;
            let txn = match mv.from {
                TxnSource::ReadQueue => self.read_queue.remove(mv.index),
                TxnSource::WriteBuffer => self.write_buffer.remove(mv.index),
            }
            .expect("chosen transaction exists");
            if mv.from == TxnSource::WriteBuffer {
                self.buffered_writes[mv.queue] -= 1;
                if self.buffered_writes[mv.queue] == 0 {
                    self.buffered_queues.remove(mv.queue);
                }
            }
            let column = self.column_command(txn.op);
            let bank = txn.bank();
            let bank_index = self.bank_index(bank) as u32;
            self.command_queues[mv.queue].push(QueuedCmd {
                txn,
                column,
                bank,
                bank_index,
            });
            self.nonempty.insert(mv.queue);
            if self.command_queues[mv.queue].len() >= self.command_queue_entries {
                self.full.insert(mv.queue);
            }
            self.reset_bound(mv.queue, now);
        }
        changed
    }

    /// True when step 5 would change nothing at `now`.
    pub(super) fn step_five_idle(&self, now: Cycle) -> bool {
        self.transaction_move(now)
            == StepFive {
                write_draining: self.write_draining,
                drain_aborted: self.drain_aborted,
                chosen: None,
            }
    }

    /// What [`Channel::schedule_transaction`] does at `now`, without doing it. Draining starts
    /// when the write buffer is full or the drain rule fires ([`Channel::drain_starts`]); while
    /// it lasts, writes move in buffer order, each into a command queue with room, and it stops
    /// early at a write with a pending read of its line (a write never overtakes a read of its
    /// line). All of this is DRAMsim3's `ScheduleTransaction`, with one difference: when that
    /// early stop happens because the read is still in the read queue, DRAMsim3 would restart
    /// the drain on the next cycle (the buffer is still full) and stop again, forever, since
    /// the read can only move when no drain runs. Here the decision after such a stop serves
    /// the read queue instead. Where DRAMsim3 makes progress the two behave identically.
    fn transaction_move(&self, now: Cycle) -> StepFive {
        let mut write_draining = self.write_draining;
        if write_draining == 0 && !self.drain_aborted && self.drain_starts(now) {
            write_draining = self.write_buffer.len();
        }
        let (from, candidates) = if write_draining > 0 {
            (TxnSource::WriteBuffer, &self.write_buffer)
        } else {
            (TxnSource::ReadQueue, &self.read_queue)
        };
        #[cfg(debug_assertions)]
        self.assert_buffered_writes();
        // Every buffered write's command queue full: the scan below would find nothing. (The
        // exhaustive reference scans anyway.)
        if from == TxnSource::WriteBuffer
            && !self.exhaustive
            && self.buffered_queues.within(&self.full)
        {
            return StepFive {
                write_draining,
                drain_aborted: false,
                chosen: None,
            };
        }
        for (index, txn) in candidates.iter().enumerate() {
            let queue = txn.queue as usize;
            debug_assert_eq!(
                self.full.contains(queue),
                self.command_queues[queue].len() >= self.command_queue_entries
            );
            if self.full.contains(queue) {
                continue;
            }
            if from == TxnSource::WriteBuffer {
                if self.pending_reads.contains_key(&txn.line.raw()) {
                    let read_stuck = self.read_queue.iter().any(|r| r.line == txn.line);
                    return StepFive {
                        write_draining: 0,
                        drain_aborted: read_stuck,
                        chosen: None,
                    };
                }
                write_draining -= 1;
            }
            return StepFive {
                write_draining,
                drain_aborted: false,
                chosen: Some(TxnMove { from, index, queue }),
            };
        }
        StepFive {
            write_draining,
            drain_aborted: false,
            chosen: None,
        }
    }

    /// `buffered_writes` and `buffered_queues` count the write buffer's writes per queue.
    #[cfg(debug_assertions)]
    fn assert_buffered_writes(&self) {
        let mut counted = vec![0u32; self.buffered_writes.len()];
        for txn in &self.write_buffer {
            counted[txn.queue as usize] += 1;
        }
        assert_eq!(
            counted, self.buffered_writes,
            "channel {}: write buffer's writes per command queue",
            self.index
        );
        for (queue, &n) in counted.iter().enumerate() {
            assert_eq!(
                self.buffered_queues.contains(queue),
                n > 0,
                "channel {}: command queue {queue} in buffered_queues",
                self.index
            );
        }
    }
}
