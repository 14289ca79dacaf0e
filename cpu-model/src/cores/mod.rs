//! The cores: in-order issue of a [`Program`] against the real cache hierarchy, with a store
//! buffer, a load queue, a TLB, mispredicted-path shadows, fences, flushes, barriers, PCONFIG
//! and system calls. [`System`](crate::System) owns one core per hardware thread and steps
//! them; this module is what a core does in one cycle.
//!
//! ```text
//!   program ─► cursor ─► issue: in order, at most issue_width ops per cycle
//!   (repeat               │  translate: Phys as is, Virt through the TLB / page walk
//!    frames)              ├─► load queue ─────────────► Load ──────────────────┐
//!                         ├─► store buffer, in order ─► Store, Clflush ────────┤
//!                         ├─► beside it ──────────────► Clflushopt, Clwb ──────┼─► Hierarchy
//!                         └─► fire and forget ────────► Prefetch, SpecLoad ────┘
//! ```
//!
//! # Where it is
//!
//! This module holds the core's state, its cycle (`Core::tick`) and the routing of
//! responses; each concern has a room of its own:
//!
//! - `issue`: the per-cycle issue loop, the op at the cursor, loads, stores and prefetches at
//!   issue, and why issue waits;
//! - `translate`: TLB lookups, page walks and faults;
//! - `load_queue`: loads in flight, forwarding, and the machine-clear re-check (TSO);
//! - `store_buffer` (the buffer and forwarding) and `store_drain` (its drain, and
//!   CLFLUSHOPT/CLWB beside it);
//! - `serializing`: fences, flushes, WBINVD, barriers, PCONFIG and system calls;
//!   `barriers`: the bookkeeping barriers share across cores;
//! - `speculation`: mispredicted-path shadows and speculative loads;
//! - `describe`: counters, the dump of a stopped run, statistics;
//! - `flat` (the program as the core walks it), `indexed` (addresses and data that step with
//!   a repeat's iterations), `tlb`, and `request_id` (what a request id holds: the core and
//!   what the request is for, which routes its response).
//!
//! # What is modelled
//!
//! **Issue.** Ops issue in program order, at most `issue_width` per cycle. An op that cannot
//! issue (a resource is full, an older op must finish first, a request was refused) stops
//! issue for the cycle; younger ops never overtake it. `Repeat` blocks are walked with a stack
//! of frames and never unrolled; they take no issue slot themselves.
//!
//! **Loads.** A load is translated, then checked against the store buffer: if every byte is
//! supplied by older buffered stores (the youngest store wins, byte by byte) it completes from
//! the buffer the next cycle without touching the hierarchy; if only some bytes are, it waits
//! until those stores have drained (the x86 store-forwarding stall); otherwise it is sent to the
//! hierarchy as one `CoreOp::Load` per line it touches (a load crossing a line is split; one
//! crossing a page translates both pages). At most `outstanding_loads` loads sit in the load
//! queue at once (1 gives a blocking core); a load leaves the queue when it is *final*.
//!
//! **Load -> load order (x86-TSO), the machine-clear model.** With several loads in flight a
//! younger load can complete before an older one. Its value is bound when its request
//! completes, but it is not final until every older load is. At the moment it becomes the
//! oldest, if an older load was still outstanding when any of its pieces completed (or when
//! it forwarded), its bytes are re-checked against the core's current view: the buffered
//! stores older than it, then this core's L1D copy of the line (`Hierarchy::line`). If the
//! line has left the L1D (a remote store invalidated it, or it was evicted) or a byte differs,
//! the load is *replayed*: re-executed from the store-buffer check, as a processor clears the
//! pipeline when a snoop hits a completed but unretired load. A load that was the oldest when
//! it completed is final at once. Results ([`OpOutcome::Load`]) are recorded when a load is
//! final, at that cycle, so a core's load results appear in program order. Every valid cached
//! copy holds its line's current data (the hierarchy keeps no stale copies), so a re-check that
//! passes means the value equals memory at the re-check, which is after every older load: the
//! order is as if the loads had executed one after the other.
//!
//! **Stores and the store buffer.** A store is translated at issue (a fault is reported then
//! and the store dropped) and enters the store buffer as one entry per line piece; issue
//! stalls while the buffer is full (a store needing more entries than the buffer has enters an
//! empty buffer). The buffer drains in program order, **one request in flight at a time**
//! (a documented simplification: real buffers overlap the ownership requests of several
//! stores), and only once every older load is final (stores retire after older loads: without
//! this a younger store could become visible before an older load reads, which TSO forbids). A
//! store becomes globally visible when its `CoreOp::Store` completes.
//!
//! **Flushes and fences.** CLFLUSH goes through the store buffer, so it is ordered with stores
//! and other CLFLUSHes (SDM). CLFLUSHOPT and CLWB wait beside the buffer (they share its
//! capacity) and are sent once no older buffered store targets their line and no older SFENCE
//! is pending; several can be in flight, and they overtake older stores to other lines. MFENCE
//! (and every serializing op) stops issue until the store buffer is empty, the load queue is
//! empty and every CLFLUSHOPT/CLWB has completed. SFENCE enters the store buffer as a marker
//! that leaves once every older CLFLUSHOPT/CLWB has completed; younger stores and CLFLUSHes
//! queue behind it, younger CLFLUSHOPTs/CLWBs wait for it, loads pass it. WBINVD is
//! serializing, then waits for its `CoreOp::Wbinvd` to complete.
//!
//! **Prefetches and speculative loads** translate without faulting (an unmapped or forbidden
//! address drops them, counted) and are fire-and-forget: they do not count against
//! `outstanding_loads` and record nothing, but a refusal by the hierarchy (MSHRs full) holds
//! issue and is retried the next cycle.
//!
//! **Mispredicted branches.** `Mispredict { shadow }` issues, then the core issues the shadow's
//! ops at the issue width until the branch resolves, `branch_resolve_cycles` after the branch
//! issued. In the shadow, loads become speculative loads (a load wholly covered by buffered
//! stores, the shadow's own included, sends nothing), stores go to a speculative part of the
//! store buffer that never drains and is discarded, prefetches and speculative loads run, and
//! faults are suppressed; nothing records a result. Repeat blocks are walked and a nested
//! mispredict's own shadow is followed (it is wrong-path too). The shadow stops early at its
//! end or at an op that cannot run speculatively: fences, flushes, WBINVD, PCONFIG, system
//! calls, barriers, and `Compute` (a stand-in for dependent work, which would not get ahead of
//! the branch). Either way the correct path resumes, after the `Mispredict` op, at the
//! resolution cycle.
//!
//! **Compute** `{ cycles }` issues and then stops issue for that many cycles; memory and the
//! store buffer keep working. It costs O(1) however long it is (the system skips idle cycles).
//!
//! **Barriers** imply MFENCE, then wait until every participant has arrived at the same
//! occurrence: each core's k-th arrival meets the others' k-th. The participants of barrier
//! `id` are the cores whose program contains `Barrier { id }` anywhere it can run, repeat
//! bodies included; not inside a mispredict shadow (a barrier there ends the shadow and never
//! executes) or a repeat of 0 iterations. All waiters resume together the cycle after the last
//! arrival. A participant that ends its program without arriving leaves the others waiting
//! for ever: the system reports a deadlock.
//!
//! **PCONFIG** is serializing. The call's `privileged` is ANDed with the program's ring 0; the
//! memory system executes it at once, the core waits until it completes and records
//! [`OpOutcome::Pconfig`]; a successful programming changes the key table at its completion,
//! when the memory system reports the change (the core never talks to the checker).
//!
//! **System calls** are serializing; the core pays `syscall_cycles`, calls
//! [`Kernel::begin`], performs its steps one after the other through the hierarchy (CLFLUSH,
//! a 64-byte store of zeros, PCONFIG with retries after DEVICE_BUSY, once the key-table lock
//! frees, or ENTROPY_ERROR, at once), calls [`Kernel::finish`] with the PCONFIG outcomes, shoots
//! the pages it names down from every core's TLB and records [`OpOutcome::Kernel`].
//!
//! **Translation.** `Addr::Phys` is used as is, by ring-0 programs and the attacker's (a
//! ring-3 program faults with `privilege`). `Addr::Virt` goes through the TLB (fully
//! associative, LRU, `tlb_entries` entries of 4 KiB pages); a miss stops issue for
//! `page_walk_cycles`, then [`Kernel::walk_in`] is asked for the program's process (at the end
//! of the walk, so the walk sees page tables as they are then) and the entry is cached (faults
//! are not). `Pte::permits` decides faults. `Addr::DirectMapOf(va)` asks
//! [`Kernel::direct_map_of_in`] (free of cost) and
//! translates the result like any virtual address. A fault records an [`OpOutcome::Fault`]
//! at the cycle it is found and the program goes on.
//!
//! # Simplifications, and why
//!
//! - One store-buffer request in flight: simple, in order by construction, and conservative.
//! - Latency comes from the hierarchy only; there are no register dependencies, so loads are
//!   independent and `Compute` stands for work between them.
//! - A physical address outside the machine (beyond the KeyID bits or the installed DRAM)
//!   faults as `not_mapped` (the IR can express it; real hardware would raise a machine check).
//! - Access lengths above 64 bytes are cut to 64 (the IR's range is 1 to 64); a zero-length
//!   load completes the next cycle with no bytes, a zero-length store does nothing.
//! - Prefetches and speculative requests in flight keep a core from being finished (their
//!   fills change the caches), but not serializing ops.
//! - A flush records no result unless it faults.

