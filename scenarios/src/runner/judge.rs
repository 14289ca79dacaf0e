//! Judging expectations: each against what the run recorded (the result log's verdicts for
//! op executions, the checker for violations, DRAM for plaintext, the end for cycles), worded
//! for the report: what was expected and what was observed.

use super::findings::{Finding, selected};
use super::observe::{PAIR_WAITING_MAX, ResultLog, describe_outcome};
use crate::report::ExpectationReport;
use crate::report::hex;
use crate::scenario::{
    AttackerExpect, BytesAt, ExpectKind, Expectation, LossExpect, PconfigExpect, Scenario,
    ViolationExpect, chain_holds,
};
use checker::{Violation, ViolationKind};
use cpu_model::System;
use cpu_model::program::OpTag;
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

/// What ended the run, as judging needs it.
#[derive(Copy, Clone, Debug)]
pub(super) struct RunFacts {
    /// Cycles until the programs ended (or the run stopped).
    pub(super) cycles: u64,
    /// Whether every program ended.
    pub(super) finished: bool,
}

/// Everything the verdicts are read from.
pub(super) struct Evidence<'r> {
    pub(super) scenario: &'r Scenario,
    pub(super) system: &'r System,
    pub(super) log: &'r ResultLog,
    pub(super) facts: RunFacts,
    /// The attacker's findings.
    pub(super) findings: &'r [Finding],
    /// The attacker's recordings left something out: the bus log's dropped transfers, the
    /// write-backs not kept.
    pub(super) findings_incomplete: Option<String>,
}

