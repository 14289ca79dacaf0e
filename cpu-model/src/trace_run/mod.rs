//! Full-system trace mode: one trace-driven core feeding a whole machine (MESI hierarchy,
//! memory controllers with AES-XTS, DRAM timing).
//!
//! ```text
//!   trace ──► address translation ──► split into line pieces ──► core 0 ──► Machine
//!             (first touch: page -> frame)      (one per cycle,           (caches,
//!                                                at most N in flight)      memory, DRAM)
//! ```
//!
//! The trace core is deliberately simple, because a memory trace carries no dependencies or
//! timing: it issues the trace's accesses in order, one line piece per cycle, keeping at most
//! `max_outstanding` in flight (1 gives a blocking in-order core), and waits while the caches
//! refuse a request (MSHRs full). Stores write zero bytes (a trace has no data). At the end the
//! caches are drained (dirty lines written back) and the memory controllers' write buffers
//! flushed.
//!
//! Traces record virtual addresses (valgrind Lackey) or addresses from another machine, so by
//! default each 4 KiB page gets a physical frame on first touch, in order of first touch
//! (deterministic; memory grows with the pages touched). [`Translation::Identity`] takes trace
//! addresses as DRAM addresses instead; they must then lie inside the installed DRAM.

mod feed;

pub use feed::{AddressMisfit, FeedCounts, FeedError, Piece, TraceFeed};

use crate::machine::Machine;
use cache_model::access::{Access, AccessKind};
use cache_model::hierarchy::{Completion, CoreOp, CoreRequest, CoreResponse};
use sim_core::{CoreId, Cycle, KeyId, LINE_BYTES, PhysAddr, dump_component};

/// How trace addresses become physical addresses.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Translation {
    /// Each 4 KiB page of the trace gets the next free DRAM frame when first touched.
    FirstTouch,
    /// Trace addresses are DRAM addresses.
    Identity,
}

/// How to run a trace.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct TraceRunConfig {
    /// Line pieces in flight at once (at least 1).
    pub max_outstanding: usize,
    /// The KeyID every access goes through.
    pub keyid: KeyId,
    /// How trace addresses become physical addresses.
    pub translation: Translation,
    /// Stop with an error (and a dump of the machine's state) past this cycle.
    pub cycles_max: u64,
    /// Take the shortcuts that give the same results faster: an L1D hit with nothing else going
    /// on completes at once ([`Machine::complete_at_once`]), and the machine is not stepped
    /// before its next event. `false` steps every cycle the trace core acts and every hit
    /// through the caches' queue, to check the shortcuts against.
    pub shortcuts: bool,
}

impl Default for TraceRunConfig {
    /// 8 outstanding pieces, KeyID 0, first-touch translation, at most 10^12 cycles, shortcuts.
    fn default() -> TraceRunConfig {
        TraceRunConfig {
            max_outstanding: 8,
            keyid: KeyId::TME,
            translation: Translation::FirstTouch,
            cycles_max: 1_000_000_000_000,
            shortcuts: true,
        }
    }
}

/// What a trace run did.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct TraceRunReport {
    /// Trace accesses (a Lackey `M` counts as a read and a write).
    pub accesses: u64,
    /// Of those, reads.
    pub reads: u64,
    /// Of those, writes.
    pub writes: u64,
    /// Line pieces issued to the caches (an access crossing k lines issues k).
    pub pieces: u64,
    /// Extra pieces from accesses that crossed line boundaries (pieces - accesses).
    pub multi_line: u64,
    /// 4 KiB pages the trace touched.
    pub pages_touched: u64,
    /// The cycle the last trace access completed.
    pub cycles: u64,
    /// The cycle the end-of-run drain finished (every dirty line in DRAM).
    pub drained_cycles: u64,
    /// The simulator's effort, not the model's: pieces completed ahead of their cycle by the
    /// shortcuts ([`TraceRunConfig::shortcuts`]; 0 without them).
    pub pieces_at_once: u64,
}

