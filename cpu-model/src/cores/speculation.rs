//! Speculation: the mispredicted path (a branch's shadow, issued until the branch resolves and
//! then squashed) and speculative loads, which fill lines without binding a value. See
//! "Mispredicted branches" and "Prefetches and speculative loads" in the
//! [parent module](super).

use super::flat::{Node, Span, store_data};
use super::issue::{Progress, Stage, Wait};
use super::request_id::ReqTag;
use super::store_buffer::range_mask;
use super::translate::{Pieces, Xl, XlateState};
use super::{Core, CoreCtx};
use crate::kernel::Access;
use crate::machine::Machine;
use crate::program::{Addr, OpKind};
use cache_model::hierarchy::CoreOp;
use sim_core::{Cycle, LINE_BYTES, LineBytes};

/// A mispredicted path being issued.
#[derive(Debug)]
pub(super) struct Shadow {
    pub(super) resolve_at: Cycle,
    /// The shadow met its end or an op that ends it; the core waits for the resolution.
    pub(super) stopped: bool,
    /// Shadow ops issued (all squashed at the resolution).
    pub(super) issued: u64,
    /// A speculative load whose later pieces the hierarchy refused.
    sub: Option<(Pieces, u8)>,
}

impl Core {
    /// A prefetch or speculative load completed (nothing waits for its value). `false` if
    /// none was in flight.
    pub(super) fn speculative_done(&mut self) -> bool {
        let Some(left) = self.spec_in_flight.checked_sub(1) else {
            return false;
        };
        self.spec_in_flight = left;
        true
    }

    /// Sends speculative-load pieces from `from` on; `Err(k)`: piece `k` was refused.
    fn submit_speculative(
        &mut self,
        now: Cycle,
        machine: &mut Machine,
        pieces: &Pieces,
        from: u8,
    ) -> Result<(), u8> {
        for k in from..pieces.n {
            let p = pieces.p[usize::from(k)];
            let op = CoreOp::SpeculativeLoad { len: p.len };
            if self
                .submit(now, machine, ReqTag::Speculative, p.pa, op)
                .is_none()
            {
                return Err(k);
            }
            self.spec_in_flight += 1;
        }
        Ok(())
    }

    pub(super) fn step_speculative(
        &mut self,
        now: Cycle,
        ctx: &mut CoreCtx<'_>,
        at: Addr,
        len: u8,
    ) -> Progress {
        let (pieces, next) = match self.stage {
            Stage::Submitting { pieces, next } => (pieces, next),
            _ => match self.translate_main(now, ctx, at, len, Access::Read) {
                Xl::Wait => return Progress::Blocked(Wait::PageWalk),
                Xl::Fault(_) => {
                    self.stats.speculative_dropped += 1;
                    return Progress::Issued;
                }
                Xl::Ok(p) => (p, 0),
            },
        };
        match self.submit_speculative(now, ctx.machine, &pieces, next) {
            Ok(()) => {
                if pieces.n > 0 {
                    self.stats.speculative_loads += 1;
                }
                Progress::Issued
            }
            Err(k) => {
                self.stage = Stage::Submitting { pieces, next: k };
                Progress::Blocked(Wait::Refused)
            }
        }
    }

    pub(super) fn start_shadow(&mut self, now: Cycle, shadow: Span) {
        self.shadow_cursor.reset(shadow);
        self.shadow_xlate = XlateState::default();
        self.shadow = Some(Shadow {
            resolve_at: now.plus(self.cfg.branch_resolve_cycles),
            stopped: false,
            issued: 0,
            sub: None,
        });
    }

    fn stop_shadow(&mut self) {
        if let Some(sh) = &mut self.shadow {
            sh.stopped = true;
        }
    }

    /// The branch resolved: discard the wrong path.
    pub(super) fn squash(&mut self) {
        if let Some(sh) = self.shadow.take() {
            self.stats.shadow_ops_squashed += sh.issued;
            self.stats.shadow_stores_discarded += self.sb.squash_shadow() as u64;
        }
    }

