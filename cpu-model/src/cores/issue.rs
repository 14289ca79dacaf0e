//! Issue: the per-cycle loop that issues ops in program order up to the issue width, the
//! dispatch of the op at the cursor, the plain memory ops' issue steps (loads, stores,
//! prefetches), and why issue waits (each reason a statistic and a line of a dump). The
//! serializing ops and the mispredicted path have modules of their own. See "Issue" in the
//! [parent module](super).

use super::flat::{Node, store_data};
use super::kernel_run::KernelRun;
use super::load_queue::{Dispatch, LoadEntry};
use super::request_id::ReqTag;
use super::store_buffer::SbKind;
use super::translate::{Pieces, Xl, XlateState};
use super::{Core, CoreCtx};
use crate::kernel::Access;
use crate::program::{Addr, OpKind, OpTag};
use cache_model::hierarchy::CoreOp;
use mem_ctrl::pconfig::PconfigOutcome;
use sim_core::{Cycle, LINE_BYTES, LineBytes};

/// Why issue is stopped.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(super) enum Wait {
    SbFull,
    LqFull,
    PartialForward,
    Drain,
    Barrier,
    Compute,
    PageWalk,
    Refused,
    Branch,
    Syscall,
    Pconfig,
    Wbinvd,
    Kernel,
}

impl Wait {
    pub(super) const ALL: [Wait; 13] = [
        Wait::SbFull,
        Wait::LqFull,
        Wait::PartialForward,
        Wait::Drain,
        Wait::Barrier,
        Wait::Compute,
        Wait::PageWalk,
        Wait::Refused,
        Wait::Branch,
        Wait::Syscall,
        Wait::Pconfig,
        Wait::Wbinvd,
        Wait::Kernel,
    ];

    pub(super) fn index(self) -> usize {
        self as usize
    }

    /// Statistic name.
    pub(super) fn name(self) -> &'static str {
        match self {
            Wait::SbFull => "sb_full",
            Wait::LqFull => "lq_full",
            Wait::PartialForward => "partial_forward",
            Wait::Drain => "drain",
            Wait::Barrier => "barrier",
            Wait::Compute => "compute",
            Wait::PageWalk => "page_walk",
            Wait::Refused => "refused",
            Wait::Branch => "branch",
            Wait::Syscall => "syscall",
            Wait::Pconfig => "pconfig",
            Wait::Wbinvd => "wbinvd",
            Wait::Kernel => "kernel_steps",
        }
    }

    /// For dumps.
    pub(super) fn describe(self) -> &'static str {
        match self {
            Wait::SbFull => "a free store-buffer entry",
            Wait::LqFull => "a free load-queue entry",
            Wait::PartialForward => "older stores a load partly overlaps to drain",
            Wait::Drain => "older ops to complete (fence or serializing op)",
            Wait::Barrier => "the other participants of a barrier",
            Wait::Compute => "the end of a compute op",
            Wait::PageWalk => "a page walk",
            Wait::Refused => "the hierarchy to accept a request (MSHRs full)",
            Wait::Branch => "a mispredicted branch to resolve",
            Wait::Syscall => "system-call entry",
            Wait::Pconfig => "PCONFIG to complete",
            Wait::Wbinvd => "WBINVD to complete",
            Wait::Kernel => "a system call's work (flush, zeroing, PCONFIG)",
        }
    }
}

/// What trying to issue an op did.
pub(super) enum Progress {
    /// It issued (completed its issue stage); the cursor moves on.
    Issued,
    /// It cannot go further this cycle.
    Blocked(Wait),
}

/// Progress of the op at the cursor.
#[derive(Debug)]
pub(super) enum Stage {
    Fresh,
    /// Translated; waiting for a resource.
    Ready(Pieces),
    /// A speculative load whose pieces from `next` on are still to be sent.
    Submitting {
        pieces: Pieces,
        next: u8,
    },
    /// The load is in the load queue but not dispatched yet (forwarding stall or refusal).
    LoadSubmitting {
        seq: u64,
    },
    /// WBINVD in flight.
    Serial,
    BarrierWait {
        id: u32,
        occ: u64,
    },
    PconfigWait {
        done: Cycle,
        outcome: PconfigOutcome,
    },
    KernelEntry {
        until: Cycle,
    },
    Kernel(Box<KernelRun>),
}