/// Why a trace run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TraceRunError<E: std::error::Error + 'static> {
    /// The trace could not be read.
    #[error(transparent)]
    Trace(E),
    /// An address does not fit the machine.
    #[error("trace access {index} at {addr:#x}: {why}")]
    Address {
        /// 0-based index of the access in the trace.
        index: u64,
        /// The trace address.
        addr: u64,
        /// What is wrong.
        why: String,
    },
    /// `cycles_max` passed with work outstanding.
    #[error("stopped at cycle {cycle}, past cycles_max = {cycles_max}; machine state:\n{state}")]
    CycleLimit {
        /// The cycle reached.
        cycle: u64,
        /// The limit.
        cycles_max: u64,
        /// Every component's state: the trace core's, then the machine's and each of its timed
        /// parts' (caches, memory, each memory controller and its DRAM queues), one
        /// `component:` heading each with its state indented below.
        state: String,
    },
}

/// Runs a trace through `machine` on core 0: [`run_pieces`] on the trace's [`TraceFeed`].
pub fn run_trace<I, E>(
    machine: &mut Machine,
    trace: I,
    config: &TraceRunConfig,
) -> Result<TraceRunReport, TraceRunError<E>>
where
    I: IntoIterator<Item = Result<Access, E>>,
    E: std::error::Error + 'static,
{
    let layout = machine.memory().layout();
    let dram_bytes = machine.memory().dram_bytes();
    let mut feed = TraceFeed::new(trace.into_iter(), layout, dram_bytes, config);
    let timing = run_pieces(machine, &mut feed, config)?;
    Ok(timing.report(feed.counts()))
}

/// What the timed part of a trace run measured ([`run_pieces`]); with the feed's counts, the
/// run's [`TraceRunReport`].
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct TraceTiming {
    /// The cycle the last piece completed.
    pub cycles: u64,
    /// The cycle the end-of-run drain finished.
    pub drained_cycles: u64,
    /// Pieces completed ahead of their cycle by the shortcuts.
    pub pieces_at_once: u64,
}

impl TraceTiming {
    /// The run's report, with what its feed read.
    pub fn report(self, counts: FeedCounts) -> TraceRunReport {
        TraceRunReport {
            accesses: counts.accesses,
            reads: counts.reads,
            writes: counts.writes,
            pieces: counts.pieces,
            multi_line: counts.pieces - counts.accesses,
            pages_touched: counts.pages_touched,
            cycles: self.cycles,
            drained_cycles: self.drained_cycles,
            pieces_at_once: self.pieces_at_once,
        }
    }
}

