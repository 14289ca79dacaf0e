//! Expectations on the attacker's findings (`attacker(saw: KIND, ...)`): the kind needs the
//! recording it comes from (the bus log, DRAM dumps, or a cold boot), a `dump` names a
//! labelled dump, a dump line is one the dumps hold, and the count's bounds are consistent.

use super::helpers::{field, hex, index, quoted_list};
use super::{LINE_BYTES, ScenarioError, Validator};
use crate::locate::PathSeg;
use crate::scenario::{AttackerExpect, AttackerPlan, FindingKind, FindingSource};
use crate::scenario_file::{DataFile, FindingFile};

/// The fields of an `attacker(...)` expectation, as the file gives them.
pub(super) struct AttackerFields<'f> {
    pub(super) saw: FindingFile,
    pub(super) line: Option<u64>,
    pub(super) lines: Option<&'f [u64]>,
    pub(super) dump: Option<&'f str>,
    pub(super) data: Option<&'f DataFile>,
    pub(super) count: Option<u64>,
    pub(super) min: Option<u64>,
    pub(super) max: Option<u64>,
}

fn finding_kind(f: FindingFile) -> FindingKind {
    match f {
        FindingFile::BusPlaintext => FindingKind::BusPlaintext,
        FindingFile::BusRepeatedCiphertext => FindingKind::BusRepeatedCiphertext,
        FindingFile::BusTransfers => FindingKind::BusTransfers,
        FindingFile::BusReads => FindingKind::BusReads,
        FindingFile::BusWrites => FindingKind::BusWrites,
        FindingFile::BusEqualAcrossLines => FindingKind::BusEqualAcrossLines,
        FindingFile::DumpLine => FindingKind::DumpLine,
        FindingFile::DumpPlaintext => FindingKind::DumpPlaintext,
        FindingFile::DumpEqualAcrossLines => FindingKind::DumpEqualAcrossLines,
        FindingFile::ColdBootLine => FindingKind::ColdBootLine,
        FindingFile::ColdBootPlaintext => FindingKind::ColdBootPlaintext,
        FindingFile::ColdBootDecrypted => FindingKind::ColdBootDecrypted,
        FindingFile::ColdBootLost => FindingKind::ColdBootLost,
    }
}

impl Validator<'_> {
    pub(super) fn attacker_expect(
        &self,
        path: &[PathSeg<'static>],
        f: AttackerFields<'_>,
        plan: &AttackerPlan,
    ) -> Result<AttackerExpect, ScenarioError> {
        let kind = finding_kind(f.saw);
        let source = kind.source();
        let missing = match source {
            FindingSource::Bus if !plan.bus_log => Some(
                "is found in the bus log, and the attacker records none: expected `attacker: \
                 (bus_log: true)` in the scenario",
            ),
            FindingSource::Dumps if plan.dram_dumps.is_empty() => Some(
                "is found in DRAM dumps, and the attacker takes none: expected `attacker: \
                 (dram_dumps: [(at: end, lines: [...])])` in the scenario",
            ),
            FindingSource::ColdBoot if plan.cold_boot.is_none() => Some(
                "is found by a cold boot, and the attacker makes none: expected `attacker: \
                 (cold_boot: (at: ...))` in the scenario",
            ),
            FindingSource::Bus | FindingSource::Dumps | FindingSource::ColdBoot => None,
        };
        if let Some(missing) = missing {
            return Err(self.err(&field(path, "saw"), format!("`{kind}` {missing}")));
        }
        let dump = match f.dump {
            None => None,
            Some(_) if source != FindingSource::Dumps => {
                return Err(self.err(
                    &field(path, "dump"),
                    format!(
                        "`dump` picks a DRAM dump, and `{kind}` comes from the {}",
                        if kind.from_bus() {
                            "bus log"
                        } else {
                            "cold boot"
                        }
                    ),
                ));
            }
            Some(name) => {
                let found = plan
                    .dram_dumps
                    .iter()
                    .position(|d| d.label.as_deref() == Some(name));
                let Some(i) = found else {
                    let labels: Vec<&str> = plan
                        .dram_dumps
                        .iter()
                        .filter_map(|d| d.label.as_deref())
                        .collect();
                    let known = if labels.is_empty() {
                        "no dump has a label (give one `label: \"...\"`)".to_owned()
                    } else {
                        format!("the dumps' labels: {}", quoted_list(labels))
                    };
                    return Err(self.err(
                        &field(path, "dump"),
                        format!("no DRAM dump is labelled `{name}`; {known}"),
                    ));
                };
                Some(i)
            }
        };
        if f.line.is_some() && f.lines.is_some() {
            return Err(self.err(
                &field(path, "lines"),
                "`line` picks one line and `lines` lists them all: expected one of them",
            ));
        }
        let line = match f.line {
            Some(l) => {
                let line = self.dram_line(l, &field(path, "line"))?;
                if source == FindingSource::Dumps {
                    let dumped = plan
                        .dram_dumps
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| dump.is_none_or(|d| d == *i))
                        .any(|(_, d)| d.lines.contains(&line));
                    if !dumped {
                        return Err(self.err(
                            &field(path, "line"),
                            format!(
                                "line {} is in no DRAM dump{}: expected a line the dumps hold",
                                hex(l),
                                f.dump.map_or(String::new(), |n| format!(" labelled `{n}`"))
                            ),
                        ));
                    }
                }
                Some(line)
            }
            None => None,
        };
        let lines = match f.lines {
            Some(list) => {
                let lpath = field(path, "lines");
                let mut out = Vec::with_capacity(list.len());
                for (i, &l) in list.iter().enumerate() {
                    out.push(self.dram_line(l, &index(&lpath, i))?);
                }
                out.sort_unstable();
                out.dedup();
                Some(out)
            }
            None => None,
        };
        let data = match f.data {
            None => None,
            Some(_) if !kind.has_data() => {
                return Err(self.err(
                    &field(path, "data"),
                    format!(
                        "`data` is a dump line's content, and `{kind}` findings have none: \
                         expected saw: dump_line or cold_boot_line"
                    ),
                ));
            }
            Some(d) => {
                let bytes = self.data(d, &field(path, "data"))?;
                if bytes.len() as u64 != LINE_BYTES {
                    return Err(self.err(
                        &field(path, "data"),
                        format!(
                            "dump line data is {} bytes: expected exactly 64 (one line)",
                            bytes.len()
                        ),
                    ));
                }
                Some(bytes)
            }
        };
        let (min, max) = match (f.count, f.min, f.max) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                let name = if f.min.is_some() { "min" } else { "max" };
                return Err(self.err(
                    &field(path, name),
                    "`count` is exact and `min`/`max` bound it: expected one or the other",
                ));
            }
            (Some(n), None, None) => (Some(n), Some(n)),
            (None, Some(lo), Some(hi)) if lo > hi => {
                return Err(self.err(
                    &field(path, "min"),
                    format!("min {lo} is above max {hi}: expected min <= max"),
                ));
            }
            (None, lo, hi) => (lo, hi),
        };
        Ok(AttackerExpect {
            kind,
            line,
            dump,
            data,
            lines,
            min,
            max,
        })
    }
}
