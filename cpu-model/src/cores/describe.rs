//! What a core tells about itself: the counters it keeps, the dump of a stopped run (where the
//! cursor is, what issue waits for, what is in flight; the core's [`TimedComponent`] view) and
//! the statistics it reports.

use super::Core;
use super::flat::OP_KINDS;
use super::issue::{Stage, Wait};
use super::load_queue::PieceState;
use sim_core::{Cycle, StatsReport, TimedComponent};
use std::fmt::Write as _;

/// Per-core counters.
#[derive(Debug, Default)]
pub(super) struct CoreStats {
    pub(super) ops: [u64; OP_KINDS.len()],
    pub(super) load_requests: u64,
    pub(super) loads_forwarded: u64,
    pub(super) load_replays: u64,
    pub(super) loads_partial_forward: u64,
    pub(super) stores_drained: u64,
    pub(super) tlb_hits: u64,
    pub(super) tlb_misses: u64,
    pub(super) faults: u64,
    pub(super) speculative_loads: u64,
    pub(super) speculative_dropped: u64,
    pub(super) prefetches_dropped: u64,
    pub(super) shadow_ops_squashed: u64,
    pub(super) shadow_stores_discarded: u64,
    pub(super) shadow_loads_forwarded: u64,
    pub(super) refusals: u64,
    pub(super) issue_cycles: u64,
    pub(super) wait: [u64; Wait::ALL.len()],
}

/// Cycles are core cycles.
impl TimedComponent for Core {
    /// The next cycle the core asked to be ticked at (an issue slot, a retry, the end of a
    /// compute op or a page walk); a barrier release is the barriers' to know
    /// (`Core::next_wake` adds it), a response the machine's. [`Cycle::NEVER`] once the
    /// program has ended.
    fn next_event_cycle(&self) -> Cycle {
        if self.done_at.is_some() {
            Cycle::NEVER
        } else {
            self.wake
        }
    }

    /// Until the program has ended (every op completed, nothing in flight).
    fn has_work(&self) -> bool {
        self.done_at.is_none()
    }

    /// Where the core is in its program and what it waits for; its store buffer, loads in
    /// flight, CLFLUSHOPT/CLWB, speculative requests, TLB and mispredicted path.
    fn describe(&self, now: Cycle, s: &mut String) {
        match self.done_at {
            Some(at) => {
                let _ = write!(s, "program finished at cycle {at}");
            }
            None => {
                s.push_str("at ");
                self.cursor.describe(&self.flat, s);
                if now < self.busy_until {
                    let _ = write!(s, "; computing until cycle {}", self.busy_until);
                } else if let Some((why, since)) = self.waiting {
                    let _ = write!(s, "; waiting since cycle {since} for {}", why.describe());
                }
                match &self.stage {
                    Stage::BarrierWait { id, occ } => {
                        let _ = write!(s, " (barrier {id}, occurrence {occ})");
                    }
                    Stage::Kernel(run) => {
                        let _ = write!(
                            s,
                            " (system call step {} of {})",
                            run.next + 1,
                            run.syscall.steps.len()
                        );
                    }
                    Stage::PconfigWait { done, .. } => {
                        let _ = write!(s, " (PCONFIG completes at cycle {done})");
                    }
                    _ => {}
                }
                if let Some(until) = self.xlate.walk_until {
                    let _ = write!(s, "; page walk until cycle {until}");
                }
            }
        }
        let _ = write!(
            s,
            "; store buffer {}/{}: ",
            self.sb.len() + self.flushes.len() + self.sb.shadow_len(),
            self.cfg.store_buffer_entries
        );
        self.sb.describe(s);
        let _ = write!(
            s,
            "; loads {}/{}",
            self.lq.len(),
            self.cfg.outstanding_loads
        );
        for (k, e) in self.lq.iter().enumerate() {
            s.push_str(if k == 0 { ": " } else { ", " });
            let _ = write!(s, "[#{} tag {} {} B at {}", e.seq, e.tag.0, e.len, e.first);
            for p in e.pieces() {
                match p.state {
                    PieceState::Pending => s.push_str(", to send"),
                    PieceState::InFlight(_) => s.push_str(", in flight"),
                    PieceState::Done => s.push_str(", done"),
                }
            }
            if e.check {
                s.push_str(", to re-check");
            }
            s.push(']');
        }
        let _ = write!(s, "; clflushopt/clwb {}", self.flushes.len());
        let _ = write!(
            s,
            "; speculative requests in flight {}",
            self.spec_in_flight
        );
        let _ = write!(s, "; TLB {}/{}", self.tlb.len(), self.tlb.capacity());
        if let Some(sh) = &self.shadow {
            let _ = write!(
                s,
                "; on a mispredicted path until cycle {} ({} ops issued{})",
                sh.resolve_at,
                sh.issued,
                if sh.stopped { ", stopped" } else { "" }
            );
        }
    }
}

impl Core {
    /// Statistics under `prefix` (`core.N`); `clock` is the run's current cycle.
    pub(crate) fn report_stats(&self, prefix: &str, clock: Cycle, report: &mut StatsReport) {
        let s = &self.stats;
        for (name, n) in OP_KINDS.iter().zip(s.ops) {
            report.count(prefix, &format!("ops.{name}"), n);
        }
        report.count(prefix, "ops_issued", s.ops.iter().sum());
        let counts = [
            ("load_requests", s.load_requests),
            ("loads_forwarded", s.loads_forwarded),
            ("loads_partial_forward", s.loads_partial_forward),
            ("load_replays", s.load_replays),
            ("stores_drained", s.stores_drained),
            ("tlb_hits", s.tlb_hits),
            ("tlb_misses", s.tlb_misses),
            ("faults", s.faults),
            ("speculative_loads", s.speculative_loads),
            ("speculative_dropped", s.speculative_dropped),
            ("prefetches_dropped", s.prefetches_dropped),
            ("shadow_ops_squashed", s.shadow_ops_squashed),
            ("shadow_stores_discarded", s.shadow_stores_discarded),
            ("shadow_loads_forwarded", s.shadow_loads_forwarded),
            ("requests_refused", s.refusals),
        ];
        for (name, n) in counts {
            report.count(prefix, name, n);
        }
        let mut wait = s.wait;
        if let Some((w, since)) = self.waiting {
            wait[w.index()] += clock.since(since);
        }
        for w in Wait::ALL {
            report.count(
                prefix,
                &format!("wait_cycles.{}", w.name()),
                wait[w.index()],
            );
        }
        let end = self.done_at.unwrap_or(clock);
        report.count(prefix, "cycles_active", end.get());
        report.count(prefix, "cycles_issuing", s.issue_cycles);
        report.count(
            prefix,
            "cycles_stalled",
            end.get().saturating_sub(s.issue_cycles),
        );
        report.count(prefix, "cycles_idle", clock.since(end));
    }
}
