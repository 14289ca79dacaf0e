//! The scenario file's shape: plain structs as close to the RON text as serde can read them.
//!
//! Nothing here is checked beyond what serde checks (field names, value types): every struct
//! and struct variant denies unknown fields, so a misspelt field is an error with the list of
//! fields that exist. [`crate::validate`] turns a [`ScenarioFile`] into a
//! [`crate::scenario::Scenario`], checking everything else and locating each error in the text.
//!
//! Names follow the file (snake_case); optional fields are `Option`s, read with the
//! `IMPLICIT_SOME` extension so that `Some(...)` may be left out. Numbers that have a valid
//! range are read wider than they need to be (a load's `len` is a `u64`) so that an
//! out-of-range value gets a message that names the range, not a serde type error.
//! `docs/scenario-format.md` describes every field.

use crate::machine_file::{AlgorithmFile, ByteSize, MachineFile};
use crate::read_budget;
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "scenario")]
pub struct ScenarioFile {
    /// The scenario's name (default: the file stem).
    pub name: Option<String>,
    /// What it shows (default: empty).
    pub description: Option<String>,
    /// The seed of every random stream (default 0).
    pub seed: Option<u64>,
    /// The machine: a preset plus overrides (default: preset `default`).
    pub machine: Option<MachineFile>,
    /// The kernel layer's knobs.
    pub kernel: Option<KernelFile>,
    /// Run limits.
    pub run: Option<RunFile>,
    /// The processes cores run in, by name (default: one).
    #[serde(default, deserialize_with = "read_budget::opt_items")]
    pub processes: Option<Vec<String>>,
    /// One program per core: program i runs on core i.
    #[serde(deserialize_with = "read_budget::items")]
    pub cores: Vec<ProgramFile>,
    /// What the attacker records.
    pub attacker: Option<AttackerFile>,
    /// Expectations about the whole run.
    #[serde(default, deserialize_with = "read_budget::items")]
    pub expect: Vec<ExpectFile>,
}

/// `kernel: (...)`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "kernel")]
pub struct KernelFile {
    /// Hardware KeyIDs the key service may hand out (1..=keyids); default: all of them.
    pub keyids: Option<u16>,
    /// Retries of a key programming after DEVICE_BUSY or ENTROPY_ERROR.
    pub program_retries: Option<u32>,
    /// The kernel's flushes when a page changes KeyID.
    pub flush_on_keyid_change: Option<bool>,
    /// Unmap encrypted pages from the direct map.
    pub unmap_encrypted_from_direct_map: Option<bool>,
    /// The DRAM the kernel allocates page frames from.
    pub frames: Option<FramesFile>,
}

/// `frames: (base: 0x4000_0000, size: "1g")`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "frames")]
pub struct FramesFile {
    /// First byte (a DRAM address, page-aligned).
    pub base: Option<u64>,
    /// Bytes (a multiple of 4 KiB).
    pub size: Option<ByteSize>,
}

/// `run: (...)`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "run")]
pub struct RunFile {
    /// The run stops when it reaches this cycle.
    pub cycles_max: Option<u64>,
    /// Write back and drain everything when the programs have ended.
    pub drain_at_end: Option<bool>,
}

/// One entry of `cores: [...]`: a core's program.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "program")]
pub struct ProgramFile {
    /// CPL 0 (default true).
    pub ring0: Option<bool>,
    /// CAP_SYS_RESOURCE (default true).
    pub cap_sys_resource: Option<bool>,
    /// The process it runs in (default: the first).
    pub process: Option<String>,
    /// The attacker's core: may name physical addresses from ring 3 (default false).
    pub attacker: Option<bool>,
    /// The ops, in program order.
    #[serde(default, deserialize_with = "read_budget::ops")]
    pub ops: Vec<OpFile>,
}

/// A number, or an expression in the indices of enclosing repeats: `0x10000` or
/// `"0x10000 + 64*i"` ([`crate::validate`] parses and range-checks it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumFile {
    /// A number.
    Int(u64),
    /// An expression, as written.
    Expr(String),
}

