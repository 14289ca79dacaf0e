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
    /// The `--set PATH=VALUE` overrides it was read with, as given.
    pub overrides: Vec<String>,
    /// Machine, kernel and run limits.
    pub system: SystemConfig,
    /// One program per core (fewer than the machine's cores: the rest idle).
    pub programs: Vec<Program>,
    /// The processes' names, by [`cpu_model::program::ProcessId`] (empty: the scenario declares
    /// none, and every program runs in process 0).
    pub processes: Vec<String>,
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
    /// Its label, for expectations on what it shows.
    pub label: Option<String>,
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
    /// No execution of this load returned these bytes (and it ran at least once).
    LoadNot {
        /// The load.
        op: OpTag,
        /// The bytes, in address order.
        bytes: Vec<u8>,
    },
    /// The n-th execution of this load returned what the n-th of `other` returned (`same`),
    /// or something else (`!same`); both ran, as often.
    LoadSameAs {
        /// The load.
        op: OpTag,
        /// The other load (as long).
        other: OpTag,
        /// Equal, or different.
        same: bool,
    },
    /// Every execution of this load returned (`same`), or did not return (`!same`), the
    /// bytes KeyID `keyid`'s last store to that DRAM line had left there by the time the
    /// load completed.
    LoadWritten {
        /// The load.
        op: OpTag,
        /// The KeyID whose stores count.
        keyid: KeyId,
        /// Equal, or different.
        same: bool,
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
    /// At least one data loss (at this line) whose lost and written lines hold these bytes.
    Loss(LossExpect),
    /// What the attacker's analyses found.
    Attacker(AttackerExpect),
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
            | ExpectKind::LoadNot { op, .. }
            | ExpectKind::LoadSameAs { op, .. }
            | ExpectKind::LoadWritten { op, .. }
            | ExpectKind::Pconfig { op, .. }
            | ExpectKind::Kernel { op, .. }
            | ExpectKind::Fault { op, .. } => Some(*op),
            ExpectKind::NoFaults
            | ExpectKind::Violations(_)
            | ExpectKind::Loss(_)
            | ExpectKind::Attacker(_)
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

/// Bytes one line of a data loss must hold.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BytesAt {
    /// The alias the line belongs to, if it matters.
    pub keyid: Option<KeyId>,
    /// Where `bytes` start in the line.
    pub offset: usize,
    /// The bytes (possibly none: only the KeyID matters).
    pub bytes: Vec<u8>,
}

impl BytesAt {
    /// Whether `line`, the line of alias `keyid`, holds these bytes.
    pub fn matches(&self, keyid: KeyId, line: &[u8]) -> bool {
        self.keyid.is_none_or(|k| k == keyid)
            && line.get(self.offset..self.offset + self.bytes.len()) == Some(&self.bytes[..])
    }
}

/// A data loss with these lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LossExpect {
    /// At this DRAM line.
    pub line: Option<DramAddr>,
    /// The lost line holds these.
    pub lost: Option<BytesAt>,
    /// The line written over it holds these.
    pub written: Option<BytesAt>,
}

/// A kind of finding of the attacker's analyses: each is a count per DRAM line (and, for a
/// dump, per dump). The attacks work adds kinds here; expectations on them need nothing new.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    /// Bus transfers carrying a line's plaintext as the program's data left the caches for
    /// it (a write-back's bytes, before any encryption): plaintext on the DIMM bus.
    BusPlaintext,
    /// Bus writes carrying the same bytes an earlier write to the line carried:
    /// deterministic encryption shows the interposer a value repeating.
    BusRepeatedCiphertext,
    /// Bus transfers to the line, reads and writes.
    BusTransfers,
    /// Bus reads of the line.
    BusReads,
    /// Bus writes of the line.
    BusWrites,
    /// A line of a DRAM dump (count 1, with its 64 bytes).
    DumpLine,
    /// A dump line holding a plaintext the program's data had when it was written back.
    DumpPlaintext,
}

impl FindingKind {
    /// Every kind, in report order.
    pub const ALL: [FindingKind; 7] = [
        FindingKind::BusPlaintext,
        FindingKind::BusRepeatedCiphertext,
        FindingKind::BusTransfers,
        FindingKind::BusReads,
        FindingKind::BusWrites,
        FindingKind::DumpLine,
        FindingKind::DumpPlaintext,
    ];

    /// The name in files and reports.
    pub const fn name(self) -> &'static str {
        match self {
            FindingKind::BusPlaintext => "bus_plaintext",
            FindingKind::BusRepeatedCiphertext => "bus_repeated_ciphertext",
            FindingKind::BusTransfers => "bus_transfers",
            FindingKind::BusReads => "bus_reads",
            FindingKind::BusWrites => "bus_writes",
            FindingKind::DumpLine => "dump_line",
            FindingKind::DumpPlaintext => "dump_plaintext",
        }
    }

    /// Whether the bus log feeds it (else the DRAM dumps do).
    pub const fn from_bus(self) -> bool {
        matches!(
            self,
            FindingKind::BusPlaintext
                | FindingKind::BusRepeatedCiphertext
                | FindingKind::BusTransfers
                | FindingKind::BusReads
                | FindingKind::BusWrites
        )
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An expectation on the attacker's findings of one kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttackerExpect {
    /// The kind.
    pub kind: FindingKind,
    /// Only at this line.
    pub line: Option<DramAddr>,
    /// Only in this dump (an index into the attacker's `dram_dumps`).
    pub dump: Option<usize>,
    /// Only findings of these bytes.
    pub data: Option<Vec<u8>>,
    /// Exactly these lines have the finding (ascending).
    pub lines: Option<Vec<DramAddr>>,
    /// The total count lies within these bounds (inclusive); with neither bound nor `lines`,
    /// at least 1.
    pub min: Option<u64>,
    /// At most.
    pub max: Option<u64>,
}