mod barriers;
mod describe;
mod flat;
mod indexed;
mod issue;
mod kernel_run;
mod load_queue;
mod request_id;
mod serializing;
mod speculation;
mod store_buffer;
mod store_drain;
mod tlb;
mod translate;

pub(crate) use barriers::Barriers;

use crate::kernel::{Kernel, USER_SPACE_END};
use crate::machine::{CoreConfig, Machine};
use crate::program::{Credentials, Fault, OpOutcome, OpResult, OpTag, ProcessId, Program};
use cache_model::hierarchy::{CoreOp, CoreRequest, CoreResponse};
use describe::CoreStats;
use flat::{Cursor, Flat};
use issue::{Stage, Wait};
use load_queue::LoadEntry;
use request_id::{ReqId, ReqTag};
use sim_core::{AddressLayout, CoreId, Cycle, PhysAddr, VirtAddr};
use speculation::Shadow;
use std::collections::VecDeque;
use store_buffer::StoreBuffer;
use store_drain::FlushEntry;
use tlb::Tlb;
use translate::XlateState;

/// What the system lends a core for one cycle.
pub(crate) struct CoreCtx<'a> {
    pub machine: &'a mut Machine,
    pub kernel: &'a mut Kernel,
    pub results: &'a mut Vec<OpResult>,
    /// Which ops' load values to keep (indexed by tag; `None`: all). Other outcomes are
    /// always kept.
    pub keep_loads: Option<&'a [bool]>,
    pub barriers: &'a mut Barriers,
    /// Virtual pages whose translations a system call changed; the system drops them from
    /// every core's TLB right after this core's cycle.
    pub shootdown: &'a mut Vec<VirtAddr>,
}

