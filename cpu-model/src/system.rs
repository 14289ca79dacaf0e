//! A whole system: the machine, one core per program, the kernel layer and the coherency
//! checker, run together in core cycles.
//!
//! ```text
//!   programs ─► cores (crate::cores) ──CoreRequest──► Machine (caches ─► memory controllers)
//!                  ▲    │ begin/finish, walk          │ CacheEvents, MemEvents (key changes)
//!                  │    ▼                              ▼
//!                  │  Kernel               System feeds them, in cycle order, to the
//!                  │                       CoherencyChecker (the `checker` crate), which it owns
//!                  └──────────── CoreResponse ◄───────┘
//! ```
//!
//! # Feeding the checker
//!
//! The checker sits beside the model: no component calls it. The hierarchy's events are
//! collected by an [`EventLog`] attached to it, the memory side's by the memory system itself
//! ([`mem_ctrl::MemorySystem::take_events`]); after every step of the machine and every core's
//! cycle the system hands both to the checker, merged by cycle, the memory side's first within
//! a cycle: a key-table change happens at the start of its cycle (the memory system is stepped
//! first), before any cache event of that cycle.
//!
//! # The run loop
//!
//! The loop is event-driven. At each cycle it executes, the machine is stepped first
//! (memory responses reach the caches, completed requests come back), the responses go to
//! their cores, then every core, in core order (determinism), retires, issues and drains. The
//! next cycle executed is the earliest at which anything can change: the machine's next event
//! or a core's next wake-up (an issue slot, a retry after a refusal, the end of a compute op,
//! a page walk, a PCONFIG, a barrier release). Idle cycles are skipped, so a `Compute` of 10^12
//! cycles costs O(1); no cycle at which a core could issue or retry is skipped.
//!
//! When every program has ended (every op completed: store buffers empty, nothing in flight)
//! the run is finished; with `drain_at_end` the caches are first written back and the memory
//! controllers drained, stepping until the machine has no work. A run that reaches
//! `cycles_max` stops ([`RunEnd::CyclesMax`]); one in which nothing can happen any more while a
//! program has not ended (a barrier nobody else will reach) ends in [`RunEnd::Deadlock`].
//! [`System::run_until`] stops before executing its limit cycle, so the caller can look at
//! DRAM exactly as it is at that cycle, and then go on.
//!
//! Runs are deterministic: the same programs, configuration and seed give the same results
//! and cycles (no wall clock, no iteration over hash maps).
//!
//! # Recording what the checker sees
//!
//! [`System::record_events`] keeps a copy of the merged stream the checker is fed, in the
//! order it is fed ([`SystemEvent`]s, up to a bound; off by default). Tests replay it into a
//! checker of their own (the whole-machine property tests re-date key changes to show what a
//! checker told of them at the wrong cycle would miss); a line's timeline can be read off it.

use crate::cores::{Barriers, Core, CoreCtx};
use crate::kernel::{Kernel, KernelConfig, KernelConfigError};
use crate::program::{OpResult, OpTag, Program};
use crate::{Machine, MachineConfig, MachineConfigError};
use cache_model::hierarchy::CoreResponse;
use cache_model::{CacheEvent, EventLog, ObserverId};
use checker::{CheckerConfig, CoherencyChecker};
use sim_core::{CoreId, Cycle, MemEvent, OrNever, StatsReport, VirtAddr, dump_component};
use std::any::Any;
use std::fmt;

/// Takes op results as they are produced, instead of the system keeping them
/// ([`System::set_result_sink`]): a run of 10^9 loads then costs only what the sink keeps.
pub trait ResultSink: Any + Send {
    /// One result, right after the core cycle that produced it (results of one cycle in core
    /// order, as [`System::results`] would list them).
    fn on_result(&mut self, result: OpResult);
}

/// The attached sink (a box of a trait object, which has no `Debug` of its own).
struct Sink(Box<dyn ResultSink>);

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a result sink")
    }
}

/// Everything a run needs besides the programs.
#[derive(Clone, Debug)]
pub struct SystemConfig {
    /// The machine (caches, memory, cores).
    pub machine: MachineConfig,
    /// The kernel layer.
    pub kernel: KernelConfig,
    /// The run stops (reported, with a dump) when it reaches this cycle.
    pub cycles_max: u64,
    /// When every program has ended, write back every dirty line and drain the memory
    /// controllers before the run ends (so DRAM holds the final data).
    pub drain_at_end: bool,
    /// The coherency checker's bounds and the kinds it ignores (`CheckerConfig::default()`:
    /// report everything).
    pub checker: CheckerConfig,
}

