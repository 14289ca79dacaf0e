//! The cache-control instructions and the end-of-run drain: CLFLUSH, CLFLUSHOPT and CLWB act
//! on one line when they reach the LLC; WBINVD walks every cache set by set, the drain way by
//! way.
//!
//! A flush holds an L1D MSHR entry of its core from submission to completion. Its work is a
//! step like any other (it may write back, so it may wait for room in the write-back buffer),
//! and a walk that runs out of room part-way stops and resumes where it was.

use super::writeback_buffer::StepResult;
use super::{Copies, Ev, LLC, Step};
use crate::events::{CacheEvent, FlushKind, Level, RemoveCause, WritebackCause};
use crate::hierarchy::Hierarchy;
use crate::hierarchy::index::cores_in;
use crate::hierarchy::mesi::{MesiEvent, transition};
use crate::hierarchy::request::{CoreRequest, CoreResponse};
use sim_core::{CoreId, Cycle, LineAddr, PhysAddr};

/// A CLFLUSH, CLFLUSHOPT or CLWB in flight.
#[derive(Debug)]
pub(in crate::hierarchy) struct FlushOp {
    id: u64,
    core: usize,
    kind: FlushKind,
    pub(super) line: LineAddr,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum WalkMode {
    Wbinvd,
    Drain,
}

/// A walk over every line of the socket: WBINVD (write back and invalidate) or the end-of-run
/// drain (write back, keep clean). Phase 0 is the LLC, phase `1 + c` core `c`'s L2 (which
/// includes its L1D).
///
/// WBINVD goes set by set, snapshotting each set's lines when it reaches it, so the walk ends
/// even while other cores keep filling. The drain goes way by way: way 0 of every set, then
/// way 1, and so on. A set's lines are still written in way order (so an unflushed alias pair,
/// which always shares a set, ends the same way), but consecutive write-backs are lines of
/// consecutive sets, which usually share a DRAM row; set by set, they were the ways of one
/// set, each in another row of one bank, and every one cost a precharge and an activate.
#[derive(Debug)]
pub(in crate::hierarchy) struct Walk {
    mode: WalkMode,
    /// The WBINVD's core and request id.
    op: Option<(usize, u64)>,
    phase: usize,
    /// The next set to snapshot (WBINVD); 0 or 1 for the drain, which snapshots a cache whole.
    next: usize,
    lines: Vec<LineAddr>,
    pos: usize,
    /// Where the copies of `lines[pos]` were when the drain stopped there for want of room:
    /// nothing changes a cache while the drain waits, so they still are when it resumes (a
    /// WBINVD, during which other cores run, looks again).
    blocked_on: Option<Copies>,
}

/// What a flush does to every copy of a line.
#[derive(Copy, Clone, Debug)]
pub(super) enum FlushMode {
    /// Write back the newest data if dirty, invalidate every copy.
    Invalidate {
        remove: RemoveCause,
        writeback: WritebackCause,
    },
    /// Write back the newest data if dirty, keep every copy, clean (CLWB, drain).
    Clean {
        writeback: WritebackCause,
        at_end: bool,
    },
}

impl Hierarchy {
    pub(super) fn flush_op(&self, op: usize) -> &FlushOp {
        self.flush_ops[op].as_ref().expect("a flush in flight")
    }