/// One core. See the [module documentation](self).
#[derive(Debug)]
pub(crate) struct Core {
    id: CoreId,
    index: usize,
    cfg: CoreConfig,
    layout: AddressLayout,
    dram_bytes: u64,
    credentials: Credentials,
    flat: Flat,
    cursor: Cursor,
    stage: Stage,
    xlate: XlateState,
    /// Issue stops until then (compute).
    busy_until: Cycle,
    lq: VecDeque<LoadEntry>,
    sb: StoreBuffer,
    flushes: VecDeque<FlushEntry>,
    /// Prefetches and speculative loads in flight (fire and forget).
    spec_in_flight: u64,
    /// A WBINVD or kernel step in flight: (id, completed).
    serial: Option<(u64, bool)>,
    shadow: Option<Shadow>,
    shadow_cursor: Cursor,
    shadow_xlate: XlateState,
    tlb: Tlb,
    next_seq: u64,
    next_req: u64,
    /// The earliest cycle this core needs to be ticked again (responses aside).
    wake: Cycle,
    done_at: Option<Cycle>,
    /// Why issue is stopped, since when.
    waiting: Option<(Wait, Cycle)>,
    stats: CoreStats,
}

impl Core {
    /// Core `index` of a machine, running `program`.
    pub(crate) fn new(
        index: usize,
        program: &Program,
        cfg: &CoreConfig,
        layout: AddressLayout,
        dram_bytes: u64,
    ) -> Core {
        let flat = Flat::new(&program.ops);
        Core {
            id: CoreId::new(index as u32),
            index,
            cfg: cfg.clone(),
            layout,
            dram_bytes,
            credentials: program.credentials,
            cursor: Cursor::new(flat.root),
            flat,
            stage: Stage::Fresh,
            xlate: XlateState::default(),
            busy_until: Cycle::ZERO,
            lq: VecDeque::new(),
            sb: StoreBuffer::default(),
            flushes: VecDeque::new(),
            spec_in_flight: 0,
            serial: None,
            shadow: None,
            shadow_cursor: Cursor::default(),
            shadow_xlate: XlateState::default(),
            tlb: Tlb::new(cfg.tlb_entries as usize),
            next_seq: 0,
            next_req: 0,
            wake: Cycle::ZERO,
            done_at: None,
            waiting: None,
            stats: CoreStats::default(),
        }
    }

