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

use crate::machine::Machine;
use cache_model::access::{Access, AccessKind};
use cache_model::hierarchy::{CoreOp, CoreRequest, CoreResponse};
use sim_core::{
    CoreId, Cycle, DetHashMap, DramAddr, KeyId, LINE_BYTES, PAGE_SHIFT, VirtAddr, dump_component,
};

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
}

impl Default for TraceRunConfig {
    /// 8 outstanding pieces, KeyID 0, first-touch translation, at most 10^12 cycles.
    fn default() -> TraceRunConfig {
        TraceRunConfig {
            max_outstanding: 8,
            keyid: KeyId::TME,
            translation: Translation::FirstTouch,
            cycles_max: 1_000_000_000_000,
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

/// Runs a trace through `machine` on core 0.
pub fn run_trace<I, E>(
    machine: &mut Machine,
    trace: I,
    config: &TraceRunConfig,
) -> Result<TraceRunReport, TraceRunError<E>>
where
    I: IntoIterator<Item = Result<Access, E>>,
    E: std::error::Error + 'static,
{
    assert!(
        config.max_outstanding > 0,
        "max_outstanding must be at least 1"
    );
    let layout = machine.memory().layout();
    let dram_bytes = machine.memory().dram_bytes();
    let core = CoreId::new(0);
    let mut trace = trace.into_iter();
    let mut report = TraceRunReport::default();
    // First-touch frames by the trace's virtual page.
    let mut frames: DetHashMap<VirtAddr, u64> = DetHashMap::default();
    // The access being split, streamed one line piece at a time (a 4 GiB access is 67 M
    // pieces: they are made as they issue, never queued), and a piece the caches refused.
    let mut current: Option<Splitting> = None;
    let mut back: Option<CoreRequest> = None;
    let mut responses: Vec<CoreResponse> = Vec::new();
    let mut next_id = 0u64;
    let mut in_flight = 0usize;
    let mut trace_done = false;
    let mut now = Cycle::ZERO;
    let mut last_done = Cycle::ZERO;
    let phys = |index: u64, addr: u64, frames: &mut DetHashMap<VirtAddr, u64>| {
        let dram = match config.translation {
            Translation::Identity => addr,
            Translation::FirstTouch => {
                let va = VirtAddr::new(addr);
                let next = frames.len() as u64;
                let frame = *frames.entry(va.page_base()).or_insert(next);
                (frame << PAGE_SHIFT) | va.page_offset()
            }
        };
        if dram >= dram_bytes {
            return Err(TraceRunError::Address {
                index,
                addr,
                why: format!(
                    "DRAM address {dram:#x} is beyond the {dram_bytes:#x} bytes installed"
                ),
            });
        }
        layout
            .compose(config.keyid, DramAddr::new(dram))
            .map_err(|e| TraceRunError::Address {
                index,
                addr,
                why: e.to_string(),
            })
    };

    loop {
        machine.step(now, &mut responses);
        for r in responses.drain(..) {
            in_flight -= 1;
            last_done = last_done.max(r.done);
        }
        // Take the next access from the trace once the last one is wholly issued.
        while back.is_none() && current.is_none() && !trace_done {
            match trace.next() {
                None => trace_done = true,
                Some(Err(e)) => return Err(TraceRunError::Trace(e)),
                Some(Ok(access)) => {
                    let index = report.accesses;
                    report.accesses += 1;
                    match access.kind {
                        AccessKind::Read => report.reads += 1,
                        AccessKind::Write => report.writes += 1,
                    }
                    let end = access.addr.saturating_add(u64::from(access.size.max(1)));
                    current = (access.addr < end).then_some(Splitting {
                        index,
                        kind: access.kind,
                        at: access.addr,
                        end,
                    });
                }
            }
        }
        // Issue at most one piece this cycle: the refused one, else the next of the access.
        let mut refused = false;
        if in_flight < config.max_outstanding {
            let piece = match back.take() {
                Some(piece) => Some(piece),
                None => match current.as_mut() {
                    None => None,
                    Some(split) => {
                        let at = split.at;
                        let line_end = (at | (LINE_BYTES as u64 - 1))
                            .saturating_add(1)
                            .min(split.end);
                        let len = (line_end - at) as u8;
                        let pa = phys(split.index, at, &mut frames)?;
                        let op = match split.kind {
                            AccessKind::Read => CoreOp::Load { len },
                            AccessKind::Write => CoreOp::Store {
                                len,
                                data: [0; LINE_BYTES],
                            },
                        };
                        split.at = line_end;
                        if line_end == split.end {
                            current = None;
                        }
                        let piece = CoreRequest::new(next_id, core, pa, op);
                        next_id += 1;
                        report.pieces += 1;
                        Some(piece)
                    }
                },
            };
            if let Some(piece) = piece {
                match machine.submit(now, piece) {
                    Ok(()) => in_flight += 1,
                    Err(piece) => {
                        back = Some(piece);
                        refused = true;
                    }
                }
            }
        }
        let waiting = usize::from(back.is_some()) + current.as_ref().map_or(0, Splitting::pieces);
        if trace_done && waiting == 0 && in_flight == 0 {
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
            machine.next_event_cycle()
        };
        let core = TraceCore {
            in_flight,
            waiting,
            trace_done,
        };
        now = check_limit(machine, &core, now, next.max(now.plus(1)), config)?;
    }

    report.cycles = last_done.get();
    report.multi_line = report.pieces - report.accesses;
    report.pages_touched = match config.translation {
        Translation::FirstTouch => frames.len() as u64,
        Translation::Identity => 0,
    };
    machine.drain(now);
    while machine.has_work() {
        machine.step(now, &mut responses);
        assert!(
            responses.is_empty(),
            "no request is outstanding during the drain"
        );
        if !machine.has_work() {
            break;
        }
        let next = machine.next_event_cycle();
        let core = TraceCore {
            in_flight: 0,
            waiting: 0,
            trace_done: true,
        };
        now = check_limit(machine, &core, now, next.max(now.plus(1)), config)?;
    }
    report.drained_cycles = now.get();
    Ok(report)
}

/// The rest of one access, split into line pieces as they issue.
struct Splitting {
    /// The access's place in the trace.
    index: u64,
    kind: AccessKind,
    /// The first byte not yet issued.
    at: u64,
    /// One past the access's last byte (above `at`).
    end: u64,
}

impl Splitting {
    /// Line pieces left to issue.
    fn pieces(&self) -> usize {
        let line = LINE_BYTES as u64;
        ((self.end - 1) / line - self.at / line + 1) as usize
    }
}

/// What the trace core holds, for the state a stopped run reports.
struct TraceCore {
    in_flight: usize,
    waiting: usize,
    trace_done: bool,
}

/// `next`, unless it is past `cycles_max`: then the error, with every component's state as of
/// `now`.
fn check_limit<E: std::error::Error + 'static>(
    machine: &Machine,
    core: &TraceCore,
    now: Cycle,
    next: Cycle,
    config: &TraceRunConfig,
) -> Result<Cycle, TraceRunError<E>> {
    if next.get() > config.cycles_max {
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
        return Err(TraceRunError::CycleLimit {
            cycle: next.get(),
            cycles_max: config.cycles_max,
            state,
        });
    }
    Ok(next)
}