/// A system that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SystemError {
    /// The machine is impossible.
    #[error(transparent)]
    Machine(#[from] MachineConfigError),
    /// The kernel configuration is impossible.
    #[error(transparent)]
    Kernel(#[from] KernelConfigError),
    /// More programs than cores.
    #[error("{programs} programs for {cores} cores")]
    TooManyPrograms {
        /// Programs given.
        programs: usize,
        /// Cores the machine has.
        cores: usize,
    },
}

/// One event of the stream a [`System`] feeds its checker: the memory side's or the
/// hierarchy's, in the order the checker receives them (see [`System::record_events`]).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SystemEvent {
    /// From the memory system (a key-table change).
    Memory(MemEvent),
    /// From the cache hierarchy.
    Cache(CacheEvent),
}

impl SystemEvent {
    /// The cycle it happened.
    pub fn cycle(&self) -> Cycle {
        match self {
            SystemEvent::Memory(m) => m.cycle(),
            SystemEvent::Cache(c) => c.cycle(),
        }
    }

    /// Hands the event to `checker`, as the system does.
    pub fn feed(&self, checker: &mut CoherencyChecker) {
        match self {
            SystemEvent::Memory(m) => checker.on_memory_event(m),
            SystemEvent::Cache(c) => checker.on_cache_event(c),
        }
    }
}

/// The events recorded so far and how many did not fit.
#[derive(Debug, Default)]
struct Recording {
    events: Vec<SystemEvent>,
    events_max: usize,
    not_recorded: u64,
}

impl Recording {
    fn push(&mut self, event: impl FnOnce() -> SystemEvent) {
        if self.events.len() < self.events_max {
            self.events.push(event());
        } else {
            self.not_recorded += 1;
        }
    }
}

/// How a run (or a part of it) ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunEnd {
    /// Every program ended (and, with `drain_at_end`, the caches were drained).
    Finished {
        /// The cycle the last program's last op completed.
        programs_done: Cycle,
        /// The cycle the run ended (after the drain).
        cycle: Cycle,
    },
    /// `run_until` reached its limit; the run can go on.
    Paused {
        /// The cycle reached.
        cycle: Cycle,
    },
    /// The run reached `cycles_max`.
    CyclesMax {
        /// The cycle reached.
        cycle: Cycle,
    },
    /// Nothing can happen any more, yet some program has not ended (a barrier no other core
    /// will reach).
    Deadlock {
        /// The cycle it was found.
        cycle: Cycle,
    },
}

/// Where the run is.
#[derive(Clone, Debug)]
enum Phase {
    /// Programs are running.
    Running,
    /// Every program ended; the machine is draining.
    Draining { programs_done: Cycle },
    /// Over; every later call returns this.
    Ended(RunEnd),
}

/// The running system.
#[derive(Debug)]
pub struct System {
    machine: Machine,
    kernel: Kernel,
    cores: Vec<Core>,
    barriers: Barriers,
    checker: CoherencyChecker,
    /// The log attached to the hierarchy that collects its events for the checker.
    cache_log: ObserverId,
    /// Scratch: events on their way to the checker (no allocation per cycle).
    cache_events: Vec<CacheEvent>,
    mem_events: Vec<MemEvent>,
    /// A copy of what the checker is fed, when asked for ([`System::record_events`]).
    recording: Option<Recording>,
    results: Vec<OpResult>,
    /// Where results go instead of `results`, when attached.
    sink: Option<Sink>,
    keep_loads: Option<Vec<bool>>,
    /// Scratch for the machine's responses (no allocation per cycle).
    responses: Vec<CoreResponse>,
    /// Scratch for TLB shootdowns.
    shootdown: Vec<VirtAddr>,
    cycles_max: u64,
    drain_at_end: bool,
    /// The current cycle: the last executed, or the pause point.
    clock: Cycle,
    /// The next cycle to execute ([`Cycle::NEVER`]: nothing can happen).
    next: Cycle,
    /// Cycles actually executed (the rest were skipped as idle).
    executed: u64,
    phase: Phase,
}

