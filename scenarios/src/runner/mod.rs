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
//! `attack` (the attacker at work: its recorders, what it does at which cycle, the cold boot),
//! `findings` (what its recordings show), `aftermath` (what each violation led to), `judge`
//! (each expectation's verdict), `summary` (the text `mktme-sim run` prints).

mod aftermath;
mod attack;
mod findings;
mod judge;
mod observe;
mod summary;

pub use observe::{
    FAULTS_KEPT, LOAD_VALUES_KEPT, LOADS_RECORDED_MAX, PAIR_WAITING_MAX, STORED_LINES_MAX,
};
pub use summary::{Detail, summary};

use crate::measure::{MeasureOptions, Measured, TrafficWatch};
use crate::report::{
    AttackReport, BusEntry, BusLogReport, ColdBootReport, ComponentDump, DramDumpReport, DumpLine,
    EndReport, FaultReport, FindingReport, KeyIdReport, KeyReport, LoadReport, LoadValueReport,
    LostReport, ScenarioReport, StatReport, ViolationReport, hex,
};
use crate::scenario::{AttackKind, Scenario};
use aftermath::{aftermath, in_drain};
use attack::{AttackTaken, ColdBootTaken, DumpTaken, Ended};
use checker::Violation;
use cpu_model::program::{OpOutcome, OpResult, ProcessId};
use cpu_model::{RunEnd, System, SystemError};
use findings::{Finding, bus_findings, cold_boot_findings, dump_findings};
use judge::{Evidence, RunFacts, judge};
use mem_ctrl::bus::BusTransaction;
use mem_ctrl::key_table::KeyMode;
use observe::{LoadSeen, ResultLog, SharedWrites, WriteWatch, lock};
use sim_core::{AddressLayout, KeyId, MemOp, StatValue, StatsReport};

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
#[error(
    "{}: {}",
    sim_core::text::shown_max(file, crate::limits::FILE_CHARS_SHOWN),
    sim_core::text::one_line(problem)
)]
pub struct RunError {
    /// The scenario file.
    pub file: String,
    /// What is wrong.
    pub problem: String,
}

/// Runs `scenario` and returns its report.
pub fn run(scenario: &Scenario, options: &RunOptions) -> Result<ScenarioReport, RunError> {
    run_measured(scenario, options, None).map(|(report, _)| report)
}

