//! Expectations: the inline ones ops carry (`expect`, `expect_fault`), which shadow ops may
//! not, and the listed ones in `expect`, which name their op by core and label and must fit
//! what that op is.

use super::helpers::{field, quoted_list};
use super::ops::{LabelInfo, OpClass};
use super::{LINE_BYTES, ScenarioError, Validator};
use crate::locate::PathSeg;
use crate::scenario::{ExpectKind, Expectation, Location, PconfigExpect, ViolationExpect};
use crate::scenario_file::{
    ErrnoFile, ExpectFile, FaultFile, OpFile, OutcomeFile, ResultFile, ViolationKindFile,
};
use checker::ViolationKind;
use cpu_model::program::{Errno, FaultKind, OpTag};
use mem_ctrl::pconfig::{FaultVector, PconfigStatus};

impl Validator<'_> {
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
        let (expect, expect_fault) = inline_expectations(op);
        for (name, given) in [("expect", expect), ("expect_fault", expect_fault)] {
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
    ) -> Result<Expectation, ScenarioError> {
        let place = self.place(path);
        let kind = match e {
            ExpectFile::Load { core, label, value } => {
                let info = self.labelled(*core, label, path)?;
                let OpClass::Load { len } = info.class else {
                    return Err(self.wrong_op(path, "load", "a load", label, *core, info));
                };
                let bytes = self.data(value, &field(path, "value"))?;
                if bytes.len() as u64 != len {
                    return Err(self.err(
                        &field(path, "value"),
                        format!(
                            "value is {} bytes but load `{label}` reads {len}: expected {len} \
                             bytes",
                            bytes.len()
                        ),
                    ));
                }
                ExpectKind::LoadValue {
                    op: info.tag,
                    bytes,
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
            ExpectFile::Violation { kind, line } => {
                let line = match line {
                    Some(l) => Some(self.dram_line(*l, &field(path, "line"))?),
                    None => None,
                };
                ExpectKind::Violations(ViolationExpect::Kind {
                    kind: violation_kind(*kind),
                    line,
                })
            }
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

/// Whether the op gives `expect` and whether it gives `expect_fault`.
fn inline_expectations(op: &OpFile) -> (bool, bool) {
    match op {
        OpFile::Load {
            expect,
            expect_fault,
            ..
        } => (expect.is_some(), expect_fault.is_some()),
        OpFile::Store { expect_fault, .. }
        | OpFile::Clflush { expect_fault, .. }
        | OpFile::Clflushopt { expect_fault, .. }
        | OpFile::Clwb { expect_fault, .. } => (false, expect_fault.is_some()),
        OpFile::Pconfig { expect, .. } | OpFile::PconfigRaw { expect, .. } => {
            (expect.is_some(), false)
        }
        OpFile::AddKey { expect, .. }
        | OpFile::InvalidateKey { expect, .. }
        | OpFile::Mmap { expect, .. }
        | OpFile::Munmap { expect, .. }
        | OpFile::Mprotect { expect, .. }
        | OpFile::EncryptMprotect { expect, .. } => (expect.is_some(), false),
        OpFile::Prefetch { .. }
        | OpFile::SpeculativeLoad { .. }
        | OpFile::Wbinvd
        | OpFile::Mfence
        | OpFile::Sfence
        | OpFile::Mispredict(_)
        | OpFile::Compute(_)
        | OpFile::Barrier(_)
        | OpFile::Repeat { .. } => (false, false),
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
