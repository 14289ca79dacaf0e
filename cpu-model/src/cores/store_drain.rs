//! Draining: the store buffer's head goes to the hierarchy, one request at a time and only
//! after every older load is final; CLFLUSHOPT and CLWB wait beside the buffer and go once no
//! older store to their line and no older SFENCE is left. The buffer itself (entries,
//! forwarding) is [`store_buffer`](super::store_buffer). See "Stores and the store buffer" and
//! "Flushes and fences" in the [parent module](super).

use super::Core;
use super::request_id::ReqTag;
use super::store_buffer::SbKind;
use crate::machine::Machine;
use cache_model::hierarchy::CoreOp;
use sim_core::{Cycle, PhysAddr};

/// A CLFLUSHOPT or CLWB beside the store buffer.
#[derive(Debug)]
pub(super) struct FlushEntry {
    pub(super) seq: u64,
    pub(super) pa: PhysAddr,
    pub(super) clwb: bool,
    /// The request, once sent.
    pub(super) id: Option<u64>,
}

impl Core {
    /// The store buffer head's request `id` completed: the entry leaves. `false` if the head
    /// was not waiting for it.
    pub(super) fn store_buffer_head_done(&mut self, id: u64) -> bool {
        if self.sb.in_flight != Some(id) {
            return false;
        }
        self.sb.in_flight = None;
        if let Some(e) = self.sb.pop_front()
            && matches!(e.kind, SbKind::Store { .. })
        {
            self.stats.stores_drained += 1;
        }
        true
    }

    /// CLFLUSHOPT/CLWB request `id` completed. `false` if none was waiting for it.
    pub(super) fn flush_done(&mut self, id: u64) -> bool {
        let Some(k) = self.flushes.iter().position(|f| f.id == Some(id)) else {
            return false;
        };
        self.flushes.remove(k);
        true
    }

    pub(super) fn drain_store_buffer(&mut self, now: Cycle, machine: &mut Machine) {
        let mut popped = false;
        while self.sb.in_flight.is_none() {
            let Some(head) = self.sb.front() else {
                break;
            };
            let (seq, kind) = (head.seq, head.kind.clone());
            // Stores retire after every older load (TSO: no load -> store reordering).
            if self.lq.front().is_some_and(|l| l.seq < seq) {
                break;
            }
            let (pa, op) = match kind {
                SbKind::Sfence => {
                    if self.flushes.iter().any(|f| f.seq < seq) {
                        break;
                    }
                    self.sb.pop_front();
                    popped = true;
                    continue;
                }
                SbKind::Store { pa, len, data } => (pa, CoreOp::Store { len, data }),
                SbKind::Clflush { pa } => (pa, CoreOp::Clflush),
            };
            if let Some(id) = self.submit(now, machine, ReqTag::StoreBuffer, pa, op) {
                self.sb.in_flight = Some(id);
            }
            break;
        }
        if popped {
            // A marker left without a response: issue may be able to go on next cycle.
            self.wake_at(now.plus(1));
        }
    }

    pub(super) fn issue_flushes(&mut self, now: Cycle, machine: &mut Machine) {
        for k in 0..self.flushes.len() {
            let f = &self.flushes[k];
            if f.id.is_some() {
                continue;
            }
            let (seq, pa, clwb) = (f.seq, f.pa, f.clwb);
            let line = pa.line();
            // Ordered after older stores to its line and after older SFENCEs only.
            let blocked = self.sb.iter().any(|e| {
                e.seq < seq
                    && match e.kind {
                        SbKind::Sfence => true,
                        SbKind::Store { .. } => e.line() == Some(line),
                        SbKind::Clflush { .. } => false,
                    }
            });
            if blocked {
                continue;
            }
            let op = if clwb {
                CoreOp::Clwb
            } else {
                CoreOp::Clflushopt
            };
            match self.submit(now, machine, ReqTag::Flush, pa, op) {
                Some(id) => self.flushes[k].id = Some(id),
                None => break,
            }
        }
    }
}