impl<'de> Deserialize<'de> for NumFile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<NumFile, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = NumFile;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number, or an expression in quotes (\"0x1000 + 64*i\")")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<NumFile, E> {
                Ok(NumFile::Int(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<NumFile, E> {
                u64::try_from(v)
                    .map(NumFile::Int)
                    .map_err(|_| E::custom(format!("{v} is negative: expected a number >= 0")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<NumFile, E> {
                Ok(NumFile::Expr(v.to_owned()))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Where an access goes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case", rename = "address")]
pub enum AddrFile {
    /// `virt(0x7000_0000)`.
    Virt(NumFile),
    /// `phys(keyid: 1, addr: 0x10000)`: a DRAM address seen through a KeyID.
    Phys {
        /// The KeyID.
        keyid: NumFile,
        /// The DRAM address.
        addr: NumFile,
    },
    /// `direct_map_of(0x7000_0000)`: the kernel's direct-map alias of a user page's frame.
    DirectMapOf(NumFile),
}

/// Bytes, written in one of several forms.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case", rename = "data")]
pub enum DataFile {
    /// `hex("00112233")`: bytes in memory order.
    Hex(String),
    /// `u8(v)`.
    U8(NumFile),
    /// `u16(v)`, little-endian.
    U16(NumFile),
    /// `u32(v)`, little-endian.
    U32(NumFile),
    /// `u64(v)`, little-endian.
    U64(NumFile),
    /// `fill(byte: 0xaa, len: 64)`.
    Fill {
        /// The byte.
        byte: u8,
        /// How many.
        len: u64,
    },
    /// `text("hello")`: ASCII bytes.
    Text(String),
}

/// A fault an op is expected to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", rename = "fault")]
pub enum FaultFile {
    /// Any kind.
    Any,
    /// No mapping.
    NotMapped,
    /// The mapping forbids the access.
    Protection,
    /// A user-mode access to a kernel address.
    Privilege,
    /// The frame is unmapped from the direct map.
    DirectMapUnmapped,
}

/// A PCONFIG outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", rename = "pconfig_outcome")]
pub enum OutcomeFile {
    /// PROG_SUCCESS.
    Success,
    /// ENTROPY_ERROR.
    EntropyError,
    /// DEVICE_BUSY.
    DeviceBusy,
    /// INVALID_PROG_CMD.
    InvalidProgCmd,
    /// INVALID_KEYID.
    InvalidKeyid,
    /// INVALID_ENC_ALG.
    InvalidEncAlg,
    /// #GP(0).
    Gp,
    /// #UD.
    Ud,
}

/// A PCONFIG command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", rename = "pconfig_command")]
pub enum CommandFile {
    /// KEYID_SET_KEY_DIRECT.
    SetKeyDirect,
    /// KEYID_SET_KEY_RANDOM.
    SetKeyRandom,
    /// KEYID_CLEAR_KEY.
    ClearKey,
    /// KEYID_NO_ENCRYPT.
    NoEncrypt,
}

/// A system call's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", rename = "kernel_result")]
pub enum ResultFile {
    /// Any success.
    Ok,
    /// Success with this value.
    Value(u64),
    /// This error.
    Err(ErrnoFile),
}

/// An error number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", rename = "errno")]
pub enum ErrnoFile {
    /// EINVAL.
    Einval,
    /// ENOKEY.
    Enokey,
    /// EACCES.
    Eacces,
    /// ENOMEM.
    Enomem,
}

/// Page protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", rename = "prot")]
pub enum ProtFile {
    /// PROT_NONE.
    None,
    /// PROT_READ.
    R,
    /// PROT_READ | PROT_WRITE.
    Rw,
}

/// One op of a program.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case", rename = "op")]
pub enum OpFile {
    /// Load `len` bytes.
    Load {
        /// Where.
        at: AddrFile,
        /// Bytes (1..=64; default: `expect`'s length, else 8).
        len: Option<u64>,
        /// Its name, for expectations and reports.
        label: Option<String>,
        /// The bytes every execution must return.
        expect: Option<DataFile>,
        /// Bytes no execution may return.
        expect_not: Option<DataFile>,
        /// The fault every execution must take.
        expect_fault: Option<FaultFile>,
    },
    /// Store bytes.
    Store {
        /// Where.
        at: AddrFile,
        /// What (1..=64 bytes).
        data: DataFile,
        /// Its name.
        label: Option<String>,
        /// The fault every execution must take.
        expect_fault: Option<FaultFile>,
    },
    /// CLFLUSH.
    Clflush {
        /// The line.
        at: AddrFile,
        /// Its name.
        label: Option<String>,
        /// The fault every execution must take.
        expect_fault: Option<FaultFile>,
    },
    /// CLFLUSHOPT.
    Clflushopt {
        /// The line.
        at: AddrFile,
        /// Its name.
        label: Option<String>,
        /// The fault every execution must take.
        expect_fault: Option<FaultFile>,
    },
    /// CLWB.
    Clwb {
        /// The line.
        at: AddrFile,
        /// Its name.
        label: Option<String>,
        /// The fault every execution must take.
        expect_fault: Option<FaultFile>,
    },
    /// A software prefetch.
    Prefetch {
        /// The line.
        at: AddrFile,
        /// Its name.
        label: Option<String>,
    },
    /// A load on a mispredicted path.
    SpeculativeLoad {
        /// Where.
        at: AddrFile,
        /// Bytes (1..=64, default 8).
        len: Option<u64>,
        /// Its name.
        label: Option<String>,
    },
    /// WBINVD.
    Wbinvd,
    /// MFENCE.
    Mfence,
    /// SFENCE.
    Sfence,
    /// A mispredicted branch whose shadow runs these ops.
    Mispredict(#[serde(deserialize_with = "read_budget::ops")] Vec<OpFile>),
    /// Busy for this many cycles.
    Compute(u64),
    /// Wait for every core that uses this barrier.
    Barrier(String),
    /// A block run `times` times.
    Repeat {
        /// Iterations (0 allowed).
        times: u64,
        /// A name for the iteration number (0, 1, ...), usable in the ops' addresses and data.
        index: Option<String>,
        /// The ops.
        #[serde(deserialize_with = "read_budget::ops")]
        ops: Vec<OpFile>,
    },
    /// PCONFIG with a struct built from fields.
    Pconfig {
        /// KEYID.
        keyid: u16,
        /// KEYID_CTRL.COMMAND.
        command: CommandFile,
        /// KEYID_CTRL.ENC_ALG (default aes_xts_128).
        algorithm: Option<AlgorithmFile>,
        /// KEY_FIELD_1 in hex (16 or 32 bytes; default zeros).
        key: Option<String>,
        /// KEY_FIELD_2 in hex (16 or 32 bytes; default zeros).
        tweak: Option<String>,
        /// EAX (default 0).
        leaf: Option<u32>,
        /// RBX (default 0x1000).
        struct_addr: Option<u64>,
        /// Its name.
        label: Option<String>,
        /// The outcome every execution must have.
        expect: Option<OutcomeFile>,
    },
    /// PCONFIG with the 192-byte struct given in hex.
    PconfigRaw {
        /// MKTME_KEY_PROGRAM_STRUCT, 384 hex digits.
        bytes: String,
        /// EAX (default 0).
        leaf: Option<u32>,
        /// RBX (default 0x1000).
        struct_addr: Option<u64>,
        /// Its name.
        label: Option<String>,
        /// The outcome every execution must have.
        expect: Option<OutcomeFile>,
    },
    /// `add_key("mktme", key, payload)`.
    AddKey {
        /// The key's name.
        key: String,
        /// The payload.
        payload: String,
        /// Its name.
        label: Option<String>,
        /// The result every execution must have.
        expect: Option<ResultFile>,
    },
    /// `keyctl(KEYCTL_INVALIDATE)`.
    InvalidateKey {
        /// The key's name.
        key: String,
        /// Its name.
        label: Option<String>,
        /// The result every execution must have.
        expect: Option<ResultFile>,
    },
    /// `keyctl(KEYCTL_SETPERM)`: lets another process view (use) the key.
    ShareKey {
        /// The key's name.
        key: String,
        /// The process that may view it.
        with: String,
        /// Its name.
        label: Option<String>,
        /// The result every execution must have.
        expect: Option<ResultFile>,
    },
    /// `mmap`.
    Mmap {
        /// Fixed address.
        addr: u64,
        /// Length.
        len: ByteSize,
        /// Protection.
        prot: ProtFile,
        /// A file to map (default: anonymous).
        file: Option<String>,
        /// Offset in the file (default 0).
        offset: Option<u64>,
        /// Its name.
        label: Option<String>,
        /// The result every execution must have.
        expect: Option<ResultFile>,
    },
    /// `munmap`.
    Munmap {
        /// Address.
        addr: u64,
        /// Length.
        len: ByteSize,
        /// Its name.
        label: Option<String>,
        /// The result every execution must have.
        expect: Option<ResultFile>,
    },
    /// `mprotect`.
    Mprotect {
        /// Address.
        addr: u64,
        /// Length.
        len: ByteSize,
        /// Protection.
        prot: ProtFile,
        /// Its name.
        label: Option<String>,
        /// The result every execution must have.
        expect: Option<ResultFile>,
    },
    /// `encrypt_mprotect`.
    EncryptMprotect {
        /// Address.
        addr: u64,
        /// Length.
        len: ByteSize,
        /// Protection.
        prot: ProtFile,
        /// The key's name.
        key: String,
        /// Its name.
        label: Option<String>,
        /// The result every execution must have.
        expect: Option<ResultFile>,
    },
}

/// `attacker: (...)`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "attacker")]
pub struct AttackerFile {
    /// Record every DIMM bus transfer.
    pub bus_log: Option<bool>,
    /// A DIMM interposer on some channels, for some cycles (records the bus).
    pub interposer: Option<InterposerFile>,
    /// DRAM snapshots.
    #[serde(default, deserialize_with = "read_budget::items")]
    pub dram_dumps: Vec<DumpFile>,
    /// Writes to DIMM cells.
    #[serde(default, deserialize_with = "read_budget::items")]
    pub attacks: Vec<AttackFile>,
    /// A faulty DIMM.
    pub bad_ram: Option<BadRamFile>,
    /// A cold boot.
    pub cold_boot: Option<ColdBootFile>,
}

/// `interposer: (channels: [0], from: 1000, until: 50_000)`, every field optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "interposer")]
pub struct InterposerFile {
    /// The channels it sits on (default: all).
    #[serde(default, deserialize_with = "read_budget::opt_items")]
    pub channels: Option<Vec<u64>>,
    /// Attached at this cycle (default 0).
    pub from: Option<u64>,
    /// Removed at this cycle (default: never).
    pub until: Option<u64>,
}

/// One write to DIMM cells.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case", rename = "attack")]
pub enum AttackFile {
    /// `replay(line: 0x40000, recorded: cycle(20_000), at: cycle(60_000))`.
    Replay {
        /// The line.
        line: u64,
        /// When its ciphertext is recorded.
        recorded: DumpAtFile,
        /// When it is written back.
        at: DumpAtFile,
        /// Its name in reports.
        label: Option<String>,
    },
    /// `splice(from: 0x40000, to: 0x40040, at: cycle(60_000))`.
    Splice {
        /// The line copied.
        from: u64,
        /// The line written.
        to: u64,
        /// When.
        at: DumpAtFile,
        /// Its name in reports.
        label: Option<String>,
    },
    /// `bit_flip(line: 0x40000, bits: [100], at: cycle(60_000))`.
    BitFlip {
        /// The line.
        line: u64,
        /// Bit numbers within the line (0..=511).
        #[serde(deserialize_with = "read_budget::items")]
        bits: Vec<u64>,
        /// When.
        at: DumpAtFile,
        /// Its name in reports.
        label: Option<String>,
    },
}

/// `bad_ram: (ghost_bit: 30)`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "bad_ram")]
pub struct BadRamFile {
    /// The DRAM address bit the DIMMs ignore.
    pub ghost_bit: u64,
}

/// `cold_boot: (at: cycle(50_000), key_restore: false)`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "cold_boot")]
pub struct ColdBootFile {
    /// When the power is cut.
    pub at: DumpAtFile,
    /// Whether TME restores the saved platform key at the reboot (default false).
    pub key_restore: Option<bool>,
}

/// One DRAM snapshot: `(at: end, lines: [...])` or `(at: cycle(n), range: (...))`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "dram_dump")]
pub struct DumpFile {
    /// When.
    pub at: DumpAtFile,
    /// These lines (64-byte-aligned DRAM addresses).
    #[serde(default, deserialize_with = "read_budget::opt_items")]
    pub lines: Option<Vec<u64>>,
    /// Or these consecutive lines.
    pub range: Option<DumpRangeFile>,
    /// Its name, for expectations on what it shows.
    pub label: Option<String>,
}

/// `end` or `cycle(n)`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case", rename = "dump_time")]
pub enum DumpAtFile {
    /// At this cycle.
    Cycle(u64),
    /// After the run.
    End,
}

/// `range: (start: 0x10000, lines: 4)`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "range")]
pub struct DumpRangeFile {
    /// First line (a 64-byte-aligned DRAM address).
    pub start: u64,
    /// Lines.
    pub lines: u64,
}

/// A violation kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", rename = "violation_kind")]
pub enum ViolationKindFile {
    /// Two aliases dirty at once.
    DualDirty,
    /// A write-back replaced newer data.
    DataLoss,
    /// A load returned stale data.
    StaleRead,
    /// PCONFIG reprogrammed a KeyID with lines cached.
    ReprogramWhileCached,
    /// A line dirty without a store.
    PhantomDirty,
}

/// One entry of the top-level `expect: [...]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case", rename = "expectation")]
pub enum ExpectFile {
    /// A load's value: exactly one of the relations.
    Load {
        /// The core whose program holds the load.
        core: u64,
        /// The load's label.
        label: String,
        /// Every execution returned these bytes.
        value: Option<DataFile>,
        /// No execution returned these bytes.
        not: Option<DataFile>,
        /// Each execution returned what the same execution of that load returned.
        same_as: Option<LoadRefFile>,
        /// No execution returned what the same execution of that load returned.
        not_same_as: Option<LoadRefFile>,
        /// Each execution returned what this KeyID had last written to those bytes.
        written_through: Option<u16>,
        /// No execution returned what this KeyID had last written to those bytes.
        not_written_through: Option<u16>,
    },
    /// A PCONFIG's outcome.
    Pconfig {
        /// The core.
        core: u64,
        /// The op's label.
        label: String,
        /// The outcome.
        outcome: OutcomeFile,
    },
    /// A system call's result.
    Kernel {
        /// The core.
        core: u64,
        /// The op's label.
        label: String,
        /// The result.
        result: ResultFile,
    },
    /// An op's fault.
    Fault {
        /// The core.
        core: u64,
        /// The op's label.
        label: String,
        /// The kind (default any).
        kind: Option<FaultFile>,
    },
    /// No op faulted.
    NoFaults,
    /// The checker found nothing.
    NoViolations,
    /// The checker found something.
    AnyViolation,
    /// The checker found this kind (at this line, with these bytes lost).
    Violation {
        /// The kind.
        kind: ViolationKindFile,
        /// The DRAM line (64-byte aligned).
        line: Option<u64>,
        /// A data loss's lost line: its alias, and bytes it held.
        lost: Option<BytesAtFile>,
        /// A data loss's line written over it: its alias, and bytes it held.
        written: Option<BytesAtFile>,
        /// Texts its chain's entries hold, in this order.
        #[serde(default, deserialize_with = "read_budget::opt_items")]
        chain: Option<Vec<String>>,
    },
    /// What the attacker's analyses found.
    Attacker {
        /// The kind of finding.
        saw: FindingFile,
        /// Only at this DRAM line.
        line: Option<u64>,
        /// Exactly these lines have the finding.
        #[serde(default, deserialize_with = "read_budget::opt_items")]
        lines: Option<Vec<u64>>,
        /// Only in the DRAM dump with this label.
        dump: Option<String>,
        /// Only findings of these 64 bytes (a dump line's content).
        data: Option<DataFile>,
        /// The findings' total count is exactly this.
        count: Option<u64>,
        /// The total is at least this.
        min: Option<u64>,
        /// The total is at most this.
        max: Option<u64>,
    },
    /// A line's final plaintext through a KeyID.
    Plaintext {
        /// The KeyID.
        keyid: u16,
        /// The DRAM line (64-byte aligned).
        line: u64,
        /// Exactly 64 bytes.
        data: DataFile,
    },
    /// The run's length.
    Cycles {
        /// At least.
        min: Option<u64>,
        /// At most.
        max: Option<u64>,
    },
}

/// Another load, for `same_as`: `(core: 1, label: "w")`; `core` defaults to the load's own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "load_ref")]
pub struct LoadRefFile {
    /// Its core (default: the core of the load the expectation is about).
    pub core: Option<u64>,
    /// Its label.
    pub label: String,
}

/// Bytes of a violation's line: `(keyid: 2, offset: 0, data: u64(0x2222))`, every field
/// optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "line_bytes")]
pub struct BytesAtFile {
    /// The alias whose line it is.
    pub keyid: Option<u16>,
    /// Where `data` starts in the line (default 0).
    pub offset: Option<u64>,
    /// The bytes at `offset`.
    pub data: Option<DataFile>,
}

/// A kind of attacker finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", rename = "finding")]
pub enum FindingFile {
    /// Plaintext the program wrote crossed the bus.
    BusPlaintext,
    /// A write carried ciphertext an earlier write to the line had carried.
    BusRepeatedCiphertext,
    /// Transfers on the bus.
    BusTransfers,
    /// Reads on the bus.
    BusReads,
    /// Writes on the bus.
    BusWrites,
    /// A write carried the same bytes as a write to another line.
    BusEqualAcrossLines,
    /// A line of a DRAM dump.
    DumpLine,
    /// A dump line holding plaintext the program wrote.
    DumpPlaintext,
    /// A dump line holding the same bytes as another line of the dump.
    DumpEqualAcrossLines,
    /// A line of the cold boot's dump.
    ColdBootLine,
    /// A cold-boot line holding plaintext the program wrote.
    ColdBootPlaintext,
    /// A cold-boot line the rebooted machine decrypts to plaintext the program wrote.
    ColdBootDecrypted,
    /// A line whose write was in a controller's write queue at the cold boot.
    ColdBootLost,
}
