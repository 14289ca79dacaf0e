//! Runs a validated [`Scenario`] on the model and judges its expectations.
//!
//! The runner boots a [`System`] (machine, cores, kernel, coherency checker) with the
//! scenario's seed, attaches the attacker's bus recorders, runs the programs (pausing at the
//! cycles the attacker snapshots DRAM), and then reads every verdict off what the model
//! recorded: the op results, the checker's violations, the kernel's keys, the DIMMs. Nothing
//! here simulates; it only observes (reads of DRAM for expectations and dumps go around the
//! bus and the statistics, so observing changes nothing).

use crate::report::{
    BusEntry, BusLogReport, ComponentDump, DramDumpReport, DumpLine, EndReport, ExpectationReport,
    FaultReport, KeyIdReport, KeyReport, LostReport, ScenarioReport, StatReport, ViolationReport,
    hex,
};
use crate::scenario::{
    DumpTime, ExpectKind, Expectation, PconfigExpect, Scenario, ViolationExpect,
};
use checker::Violation;
use cpu_model::program::{OpOutcome, OpResult, OpTag};
use cpu_model::{RunEnd, System, SystemError};
use mem_ctrl::bus::{BusRecorder, ProbeId};
use mem_ctrl::key_table::KeyMode;
use mem_ctrl::pconfig::PconfigOutcome;
use sim_core::{Cycle, DramAddr, KeyId, LINE_BYTES, MemOp, StatValue, StatsReport};
use std::fmt::Write;

/// How to run.
#[derive(Copy, Clone, Debug)]
pub struct RunOptions {
    /// Put key bytes in the report (`--reveal-keys`).
    pub reveal_keys: bool,
    /// Bus transfers recorded per memory controller, at most (the rest are counted).
    pub bus_log_limit: usize,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            reveal_keys: false,
            bus_log_limit: 1_000_000,
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

    // Only loads with a value to judge need their values kept.
    system.keep_load_results_of(scenario.expectations.iter().filter_map(|e| match e.kind {
        ExpectKind::LoadValue { op, .. } => Some(op),
        _ => None,
    }));

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

