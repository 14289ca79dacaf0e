//! A whole machine: the coherent cache hierarchy wired to the package's memory system.
//!
//! ```text
//!   cores ──CoreRequest──► Hierarchy ──MemRequest──► MemorySystem (controllers, DRAM, AES-XTS)
//!         ◄─CoreResponse──           ◄─MemResponse──
//! ```
//!
//! This is the only place `cache-model` and `mem-ctrl` meet. Both count core cycles; the
//! machine moves requests and responses between them every step, and a full memory-controller
//! queue sends a request back to the hierarchy's outbox (back-pressure), never drops it.
//!
//! As a [`TimedComponent`] the machine is made of two parts, `caches` and `memory` (whose
//! parts are its controllers and their DRAM models): a dump of the machine walks them all.

use cache_model::ReplacementPolicy;
use cache_model::hierarchy::{Completion, CoreRequest, CoreResponse};
use cache_model::hierarchy::{Hierarchy, HierarchyConfig, HierarchyConfigError};
use mem_ctrl::dram::{DramConfig, DramConfigError};
use mem_ctrl::{MemCtrlConfig, MemCtrlConfigError, MemorySystem};
use sim_core::{Cycle, MemResponse, OrNever, RngFactory, StatsReport, TimedComponent};
use std::fmt::Write as _;

/// Everything that describes a machine.
#[derive(Clone, Debug)]
pub struct MachineConfig {
    /// Cores and their caches.
    pub caches: HierarchyConfig,
    /// Memory controllers, DRAM, TME/MKTME and PCONFIG.
    pub memory: MemCtrlConfig,
    /// The cores' pipelines (every core alike).
    pub core: CoreConfig,
}

/// One core's timing model (every core of a machine is alike).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreConfig {
    /// Ops issued per cycle, at most.
    pub issue_width: u32,
    /// Loads in flight at once (1: a blocking core).
    pub outstanding_loads: u32,
    /// Store-buffer entries (stores and CLFLUSHes waiting to reach the L1D, in order).
    pub store_buffer_entries: u32,
    /// Cycles from a mispredicted branch's issue to its resolution: how long its shadow runs.
    pub branch_resolve_cycles: u64,
    /// Entries of the per-core TLB (fully associative, LRU, 4 KiB pages).
    pub tlb_entries: u32,
    /// Cycles a TLB miss costs (the page walk).
    pub page_walk_cycles: u64,
    /// Cycles of a system call's entry and exit, on top of the work the kernel does.
    pub syscall_cycles: u64,
}

impl Default for CoreConfig {
    /// Round numbers of the right order for a current out-of-order x86 core seen as an
    /// in-order one: 4-wide, 10 loads in flight, 56 store-buffer entries (Skylake), a
    /// 20-cycle branch resolution, a 64-entry L1 DTLB and a 30-cycle walk, 200-cycle syscalls.
    fn default() -> CoreConfig {
        CoreConfig {
            issue_width: 4,
            outstanding_loads: 10,
            store_buffer_entries: 56,
            branch_resolve_cycles: 20,
            tlb_entries: 64,
            page_walk_cycles: 30,
            syscall_cycles: 200,
        }
    }
}

