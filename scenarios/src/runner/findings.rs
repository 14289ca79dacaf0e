//! The attacker's analyses: what its recordings (the bus log, the DRAM dumps) show, as
//! findings of a [`FindingKind`] per DRAM line. Expectations (`attacker(saw: KIND, ...)`)
//! filter and count them; the report lists them.
//!
//! A new analysis (the attacks work: replays, cold boot, access patterns) adds a kind and the
//! code that finds it here; the expectation, its validation and its report need nothing new.
//!
//! "Plaintext" is what the program's data was as it left the caches for a line: the bytes of
//! each write-back the hierarchy sent to memory (`CacheEvent::MemWriteback`), before the
//! memory controller encrypted them (or not: NO_ENCRYPT KeyIDs, TME bypass, the exclusion
//! range). A bus transfer or a dump line equal to one of them, at the same line and not
//! earlier, is plaintext the attacker saw. The runner knows both sides, so this check does not
//! trust the memory controller's key table: it compares bytes.

use crate::scenario::{AttackerExpect, DramDumpPlan, FindingKind};
use mem_ctrl::bus::BusTransaction;
use sim_core::{Cycle, DetHashSet, DramAddr, LineBytes, MemOp};
use std::collections::BTreeMap;

/// One finding: a kind, a line, a count (and for dump lines, which dump and what it held).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Finding {
    pub(super) kind: FindingKind,
    pub(super) line: DramAddr,
    pub(super) count: u64,
    /// The dump it comes from (an index into the attacker's `dram_dumps`).
    pub(super) dump: Option<usize>,
    /// A dump line's bytes.
    pub(super) data: Option<LineBytes>,
}

/// What the write-backs of a line were, in cycle order.
type Plaintexts = BTreeMap<DramAddr, Vec<(Cycle, LineBytes)>>;

fn plaintexts(writebacks: &[(Cycle, DramAddr, LineBytes)]) -> Plaintexts {
    let mut by_line: Plaintexts = BTreeMap::new();
    for &(cycle, line, data) in writebacks {
        by_line.entry(line).or_default().push((cycle, data));
    }
    for list in by_line.values_mut() {
        list.sort_by_key(|(cycle, _)| *cycle);
    }
    by_line
}

/// The bus log's findings: per line, transfers, reads, writes, plaintext seen and repeated
/// ciphertext. `transfers` are in bus order.
pub(super) fn bus_findings(
    transfers: &[BusTransaction],
    writebacks: &[(Cycle, DramAddr, LineBytes)],
) -> Vec<Finding> {
    #[derive(Default)]
    struct Line<'t> {
        reads: u64,
        writes: u64,
        plaintext: u64,
        repeated: u64,
        written: DetHashSet<&'t LineBytes>,
    }
    let plain = plaintexts(writebacks);
    let mut lines: BTreeMap<DramAddr, Line<'_>> = BTreeMap::new();
    // Per line, the write-back plaintexts up to the current transfer (a cursor into `plain`).
    let mut seen: BTreeMap<DramAddr, (usize, DetHashSet<LineBytes>)> = BTreeMap::new();
    for t in transfers {
        let line = t.addr.line_base();
        let l = lines.entry(line).or_default();
        match t.op {
            MemOp::Read => l.reads += 1,
            MemOp::Write => {
                l.writes += 1;
                if !l.written.insert(&t.data) {
                    l.repeated += 1;
                }
            }
        }
        if let Some(list) = plain.get(&line) {
            let (next, set) = seen.entry(line).or_default();
            while let Some((cycle, data)) = list.get(*next)
                && *cycle <= t.cycle
            {
                set.insert(*data);
                *next += 1;
            }
            if set.contains(&t.data) {
                l.plaintext += 1;
            }
        }
    }
    let mut out = Vec::new();
    for kind in FindingKind::ALL {
        for (&line, l) in &lines {
            let count = match kind {
                FindingKind::BusPlaintext => l.plaintext,
                FindingKind::BusRepeatedCiphertext => l.repeated,
                FindingKind::BusTransfers => l.reads + l.writes,
                FindingKind::BusReads => l.reads,
                FindingKind::BusWrites => l.writes,
                FindingKind::DumpLine | FindingKind::DumpPlaintext => continue,
            };
            if count > 0 {
                out.push(Finding {
                    kind,
                    line,
                    count,
                    dump: None,
                    data: None,
                });
            }
        }
    }
    out
}

