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
//! **Translation.** `Addr::Phys` is used as is. `Addr::Virt` goes through the TLB (fully
//! associative, LRU, `tlb_entries` entries of 4 KiB pages); a miss stops issue for
//! `page_walk_cycles`, then [`Kernel::walk`] is asked (at the end of the walk, so the walk sees
//! page tables as they are then) and the entry is cached (faults are not). `Pte::permits`
//! decides faults. `Addr::DirectMapOf(va)` asks [`Kernel::direct_map_of`] (free of cost) and
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

mod flat;
mod store_buffer;
mod tlb;

use crate::kernel::{Access, Kernel, KernelStep, Pte, Syscall};
use crate::machine::{CoreConfig, Machine};
use crate::program::{
    Addr, Credentials, Fault, FaultKind, LineFlush, OpOutcome, OpResult, OpTag, Program,
};
use cache_model::hierarchy::{CoreOp, CoreRequest, CoreResponse};
use cache_model::{CacheId, Level};
use flat::{Cursor, Flat, Node, OP_KINDS, OpView, Span};
use mem_ctrl::pconfig::{PconfigCall, PconfigOutcome, PconfigStatus};
use sim_core::{
    AddressLayout, CoreId, Cycle, LINE_BYTES, LineBytes, PAGE_SHIFT, PhysAddr, StatsReport,
};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use store_buffer::{SbKind, StoreBuffer, range_mask};
use tlb::Tlb;

// Request ids: core in bits 56.., purpose in bits 52..56, a per-core counter below. Unique
// machine-wide, and the purpose routes a response without a lookup table.
const KIND_SHIFT: u32 = 52;
const COUNTER_MASK: u64 = (1 << KIND_SHIFT) - 1;
const KIND_LOAD: u64 = 1;
const KIND_SB: u64 = 2;
const KIND_FLUSH: u64 = 3;
const KIND_SPEC: u64 = 4;
const KIND_SERIAL: u64 = 5;

const PAGE_MASK: u64 = (1 << PAGE_SHIFT) - 1;

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
    pub shootdown: &'a mut Vec<u64>,
}