    /// The cycle the program ended (every op completed), once it has.
    pub(crate) fn done_at(&self) -> Option<Cycle> {
        self.done_at
    }

    /// The next cycle this core must be ticked, besides the machine's events (which deliver
    /// its responses). Call after the cycle's every core has ticked.
    pub(crate) fn next_wake(&self, barriers: &Barriers) -> Cycle {
        if self.done_at.is_some() {
            return Cycle::NEVER;
        }
        let mut w = self.wake;
        if let Stage::BarrierWait { id, occ } = self.stage
            && let Some(at) = barriers.released(id, occ)
        {
            w = w.min(at);
        }
        w
    }

    /// Drops `pages` (4 KiB-aligned virtual addresses) from the TLB: every one when the call
    /// came from this core's process, else only the kernel's (the direct map every process
    /// shares), as user addresses name another process's pages.
    pub(crate) fn shoot_down(&mut self, pages: &[VirtAddr], same_process: bool) {
        for &va in pages {
            if same_process || va >= USER_SPACE_END {
                self.tlb.invalidate(va.page_base());
            }
        }
    }

    /// The process this core's program runs in.
    pub(crate) fn process(&self) -> ProcessId {
        self.credentials.process
    }

    /// A response from the hierarchy, at its completion cycle `now`. Every response answers
    /// a request this core sent and still waits for; anything else is a model bug.
    pub(crate) fn on_response(&mut self, now: Cycle, r: &CoreResponse) {
        let awaited = match ReqId::decode(r.id) {
            Some(id) if id.core == self.id => match id.tag {
                ReqTag::Load => self.load_piece_done(now, r),
                ReqTag::StoreBuffer => self.store_buffer_head_done(r.id),
                ReqTag::Flush => self.flush_done(r.id),
                ReqTag::Speculative => self.speculative_done(),
                ReqTag::Serial => self.serial_request_done(r.id),
            },
            _ => false,
        };
        assert!(
            awaited,
            "{} at cycle {now}: response to unknown request id {:#x} ({:?})",
            self.id,
            r.id,
            ReqId::decode(r.id)
        );
    }

    /// One cycle: retire final loads, re-send replayed ones, issue, drain the store buffer,
    /// send CLFLUSHOPTs/CLWBs.
    pub(crate) fn tick(&mut self, now: Cycle, ctx: &mut CoreCtx<'_>) {
        self.wake = Cycle::NEVER;
        if self.done_at.is_some() {
            return;
        }
        self.retire_loads(now, ctx);
        self.dispatch_loads(now, ctx.machine);
        let issued = self.issue(now, ctx);
        if issued > 0 {
            self.stats.issue_cycles += 1;
        }
        self.drain_store_buffer(now, ctx.machine);
        self.issue_flushes(now, ctx.machine);
        let ready = self
            .lq
            .iter()
            .map(|e| e.ready_at)
            .filter(|&at| at > now)
            .min();
        if let Some(at) = ready {
            self.wake_at(at);
        }
        self.check_done(now);
        // Leave the cursor on its next op, so that a dump names it.
        self.cursor.peek(&self.flat);
    }

