//! Acceptance: a request offered to a channel between two ticks enters the read queue, the
//! write buffer or the encrypt stage, or is answered without a slot (a read forwarded from a
//! queued write or coalesced with a queued read of its line, a write merged into a queued one),
//! or is refused with [`QueueFull`]. It changes no bank and issues nothing; it only brings the
//! channel's next event forward.

use super::{Channel, CompletionSource, PendingCompletion, QueueFull, Txn};
use sim_core::{Cycle, MemOp};

impl Channel {
    pub(super) fn try_submit(&mut self, now: Cycle, mut txn: Txn) -> Result<(), QueueFull> {
        txn.queue = self.queue_index(txn.bank()) as u32;
        let line = txn.line.raw();
        match txn.op {
            MemOp::Read => {
                // DRAMsim3 (`WillAcceptTransaction`) refuses any read while the read queue is full,
                // even one that would be forwarded or coalesced and take no slot.
                if self.read_queue.len() >= self.transaction_queue_entries {
                    return Err(QueueFull {
                        channel: self.index,
                        queue: "read queue",
                        entries: self.transaction_queue_entries as u32,
                    });
                }
                self.stats.reads.inc();
                self.outstanding += 1;
                self.last_activity = now;
                if self.pending_writes.contains_key(&line) {
                    // DRAMsim3 answers from the write buffer one cycle after acceptance.
                    self.stats.reads_forwarded.inc();
                    self.completions.push(
                        txn.accepted.plus(1),
                        PendingCompletion {
                            txn,
                            source: CompletionSource::ForwardedFromWrite,
                        },
                    );
                } else if let Some((_, waiting)) = self.pending_reads.get_mut(&line) {
                    self.stats.reads_coalesced.inc();
                    waiting.push(txn);
                    self.coalesced_waiting += 1;
                } else {
                    self.pending_reads.insert(line, (txn, Vec::new()));
                    self.read_queue.push_back(txn);
                }
            }
            MemOp::Write => {
                if self.write_buffer.len() + self.encrypting.len() >= self.transaction_queue_entries
                {
                    return Err(QueueFull {
                        channel: self.index,
                        queue: "write buffer",
                        entries: self.transaction_queue_entries as u32,
                    });
                }
                self.stats.writes.inc();
                self.outstanding += 1;
                self.last_activity = now;
                *self.pending_writes.entry(line).or_insert(0) += 1;
                match &mut self.crypto {
                    Some(crypto) if txn.crypto => {
                        let ready = crypto.encrypt.admit(txn.accepted);
                        self.encrypting.push_back((ready, txn));
                    }
                    // A plaintext write skips the AES latency but not the writes ahead of it in
                    // the write path: it may not overtake an earlier write to the same line.
                    Some(_) => match self.encrypting.back() {
                        Some(&(last_ready, _)) => {
                            self.encrypting
                                .push_back((txn.accepted.max(last_ready), txn));
                        }
                        None => self.enter_write_buffer(txn, txn.accepted),
                    },
                    None => self.enter_write_buffer(txn, txn.accepted),
                }
            }
        }
        // Step 5 had nothing left to do at the end of the last tick (or `wake` already asks
        // for the next cycle); this request may change that, a read by entering the read queue,
        // a write by reaching the write drain threshold.
        if !self.step_five_idle(now) {
            self.wake = self.wake.min(txn.accepted);
            self.step5_settled = false;
        } else if let Some(at) = self.idle_drain_deadline() {
            // A write that went straight to the write buffer may start the idle drain's wait.
            self.wake = self.wake.min(at);
        }
        // A forwarded read, a merged write or a write entering the encrypt stage may also
        // bring the next event forward.
        self.update_next_event();
        Ok(())
    }

    /// A write reaches the write buffer at `at`: it merges into a queued write to the same line
    /// (DRAMsim3 drops the younger write's DRAM access) or takes a slot.
    pub(super) fn enter_write_buffer(&mut self, txn: Txn, at: Cycle) {
        self.step5_settled = false;
        let line = txn.line.raw();
        if let Some(&into) = self.queued_writes.get(&line) {
            self.departures += 1;
            self.stats.writes_merged.inc();
            self.release_pending_write(line);
            self.completions.push(
                at,
                PendingCompletion {
                    txn,
                    source: CompletionSource::MergedInto { into },
                },
            );
        } else {
            self.queued_writes.insert(line, txn.id);
            let queue = txn.queue as usize;
            self.buffered_writes[queue] += 1;
            self.buffered_queues.insert(queue);
            self.write_buffer.push_back(txn);
        }
    }

    pub(super) fn release_pending_write(&mut self, line: u64) {
        let n = self
            .pending_writes
            .get_mut(&line)
            .unwrap_or_else(|| panic!("no pending write to line {line:#x}"));
        *n -= 1;
        if *n == 0 {
            self.pending_writes.remove(&line);
        }
    }
}
