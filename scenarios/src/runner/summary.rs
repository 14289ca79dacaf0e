//! The text `mktme-sim run` prints for a scenario: how the run ended, each expectation with
//! its verdict, the values of the recorded loads, the violations with their chains, faults,
//! keys and the headline statistics. [`Detail::Normal`] keeps it short (a few values per load,
//! the first chains of each kind of violation); [`Detail::Verbose`] prints everything the
//! report holds.

use crate::report::{LoadReport, ScenarioReport, StatReport, ViolationReport};
use std::fmt::Write;

/// How much the summary says.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum Detail {
    /// Short: the first values of each load, the first chains of each kind of violation.
    #[default]
    Normal,
    /// Everything the report holds (`-v`).
    Verbose,
}

/// The human-readable summary `mktme-sim run` prints: the end, each expectation with its
/// verdict, the violations with their chains, faults, keys, and the headline statistics.
pub fn summary(report: &ScenarioReport, detail: Detail) -> String {
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
        "cold_boot" => {
            let _ = writeln!(
                s,
                "  cold boot: the attacker cut the power at cycle {}",
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
    loads(&mut s, report, detail);
    if !report.violations.is_empty() {
        violations(&mut s, report, detail);
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
    attacks(&mut s, report, detail);
    findings(&mut s, report, detail);
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

/// Violations of one kind between the same KeyIDs shown in full before the rest are counted.
const CHAINS_SHOWN: usize = 2;

/// The violations, grouped by kind and KeyIDs in order of first appearance: a group of
/// several opens with a line saying how many, on which lines and when; unless verbose, only
/// its first [`CHAINS_SHOWN`] are shown in full.
fn violations(s: &mut String, report: &ScenarioReport, detail: Detail) {
    let mut groups: Vec<Vec<&ViolationReport>> = Vec::new();
    for v in &report.violations {
        match groups
            .iter_mut()
            .find(|g| g[0].kind == v.kind && g[0].keyids == v.keyids)
        {
            Some(g) => g.push(v),
            None => groups.push(vec![v]),
        }
    }
    let total = report.violations.len();
    let _ = write!(s, "  coherency violations:");
    if groups.len() > 1 || total > 1 {
        let counts: Vec<String> = groups
            .iter()
            .map(|g| format!("{} x{}", g[0].kind, g.len()))
            .collect();
        let _ = write!(s, " {total} ({})", counts.join(", "));
    }
    s.push('\n');
    for g in groups {
        if g.len() > 1 {
            let mut lines: Vec<&str> = g.iter().map(|v| v.line.as_str()).collect();
            lines.sort_by_key(|l| u64::from_str_radix(l.trim_start_matches("0x"), 16).unwrap_or(0));
            lines.dedup();
            let (first, last) = (g[0].cycle, g[g.len() - 1].cycle);
            let on = match lines.as_slice() {
                [one] => format!("DRAM line {one}"),
                [lo, .., hi] => format!("{} DRAM lines from {lo} to {hi}", lines.len()),
                [] => String::new(),
            };
            let _ = writeln!(
                s,
                "    {} x{}, KeyIDs {:?}, {on}, cycles {first} to {last}:",
                g[0].kind,
                g.len(),
                g[0].keyids
            );
        }
        let shown = if detail == Detail::Verbose {
            g.len()
        } else {
            CHAINS_SHOWN
        };
        for v in g.iter().take(shown) {
            violation(s, v);
        }
        if g.len() > shown {
            let _ = writeln!(
                s,
                "    ... and {} more {} like these (-v shows them all)",
                g.len() - shown,
                g[0].kind
            );
        }
    }
}

fn violation(s: &mut String, v: &ViolationReport) {
    let drain = if v.in_drain {
        " (during the end-of-run drain)"
    } else {
        ""
    };
    let _ = writeln!(
        s,
        "    {} at cycle {}{drain}, DRAM line {}, KeyIDs {:?}\n      {}",
        v.kind, v.cycle, v.line, v.keyids, v.explanation
    );
    if let Some(after) = &v.aftermath {
        let _ = writeln!(s, "      in this run: {after}");
    }
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

/// What the attacker did: each attack in one line (with its line's chain when verbose), and
/// the cold boot.
fn attacks(s: &mut String, report: &ScenarioReport, detail: Detail) {
    for a in report.attacks.iter().flatten() {
        let mut what = format!("{} of line {}", a.kind, a.line);
        if let Some(from) = &a.from {
            let _ = write!(what, " from line {from}");
        }
        if let Some(recorded) = a.recorded {
            let _ = write!(what, " (ciphertext recorded at cycle {recorded})");
        }
        if let Some(bits) = &a.bits {
            let _ = write!(what, " (bits {bits:?})");
        }
        if let Some(cells) = &a.cells {
            let _ = write!(what, ", reaching the cells of {cells}");
        }
        let _ = writeln!(s, "  attack at cycle {}: {what}", a.cycle);
        if detail == Detail::Verbose {
            let _ = writeln!(s, "    chain of the line, oldest first:");
            for c in &a.chain {
                let _ = writeln!(s, "      {c}");
            }
        }
    }
    if let Some(c) = &report.cold_boot {
        let _ = writeln!(
            s,
            "  cold boot at cycle {}: {} line(s) dumped, then a power cycle ({}); writes lost in \
             the controllers' queues: {}",
            c.cycle,
            c.lines.len() as u64 + c.lines_not_listed,
            if c.key_restore {
                "platform key restored"
            } else {
                "every key lost"
            },
            if c.lost_writes.is_empty() {
                "none".to_owned()
            } else {
                c.lost_writes.join(", ")
            }
        );
    }
}

/// The attacker's findings: one line per kind, its lines (the first few, unless verbose).
fn findings(s: &mut String, report: &ScenarioReport, detail: Detail) {
    let Some(findings) = &report.attacker_findings else {
        return;
    };
    let _ = writeln!(s, "  attacker findings:");
    if findings.is_empty() {
        let _ = writeln!(s, "    none");
    }
    let mut kinds: Vec<&str> = findings.iter().map(|f| f.kind).collect();
    kinds.dedup();
    const SHOWN: usize = 8;
    for kind in kinds {
        let of_kind: Vec<_> = findings.iter().filter(|f| f.kind == kind).collect();
        let total: u64 = of_kind.iter().map(|f| f.count).sum();
        let shown = if detail == Detail::Verbose {
            of_kind.len()
        } else {
            SHOWN
        };
        let mut lines: Vec<String> = of_kind
            .iter()
            .take(shown)
            .map(|f| match &f.dump {
                Some(d) => format!("{} (dump {d})", f.line),
                None => format!("{} x{}", f.line, f.count),
            })
            .collect();
        if of_kind.len() > shown {
            lines.push(format!(
                "and {} more (-v lists them)",
                of_kind.len() - shown
            ));
        }
        let _ = writeln!(
            s,
            "    {kind}: {total} at {} line(s): {}",
            of_kind.len(),
            lines.join(", ")
        );
    }
}

/// The recorded loads: one line each (and, with [`Detail::Verbose`], every value kept).
fn loads(s: &mut String, report: &ScenarioReport, detail: Detail) {
    if report.loads.is_empty() {
        return;
    }
    let _ = writeln!(s, "  loads:");
    for l in &report.loads {
        let name = l
            .label
            .as_ref()
            .map_or(String::new(), |label| format!("`{label}` "));
        let file = format!("{}:", report.file);
        let place = l.op.strip_prefix(&file).unwrap_or(&l.op);
        let _ = write!(s, "    core {} {name}({}) at {place}: ", l.core, l.summary);
        match (l.executions, l.values.first()) {
            (0, _) | (_, None) => {
                let _ = writeln!(s, "no value (no execution completed without a fault)");
            }
            (1, Some(v)) => {
                let _ = writeln!(
                    s,
                    "{} (KeyID {}, DRAM {}, cycle {})",
                    v.data, v.keyid, v.addr, v.cycle
                );
            }
            (n, Some(first)) => {
                let last = l.last.as_ref().or(l.values.last()).unwrap_or(first);
                let _ = writeln!(
                    s,
                    "{n} executions, first {} (cycle {}), last {} (cycle {})",
                    first.data, first.cycle, last.data, last.cycle
                );
                if detail == Detail::Verbose {
                    verbose_values(s, l);
                }
            }
        }
    }
    if report.loads_not_recorded > 0 {
        let _ = writeln!(
            s,
            "    ({} more loads not recorded)",
            report.loads_not_recorded
        );
    }
}

fn verbose_values(s: &mut String, l: &LoadReport) {
    for (i, v) in l.values.iter().enumerate() {
        let _ = writeln!(
            s,
            "      execution {}: {} (KeyID {}, DRAM {}, cycle {})",
            i + 1,
            v.data,
            v.keyid,
            v.addr,
            v.cycle
        );
    }
    if let Some(v) = &l.last {
        let _ = writeln!(
            s,
            "      execution {}: {} (KeyID {}, DRAM {}, cycle {})",
            l.executions, v.data, v.keyid, v.addr, v.cycle
        );
    }
}
