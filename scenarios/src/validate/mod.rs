//! Reading a scenario file: RON text to a validated [`Scenario`], or an error that says where
//! and what was expected.
//!
//! Two stages:
//!
//! 1. `ron` reads the text into [`crate::scenario_file`]'s structs, which deny unknown fields.
//!    Syntax errors, unknown fields or variants and mistyped values stop here, at the place
//!    `ron` reports, with `ron`'s message (which lists the fields or variants that exist).
//! 2. Everything else is checked while the file structs are turned into a [`Scenario`]: the
//!    machine, ranges, addresses against the machine's KeyID bits and DRAM, data lengths,
//!    labels and the expectations that name them, barriers, key names. Each error is located
//!    at the offending value with [`crate::locate`], which reads the text a second time.
//!
//! Errors print as `file:line:column: message` ([`ScenarioError`]); validation stops at the
//! first. Nothing here panics on any input: user numbers go through checked arithmetic, and
//! data sizes are bounded before anything is allocated for them.
//!
//! ```
//! let s = scenarios::validate::parse(
//!     "(cores: [(ops: [store(at: virt(0x7000_0000), data: u64(7)), mfence])])",
//!     "lib/tiny.ron",
//! )
//! .unwrap();
//! assert_eq!(s.name, "tiny");
//! assert_eq!(s.ops[0].summary, "store 8 bytes at virt 0x7000_0000");
//!
//! let e = scenarios::validate::parse(
//!     "(cores: [(ops: [load(at: virt(0x1000), len: 65)])])",
//!     "lib/x.ron",
//! )
//! .unwrap_err();
//! assert_eq!(e.to_string(), "lib/x.ron:1:45: load len 65 is outside 1..=64");
//! ```
//!
//! The module is split along validation's seams:
//!
//! - `read`: the entry points ([`load`], [`parse_bytes`], [`parse`], and their `_with` forms
//!   that take `--set` [`Override`]s) and `ron`'s errors, placed and worded;
//! - `overrides`: `--set PATH=VALUE` applied to the text, and errors mapped back to the file or
//!   to the override;
//! - `machine`: the machine, kernel and run sections, and [`machine_error_path`];
//! - `ops`: each core's op list, the labels ops give, and one function per op family for the
//!   memory and control ops;
//! - `system_ops`: PCONFIG and the system calls;
//! - `operands`: the values ops and expectations take (addresses, KeyIDs, DRAM lines, data,
//!   [`parse_hex`]); `expr`: the expressions in a repeat's index that addresses and data may
//!   be, and their range over every iteration;
//! - `cross_refs`: what can be checked only once every op is read (key names, barriers);
//! - `processes`: the processes cores run in, and the names that refer to them;
//! - `attacker`: the attacker's bus log and DRAM dumps;
//! - `expectations`: inline and listed expectations, and the ops their labels name;
//! - `findings`: expectations on the attacker's findings, checked against what it records;
//! - `helpers`: paths into the file and the text of messages (hex, lists, hidden keys).

mod attacker;
mod cross_refs;
mod expectations;
mod expr;
mod findings;
mod helpers;
mod machine;
mod operands;
mod ops;
mod overrides;
mod processes;
pub(crate) mod read;
mod system_ops;

pub use machine::machine_error_path;
pub use operands::parse_hex;
pub use overrides::Override;
pub(crate) use overrides::{apply_to_text, may_be_text};
pub use read::{load, load_with, parse, parse_bytes, parse_bytes_with, parse_with};

use crate::locate::{PathSeg, RonIndex};
use crate::machine_file::MachineFileError;
use crate::scenario::{Expectation, Location, OpInfo, Scenario};
use crate::scenario_file::ScenarioFile;
use cache_model::hierarchy::HierarchyConfig;
use checker::CheckerConfig;
use cpu_model::program::{Credentials, ProcessId, Program};
use cpu_model::{CoreConfig, MachineConfig, MachineConfigError, SystemConfig};
use cross_refs::BarrierInfo;
use helpers::FilePath;
use mem_ctrl::MemCtrlConfig;
use ops::{Block, LabelInfo};
use sim_core::{AddressLayout, DetHashMap, text};
use std::path::Path;

