//! The attacker section: whether to log the bus, and the DRAM dumps to take (when, and which
//! lines), bounded in all by [`DUMP_LINES_MAX`].

use super::helpers::{field, hex, index};
use super::{DUMP_LINES_MAX, LINE_BYTES, ScenarioError, Validator};
use crate::locate::PathSeg;
use crate::scenario::{AttackerPlan, DramDumpPlan, DumpTime};
use crate::scenario_file::{AttackerFile, DumpAtFile};

impl Validator<'_> {
    pub(super) fn attacker(
        &self,
        a: Option<&AttackerFile>,
        cycles_max: u64,
    ) -> Result<AttackerPlan, ScenarioError> {
        let Some(a) = a else {
            return Ok(AttackerPlan::default());
        };
        let base = [PathSeg::Field("attacker"), PathSeg::Field("dram_dumps")];
        let mut total = 0u64;
        let mut dumps = Vec::with_capacity(a.dram_dumps.len());
        for (i, d) in a.dram_dumps.iter().enumerate() {
            let path = index(&base, i);
            let at = match d.at {
                DumpAtFile::End => DumpTime::End,
                DumpAtFile::Cycle(c) => {
                    if c > cycles_max {
                        return Err(self.err(
                            &field(&path, "at"),
                            format!(
                                "dump at cycle {c} is after run.cycles_max {cycles_max}: \
                                 expected a cycle within the run (or `end`)"
                            ),
                        ));
                    }
                    DumpTime::Cycle(c)
                }
            };
            let lines = match (&d.lines, &d.range) {
                (Some(_), Some(_)) => {
                    return Err(self.err(
                        &field(&path, "range"),
                        "a dump takes `lines` or `range`, not both",
                    ));
                }
                (None, None) => {
                    return Err(self.err(
                        &path,
                        "a dump needs `lines: [..]` or `range: (start: .., lines: ..)`",
                    ));
                }
                (Some(lines), None) => {
                    if lines.is_empty() {
                        return Err(self.err(
                            &field(&path, "lines"),
                            "a dump of no lines: expected at least one line",
                        ));
                    }
                    total = total.saturating_add(lines.len() as u64);
                    if total > DUMP_LINES_MAX {
                        return Err(self.err(
                            &field(&path, "lines"),
                            format!(
                                "the dumps hold more than {DUMP_LINES_MAX} lines: expected at \
                                 most that many in all"
                            ),
                        ));
                    }
                    let mut out = Vec::with_capacity(lines.len());
                    for (j, &line) in lines.iter().enumerate() {
                        out.push(self.dram_line(line, &index(&field(&path, "lines"), j))?);
                    }
                    out
                }
                (None, Some(range)) => {
                    let rpath = field(&path, "range");
                    let start = self.dram_line(range.start, &field(&rpath, "start"))?;
                    if range.lines == 0 {
                        return Err(self.err(
                            &field(&rpath, "lines"),
                            "a dump range of 0 lines: expected at least one line",
                        ));
                    }
                    total = total.saturating_add(range.lines);
                    if total > DUMP_LINES_MAX {
                        return Err(self.err(
                            &field(&rpath, "lines"),
                            format!(
                                "the dumps hold more than {DUMP_LINES_MAX} lines: expected at \
                                 most that many in all"
                            ),
                        ));
                    }
                    let end = range
                        .lines
                        .checked_mul(LINE_BYTES)
                        .and_then(|b| b.checked_add(range.start));
                    if end.is_none_or(|end| end > self.dram_bytes) {
                        return Err(self.err(
                            &field(&rpath, "lines"),
                            format!(
                                "{} lines from {} run past the end of the machine's {} bytes \
                                 of DRAM: expected the range inside DRAM",
                                range.lines,
                                hex(range.start),
                                hex(self.dram_bytes)
                            ),
                        ));
                    }
                    (0..range.lines).map(|n| start.nth_line(n)).collect()
                }
            };
            if let Some(label) = &d.label
                && let Some(first) = dumps
                    .iter()
                    .find(|p: &&DramDumpPlan| p.label.as_ref() == Some(label))
            {
                return Err(self.err(
                    &field(&path, "label"),
                    format!(
                        "dump label `{label}` is already used (by the dump at {}): expected                          dump labels unique",
                        first.place
                    ),
                ));
            }
            dumps.push(DramDumpPlan {
                at,
                lines,
                place: self.place(&path),
                label: d.label.clone(),
            });
        }
        Ok(AttackerPlan {
            bus_log: a.bus_log.unwrap_or(false),
            dram_dumps: dumps,
        })
    }
}