/// Issues `pieces` (a [`TraceFeed`]'s, perhaps read ahead on another thread) from core 0 of
/// `machine`, one per cycle with at most `max_outstanding` in flight, then drains the machine.
pub fn run_pieces<P, E>(
    machine: &mut Machine,
    pieces: P,
    config: &TraceRunConfig,
) -> Result<TraceTiming, TraceRunError<E>>
where
    P: IntoIterator<Item = Result<Piece, FeedError<E>>>,
    E: std::error::Error + 'static,
{
    assert!(
        config.max_outstanding > 0,
        "max_outstanding must be at least 1"
    );
    let core = CoreId::new(0);
    let mut pieces = pieces.into_iter();
    // The next piece to issue (or one whose address does not fit, reported when its turn to
    // issue comes), taken from the feed when the last one has issued, and how many pieces of
    // its access the feed still holds; a piece the caches refused.
    let mut next_piece: Option<Result<Piece, Box<AddressMisfit>>> = None;
    let mut unpulled = 0u32;
    let mut back: Option<CoreRequest> = None;
    let mut responses: Vec<CoreResponse> = Vec::new();
    // Completion cycles of the pieces the machine completed ahead of time (L1D hits with
    // nothing else going on, `Machine::complete_at_once`), oldest first: until then they are in
    // flight like any other piece.
    let mut done_at_once = DoneAtOnce::default();
    // The machine's next event as of its last step: stepping it earlier changes nothing, so
    // the shortcut loop leaves it alone until then (a piece accepted the usual way brings it
    // forward to the next cycle).
    let mut wake = Cycle::ZERO;
    let mut next_id = 0u64;
    // The request being offered, reused from piece to piece.
    let mut offered = CoreRequest::new(0, core, PhysAddr::new(0), CoreOp::Load { len: 1 });
    let mut in_flight = 0usize;
    let mut trace_done = false;
    let mut now = Cycle::ZERO;
    let mut last_done = Cycle::ZERO;

    loop {
        let stepped = !config.shortcuts || now >= wake;
        if stepped {
            machine.step(now, &mut responses);
            for r in responses.drain(..) {
                in_flight -= 1;
                last_done = last_done.max(r.done);
            }
            if config.shortcuts {
                wake = machine.next_event_cycle();
            }
        }
        while let Some(done) = done_at_once.front() {
            if done > now {
                break;
            }
            done_at_once.pop();
            in_flight -= 1;
            last_done = last_done.max(done);
        }
        // Take the next piece once the last one has issued (the next access is read once the
        // last one is wholly issued).
        if back.is_none() && next_piece.is_none() && !trace_done {
            match pieces.next() {
                None => trace_done = true,
                Some(Err(FeedError::Trace(e))) => return Err(TraceRunError::Trace(e)),
                Some(Err(FeedError::Address(misfit))) => {
                    unpulled = misfit.rest;
                    next_piece = Some(Err(Box::new(misfit)));
                }
                Some(Ok(piece)) => {
                    unpulled = piece.rest;
                    next_piece = Some(Ok(piece));
                }
            }
        }
        // Issue at most one piece this cycle: the refused one, else the next.
        let mut refused = false;
        if in_flight < config.max_outstanding && (back.is_some() || next_piece.is_some()) {
            // Built where it stands (no Option around it): a hit completed at once never
            // moves it.
            if let Some(request) = back.take() {
                offered = request;
            } else {
                let piece = next_piece
                    .take()
                    .expect("a refused request or a piece waits")
                    .map_err(|misfit| TraceRunError::Address {
                        index: misfit.index,
                        addr: misfit.at,
                        why: misfit.why,
                    })?;
                // The request is filled in where it stands: a store's bytes stay zero (no
                // request is ever changed by the machine), so only its length changes.
                offered.id = next_id;
                next_id += 1;
                offered.addr = piece.addr;
                match (piece.kind, &mut offered.op) {
                    (AccessKind::Read, CoreOp::Load { len })
                    | (AccessKind::Write, CoreOp::Store { len, .. }) => *len = piece.len,
                    (AccessKind::Read, op) => *op = CoreOp::Load { len: piece.len },
                    (AccessKind::Write, op) => {
                        *op = CoreOp::Store {
                            len: piece.len,
                            data: [0; LINE_BYTES],
                        }
                    }
                }
            }
            // A hit completed at once needs no request of its own; only one submitted the
            // usual way is copied (and comes back here if refused).
            if config.shortcuts && machine.complete_at_once(now, &offered, &mut done_at_once) {
                in_flight += 1;
            } else {
                match machine.submit(now, offered.clone()) {
                    Ok(()) => {
                        in_flight += 1;
                        wake = wake.min(now.plus(1));
                    }
                    Err(request) => {
                        back = Some(request);
                        refused = true;
                    }
                }
            }
        }
        // Pieces waiting: a refused one, the next, and the rest of its access.
        let waiting =
            usize::from(back.is_some()) + usize::from(next_piece.is_some()) + unpulled as usize;
        if trace_done && waiting == 0 && in_flight == 0 {
            if !stepped {
                // The drain starts from a machine stepped through this cycle, as without the
                // shortcuts (its memory has caught up with the cycle under the old drain rule).
                machine.step(now, &mut responses);
                debug_assert!(responses.is_empty());
            }
            break;
        }
        // The next cycle anything can change: the next issue slot, or (when the caches refused
        // or the window is full) the machine's next event.
        // The trace core reads the next access as soon as it has room: the decision must not
        // depend on how precisely the machine predicts its own next event.
        let can_issue =
            (waiting > 0 || !trace_done) && in_flight < config.max_outstanding && !refused;
        let next = if can_issue {
            now.plus(1)
        } else {
            let at_once = done_at_once.front().unwrap_or(Cycle::NEVER);
            machine.next_event_cycle().min(at_once)
        };
        let core = || TraceCore {
            in_flight,
            waiting,
            trace_done,
        };
        let next = next.max(now.plus(1));
        if !stepped && next.get() > config.cycles_max {
            // The state reported is the machine's as of this cycle.
            machine.step(now, &mut responses);
        }
        now = check_limit(machine, core, now, next, config)?;
    }

    let cycles = last_done.get();
    machine.drain(now);
    // One question of whether work is left per step (it is asked after each step, and
    // nothing changes between that answer and the next step).
    let mut working = machine.has_work();
    while working {
        machine.step(now, &mut responses);
        assert!(
            responses.is_empty(),
            "no request is outstanding during the drain"
        );
        working = machine.has_work();
        if working {
            let next = machine.next_event_cycle();
            let core = || TraceCore {
                in_flight: 0,
                waiting: 0,
                trace_done: true,
            };
            now = check_limit(machine, core, now, next.max(now.plus(1)), config)?;
        }
    }
    Ok(TraceTiming {
        cycles,
        drained_cycles: now.get(),
        pieces_at_once: done_at_once.taken,
    })
}