impl Core {
    /// Issues up to `issue_width` ops; returns how many.
    pub(super) fn issue(&mut self, now: Cycle, ctx: &mut CoreCtx<'_>) -> u32 {
        let width = self.cfg.issue_width.max(1);
        let mut issued = 0;
        while issued < width {
            if now < self.busy_until {
                self.stall(now, Wait::Compute);
                self.wake_at(self.busy_until);
                return issued;
            }
            if let Some(sh) = &self.shadow {
                let (resolve_at, stopped) = (sh.resolve_at, sh.stopped);
                if now >= resolve_at {
                    self.squash();
                    continue;
                }
                let why = if stopped {
                    Wait::Branch
                } else {
                    match self.shadow_step(now, ctx) {
                        Progress::Issued => {
                            self.close_wait(now);
                            issued += 1;
                            continue;
                        }
                        Progress::Blocked(why) => why,
                    }
                };
                self.stall(now, why);
                self.wake_at(resolve_at);
                return issued;
            }
            let Some(i) = self.cursor.peek(&self.flat) else {
                return issued;
            };
            match self.step(now, ctx, i) {
                Progress::Issued => {
                    if let Some(k) = self.flat.nodes[i].kind_index() {
                        self.stats.ops[k] += 1;
                    }
                    self.cursor.advance();
                    self.stage = Stage::Fresh;
                    self.xlate = XlateState::default();
                    self.close_wait(now);
                    issued += 1;
                }
                Progress::Blocked(why) => {
                    self.stall(now, why);
                    return issued;
                }
            }
        }
        // The width is used up: more may issue next cycle.
        self.wake_at(now.plus(1));
        issued
    }

    /// Tries to issue op `i` (the op at the cursor). Each arm copies what it needs out of
    /// the op first, so the step can change the core.
    fn step(&mut self, now: Cycle, ctx: &mut CoreCtx<'_>, i: usize) -> Progress {
        let tag = self.flat.tags[i];
        let op = match &self.flat.nodes[i] {
            Node::Op(op) => op,
            &Node::Mispredict { shadow } => {
                self.start_shadow(now, shadow);
                return Progress::Issued;
            }
            Node::Repeat { .. } => unreachable!("the cursor stops on ops, never on a repeat"),
        };
        match *op {
            OpKind::Load { at, len } => {
                let at = self.stepped_addr(i, at, false);
                self.step_load(now, ctx, tag, at, len)
            }
            OpKind::Store { at, ref bytes } => {
                let (len, mut data) = store_data(bytes);
                let at = self.stepped_addr(i, at, false);
                self.step_data(i, len, &mut data, false);
                self.step_store(now, ctx, tag, at, len, &data)
            }
            OpKind::Flush { kind, at } => {
                let at = self.stepped_addr(i, at, false);
                self.step_flush(now, ctx, tag, kind, at)
            }
            OpKind::Wbinvd => self.step_wbinvd(now, ctx),
            OpKind::Mfence => self.step_mfence(),
            OpKind::Sfence => self.step_sfence(),
            OpKind::Prefetch { at } => {
                let at = self.stepped_addr(i, at, false);
                self.step_prefetch(now, ctx, at)
            }
            OpKind::SpeculativeLoad { at, len } => {
                let at = self.stepped_addr(i, at, false);
                self.step_speculative(now, ctx, at, len)
            }
            OpKind::Compute { cycles } => {
                // Never NEVER: an endless compute must meet `cycles_max`, not look like a
                // deadlock.
                self.busy_until = now.plus(cycles).min(Cycle::new(u64::MAX - 1));
                Progress::Issued
            }
            OpKind::Barrier { id } => self.step_barrier(now, ctx, id),
            OpKind::Pconfig { .. } => self.step_pconfig(now, ctx, i, tag),
            OpKind::Kernel(_) => self.step_kernel(now, ctx, i, tag),
            OpKind::Mispredict { .. } | OpKind::Repeat { .. } | OpKind::Indexed(_) => {
                unreachable!("flattening turns containers into nodes of their own")
            }
        }
    }