impl System {
    /// Boots the machine with `seed` and loads `programs` (program i on core i; cores without
    /// a program stay idle).
    pub fn new(
        config: &SystemConfig,
        programs: Vec<Program>,
        seed: u64,
    ) -> Result<System, SystemError> {
        let mut machine = Machine::new(&config.machine, seed)?;
        let cores = machine.caches().cores();
        if programs.len() > cores {
            return Err(SystemError::TooManyPrograms {
                programs: programs.len(),
                cores,
            });
        }
        let memory = machine.memory();
        let (layout, dram_bytes) = (memory.layout(), memory.dram_bytes());
        let kernel = Kernel::new(
            &config.kernel,
            layout,
            dram_bytes,
            config.machine.memory.tme.max_keys,
        )?;
        let checker = CoherencyChecker::new(layout, config.checker);
        let cache_log = machine.caches_mut().attach_observer(EventLog::default());
        let idle = Program::default();
        let cores: Vec<Core> = (0..cores)
            .map(|i| {
                let program = programs.get(i).unwrap_or(&idle);
                Core::new(i, program, &config.machine.core, layout, dram_bytes)
            })
            .collect();
        let barriers = Barriers::new(&cores);
        Ok(System {
            machine,
            kernel,
            cores,
            barriers,
            checker,
            cache_log,
            cache_events: Vec::new(),
            mem_events: Vec::new(),
            recording: None,
            results: Vec::new(),
            sink: None,
            keep_loads: None,
            responses: Vec::new(),
            shootdown: Vec::new(),
            cycles_max: config.cycles_max,
            drain_at_end: config.drain_at_end,
            clock: Cycle::ZERO,
            next: Cycle::ZERO,
            executed: 0,
            phase: Phase::Running,
        })
    }

    /// Runs until the run ends or `limit` is reached (then [`RunEnd::Paused`]), whichever
    /// comes first. Cycles before `limit` are executed, `limit` itself is not: the machine is
    /// left exactly as it is at the start of cycle `limit`.
    pub fn run_until(&mut self, limit: Cycle) -> RunEnd {
        loop {
            if let Phase::Ended(end) = &self.phase {
                return end.clone();
            }
            let at = self.next;
            if at == Cycle::NEVER {
                // Nothing will ever happen again: no need to wait for any limit.
                let end = match self.phase {
                    Phase::Draining { programs_done } if !self.machine.has_work() => {
                        RunEnd::Finished {
                            programs_done,
                            cycle: self.clock,
                        }
                    }
                    _ => RunEnd::Deadlock { cycle: self.clock },
                };
                return self.end(end);
            }
            let stop = Cycle::new(self.cycles_max);
            if at >= stop && stop <= limit {
                self.clock = self.clock.max(stop);
                return self.end(RunEnd::CyclesMax { cycle: stop });
            }
            if at >= limit {
                self.clock = self.clock.max(limit);
                return RunEnd::Paused { cycle: self.clock };
            }
            self.execute(at);
        }
    }

    /// Runs to the end: finished, `cycles_max`, or deadlock.
    pub fn run(&mut self) -> RunEnd {
        self.run_until(Cycle::NEVER)
    }

    fn end(&mut self, end: RunEnd) -> RunEnd {
        self.phase = Phase::Ended(end.clone());
        end
    }

    /// Executes cycle `at` and finds the next one.
    fn execute(&mut self, at: Cycle) {
        self.clock = at;
        self.executed += 1;
        match self.phase {
            Phase::Running => {
                self.run_cycle(at);
                if self.cores.iter().all(|c| c.done_at().is_some()) {
                    let programs_done = self
                        .cores
                        .iter()
                        .filter_map(Core::done_at)
                        .max()
                        .unwrap_or(Cycle::ZERO);
                    if self.drain_at_end {
                        self.machine.drain(at);
                        self.machine.step(at, &mut self.responses);
                        self.feed_checker();
                        self.responses.clear();
                        if self.machine.has_work() {
                            self.phase = Phase::Draining { programs_done };
                            self.next = self.machine.next_event_cycle().max(at.plus(1));
                            return;
                        }
                    }
                    self.end(RunEnd::Finished {
                        programs_done,
                        cycle: at,
                    });
                    return;
                }
                let mut next = self.machine.next_event_cycle();
                for c in &self.cores {
                    next = next.min(c.next_wake(&self.barriers));
                }
                self.next = next.max(at.plus(1));
            }
            Phase::Draining { programs_done } => {
                self.machine.step(at, &mut self.responses);
                self.feed_checker();
                // Nothing of the cores is in flight any more.
                self.responses.clear();
                if self.machine.has_work() {
                    self.next = self.machine.next_event_cycle().max(at.plus(1));
                } else {
                    self.end(RunEnd::Finished {
                        programs_done,
                        cycle: at,
                    });
                }
            }
            Phase::Ended(_) => {}
        }
    }