/// One DRAM dump as taken: when, and each line's bytes.
pub(super) struct DumpTaken {
    pub(super) cycle: Cycle,
    pub(super) lines: Vec<(DramAddr, LineBytes)>,
}

/// The dumps' findings: every line of every dump, and the lines holding plaintext.
pub(super) fn dump_findings(
    plans: &[DramDumpPlan],
    dumps: &[DumpTaken],
    writebacks: &[(Cycle, DramAddr, LineBytes)],
) -> Vec<Finding> {
    let plain = plaintexts(writebacks);
    let mut lines = Vec::new();
    let mut plaintext = Vec::new();
    for (i, (_, dump)) in plans.iter().zip(dumps).enumerate() {
        for &(line, data) in &dump.lines {
            lines.push(Finding {
                kind: FindingKind::DumpLine,
                line,
                count: 1,
                dump: Some(i),
                data: Some(data),
            });
            let held = plain.get(&line).is_some_and(|list| {
                list.iter()
                    .any(|(cycle, p)| *cycle <= dump.cycle && *p == data)
            });
            if held {
                plaintext.push(Finding {
                    kind: FindingKind::DumpPlaintext,
                    line,
                    count: 1,
                    dump: Some(i),
                    data: None,
                });
            }
        }
    }
    lines.extend(plaintext);
    lines
}

/// The findings an expectation is about.
pub(super) fn selected<'f>(
    findings: &'f [Finding],
    e: &AttackerExpect,
) -> impl Iterator<Item = &'f Finding> {
    findings.iter().filter(move |f| {
        f.kind == e.kind
            && e.line.is_none_or(|l| f.line == l)
            && e.dump.is_none_or(|d| f.dump == Some(d))
            && e.data
                .as_ref()
                .is_none_or(|want| f.data.as_ref().is_some_and(|d| d[..] == want[..]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(cycle: u64, op: MemOp, addr: u64, byte: u8) -> BusTransaction {
        BusTransaction {
            cycle: Cycle::new(cycle),
            op,
            addr: DramAddr::new(addr),
            data: [byte; 64],
        }
    }

    fn count(findings: &[Finding], kind: FindingKind, line: u64) -> u64 {
        findings
            .iter()
            .filter(|f| f.kind == kind && f.line == DramAddr::new(line))
            .map(|f| f.count)
            .sum()
    }

    #[test]
    fn plaintext_is_what_a_write_back_carried_not_earlier() {
        let wb = [
            (Cycle::new(10), DramAddr::new(0x40), [7; 64]),
            (Cycle::new(30), DramAddr::new(0x80), [0; 64]),
        ];
        let bus = [
            // Untouched DRAM read before anything was written: zeros, but not plaintext yet.
            t(5, MemOp::Read, 0x80, 0),
            t(12, MemOp::Write, 0x40, 7),
            t(20, MemOp::Read, 0x40, 7),
            t(40, MemOp::Write, 0x80, 0x55),
            t(50, MemOp::Write, 0x80, 0x55),
            t(60, MemOp::Write, 0x80, 0x66),
        ];
        let f = bus_findings(&bus, &wb);
        assert_eq!(count(&f, FindingKind::BusPlaintext, 0x40), 2);
        assert_eq!(count(&f, FindingKind::BusPlaintext, 0x80), 0);
        assert_eq!(count(&f, FindingKind::BusRepeatedCiphertext, 0x80), 1);
        assert_eq!(count(&f, FindingKind::BusTransfers, 0x80), 4);
        assert_eq!(count(&f, FindingKind::BusReads, 0x80), 1);
        assert_eq!(count(&f, FindingKind::BusWrites, 0x80), 3);
        // A line with nothing to say has no findings of that kind.
        assert!(
            !f.iter()
                .any(|x| x.kind == FindingKind::BusPlaintext && x.count == 0)
        );
    }
}