    pub(super) fn submit_flush(
        &mut self,
        now: Cycle,
        request: CoreRequest,
        kind: FlushKind,
    ) -> Result<(), CoreRequest> {
        let c = request.core.index();
        if self.stalled_per_core[c] > 0 || self.l1_occupied(c) >= self.l1_mshr[c].capacity() {
            self.stats.at(Some(c), Level::L1d).mshr_full.inc();
            return Err(request);
        }
        self.flushes_in_flight[c] += 1;
        let core = request.core;
        // The instruction reaches the LLC (and its directory) after the three lookups.
        let to_llc = now.plus(self.lat_l1 + self.lat_l2 + self.lat_llc);
        if kind == FlushKind::Wbinvd {
            self.emit(|| CacheEvent::FlushStart {
                cycle: now,
                core,
                kind,
                line: None,
            });
            let walk = Walk {
                mode: WalkMode::Wbinvd,
                op: Some((c, request.id)),
                phase: 0,
                next: 0,
                lines: Vec::new(),
                pos: 0,
                blocked_on: None,
            };
            let w = put(&mut self.walks, walk);
            self.push_event(to_llc, Ev::WalkStart { walk: w });
            return Ok(());
        }
        let line = request.addr.line();
        self.emit(|| CacheEvent::FlushStart {
            cycle: now,
            core,
            kind,
            line: Some(line),
        });
        // Other cores holding the line must be snooped.
        let snoop = self.dir.sharers(line) & !(1u64 << c) != 0;
        let at = if snoop {
            to_llc.plus(self.lat_snoop)
        } else {
            to_llc
        };
        let op = put(
            &mut self.flush_ops,
            FlushOp {
                id: request.id,
                core: c,
                kind,
                line,
            },
        );
        self.push_event(at, Ev::Flush { op });
        Ok(())
    }

    pub(super) fn finish_flush(&mut self, t: Cycle, op: usize) {
        let f = self.flush_ops[op].take().expect("a flush in flight");
        let mode = match f.kind {
            FlushKind::Clwb => FlushMode::Clean {
                writeback: WritebackCause::Clwb,
                at_end: false,
            },
            FlushKind::Clflush | FlushKind::Clflushopt | FlushKind::Wbinvd => {
                FlushMode::Invalidate {
                    remove: RemoveCause::Flush,
                    writeback: WritebackCause::Flush,
                }
            }
        };
        self.flush_line(t, f.line, mode, Some(f.core));
        match f.kind {
            FlushKind::Clflush => self.stats.global.clflush.inc(),
            FlushKind::Clflushopt => self.stats.global.clflushopt.inc(),
            FlushKind::Clwb => self.stats.global.clwb.inc(),
            FlushKind::Wbinvd => unreachable!("WBINVD walks"),
        }
        self.flush_done(t, f.core, f.id, f.kind, Some(f.line));
    }

    fn flush_done(&mut self, t: Cycle, c: usize, id: u64, kind: FlushKind, line: Option<LineAddr>) {
        let core = CoreId::new(c as u32);
        self.emit(|| CacheEvent::FlushDone {
            cycle: t,
            core,
            kind,
            line,
        });
        self.ready.push(CoreResponse {
            id,
            core,
            done: t,
            data: None,
            from: None,
        });
        self.flushes_in_flight[c] -= 1;
        self.mshr_freed = true;
    }

    /// Writes back `line`'s newest data if any copy is dirty, then invalidates or cleans every
    /// copy (that KeyID's line only). Returns whether it wrote back.
    pub(super) fn flush_line(
        &mut self,
        t: Cycle,
        line: LineAddr,
        mode: FlushMode,
        charge: Option<usize>,
    ) -> bool {
        self.flush_line_with(t, line, self.copies(line), mode, charge)
    }