    fn stall(&mut self, now: Cycle, why: Wait) {
        if self.waiting.map(|(w, _)| w) != Some(why) {
            self.close_wait(now);
            self.waiting = Some((why, now));
        }
    }

    pub(super) fn close_wait(&mut self, now: Cycle) {
        if let Some((w, since)) = self.waiting.take() {
            self.stats.wait[w.index()] += now.since(since);
        }
    }

    fn step_load(
        &mut self,
        now: Cycle,
        ctx: &mut CoreCtx<'_>,
        tag: OpTag,
        at: Addr,
        len: u8,
    ) -> Progress {
        if let Stage::LoadSubmitting { seq } = self.stage {
            return match self.lq.iter().find(|e| e.seq == seq) {
                Some(e) if !e.dispatched() => Progress::Blocked(if e.exec {
                    Wait::PartialForward
                } else {
                    Wait::Refused
                }),
                _ => Progress::Issued,
            };
        }
        let pieces = match self.stage {
            Stage::Ready(p) => p,
            _ => match self.translate_main(now, ctx, at, len, Access::Read) {
                Xl::Wait => return Progress::Blocked(Wait::PageWalk),
                Xl::Fault(f) => {
                    self.fault(ctx, now, tag, f);
                    return Progress::Issued;
                }
                Xl::Ok(p) => {
                    self.stage = Stage::Ready(p);
                    p
                }
            },
        };
        if self.lq.len() >= self.cfg.outstanding_loads.max(1) as usize {
            return Progress::Blocked(Wait::LqFull);
        }
        let seq = self.take_seq();
        self.lq
            .push_back(LoadEntry::new(seq, tag, &pieces, len.min(LINE_BYTES as u8)));
        match self.dispatch_load(self.lq.len() - 1, now, ctx.machine) {
            Dispatch::Done => Progress::Issued,
            d => {
                self.stage = Stage::LoadSubmitting { seq };
                Progress::Blocked(if d == Dispatch::Partial {
                    Wait::PartialForward
                } else {
                    Wait::Refused
                })
            }
        }
    }

    fn step_store(
        &mut self,
        now: Cycle,
        ctx: &mut CoreCtx<'_>,
        tag: OpTag,
        at: Addr,
        len: u8,
        data: &LineBytes,
    ) -> Progress {
        let pieces = match self.stage {
            Stage::Ready(p) => p,
            _ => match self.translate_main(now, ctx, at, len, Access::Write) {
                Xl::Wait => return Progress::Blocked(Wait::PageWalk),
                Xl::Fault(f) => {
                    self.fault(ctx, now, tag, f);
                    return Progress::Issued;
                }
                Xl::Ok(p) => {
                    self.stage = Stage::Ready(p);
                    p
                }
            },
        };
        if len == 0 {
            return Progress::Issued;
        }
        if !self.sb_room(pieces.n) {
            return Progress::Blocked(Wait::SbFull);
        }
        let seq = self.take_seq();
        for p in pieces.as_slice() {
            let (off, n) = (usize::from(p.off), usize::from(p.len));
            let mut bytes = [0; LINE_BYTES];
            bytes[..n].copy_from_slice(&data[off..off + n]);
            self.sb.push(
                seq,
                SbKind::Store {
                    pa: p.pa,
                    len: p.len,
                    data: bytes,
                },
            );
        }
        Progress::Issued
    }

    fn step_prefetch(&mut self, now: Cycle, ctx: &mut CoreCtx<'_>, at: Addr) -> Progress {
        let pieces = match self.stage {
            Stage::Ready(p) => p,
            _ => match self.translate_main(now, ctx, at, 1, Access::Read) {
                Xl::Wait => return Progress::Blocked(Wait::PageWalk),
                Xl::Fault(_) => {
                    self.stats.prefetches_dropped += 1;
                    return Progress::Issued;
                }
                Xl::Ok(p) => p,
            },
        };
        if self
            .submit(
                now,
                ctx.machine,
                ReqTag::Speculative,
                pieces.first,
                CoreOp::Prefetch,
            )
            .is_some()
        {
            self.spec_in_flight += 1;
            Progress::Issued
        } else {
            self.stage = Stage::Ready(pieces);
            Progress::Blocked(Wait::Refused)
        }
    }
}
