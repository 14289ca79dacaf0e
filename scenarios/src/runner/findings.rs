//! The attacker's analyses: what its recordings (the bus log, the DRAM dumps) show, as
//! findings of a [`FindingKind`] per DRAM line. Expectations (`attacker(saw: KIND, ...)`)
//! filter and count them; the report lists them.
//!
//! A new analysis adds a kind and the code that finds it here; the expectation, its
//! validation and its report need nothing new.
//!
//! "Plaintext" is what the program's data was as it left the caches for a line: the bytes of
//! each write-back the hierarchy sent to memory (`CacheEvent::MemWriteback`), before the
//! memory controller encrypted them (or not: NO_ENCRYPT KeyIDs, TME bypass, the exclusion
//! range). A bus transfer or a dump line equal to one of them, at the same line and not
//! earlier, is plaintext the attacker saw. The runner knows both sides, so this check does not
//! trust the memory controller's key table: it compares bytes.
//!
//! Equal bytes at two lines (`bus_equal_across_lines`, `dump_equal_across_lines`) leave out
//! all-zero lines: untouched DRAM reads as zeros everywhere, which says nothing about the
//! tweak.

use super::attack::{ColdBootTaken, DumpTaken};
use crate::scenario::{AttackerExpect, DramDumpPlan, FindingKind};
use mem_ctrl::bus::BusTransaction;
use sim_core::{Cycle, DetHashMap, DetHashSet, DramAddr, LINE_BYTES, LineBytes, MemOp};
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

/// Whether `data` is one of the plaintexts written back to `line` at or before `cycle`.
fn held_plaintext(plain: &Plaintexts, line: DramAddr, cycle: Cycle, data: &LineBytes) -> bool {
    plain
        .get(&line)
        .is_some_and(|list| list.iter().any(|(c, p)| *c <= cycle && p == data))
}

const ZEROS: LineBytes = [0; LINE_BYTES];

/// The (non-zero) byte strings found at more than one line among `lines`.
fn shared_across_lines<'d>(
    lines: impl Iterator<Item = (DramAddr, &'d LineBytes)>,
) -> DetHashSet<&'d LineBytes> {
    let mut first_line: DetHashMap<&LineBytes, DramAddr> = DetHashMap::default();
    let mut shared = DetHashSet::default();
    for (line, data) in lines {
        if *data == ZEROS {
            continue;
        }
        match first_line.get(data) {
            Some(&l) if l != line => {
                shared.insert(data);
            }
            Some(_) => {}
            None => {
                first_line.insert(data, line);
            }
        }
    }
    shared
}

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