    /// [`Hierarchy::flush_line`], with `line`'s copies as they are now. One lookup answers
    /// every question below, asked before anything changes (the LLC copy, which the cores'
    /// changes leave alone, is reused to clean it).
    fn flush_line_with(
        &mut self,
        t: Cycle,
        line: LineAddr,
        copies: Copies,
        mode: FlushMode,
        charge: Option<usize>,
    ) -> bool {
        let Some(data) = self.newest_data_of(line, copies) else {
            return false;
        };
        let (dirty, stored) = self.line_dirty_of(line, copies);
        let pa = line.base();
        match mode {
            FlushMode::Invalidate { remove, writeback } => {
                for o in cores_in(copies.sharers) {
                    self.drop_core_copies(t, o, line, remove, MesiEvent::Flush);
                }
                if let Some(_e) = self.llc.invalidate(pa) {
                    // The LLC copy is the last to go: the line's dirty data leaves with it.
                    self.remove_event(t, LLC, line, remove, dirty);
                }
                if dirty {
                    self.mem_write(t, line, data, writeback, stored);
                }
            }
            FlushMode::Clean { writeback, at_end } => {
                for o in cores_in(copies.sharers) {
                    let tr = transition(self.core_state(o, line), MesiEvent::Clwb);
                    for level in [Level::L1d, Level::L2] {
                        let cache = if level == Level::L1d {
                            &mut self.l1[o]
                        } else {
                            &mut self.l2[o]
                        };
                        if let Some(s) = cache.probe(pa) {
                            let was_dirty = cache.is_dirty(s);
                            let p = cache.payload_mut(s);
                            p.data = data;
                            p.stored = false;
                            cache.set_dirty(s, false);
                            if at_end && was_dirty {
                                self.stats.at(Some(o), level).writebacks_at_end.inc();
                            }
                        }
                    }
                    self.set_core_state(o, line, tr.next);
                }
                if let Some(s) = copies.llc {
                    debug_assert_eq!(self.llc.probe(pa), Some(s), "{line:?} moved in the LLC");
                    let was_dirty = self.llc.is_dirty(s);
                    let p = self.llc.payload_mut(s);
                    p.data = data;
                    p.stored = false;
                    self.llc.set_dirty(s, false);
                    if at_end && was_dirty {
                        self.stats.at(charge, Level::Llc).writebacks_at_end.inc();
                    }
                }
                if dirty {
                    self.mem_write(t, line, data, writeback, stored);
                }
            }
        }
        dirty
    }

    /// Starts the drain's walk if nothing is in flight.
    pub(in crate::hierarchy) fn try_start_drain(&mut self, now: Cycle) {
        let quiet = self.hits.is_empty()
            && self.stalled.is_empty()
            && self.llc_mshr.used() == 0
            && (0..self.cores).all(|c| self.l1_occupied(c) == 0 && self.l2_mshr[c].used() == 0);
        if !quiet {
            return;
        }
        self.drain_pending = false;
        let walk = Walk {
            mode: WalkMode::Drain,
            op: None,
            phase: 0,
            next: 0,
            lines: Vec::new(),
            pos: 0,
            blocked_on: None,
        };
        let w = put(&mut self.walks, walk);
        self.run_step(now, Step::Walk { walk: w });
    }

    pub(super) fn run_walk(&mut self, t: Cycle, w: usize) -> StepResult {
        let mut walk = self.walks[w].take().expect("a walk in progress");
        let (mode, charge) = match walk.mode {
            WalkMode::Wbinvd => (
                FlushMode::Invalidate {
                    remove: RemoveCause::Wbinvd,
                    writeback: WritebackCause::Wbinvd,
                },
                walk.op.map(|(c, _)| c),
            ),
            WalkMode::Drain => (
                FlushMode::Clean {
                    writeback: WritebackCause::Drain,
                    at_end: true,
                },
                None,
            ),
        };
        loop {
            if walk.pos < walk.lines.len() {
                let line = walk.lines[walk.pos];
                let copies = walk.blocked_on.take().unwrap_or_else(|| self.copies(line));
                if self.room() == 0 && self.line_dirty_of(line, copies).0 {
                    if walk.mode == WalkMode::Drain {
                        walk.blocked_on = Some(copies);
                    }
                    self.walks[w] = Some(walk);
                    return StepResult::Blocked;
                }
                self.flush_line_with(t, line, copies, mode, charge);
                walk.pos += 1;
                continue;
            }
            if !self.walk_next_set(&mut walk) {
                break;
            }
        }
        if let Some((c, id)) = walk.op {
            self.stats.global.wbinvd.inc();
            self.flush_done(t, c, id, FlushKind::Wbinvd, None);
        }
        StepResult::Done
    }