    fn wake_at(&mut self, at: Cycle) {
        self.wake = self.wake.min(at);
    }

    fn take_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn new_id(&mut self, tag: ReqTag) -> u64 {
        let id = ReqId {
            core: self.id,
            tag,
            seq: self.next_req,
        };
        self.next_req += 1;
        id.encode()
    }

    /// Offers a request; on refusal, counts it and asks to be ticked next cycle.
    fn submit(
        &mut self,
        now: Cycle,
        machine: &mut Machine,
        tag: ReqTag,
        pa: PhysAddr,
        op: CoreOp,
    ) -> Option<u64> {
        let id = self.new_id(tag);
        match machine.submit(now, CoreRequest::new(id, self.id, pa, op)) {
            Ok(()) => Some(id),
            Err(_) => {
                self.stats.refusals += 1;
                self.wake_at(now.plus(1));
                None
            }
        }
    }

    /// Nothing older is in flight: store buffer, load queue and CLFLUSHOPT/CLWB all empty.
    fn quiesced(&self) -> bool {
        self.sb.is_empty() && self.lq.is_empty() && self.flushes.is_empty()
    }

    /// Room in the store buffer for `need` entries (CLFLUSHOPT/CLWB and the speculative
    /// part share it). An empty buffer takes anything, so a split store always fits.
    fn sb_room(&self, need: u8) -> bool {
        let used = self.sb.len() + self.flushes.len() + self.sb.shadow_len();
        used == 0 || used + usize::from(need) <= self.cfg.store_buffer_entries as usize
    }

    fn pa_ok(&self, pa: PhysAddr) -> bool {
        self.layout.check_phys_addr(pa.raw()).is_ok()
            && self.layout.dram_addr(pa).raw() < self.dram_bytes
    }

    fn record(&self, ctx: &mut CoreCtx<'_>, now: Cycle, tag: OpTag, outcome: OpOutcome) {
        if let (OpOutcome::Load { .. }, Some(keep)) = (&outcome, ctx.keep_loads)
            && !keep.get(tag.0 as usize).copied().unwrap_or(false)
        {
            return;
        }
        ctx.results.push(OpResult {
            core: self.id,
            tag,
            cycle: now,
            outcome,
        });
    }

    fn fault(&mut self, ctx: &mut CoreCtx<'_>, now: Cycle, tag: OpTag, fault: Fault) {
        self.stats.faults += 1;
        self.record(ctx, now, tag, OpOutcome::Fault(fault));
    }

    /// The program has ended once nothing is left to issue and nothing is in flight.
    fn check_done(&mut self, now: Cycle) {
        if self.shadow.is_none()
            && now >= self.busy_until
            && matches!(self.stage, Stage::Fresh)
            && self.quiesced()
            && self.spec_in_flight == 0
            && self.serial.is_none()
            && self.cursor.peek(&self.flat).is_none()
        {
            self.done_at = Some(now);
            self.close_wait(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(core: &Core, id: u64) -> CoreResponse {
        CoreResponse {
            id,
            core: core.id,
            done: Cycle::new(7),
            data: None,
            from: None,
        }
    }

    fn core() -> Core {
        let cfg = CoreConfig::default();
        Core::new(
            1,
            &Program::default(),
            &cfg,
            AddressLayout::default(),
            1 << 30,
        )
    }

    #[test]
    #[should_panic(
        expected = "core 1 at cycle 7: response to unknown request id 0x1f00000000000000"
    )]
    fn a_response_with_an_unknown_tag_is_a_model_bug() {
        let mut c = core();
        let r = response(&c, 0x1f00_0000_0000_0000);
        c.on_response(Cycle::new(7), &r);
    }

    #[test]
    #[should_panic(
        expected = "core 1 at cycle 7: response to unknown request id 0x120000000000005"
    )]
    fn a_response_nothing_waits_for_is_a_model_bug() {
        let mut c = core();
        let id = ReqId {
            core: c.id,
            tag: ReqTag::StoreBuffer,
            seq: 5,
        };
        let r = response(&c, id.encode());
        c.on_response(Cycle::new(7), &r);
    }
}
