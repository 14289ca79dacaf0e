//! Judging expectations: each against what the run recorded (the result log's verdicts for
//! op executions, the checker for violations, DRAM for plaintext, the end for cycles), worded
//! for the report: what was expected and what was observed.

use super::observe::ResultLog;
use crate::report::ExpectationReport;
use crate::report::hex;
use crate::scenario::{ExpectKind, Expectation, PconfigExpect, Scenario, ViolationExpect};
use checker::Violation;
use cpu_model::System;
use cpu_model::program::{OpOutcome, OpTag};
use mem_ctrl::pconfig::PconfigOutcome;
use sim_core::{DramAddr, KeyId, LINE_BYTES};
use std::fmt::Write;

pub(super) fn op_name(scenario: &Scenario, tag: OpTag) -> String {
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

pub(super) fn describe_outcome(outcome: &OpOutcome) -> String {
    match outcome {
        OpOutcome::Load { bytes, .. } => format!("loaded {}", hex(bytes)),
        OpOutcome::Fault(f) => format!("faulted ({}) at {:#x}", f.kind.name(), f.addr),
        OpOutcome::Pconfig(o) => format!("PCONFIG {o}"),
        OpOutcome::Kernel(Ok(v)) => format!("returned {v:#x}"),
        OpOutcome::Kernel(Err(e)) => format!("failed with {e}"),
    }
}

fn pconfig_matches(expect: PconfigExpect, outcome: &PconfigOutcome) -> bool {
    match (expect, outcome) {
        (PconfigExpect::Status(s), PconfigOutcome::Status(got)) => s == *got,
        (PconfigExpect::Fault(v), PconfigOutcome::Fault(f)) => f.vector() == v,
        _ => false,
    }
}

/// Whether one execution's outcome meets an expectation on op executions; `Err` carries what
/// to add to the description of the execution that did not (nothing, for most).
pub(super) fn accepts(kind: &ExpectKind, outcome: &OpOutcome) -> Result<(), String> {
    let ok = match kind {
        ExpectKind::LoadValue { bytes, .. } => {
            matches!(outcome, OpOutcome::Load { bytes: got, .. } if got == bytes)
        }
        ExpectKind::Pconfig { outcome: want, .. } => {
            matches!(outcome, OpOutcome::Pconfig(got) if pconfig_matches(*want, got))
        }
        ExpectKind::Kernel { result, .. } => match (outcome, result) {
            (OpOutcome::Kernel(Ok(_)), Ok(None)) => true,
            (OpOutcome::Kernel(Ok(v)), Ok(Some(want))) => v == want,
            (OpOutcome::Kernel(Err(e)), Err(want)) => e == want,
            _ => false,
        },
        ExpectKind::Fault { kind, .. } => {
            matches!(outcome, OpOutcome::Fault(f) if kind.is_none_or(|k| f.kind == k))
        }
        ExpectKind::NoFaults
        | ExpectKind::Violations(_)
        | ExpectKind::Plaintext { .. }
        | ExpectKind::Cycles { .. } => true,
    };
    if ok { Ok(()) } else { Err(String::new()) }
}

/// What ended the run, as judging needs it.
#[derive(Copy, Clone, Debug)]
pub(super) struct RunFacts {
    /// Cycles until the programs ended (or the run stopped).
    pub(super) cycles: u64,
    /// Whether every program ended.
    pub(super) finished: bool,
}

/// The verdict on expectation `i` of `scenario`.
pub(super) fn judge(
    scenario: &Scenario,
    system: &System,
    log: &ResultLog,
    facts: RunFacts,
    i: usize,
    expectation: &Expectation,
) -> ExpectationReport {
    let verdict = || log.verdicts[i].outcome();
    let (expect, (ok, observed)) = match &expectation.kind {
        ExpectKind::LoadValue { op, bytes } => (
            format!("{} loads {}", op_name(scenario, *op), hex(bytes)),
            verdict(),
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
            verdict(),
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
            verdict(),
        ),
        ExpectKind::Fault { op, kind } => (
            format!(
                "{} faults{}",
                op_name(scenario, *op),
                kind.map_or(String::new(), |k| format!(" ({})", k.name()))
            ),
            verdict(),
        ),
        ExpectKind::NoFaults => (
            "no op faults".to_owned(),
            match log.faults.first() {
                None => (true, "no faults".to_owned()),
                Some(first) => (
                    false,
                    format!(
                        "{} fault(s); the first: {} at cycle {}: {}",
                        log.faults_total,
                        op_name(scenario, first.tag),
                        first.cycle.get(),
                        describe_outcome(&first.outcome)
                    ),
                ),
            },
        ),
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
            let RunFacts { cycles, finished } = facts;
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