/// Runs `scenario` and returns its report and, with `measure`, what the run measured
/// besides ([`Measured`]: traffic, events, the AES stage's counts). Measuring only observes:
/// the report is the same either way.
pub fn run_measured(
    scenario: &Scenario,
    options: &RunOptions,
    measure: Option<MeasureOptions>,
) -> Result<(ScenarioReport, Option<Measured>), RunError> {
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

    // What the caches write, when an expectation or the attacker's analyses compare with it:
    // stores through the KeyIDs `written_through` names, write-backs' plaintext.
    let layout = system.machine().memory().layout();
    let keyids = ResultLog::written_keyids(scenario);
    let attacker = &scenario.attacker;
    let analyses = attacker.records();
    let writes = SharedWrites::default();
    let watch = WriteWatch {
        writes: writes.clone(),
        layout,
        keyids,
        writebacks_max: if analyses { options.bus_log_limit } else { 0 },
    };
    system.machine_mut().caches_mut().attach_observer(watch);
    let traffic = measure.map(|m| {
        if m.events_max > 0 {
            system.record_events(m.events_max);
        }
        let traffic = TrafficWatch::new(layout);
        system
            .machine_mut()
            .caches_mut()
            .attach_observer(traffic.clone());
        traffic
    });

    // Results go to the log as they happen; unless every load is recorded, only the loads
    // the log watches need their values passed on.
    let log = ResultLog::new(scenario, options.all_loads, layout, Some(writes.clone()));
    if !options.all_loads {
        system.keep_load_results_of(log.load_tags());
    }
    system.set_result_sink(Box::new(log));

    // The attacker's hardware: bus recorders, a faulty DIMM.
    let probes = attack::attach_recorders(&mut system, attacker, options.bus_log_limit);
    if let Some(bit) = attacker.ghost_bit {
        let memory = system.machine_mut().memory_mut();
        memory
            .install_ghost_bit(bit)
            .map_err(|e| fail(format!("attacker.bad_ram: {e}")))?;
    }

    // Run, the attacker acting at its cycles.
    let taken = attack::run(&mut system, attacker);
    let plans = &attacker.dram_dumps;

    let (end_report, cycles, finished) = end_report(&system, &taken.end);
    let mut stats = StatsReport::new();
    system.report_stats(&mut stats);
    let (transfers, dropped) = attack::collect_bus_log(&system, attacker, &probes);

    // What each violation led to, read off the run before a cold boot's power cycle.
    let violations: Vec<ViolationReport> = {
        let w = lock(&writes);
        let programs_done = match &taken.end {
            Ended::Model(RunEnd::Finished { programs_done, .. }) => Some(*programs_done),
            Ended::Model(_) | Ended::ColdBoot(_) => None,
        };
        let all = system.checker().violations();
        all.iter()
            .map(|v| {
                let mut r = violation_report(v);
                r.in_drain = in_drain(v, programs_done);
                r.aftermath = aftermath(v, all, &system, &w.last_writeback, programs_done);
                r
            })
            .collect()
    };
    let attack_reports = attack_reports(scenario, &system, &taken.attacks);
    let mut cold_boot = taken.cold_boot;
    if let (Some(plan), Some(cold)) = (&attacker.cold_boot, &mut cold_boot) {
        attack::power_cycle(&mut system, plan, cold);
    }

    // The attacker's analyses, over what it recorded and what the caches wrote back.
    let (writebacks, writebacks_dropped) = {
        let mut w = lock(&writes);
        (std::mem::take(&mut w.writebacks), w.writebacks_dropped)
    };
    let mut findings = Vec::new();
    if attacker.bus_log {
        findings.extend(bus_findings(&transfers, &writebacks));
    }
    findings.extend(dump_findings(plans, &taken.dumps, &writebacks));
    if let Some(cold) = &cold_boot {
        findings.extend(cold_boot_findings(cold, &writebacks));
    }
    let mut missing = Vec::new();
    if dropped > 0 {
        missing.push(format!("{dropped} bus transfers not recorded"));
    }
    if writebacks_dropped > 0 {
        missing.push(format!("{writebacks_dropped} write-backs not kept"));
    }

    let log = system
        .result_sink::<ResultLog>()
        .expect("the runner attached its result log");
    let evidence = Evidence {
        scenario,
        system: &system,
        log,
        facts: RunFacts { cycles, finished },
        findings: &findings,
        findings_incomplete: (!missing.is_empty()).then(|| missing.join(", ")),
    };
    let expectations = scenario
        .expectations
        .iter()
        .enumerate()
        .map(|(i, e)| judge(&evidence, i, e))
        .collect::<Vec<_>>();
    let checker = system.checker();
    let model_errors: Vec<String> = checker
        .model_errors()
        .iter()
        .map(|e| e.to_string())
        .collect();
    let passed = finished && model_errors.is_empty() && expectations.iter().all(|e| e.ok);
    let measured = traffic.map(|traffic| {
        let mut stats = stats.clone();
        system.machine().memory().report_engine_stats(&mut stats);
        let memory = &scenario.system.machine.memory;
        Measured {
            cycles: system.now().get(),
            core_clock_mhz: memory.core_clock_mhz,
            t_ck_ps: memory.dram.params().timing.t_ck_ps,
            layout,
            stats,
            traffic: traffic.traffic(),
            events: system.recorded_events().to_vec(),
            events_not_recorded: system.events_not_recorded(),
        }
    });

    let report = ScenarioReport {
        scenario: scenario.name.clone(),
        file: scenario.file.clone(),
        description: scenario.description.clone(),
        seed: scenario.seed,
        overrides: scenario.overrides.clone(),
        passed,
        end: end_report,
        cycles,
        expectations,
        loads: load_reports(scenario, log, system.machine().memory().layout()),
        loads_not_recorded: log.loads_not_recorded,
        faults: faults(scenario, &log.faults),
        faults_not_kept: log.faults_total - log.faults.len() as u64,
        violations,
        violations_not_kept: checker.violations_not_kept(),
        model_errors,
        keys: key_reports(scenario, &system),
        key_table: key_table(&system, options.reveal_keys),
        stats: stats
            .iter()
            .map(|(name, value)| (name.to_owned(), stat_report(value)))
            .collect(),
        bus_log: attacker
            .bus_log
            .then(|| bus_log_report(scenario, &transfers, dropped)),
        dram_dumps: (!plans.is_empty()).then(|| dump_reports(scenario, &taken.dumps)),
        attacks: (!attacker.attacks.is_empty()).then_some(attack_reports),
        cold_boot: cold_boot
            .as_ref()
            .zip(attacker.cold_boot.as_ref())
            .map(|(cold, plan)| cold_boot_report(scenario, plan, cold)),
        attacker_findings: analyses.then(|| finding_reports(scenario, &findings)),
    };
    Ok((report, measured))
}

/// Each attack as the report gives it, with the chain of its line as the checker knows it at
/// the end of the run (where a surprising load is traced to the attack).
fn attack_reports(
    scenario: &Scenario,
    system: &System,
    taken: &[AttackTaken],
) -> Vec<AttackReport> {
    scenario
        .attacker
        .attacks
        .iter()
        .zip(taken)
        .map(|(plan, t)| {
            let (line, from, bits) = match &plan.kind {
                AttackKind::Replay { line, .. } => (*line, None, None),
                AttackKind::Splice { from, to } => (*to, Some(*from), None),
                AttackKind::BitFlip { line, bits } => (*line, None, Some(bits.clone())),
            };
            AttackReport {
                kind: plan.kind.name(),
                place: format!("{}:{}", scenario.file, plan.place),
                label: plan.label.clone(),
                cycle: t.cycle.get(),
                line: format!("{:#x}", line.raw()),
                cells: (t.cells != line).then(|| format!("{:#x}", t.cells.raw())),
                from: from.map(|f| format!("{:#x}", f.raw())),
                recorded: t.recorded.map(|c| c.get()),
                bits,
                written: hex(&t.written),
                chain: system
                    .checker()
                    .history(t.cells)
                    .iter()
                    .map(|c| c.to_string())
                    .collect(),
            }
        })
        .collect()
}

