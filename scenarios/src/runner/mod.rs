//! Runs a validated [`Scenario`] on the model and judges its expectations.
//!
//! The runner boots a [`System`] (machine, cores, kernel, coherency checker) with the
//! scenario's seed, attaches the attacker's bus recorders, runs the programs (pausing at the
//! cycles the attacker snapshots DRAM), and then reads every verdict off what the model
//! recorded: the op results, the checker's violations, the kernel's keys, the DIMMs. Nothing
//! here simulates; it only observes (reads of DRAM for expectations and dumps go around the
//! bus and the statistics, so observing changes nothing).
//!
//! Its parts: `observe` (the op results, taken as they happen and kept within bounds),
//! `judge` (each expectation's verdict), `summary` (the text `mktme-sim run` prints).

mod judge;
mod observe;
mod summary;

pub use observe::{FAULTS_KEPT, LOAD_VALUES_KEPT, LOADS_RECORDED_MAX};
pub use summary::{Detail, summary};

use crate::report::{
    BusEntry, BusLogReport, ComponentDump, DramDumpReport, DumpLine, EndReport, FaultReport,
    KeyIdReport, KeyReport, LoadReport, LoadValueReport, LostReport, ScenarioReport, StatReport,
    ViolationReport, hex,
};
use crate::scenario::{DumpTime, Scenario};
use checker::Violation;
use cpu_model::program::{OpOutcome, OpResult};
use cpu_model::{RunEnd, System, SystemError};
use judge::{RunFacts, judge};
use mem_ctrl::bus::{BusRecorder, ProbeId};
use mem_ctrl::key_table::KeyMode;
use observe::{LoadSeen, ResultLog};
use sim_core::{AddressLayout, Cycle, DramAddr, KeyId, MemOp, StatValue, StatsReport};

/// How to run.
#[derive(Copy, Clone, Debug)]
pub struct RunOptions {
    /// Put key bytes in the report (`--reveal-keys`).
    pub reveal_keys: bool,
    /// Bus transfers recorded per memory controller, at most (the rest are counted).
    pub bus_log_limit: usize,
    /// Record the values of every load, not only the labelled ones (`--all-loads`; still at
    /// most [`LOADS_RECORDED_MAX`] loads and [`LOAD_VALUES_KEPT`] values each, plus the last).
    pub all_loads: bool,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            reveal_keys: false,
            bus_log_limit: 1_000_000,
            all_loads: false,
        }
    }
}

/// A scenario that validated but cannot run (an impossible machine the validator let
/// through).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {problem}")]
pub struct RunError {
    /// The scenario file.
    pub file: String,
    /// What is wrong.
    pub problem: String,
}

