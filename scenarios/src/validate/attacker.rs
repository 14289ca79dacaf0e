//! The attacker section: what it records (the bus log, an interposer's channels and cycles,
//! DRAM dumps bounded in all by [`DUMP_LINES_MAX`]) and what it does (writes to DIMM cells, a
//! faulty DIMM's ghost bit, a cold boot), each checked against the machine and the run.

use super::helpers::{field, hex, index};
use super::{DUMP_LINES_MAX, LINE_BYTES, ScenarioError, Validator};
use crate::locate::PathSeg;
use crate::scenario::{
    AttackKind, AttackPlan, AttackerPlan, ColdBootPlan, DramDumpPlan, DumpTime, InterposerPlan,
};
use crate::scenario_file::{AttackFile, AttackerFile, ColdBootFile, DumpAtFile, InterposerFile};
use sim_core::DramAddr;

/// Bits in a line, the range of a bit flip's bit numbers.
const LINE_BITS: u64 = LINE_BYTES * 8;

impl Validator<'_> {
    pub(super) fn attacker(
        &self,
        a: Option<&AttackerFile>,
        cycles_max: u64,
    ) -> Result<AttackerPlan, ScenarioError> {
        let Some(a) = a else {
            return Ok(AttackerPlan::default());
        };
        let base = [PathSeg::Field("attacker")];
        let interposer = match &a.interposer {
            None => None,
            Some(i) => Some(self.interposer(i, &field(&base, "interposer"))?),
        };
        if interposer.is_some() && a.bus_log == Some(false) {
            return Err(self.err(
                &field(&base, "bus_log"),
                "an interposer records the bus, and `bus_log: false` says nothing is recorded: \
                 expected `bus_log: true` or no `bus_log`",
            ));
        }
        let ghost_bit = match &a.bad_ram {
            None => None,
            Some(b) => {
                let path = field(&field(&base, "bad_ram"), "ghost_bit");
                let bit = u32::try_from(b.ghost_bit).unwrap_or(u32::MAX);
                if let Err(e) = self.machine.memory.check_ghost_bit(bit) {
                    return Err(self.err(&path, e.to_string()));
                }
                Some(bit)
            }
        };
        let mut attacks = Vec::with_capacity(a.attacks.len());
        for (i, attack) in a.attacks.iter().enumerate() {
            let path = index(&field(&base, "attacks"), i);
            let plan = self.attack(attack, &path, cycles_max)?;
            if let Some(label) = &plan.label
                && let Some(first) = attacks
                    .iter()
                    .find(|p: &&AttackPlan| p.label.as_ref() == Some(label))
            {
                return Err(self.err(
                    &field(&path, "label"),
                    format!(
                        "attack label `{label}` is already used (by the attack at {}): \
                         expected attack labels unique",
                        first.place
                    ),
                ));
            }
            attacks.push(plan);
        }
        let cold_boot = match &a.cold_boot {
            None => None,
            Some(c) => Some(self.cold_boot(c, &field(&base, "cold_boot"), cycles_max)?),
        };
        Ok(AttackerPlan {
            bus_log: a.bus_log.unwrap_or(false) || interposer.is_some(),
            interposer,
            dram_dumps: self.dumps(a, cycles_max)?,
            attacks,
            ghost_bit,
            cold_boot,
        })
    }

    /// `end`, or a cycle within the run.
    fn when(
        &self,
        at: DumpAtFile,
        what: &str,
        path: &[PathSeg<'static>],
        cycles_max: u64,
    ) -> Result<DumpTime, ScenarioError> {
        match at {
            DumpAtFile::End => Ok(DumpTime::End),
            DumpAtFile::Cycle(c) if c > cycles_max => Err(self.err(
                path,
                format!(
                    "{what} at cycle {c} is after run.cycles_max {cycles_max}: expected a cycle \
                     within the run (or `end`)"
                ),
            )),
            DumpAtFile::Cycle(c) => Ok(DumpTime::Cycle(c)),
        }
    }

    fn interposer(
        &self,
        i: &InterposerFile,
        path: &[PathSeg<'static>],
    ) -> Result<InterposerPlan, ScenarioError> {
        let memory = &self.machine.memory;
        let channels_total = memory
            .dram
            .params()
            .geometry
            .channels
            .saturating_mul(memory.controllers);
        let channels = match &i.channels {
            None => None,
            Some(list) => {
                if list.is_empty() {
                    return Err(self.err(
                        &field(path, "channels"),
                        "an interposer on no channel sees nothing: expected at least one channel \
                         (or no `channels`: all of them)",
                    ));
                }
                let mut out = Vec::with_capacity(list.len());
                for (k, &c) in list.iter().enumerate() {
                    if c >= u64::from(channels_total) {
                        return Err(self.err(
                            &index(&field(path, "channels"), k),
                            format!(
                                "channel {c} does not exist: the machine has {channels_total} \
                                 DIMM channel(s), numbered from 0 ({} controller(s) of {} each)",
                                memory.controllers,
                                memory.dram.params().geometry.channels
                            ),
                        ));
                    }
                    out.push(c as u32);
                }
                out.sort_unstable();
                out.dedup();
                Some(out)
            }
        };
        let from = i.from.unwrap_or(0);
        if let Some(until) = i.until
            && until <= from
        {
            return Err(self.err(
                &field(path, "until"),
                format!(
                    "the interposer is removed at cycle {until}, not after it is attached (cycle \
                     {from}): expected until > from"
                ),
            ));
        }
        Ok(InterposerPlan {
            channels,
            from,
            until: i.until,
        })
    }

    fn attack(
        &self,
        a: &AttackFile,
        path: &[PathSeg<'static>],
        cycles_max: u64,
    ) -> Result<AttackPlan, ScenarioError> {
        let (kind, at, label) = match a {
            AttackFile::Replay {
                line,
                recorded,
                at,
                label,
            } => {
                let line = self.dram_line(*line, &field(path, "line"))?;
                let at = self.when(*at, "a replay", &field(path, "at"), cycles_max)?;
                let recorded = self.when(
                    *recorded,
                    "a recording",
                    &field(path, "recorded"),
                    cycles_max,
                )?;
                if recorded >= at {
                    return Err(self.err(
                        &field(path, "recorded"),
                        "a replay writes back ciphertext recorded earlier: expected `recorded` \
                         before `at`",
                    ));
                }
                (AttackKind::Replay { line, recorded }, at, label)
            }
            AttackFile::Splice {
                from,
                to,
                at,
                label,
            } => {
                let from = self.dram_line(*from, &field(path, "from"))?;
                let to = self.dram_line(*to, &field(path, "to"))?;
                if from == to {
                    return Err(self.err(
                        &field(path, "to"),
                        format!(
                            "a splice copies a line's ciphertext to another line, and `to` is \
                             `from` ({}): expected two lines (a replay writes a line's own \
                             ciphertext back)",
                            hex(from.raw())
                        ),
                    ));
                }
                let at = self.when(*at, "a splice", &field(path, "at"), cycles_max)?;
                (AttackKind::Splice { from, to }, at, label)
            }
            AttackFile::BitFlip {
                line,
                bits,
                at,
                label,
            } => {
                let line = self.dram_line(*line, &field(path, "line"))?;
                if bits.is_empty() {
                    return Err(self.err(
                        &field(path, "bits"),
                        "a bit flip of no bit: expected at least one bit number (0..=511)",
                    ));
                }
                let mut out: Vec<u16> = Vec::with_capacity(bits.len());
                for (k, &b) in bits.iter().enumerate() {
                    let bpath = index(&field(path, "bits"), k);
                    if b >= LINE_BITS {
                        return Err(self.err(
                            &bpath,
                            format!(
                                "bit {b} is outside the line: expected 0..={} (bit n is bit \
                                 n % 8 of byte n / 8)",
                                LINE_BITS - 1
                            ),
                        ));
                    }
                    if out.contains(&(b as u16)) {
                        return Err(self.err(
                            &bpath,
                            format!("bit {b} is listed twice: a second flip would undo the first"),
                        ));
                    }
                    out.push(b as u16);
                }
                out.sort_unstable();
                let at = self.when(*at, "a bit flip", &field(path, "at"), cycles_max)?;
                (AttackKind::BitFlip { line, bits: out }, at, label)
            }
        };
        Ok(AttackPlan {
            kind,
            at,
            place: self.place(path),
            label: label.clone(),
        })
    }

    fn cold_boot(
        &self,
        c: &ColdBootFile,
        path: &[PathSeg<'static>],
        cycles_max: u64,
    ) -> Result<ColdBootPlan, ScenarioError> {
        Ok(ColdBootPlan {
            at: self.when(c.at, "a cold boot", &field(path, "at"), cycles_max)?,
            key_restore: c.key_restore.unwrap_or(false),
            place: self.place(path),
        })
    }

    fn dumps(&self, a: &AttackerFile, cycles_max: u64) -> Result<Vec<DramDumpPlan>, ScenarioError> {
        let base = [PathSeg::Field("attacker"), PathSeg::Field("dram_dumps")];
        let mut total = 0u64;
        let mut dumps = Vec::with_capacity(a.dram_dumps.len());
        for (i, d) in a.dram_dumps.iter().enumerate() {
            let path = index(&base, i);
            let at = self.when(d.at, "dump", &field(&path, "at"), cycles_max)?;
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
                    (0..range.lines)
                        .map(|n| start.nth_line(n))
                        .collect::<Vec<DramAddr>>()
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
                        "dump label `{label}` is already used (by the dump at {}): expected \
                         dump labels unique",
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
        Ok(dumps)
    }
}
