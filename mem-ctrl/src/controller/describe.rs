//! The memory side as the dumps of a stopped run see it: the [`TimedComponent`] views of the
//! memory system (a PCONFIG update on its way, responses waiting) and of each memory controller
//! (the requests it accepted and has not answered, with KeyID, DRAM address and read or write),
//! whose DRAM model describes its own queues.
//!
//! Requests are listed by id (the controllers keep them in hash maps, whose order must never
//! reach an output), so a dump is the same from run to run.

use super::{MemoryController, MemorySystem};
use crate::key_table::KeyMode;
use sim_core::{Cycle, OrNever, RequestId, TimedComponent};
use std::fmt::Write as _;

/// Cycles are DRAM cycles: the controller runs at its DRAM's clock (the memory system converts
/// to core cycles at its interface).
impl TimedComponent for MemoryController {
    fn next_event_cycle(&self) -> Cycle {
        self.dram.next_event_cycle()
    }

    fn has_work(&self) -> bool {
        TimedComponent::has_work(&self.dram)
    }

    /// The requests accepted and not answered yet, oldest id first: reads with the KeyID they
    /// are decrypted for, writes (already encrypted) with their line; the requests refused for
    /// want of room that have not been accepted since; and, when there are any, the lines whose
    /// writes have not reached DRAM (a merged write is answered, but its line is pending until
    /// the write it merged into crosses the bus). Where each one is (which queue, or
    /// on the bus) and the next event are in the DRAM model's description, a part of this one.
    fn describe(&self, _now: Cycle, out: &mut String) {
        let mut requests: Vec<(RequestId, String)> = self
            .reads
            .iter()
            .map(|(id, r)| (*id, format!("read {} KeyID {}", r.addr, r.keyid)))
            .chain(
                self.writes
                    .iter()
                    .map(|(id, w)| (*id, format!("write {}", w.addr))),
            )
            .collect();
        requests.sort_unstable_by_key(|(id, _)| *id);
        let _ = write!(
            out,
            "requests accepted and not answered: {} (reads {}, writes {})",
            requests.len(),
            self.reads.len(),
            self.writes.len()
        );
        for (k, (id, what)) in requests.iter().enumerate() {
            out.push_str(if k == 0 { ": " } else { ", " });
            let _ = write!(out, "#{} {what}", id.0);
        }
        let _ = write!(
            out,
            "; requests refused for a full queue and not accepted since: {}",
            self.refused.len()
        );
        let pending = self.pending_write_lines();
        if !pending.is_empty() {
            out.push_str("; lines whose writes have not reached DRAM: ");
            for (k, line) in pending.iter().enumerate() {
                if k > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{line}");
            }
        }
    }

    fn visit_parts(&self, visit: &mut dyn FnMut(&str, &dyn TimedComponent)) {
        visit(
            &format!("memory controller {} DRAM", self.index),
            &self.dram,
        );
    }
}

/// Cycles are core cycles.
impl TimedComponent for MemorySystem {
    fn next_event_cycle(&self) -> Cycle {
        MemorySystem::next_event_cycle(self)
    }

    fn has_work(&self) -> bool {
        MemorySystem::has_work(self)
    }

    fn describe(&self, _now: Cycle, out: &mut String) {
        out.push_str("PCONFIG update pending: ");
        match &self.pending {
            None => out.push_str("none"),
            Some(p) => {
                let mode = match &p.mode {
                    KeyMode::Tme => "TME behaviour".to_owned(),
                    KeyMode::NoEncrypt => "no encryption".to_owned(),
                    KeyMode::Keyed(key) => format!("its own key ({:?})", key.algorithm()),
                };
                let _ = write!(out, "KeyID {} gets {mode} at cycle {}", p.keyid, p.at);
            }
        }
        let _ = write!(out, "; responses waiting {}", self.responses.len());
        if let Some(c) = self.responses.peek_cycle() {
            let _ = write!(out, " (first due at cycle {c})");
        }
        let _ = write!(
            out,
            "; events not taken {}; work in flight: {}; next event {}",
            self.events.len(),
            MemorySystem::has_work(self),
            OrNever(MemorySystem::next_event_cycle(self))
        );
    }

    fn visit_parts(&self, visit: &mut dyn FnMut(&str, &dyn TimedComponent)) {
        for mc in &self.controllers {
            visit(&format!("memory controller {}", mc.index), mc);
        }
    }
}