/// Runs `scenario` and returns its report.
pub fn run(scenario: &Scenario, options: &RunOptions) -> Result<ScenarioReport, RunError> {
    let fail = |problem: String| RunError {
        file: scenario.file.clone(),
        problem,
    };
    let mut system = System::new(&scenario.system, scenario.programs.clone(), scenario.seed)
        .map_err(|e: SystemError| fail(e.to_string()))?;
    let dram_bytes = system.machine().memory().dram_bytes();
    for plan in &scenario.attacker.dram_dumps {
        if let Some(line) = plan.lines.iter().find(|l| l.raw() >= dram_bytes) {
            return Err(fail(format!(
                "{}: DRAM dump of line {:#x}, beyond the {dram_bytes:#x} bytes installed",
                plan.place,
                line.raw()
            )));
        }
    }

    // Results go to the log as they happen; unless every load is recorded, only the loads
    // the log watches need their values passed on.
    let log = ResultLog::new(scenario, options.all_loads);
    if !options.all_loads {
        system.keep_load_results_of(log.load_tags());
    }
    system.set_result_sink(Box::new(log));

    let probes = if scenario.attacker.bus_log {
        attach_bus_recorders(&mut system, options.bus_log_limit)
    } else {
        Vec::new()
    };

    // Run, pausing at each cycle the attacker snapshots DRAM (in cycle order).
    let plans = &scenario.attacker.dram_dumps;
    let mut at_cycle: Vec<(u64, usize)> = plans
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p.at {
            DumpTime::Cycle(c) => Some((c, i)),
            DumpTime::End => None,
        })
        .collect();
    at_cycle.sort_unstable();
    let mut dumps: Vec<Option<DramDumpReport>> = vec![None; plans.len()];
    let mut end = None;
    for (cycle, i) in at_cycle {
        if end.is_none() {
            match system.run_until(Cycle::new(cycle)) {
                RunEnd::Paused { .. } => {}
                ended => end = Some(ended),
            }
        }
        // A snapshot asked for after the run ended is taken at its end.
        dumps[i] = Some(dram_dump(
            &system,
            &scenario.file,
            plans[i].place,
            &plans[i].lines,
        ));
    }
    let end = match end {
        Some(end) => end,
        None => system.run(),
    };
    for (i, plan) in plans.iter().enumerate() {
        if dumps[i].is_none() {
            dumps[i] = Some(dram_dump(&system, &scenario.file, plan.place, &plan.lines));
        }
    }

    let (end_report, cycles, finished) = end_report(&system, &end);
    let mut stats = StatsReport::new();
    system.report_stats(&mut stats);
    let bus_log = scenario
        .attacker
        .bus_log
        .then(|| collect_bus_log(&mut system, &probes));

    let log = system
        .result_sink::<ResultLog>()
        .expect("the runner attached its result log");
    let facts = RunFacts { cycles, finished };
    let expectations = scenario
        .expectations
        .iter()
        .enumerate()
        .map(|(i, e)| judge(scenario, &system, log, facts, i, e))
        .collect::<Vec<_>>();
    let checker = system.checker();
    let model_errors: Vec<String> = checker
        .model_errors()
        .iter()
        .map(|e| e.to_string())
        .collect();
    let passed = finished && model_errors.is_empty() && expectations.iter().all(|e| e.ok);

    Ok(ScenarioReport {
        scenario: scenario.name.clone(),
        file: scenario.file.clone(),
        description: scenario.description.clone(),
        seed: scenario.seed,
        passed,
        end: end_report,
        cycles,
        expectations,
        loads: load_reports(scenario, log, system.machine().memory().layout()),
        loads_not_recorded: log.loads_not_recorded,
        faults: faults(scenario, &log.faults),
        faults_not_kept: log.faults_total - log.faults.len() as u64,
        violations: checker.violations().iter().map(violation_report).collect(),
        violations_not_kept: checker.violations_not_kept(),
        model_errors,
        keys: key_reports(&system),
        key_table: key_table(&system, options.reveal_keys),
        stats: stats
            .iter()
            .map(|(name, value)| (name.to_owned(), stat_report(value)))
            .collect(),
        bus_log,
        dram_dumps: (!plans.is_empty()).then(|| dumps.into_iter().flatten().collect()),
    })
}

fn attach_bus_recorders(system: &mut System, limit: usize) -> Vec<ProbeId> {
    let memory = system.machine_mut().memory_mut();
    (0..memory.controllers().len())
        .map(|i| {
            memory
                .controller_mut(i)
                .bus_mut()
                .attach(Box::new(BusRecorder::with_limit(limit)))
        })
        .collect()
}

/// Every controller's log merged in bus order (cycle, then controller).
fn collect_bus_log(system: &mut System, probes: &[ProbeId]) -> BusLogReport {
    let memory = system.machine().memory();
    let mut merged = Vec::new();
    let mut dropped = 0;
    for (i, probe) in probes.iter().enumerate() {
        let recorder = memory.controllers()[i]
            .bus()
            .probe::<BusRecorder>(*probe)
            .expect("the runner attached a BusRecorder here");
        dropped += recorder.dropped();
        merged.extend(recorder.log().iter().map(|t| (t.cycle, i, t.clone())));
    }
    // Stable: within one controller, bus order is kept.
    merged.sort_by_key(|(cycle, controller, _)| (*cycle, *controller));
    BusLogReport {
        entries: merged
            .into_iter()
            .map(|(cycle, _, t)| BusEntry {
                cycle: cycle.get(),
                op: match t.op {
                    MemOp::Read => "R",
                    MemOp::Write => "W",
                },
                addr: format!("{:#x}", t.addr.raw()),
                data: hex(&t.data),
            })
            .collect(),
        dropped,
    }
}

fn dram_dump(
    system: &System,
    file: &str,
    place: crate::scenario::Location,
    lines: &[DramAddr],
) -> DramDumpReport {
    let memory = system.machine().memory();
    DramDumpReport {
        cycle: system.now().get(),
        place: format!("{file}:{place}"),
        lines: lines
            .iter()
            .map(|addr| DumpLine {
                addr: format!("{:#x}", addr.raw()),
                data: hex(&memory.dimm_line(*addr)),
            })
            .collect(),
    }
}

