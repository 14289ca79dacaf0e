//! The processes a scenario declares (`processes: ["host", "vm1"]`): names, unique, and the
//! references to them (a core's `process`, `share_key`'s `with`). Without the section every
//! program runs in one process.

use super::helpers::{index, quoted_list};
use super::{ScenarioError, Validator};
use crate::locate::PathSeg;
use cpu_model::program::ProcessId;

impl Validator<'_> {
    /// Reads the `processes` section.
    pub(super) fn processes(&mut self, names: Option<&[String]>) -> Result<(), ScenarioError> {
        let Some(names) = names else {
            return Ok(());
        };
        let base = [PathSeg::Field("processes")];
        if names.is_empty() {
            return Err(self.err(
                &base,
                "no processes: expected at least one name (or leave `processes` out: one \
                 process)",
            ));
        }
        for (i, name) in names.iter().enumerate() {
            if name.is_empty() {
                return Err(self.err(&index(&base, i), "an empty process name: expected a name"));
            }
            if let Some(first) = names[..i].iter().position(|n| n == name) {
                return Err(self.err(
                    &index(&base, i),
                    format!(
                        "process `{name}` is already declared (as process {first}): expected \
                         process names unique"
                    ),
                ));
            }
        }
        self.processes = names.to_vec();
        Ok(())
    }

    /// The process called `name`.
    pub(super) fn process_named(
        &self,
        name: &str,
        path: &[PathSeg<'static>],
    ) -> Result<ProcessId, ScenarioError> {
        match self.processes.iter().position(|n| n == name) {
            Some(i) => Ok(ProcessId(u32::try_from(i).unwrap_or(u32::MAX))),
            None if self.processes.is_empty() => Err(self.err(
                path,
                format!(
                    "no process is called `{name}`: the scenario declares no processes \
                     (`processes: [\"{name}\", ...]`)"
                ),
            )),
            None => Err(self.err(
                path,
                format!(
                    "no process is called `{name}`; the scenario's processes: {}",
                    quoted_list(self.processes.iter())
                ),
            )),
        }
    }
}