    /// Issues the shadow's next op.
    pub(super) fn shadow_step(&mut self, now: Cycle, ctx: &mut CoreCtx<'_>) -> Progress {
        let Some(i) = self.shadow_cursor.peek(&self.flat) else {
            self.stop_shadow();
            return Progress::Blocked(Wait::Branch);
        };
        let op = match &self.flat.nodes[i] {
            Node::Op(op) => op,
            &Node::Mispredict { shadow } => {
                // A wrong path inside the wrong path: follow it, then go on after it.
                self.shadow_cursor.advance();
                self.shadow_cursor.enter(shadow, i);
                if let Some(sh) = &mut self.shadow {
                    sh.issued += 1;
                }
                return Progress::Issued;
            }
            Node::Repeat { .. } => unreachable!("the cursor stops on ops, never on a repeat"),
        };
        let r = match *op {
            OpKind::Load { at, len } => {
                let at = self.stepped_addr(i, at, true);
                self.shadow_load(now, ctx, at, len, true)
            }
            OpKind::SpeculativeLoad { at, len } => {
                let at = self.stepped_addr(i, at, true);
                self.shadow_load(now, ctx, at, len, false)
            }
            OpKind::Store { at, ref bytes } => {
                let (len, mut data) = store_data(bytes);
                let at = self.stepped_addr(i, at, true);
                self.step_data(i, len, &mut data, true);
                self.shadow_store(now, ctx, at, len, &data)
            }
            OpKind::Prefetch { at } => {
                let at = self.stepped_addr(i, at, true);
                self.shadow_prefetch(now, ctx, at)
            }
            OpKind::Compute { .. }
            | OpKind::Mfence
            | OpKind::Sfence
            | OpKind::Flush { .. }
            | OpKind::Wbinvd
            | OpKind::Barrier { .. }
            | OpKind::Pconfig { .. }
            | OpKind::Kernel(_) => {
                self.stop_shadow();
                return Progress::Blocked(Wait::Branch);
            }
            OpKind::Mispredict { .. } | OpKind::Repeat { .. } | OpKind::Indexed(_) => {
                unreachable!("flattening turns containers into nodes of their own")
            }
        };
        match r {
            Ok(()) => {
                self.shadow_cursor.advance();
                self.shadow_xlate = XlateState::default();
                if let Some(sh) = &mut self.shadow {
                    sh.issued += 1;
                    sh.sub = None;
                }
                Progress::Issued
            }
            Err(why) => Progress::Blocked(why),
        }
    }

    /// Whether every byte of `p` comes from buffered stores (the shadow's included).
    fn shadow_covered(&self, p: &Pieces) -> bool {
        let mut scratch = [0u8; LINE_BYTES];
        p.as_slice().iter().all(|p| {
            let (lo, len) = (p.pa.line_offset(), usize::from(p.len));
            self.sb
                .forward(p.pa.line(), lo, len, u64::MAX, true, &mut scratch[..len])
                == range_mask(lo, len)
        })
    }

    fn shadow_load(
        &mut self,
        now: Cycle,
        ctx: &mut CoreCtx<'_>,
        at: Addr,
        len: u8,
        forward: bool,
    ) -> Result<(), Wait> {
        let (pieces, next) = match self.shadow.as_ref().and_then(|s| s.sub) {
            Some(sub) => sub,
            None => match self.translate_shadow(now, ctx, at, len, Access::Read) {
                Xl::Wait => return Err(Wait::PageWalk),
                Xl::Fault(_) => {
                    self.stats.speculative_dropped += 1;
                    return Ok(());
                }
                Xl::Ok(p) => {
                    if forward && p.n > 0 && self.shadow_covered(&p) {
                        self.stats.shadow_loads_forwarded += 1;
                        return Ok(());
                    }
                    (p, 0)
                }
            },
        };
        match self.submit_speculative(now, ctx.machine, &pieces, next) {
            Ok(()) => {
                if pieces.n > 0 {
                    self.stats.speculative_loads += 1;
                }
                Ok(())
            }
            Err(k) => {
                if let Some(sh) = &mut self.shadow {
                    sh.sub = Some((pieces, k));
                }
                Err(Wait::Refused)
            }
        }
    }

    fn shadow_store(
        &mut self,
        now: Cycle,
        ctx: &mut CoreCtx<'_>,
        at: Addr,
        len: u8,
        data: &LineBytes,
    ) -> Result<(), Wait> {
        let pieces = match self.translate_shadow(now, ctx, at, len, Access::Write) {
            Xl::Wait => return Err(Wait::PageWalk),
            Xl::Fault(_) => return Ok(()),
            Xl::Ok(p) => p,
        };
        if len == 0 {
            return Ok(());
        }
        if !self.sb_room(pieces.n) {
            return Err(Wait::SbFull);
        }
        for p in pieces.as_slice() {
            let (off, n) = (usize::from(p.off), usize::from(p.len));
            let mut bytes = [0; LINE_BYTES];
            bytes[..n].copy_from_slice(&data[off..off + n]);
            self.sb.push_shadow(p.pa, p.len, bytes);
        }
        Ok(())
    }

    fn shadow_prefetch(&mut self, now: Cycle, ctx: &mut CoreCtx<'_>, at: Addr) -> Result<(), Wait> {
        let pieces = match self.translate_shadow(now, ctx, at, 1, Access::Read) {
            Xl::Wait => return Err(Wait::PageWalk),
            Xl::Fault(_) => {
                self.stats.prefetches_dropped += 1;
                return Ok(());
            }
            Xl::Ok(p) => p,
        };
        if self
            .submit(
                now,
                ctx.machine,
                ReqTag::Speculative,
                pieces.first,
                CoreOp::Prefetch,
            )
            .is_none()
        {
            return Err(Wait::Refused);
        }
        self.spec_in_flight += 1;
        Ok(())
    }
}
