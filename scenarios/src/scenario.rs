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

/// The attacker's part: what it records (the DIMM bus, DRAM dumps, a cold boot's dump of all
/// DRAM) and what it does (writes to DIMM cells, a faulty DIMM). It acts through the DIMM bus
/// and the DIMMs only, never through the caches.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AttackerPlan {
    /// Record the transfers on the DIMM bus (the report's `bus_log`): every one, or what the
    /// interposer sees.
    pub bus_log: bool,
    /// Where and when an interposer on the bus records (none: every channel, the whole run).
    pub interposer: Option<InterposerPlan>,
    /// Snapshots of DRAM ciphertext (the report's `dram_dumps`).
    pub dram_dumps: Vec<DramDumpPlan>,
    /// Writes to DIMM cells, in file order (the report's `attacks`).
    pub attacks: Vec<AttackPlan>,
    /// A faulty DIMM ignores this DRAM address bit (BadRAM): two addresses reach one line's
    /// cells.
    pub ghost_bit: Option<u32>,
    /// A cold boot: a dump of all DRAM, then a power cycle (the report's `cold_boot`).
    pub cold_boot: Option<ColdBootPlan>,
}

impl AttackerPlan {
    /// Whether the attacker records anything its analyses look at (the report then has
    /// `attacker_findings`).
    pub fn records(&self) -> bool {
        self.bus_log || !self.dram_dumps.is_empty() || self.cold_boot.is_some()
    }
}

/// A DIMM interposer: the channels it sits on and the cycles it is attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterposerPlan {
    /// The channels (numbered across the package, controller by controller); `None`: all.
    pub channels: Option<Vec<u32>>,
    /// Attached at this cycle.
    pub from: u64,
    /// Removed at this cycle (`None`: never).
    pub until: Option<u64>,
}

/// One write to DIMM cells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttackPlan {
    /// What it writes.
    pub kind: AttackKind,
    /// When.
    pub at: DumpTime,
    /// Where it sits in the file.
    pub place: Location,
    /// Its label, if any.
    pub label: Option<String>,
}

/// What an attack writes into a line's DIMM cells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttackKind {
    /// The line's own ciphertext, as recorded at an earlier time.
    Replay {
        /// The line (its DRAM address; through a faulty DIMM, the cells it reaches).
        line: DramAddr,
        /// When the ciphertext is recorded (before `at`).
        recorded: DumpTime,
    },
    /// Another line's ciphertext, copied.
    Splice {
        /// The line copied.
        from: DramAddr,
        /// The line written.
        to: DramAddr,
    },
    /// The stored bytes with these bits flipped.
    BitFlip {
        /// The line.
        line: DramAddr,
        /// Bit numbers within the line, 0..=511 (bit `n` is bit `n % 8` of byte `n / 8`),
        /// ascending, distinct.
        bits: Vec<u16>,
    },
}

impl AttackKind {
    /// The name in files and reports.
    pub const fn name(&self) -> &'static str {
        match self {
            AttackKind::Replay { .. } => "replay",
            AttackKind::Splice { .. } => "splice",
            AttackKind::BitFlip { .. } => "bit_flip",
        }
    }

    /// The line whose cells it writes (as addressed).
    pub const fn target(&self) -> DramAddr {
        match self {
            AttackKind::Replay { line, .. } | AttackKind::BitFlip { line, .. } => *line,
            AttackKind::Splice { to, .. } => *to,
        }
    }
}

/// A cold boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColdBootPlan {
    /// When the power is cut (a cycle ends the run there).
    pub at: DumpTime,
    /// TME restores the platform key saved for standby (TME_ACTIVATE key select = 1).
    pub key_restore: bool,
    /// Where it sits in the file.
    pub place: Location,
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

/// When the attacker acts (a DRAM snapshot, a recording, an attack, a cold boot).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ViolationExpect {
    /// Nothing.
    None,
    /// At least one violation, of any kind.
    Any,
    /// At least one violation of this kind (at this DRAM line, if given) whose chain holds
    /// these events in this order.
    Kind {
        /// The kind.
        kind: ViolationKind,
        /// The line.
        line: Option<DramAddr>,
        /// Texts of chain entries (see [`chain_holds`]); empty: any chain.
        chain: Vec<String>,
    },
}

/// Whether `chain` (a violation's, oldest first) holds entries containing `texts`, in this
/// order, others possibly between them. An entry is matched without its `cycle N: ` prefix, so
/// `"KeyID 1 store"` finds `cycle 120: KeyID 1 store by core 0 to bytes 0..8 [v3]`.
pub fn chain_holds(chain: &[String], texts: &[String]) -> bool {
    let mut entries = chain
        .iter()
        .map(|e| e.split_once(": ").map_or(e.as_str(), |(_, rest)| rest));
    texts
        .iter()
        .all(|t| entries.any(|e| e.contains(t.as_str())))
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
    /// Its chain holds these events, in this order ([`chain_holds`]).
    pub chain: Vec<String>,
}