/// The completion cycles of the pieces the machine completed ahead of their cycle, oldest
/// first (they complete in the order they issue): a ring that grows by doubling, as the window
/// of pieces in flight needs. Not a `VecDeque`: with one, the simulating thread runs 1.2 % more
/// instructions on the sort trace (1,143 M against 1,130 M; the ring indexes with a mask).
#[derive(Default)]
struct DoneAtOnce {
    ring: Vec<Cycle>,
    head: usize,
    len: usize,
    /// Pieces completed ahead so far.
    taken: u64,
}

impl DoneAtOnce {
    #[inline]
    fn front(&self) -> Option<Cycle> {
        (self.len > 0).then(|| self.ring[self.head])
    }

    #[inline]
    fn pop(&mut self) {
        self.head = (self.head + 1) & (self.ring.len() - 1);
        self.len -= 1;
    }

    #[inline(always)]
    fn push(&mut self, done: Cycle) {
        if self.len == self.ring.len() {
            // Unroll the ring into one twice the size (at least 16).
            let size = (2 * self.len).max(16);
            let mut grown = Vec::with_capacity(size);
            grown.extend((0..self.len).map(|k| self.ring[(self.head + k) & (self.ring.len() - 1)]));
            grown.resize(size, Cycle::ZERO);
            self.ring = grown;
            self.head = 0;
        }
        let at = (self.head + self.len) & (self.ring.len() - 1);
        self.ring[at] = done;
        self.len += 1;
        self.taken += 1;
    }
}

/// The machine hands the completions of what it completed ahead of time here.
impl Extend<Completion> for DoneAtOnce {
    #[inline(always)]
    fn extend<T: IntoIterator<Item = Completion>>(&mut self, completions: T) {
        for c in completions {
            self.push(c.done);
        }
    }
}

/// What the trace core holds, for the state a stopped run reports.
struct TraceCore {
    in_flight: usize,
    waiting: usize,
    trace_done: bool,
}

/// `next`, unless it is past `cycles_max`: then the error, with every component's state as of
/// `now` (the trace core's from `core`, asked only then).
#[inline]
fn check_limit<E: std::error::Error + 'static>(
    machine: &Machine,
    core: impl FnOnce() -> TraceCore,
    now: Cycle,
    next: Cycle,
    config: &TraceRunConfig,
) -> Result<Cycle, TraceRunError<E>> {
    if next.get() <= config.cycles_max {
        return Ok(next);
    }
    Err(cycle_limit(machine, &core(), now, next, config))
}

/// The error of a run stopped at `cycles_max`, with every component's state as of `now`.
#[cold]
fn cycle_limit<E: std::error::Error + 'static>(
    machine: &Machine,
    core: &TraceCore,
    now: Cycle,
    next: Cycle,
    config: &TraceRunConfig,
) -> TraceRunError<E> {
    let mut dump = vec![(
        "trace core".to_owned(),
        format!(
            "line pieces in flight {} of {}; pieces waiting to issue {}; trace {}",
            core.in_flight,
            config.max_outstanding,
            core.waiting,
            if core.trace_done {
                "read to the end"
            } else {
                "not read to the end"
            }
        ),
    )];
    dump_component("machine", machine, now, &mut dump);
    let mut state = String::new();
    for (component, text) in &dump {
        state.push_str(component);
        state.push_str(":\n");
        for line in text.lines() {
            state.push_str("  ");
            state.push_str(line);
            state.push('\n');
        }
    }
    TraceRunError::CycleLimit {
        cycle: next.get(),
        cycles_max: config.cycles_max,
        state,
    }
}