pub use crate::limits::{FILE_CHARS_SHOWN, OPS_MAX, SCENARIO_FILE_BYTES_MAX};

/// Ops nested deeper than this (repeat and mispredict blocks) are refused.
pub const NESTING_MAX: usize = 16;
/// `run.cycles_max` at most.
pub const CYCLES_MAX_LIMIT: u64 = 1_000_000_000_000;
/// `run.cycles_max` when not given.
pub const CYCLES_MAX_DEFAULT: u64 = 10_000_000;
/// Lines all DRAM dumps together may hold.
pub const DUMP_LINES_MAX: u64 = 1 << 20;
/// Bytes one load or store moves, at most.
pub const ACCESS_BYTES_MAX: u64 = 64;
/// A page.
const PAGE_BYTES: u64 = 4096;
/// A line.
const LINE_BYTES: u64 = 64;

/// A scenario file that cannot be read, is not valid RON of the scenario's shape, or
/// describes something impossible. Prints as `file:line:column: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
///
/// Printed, the file and the message are made safe for a terminal and for tools that read
/// errors line by line ([`sim_core::text`]): control characters escaped, long user text cut.
#[error(
    "{}{}: {}",
    text::shown_max(file, FILE_CHARS_SHOWN),
    place_suffix(.place),
    text::one_line(message)
)]
pub struct ScenarioError {
    /// The file, as given.
    pub file: String,
    /// Where in it (none when the file could not be read at all).
    pub place: Option<Location>,
    /// What is wrong, and what was expected.
    pub message: String,
}

fn place_suffix(place: &Option<Location>) -> String {
    place.map_or_else(String::new, |p| format!(":{p}"))
}

struct Validator<'a> {
    file: &'a str,
    index: &'a RonIndex<'a>,
    machine: MachineConfig,
    layout: AddressLayout,
    dram_bytes: u64,
    ops: Vec<OpInfo>,
    expectations: Vec<Expectation>,
    /// Per core: label -> op, and the labels in file order.
    labels: Vec<(DetHashMap<String, LabelInfo>, Vec<String>)>,
    barriers: Vec<BarrierInfo>,
    barrier_ids: DetHashMap<String, u32>,
    /// Names `add_key` gives, in file order.
    added_keys: Vec<String>,
    /// Key names other calls use, and where.
    used_keys: Vec<(String, FilePath)>,
    /// The indices of the repeats enclosing the op being read, outermost first.
    scope: Vec<expr::IndexVar>,
    /// The processes' names (none declared: one, unnamed).
    processes: Vec<String>,
}

