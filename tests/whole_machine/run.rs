//! Running a case on the real machine: a `cpu_model::System` (cores, MESI hierarchy, memory
//! controllers with AES-XTS and DRAM timing, PCONFIG with its latency), stepped one cycle at a
//! time so that the machine's state can be checked at every cycle it changes, with the
//! checker's input recorded and a recorder on every controller's DIMM bus.

use crate::case::{CYCLES_MAX, KERNEL_KEYIDS, MachineSpec, Shape};
use crate::scenario_writer::machine_ron;
use cache_model::hierarchy::MesiState;
use cache_model::{CacheEvent, CacheId, Level, StoreStamp};
use checker::{CheckerConfig, ModelError, Violation};
use cpu_model::kernel::KernelConfig;
use cpu_model::program::{OpResult, Program};
use cpu_model::{RunEnd, System, SystemConfig, SystemEvent};
use mem_ctrl::bus::BusRecorder;
use sim_core::{CoreId, Cycle, DramAddr, KeyId, LineAddr, LineBytes, MemOp, StatsReport};
use std::collections::{BTreeMap, BTreeSet};

/// Stats are checked every this many executed cycles (and at the end).
const STATS_EVERY: u64 = 64;
/// The most events recorded for the checks (far more than a generated case makes).
const EVENTS_MAX: usize = 1 << 22;

/// Everything the properties look at after a run.
#[derive(Debug)]
pub struct Outcome {
    pub end: RunEnd,
    pub results: Vec<OpResult>,
    /// What the checker was fed, in order.
    pub events: Vec<SystemEvent>,
    pub violations: Vec<Violation>,
    pub model_errors: Vec<ModelError>,
    /// Transfers on the DIMM buses, in cycle order: (cycle, read or write, DRAM line, bytes
    /// on the wires).
    pub bus: Vec<(u64, MemOp, u64, LineBytes)>,
    /// At the end: each (KeyID, DRAM line) of the case, and of every store, read through the
    /// KeyID's key.
    pub plaintext: BTreeMap<(u16, u64), LineBytes>,
    /// At the end: the DIMMs' contents of those lines.
    pub dimm: BTreeMap<u64, LineBytes>,
    /// The stats report at the end.
    pub stats: StatsReport,
}

/// The machine of the case, built from its RON section (what the replay file says).
pub fn system_config(machine: &MachineSpec, checker: CheckerConfig) -> SystemConfig {
    let machine = scenarios::machine_file::parse(&machine_ron(machine), "generated machine")
        .unwrap_or_else(|e| panic!("a generated machine is valid: {e}"));
    SystemConfig {
        machine,
        kernel: KernelConfig {
            keyids: Some(KERNEL_KEYIDS),
            ..KernelConfig::default()
        },
        cycles_max: CYCLES_MAX,
        drain_at_end: true,
        checker,
    }
}

fn caches(cores: u32) -> Vec<CacheId> {
    let mut v: Vec<CacheId> = (0..cores)
        .flat_map(|c| {
            [Level::L1d, Level::L2].map(|level| CacheId {
                core: Some(CoreId::new(c)),
                level,
            })
        })
        .collect();
    v.push(CacheId {
        core: None,
        level: Level::Llc,
    });
    v
}

/// A copy in a private cache: (core, level, MESI state, bytes, stamp).
type PrivateCopy = (u32, Level, MesiState, LineBytes, StoreStamp);

/// The machine's state at this cycle: MESI's single writer or many readers per (KeyID, line),
/// and readers that agree; the L2 includes the L1D, an inclusive LLC every private copy; no
/// copy dirty that no store touched since it came from memory (prefetched and speculative
/// lines are clean), unless the counterfactual knob is set.
fn check_state(sys: &System, spec: &Shape) -> Result<(), String> {
    let h = sys.machine().caches();
    let at = sys.now();
    let mut private: BTreeMap<LineAddr, Vec<PrivateCopy>> = BTreeMap::new();
    for cache in caches(spec.cores) {
        for line in h.lines(cache) {
            let view = h
                .line(cache, line)
                .ok_or_else(|| format!("cycle {at}: {cache:?} lists {line:?} but has no copy"))?;
            if view.stamp == StoreStamp::MEMORY && view.dirty && !spec.knob {
                return Err(format!(
                    "cycle {at}: {cache:?} holds {line:?} dirty, yet no store touched it since it \
                     came from memory (a speculative or prefetched line dirty without the knob)"
                ));
            }
            if let (Some(core), Some(state)) = (cache.core, view.state) {
                private.entry(line).or_default().push((
                    core.get(),
                    cache.level,
                    state,
                    view.data,
                    view.stamp,
                ));
            }
        }
    }
    let llc = CacheId {
        core: None,
        level: Level::Llc,
    };
    for (line, copies) in &private {
        for &(core, level, ..) in copies {
            if level == Level::L1d && !copies.iter().any(|c| c.0 == core && c.1 == Level::L2) {
                return Err(format!(
                    "cycle {at}: core {core}'s L1D holds {line:?}, its L2 does not (inclusion)"
                ));
            }
            if spec.llc_inclusive && h.line(llc, *line).is_none() {
                return Err(format!(
                    "cycle {at}: core {core}'s {level:?} holds {line:?}, the inclusive LLC does not"
                ));
            }
        }
        let mut holders: Vec<u32> = copies.iter().map(|c| c.0).collect();
        holders.dedup();
        let owner = copies
            .iter()
            .find(|c| matches!(c.2, MesiState::Modified | MesiState::Exclusive));
        if let Some(o) = owner
            && holders.len() > 1
        {
            return Err(format!(
                "cycle {at}: {line:?} is {:?} in core {} yet cached by cores {holders:?} \
                 (single writer)",
                o.2, o.0
            ));
        }
        let shared: Vec<_> = copies.iter().filter(|c| c.2 == MesiState::Shared).collect();
        if let Some(first) = shared.first()
            && let Some(other) = shared.iter().find(|c| (c.3, c.4) != (first.3, first.4))
        {
            return Err(format!(
                "cycle {at}: readers of {line:?} disagree: core {} holds {}, core {} holds {}",
                first.0, first.4, other.0, other.4
            ));
        }
    }
    Ok(())
}

