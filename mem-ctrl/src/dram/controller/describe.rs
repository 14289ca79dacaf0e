//! What a DRAM controller tells about itself when a run stops: every queue with the requests in
//! it (id, read or write, line, acceptance cycle), the banks that are open, due refreshes, the
//! write-drain mode (and when an idle write drain will start), and the completions on their way; and the [`TimedComponent`] view of the
//! controller that the dumps of a stopped run walk.
//!
//! Kept apart from the scheduler so that the cycle-by-cycle model reads without it. Everything
//! here only reads, and walks queues front to back (never the lookup maps), so a description is
//! deterministic and identical in the exhaustive and the skipping modes (`tests/dram_skipping.rs`
//! compares them).

use super::{Channel, DramController, Txn};
use crate::dram::bank::{BankState, CommandKind};
use sim_core::{Cycle, MemOp, TimedComponent};
use std::fmt::Write as _;

/// `read 0x1040 #7 accepted 120`: one request, as every queue lists it.
fn write_txn(out: &mut String, t: &Txn) {
    let op = match t.op {
        MemOp::Read => "read",
        MemOp::Write => "write",
    };
    let _ = write!(out, "{op} {} #{} accepted {}", t.line, t.id.0, t.accepted);
}

/// `  {label}: a, b, c` on a line of its own, when the list is not empty.
fn write_list<'a>(out: &mut String, label: &str, txns: impl Iterator<Item = &'a Txn>) {
    let mut txns = txns.peekable();
    if txns.peek().is_none() {
        return;
    }
    let _ = write!(out, "  {label}: ");
    for (k, t) in txns.enumerate() {
        if k > 0 {
            out.push_str(", ");
        }
        write_txn(out, t);
    }
    out.push('\n');
}

impl Channel {
    /// The channel's state, one line per queue or open bank (each ends with a newline).
    pub(super) fn describe(&self, out: &mut String) {
        let drain = if self.write_draining > 0 {
            format!(
                "draining writes ({} to move before reads resume)",
                self.write_draining
            )
        } else if let Some(at) = self.idle_drain_deadline() {
            format!("serving reads (idle write drain at cycle {at})")
        } else {
            "serving reads".to_owned()
        };
        let _ = writeln!(
            out,
            "channel {}: read queue {}/{} (+{} coalesced), write buffer {}/{} (+{} encrypting), \
             {drain}, flush writes {}, outstanding {}, completions pending {}{}, last activity {}",
            self.index,
            self.read_queue.len(),
            self.transaction_queue_entries,
            self.coalesced_waiting,
            self.write_buffer.len(),
            self.transaction_queue_entries,
            self.encrypting.len(),
            if self.flush_writes { "on" } else { "off" },
            self.outstanding,
            self.completions.len(),
            match self.completions.peek_cycle() {
                Some(c) => format!(" (first at cycle {c})"),
                None => String::new(),
            },
            self.last_activity,
        );
        write_list(out, "read queue", self.read_queue.iter());
        write_list(out, "write buffer", self.write_buffer.iter());
        if !self.encrypting.is_empty() {
            out.push_str("  encrypting: ");
            for (k, (ready, t)) in self.encrypting.iter().enumerate() {
                if k > 0 {
                    out.push_str(", ");
                }
                write_txn(out, t);
                let _ = write!(out, " (to the write buffer at {ready})");
            }
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "  refresh: {} due, first due rank {:?}, held rank {:?}",
            self.refresh.pending_len(),
            self.refresh.due(),
            self.refresh.held_rank()
        );
        for b in (0..self.ranks).flat_map(|rank| self.rank_banks(rank)) {
            let state = self.banks[self.bank_index(b)];
            if let BankState::Open { .. } = state {
                let _ = writeln!(
                    out,
                    "  rank {} bg {} bank {}: {state}",
                    b.rank, b.bankgroup, b.bank
                );
            }
        }
        for (q, queue) in self.command_queues.iter().enumerate() {
            if let Some(head) = queue.first() {
                let b = head.txn.bank();
                let _ = writeln!(
                    out,
                    "  command queue {q}: {} entries; head {:?} {} ({}) accepted {}, bank {}, \
                     earliest ACT/PRE/READ/WRITE {}/{}/{}/{}",
                    queue.len(),
                    head.column,
                    head.txn.line,
                    head.txn.loc,
                    head.txn.accepted,
                    self.banks[self.bank_index(b)],
                    self.timing.earliest(b, CommandKind::Activate),
                    self.timing.earliest(b, CommandKind::Precharge),
                    self.timing.earliest(b, CommandKind::Read),
                    self.timing.earliest(b, CommandKind::Write),
                );
                write_list(out, "  entries", queue.iter().map(|c| &c.txn));
            }
        }
    }
}

impl DramController {
    /// A multi-line description of every queue (each request in it: id, read or write, line,
    /// acceptance cycle), due refresh and open bank, for deadlock reports. Cycles are DRAM
    /// cycles, addresses those this controller's DRAM sees. The first line names the last tick
    /// and the next event; the rest is the same whichever mode (exhaustive or skipping) the
    /// controller runs in.
    pub fn describe_state(&self) -> String {
        let mut out = String::new();
        let last_tick = match self.now {
            Some(c) => c.to_string(),
            None => "none".to_owned(),
        };
        let _ = writeln!(
            out,
            "DRAM controller `{}` (DRAM cycles): last tick at cycle {last_tick}, encryption {:?}, \
             next event at cycle {}",
            self.config.name(),
            self.encryption,
            self.next_event_cycle()
        );
        for ch in &self.channels {
            ch.describe(&mut out);
        }
        out
    }
}

/// Cycles are DRAM cycles: the controller's own clock.
impl TimedComponent for DramController {
    fn next_event_cycle(&self) -> Cycle {
        DramController::next_event_cycle(self)
    }

    /// Requests accepted and not yet delivered, or a command or refresh to issue: wider than
    /// the inherent [`DramController::has_work`], which only asks whether the next tick could
    /// do something.
    fn has_work(&self) -> bool {
        self.outstanding() > 0 || DramController::has_work(self)
    }

    fn describe(&self, _now: Cycle, out: &mut String) {
        out.push_str(self.describe_state().trim_end());
    }
}
