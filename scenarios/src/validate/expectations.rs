//! Expectations: the inline ones ops carry (`expect`, `expect_fault`), which shadow ops may
//! not, and the listed ones in `expect`, which name their op by core and label and must fit
//! what that op is.

use super::findings::AttackerFields;
use super::helpers::{field, index, quoted_list};
use super::ops::{LabelInfo, OpClass};
use super::{LINE_BYTES, ScenarioError, Validator};
use crate::locate::PathSeg;
use crate::scenario::{
    AttackerPlan, BytesAt, ExpectKind, Expectation, Location, LossExpect, PconfigExpect,
    ViolationExpect,
};
use crate::scenario_file::{
    BytesAtFile, DataFile, ErrnoFile, ExpectFile, FaultFile, OpFile, OutcomeFile, ResultFile,
    ViolationKindFile,
};
use checker::ViolationKind;
use cpu_model::program::{Errno, FaultKind, OpTag};
use mem_ctrl::pconfig::{FaultVector, PconfigStatus};

impl Validator<'_> {
    /// A data loss line's bytes: `offset + len` within the 64-byte line.
    fn bytes_at(
        &self,
        b: &BytesAtFile,
        path: &[PathSeg<'static>],
    ) -> Result<BytesAt, ScenarioError> {
        let keyid = match b.keyid {
            Some(k) => Some(self.keyid(k, &field(path, "keyid"))?),
            None => None,
        };
        let bytes = match &b.data {
            Some(d) => self.data(d, &field(path, "data"))?,
            None => Vec::new(),
        };
        let offset = b.offset.unwrap_or(0);
        if b.offset.is_some() && b.data.is_none() {
            return Err(self.err(
                &field(path, "offset"),
                "an offset without data: expected `data` to compare at the offset",
            ));
        }
        if offset.saturating_add(bytes.len() as u64) > LINE_BYTES {
            return Err(self.err(
                &field(path, if b.offset.is_some() { "offset" } else { "data" }),
                format!(
                    "{} bytes at offset {offset} run past the 64-byte line: expected offset + \
                     length <= 64",
                    bytes.len()
                ),
            ));
        }
        Ok(BytesAt {
            keyid,
            offset: offset as usize,
            bytes,
        })
    }

    /// Refuses an inline expectation (`expect`, `expect_fault`) on an op inside a mispredict
    /// shadow. Checked before anything else about the op.
    pub(super) fn no_expect_in_shadow(
        &self,
        shadow: bool,
        op: &OpFile,
        path: &[PathSeg<'static>],
    ) -> Result<(), ScenarioError> {
        if !shadow {
            return Ok(());
        }
        let (expect, expect_not, expect_fault) = inline_expectations(op);
        for (name, given) in [
            ("expect", expect),
            ("expect_not", expect_not),
            ("expect_fault", expect_fault),
        ] {
            if given {
                return Err(self.err(
                    &field(path, name),
                    format!(
                        "`{name}` inside mispredict: shadow ops are squashed and produce no \
                         results, so nothing can be expected of them; expected no `{name}` here"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Records an inline fault expectation.
    pub(super) fn expect_fault(&mut self, tag: OpTag, place: Location, fault: Option<FaultFile>) {
        if let Some(f) = fault {
            self.expectations.push(Expectation {
                place,
                kind: ExpectKind::Fault {
                    op: tag,
                    kind: fault_kind(f),
                },
            });
        }
    }

    pub(super) fn expect_pconfig(
        &mut self,
        tag: OpTag,
        place: Location,
        outcome: Option<OutcomeFile>,
    ) {
        if let Some(o) = outcome {
            self.expectations.push(Expectation {
                place,
                kind: ExpectKind::Pconfig {
                    op: tag,
                    outcome: pconfig_expect(o),
                },
            });
        }
    }

    pub(super) fn expect_kernel(
        &mut self,
        tag: OpTag,
        place: Location,
        result: Option<ResultFile>,
    ) {
        if let Some(r) = result {
            self.expectations.push(Expectation {
                place,
                kind: ExpectKind::Kernel {
                    op: tag,
                    result: kernel_result(r),
                },
            });
        }
    }

    /// The op `label` names on `core`.
    pub(super) fn labelled(
        &self,
        core: u64,
        label: &str,
        path: &[PathSeg<'static>],
    ) -> Result<&LabelInfo, ScenarioError> {
        let programs = self.labels.len();
        let Some((map, order)) = usize::try_from(core).ok().and_then(|c| self.labels.get(c)) else {
            let expected = if programs == 0 {
                "the scenario has no programs".to_owned()
            } else {
                format!("expected a core with a program, 0..={}", programs - 1)
            };
            return Err(self.err(
                &field(path, "core"),
                format!("core {core} has no program: {expected}"),
            ));
        };
        let Some(info) = map.get(label) else {
            let known = if order.is_empty() {
                "it has no labelled ops (give an op `label: \"...\"`)".to_owned()
            } else {
                format!("its labels: {}", quoted_list(order.iter()))
            };
            return Err(self.err(
                &field(path, "label"),
                format!("core {core} has no op labelled `{label}`; {known}"),
            ));
        };
        if info.in_shadow {
            return Err(self.err(
                &field(path, "label"),
                format!(
                    "`{label}` on core {core} (at {}) is inside mispredict: shadow ops produce \
                     no results, so nothing can be expected of them",
                    info.place
                ),
            ));
        }
        Ok(info)
    }

    pub(super) fn wrong_op(
        &self,
        path: &[PathSeg<'static>],
        expectation: &str,
        wanted: &str,
        label: &str,
        core: u64,
        info: &LabelInfo,
    ) -> ScenarioError {
        self.err(
            &field(path, "label"),
            format!(
                "a `{expectation}` expectation needs {wanted}, but `{label}` on core {core} is a \
                 {} (at {})",
                info.op_name, info.place
            ),
        )
    }

    pub(super) fn expectation(
        &self,
        e: &ExpectFile,
        path: &[PathSeg<'static>],
        plan: &AttackerPlan,
    ) -> Result<Expectation, ScenarioError> {
        let place = self.place(path);
        let kind = match e {
            ExpectFile::Load {
                core,
                label,
                value,
                not,
                same_as,
                not_same_as,
                written_through,
                not_written_through,
            } => {
                let info = self.labelled(*core, label, path)?;
                let OpClass::Load { len } = info.class else {
                    return Err(self.wrong_op(path, "load", "a load", label, *core, info));
                };
                let op = info.tag;
                let given: Vec<&'static str> = [
                    ("value", value.is_some()),
                    ("not", not.is_some()),
                    ("same_as", same_as.is_some()),
                    ("not_same_as", not_same_as.is_some()),
                    ("written_through", written_through.is_some()),
                    ("not_written_through", not_written_through.is_some()),
                ]
                .into_iter()
                .filter_map(|(name, g)| g.then_some(name))
                .collect();
                const RELATIONS: &str = "`value`, `not`, `same_as`, `not_same_as`, \
                                         `written_through` or `not_written_through`";
                match given.as_slice() {
                    [] => {
                        return Err(self.err(
                            path,
                            format!(
                                "a load expectation without a relation: expected one of {RELATIONS}"
                            ),
                        ));
                    }
                    [_] => {}
                    [_, second, ..] => {
                        return Err(self.err(
                            &field(path, second),
                            format!(
                                "a load expectation takes one relation, and this one gives {}: \
                                 expected one of {RELATIONS} (write several expectations)",
                                quoted_list(given.iter())
                            ),
                        ));
                    }
                }
                let bytes_of =
                    |d: &DataFile, name: &'static str| -> Result<Vec<u8>, ScenarioError> {
                        let bytes = self.data(d, &field(path, name))?;
                        if bytes.len() as u64 != len {
                            return Err(self.err(
                                &field(path, name),
                                format!(
                                    "{name} is {} bytes but load `{label}` reads {len}: expected \
                                 {len} bytes",
                                    bytes.len()
                                ),
                            ));
                        }
                        Ok(bytes)
                    };
                if let Some(v) = value {
                    ExpectKind::LoadValue {
                        op,
                        bytes: bytes_of(v, "value")?,
                    }
                } else if let Some(v) = not {
                    ExpectKind::LoadNot {
                        op,
                        bytes: bytes_of(v, "not")?,
                    }
                } else if let Some((r, same, name)) = same_as
                    .as_ref()
                    .map(|r| (r, true, "same_as"))
                    .or(not_same_as.as_ref().map(|r| (r, false, "not_same_as")))
                {
                    let rpath = field(path, name);
                    let other_core = r.core.unwrap_or(*core);
                    let other = self.labelled(other_core, &r.label, &rpath)?;
                    let OpClass::Load { len: other_len } = other.class else {
                        return Err(self.wrong_op(
                            &rpath,
                            name,
                            "a load to compare with",
                            &r.label,
                            other_core,
                            other,
                        ));
                    };
                    if other.tag == op {
                        return Err(self.err(
                            &field(&rpath, "label"),
                            format!("`{name}` names load `{label}` itself: expected another load"),
                        ));
                    }
                    if other_len != len {
                        return Err(self.err(
                            &field(&rpath, "label"),
                            format!(
                                "load `{}` on core {other_core} reads {other_len} bytes and \
                                 `{label}` {len}: expected loads of one length",
                                r.label
                            ),
                        ));
                    }
                    ExpectKind::LoadSameAs {
                        op,
                        other: other.tag,
                        same,
                    }
                } else {
                    let (keyid, same, name) = match (written_through, not_written_through) {
                        (Some(k), _) => (*k, true, "written_through"),
                        (None, Some(k)) => (*k, false, "not_written_through"),
                        (None, None) => unreachable!("one relation is given"),
                    };
                    ExpectKind::LoadWritten {
                        op,
                        keyid: self.keyid(keyid, &field(path, name))?,
                        same,
                    }
                }
            }
            ExpectFile::Pconfig {
                core,
                label,
                outcome,
            } => {
                let info = self.labelled(*core, label, path)?;
                if info.class != OpClass::Pconfig {
                    return Err(self.wrong_op(
                        path,
                        "pconfig",
                        "a pconfig or pconfig_raw",
                        label,
                        *core,
                        info,
                    ));
                }
                ExpectKind::Pconfig {
                    op: info.tag,
                    outcome: pconfig_expect(*outcome),
                }
            }
            ExpectFile::Kernel {
                core,
                label,
                result,
            } => {
                let info = self.labelled(*core, label, path)?;
                if info.class != OpClass::Kernel {
                    return Err(self.wrong_op(
                        path,
                        "kernel",
                        "a system call (add_key, invalidate_key, mmap, munmap, mprotect, \
                         encrypt_mprotect)",
                        label,
                        *core,
                        info,
                    ));
                }
                ExpectKind::Kernel {
                    op: info.tag,
                    result: kernel_result(*result),
                }
            }
            ExpectFile::Fault { core, label, kind } => {
                let info = self.labelled(*core, label, path)?;
                if !info.class.can_fault() {
                    return Err(self.wrong_op(
                        path,
                        "fault",
                        "an op that can fault (load, store, clflush, clflushopt, clwb)",
                        label,
                        *core,
                        info,
                    ));
                }
                ExpectKind::Fault {
                    op: info.tag,
                    kind: kind.and_then(fault_kind),
                }
            }
            ExpectFile::NoFaults => ExpectKind::NoFaults,
            ExpectFile::NoViolations => ExpectKind::Violations(ViolationExpect::None),
            ExpectFile::AnyViolation => ExpectKind::Violations(ViolationExpect::Any),
            ExpectFile::Violation {
                kind,
                line,
                lost,
                written,
                chain,
            } => {
                let line = match line {
                    Some(l) => Some(self.dram_line(*l, &field(path, "line"))?),
                    None => None,
                };
                let kind = violation_kind(*kind);
                let chain = chain.clone().unwrap_or_default();
                if let Some(i) = chain.iter().position(|t| t.trim().is_empty()) {
                    return Err(self.err(
                        &index(&field(path, "chain"), i),
                        "an empty chain text matches every event: expected a part of one, \
                         such as \"KeyID 1 store\"",
                    ));
                }
                if lost.is_none() && written.is_none() {
                    ExpectKind::Violations(ViolationExpect::Kind { kind, line, chain })
                } else {
                    if kind != ViolationKind::DataLoss {
                        let name = if lost.is_some() { "lost" } else { "written" };
                        return Err(self.err(
                            &field(path, name),
                            format!(
                                "`{name}` describes a data loss's lines, and a {kind} violation \
                                 has none: expected kind: data_loss"
                            ),
                        ));
                    }
                    let bytes_at = |b: &Option<BytesAtFile>, name: &'static str| match b {
                        None => Ok(None),
                        Some(b) => self.bytes_at(b, &field(path, name)).map(Some),
                    };
                    ExpectKind::Loss(LossExpect {
                        line,
                        lost: bytes_at(lost, "lost")?,
                        written: bytes_at(written, "written")?,
                        chain,
                    })
                }
            }
            ExpectFile::Attacker {
                saw,
                line,
                lines,
                dump,
                data,
                count,
                min,
                max,
            } => ExpectKind::Attacker(self.attacker_expect(
                path,
                AttackerFields {
                    saw: *saw,
                    line: *line,
                    lines: lines.as_deref(),
                    dump: dump.as_deref(),
                    data: data.as_ref(),
                    count: *count,
                    min: *min,
                    max: *max,
                },
                plan,
            )?),
            ExpectFile::Plaintext { keyid, line, data } => {
                let keyid = self.keyid(*keyid, &field(path, "keyid"))?;
                let line = self.dram_line(*line, &field(path, "line"))?;
                let bytes = self.data(data, &field(path, "data"))?;
                if bytes.len() as u64 != LINE_BYTES {
                    return Err(self.err(
                        &field(path, "data"),
                        format!(
                            "plaintext data is {} bytes: expected exactly 64 (one line)",
                            bytes.len()
                        ),
                    ));
                }
                ExpectKind::Plaintext { keyid, line, bytes }
            }
            ExpectFile::Cycles { min, max } => {
                match (min, max) {
                    (None, None) => {
                        return Err(
                            self.err(path, "cycles without bounds: expected `min`, `max` or both")
                        );
                    }
                    (Some(lo), Some(hi)) if lo > hi => {
                        return Err(self.err(
                            &field(path, "min"),
                            format!("cycles min {lo} is above max {hi}: expected min <= max"),
                        ));
                    }
                    _ => {}
                }
                ExpectKind::Cycles {
                    min: *min,
                    max: *max,
                }
            }
        };
        Ok(Expectation { place, kind })
    }
}

/// Whether the op gives `expect`, `expect_not` and `expect_fault`.
fn inline_expectations(op: &OpFile) -> (bool, bool, bool) {
    match op {
        OpFile::Load {
            expect,
            expect_not,
            expect_fault,
            ..
        } => (
            expect.is_some(),
            expect_not.is_some(),
            expect_fault.is_some(),
        ),
        OpFile::Store { expect_fault, .. }
        | OpFile::Clflush { expect_fault, .. }
        | OpFile::Clflushopt { expect_fault, .. }
        | OpFile::Clwb { expect_fault, .. } => (false, false, expect_fault.is_some()),
        OpFile::Pconfig { expect, .. } | OpFile::PconfigRaw { expect, .. } => {
            (expect.is_some(), false, false)
        }
        OpFile::AddKey { expect, .. }
        | OpFile::InvalidateKey { expect, .. }
        | OpFile::ShareKey { expect, .. }
        | OpFile::Mmap { expect, .. }
        | OpFile::Munmap { expect, .. }
        | OpFile::Mprotect { expect, .. }
        | OpFile::EncryptMprotect { expect, .. } => (expect.is_some(), false, false),
        OpFile::Prefetch { .. }
        | OpFile::SpeculativeLoad { .. }
        | OpFile::Wbinvd
        | OpFile::Mfence
        | OpFile::Sfence
        | OpFile::Mispredict(_)
        | OpFile::Compute(_)
        | OpFile::Barrier(_)
        | OpFile::Repeat { .. } => (false, false, false),
    }
}

fn fault_kind(f: FaultFile) -> Option<FaultKind> {
    match f {
        FaultFile::Any => None,
        FaultFile::NotMapped => Some(FaultKind::NotMapped),
        FaultFile::Protection => Some(FaultKind::Protection),
        FaultFile::Privilege => Some(FaultKind::Privilege),
        FaultFile::DirectMapUnmapped => Some(FaultKind::DirectMapUnmapped),
    }
}

fn pconfig_expect(o: OutcomeFile) -> PconfigExpect {
    match o {
        OutcomeFile::Success => PconfigExpect::Status(PconfigStatus::Success),
        OutcomeFile::EntropyError => PconfigExpect::Status(PconfigStatus::EntropyError),
        OutcomeFile::DeviceBusy => PconfigExpect::Status(PconfigStatus::DeviceBusy),
        OutcomeFile::InvalidProgCmd => PconfigExpect::Status(PconfigStatus::InvalidProgCmd),
        OutcomeFile::InvalidKeyid => PconfigExpect::Status(PconfigStatus::InvalidKeyId),
        OutcomeFile::InvalidEncAlg => PconfigExpect::Status(PconfigStatus::InvalidEncAlg),
        OutcomeFile::Gp => PconfigExpect::Fault(FaultVector::GeneralProtection),
        OutcomeFile::Ud => PconfigExpect::Fault(FaultVector::InvalidOpcode),
    }
}

fn kernel_result(r: ResultFile) -> Result<Option<u64>, Errno> {
    match r {
        ResultFile::Ok => Ok(None),
        ResultFile::Value(v) => Ok(Some(v)),
        ResultFile::Err(e) => Err(match e {
            ErrnoFile::Einval => Errno::Einval,
            ErrnoFile::Enokey => Errno::Enokey,
            ErrnoFile::Eacces => Errno::Eacces,
            ErrnoFile::Enomem => Errno::Enomem,
        }),
    }
}

fn violation_kind(k: ViolationKindFile) -> ViolationKind {
    match k {
        ViolationKindFile::DualDirty => ViolationKind::DualDirty,
        ViolationKindFile::DataLoss => ViolationKind::DataLoss,
        ViolationKindFile::StaleRead => ViolationKind::StaleRead,
        ViolationKindFile::ReprogramWhileCached => ViolationKind::ReprogramWhileCached,
        ViolationKindFile::PhantomDirty => ViolationKind::PhantomDirty,
    }
}