/// The cold boot as the report gives it.
fn cold_boot_report(
    scenario: &Scenario,
    plan: &crate::scenario::ColdBootPlan,
    cold: &ColdBootTaken,
) -> ColdBootReport {
    /// Lines of the dump the report lists (the findings cover them all).
    const LINES_LISTED: usize = 4096;
    ColdBootReport {
        place: format!("{}:{}", scenario.file, plan.place),
        cycle: cold.cycle.get(),
        key_restore: plan.key_restore,
        lines: cold
            .lines
            .iter()
            .zip(&cold.decrypted)
            .take(LINES_LISTED)
            .map(|((addr, data), after)| crate::report::ColdBootLine {
                addr: format!("{:#x}", addr.raw()),
                data: hex(data),
                after_reboot: hex(after),
            })
            .collect(),
        lines_not_listed: cold.lines.len().saturating_sub(LINES_LISTED) as u64,
        lost_writes: cold
            .lost
            .iter()
            .map(|l| format!("{:#x}", l.raw()))
            .collect(),
    }
}

/// The findings as the report lists them: every kind but `dump_line` and `cold_boot_line`
/// (the lines themselves are in `dram_dumps` and `cold_boot`), kind by kind, line by line.
fn finding_reports(scenario: &Scenario, findings: &[Finding]) -> Vec<FindingReport> {
    findings
        .iter()
        .filter(|f| !f.kind.has_data())
        .map(|f| FindingReport {
            kind: f.kind.name(),
            line: format!("{:#x}", f.line.raw()),
            count: f.count,
            dump: f.dump.map(|d| dump_place(scenario, d)),
        })
        .collect()
}

/// How the report names dump `d`: its label, or its place.
fn dump_place(scenario: &Scenario, d: usize) -> String {
    match scenario.attacker.dram_dumps.get(d) {
        Some(plan) => plan
            .label
            .clone()
            .unwrap_or_else(|| format!("{}:{}", scenario.file, plan.place)),
        None => format!("#{d}"),
    }
}

fn bus_log_report(scenario: &Scenario, transfers: &[BusTransaction], dropped: u64) -> BusLogReport {
    let interposer = scenario.attacker.interposer.as_ref();
    BusLogReport {
        channels: interposer.and_then(|i| i.channels.clone()),
        from: interposer.map(|i| i.from).filter(|&f| f > 0),
        until: interposer.and_then(|i| i.until),
        entries: transfers
            .iter()
            .map(|t| BusEntry {
                cycle: t.cycle.get(),
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

fn dump_reports(scenario: &Scenario, dumps: &[DumpTaken]) -> Vec<DramDumpReport> {
    let plans = &scenario.attacker.dram_dumps;
    plans
        .iter()
        .zip(dumps)
        .map(|(plan, dump)| DramDumpReport {
            cycle: dump.cycle.get(),
            place: format!("{}:{}", scenario.file, plan.place),
            label: plan.label.clone(),
            lines: dump
                .lines
                .iter()
                .map(|(addr, data)| DumpLine {
                    addr: format!("{:#x}", addr.raw()),
                    data: hex(data),
                })
                .collect(),
            pending_writes: dump
                .pending_writes
                .iter()
                .map(|line| format!("{:#x}", line.raw()))
                .collect(),
        })
        .collect()
}

/// The end of the run as the report gives it, the cycle count, and whether it finished (a cold
/// boot ends a run as the scenario asked: it counts as finished).
fn end_report(system: &System, end: &Ended) -> (EndReport, u64, bool) {
    let dump = || {
        Some(
            system
                .dump()
                .into_iter()
                .map(|(component, state)| ComponentDump { component, state })
                .collect(),
        )
    };
    let end = match *end {
        Ended::Model(ref end) => end,
        Ended::ColdBoot(cycle) => {
            return (
                EndReport {
                    reason: "cold_boot",
                    cycle: cycle.get(),
                    programs_done: None,
                    dump: None,
                },
                cycle.get(),
                true,
            );
        }
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
        in_drain: false,
        aftermath: None,
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

fn key_reports(scenario: &Scenario, system: &System) -> Vec<KeyReport> {
    let name = |p: ProcessId| {
        scenario
            .processes
            .get(p.0 as usize)
            .cloned()
            .unwrap_or_else(|| format!("#{}", p.0))
    };
    let declared = !scenario.processes.is_empty();
    system
        .kernel()
        .keys()
        .into_iter()
        .map(|k| KeyReport {
            process: declared.then(|| name(k.owner)),
            viewers: k.viewers.iter().map(|p| name(*p)).collect(),
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