    let results = system.results();
    let expectations = scenario
        .expectations
        .iter()
        .map(|e| judge(scenario, &system, results, cycles, finished, e))
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
        faults: faults(scenario, results),
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
        pending_writes: memory
            .pending_write_lines()
            .iter()
            .map(|line| format!("{:#x}", line.raw()))
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

/// How an op is named in reports: its label or summary, and its place.
fn op_name(scenario: &Scenario, tag: OpTag) -> String {
    match scenario.ops.get(tag.0 as usize) {
        Some(info) => {
            let what = match &info.name {
                Some(label) => format!("`{label}` ({})", info.summary),
                None => info.summary.clone(),
            };
            format!("core {} {what} at {}", info.core.get(), info.place)
        }
        None => format!("op #{}", tag.0),
    }
}

/// The results of op `tag` (on its own core), in completion order.
fn results_of(results: &[OpResult], tag: OpTag) -> impl Iterator<Item = &OpResult> {
    results.iter().filter(move |r| r.tag == tag)
}

fn describe_outcome(outcome: &OpOutcome) -> String {
    match outcome {
        OpOutcome::Load { bytes, .. } => format!("loaded {}", hex(bytes)),
        OpOutcome::Fault(f) => format!("faulted ({}) at {:#x}", f.kind.name(), f.addr),
        OpOutcome::Pconfig(o) => format!("PCONFIG {o}"),
        OpOutcome::Kernel(Ok(v)) => format!("returned {v:#x}"),
        OpOutcome::Kernel(Err(e)) => format!("failed with {e}"),
    }
}

/// Checks that every execution of `tag` satisfies `accept`; the observation names the first
/// that does not, or how many matched.
fn every_execution(
    results: &[OpResult],
    tag: OpTag,
    accept: impl Fn(&OpOutcome) -> bool,
) -> (bool, String) {
    let mut count = 0u64;
    for r in results_of(results, tag) {
        count += 1;
        if !accept(&r.outcome) {
            let nth = if count == 1 {
                String::new()
            } else {
                format!("execution {count} ")
            };
            return (
                false,
                format!(
                    "{nth}at cycle {}: {}",
                    r.cycle.get(),
                    describe_outcome(&r.outcome)
                ),
            );
        }
    }
    match count {
        0 => (false, "never completed".to_owned()),
        1 => {
            let r = results_of(results, tag).next().expect("one result");
            (
                true,
                format!(
                    "at cycle {}: {}",
                    r.cycle.get(),
                    describe_outcome(&r.outcome)
                ),
            )
        }
        n => (true, format!("all {n} executions as expected")),
    }
}

fn pconfig_matches(expect: PconfigExpect, outcome: &PconfigOutcome) -> bool {
    match (expect, outcome) {
        (PconfigExpect::Status(s), PconfigOutcome::Status(got)) => s == *got,
        (PconfigExpect::Fault(v), PconfigOutcome::Fault(f)) => f.vector() == v,
        _ => false,
    }
}

fn judge(
    scenario: &Scenario,
    system: &System,
    results: &[OpResult],
    cycles: u64,
    finished: bool,
    expectation: &Expectation,
) -> ExpectationReport {
    let (expect, (ok, observed)) = match &expectation.kind {
        ExpectKind::LoadValue { op, bytes } => (
            format!("{} loads {}", op_name(scenario, *op), hex(bytes)),
            every_execution(
                results,
                *op,
                |o| matches!(o, OpOutcome::Load { bytes: got, .. } if got == bytes),
            ),
        ),
        ExpectKind::Pconfig { op, outcome } => (
            format!(
                "{} gives {}",
                op_name(scenario, *op),
                match outcome {
                    PconfigExpect::Status(s) => format!("RAX = {s}"),
                    PconfigExpect::Fault(v) => v.to_string(),
                }
            ),
            every_execution(
                results,
                *op,
                |o| matches!(o, OpOutcome::Pconfig(got) if pconfig_matches(*outcome, got)),
            ),
        ),
        ExpectKind::Kernel { op, result } => (
            format!(
                "{} {}",
                op_name(scenario, *op),
                match result {
                    Ok(None) => "succeeds".to_owned(),
                    Ok(Some(v)) => format!("returns {v:#x}"),
                    Err(e) => format!("fails with {e}"),
                }
            ),
            every_execution(results, *op, |o| match (o, result) {
                (OpOutcome::Kernel(Ok(_)), Ok(None)) => true,
                (OpOutcome::Kernel(Ok(v)), Ok(Some(want))) => v == want,
                (OpOutcome::Kernel(Err(e)), Err(want)) => e == want,
                _ => false,
            }),
        ),
        ExpectKind::Fault { op, kind } => (
            format!(
                "{} faults{}",
                op_name(scenario, *op),
                kind.map_or(String::new(), |k| format!(" ({})", k.name()))
            ),
            every_execution(
                results,
                *op,
                |o| matches!(o, OpOutcome::Fault(f) if kind.is_none_or(|k| f.kind == k)),
            ),
        ),
        ExpectKind::NoFaults => {
            let faults: Vec<&OpResult> = results
                .iter()
                .filter(|r| matches!(r.outcome, OpOutcome::Fault(_)))
                .collect();
            (
                "no op faults".to_owned(),
                match faults.first() {
                    None => (true, "no faults".to_owned()),
                    Some(first) => (
                        false,
                        format!(
                            "{} fault(s); the first: {} at cycle {}: {}",
                            faults.len(),
                            op_name(scenario, first.tag),
                            first.cycle.get(),
                            describe_outcome(&first.outcome)
                        ),
                    ),
                },
            )
        }
        ExpectKind::Violations(v) => judge_violations(system, *v),
        ExpectKind::Plaintext { keyid, line, bytes } => {
            let expect = format!(
                "DRAM line {:#x} reads through KeyID {} as {}",
                line.raw(),
                keyid.get(),
                hex(bytes)
            );
            (expect, judge_plaintext(system, *keyid, *line, bytes))
        }
        ExpectKind::Cycles { min, max } => {
            let mut expect = "the programs end".to_owned();
            if let Some(min) = min {
                let _ = write!(expect, " after at least {min} cycles");
            }
            if let Some(max) = max {
                let _ = write!(
                    expect,
                    "{} within {max} cycles",
                    if min.is_some() { " and" } else { "" }
                );
            }
            let ok = finished && min.is_none_or(|m| cycles >= m) && max.is_none_or(|m| cycles <= m);
            let observed = if finished {
                format!("ended at cycle {cycles}")
            } else {
                format!("the run stopped at cycle {cycles} before the programs ended")
            };
            (expect, (ok, observed))
        }
    };
    ExpectationReport {
        place: format!("{}:{}", scenario.file, expectation.place),
        expect,
        ok,
        observed,
    }
}

fn judge_violations(system: &System, expect: ViolationExpect) -> (String, (bool, String)) {
    let checker = system.checker();
    let found = checker.violations();
    // The first few, then a count: the violations themselves are listed in full elsewhere.
    const SHOWN: usize = 3;
    let list = |vs: &[&Violation]| {
        let mut text = vs
            .iter()
            .take(SHOWN)
            .map(|v| {
                format!(
                    "{} at cycle {} on line {:#x}",
                    v.kind,
                    v.cycle.get(),
                    v.line.raw()
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        if vs.len() > SHOWN {
            let _ = write!(text, "; and {} more", vs.len() - SHOWN);
        }
        text
    };
    let all: Vec<&Violation> = found.iter().collect();
    let total = found.len() as u64 + checker.violations_not_kept();
    match expect {
        ViolationExpect::None => (
            "no coherency violations".to_owned(),
            if total == 0 {
                (true, "none found".to_owned())
            } else {
                (false, format!("{total} found: {}", list(&all)))
            },
        ),
        ViolationExpect::Any => (
            "some coherency violation".to_owned(),
            if total == 0 {
                (false, "none found".to_owned())
            } else {
                (true, format!("{total} found: {}", list(&all)))
            },
        ),
        ViolationExpect::Kind { kind, line } => {
            let expect = match line {
                Some(l) => format!("a {kind} violation on DRAM line {:#x}", l.raw()),
                None => format!("a {kind} violation"),
            };
            let matching: Vec<&Violation> = found
                .iter()
                .filter(|v| v.kind == kind && line.is_none_or(|l| v.line == l))
                .collect();
            let observed = if matching.is_empty() {
                if all.is_empty() {
                    (false, "no violations found".to_owned())
                } else {
                    (false, format!("only: {}", list(&all)))
                }
            } else {
                (true, list(&matching))
            };
            (expect, observed)
        }
    }
}

fn judge_plaintext(system: &System, keyid: KeyId, line: DramAddr, bytes: &[u8]) -> (bool, String) {
    let memory = system.machine().memory();
    if line.raw() >= memory.dram_bytes() || !line.is_line_aligned() {
        return (
            false,
            format!("line {:#x} is not a line of the installed DRAM", line.raw()),
        );
    }
    let Ok(pa) = memory.layout().compose(keyid, line) else {
        return (
            false,
            format!("KeyID {} does not exist on this machine", keyid.get()),
        );
    };
    let got = memory.peek_line(pa);
    let ok = got.len() == bytes.len() && got[..] == bytes[..];
    debug_assert_eq!(got.len(), LINE_BYTES);
    (ok, format!("reads {}", hex(&got)))
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

/// The human-readable summary `mktme-sim run` prints: the end, each expectation with its
/// verdict, the violations with their chains, faults, keys, and the headline statistics.
pub fn summary(report: &ScenarioReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "scenario {} ({}), seed {}",
        report.scenario, report.file, report.seed
    );
    let end = &report.end;
    match end.reason {
        "finished" => {
            let _ = writeln!(
                s,
                "  finished: programs ended at cycle {}, caches drained by cycle {}",
                end.programs_done.unwrap_or(end.cycle),
                end.cycle
            );
        }
        reason => {
            let _ = writeln!(
                s,
                "  STOPPED ({reason}) at cycle {}; component state:",
                end.cycle
            );
            for c in end.dump.iter().flatten() {
                let _ = writeln!(s, "    {}:", c.component);
                for line in c.state.lines() {
                    let _ = writeln!(s, "      {line}");
                }
            }
        }
    }
    if !report.expectations.is_empty() {
        let _ = writeln!(s, "  expectations:");
        for e in &report.expectations {
            let _ = writeln!(
                s,
                "    {} {}: {}\n         {}",
                if e.ok { "PASS" } else { "FAIL" },
                e.place,
                e.expect,
                e.observed
            );
        }
    }
    if !report.violations.is_empty() {
        let _ = writeln!(s, "  coherency violations:");
        for v in &report.violations {
            let _ = writeln!(
                s,
                "    {} at cycle {}, DRAM line {}, KeyIDs {:?}\n      {}",
                v.kind, v.cycle, v.line, v.keyids, v.explanation
            );
            if let Some(lost) = &v.lost {
                let _ = writeln!(
                    s,
                    "      lost (KeyID {}): {}\n      written (KeyID {}): {}",
                    lost.lost_keyid, lost.lost_data, lost.writer_keyid, lost.written_data
                );
            }
            let _ = writeln!(s, "      chain, oldest first:");
            for c in &v.chain {
                let _ = writeln!(s, "        {c}");
            }
        }
        if report.violations_not_kept > 0 {
            let _ = writeln!(s, "    ({} more not kept)", report.violations_not_kept);
        }
    }
    for m in &report.model_errors {
        let _ = writeln!(s, "  MODEL ERROR (a simulator bug): {m}");
    }
    if !report.faults.is_empty() {
        let _ = writeln!(s, "  faults:");
        for f in &report.faults {
            let _ = writeln!(
                s,
                "    core {} {}{} at cycle {}: {} at {}",
                f.core,
                f.op,
                f.label
                    .as_ref()
                    .map_or(String::new(), |l| format!(" `{l}`")),
                f.cycle,
                f.kind,
                f.addr
            );
        }
    }
    if !report.keys.is_empty() {
        let _ = writeln!(s, "  keys:");
        for k in &report.keys {
            let _ = writeln!(
                s,
                "    {} (serial {}, {}): {}{}, {} page(s)",
                k.name,
                k.serial,
                k.key_type,
                k.state,
                k.keyid.map_or(String::new(), |id| format!(", KeyID {id}")),
                k.pages
            );
        }
    }
    let count = |name: &str| match report.stats.get(name) {
        Some(StatReport::Count(n)) => *n,
        _ => 0,
    };
    // Summed over memory controllers: `mc0.reads`, `mc1.reads`, ...
    let sum = |name: &str| -> u64 {
        report
            .stats
            .iter()
            .filter(|(k, _)| {
                k.split_once('.').is_some_and(|(mc, rest)| {
                    rest == name
                        && mc
                            .strip_prefix("mc")
                            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
                })
            })
            .map(|(_, v)| match v {
                StatReport::Count(n) => *n,
                StatReport::Histogram { .. } => 0,
            })
            .sum()
    };
    let _ = writeln!(
        s,
        "  stats: {} cycles; DRAM {} reads, {} writes; {} lines encrypted, {} decrypted; PCONFIG {} executed",
        report.cycles,
        sum("reads"),
        sum("writes"),
        sum("lines_encrypted"),
        sum("lines_decrypted"),
        count("pconfig.executed"),
    );
    let passed = report.expectations.iter().filter(|e| e.ok).count();
    let _ = writeln!(
        s,
        "  result: {} ({passed}/{} expectations held)",
        if report.passed { "PASSED" } else { "FAILED" },
        report.expectations.len()
    );
    s
}
