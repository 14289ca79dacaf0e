//! The load queue: loads in flight as line pieces, store-to-load forwarding, and the
//! machine-clear re-check that gives x86-TSO load order (a load that completed while an older
//! one was outstanding is re-checked when it becomes the oldest, and replayed if its view has
//! gone). See "Loads" and "Load -> load order" in the [parent module](super).

use super::request_id::ReqTag;
use super::store_buffer::range_mask;
use super::translate::Pieces;
use super::{Core, CoreCtx};
use crate::machine::Machine;
use crate::program::{OpOutcome, OpTag};
use cache_model::hierarchy::{CoreOp, CoreResponse};
use cache_model::{CacheId, Level};
use sim_core::{Cycle, LINE_BYTES, LineBytes, PhysAddr};

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(super) enum PieceState {
    /// Not sent yet (or to be sent again after a replay).
    Pending,
    InFlight(u64),
    Done,
}

#[derive(Copy, Clone, Debug)]
pub(super) struct LqPiece {
    pa: PhysAddr,
    len: u8,
    off: u8,
    pub(super) state: PieceState,
}

/// A load in the load queue.
#[derive(Debug)]
pub(super) struct LoadEntry {
    pub(super) seq: u64,
    pub(super) tag: OpTag,
    pub(super) first: PhysAddr,
    pub(super) len: u8,
    pieces: [LqPiece; 2],
    n: u8,
    /// The value, in address order.
    bytes: LineBytes,
    /// The store-buffer check is still to be made (a new load, or a replay).
    pub(super) exec: bool,
    /// Counted once as a forwarding stall.
    partial_seen: bool,
    /// When the value is available (a forwarded load: the cycle after).
    pub(super) ready_at: Cycle,
    /// Some piece completed while an older load was outstanding: re-check when oldest.
    pub(super) check: bool,
}

impl LoadEntry {
    pub(super) fn new(seq: u64, tag: OpTag, pieces: &Pieces, len: u8) -> LoadEntry {
        let mut lq = [LqPiece {
            pa: PhysAddr::default(),
            len: 0,
            off: 0,
            state: PieceState::Done,
        }; 2];
        for (slot, p) in lq.iter_mut().zip(pieces.as_slice()) {
            *slot = LqPiece {
                pa: p.pa,
                len: p.len,
                off: p.off,
                state: PieceState::Pending,
            };
        }
        LoadEntry {
            seq,
            tag,
            first: pieces.first,
            len,
            pieces: lq,
            n: pieces.n,
            bytes: [0; LINE_BYTES],
            exec: true,
            partial_seen: false,
            ready_at: Cycle::ZERO,
            check: false,
        }
    }

    pub(super) fn pieces(&self) -> &[LqPiece] {
        &self.pieces[..usize::from(self.n)]
    }

    /// The value is bound.
    fn complete(&self, now: Cycle) -> bool {
        !self.exec
            && self.ready_at <= now
            && self.pieces().iter().all(|p| p.state == PieceState::Done)
    }

    /// Forwarded or every piece sent.
    pub(super) fn dispatched(&self) -> bool {
        !self.exec && self.pieces().iter().all(|p| p.state != PieceState::Pending)
    }

    fn replay(&mut self) {
        self.exec = true;
        self.check = false;
        self.ready_at = Cycle::ZERO;
        let n = usize::from(self.n);
        for p in &mut self.pieces[..n] {
            p.state = PieceState::Pending;
        }
    }
}

/// How far dispatching a load got.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(super) enum Dispatch {
    /// Forwarded, or every piece accepted by the hierarchy.
    Done,
    /// Partly covered by older buffered stores: waits for them to drain.
    Partial,
    /// The hierarchy refused a piece: retry next cycle.
    Refused,
}

impl Core {
    /// A load piece's response: binds its bytes. `false` if no piece waits for it.
    pub(super) fn load_piece_done(&mut self, now: Cycle, r: &CoreResponse) -> bool {
        let found = self.lq.iter().enumerate().find_map(|(i, e)| {
            e.pieces()
                .iter()
                .position(|p| p.state == PieceState::InFlight(r.id))
                .map(|k| (i, k))
        });
        let Some((idx, k)) = found else {
            return false;
        };
        let older_open = self.lq.iter().take(idx).any(|e| !e.complete(now));
        let e = &mut self.lq[idx];
        let p = e.pieces[k];
        let data = r.data.unwrap_or([0; LINE_BYTES]);
        let (lo, len, off) = (p.pa.line_offset(), usize::from(p.len), usize::from(p.off));
        e.bytes[off..off + len].copy_from_slice(&data[lo..lo + len]);
        e.pieces[k].state = PieceState::Done;
        e.ready_at = e.ready_at.max(now);
        e.check |= older_open;
        true
    }

