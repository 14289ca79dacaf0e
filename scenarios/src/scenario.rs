//! A validated scenario: everything typed, every reference resolved, ready to run.
//!
//! [`crate::scenario_file`] is the file's shape; validation turns it into a [`Scenario`], and
//! the runner takes only this. Every expectation and op keeps its place in the file, so a
//! report can say where each came from.

use checker::ViolationKind;
use cpu_model::SystemConfig;
use cpu_model::program::{Errno, FaultKind, OpTag, Program};
use mem_ctrl::pconfig::{FaultVector, PconfigStatus};
use sim_core::{CoreId, DramAddr, KeyId};
use std::fmt;

/// A place in a scenario file, 1-based.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Location {
    /// Line.
    pub line: usize,
    /// Column (characters).
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A scenario ready to run.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Its name (the file's `name`, or the file stem).
    pub name: String,
    /// The file it came from, as given on the command line.
    pub file: String,
    /// What it shows, in a sentence or two.
    pub description: String,
    /// The seed (the file's, unless `--seed` overrode it).
    pub seed: u64,
    /// Machine, kernel and run limits.
    pub system: SystemConfig,
    /// One program per core (fewer than the machine's cores: the rest idle).
    pub programs: Vec<Program>,
    /// Every op of every program, indexed by its [`OpTag`].
    pub ops: Vec<OpInfo>,
    /// What the attacker does and records.
    pub attacker: AttackerPlan,
    /// Every expectation, inline ones included, in file order.
    pub expectations: Vec<Expectation>,
}

/// Where an op sits and how to name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpInfo {
    /// The core whose program holds it.
    pub core: CoreId,
    /// Its place in the file.
    pub place: Location,
    /// The scenario's name for it (`name: "..."`), if any.
    pub name: Option<String>,
    /// A short description: `load 8 bytes at virt 0x7000_0000`.
    pub summary: String,
    /// A `load` outside a mispredict shadow: each execution returns a value.
    pub loads_value: bool,
}

/// The attacker's part. (The attacks themselves arrive with the attacks issue; today the
/// attacker records what it can see.)
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AttackerPlan {
    /// Record every transfer on the DIMM bus (the report's `bus_log`).
    pub bus_log: bool,
    /// Snapshots of DRAM ciphertext (the report's `dram_dumps`).
    pub dram_dumps: Vec<DramDumpPlan>,
}

/// One DRAM snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DramDumpPlan {
    /// When.
    pub at: DumpTime,
    /// The lines (64-byte-aligned DRAM addresses), in the order to report them.
    pub lines: Vec<DramAddr>,
    /// Where the request sits in the file.
    pub place: Location,
}

/// When a DRAM snapshot is taken.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DumpTime {
    /// At this cycle (before anything of that cycle happens).
    Cycle(u64),
    /// When the run has ended (after the final drain).
    End,
}

/// One expectation and where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    /// Its place in the file.
    pub place: Location,
    /// What must hold.
    pub kind: ExpectKind,
}

/// What must hold at the end of the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectKind {
    /// Every execution of this load returned these bytes (and it ran at least once).
    LoadValue {
        /// The load.
        op: OpTag,
        /// The bytes, in address order.
        bytes: Vec<u8>,
    },
    /// Every execution of this PCONFIG had this outcome.
    Pconfig {
        /// The PCONFIG op.
        op: OpTag,
        /// The outcome.
        outcome: PconfigExpect,
    },
    /// Every execution of this system call returned this.
    Kernel {
        /// The call.
        op: OpTag,
        /// `Ok(None)`: any success; `Ok(Some(v))`: success with value v; `Err(e)`: error e.
        result: Result<Option<u64>, Errno>,
    },
    /// Every execution of this op faulted (with this kind, if given).
    Fault {
        /// The op.
        op: OpTag,
        /// The kind, if it matters.
        kind: Option<FaultKind>,
    },
    /// No op of any program faulted.
    NoFaults,
    /// What the coherency checker found.
    Violations(ViolationExpect),
    /// At the end of the run, the line reads as these 64 bytes of plaintext through `keyid`
    /// (the DRAM contents decrypted with the key in force; caches are drained first).
    Plaintext {
        /// The KeyID to read through.
        keyid: KeyId,
        /// The line (64-byte aligned).
        line: DramAddr,
        /// The 64 bytes.
        bytes: Vec<u8>,
    },
    /// The run's length in cycles (up to when the programs ended) lies within these bounds.
    Cycles {
        /// At least.
        min: Option<u64>,
        /// At most.
        max: Option<u64>,
    },
}

impl ExpectKind {
    /// The op whose every execution this expectation judges, if it is about one.
    pub fn op(&self) -> Option<OpTag> {
        match self {
            ExpectKind::LoadValue { op, .. }
            | ExpectKind::Pconfig { op, .. }
            | ExpectKind::Kernel { op, .. }
            | ExpectKind::Fault { op, .. } => Some(*op),
            ExpectKind::NoFaults
            | ExpectKind::Violations(_)
            | ExpectKind::Plaintext { .. }
            | ExpectKind::Cycles { .. } => None,
        }
    }
}

/// A PCONFIG outcome to expect.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PconfigExpect {
    /// RAX held this status.
    Status(PconfigStatus),
    /// The instruction raised this exception.
    Fault(FaultVector),
}

/// What the coherency checker should have found.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ViolationExpect {
    /// Nothing.
    None,
    /// At least one violation, of any kind.
    Any,
    /// At least one violation of this kind (at this DRAM line, if given).
    Kind {
        /// The kind.
        kind: ViolationKind,
        /// The line.
        line: Option<DramAddr>,
    },
}