    /// The machine, then every core in order.
    fn run_cycle(&mut self, at: Cycle) {
        self.machine.step(at, &mut self.responses);
        self.feed_checker();
        for r in self.responses.drain(..) {
            if let Some(core) = self.cores.get_mut(r.core.index()) {
                core.on_response(at, &r);
            }
        }
        for i in 0..self.cores.len() {
            let mut ctx = CoreCtx {
                machine: &mut self.machine,
                kernel: &mut self.kernel,
                results: &mut self.results,
                keep_loads: self.keep_loads.as_deref(),
                barriers: &mut self.barriers,
                shootdown: &mut self.shootdown,
            };
            self.cores[i].tick(at, &mut ctx);
            self.feed_checker();
            if let Some(Sink(sink)) = &mut self.sink {
                for r in self.results.drain(..) {
                    sink.on_result(r);
                }
            }
            if !self.shootdown.is_empty() {
                // Before any other core issues again. User pages are the caller's process's.
                let process = self.cores[i].process();
                for c in &mut self.cores {
                    let same = c.process() == process;
                    c.shoot_down(&self.shootdown, same);
                }
                self.shootdown.clear();
            }
        }
    }

    /// Hands the events since the last call to the checker: both streams merged by cycle, the
    /// memory side's first within a cycle (see the module docs).
    fn feed_checker(&mut self) {
        self.machine.memory_mut().take_events(&mut self.mem_events);
        if let Some(log) = self
            .machine
            .caches_mut()
            .observer_mut::<EventLog>(self.cache_log)
        {
            std::mem::swap(&mut log.events, &mut self.cache_events);
        }
        let mut mem = self.mem_events.drain(..).peekable();
        for event in self.cache_events.drain(..) {
            while let Some(m) = mem.next_if(|m| m.cycle() <= event.cycle()) {
                if let Some(r) = &mut self.recording {
                    r.push(|| SystemEvent::Memory(m));
                }
                self.checker.on_memory_event(&m);
            }
            if let Some(r) = &mut self.recording {
                r.push(|| SystemEvent::Cache(event.clone()));
            }
            self.checker.on_cache_event(&event);
        }
        for m in mem {
            if let Some(r) = &mut self.recording {
                r.push(|| SystemEvent::Memory(m));
            }
            self.checker.on_memory_event(&m);
        }
    }

    /// From now on, keeps a copy of every event the checker is fed, in the order it is fed
    /// (the memory side's and the hierarchy's merged by cycle), up to `events_max` events;
    /// later ones are only counted ([`System::events_not_recorded`]). Call it before the run
    /// to record the whole stream. Off by default: recording clones every event.
    pub fn record_events(&mut self, events_max: usize) {
        let recording = self.recording.get_or_insert_with(Recording::default);
        recording.events_max = events_max;
    }

    /// The events recorded so far (empty unless [`System::record_events`] was called).
    pub fn recorded_events(&self) -> &[SystemEvent] {
        self.recording.as_ref().map_or(&[], |r| &r.events)
    }

    /// Events the checker was fed while recording that did not fit in the bound.
    pub fn events_not_recorded(&self) -> u64 {
        self.recording.as_ref().map_or(0, |r| r.not_recorded)
    }

    /// Hands the checker what happened since the last step now rather than at the next one:
    /// for a caller that acts on the memory side while the run is paused (an attacker writing
    /// the DIMMs), so that the checker sees the act even if the run never steps again.
    pub fn deliver_events(&mut self) {
        self.feed_checker();
    }

    /// The current cycle: the last cycle executed, or the cycle a pause stopped before.
    pub fn now(&self) -> Cycle {
        self.clock
    }

    /// Keeps the values of loads with these tags only (by default every load's value is
    /// kept). A long run of loads would otherwise hold one result per load executed; faults,
    /// PCONFIG outcomes and system-call results are always kept.
    pub fn keep_load_results_of(&mut self, tags: impl IntoIterator<Item = OpTag>) {
        let mut keep = Vec::new();
        for tag in tags {
            let i = tag.0 as usize;
            if keep.len() <= i {
                keep.resize(i + 1, false);
            }
            keep[i] = true;
        }
        self.keep_loads = Some(keep);
    }

    /// Every op result so far, in the order they completed (ties: by core); empty while a
    /// [`ResultSink`] takes them.
    pub fn results(&self) -> &[OpResult] {
        &self.results
    }

    /// Hands every later op result to `sink` as it is produced (results so far included)
    /// instead of keeping it; [`System::keep_load_results_of`] still filters load values.
    pub fn set_result_sink(&mut self, sink: Box<dyn ResultSink>) {
        let mut sink = sink;
        for r in self.results.drain(..) {
            sink.on_result(r);
        }
        self.sink = Some(Sink(sink));
    }