    /// Moves `walk` to its next non-empty set (WBINVD) or cache (drain) and snapshots its
    /// lines, a cache's in way-major order for the drain; false when done.
    fn walk_next_set(&self, walk: &mut Walk) -> bool {
        loop {
            if walk.phase > self.cores {
                return false;
            }
            // WBINVD snapshots a set at a time, skipping sets never filled whole (a huge cache
            // stores few of its sets); the drain, during which nothing else runs, snapshots the
            // whole cache at once.
            let next = match (walk.mode, walk.phase) {
                (WalkMode::Wbinvd, 0) => self.llc.next_stored_set(walk.next),
                (WalkMode::Wbinvd, p) => self.l2[p - 1].next_stored_set(walk.next),
                (WalkMode::Drain, _) => (walk.next == 0).then_some(0),
            };
            match next {
                Some(set) => walk.next = set,
                None => {
                    walk.phase += 1;
                    walk.next = 0;
                    continue;
                }
            }
            walk.lines.clear();
            let set = walk.next;
            match (walk.mode, walk.phase) {
                (WalkMode::Wbinvd, 0) => walk
                    .lines
                    .extend(self.llc.set_lines(set).map(|l| l.addr.line())),
                (WalkMode::Wbinvd, p) => walk
                    .lines
                    .extend(self.l2[p - 1].set_lines(set).map(|l| l.addr.line())),
                (WalkMode::Drain, 0) => way_major(
                    &mut walk.lines,
                    self.llc.params().ways() as usize,
                    self.llc.lines().map(|l| (l.slot.way(), l.addr)),
                ),
                (WalkMode::Drain, p) => {
                    let l2 = &self.l2[p - 1];
                    way_major(
                        &mut walk.lines,
                        l2.params().ways() as usize,
                        l2.lines().map(|l| (l.slot.way(), l.addr)),
                    );
                }
            }
            walk.next += 1;
            walk.pos = 0;
            if !walk.lines.is_empty() {
                return true;
            }
        }
    }
}

/// `lines` (a cache's, each with its way below `ways`, in set then way order) appended to `out`
/// way by way: every set's way 0 in set order, then every set's way 1, and so on.
///
/// A counting sort: one pass counts each way's lines, a second puts each line at its way's
/// next place, so within a way the sets keep their order (a comparison sort of the 131,072
/// lines of an 8 MiB LLC cost more than the rest of a clean drain's walk).
fn way_major(out: &mut Vec<LineAddr>, ways: usize, lines: impl Iterator<Item = (usize, PhysAddr)>) {
    let lines: Vec<(usize, PhysAddr)> = lines.collect();
    // `next[w]`: where way `w`'s next line goes, from the lines of the ways before it.
    let mut next = vec![0usize; ways];
    for &(way, _) in &lines {
        next[way] += 1;
    }
    let mut at = out.len();
    for n in &mut next {
        (*n, at) = (at, at + *n);
    }
    out.resize(at, PhysAddr::new(0).line());
    for (way, addr) in lines {
        out[next[way]] = addr.line();
        next[way] += 1;
    }
}

/// Stores `item` in the first free slot of `slots`; returns its index.
fn put<T>(slots: &mut Vec<Option<T>>, item: T) -> usize {
    match slots.iter().position(Option::is_none) {
        Some(i) => {
            slots[i] = Some(item);
            i
        }
        None => {
            slots.push(Some(item));
            slots.len() - 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn way_major_is_a_stable_sort_by_way() {
        // Issue 14: the counting sort gives the order the stable comparison sort gave.
        let ways = 5;
        let mut x = 0x9e37_79b9_u64;
        let lines: Vec<(usize, PhysAddr)> = (0..300u64)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ((x % ways as u64) as usize, PhysAddr::new(i * 64))
            })
            .collect();
        let mut sorted = lines.clone();
        sorted.sort_by_key(|&(way, _)| way);
        let expected: Vec<LineAddr> = sorted.iter().map(|(_, a)| a.line()).collect();
        let mut out = vec![PhysAddr::new(1 << 20).line()];
        way_major(&mut out, ways, lines.into_iter());
        assert_eq!(out[0], PhysAddr::new(1 << 20).line(), "appends");
        assert_eq!(out[1..], expected[..]);
        let mut empty = Vec::new();
        way_major(&mut empty, ways, std::iter::empty());
        assert!(empty.is_empty());
    }
}