/// Why issue is stopped.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Wait {
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
    const ALL: [Wait; 13] = [
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

    fn index(self) -> usize {
        self as usize
    }

    /// Statistic name.
    fn name(self) -> &'static str {
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
    fn describe(self) -> &'static str {
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
enum Progress {
    /// It issued (completed its issue stage); the cursor moves on.
    Issued,
    /// It cannot go further this cycle.
    Blocked(Wait),
}

/// One line piece of an access.
#[derive(Copy, Clone, Debug, Default)]
struct Piece {
    pa: PhysAddr,
    len: u8,
    /// Offset of the piece's first byte in the access.
    off: u8,
}

/// A translated access: its first byte's physical address and its line pieces (0 to 2).
#[derive(Copy, Clone, Debug, Default)]
struct Pieces {
    first: PhysAddr,
    p: [Piece; 2],
    n: u8,
}

impl Pieces {
    fn as_slice(&self) -> &[Piece] {
        &self.p[..usize::from(self.n)]
    }
}

/// A translation's outcome.
enum Xl {
    Ok(Pieces),
    Fault(Fault),
    /// A page walk is under way.
    Wait,
}

/// A translation in progress (kept across cycles while a page walk runs).
#[derive(Copy, Clone, Debug, Default)]
struct XlateState {
    dm_va: Option<u64>,
    ptes: [Option<Pte>; 2],
    walk_until: Option<Cycle>,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum PieceState {
    /// Not sent yet (or to be sent again after a replay).
    Pending,
    InFlight(u64),
    Done,
}

#[derive(Copy, Clone, Debug)]
struct LqPiece {
    pa: PhysAddr,
    len: u8,
    off: u8,
    state: PieceState,
}

/// A load in the load queue.
#[derive(Debug)]
struct LoadEntry {
    seq: u64,
    tag: OpTag,
    first: PhysAddr,
    len: u8,
    pieces: [LqPiece; 2],
    n: u8,
    /// The value, in address order.
    bytes: LineBytes,
    /// The store-buffer check is still to be made (a new load, or a replay).
    exec: bool,
    /// Counted once as a forwarding stall.
    partial_seen: bool,
    /// When the value is available (a forwarded load: the cycle after).
    ready_at: Cycle,
    /// Some piece completed while an older load was outstanding: re-check when oldest.
    check: bool,
}

impl LoadEntry {
    fn new(seq: u64, tag: OpTag, pieces: &Pieces, len: u8) -> LoadEntry {
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

    fn pieces(&self) -> &[LqPiece] {
        &self.pieces[..usize::from(self.n)]
    }

    /// The value is bound.
    fn complete(&self, now: Cycle) -> bool {
        !self.exec
            && self.ready_at <= now
            && self.pieces().iter().all(|p| p.state == PieceState::Done)
    }

    /// Forwarded or every piece sent.
    fn dispatched(&self) -> bool {
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
enum Dispatch {
    /// Forwarded, or every piece accepted by the hierarchy.
    Done,
    /// Partly covered by older buffered stores: waits for them to drain.
    Partial,
    /// The hierarchy refused a piece: retry next cycle.
    Refused,
}

/// A CLFLUSHOPT or CLWB beside the store buffer.
#[derive(Debug)]
struct FlushEntry {
    seq: u64,
    pa: PhysAddr,
    clwb: bool,
    /// The request, once sent.
    id: Option<u64>,
}

/// A mispredicted path being issued.
#[derive(Debug)]
struct Shadow {
    resolve_at: Cycle,
    /// The shadow met its end or an op that ends it; the core waits for the resolution.
    stopped: bool,
    /// Shadow ops issued (all squashed at the resolution).
    issued: u64,
    /// A speculative load whose later pieces the hierarchy refused.
    sub: Option<(Pieces, u8)>,
}

/// A system call's progress through its steps.
#[derive(Debug)]
struct KernelRun {
    syscall: Syscall,
    next: usize,
    outcomes: Vec<PconfigOutcome>,
    step: KStep,
}

#[derive(Debug)]
enum KStep {
    Start,
    /// A flush or zeroing store in flight.
    Wait,
    /// A PCONFIG executed; `left` retries remain.
    Pconfig {
        done: Cycle,
        outcome: PconfigOutcome,
        left: u32,
    },
    /// A retry waits for the lock (DEVICE_BUSY) or the next cycle (ENTROPY_ERROR).
    Retry {
        at: Cycle,
        left: u32,
    },
}

/// Progress of the op at the cursor.
#[derive(Debug)]
enum Stage {
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

/// Per-core counters.
#[derive(Debug, Default)]
struct CoreStats {
    ops: [u64; OP_KINDS.len()],
    load_requests: u64,
    loads_forwarded: u64,
    load_replays: u64,
    loads_partial_forward: u64,
    stores_drained: u64,
    tlb_hits: u64,
    tlb_misses: u64,
    faults: u64,
    speculative_loads: u64,
    speculative_dropped: u64,
    prefetches_dropped: u64,
    shadow_ops_squashed: u64,
    shadow_stores_discarded: u64,
    shadow_loads_forwarded: u64,
    refusals: u64,
    issue_cycles: u64,
    wait: [u64; Wait::ALL.len()],
}

/// Barrier bookkeeping, shared by every core.
#[derive(Debug, Default)]
pub(crate) struct Barriers {
    map: BTreeMap<u32, BarrierState>,
}

#[derive(Debug)]
struct BarrierState {
    /// Core indices, ascending.
    participants: Vec<usize>,
    arrivals: Vec<u64>,
    /// Occurrences every participant has reached.
    completed: u64,
    /// When the last completed occurrence releases its waiters.
    released_at: Cycle,
}

impl Barriers {
    /// The barriers of `cores`' programs: each id's participants are the cores whose program
    /// can reach it.
    pub fn new(cores: &[Core]) -> Barriers {
        let mut map: BTreeMap<u32, BarrierState> = BTreeMap::new();
        for (c, core) in cores.iter().enumerate() {
            for id in core.flat.barrier_ids() {
                let b = map.entry(id).or_insert_with(|| BarrierState {
                    participants: Vec::new(),
                    arrivals: Vec::new(),
                    completed: 0,
                    released_at: Cycle::ZERO,
                });
                b.participants.push(c);
                b.arrivals.push(0);
            }
        }
        Barriers { map }
    }

    /// Core `core` arrives at barrier `id` at `now`; returns the occurrence it waits for.
    fn arrive(&mut self, id: u32, core: usize, now: Cycle) -> u64 {
        let Some(b) = self.map.get_mut(&id) else {
            return 0;
        };
        let Some(k) = b.participants.iter().position(|&c| c == core) else {
            return 0;
        };
        b.arrivals[k] += 1;
        let occ = b.arrivals[k];
        let min = b.arrivals.iter().copied().min().unwrap_or(0);
        if min > b.completed {
            b.completed = min;
            // Everyone resumes together, the cycle after the last arrival.
            b.released_at = now.plus(1);
        }
        occ
    }

    /// When occurrence `occ` of barrier `id` releases its waiters, once everyone has arrived.
    fn released(&self, id: u32, occ: u64) -> Option<Cycle> {
        match self.map.get(&id) {
            // A waiter at `occ` keeps `completed <= occ`: this is its release.
            Some(b) if b.completed >= occ => Some(b.released_at),
            Some(_) => None,
            None => Some(Cycle::ZERO),
        }
    }

    /// Every barrier's arrivals, for dumps.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for (id, b) in &self.map {
            if !s.is_empty() {
                s.push_str("; ");
            }
            let _ = write!(s, "barrier {id}: ");
            for (k, (c, a)) in b.participants.iter().zip(&b.arrivals).enumerate() {
                if k > 0 {
                    s.push_str(", ");
                }
                let _ = write!(s, "core {c} arrived {a}x");
            }
        }
        if s.is_empty() {
            s.push_str("none");
        }
        s
    }
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
    pub fn new(
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
    pub fn done_at(&self) -> Option<Cycle> {
        self.done_at
    }

    /// The next cycle this core must be ticked, besides the machine's events (which deliver
    /// its responses). Call after the cycle's every core has ticked.
    pub fn next_wake(&self, barriers: &Barriers) -> Cycle {
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

    /// Drops `pages` (4 KiB-aligned virtual addresses) from the TLB.
    pub fn shoot_down(&mut self, pages: &[u64]) {
        for &va in pages {
            self.tlb.invalidate(va >> PAGE_SHIFT);
        }
    }

    /// A response from the hierarchy, at its completion cycle `now`.
    pub fn on_response(&mut self, now: Cycle, r: &CoreResponse) {
        match (r.id >> KIND_SHIFT) & 0xf {
            KIND_LOAD => self.load_piece_done(now, r),
            KIND_SB if self.sb.in_flight == Some(r.id) => {
                self.sb.in_flight = None;
                if let Some(e) = self.sb.pop_front()
                    && matches!(e.kind, SbKind::Store { .. })
                {
                    self.stats.stores_drained += 1;
                }
            }
            KIND_FLUSH => {
                if let Some(k) = self.flushes.iter().position(|f| f.id == Some(r.id)) {
                    self.flushes.remove(k);
                }
            }
            KIND_SPEC => self.spec_in_flight = self.spec_in_flight.saturating_sub(1),
            KIND_SERIAL => {
                if let Some((id, done)) = &mut self.serial
                    && *id == r.id
                {
                    *done = true;
                }
            }
            // Unknown ids (none are expected) are ignored.
            _ => {}
        }
    }

    fn load_piece_done(&mut self, now: Cycle, r: &CoreResponse) {
        let found = self.lq.iter().enumerate().find_map(|(i, e)| {
            e.pieces()
                .iter()
                .position(|p| p.state == PieceState::InFlight(r.id))
                .map(|k| (i, k))
        });
        let Some((idx, k)) = found else {
            return;
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
    }

    /// One cycle: retire final loads, re-send replayed ones, issue, drain the store buffer,
    /// send CLFLUSHOPTs/CLWBs.
    pub fn tick(&mut self, now: Cycle, ctx: &mut CoreCtx<'_>) {
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

    fn stall(&mut self, now: Cycle, why: Wait) {
        if self.waiting.map(|(w, _)| w) != Some(why) {
            self.close_wait(now);
            self.waiting = Some((why, now));
        }
    }

    fn close_wait(&mut self, now: Cycle) {
        if let Some((w, since)) = self.waiting.take() {
            self.stats.wait[w.index()] += now.since(since);
        }
    }

    fn take_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn new_id(&mut self, kind: u64) -> u64 {
        let n = self.next_req & COUNTER_MASK;
        self.next_req += 1;
        (u64::from(self.id.get()) << 56) | (kind << KIND_SHIFT) | n
    }

    /// Offers a request; on refusal, counts it and asks to be ticked next cycle.
    fn submit(
        &mut self,
        now: Cycle,
        machine: &mut Machine,
        kind: u64,
        pa: PhysAddr,
        op: CoreOp,
    ) -> Option<u64> {
        let id = self.new_id(kind);
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

    // -----------------------------------------------------------------------------------------
    // Translation.

    /// Splits `[start, start + len)` into line pieces, mapping each through `map`; `Err` names
    /// the first address whose physical address is outside the machine.
    fn build_pieces(
        &self,
        start: u64,
        len: usize,
        map: impl Fn(u64) -> u64,
    ) -> Result<Pieces, u64> {
        let first = PhysAddr::new(map(start));
        if !self.pa_ok(first) {
            return Err(start);
        }
        let mut p = Pieces {
            first,
            ..Pieces::default()
        };
        let (mut off, mut a) = (0usize, start);
        while off < len && usize::from(p.n) < p.p.len() {
            let take = (LINE_BYTES - (a as usize & (LINE_BYTES - 1))).min(len - off);
            let pa = PhysAddr::new(map(a));
            if !self.pa_ok(pa) {
                return Err(a);
            }
            p.p[usize::from(p.n)] = Piece {
                pa,
                len: take as u8,
                off: off as u8,
            };
            p.n += 1;
            off += take;
            a = a.wrapping_add(take as u64);
        }
        Ok(p)
    }

    /// Translates an access of `len` bytes (cut to 64) at `at`. `st` keeps a translation's
    /// progress across cycles.
    fn translate(
        &mut self,
        now: Cycle,
        kernel: &Kernel,
        at: Addr,
        len: u8,
        access: Access,
        st: &mut XlateState,
    ) -> Xl {
        let len = usize::from(len).min(LINE_BYTES);
        let (start, virt) = match at {
            Addr::Phys(pa) => (pa.raw(), false),
            Addr::Virt(va) => (va, true),
            Addr::DirectMapOf(user_va) => {
                let va = match st.dm_va {
                    Some(va) => va,
                    None => match kernel.direct_map_of(user_va) {
                        Ok(va) => {
                            st.dm_va = Some(va);
                            va
                        }
                        Err(f) => return Xl::Fault(f),
                    },
                };
                (va, true)
            }
        };
        let not_mapped = |addr| {
            Xl::Fault(Fault {
                addr,
                kind: FaultKind::NotMapped,
            })
        };
        let Some(last) = start.checked_add(len.max(1) as u64 - 1) else {
            return not_mapped(start);
        };
        if !virt {
            return match self.build_pieces(start, len, |a| a) {
                Ok(p) => Xl::Ok(p),
                Err(a) => not_mapped(a),
            };
        }
        let pages = [start >> PAGE_SHIFT, last >> PAGE_SHIFT];
        let n = if pages[0] == pages[1] { 1 } else { 2 };
        for k in 0..n {
            let fault_va = if k == 0 {
                start
            } else {
                pages[1] << PAGE_SHIFT
            };
            if st.ptes[k].is_none() {
                if st.walk_until.is_none() {
                    if let Some(pte) = self.tlb.lookup(pages[k]) {
                        self.stats.tlb_hits += 1;
                        st.ptes[k] = Some(pte);
                    } else {
                        self.stats.tlb_misses += 1;
                        st.walk_until = Some(now.plus(self.cfg.page_walk_cycles));
                    }
                }
                if let Some(until) = st.walk_until {
                    if now < until {
                        self.wake_at(until);
                        return Xl::Wait;
                    }
                    st.walk_until = None;
                    match kernel.walk(fault_va) {
                        Ok(pte) => {
                            self.tlb.insert(pages[k], pte);
                            st.ptes[k] = Some(pte);
                        }
                        Err(kind) => {
                            return Xl::Fault(Fault {
                                addr: fault_va,
                                kind,
                            });
                        }
                    }
                }
            }
            if let Some(pte) = st.ptes[k]
                && let Err(kind) = pte.permits(access, self.credentials.ring0)
            {
                return Xl::Fault(Fault {
                    addr: fault_va,
                    kind,
                });
            }
        }
        let ptes = st.ptes;
        let map = |a: u64| {
            let k = usize::from(a >> PAGE_SHIFT != pages[0]);
            ptes[k]
                .map_or(0, |p| p.frame.raw())
                .wrapping_add(a & PAGE_MASK)
        };
        match self.build_pieces(start, len, map) {
            Ok(p) => Xl::Ok(p),
            Err(a) => not_mapped(a),
        }
    }

    fn translate_main(
        &mut self,
        now: Cycle,
        ctx: &CoreCtx<'_>,
        at: Addr,
        len: u8,
        access: Access,
    ) -> Xl {
        let mut st = self.xlate;
        let r = self.translate(now, ctx.kernel, at, len, access, &mut st);
        self.xlate = st;
        r
    }

    fn translate_shadow(
        &mut self,
        now: Cycle,
        ctx: &CoreCtx<'_>,
        at: Addr,
        len: u8,
        access: Access,
    ) -> Xl {
        let mut st = self.shadow_xlate;
        let r = self.translate(now, ctx.kernel, at, len, access, &mut st);
        self.shadow_xlate = st;
        r
    }

    // -----------------------------------------------------------------------------------------
    // The load queue.

    /// Retires final loads, oldest first, recording their results; re-checks a load that
    /// completed while an older one was outstanding, and replays it if its view is gone.
    fn retire_loads(&mut self, now: Cycle, ctx: &mut CoreCtx<'_>) {
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
    fn dispatch_loads(&mut self, now: Cycle, machine: &mut Machine) {
        for idx in 0..self.lq.len() {
            if !self.lq[idx].dispatched()
                && self.dispatch_load(idx, now, machine) == Dispatch::Refused
            {
                break;
            }
        }
    }

    /// Store-to-load forwarding, then the hierarchy, for load queue entry `idx`.
    fn dispatch_load(&mut self, idx: usize, now: Cycle, machine: &mut Machine) -> Dispatch {
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
            match self.submit(now, machine, KIND_LOAD, p.pa, CoreOp::Load { len: p.len }) {
                Some(id) => {
                    self.stats.load_requests += 1;
                    self.lq[idx].pieces[k].state = PieceState::InFlight(id);
                }
                None => return Dispatch::Refused,
            }
        }
        Dispatch::Done
    }

    // -----------------------------------------------------------------------------------------
    // The store buffer and CLFLUSHOPT/CLWB.

    fn drain_store_buffer(&mut self, now: Cycle, machine: &mut Machine) {
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
            if let Some(id) = self.submit(now, machine, KIND_SB, pa, op) {
                self.sb.in_flight = Some(id);
            }
            break;
        }
        if popped {
            // A marker left without a response: issue may be able to go on next cycle.
            self.wake_at(now.plus(1));
        }
    }

    fn issue_flushes(&mut self, now: Cycle, machine: &mut Machine) {
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
            match self.submit(now, machine, KIND_FLUSH, pa, op) {
                Some(id) => self.flushes[k].id = Some(id),
                None => break,
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Issue.

    /// Issues up to `issue_width` ops; returns how many.
    fn issue(&mut self, now: Cycle, ctx: &mut CoreCtx<'_>) -> u32 {
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
            let view = self.flat.view(i);
            match self.step(now, ctx, i, view) {
                Progress::Issued => {
                    self.stats.ops[view.kind_index()] += 1;
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

    /// Tries to issue op `i` (the op at the cursor), `view` being its copy.
    fn step(&mut self, now: Cycle, ctx: &mut CoreCtx<'_>, i: usize, view: OpView) -> Progress {
        let tag = self.flat.tags[i];
        match view {
            OpView::Load { at, len } => self.step_load(now, ctx, tag, at, len),
            OpView::Store { at, len, data } => self.step_store(now, ctx, tag, at, len, &data),
            OpView::Flush { kind, at } => self.step_flush(now, ctx, tag, kind, at),
            OpView::Wbinvd => self.step_wbinvd(now, ctx),
            OpView::Mfence => {
                if self.quiesced() {
                    Progress::Issued
                } else {
                    Progress::Blocked(Wait::Drain)
                }
            }
            OpView::Sfence => {
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
            OpView::Prefetch { at } => self.step_prefetch(now, ctx, at),
            OpView::SpeculativeLoad { at, len } => self.step_speculative(now, ctx, at, len),
            OpView::Mispredict { shadow } => {
                self.start_shadow(now, shadow);
                Progress::Issued
            }
            OpView::Compute { cycles } => {
                // Never NEVER: an endless compute must meet `cycles_max`, not look like a
                // deadlock.
                self.busy_until = now.plus(cycles).min(Cycle::new(u64::MAX - 1));
                Progress::Issued
            }
            OpView::Barrier { id } => self.step_barrier(now, ctx, id),
            OpView::Pconfig => self.step_pconfig(now, ctx, i, tag),
            OpView::Kernel => self.step_kernel(now, ctx, i, tag),
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

    fn step_flush(
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
            .submit(now, ctx.machine, KIND_SPEC, pieces.first, CoreOp::Prefetch)
            .is_some()
        {
            self.spec_in_flight += 1;
            Progress::Issued
        } else {
            self.stage = Stage::Ready(pieces);
            Progress::Blocked(Wait::Refused)
        }
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
            if self.submit(now, machine, KIND_SPEC, p.pa, op).is_none() {
                return Err(k);
            }
            self.spec_in_flight += 1;
        }
        Ok(())
    }

    fn step_speculative(
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

    fn serial_done(&self) -> bool {
        matches!(self.serial, Some((_, true)))
    }

    fn step_wbinvd(&mut self, now: Cycle, ctx: &mut CoreCtx<'_>) -> Progress {
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
            KIND_SERIAL,
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

    fn step_barrier(&mut self, now: Cycle, ctx: &mut CoreCtx<'_>, id: u32) -> Progress {
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

    fn step_pconfig(
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
        let Node::Pconfig { call } = &self.flat.nodes[i] else {
            return Progress::Issued;
        };
        let mut call = (**call).clone();
        // The instruction sees the program's privilege, whatever the call claims.
        call.privileged &= self.credentials.ring0;
        let (done, outcome) = self.execute_pconfig(now, ctx, &call);
        self.stage = Stage::PconfigWait { done, outcome };
        self.wake_at(done);
        Progress::Blocked(Wait::Pconfig)
    }

    fn step_kernel(&mut self, now: Cycle, ctx: &mut CoreCtx<'_>, i: usize, tag: OpTag) -> Progress {
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
            let Node::Kernel { call } = &self.flat.nodes[i] else {
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
                self.shoot_down(&end.shootdown);
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
                        match self.submit(now, ctx.machine, KIND_SERIAL, addr, op) {
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

    // -----------------------------------------------------------------------------------------
    // Mispredicted paths.

    fn start_shadow(&mut self, now: Cycle, shadow: Span) {
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
    fn squash(&mut self) {
        if let Some(sh) = self.shadow.take() {
            self.stats.shadow_ops_squashed += sh.issued;
            self.stats.shadow_stores_discarded += self.sb.squash_shadow() as u64;
        }
    }

    /// Issues the shadow's next op.
    fn shadow_step(&mut self, now: Cycle, ctx: &mut CoreCtx<'_>) -> Progress {
        let Some(i) = self.shadow_cursor.peek(&self.flat) else {
            self.stop_shadow();
            return Progress::Blocked(Wait::Branch);
        };
        let r = match self.flat.view(i) {
            OpView::Load { at, len } => self.shadow_load(now, ctx, at, len, true),
            OpView::SpeculativeLoad { at, len } => self.shadow_load(now, ctx, at, len, false),
            OpView::Store { at, len, data } => self.shadow_store(now, ctx, at, len, &data),
            OpView::Prefetch { at } => self.shadow_prefetch(now, ctx, at),
            OpView::Mispredict { shadow } => {
                // A wrong path inside the wrong path: follow it, then go on after it.
                self.shadow_cursor.advance();
                self.shadow_cursor.enter(shadow, i);
                if let Some(sh) = &mut self.shadow {
                    sh.issued += 1;
                }
                return Progress::Issued;
            }
            OpView::Compute { .. }
            | OpView::Mfence
            | OpView::Sfence
            | OpView::Flush { .. }
            | OpView::Wbinvd
            | OpView::Barrier { .. }
            | OpView::Pconfig
            | OpView::Kernel => {
                self.stop_shadow();
                return Progress::Blocked(Wait::Branch);
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
            .submit(now, ctx.machine, KIND_SPEC, pieces.first, CoreOp::Prefetch)
            .is_none()
        {
            return Err(Wait::Refused);
        }
        self.spec_in_flight += 1;
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // The end, dumps and statistics.

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

    /// Where the core is and what it waits for, for a stopped run's dump.
    pub fn describe(&self, now: Cycle) -> String {
        let mut s = String::new();
        match self.done_at {
            Some(at) => {
                let _ = write!(s, "program finished at cycle {at}");
            }
            None => {
                s.push_str("at ");
                self.cursor.describe(&self.flat, &mut s);
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
        self.sb.describe(&mut s);
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
        s
    }

    /// Statistics under `prefix` (`core.N`); `clock` is the run's current cycle.
    pub fn report_stats(&self, prefix: &str, clock: Cycle, report: &mut StatsReport) {
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