impl<'a> Validator<'a> {
    fn new(file: &'a str, index: &'a RonIndex<'a>) -> Validator<'a> {
        // Replaced by the file's machine before anything is checked against it.
        let machine = MachineConfig {
            caches: HierarchyConfig::default(),
            memory: MemCtrlConfig::default(),
            core: CoreConfig::default(),
        };
        Validator {
            file,
            index,
            layout: machine.memory.layout,
            dram_bytes: machine.memory.dram_bytes(),
            machine,
            ops: Vec::new(),
            expectations: Vec::new(),
            labels: Vec::new(),
            barriers: Vec::new(),
            barrier_ids: DetHashMap::default(),
            added_keys: Vec::new(),
            used_keys: Vec::new(),
            scope: Vec::new(),
            processes: Vec::new(),
        }
    }

    fn place(&self, path: &[PathSeg<'_>]) -> Location {
        self.index.locate_nearest(path)
    }

    fn err(&self, path: &[PathSeg<'_>], message: impl Into<String>) -> ScenarioError {
        ScenarioError {
            file: self.file.to_owned(),
            place: Some(self.place(path)),
            message: message.into(),
        }
    }

    fn scenario(mut self, f: ScenarioFile) -> Result<Scenario, ScenarioError> {
        // The machine first: everything else is checked against it.
        // A DRAM file named in `machine.memory.dram` is read from the scenario's folder.
        let machine_file = f.machine.unwrap_or_default();
        let dir = Path::new(self.file).parent().unwrap_or(Path::new("."));
        self.machine = machine_file
            .to_config_in(dir, self.file)
            .map_err(|e| match e {
                MachineFileError::Machine { source: e, .. } => {
                    let path = machine_error_path(&e);
                    match e {
                        MachineConfigError::UnknownPreset { .. } => self.err(&path, e.to_string()),
                        e => self.err(&path, format!("machine.{e}")),
                    }
                }
                MachineFileError::DramFile { error, .. } => self.err(
                    &[
                        PathSeg::Field("machine"),
                        PathSeg::Field("memory"),
                        PathSeg::Field("dram"),
                    ],
                    format!("machine.memory.dram: {error}"),
                ),
                // Only a machine file read on its own can fail to be read or parsed.
                e @ (MachineFileError::Io { .. } | MachineFileError::Syntax { .. }) => {
                    self.err(&[PathSeg::Field("machine")], e.to_string())
                }
            })?;
        self.layout = self.machine.memory.layout;
        self.dram_bytes = self.machine.memory.dram_bytes();

        let kernel = self.kernel(f.kernel.as_ref())?;
        let (cycles_max, drain_at_end) = self.run(f.run.as_ref())?;

        let cores = usize::try_from(self.machine.caches.cores).unwrap_or(usize::MAX);
        if f.cores.len() > cores {
            return Err(self.err(
                &[PathSeg::Field("cores"), PathSeg::Index(cores)],
                format!(
                    "{} programs for a machine of {cores} core(s): expected at most {cores} \
                     (program i runs on core i; machine.caches.cores sets the number)",
                    f.cores.len()
                ),
            ));
        }

        self.processes(f.processes.as_deref())?;
        let mut programs = Vec::with_capacity(f.cores.len());
        for (core, program) in f.cores.iter().enumerate() {
            let process = match &program.process {
                Some(name) => self.process_named(
                    name,
                    &[
                        PathSeg::Field("cores"),
                        PathSeg::Index(core),
                        PathSeg::Field("process"),
                    ],
                )?,
                None => ProcessId(0),
            };
            let credentials = Credentials {
                ring0: program.ring0.unwrap_or(true),
                cap_sys_resource: program.cap_sys_resource.unwrap_or(true),
                process,
                attacker: program.attacker.unwrap_or(false),
            };
            self.labels.push((DetHashMap::default(), Vec::new()));
            let path = vec![
                PathSeg::Field("cores"),
                PathSeg::Index(core),
                PathSeg::Field("ops"),
            ];
            let ops = self.op_list(Block::program(core, credentials), &program.ops, &path)?;
            programs.push(Program { ops, credentials });
        }
        self.check_keys()?;
        self.check_barriers()?;

        let attacker = self.attacker(f.attacker.as_ref(), cycles_max)?;
        for (i, e) in f.expect.iter().enumerate() {
            let path = vec![PathSeg::Field("expect"), PathSeg::Index(i)];
            let expectation = self.expectation(e, &path, &attacker)?;
            self.expectations.push(expectation);
        }
        // File order: inline expectations sit at their ops, listed ones in `expect`.
        self.expectations.sort_by_key(|e| e.place);

        let name = f.name.unwrap_or_else(|| {
            Path::new(self.file).file_stem().map_or_else(
                || self.file.to_owned(),
                |s| s.to_string_lossy().into_owned(),
            )
        });
        Ok(Scenario {
            name,
            file: self.file.to_owned(),
            description: f.description.unwrap_or_default(),
            seed: f.seed.unwrap_or(0),
            system: SystemConfig {
                machine: self.machine,
                kernel,
                cycles_max,
                drain_at_end,
                checker: CheckerConfig::default(),
            },
            programs,
            overrides: Vec::new(),
            processes: self.processes,
            ops: self.ops,
            attacker,
            expectations: self.expectations,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_display() {
        let e = ScenarioError {
            file: "a.ron".into(),
            place: Some(Location { line: 3, column: 7 }),
            message: "bad".into(),
        };
        assert_eq!(e.to_string(), "a.ron:3:7: bad");
        let e = ScenarioError { place: None, ..e };
        assert_eq!(e.to_string(), "a.ron: bad");
    }
}