/// The bus log's findings: per line, transfers, reads, writes, plaintext seen, repeated
/// ciphertext and ciphertext another line's write carried too. `transfers` are in bus order.
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
        across: u64,
        written: DetHashSet<&'t LineBytes>,
    }
    let plain = plaintexts(writebacks);
    let shared = shared_across_lines(
        transfers
            .iter()
            .filter(|t| t.op == MemOp::Write)
            .map(|t| (t.addr.line_base(), &t.data)),
    );
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
                if shared.contains(&t.data) {
                    l.across += 1;
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
                FindingKind::BusEqualAcrossLines => l.across,
                FindingKind::BusTransfers => l.reads + l.writes,
                FindingKind::BusReads => l.reads,
                FindingKind::BusWrites => l.writes,
                FindingKind::DumpLine
                | FindingKind::DumpPlaintext
                | FindingKind::DumpEqualAcrossLines
                | FindingKind::ColdBootLine
                | FindingKind::ColdBootPlaintext
                | FindingKind::ColdBootDecrypted
                | FindingKind::ColdBootLost => continue,
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

/// A count-1 finding of a dump's (or the cold boot's) line.
fn line_finding(
    kind: FindingKind,
    line: DramAddr,
    dump: Option<usize>,
    data: Option<LineBytes>,
) -> Finding {
    Finding {
        kind,
        line,
        count: 1,
        dump,
        data,
    }
}

/// The dumps' findings: every line of every dump, the lines holding plaintext, and the lines
/// holding what another line of the same dump holds.
pub(super) fn dump_findings(
    plans: &[DramDumpPlan],
    dumps: &[DumpTaken],
    writebacks: &[(Cycle, DramAddr, LineBytes)],
) -> Vec<Finding> {
    let plain = plaintexts(writebacks);
    let mut lines = Vec::new();
    let mut plaintext = Vec::new();
    let mut across = Vec::new();
    for (i, (_, dump)) in plans.iter().zip(dumps).enumerate() {
        let shared = shared_across_lines(dump.lines.iter().map(|(l, d)| (*l, d)));
        for &(line, data) in &dump.lines {
            lines.push(line_finding(
                FindingKind::DumpLine,
                line,
                Some(i),
                Some(data),
            ));
            if held_plaintext(&plain, line, dump.cycle, &data) {
                plaintext.push(line_finding(
                    FindingKind::DumpPlaintext,
                    line,
                    Some(i),
                    None,
                ));
            }
            if shared.contains(&data) {
                across.push(line_finding(
                    FindingKind::DumpEqualAcrossLines,
                    line,
                    Some(i),
                    None,
                ));
            }
        }
    }
    lines.extend(plaintext);
    lines.extend(across);
    lines
}

/// The cold boot's findings: every line dumped, those holding the program's plaintext as
/// dumped, those the rebooted machine decrypts to it, and the writes the controllers lost.
pub(super) fn cold_boot_findings(
    cold: &ColdBootTaken,
    writebacks: &[(Cycle, DramAddr, LineBytes)],
) -> Vec<Finding> {
    let plain = plaintexts(writebacks);
    let mut out: Vec<Finding> = cold
        .lines
        .iter()
        .map(|&(line, data)| line_finding(FindingKind::ColdBootLine, line, None, Some(data)))
        .collect();
    out.extend(
        cold.lines
            .iter()
            .filter(|(line, data)| held_plaintext(&plain, *line, cold.cycle, data))
            .map(|(line, _)| line_finding(FindingKind::ColdBootPlaintext, *line, None, None)),
    );
    out.extend(
        cold.lines
            .iter()
            .zip(&cold.decrypted)
            .filter(|((line, _), plain_after)| {
                held_plaintext(&plain, *line, cold.cycle, plain_after)
            })
            .map(|((line, _), _)| line_finding(FindingKind::ColdBootDecrypted, *line, None, None)),
    );
    out.extend(
        cold.lost
            .iter()
            .map(|line| line_finding(FindingKind::ColdBootLost, *line, None, None)),
    );
    out
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
        assert_eq!(count(&f, FindingKind::BusEqualAcrossLines, 0x80), 0);
        // A line with nothing to say has no findings of that kind.
        assert!(
            !f.iter()
                .any(|x| x.kind == FindingKind::BusPlaintext && x.count == 0)
        );
    }

    #[test]
    fn equal_bytes_at_two_lines_are_found_on_the_bus_and_in_dumps_but_zeros_are_not() {
        let bus = [
            t(10, MemOp::Write, 0x40, 7),
            t(20, MemOp::Write, 0x80, 7),
            t(30, MemOp::Write, 0x80, 7),
            t(40, MemOp::Write, 0xc0, 9),
            // Reads do not count; nor do zeros written to two lines.
            t(50, MemOp::Read, 0xc0, 7),
            t(60, MemOp::Write, 0x100, 0),
            t(70, MemOp::Write, 0x140, 0),
        ];
        let f = bus_findings(&bus, &[]);
        assert_eq!(count(&f, FindingKind::BusEqualAcrossLines, 0x40), 1);
        assert_eq!(count(&f, FindingKind::BusEqualAcrossLines, 0x80), 2);
        assert_eq!(count(&f, FindingKind::BusEqualAcrossLines, 0xc0), 0);
        assert_eq!(count(&f, FindingKind::BusEqualAcrossLines, 0x100), 0);
        // Writing the same value to one line again is a repeat, not a match across lines.
        assert_eq!(count(&f, FindingKind::BusRepeatedCiphertext, 0x80), 1);

        let plan = DramDumpPlan {
            at: crate::scenario::DumpTime::End,
            lines: vec![],
            place: crate::scenario::Location::default(),
            label: None,
        };
        let dump = DumpTaken {
            cycle: Cycle::new(100),
            lines: vec![
                (DramAddr::new(0x40), [7; 64]),
                (DramAddr::new(0x80), [7; 64]),
                (DramAddr::new(0xc0), [0; 64]),
                (DramAddr::new(0x100), [0; 64]),
            ],
            pending_writes: Vec::new(),
        };
        let f = dump_findings(&[plan], &[dump], &[]);
        let across: Vec<u64> = f
            .iter()
            .filter(|x| x.kind == FindingKind::DumpEqualAcrossLines)
            .map(|x| x.line.raw())
            .collect();
        assert_eq!(across, [0x40, 0x80]);
    }

    #[test]
    fn a_cold_boot_finds_plaintext_as_dumped_as_decrypted_and_the_lost_writes() {
        let wb = [
            (Cycle::new(10), DramAddr::new(0x40), [1; 64]),
            (Cycle::new(10), DramAddr::new(0x80), [2; 64]),
            (Cycle::new(10), DramAddr::new(0xc0), [3; 64]),
            // Written back after the power was cut: not the program's data at the dump.
            (Cycle::new(500), DramAddr::new(0x100), [4; 64]),
        ];
        let cold = ColdBootTaken {
            cycle: Cycle::new(100),
            lines: vec![
                // Plaintext on the DIMM (a no-encrypt KeyID).
                (DramAddr::new(0x40), [1; 64]),
                // Ciphertext the rebooted machine decrypts (the platform key was restored).
                (DramAddr::new(0x80), [0x99; 64]),
                // Ciphertext nobody can read any more.
                (DramAddr::new(0xc0), [0x98; 64]),
                (DramAddr::new(0x100), [4; 64]),
            ],
            lost: vec![DramAddr::new(0x140)],
            decrypted: vec![[0x55; 64], [2; 64], [0x56; 64], [0x57; 64]],
        };
        let f = cold_boot_findings(&cold, &wb);
        let lines = |kind| -> Vec<u64> {
            f.iter()
                .filter(|x| x.kind == kind)
                .map(|x| x.line.raw())
                .collect()
        };
        assert_eq!(lines(FindingKind::ColdBootLine), [0x40, 0x80, 0xc0, 0x100]);
        assert_eq!(lines(FindingKind::ColdBootPlaintext), [0x40]);
        assert_eq!(lines(FindingKind::ColdBootDecrypted), [0x80]);
        assert_eq!(lines(FindingKind::ColdBootLost), [0x140]);
    }
}
