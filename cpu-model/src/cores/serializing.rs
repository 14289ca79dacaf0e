//! Fences, flushes and the serializing ops: MFENCE and SFENCE, CLFLUSH/CLFLUSHOPT/CLWB at
//! issue, WBINVD, barriers, PCONFIG and system calls with the kernel's steps. Each waits for
//! the core to quiesce (or orders itself through the store buffer) before it acts. See
//! "Flushes and fences", "Barriers", "PCONFIG" and "System calls" in the
//! [parent module](super).

use super::flat::Node;
use super::issue::{Progress, Stage, Wait};
use super::kernel_run::{KStep, KernelRun};
use super::request_id::ReqTag;
use super::store_buffer::SbKind;
use super::store_drain::FlushEntry;
use super::translate::Xl;
use super::{Core, CoreCtx};
use crate::kernel::{Access, KernelStep};
use crate::program::{Addr, LineFlush, OpKind, OpOutcome, OpTag};
use cache_model::hierarchy::CoreOp;
use mem_ctrl::pconfig::{PconfigCall, PconfigOutcome, PconfigStatus};
use sim_core::{Cycle, LINE_BYTES, PhysAddr};

impl Core {
    /// MFENCE: issues once nothing older is in flight.
    pub(super) fn step_mfence(&self) -> Progress {
        if self.quiesced() {
            Progress::Issued
        } else {
            Progress::Blocked(Wait::Drain)
        }
    }

    /// SFENCE: a marker in the store buffer, unless nothing older is left to order against.
    pub(super) fn step_sfence(&mut self) -> Progress {
        if self.sb.is_empty() && self.flushes.is_empty() {
            // Nothing older to order against.
            Progress::Issued
        } else if self.sb_room(1) {
            let seq = self.take_seq();
            self.sb.push(seq, SbKind::Sfence);
            Progress::Issued
        } else {
            Progress::Blocked(Wait::SbFull)
        }
    }