/// A machine that cannot be built. Every variant names what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MachineConfigError {
    /// No preset with this name.
    #[error(
        "unknown machine preset `{}`; known presets: {known}",
        sim_core::text::shown(name)
    )]
    UnknownPreset {
        /// The name asked for.
        name: String,
        /// The presets that exist.
        known: String,
    },
    /// The caches are impossible.
    #[error("caches: {0}")]
    Caches(#[from] HierarchyConfigError),
    /// The memory system is impossible.
    #[error("memory: {0}")]
    Memory(#[from] MemCtrlConfigError),
    /// The DRAM is impossible.
    #[error("memory.dram: {0}")]
    Dram(#[from] DramConfigError),
    /// The cores are impossible.
    #[error("core.{field}: {problem}")]
    Core {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

impl MachineConfig {
    /// The built-in machines.
    pub const PRESETS: [&'static str; 2] = ["default", "server"];

    /// A built-in machine.
    ///
    /// - `default`: two cores, each with a 32 KiB 8-way L1D (4 cycles) and a 1 MiB 16-way L2
    ///   (14 cycles); a shared inclusive 8 MiB 16-way LLC (40 cycles); next-line and stride
    ///   prefetchers at the L2; one memory controller with one DDR4-2400 channel (16 GiB); a
    ///   3.2 GHz core clock; 52-bit physical addresses with 6 KeyID bits (63 keys); TME on.
    ///   The DRAM preset runs with the machines' controller policy
    ///   ([`DramConfig::machine_preset`]: idle write drain, writes drained at 16).
    /// - `server`: eight cores, 48 KiB 12-way L1D (5 cycles), 2 MiB 16-way L2 (16 cycles), a
    ///   non-inclusive 32 MiB 16-way LLC (50 cycles, tree-PLRU); two controllers of DDR4-3200
    ///   interleaved every 4 KiB; a 2.6 GHz core clock; otherwise as `default`.
    pub fn preset(name: &str) -> Result<MachineConfig, MachineConfigError> {
        match name {
            "default" => Ok(MachineConfig {
                caches: HierarchyConfig::default(),
                memory: MemCtrlConfig::default(),
                core: CoreConfig::default(),
            }),
            "server" => {
                let mut caches = HierarchyConfig {
                    cores: 8,
                    llc_inclusive: false,
                    ..HierarchyConfig::default()
                };
                set_level(&mut caches.l1d.cache, 48 * 1024, 12, 5);
                set_level(&mut caches.l2.cache, 2 * 1024 * 1024, 16, 16);
                set_level(&mut caches.llc.cache, 32 * 1024 * 1024, 16, 50);
                caches.llc.cache.replacement = ReplacementPolicy::TreePlru;
                caches.llc.mshr_entries = 128;
                let memory = MemCtrlConfig {
                    controllers: 2,
                    interleave_bytes: 4096,
                    dram: DramConfig::machine_preset("ddr4-3200")?,
                    core_clock_mhz: 2600,
                    ..MemCtrlConfig::default()
                };
                Ok(MachineConfig {
                    caches,
                    memory,
                    core: CoreConfig::default(),
                })
            }
            _ => Err(MachineConfigError::UnknownPreset {
                name: name.to_owned(),
                known: Self::PRESETS.join(", "),
            }),
        }
    }

    /// Checks the whole configuration.
    pub fn validate(&self) -> Result<(), MachineConfigError> {
        self.caches.validate()?;
        self.memory.validate()?;
        self.core.validate()
    }
}

impl CoreConfig {
    /// Checks every field's range; the error names the field.
    pub fn validate(&self) -> Result<(), MachineConfigError> {
        let ranges: [(&'static str, u64, u64, u64); 7] = [
            ("issue_width", u64::from(self.issue_width), 1, 16),
            (
                "outstanding_loads",
                u64::from(self.outstanding_loads),
                1,
                256,
            ),
            (
                "store_buffer_entries",
                u64::from(self.store_buffer_entries),
                1,
                1024,
            ),
            (
                "branch_resolve_cycles",
                self.branch_resolve_cycles,
                1,
                10_000,
            ),
            ("tlb_entries", u64::from(self.tlb_entries), 1, 65_536),
            ("page_walk_cycles", self.page_walk_cycles, 0, 100_000),
            ("syscall_cycles", self.syscall_cycles, 0, 10_000_000),
        ];
        for (field, value, lo, hi) in ranges {
            if !(lo..=hi).contains(&value) {
                return Err(MachineConfigError::Core {
                    field,
                    problem: format!("{value} is outside {lo}..={hi}"),
                });
            }
        }
        Ok(())
    }
}

/// Resizes one cache level, keeping 64-byte lines.
fn set_level(cache: &mut cache_model::CacheConfig, size_bytes: u64, ways: u32, latency: u64) {
    cache.size_bytes = size_bytes;
    cache.ways = ways;
    cache.sets = size_bytes / (u64::from(ways) * cache.line_bytes);
    cache.hit_latency_cycles = latency;
}

/// A running machine: caches and memory, stepped together in core cycles.
#[derive(Debug)]
pub struct Machine {
    caches: Hierarchy,
    memory: MemorySystem,
    mem_responses: Vec<MemResponse>,
    /// The memory system refused the caches' next request for memory when its queue
    /// departures stood at this count: until a request leaves some queue it is refused again,
    /// so it is not offered again before. (Offering it every cycle changed nothing but cost a
    /// step per core cycle while a write buffer stayed full, as through the end-of-run drain.)
    refused_at: Option<u64>,
    /// The memory system's next event as of its last change (the memory changes only in
    /// `step`, `drain` and through `memory_mut`, which forget it): `complete_at_once` asks for it
    /// on every request.
    memory_wake: Option<Cycle>,
}

impl Machine {
    /// Boots a machine. Every random stream (the platform key, PCONFIG's random keys, random
    /// replacement) is forked from `seed`.
    pub fn new(config: &MachineConfig, seed: u64) -> Result<Machine, MachineConfigError> {
        config.validate()?;
        let rng = RngFactory::new(seed);
        Ok(Machine {
            caches: Hierarchy::new(&config.caches, config.memory.layout, rng)?,
            memory: MemorySystem::new(&config.memory, rng)?,
            mem_responses: Vec::new(),
            refused_at: None,
            memory_wake: None,
        })
    }

    /// The cache hierarchy.
    pub fn caches(&self) -> &Hierarchy {
        &self.caches
    }

    /// The cache hierarchy, to attach observers.
    pub fn caches_mut(&mut self) -> &mut Hierarchy {
        &mut self.caches
    }

    /// The memory system.
    pub fn memory(&self) -> &MemorySystem {
        &self.memory
    }

    /// The memory system, for PCONFIG, bus probes and the DIMMs.
    pub fn memory_mut(&mut self) -> &mut MemorySystem {
        self.memory_wake = None;
        &mut self.memory
    }

    /// Offers a core's request at `now`; refused (and handed back) while the MSHRs it needs are
    /// busy.
    pub fn submit(&mut self, now: Cycle, request: CoreRequest) -> Result<(), CoreRequest> {
        self.caches.submit(now, request)
    }

    /// Completes `request`, an L1D hit, ahead of its cycle when nothing can happen before it
    /// completes, with the hits in flight before it ([`Hierarchy::complete_at_once`]): true,
    /// and their completions go to `completed`, never to [`Machine::step`]'s caller.
    /// Otherwise false, nothing changed: submit it ([`Machine::submit`]).
    #[inline]
    pub fn complete_at_once(
        &mut self,
        now: Cycle,
        request: &CoreRequest,
        completed: &mut impl Extend<Completion>,
    ) -> bool {
        let quiet_until = match self.memory_wake {
            Some(at) => at,
            None => *self.memory_wake.insert(self.memory.next_event_cycle()),
        };
        self.caches
            .complete_at_once(now, request, quiet_until, completed)
    }

    /// Advances the machine through cycle `now`: memory responses due go to the caches, the
    /// caches answer the cores, and the caches' requests go to memory while its queues accept
    /// them.
    pub fn step(&mut self, now: Cycle, responses: &mut Vec<CoreResponse>) {
        self.memory_wake = None;
        self.memory.tick(now, &mut self.mem_responses);
        for response in self.mem_responses.drain(..) {
            self.caches.mem_response(now, response);
        }
        self.caches.tick(now, responses);
        if self
            .refused_at
            .is_some_and(|at| at == self.memory.queue_departures())
        {
            return;
        }
        self.refused_at = None;
        while let Some(request) = self.caches.pop_mem_request(now) {
            if let Err(refused) = self.memory.try_submit(now, request) {
                self.caches.return_mem_request(refused);
                self.refused_at = Some(self.memory.queue_departures());
                break;
            }
        }
    }

    /// The next cycle at which stepping can change anything ([`Cycle::NEVER`] when idle).
    pub fn next_event_cycle(&self) -> Cycle {
        self.caches
            .next_event_cycle()
            .min(self.memory.next_event_cycle())
    }

    /// True while anything is in flight anywhere.
    pub fn has_work(&self) -> bool {
        self.caches.has_work() || self.memory.has_work()
    }

    /// Starts the end of a run: every dirty line is written back and the memory controllers
    /// drain their write buffers. Step until [`Machine::has_work`] is false to finish.
    pub fn drain(&mut self, now: Cycle) {
        self.memory_wake = None;
        self.caches.drain(now);
        self.memory.set_flush_writes(true);
    }

    /// The statistics of every component.
    pub fn report_stats(&self, report: &mut StatsReport) {
        self.caches.report_stats(report);
        self.memory.report_stats(report);
    }
}

/// Cycles are core cycles.
impl TimedComponent for Machine {
    fn next_event_cycle(&self) -> Cycle {
        Machine::next_event_cycle(self)
    }

    fn has_work(&self) -> bool {
        Machine::has_work(self)
    }

    /// Whether anything is in flight and the next event; the rest is in its parts.
    fn describe(&self, _now: Cycle, out: &mut String) {
        let _ = write!(
            out,
            "work in flight: {}; next event {}",
            Machine::has_work(self),
            OrNever(Machine::next_event_cycle(self))
        );
    }

    fn visit_parts(&self, visit: &mut dyn FnMut(&str, &dyn TimedComponent)) {
        visit("caches", &self.caches);
        visit("memory", &self.memory);
    }
}