    /// Retires final loads, oldest first, recording their results; re-checks a load that
    /// completed while an older one was outstanding, and replays it if its view is gone.
    pub(super) fn retire_loads(&mut self, now: Cycle, ctx: &mut CoreCtx<'_>) {
        while let Some(front) = self.lq.front() {
            if !front.complete(now) {
                break;
            }
            if front.check && !self.still_valid(front, ctx.machine) {
                self.stats.load_replays += 1;
                if let Some(e) = self.lq.front_mut() {
                    e.replay();
                }
                break;
            }
            let Some(e) = self.lq.pop_front() else {
                break;
            };
            let outcome = OpOutcome::Load {
                bytes: e.bytes[..usize::from(e.len)].to_vec(),
                pa: e.first,
            };
            self.record(ctx, now, e.tag, outcome);
        }
    }

    /// Whether a load's bytes are still what the core would read now: older buffered stores,
    /// then its L1D copy.
    fn still_valid(&self, e: &LoadEntry, machine: &Machine) -> bool {
        let l1d = CacheId {
            core: Some(self.id),
            level: Level::L1d,
        };
        let mut view = [0u8; LINE_BYTES];
        for p in e.pieces() {
            let (line, lo, len) = (p.pa.line(), p.pa.line_offset(), usize::from(p.len));
            let covered = self
                .sb
                .forward(line, lo, len, e.seq, false, &mut view[..len]);
            if covered != range_mask(lo, len) {
                let Some(copy) = machine.caches().line(l1d, line) else {
                    return false;
                };
                for (j, v) in view[..len].iter_mut().enumerate() {
                    if covered & (1 << (lo + j)) == 0 {
                        *v = copy.data[lo + j];
                    }
                }
            }
            let off = usize::from(p.off);
            if view[..len] != e.bytes[off..off + len] {
                return false;
            }
        }
        true
    }

    /// Sends what replayed loads (and a load whose pieces were refused) still have to send.
    pub(super) fn dispatch_loads(&mut self, now: Cycle, machine: &mut Machine) {
        for idx in 0..self.lq.len() {
            if !self.lq[idx].dispatched()
                && self.dispatch_load(idx, now, machine) == Dispatch::Refused
            {
                break;
            }
        }
    }

    /// Store-to-load forwarding, then the hierarchy, for load queue entry `idx`.
    pub(super) fn dispatch_load(
        &mut self,
        idx: usize,
        now: Cycle,
        machine: &mut Machine,
    ) -> Dispatch {
        if self.lq[idx].exec {
            let e = &self.lq[idx];
            let mut bytes = [0u8; LINE_BYTES];
            let (mut any, mut all) = (false, true);
            for p in e.pieces() {
                let (lo, len, off) = (p.pa.line_offset(), usize::from(p.len), usize::from(p.off));
                let covered = self.sb.forward(
                    p.pa.line(),
                    lo,
                    len,
                    e.seq,
                    false,
                    &mut bytes[off..off + len],
                );
                any |= covered != 0;
                all &= covered == range_mask(lo, len);
            }
            if all {
                let older_open = self.lq.iter().take(idx).any(|o| !o.complete(now));
                let e = &mut self.lq[idx];
                if e.n > 0 {
                    self.stats.loads_forwarded += 1;
                }
                e.bytes = bytes;
                let n = usize::from(e.n);
                for p in &mut e.pieces[..n] {
                    p.state = PieceState::Done;
                }
                e.exec = false;
                e.ready_at = now.plus(1);
                e.check |= older_open;
                return Dispatch::Done;
            }
            if any {
                let e = &mut self.lq[idx];
                if !e.partial_seen {
                    e.partial_seen = true;
                    self.stats.loads_partial_forward += 1;
                }
                return Dispatch::Partial;
            }
            self.lq[idx].exec = false;
        }
        for k in 0..usize::from(self.lq[idx].n) {
            let p = self.lq[idx].pieces[k];
            if p.state != PieceState::Pending {
                continue;
            }
            match self.submit(
                now,
                machine,
                ReqTag::Load,
                p.pa,
                CoreOp::Load { len: p.len },
            ) {
                Some(id) => {
                    self.stats.load_requests += 1;
                    self.lq[idx].pieces[k].state = PieceState::InFlight(id);
                }
                None => return Dispatch::Refused,
            }
        }
        Dispatch::Done
    }
}
