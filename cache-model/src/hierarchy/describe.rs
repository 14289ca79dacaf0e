//! The hierarchy as the dumps of a stopped run see it ([`TimedComponent`]): each cache's MSHRs
//! with the lines they wait for and the requests waiting on them, the write-back buffer, the
//! outbox of requests for memory (oldest first), and the engine's pending work.
//!
//! Everything is listed in a fixed order (cores in order, MSHR entries by slot, queues front
//! to back), so a dump is the same from run to run.

use super::Hierarchy;
use super::mshr::Table;
use sim_core::{Cycle, MemOp, OrNever, TimedComponent};
use std::fmt::Write as _;

/// `L2 MSHRs 1/32: 0x1000 (...), ...`: a table's use and, for each entry, its line and what
/// `detail` says about it.
fn write_table<E: super::mshr::HasLine>(
    out: &mut String,
    label: &str,
    used: usize,
    table: &Table<E>,
    detail: impl Fn(&E, &mut String),
) {
    let _ = write!(out, "{label} {used}/{}", table.capacity());
    for (k, e) in table.entries().enumerate() {
        out.push_str(if k == 0 { ": " } else { ", " });
        let _ = write!(out, "{}", e.line().base());
        detail(e, out);
    }
}

/// Cycles are core cycles.
impl TimedComponent for Hierarchy {
    fn next_event_cycle(&self) -> Cycle {
        Hierarchy::next_event_cycle(self)
    }

    fn has_work(&self) -> bool {
        Hierarchy::has_work(self)
    }

    /// One line per core (its L1D and L2 MSHRs, flushes, replayed requests waiting), one for
    /// the LLC's MSHRs, one for the write-back buffer and the outbox, one for the engine.
    /// Lines are physical addresses of the line's first byte, KeyID bits included.
    fn describe(&self, _now: Cycle, out: &mut String) {
        for c in 0..self.cores {
            let _ = write!(out, "core {c}: ");
            write_table(
                out,
                "L1D MSHRs (flushes included)",
                self.l1_occupied(c),
                &self.l1_mshr[c],
                |e, out| {
                    out.push_str(" [");
                    for (k, a) in e.reqs.iter().enumerate() {
                        if k > 0 {
                            out.push_str(", ");
                        }
                        let _ = write!(out, "{:?} {:#x}", a.kind, a.id);
                    }
                    out.push(']');
                },
            );
            let _ = write!(out, "; flushes in flight {}; ", self.flushes_in_flight[c]);
            write_table(
                out,
                "L2 MSHRs",
                self.l2_mshr[c].used(),
                &self.l2_mshr[c],
                |e, out| {
                    if e.waits_on_llc {
                        out.push_str(" (waits for the LLC)");
                    }
                    if e.hw_prefetch {
                        out.push_str(" (hardware prefetch)");
                    }
                },
            );
            let _ = writeln!(
                out,
                "; replayed requests waiting for an MSHR {}",
                self.stalled_per_core[c]
            );
        }
        write_table(
            out,
            "LLC MSHRs",
            self.llc_mshr.used(),
            &self.llc_mshr,
            |e, out| {
                let state = match (e.issued, e.data.is_some()) {
                    (false, _) => "not yet sent",
                    (true, false) => "sent, waiting for memory",
                    (true, true) => "answered",
                };
                let _ = write!(out, " (read #{}, {state}, for cores {:?})", e.id.0, e.cores);
            },
        );
        let _ = write!(
            out,
            "\nwrite-back buffer {}/{}; outbox {}",
            self.outbox_writes,
            self.wb_capacity,
            self.outbox.len()
        );
        for (k, r) in self.outbox.iter().enumerate() {
            out.push_str(if k == 0 { " (oldest first): " } else { ", " });
            let op = match r.op {
                MemOp::Read => "read",
                MemOp::Write => "write",
            };
            let _ = write!(out, "{op} #{} {}", r.id.0, r.addr);
        }
        let _ = write!(
            out,
            "\nsteps waiting for write-back buffer room {}; events scheduled {}; L1D hits in \
             flight {}; responses not collected {}; flush operations {}; cache walks (WBINVD, \
             drain) {}; drain pending: {}; work in flight: {}; next event {}",
            self.blocked.len(),
            self.queue.len(),
            self.hits.len(),
            self.ready.len(),
            self.flush_ops.iter().flatten().count(),
            self.walks.iter().flatten().count(),
            self.drain_pending,
            Hierarchy::has_work(self),
            OrNever(Hierarchy::next_event_cycle(self)),
        );
    }
}