    pub(super) fn step_flush(
        &mut self,
        now: Cycle,
        ctx: &mut CoreCtx<'_>,
        tag: OpTag,
        kind: LineFlush,
        at: Addr,
    ) -> Progress {
        let pieces = match self.stage {
            Stage::Ready(p) => p,
            // The SDM checks a flush like a one-byte load.
            _ => match self.translate_main(now, ctx, at, 1, Access::Read) {
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
        if !self.sb_room(1) {
            return Progress::Blocked(Wait::SbFull);
        }
        let seq = self.take_seq();
        let pa = pieces.first;
        match kind {
            LineFlush::Clflush => self.sb.push(seq, SbKind::Clflush { pa }),
            LineFlush::Clflushopt | LineFlush::Clwb => self.flushes.push_back(FlushEntry {
                seq,
                pa,
                clwb: kind == LineFlush::Clwb,
                id: None,
            }),
        }
        Progress::Issued
    }

    /// The serializing request `id` (WBINVD, a kernel step) completed. `false` if it is not
    /// the one in flight.
    pub(super) fn serial_request_done(&mut self, id: u64) -> bool {
        match &mut self.serial {
            Some((in_flight, done)) if *in_flight == id => {
                *done = true;
                true
            }
            _ => false,
        }
    }

    fn serial_done(&self) -> bool {
        matches!(self.serial, Some((_, true)))
    }

    pub(super) fn step_wbinvd(&mut self, now: Cycle, ctx: &mut CoreCtx<'_>) -> Progress {
        if let Stage::Serial = self.stage {
            if self.serial_done() {
                self.serial = None;
                return Progress::Issued;
            }
            return Progress::Blocked(Wait::Wbinvd);
        }
        if !self.quiesced() {
            return Progress::Blocked(Wait::Drain);
        }
        // WBINVD ignores the address; 0 is valid on every layout.
        match self.submit(
            now,
            ctx.machine,
            ReqTag::Serial,
            PhysAddr::new(0),
            CoreOp::Wbinvd,
        ) {
            Some(id) => {
                self.serial = Some((id, false));
                self.stage = Stage::Serial;
                Progress::Blocked(Wait::Wbinvd)
            }
            None => Progress::Blocked(Wait::Refused),
        }
    }

    pub(super) fn step_barrier(&mut self, now: Cycle, ctx: &mut CoreCtx<'_>, id: u32) -> Progress {
        let occ = match self.stage {
            Stage::BarrierWait { occ, .. } => occ,
            _ => {
                if !self.quiesced() {
                    return Progress::Blocked(Wait::Drain);
                }
                let occ = ctx.barriers.arrive(id, self.index, now);
                self.stage = Stage::BarrierWait { id, occ };
                occ
            }
        };
        match ctx.barriers.released(id, occ) {
            Some(at) if now >= at => Progress::Issued,
            Some(at) => {
                self.wake_at(at);
                Progress::Blocked(Wait::Barrier)
            }
            None => Progress::Blocked(Wait::Barrier),
        }
    }

    /// Executes PCONFIG at `now`. A successful programming changes the key table at its
    /// completion, and the memory system reports that change to the checker then.
    fn execute_pconfig(
        &mut self,
        now: Cycle,
        ctx: &mut CoreCtx<'_>,
        call: &PconfigCall,
    ) -> (Cycle, PconfigOutcome) {
        let r = ctx.machine.memory_mut().pconfig(now, call);
        (r.done.max(now.plus(1)), r.outcome)
    }

    pub(super) fn step_pconfig(
        &mut self,
        now: Cycle,
        ctx: &mut CoreCtx<'_>,
        i: usize,
        tag: OpTag,
    ) -> Progress {
        if let Stage::PconfigWait { done, .. } = self.stage {
            if now < done {
                self.wake_at(done);
                return Progress::Blocked(Wait::Pconfig);
            }
            if let Stage::PconfigWait { outcome, .. } =
                std::mem::replace(&mut self.stage, Stage::Fresh)
            {
                self.record(ctx, now, tag, OpOutcome::Pconfig(outcome));
            }
            return Progress::Issued;
        }
        if !self.quiesced() {
            return Progress::Blocked(Wait::Drain);
        }
        let Node::Op(OpKind::Pconfig { call }) = &self.flat.nodes[i] else {
            return Progress::Issued;
        };
        let mut call = call.clone();
        // The instruction sees the program's privilege, whatever the call claims.
        call.privileged &= self.credentials.ring0;
        let (done, outcome) = self.execute_pconfig(now, ctx, &call);
        self.stage = Stage::PconfigWait { done, outcome };
        self.wake_at(done);
        Progress::Blocked(Wait::Pconfig)
    }

    pub(super) fn step_kernel(
        &mut self,
        now: Cycle,
        ctx: &mut CoreCtx<'_>,
        i: usize,
        tag: OpTag,
    ) -> Progress {
        if let Stage::Fresh = self.stage {
            if !self.quiesced() {
                return Progress::Blocked(Wait::Drain);
            }
            self.stage = Stage::KernelEntry {
                until: now.plus(self.cfg.syscall_cycles),
            };
        }
        if let Stage::KernelEntry { until } = self.stage {
            if now < until {
                self.wake_at(until);
                return Progress::Blocked(Wait::Syscall);
            }
            let Node::Op(OpKind::Kernel(call)) = &self.flat.nodes[i] else {
                return Progress::Issued;
            };
            let syscall = ctx.kernel.begin(now, self.id, self.credentials, call);
            self.stage = Stage::Kernel(Box::new(KernelRun {
                syscall,
                next: 0,
                outcomes: Vec::new(),
                step: KStep::Start,
            }));
        }
        let Stage::Kernel(mut run) = std::mem::replace(&mut self.stage, Stage::Fresh) else {
            return Progress::Issued;
        };
        match self.run_kernel(now, ctx, &mut run) {
            Err(why) => {
                self.stage = Stage::Kernel(run);
                Progress::Blocked(why)
            }
            Ok(()) => {
                let end = ctx.kernel.finish(run.syscall, &run.outcomes);
                // This core's next op may issue in this very cycle: its own TLB first; the
                // system shoots the pages down everywhere else after this core's cycle.
                self.shoot_down(&end.shootdown, true);
                ctx.shootdown.extend_from_slice(&end.shootdown);
                self.record(ctx, now, tag, OpOutcome::Kernel(end.result));
                Progress::Issued
            }
        }
    }

    /// Performs a system call's steps in order, each after the previous completed. `Ok` when
    /// all are done.
    fn run_kernel(
        &mut self,
        now: Cycle,
        ctx: &mut CoreCtx<'_>,
        run: &mut KernelRun,
    ) -> Result<(), Wait> {
        loop {
            let Some(step) = run.syscall.steps.get(run.next) else {
                return Ok(());
            };
            match &mut run.step {
                KStep::Start => match step {
                    KernelStep::Flush(pa) | KernelStep::ZeroLine(pa) => {
                        let pa = *pa;
                        if !self.pa_ok(pa) {
                            // A kernel bug; skipping it beats taking the machine down.
                            run.next += 1;
                            continue;
                        }
                        let (addr, op) = match step {
                            KernelStep::ZeroLine(_) => (
                                pa.line().base(),
                                CoreOp::Store {
                                    len: LINE_BYTES as u8,
                                    data: [0; LINE_BYTES],
                                },
                            ),
                            _ => (pa, CoreOp::Clflush),
                        };
                        match self.submit(now, ctx.machine, ReqTag::Serial, addr, op) {
                            Some(id) => {
                                self.serial = Some((id, false));
                                run.step = KStep::Wait;
                                return Err(Wait::Kernel);
                            }
                            None => return Err(Wait::Refused),
                        }
                    }
                    KernelStep::Pconfig { call, retries } => {
                        let left = *retries;
                        let (done, outcome) = self.execute_pconfig(now, ctx, call);
                        run.step = KStep::Pconfig {
                            done,
                            outcome,
                            left,
                        };
                    }
                },
                KStep::Wait => {
                    if !self.serial_done() {
                        return Err(Wait::Kernel);
                    }
                    self.serial = None;
                    run.next += 1;
                    run.step = KStep::Start;
                }
                KStep::Pconfig {
                    done,
                    outcome,
                    left,
                } => {
                    if now < *done {
                        self.wake_at(*done);
                        return Err(Wait::Kernel);
                    }
                    let retry_at = match outcome {
                        PconfigOutcome::Status(PconfigStatus::DeviceBusy) => Some(
                            ctx.machine
                                .memory_mut()
                                .pconfig_unit()
                                .lock_free_at()
                                .max(now),
                        ),
                        PconfigOutcome::Status(PconfigStatus::EntropyError) => Some(now),
                        _ => None,
                    };
                    match retry_at {
                        Some(at) if *left > 0 => {
                            run.step = KStep::Retry {
                                at,
                                left: *left - 1,
                            };
                        }
                        _ => {
                            run.outcomes.push(outcome.clone());
                            run.next += 1;
                            run.step = KStep::Start;
                        }
                    }
                }
                KStep::Retry { at, left } => {
                    if now < *at {
                        self.wake_at(*at);
                        return Err(Wait::Kernel);
                    }
                    let left = *left;
                    let KernelStep::Pconfig { call, .. } = step else {
                        run.step = KStep::Start;
                        continue;
                    };
                    let (done, outcome) = self.execute_pconfig(now, ctx, call);
                    run.step = KStep::Pconfig {
                        done,
                        outcome,
                        left,
                    };
                }
            }
        }
    }
}
