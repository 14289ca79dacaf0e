//! One cycle of a channel (`tick`, the five steps of the module's diagram), the delivery of a
//! completion, and what issuing a command changes: the bank's state, its command queue, the
//! timing tables, and the completions a column command schedules.

use super::{
    Channel, CompletionSource, DramCompletion, IssuedCommand, Origin, PendingCompletion, Selected,
    Txn,
};
use crate::dram::bank::{self, BankCommand};
use crate::dram::timing::BankId;
use sim_core::{Cycle, MemOp};

impl Channel {
    pub(super) fn tick(
        &mut self,
        now: Cycle,
        out: &mut Vec<DramCompletion>,
        log: Option<&mut Vec<IssuedCommand>>,
    ) {
        // Callers may tick on cycles where nothing can happen (a memory system ticks every
        // controller up to the cycle it needs); such a tick changes nothing, so return at once.
        if !self.exhaustive && self.quiet_at(now) {
            #[cfg(debug_assertions)]
            self.assert_quiet(now);
            return;
        }

        // 1. Writes leaving the encrypt stage are added before this cycle's work, as DRAMsim3
        //    adds transactions between two clock ticks.
        while let Some(&(ready, txn)) = self.encrypting.front() {
            if ready > now {
                break;
            }
            self.encrypting.pop_front();
            // No departure: a write takes one slot in the encrypt stage or the write buffer,
            // so moving between them frees none (a merge does, counted where it happens).
            self.enter_write_buffer(txn, ready);
        }

        // 2. Deliver completions whose data cycle has come (DRAMsim3 `ReturnDoneTrans`).
        while let Some((data_cycle, pending)) = self.completions.pop_due(now) {
            self.deliver(data_cycle, pending, out);
        }

        // 3. Refresh bookkeeping.
        self.refresh.on_cycle(now);

        // 4. At most one command per cycle on the command bus; a due refresh comes first.
        let mut selected = None;
        if let Some(rank) = self.refresh.due() {
            self.refresh.begin(rank);
            selected = self.refresh_command(rank, now);
        }
        if selected.is_none() {
            selected = if self.exhaustive {
                self.select_exhaustive(now)
            } else {
                self.select_from_queues(now)
            };
        }
        if let Some(sel) = selected {
            let issued = self.issue(sel, now);
            if let Some(log) = log {
                log.push(issued);
            }
        }

        // 5. Move one transaction into its command queue.
        let moved = self.schedule_transaction(now);

        if !self.exhaustive {
            self.plan(now, moved);
        }
    }

    fn deliver(&mut self, data_cycle: Cycle, p: PendingCompletion, out: &mut Vec<DramCompletion>) {
        let done = match (p.txn.op, &mut self.crypto) {
            (MemOp::Read, Some(crypto)) if p.txn.crypto => crypto.decrypt.admit(data_cycle),
            (MemOp::Read, _) | (MemOp::Write, _) => data_cycle,
        };
        match (p.txn.op, p.source) {
            (MemOp::Read, _) => self.stats.read_latency.record(done.since(p.txn.accepted)),
            (MemOp::Write, CompletionSource::Bus { .. }) => self
                .stats
                .write_latency
                .record(data_cycle.since(p.txn.accepted)),
            (MemOp::Write, CompletionSource::MergedInto { .. })
            | (MemOp::Write, CompletionSource::ForwardedFromWrite) => {}
        }
        self.outstanding -= 1;
        self.last_activity = data_cycle;
        out.push(DramCompletion {
            id: p.txn.id,
            op: p.txn.op,
            addr: p.txn.line,
            accepted: p.txn.accepted,
            data_cycle,
            done,
            source: p.source,
        });
    }