/// The verdict on expectation `i` of the scenario.
pub(super) fn judge(ev: &Evidence<'_>, i: usize, expectation: &Expectation) -> ExpectationReport {
    let (scenario, system, log, facts) = (ev.scenario, ev.system, ev.log, ev.facts);
    let verdict = || log.verdicts[i].outcome();
    let (expect, (ok, observed)) = match &expectation.kind {
        ExpectKind::LoadValue { op, bytes } => (
            format!("{} loads {}", op_name(scenario, *op), hex(bytes)),
            verdict(),
        ),
        ExpectKind::LoadNot { op, bytes } => (
            format!("{} never loads {}", op_name(scenario, *op), hex(bytes)),
            verdict(),
        ),
        ExpectKind::LoadSameAs { op, other, same } => (
            format!(
                "{} loads {} {}, execution by execution",
                op_name(scenario, *op),
                if *same {
                    "what"
                } else {
                    "something other than what"
                },
                op_name(scenario, *other)
            ),
            match log.pair_shortfall(i) {
                Some((n, _)) if log.pair_overflowed(i) => (
                    false,
                    format!(
                        "{n} executions of one load waited for the other's: more than \
                         {PAIR_WAITING_MAX} cannot be paired"
                    ),
                ),
                Some((a, b)) => (
                    false,
                    format!(
                        "the load ran {a} time(s) and the other {b}: expected as many \
                         executions of each"
                    ),
                ),
                None => verdict(),
            },
        ),
        ExpectKind::LoadWritten { op, keyid, same } => (
            format!(
                "{} loads {} KeyID {} had last written to those bytes",
                op_name(scenario, *op),
                if *same { "what" } else { "other than what" },
                keyid.get()
            ),
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
        ExpectKind::Violations(v) => judge_violations(system, v),
        ExpectKind::Loss(l) => judge_loss(system, l),
        ExpectKind::Attacker(a) => judge_attacker(ev, a),
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

/// Whether violation `v`'s chain holds these texts in order, and the words for an expectation.
fn chain_matches(v: &Violation, texts: &[String]) -> bool {
    texts.is_empty() || {
        let chain: Vec<String> = v.chain.iter().map(ToString::to_string).collect();
        chain_holds(&chain, texts)
    }
}

/// ` whose chain holds "a", then "b"`.
fn chain_text(texts: &[String]) -> String {
    if texts.is_empty() {
        return String::new();
    }
    let quoted: Vec<String> = texts.iter().map(|t| format!("{t:?}")).collect();
    format!(" whose chain holds {}", quoted.join(", then "))
}

fn judge_violations(system: &System, expect: &ViolationExpect) -> (String, (bool, String)) {
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
        ViolationExpect::Kind { kind, line, chain } => {
            let mut expect = match line {
                Some(l) => format!("a {kind} violation on DRAM line {:#x}", l.raw()),
                None => format!("a {kind} violation"),
            };
            expect.push_str(&chain_text(chain));
            let of_kind: Vec<&Violation> = found
                .iter()
                .filter(|v| v.kind == *kind && line.is_none_or(|l| v.line == l))
                .collect();
            let matching: Vec<&Violation> = of_kind
                .iter()
                .copied()
                .filter(|v| chain_matches(v, chain))
                .collect();
            let observed = if matching.is_empty() {
                if all.is_empty() {
                    (false, "no violations found".to_owned())
                } else if let Some(first) = of_kind.first() {
                    let chain: Vec<String> = first.chain.iter().map(|c| c.to_string()).collect();
                    (
                        false,
                        format!(
                            "{} such violation(s), none with that chain; the first's: {}",
                            of_kind.len(),
                            chain.join("; ")
                        ),
                    )
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

/// `the lost line (KeyID 2) holds 2222 at byte 0`.
fn bytes_at_text(what: &str, b: &BytesAt) -> String {
    let mut text = format!("the {what} line");
    if let Some(k) = b.keyid {
        let _ = write!(text, " (KeyID {})", k.get());
    }
    if !b.bytes.is_empty() {
        let _ = write!(text, " holds {} at byte {}", hex(&b.bytes), b.offset);
    }
    text
}

fn judge_loss(system: &System, e: &LossExpect) -> (String, (bool, String)) {
    let mut expect = "a data_loss violation".to_owned();
    if let Some(l) = e.line {
        let _ = write!(expect, " on DRAM line {:#x}", l.raw());
    }
    let parts: Vec<String> = [("lost", &e.lost), ("written", &e.written)]
        .into_iter()
        .filter_map(|(what, b)| b.as_ref().map(|b| bytes_at_text(what, b)))
        .collect();
    let _ = write!(expect, " where {}", parts.join(" and "));
    expect.push_str(&chain_text(&e.chain));
    let losses: Vec<&Violation> = system
        .checker()
        .violations()
        .iter()
        .filter(|v| v.kind == ViolationKind::DataLoss && e.line.is_none_or(|l| v.line == l))
        .collect();
    let matches = |v: &&&Violation| {
        chain_matches(v, &e.chain)
            && v.lost.as_ref().is_some_and(|lost| {
                e.lost
                    .as_ref()
                    .is_none_or(|b| b.matches(lost.lost_keyid, &lost.lost_bytes))
                    && e.written
                        .as_ref()
                        .is_none_or(|b| b.matches(lost.writer_keyid, &lost.written_bytes))
            })
    };
    let describe = |v: &Violation| match &v.lost {
        Some(l) => format!(
            "data_loss at cycle {} on line {:#x}: lost (KeyID {}) {}, written (KeyID {}) {}",
            v.cycle.get(),
            v.line.raw(),
            l.lost_keyid.get(),
            hex(&l.lost_bytes),
            l.writer_keyid.get(),
            hex(&l.written_bytes)
        ),
        None => format!(
            "data_loss at cycle {} on line {:#x}",
            v.cycle.get(),
            v.line.raw()
        ),
    };
    let observed = match losses.iter().find(matches) {
        Some(v) => (true, describe(v)),
        None => match losses.first() {
            None => (false, "no such data_loss violation found".to_owned()),
            Some(v) => (
                false,
                format!(
                    "{} data_loss violation(s), none with those bytes{}; the first: {}",
                    losses.len(),
                    if e.chain.is_empty() { "" } else { " and chain" },
                    describe(v)
                ),
            ),
        },
    };
    (expect, observed)
}

fn judge_attacker(ev: &Evidence<'_>, e: &AttackerExpect) -> (String, (bool, String)) {
    let mut expect = format!("the attacker's {} findings", e.kind);
    if let Some(l) = e.line {
        let _ = write!(expect, " at DRAM line {:#x}", l.raw());
    }
    let plans = &ev.scenario.attacker.dram_dumps;
    let dump_name = |d: usize| match plans.get(d).and_then(|p| p.label.as_ref()) {
        Some(label) => format!("`{label}`"),
        None => format!("#{d}"),
    };
    if let Some(d) = e.dump {
        let _ = write!(expect, " in dump {}", dump_name(d));
    }
    if let Some(data) = &e.data {
        let _ = write!(expect, " holding {}", hex(data));
    }
    let found: Vec<&Finding> = selected(ev.findings, e).collect();
    let total: u64 = found.iter().map(|f| f.count).sum();
    let mut conditions = Vec::new();
    let mut ok = true;
    if let Some(want) = &e.lines {
        conditions.push(format!(
            "exactly at lines [{}]",
            want.iter()
                .map(|l| format!("{:#x}", l.raw()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let mut got: Vec<_> = found.iter().map(|f| f.line).collect();
        got.sort_unstable();
        got.dedup();
        ok &= got == *want;
    }
    match (e.min, e.max) {
        (Some(lo), Some(hi)) if lo == hi => conditions.push(format!("{lo} in all")),
        (Some(lo), Some(hi)) => conditions.push(format!("between {lo} and {hi} in all")),
        (Some(lo), None) => conditions.push(format!("at least {lo} in all")),
        (None, Some(hi)) => conditions.push(format!("at most {hi} in all")),
        (None, None) if e.lines.is_none() => conditions.push("at least one".to_owned()),
        (None, None) => {}
    }
    let (lo, hi) = match (e.min, e.max, &e.lines) {
        (None, None, None) => (Some(1), None),
        (lo, hi, _) => (lo, hi),
    };
    ok &= lo.is_none_or(|m| total >= m) && hi.is_none_or(|m| total <= m);
    let _ = write!(expect, ": {}", conditions.join(", "));
    let mut observed = if found.is_empty() {
        "none".to_owned()
    } else {
        const SHOWN: usize = 8;
        let mut text = format!("{total} in all:");
        for f in found.iter().take(SHOWN) {
            let _ = write!(text, " {:#x}", f.line.raw());
            if let Some(d) = f.dump {
                let _ = write!(text, " in dump {}", dump_name(d));
            } else {
                let _ = write!(text, " x{}", f.count);
            }
            text.push(';');
        }
        text.pop();
        if found.len() > SHOWN {
            let _ = write!(text, "; and {} more", found.len() - SHOWN);
        }
        text
    };
    if e.kind.from_bus()
        && let Some(missing) = &ev.findings_incomplete
    {
        // A count from an incomplete log proves nothing either way.
        ok = false;
        let _ = write!(observed, " ({missing}: the findings are incomplete)");
    }
    (expect, (ok, observed))
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