/// A kind of finding of the attacker's analyses: each is a count per DRAM line (and, for a
/// dump, per dump). A new analysis adds a kind here; expectations on it need nothing new.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    /// Bus transfers carrying a line's plaintext as the program's data left the caches for
    /// it (a write-back's bytes, before any encryption): plaintext on the DIMM bus.
    BusPlaintext,
    /// Bus writes carrying the same bytes an earlier write to the line carried:
    /// deterministic encryption shows the interposer a value repeating.
    BusRepeatedCiphertext,
    /// Bus writes carrying the same bytes as a write to another line: the address tweak
    /// prevents it for encrypted data; plaintext or a ghost address shows it.
    BusEqualAcrossLines,
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
    /// A dump line holding the same bytes as another line of the same dump.
    DumpEqualAcrossLines,
    /// A line of the cold boot's dump of all DRAM (count 1, with its 64 bytes).
    ColdBootLine,
    /// A cold-boot line holding plaintext the program wrote (as dumped, before any key).
    ColdBootPlaintext,
    /// A cold-boot line that, read through KeyID 0 after the power cycle, is plaintext the
    /// program wrote: what the rebooted machine decrypts.
    ColdBootDecrypted,
    /// A line whose write a memory controller held in its write queue at the cold boot: it
    /// never reached the DIMMs.
    ColdBootLost,
}

/// What a finding comes from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FindingSource {
    /// The bus log.
    Bus,
    /// The DRAM dumps.
    Dumps,
    /// The cold boot.
    ColdBoot,
}

impl FindingKind {
    /// Every kind, in report order.
    pub const ALL: [FindingKind; 13] = [
        FindingKind::BusPlaintext,
        FindingKind::BusRepeatedCiphertext,
        FindingKind::BusEqualAcrossLines,
        FindingKind::BusTransfers,
        FindingKind::BusReads,
        FindingKind::BusWrites,
        FindingKind::DumpLine,
        FindingKind::DumpPlaintext,
        FindingKind::DumpEqualAcrossLines,
        FindingKind::ColdBootLine,
        FindingKind::ColdBootPlaintext,
        FindingKind::ColdBootDecrypted,
        FindingKind::ColdBootLost,
    ];

    /// The name in files and reports.
    pub const fn name(self) -> &'static str {
        match self {
            FindingKind::BusPlaintext => "bus_plaintext",
            FindingKind::BusRepeatedCiphertext => "bus_repeated_ciphertext",
            FindingKind::BusEqualAcrossLines => "bus_equal_across_lines",
            FindingKind::BusTransfers => "bus_transfers",
            FindingKind::BusReads => "bus_reads",
            FindingKind::BusWrites => "bus_writes",
            FindingKind::DumpLine => "dump_line",
            FindingKind::DumpPlaintext => "dump_plaintext",
            FindingKind::DumpEqualAcrossLines => "dump_equal_across_lines",
            FindingKind::ColdBootLine => "cold_boot_line",
            FindingKind::ColdBootPlaintext => "cold_boot_plaintext",
            FindingKind::ColdBootDecrypted => "cold_boot_decrypted",
            FindingKind::ColdBootLost => "cold_boot_lost",
        }
    }

    /// What it is found in.
    pub const fn source(self) -> FindingSource {
        match self {
            FindingKind::BusPlaintext
            | FindingKind::BusRepeatedCiphertext
            | FindingKind::BusEqualAcrossLines
            | FindingKind::BusTransfers
            | FindingKind::BusReads
            | FindingKind::BusWrites => FindingSource::Bus,
            FindingKind::DumpLine
            | FindingKind::DumpPlaintext
            | FindingKind::DumpEqualAcrossLines => FindingSource::Dumps,
            FindingKind::ColdBootLine
            | FindingKind::ColdBootPlaintext
            | FindingKind::ColdBootDecrypted
            | FindingKind::ColdBootLost => FindingSource::ColdBoot,
        }
    }

    /// Whether the bus log feeds it.
    pub const fn from_bus(self) -> bool {
        matches!(self.source(), FindingSource::Bus)
    }

    /// Whether its findings carry a line's 64 bytes (`data` in expectations).
    pub const fn has_data(self) -> bool {
        matches!(self, FindingKind::DumpLine | FindingKind::ColdBootLine)
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