    fn issue(&mut self, sel: Selected, now: Cycle) -> IssuedCommand {
        let b = sel.bank;
        let kind = sel.command.kind();
        let mut row = None;
        let mut request = None;
        // Refresh is not progress: a channel that only refreshes while requests wait is stuck,
        // and the trace driver's watchdog must see it.
        if !matches!(sel.command, BankCommand::Refresh) {
            self.last_activity = now;
        }
        match sel.command {
            BankCommand::Refresh => {
                for id in self.rank_banks(b.rank) {
                    let idx = self.bank_index(id);
                    self.banks[idx] = self.apply(id, BankCommand::Refresh, now).next;
                }
                // Every bank of the rank was closed and stays closed: no queue's entries need
                // another command, they only wait longer (tRFC), so `queue_ready` stays a bound.
                self.stats.refs.inc();
                self.refresh.done(b.rank);
            }
            BankCommand::Activate { row: r } => {
                row = Some(r);
                let idx = self.bank_index(b);
                self.banks[idx] = self.apply(b, sel.command, now).next;
                let q = self.queue_index(b);
                self.reset_bound(q, now);
                self.stats.acts.inc();
            }
            BankCommand::Precharge => {
                let idx = self.bank_index(b);
                self.banks[idx] = self.apply(b, sel.command, now).next;
                // Also for a refresh's PRE: the bank's queue needs ACT now, not PRE.
                let q = self.queue_index(b);
                self.reset_bound(q, now);
                self.stats.pres.inc();
            }
            BankCommand::Read
            | BankCommand::ReadPrecharge
            | BankCommand::Write
            | BankCommand::WritePrecharge => {
                let Origin::Queue { queue, index } = sel.origin else {
                    panic!("cycle {now}: column command {kind} without a queued request");
                };
                let qc = self.command_queues[queue].remove(index);
                self.full.remove(queue);
                if self.command_queues[queue].is_empty() {
                    self.nonempty.remove(queue);
                }
                self.reset_bound(queue, now);
                // A command queue slot is free, and a pending read or queued write is gone.
                self.step5_settled = false;
                row = Some(qc.txn.loc.row);
                request = Some(qc.txn.id);
                let idx = self.bank_index(b);
                let t = self.apply(b, sel.command, now);
                self.banks[idx] = t.next;
                if kind.is_read() {
                    self.stats.read_cmds.inc();
                    if t.row_hit {
                        self.stats.read_row_hits.inc();
                    }
                    self.read_issued(qc.txn, now);
                } else {
                    self.stats.write_cmds.inc();
                    if t.row_hit {
                        self.stats.write_row_hits.inc();
                    }
                    self.write_issued(qc.txn, now);
                }
            }
        }
        self.timing.record(b, kind, now);
        IssuedCommand {
            cycle: now,
            channel: self.index,
            rank: b.rank,
            bankgroup: b.bankgroup,
            bank: b.bank,
            kind,
            row,
            request,
        }
    }

    /// The bank state machine, with the model-bug assertion the style guide asks for.
    fn apply(&self, b: BankId, command: BankCommand, now: Cycle) -> bank::Transition {
        bank::transition(self.banks[self.bank_index(b)], command).unwrap_or_else(|e| {
            panic!(
                "cycle {now}: channel {} rank {} bg {} bank {}: {e}",
                self.index, b.rank, b.bankgroup, b.bank
            )
        })
    }

    fn read_issued(&mut self, txn: Txn, now: Cycle) {
        let (head, coalesced) = self
            .pending_reads
            .remove(&txn.line.raw())
            .unwrap_or_else(|| panic!("cycle {now}: READ for {} with no pending read", txn.line));
        assert_eq!(head.id, txn.id, "the queued read heads its line's waiters");
        self.coalesced_waiting -= coalesced.len();
        let burst_start = now.plus(self.t_cl_cycles);
        let burst_end = burst_start.plus(self.t_burst_cycles);
        for w in std::iter::once(head).chain(coalesced) {
            self.completions.push(
                burst_end,
                PendingCompletion {
                    txn: w,
                    source: CompletionSource::Bus {
                        burst_start,
                        burst_end,
                    },
                },
            );
        }
    }

    fn write_issued(&mut self, txn: Txn, now: Cycle) {
        let line = txn.line.raw();
        let queued = self.queued_writes.remove(&line);
        assert_eq!(
            queued,
            Some(txn.id),
            "cycle {now}: WRITE for {} is not the queued write",
            txn.line
        );
        self.release_pending_write(line);
        let burst_start = now.plus(self.t_cwl_cycles);
        let burst_end = burst_start.plus(self.t_burst_cycles);
        self.completions.push(
            burst_end,
            PendingCompletion {
                txn,
                source: CompletionSource::Bus {
                    burst_start,
                    burst_end,
                },
            },
        );
    }
}