    /// The attached result sink, if it is an `S`.
    pub fn result_sink<S: ResultSink>(&self) -> Option<&S> {
        let sink: &dyn Any = self.sink.as_ref()?.0.as_ref();
        sink.downcast_ref::<S>()
    }

    /// The machine.
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// The machine, to attach bus probes or read the DIMMs.
    pub fn machine_mut(&mut self) -> &mut Machine {
        &mut self.machine
    }

    /// The kernel layer.
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    /// The coherency checker, which watches every run.
    pub fn checker(&self) -> &CoherencyChecker {
        &self.checker
    }

    /// Cycles the loop executed so far; every other cycle up to [`System::now`] was skipped
    /// because nothing could happen in it.
    pub fn cycles_executed(&self) -> u64 {
        self.executed
    }

    /// Number of cores (programs and idle ones).
    pub fn cores(&self) -> usize {
        self.cores.len()
    }

    /// The cycle core `core`'s program ended (every op completed), once it has.
    pub fn program_done(&self, core: CoreId) -> Option<Cycle> {
        self.cores.get(core.index()).and_then(Core::done_at)
    }

    /// Statistics of every component: cores (`core.N.*`), kernel, caches, memory.
    ///
    /// Per core: `ops.<kind>` and `ops_issued` (ops issued, by kind), `load_requests` (load
    /// pieces sent to the hierarchy), `loads_forwarded` (completed from the store buffer),
    /// `loads_partial_forward` (stalled by a partial overlap), `load_replays` (machine
    /// clears), `stores_drained` (store-buffer entries, one per line piece, that completed),
    /// `tlb_hits`, `tlb_misses`, `faults`, `speculative_loads`, `speculative_dropped` and
    /// `prefetches_dropped` (untranslatable), `shadow_ops_squashed`, `shadow_stores_discarded`,
    /// `shadow_loads_forwarded`, `requests_refused` (by the hierarchy, each retry counted),
    /// `wait_cycles.<reason>` (cycles issue was stopped, by reason: `sb_full`, `lq_full`,
    /// `partial_forward`, `drain`, `barrier`, `compute`, `page_walk`, `refused`, `branch`,
    /// `syscall`, `pconfig`, `wbinvd`, `kernel_steps`),
    /// `cycles_active` (until the program ended), `cycles_issuing` (cycles with at least one op
    /// issued), `cycles_stalled` (active without issuing) and `cycles_idle` (after the end).
    /// And `system.cycle` (the current cycle), `system.cycles_executed` (the rest were skipped).
    pub fn report_stats(&self, report: &mut StatsReport) {
        report.count("system", "cycle", self.clock.get());
        report.count("system", "cycles_executed", self.executed);
        for (i, c) in self.cores.iter().enumerate() {
            c.report_stats(&format!("core.{i}"), self.clock, report);
        }
        self.machine.report_stats(report);
        self.kernel.report_stats(report);
    }

    /// A description of every component's state (for a run that stopped), as `(component,
    /// state)` entries: the system itself; each core (a [`sim_core::TimedComponent`]: its place
    /// in its program and what it waits for, its store buffer and outstanding loads); the
    /// barriers; the machine and, through [`dump_component`], every timed part of it (the
    /// caches' MSHRs, write-back buffer and outbox; the memory system; each memory
    /// controller's requests in flight and its DRAM model's queues); the checker; the kernel.
    ///
    /// The barriers, the checker and the kernel are not timed components (they have no clock
    /// of their own: they change only when a core's cycle calls them), so they describe
    /// themselves in their own words.
    pub fn dump(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let phase = match &self.phase {
            Phase::Running => "programs running".to_owned(),
            Phase::Draining { programs_done } => {
                format!("draining the caches (programs done at cycle {programs_done})")
            }
            Phase::Ended(end) => format!("ended: {end:?}"),
        };
        out.push((
            "system".to_owned(),
            format!(
                "cycle {}; {phase}; next cycle to execute {}; {} results",
                self.clock,
                OrNever(self.next),
                self.results.len()
            ),
        ));
        for (i, c) in self.cores.iter().enumerate() {
            dump_component(&format!("core {i}"), c, self.clock, &mut out);
        }
        out.push(("barriers".to_owned(), self.barriers.describe()));
        dump_component("machine", &self.machine, self.clock, &mut out);
        out.push((
            "checker".to_owned(),
            format!(
                "{} violations kept, {} model errors kept, {} events seen",
                self.checker.violations().len(),
                self.checker.model_errors().len(),
                self.checker.events_seen()
            ),
        ));
        out.push(("kernel".to_owned(), self.kernel.dump()));
        out
    }
}