/// Hits + misses = accesses (and reads + writes, read + write misses) at every level, per
/// core and summed.
fn check_stats(report: &StatsReport, cores: u32, at: Cycle) -> Result<(), String> {
    let mut prefixes: Vec<String> = ["l1d", "l2", "llc"].map(str::to_owned).to_vec();
    for c in 0..cores {
        for level in ["l1d", "l2", "llc"] {
            prefixes.push(format!("core{c}.{level}"));
        }
    }
    for p in prefixes {
        let get = |n: &str| report.get_count(&format!("{p}.{n}")).unwrap_or(0);
        let (accesses, hits, misses) = (get("accesses"), get("hits"), get("misses"));
        let (reads, writes) = (get("reads"), get("writes"));
        let (read_misses, write_misses) = (get("read_misses"), get("write_misses"));
        if hits + misses != accesses
            || reads + writes != accesses
            || read_misses + write_misses != misses
        {
            return Err(format!(
                "cycle {at}: {p}: {hits} hits + {misses} misses, {reads} reads + {writes} writes, \
                 {read_misses} + {write_misses} misses, but {accesses} accesses"
            ));
        }
    }
    Ok(())
}

/// Runs `programs` on the machine of `config` with `seed`, checking the machine's state at
/// every cycle it executes (`per_cycle`) or only at the end.
pub fn run(
    shape: &Shape,
    config: &SystemConfig,
    programs: &[Program],
    seed: u64,
    per_cycle: bool,
) -> Result<Outcome, String> {
    let mut sys = System::new(config, programs.to_vec(), seed)
        .map_err(|e| format!("the system cannot be built: {e}"))?;
    sys.record_events(EVENTS_MAX);
    let memory = sys.machine_mut().memory_mut();
    let probes: Vec<_> = (0..memory.controllers().len())
        .map(|i| {
            memory
                .controller_mut(i)
                .bus_mut()
                .attach(Box::new(BusRecorder::with_limit(usize::MAX)))
        })
        .collect();

    let end = if per_cycle {
        let mut executed = 0;
        loop {
            match sys.run_until(sys.now().plus(1)) {
                RunEnd::Paused { .. } => {}
                end => break end,
            }
            if sys.cycles_executed() != executed {
                executed = sys.cycles_executed();
                check_state(&sys, shape)?;
                if executed.is_multiple_of(STATS_EVERY) {
                    let mut report = StatsReport::new();
                    sys.report_stats(&mut report);
                    check_stats(&report, shape.cores, sys.now())?;
                }
            }
        }
    } else {
        sys.run()
    };
    check_state(&sys, shape)?;
    let mut stats = StatsReport::new();
    sys.report_stats(&mut stats);
    check_stats(&stats, shape.cores, sys.now())?;

    if sys.events_not_recorded() > 0 {
        return Err(format!(
            "more than {EVENTS_MAX} events: the case is too long to check"
        ));
    }
    let memory = sys.machine().memory();
    // Every transfer on the DIMM buses (addresses are package DRAM addresses, KeyID bits
    // cleared), in cycle order.
    let mut bus = Vec::new();
    for (i, probe) in probes.iter().enumerate() {
        let recorder = memory.controllers()[i]
            .bus()
            .probe::<BusRecorder>(*probe)
            .expect("attached above");
        bus.extend(
            recorder
                .log()
                .iter()
                .map(|t| (t.cycle.get(), t.op, t.addr.raw(), t.data)),
        );
    }
    bus.sort_by_key(|t| t.0);
    // Every line a store touched (the kernel's pages and prefetched neighbours included),
    // through every KeyID of the case and every KeyID a store used.
    let layout = memory.layout();
    let mut lines: BTreeSet<u64> = shape.lines.iter().copied().collect();
    let mut keyids: BTreeSet<u16> = shape.keyids.iter().copied().collect();
    for e in sys.recorded_events() {
        if let SystemEvent::Cache(CacheEvent::Store { line, .. }) = e {
            lines.insert(layout.line_dram_addr(*line).raw());
            keyids.insert(layout.line_keyid(*line).get());
        }
    }
    let mut plaintext = BTreeMap::new();
    let mut dimm = BTreeMap::new();
    for &dram in &lines {
        dimm.insert(dram, memory.dimm_line(DramAddr::new(dram)));
        for &keyid in &keyids {
            let pa = layout
                .compose(KeyId::new(keyid), DramAddr::new(dram))
                .expect("fits");
            plaintext.insert((keyid, dram), memory.peek_line(pa));
        }
    }
    Ok(Outcome {
        end,
        results: sys.results().to_vec(),
        events: sys.recorded_events().to_vec(),
        violations: sys.checker().violations().to_vec(),
        model_errors: sys.checker().model_errors().to_vec(),
        bus,
        plaintext,
        dimm,
        stats,
    })
}

/// Runs a scenario file written from a case, as the properties run cases.
pub fn run_scenario(s: &scenarios::scenario::Scenario, shape: &Shape) -> Result<Outcome, String> {
    run(shape, &s.system, &s.programs, s.seed, true)
}