/// The end of the run as the report gives it, the cycle count, and whether it finished.
fn end_report(system: &System, end: &RunEnd) -> (EndReport, u64, bool) {
    let dump = || {
        Some(
            system
                .dump()
                .into_iter()
                .map(|(component, state)| ComponentDump { component, state })
                .collect(),
        )
    };
    match *end {
        RunEnd::Finished {
            programs_done,
            cycle,
        } => (
            EndReport {
                reason: "finished",
                cycle: cycle.get(),
                programs_done: Some(programs_done.get()),
                dump: None,
            },
            programs_done.get(),
            true,
        ),
        RunEnd::CyclesMax { cycle } | RunEnd::Paused { cycle } => (
            EndReport {
                reason: "cycles_max",
                cycle: cycle.get(),
                programs_done: None,
                dump: dump(),
            },
            cycle.get(),
            false,
        ),
        RunEnd::Deadlock { cycle } => (
            EndReport {
                reason: "deadlock",
                cycle: cycle.get(),
                programs_done: None,
                dump: dump(),
            },
            cycle.get(),
            false,
        ),
    }
}

/// The recorded loads, in file order.
fn load_reports(scenario: &Scenario, log: &ResultLog, layout: AddressLayout) -> Vec<LoadReport> {
    let value = |v: &LoadSeen| LoadValueReport {
        cycle: v.cycle.get(),
        keyid: layout.keyid(v.pa).get(),
        addr: format!("{:#x}", layout.dram_addr(v.pa).raw()),
        data: hex(&v.bytes),
    };
    log.loads_in_order()
        .into_iter()
        .map(|l| {
            let info = scenario.ops.get(l.tag.0 as usize);
            LoadReport {
                core: info.map_or(0, |i| i.core.get()),
                label: info.and_then(|i| i.name.clone()),
                op: info.map_or_else(String::new, |i| format!("{}:{}", scenario.file, i.place)),
                summary: info.map_or_else(String::new, |i| i.summary.clone()),
                executions: l.executions,
                values: l.values.iter().map(value).collect(),
                last: l.last.as_ref().map(value),
            }
        })
        .collect()
}

fn faults(scenario: &Scenario, results: &[OpResult]) -> Vec<FaultReport> {
    results
        .iter()
        .filter_map(|r| match &r.outcome {
            OpOutcome::Fault(f) => {
                let info = scenario.ops.get(r.tag.0 as usize);
                Some(FaultReport {
                    core: r.core.get(),
                    op: info.map_or_else(String::new, |i| format!("{}:{}", scenario.file, i.place)),
                    label: info.and_then(|i| i.name.clone()),
                    cycle: r.cycle.get(),
                    addr: format!("{:#x}", f.addr),
                    kind: f.kind.name(),
                })
            }
            _ => None,
        })
        .collect()
}

fn violation_report(v: &Violation) -> ViolationReport {
    ViolationReport {
        kind: v.kind.name(),
        cycle: v.cycle.get(),
        line: format!("{:#x}", v.line.raw()),
        keyids: v.keyids.iter().map(|k| k.get()).collect(),
        explanation: v.explanation.clone(),
        repeats: v.repeats,
        lost: v.lost.as_ref().map(|l| LostReport {
            lost_keyid: l.lost_keyid.get(),
            lost_data: hex(&l.lost_bytes),
            writer_keyid: l.writer_keyid.get(),
            written_data: hex(&l.written_bytes),
            recoverable_by: l.recoverable_by.map(|(k, _)| k.get()),
        }),
        chain: v.chain.iter().map(|c| c.to_string()).collect(),
    }
}

fn key_reports(system: &System) -> Vec<KeyReport> {
    system
        .kernel()
        .keys()
        .into_iter()
        .map(|k| KeyReport {
            name: k.name,
            serial: format!("{:#x}", k.serial),
            keyid: k.keyid.map(|id| id.get()),
            key_type: k.key_type,
            state: k.state,
            pages: k.pages,
        })
        .collect()
}

fn key_table(system: &System, reveal: bool) -> Vec<KeyIdReport> {
    let memory = system.machine().memory();
    let max = memory.tme().settings().max_keys;
    let mut out = Vec::new();
    for id in 0..=max {
        let keyid = KeyId::new(id);
        let mode = if id == 0 {
            if memory.key(keyid).is_some() {
                "platform"
            } else {
                "tme"
            }
        } else {
            match memory.key_mode(keyid) {
                KeyMode::Tme => continue,
                m => m.name(),
            }
        };
        let key = memory.key(keyid).filter(|_| reveal);
        out.push(KeyIdReport {
            keyid: id,
            mode,
            data_key: key.map(|k| hex(k.data_key())),
            tweak_key: key.map(|k| hex(k.tweak_key())),
        });
    }
    out
}

fn stat_report(value: &StatValue) -> StatReport {
    match value {
        StatValue::Count(n) => StatReport::Count(*n),
        StatValue::Histogram(h) => StatReport::Histogram {
            count: h.count(),
            mean: h.mean(),
            buckets: h.iter().map(|(v, n)| [v, n]).collect(),
        },
    }
}
