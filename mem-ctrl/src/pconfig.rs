//! PCONFIG leaf 0, MKTME_KEY_PROGRAM: the struct, its checks, and their outcome.
//!
//! Sources: mktme-facts.md section 2 ([ISE-old], [SDM-new], Linux `intel_pconfig.h`).
//!
//! ```text
//!  offset  size  field
//!       0     2  KEYID            u16, little-endian
//!       2     4  KEYID_CTRL       [7:0] COMMAND, [23:8] ENC_ALG (one-hot), [31:24] reserved
//!       6    58  RESERVED         must be 0 (ISE rev 1.3) / ignored (current SDM)
//!      64    64  KEY_FIELD_1      data key, or entropy for a random data key
//!     128    64  KEY_FIELD_2      tweak key, or entropy for a random tweak key
//! ```
//!
//! [`check`] applies the architectural checks in the order the spec gives them and returns
//! either a fault (#UD / #GP(0), with the field at fault) or a [`ValidProgram`] that the caller
//! then runs against the key-table lock and the entropy source (DEVICE_BUSY, ENTROPY_ERROR).
//! Two generations of the spec differ (mktme-facts.md 2.5), selected by [`SpecRevision`]:
//!
//! | condition                         | `Sdm` (default)  | `Ise` (ISE / spec rev 1.3)  |
//! |-----------------------------------|------------------|-----------------------------|
//! | bad COMMAND                       | #GP(0)           | RAX 1 INVALID_PROG_CMD      |
//! | bad KEYID                         | #GP(0)           | RAX 3 INVALID_KEYID         |
//! | bad ENC_ALG                       | #GP(0)           | RAX 4 INVALID_ENC_ALG       |
//! | RESERVED bytes 6-63 non-zero      | ignored          | #GP(0)                      |
//! | key bytes above the key width     | ignored          | #GP(0)                      |
//! | `KEYID_CTRL[31:24]` non-zero        | #GP(0)           | #GP(0)                      |
//! | lock held by another programming  | RAX 5 DEVICE_BUSY| RAX 5 DEVICE_BUSY           |
//! | RNG out of entropy (RANDOM only)  | RAX 2            | RAX 2                       |

use crate::xts::XtsAlgorithm;
use sim_core::KeyId;
use std::fmt;

/// Size of MKTME_KEY_PROGRAM_STRUCT as the instruction reads it.
pub const KEY_PROGRAM_STRUCT_BYTES: usize = 192;
/// Size of each key field.
pub const KEY_FIELD_BYTES: usize = 64;
/// Offset of KEY_FIELD_1.
pub const KEY_FIELD_1_OFFSET: usize = 64;
/// Offset of KEY_FIELD_2.
pub const KEY_FIELD_2_OFFSET: usize = 128;
/// First reserved byte (after KEYID and KEYID_CTRL).
pub const RESERVED_OFFSET: usize = 6;
/// Required alignment of the struct's address (RBX).
pub const STRUCT_ALIGN_BYTES: u64 = 256;

/// ENC_ALG bit for AES-XTS-128 (KEYID_CTRL 0x100).
pub const ENC_ALG_AES_XTS_128: u16 = 1 << 0;
/// ENC_ALG bit for AES-XTS-128 with integrity (KEYID_CTRL 0x200); never activated here.
pub const ENC_ALG_AES_XTS_128_INTEGRITY: u16 = 1 << 1;
/// ENC_ALG bit for AES-XTS-256 (KEYID_CTRL 0x400).
pub const ENC_ALG_AES_XTS_256: u16 = 1 << 2;
/// ENC_ALG bit for AES-XTS-256 with integrity (KEYID_CTRL 0x800); never activated here.
pub const ENC_ALG_AES_XTS_256_INTEGRITY: u16 = 1 << 3;

/// Which generation of the PCONFIG specification the model follows.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Default)]
pub enum SpecRevision {
    /// The current SDM: bad command, KeyID or algorithm raise #GP(0); reserved bytes and upper
    /// key bytes are ignored.
    #[default]
    Sdm,
    /// The ISE / MKTME spec rev 1.3: bad command, KeyID or algorithm return status 1, 3, 4;
    /// non-zero reserved bytes or upper key bytes raise #GP(0).
    Ise,
}

/// KEYID_CTRL.COMMAND values.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum KeyCommand {
    /// 0: data key = KEY_FIELD_1, tweak key = KEY_FIELD_2.
    SetKeyDirect,
    /// 1: hardware-random keys, XORed with the key fields as entropy.
    SetKeyRandom,
    /// 2: back to TME behaviour (the platform key, or bypass).
    ClearKey,
    /// 3: no encryption: plaintext in DRAM.
    NoEncrypt,
}

impl KeyCommand {
    /// Every command, in encoding order.
    pub const ALL: [KeyCommand; 4] = [
        KeyCommand::SetKeyDirect,
        KeyCommand::SetKeyRandom,
        KeyCommand::ClearKey,
        KeyCommand::NoEncrypt,
    ];

    /// The COMMAND encoding.
    pub const fn code(self) -> u8 {
        match self {
            KeyCommand::SetKeyDirect => 0,
            KeyCommand::SetKeyRandom => 1,
            KeyCommand::ClearKey => 2,
            KeyCommand::NoEncrypt => 3,
        }
    }

    /// Decodes a COMMAND byte.
    pub const fn from_code(code: u8) -> Option<KeyCommand> {
        match code {
            0 => Some(KeyCommand::SetKeyDirect),
            1 => Some(KeyCommand::SetKeyRandom),
            2 => Some(KeyCommand::ClearKey),
            3 => Some(KeyCommand::NoEncrypt),
            _ => None,
        }
    }

    /// The spec's name (`KEYID_SET_KEY_DIRECT`, ...).
    pub const fn spec_name(self) -> &'static str {
        match self {
            KeyCommand::SetKeyDirect => "KEYID_SET_KEY_DIRECT",
            KeyCommand::SetKeyRandom => "KEYID_SET_KEY_RANDOM",
            KeyCommand::ClearKey => "KEYID_CLEAR_KEY",
            KeyCommand::NoEncrypt => "KEYID_NO_ENCRYPT",
        }
    }
}

/// The ENC_ALG one-hot bit of an algorithm.
pub const fn enc_alg_bit(algorithm: XtsAlgorithm) -> u16 {
    match algorithm {
        XtsAlgorithm::Aes128 => ENC_ALG_AES_XTS_128,
        XtsAlgorithm::Aes256 => ENC_ALG_AES_XTS_256,
    }
}

/// PCONFIG's RAX after an execution that did not fault.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum PconfigStatus {
    /// 0: the entry was programmed.
    Success,
    /// 1: bad command (ISE revision only).
    InvalidProgCmd,
    /// 2: the RNG lacked entropy for a random key.
    EntropyError,
    /// 3: bad KeyID (ISE revision only).
    InvalidKeyId,
    /// 4: bad algorithm (ISE revision only; INVALID_CRYPTO_ALG in spec rev 1.3).
    InvalidEncAlg,
    /// 5: another programming holds the key-table lock; retry.
    DeviceBusy,
}

impl PconfigStatus {
    /// Every status, in code order.
    pub const ALL: [PconfigStatus; 6] = [
        PconfigStatus::Success,
        PconfigStatus::InvalidProgCmd,
        PconfigStatus::EntropyError,
        PconfigStatus::InvalidKeyId,
        PconfigStatus::InvalidEncAlg,
        PconfigStatus::DeviceBusy,
    ];

    /// The value PCONFIG leaves in RAX.
    pub const fn code(self) -> u64 {
        match self {
            PconfigStatus::Success => 0,
            PconfigStatus::InvalidProgCmd => 1,
            PconfigStatus::EntropyError => 2,
            PconfigStatus::InvalidKeyId => 3,
            PconfigStatus::InvalidEncAlg => 4,
            PconfigStatus::DeviceBusy => 5,
        }
    }

    /// The status with RAX value `code`.
    pub fn from_code(code: u64) -> Option<PconfigStatus> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The spec's name (`PROG_SUCCESS`, `INVALID_PROG_CMD`, ...).
    pub const fn spec_name(self) -> &'static str {
        match self {
            PconfigStatus::Success => "PROG_SUCCESS",
            PconfigStatus::InvalidProgCmd => "INVALID_PROG_CMD",
            PconfigStatus::EntropyError => "ENTROPY_ERROR",
            PconfigStatus::InvalidKeyId => "INVALID_KEYID",
            PconfigStatus::InvalidEncAlg => "INVALID_ENC_ALG",
            PconfigStatus::DeviceBusy => "DEVICE_BUSY",
        }
    }

    /// ZF after the instruction: set on failure.
    pub const fn zf(self) -> bool {
        !matches!(self, PconfigStatus::Success)
    }
}

impl fmt::Display for PconfigStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.spec_name(), self.code())
    }
}

/// The exception a faulting PCONFIG raises.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum FaultVector {
    /// #UD: invalid opcode.
    InvalidOpcode,
    /// #GP(0): general protection.
    GeneralProtection,
}

impl fmt::Display for FaultVector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultVector::InvalidOpcode => "#UD",
            FaultVector::GeneralProtection => "#GP(0)",
        })
    }
}

/// Which key field a check looked at.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum KeyField {
    /// KEY_FIELD_1 (data key).
    KeyField1,
    /// KEY_FIELD_2 (tweak key).
    KeyField2,
}

impl fmt::Display for KeyField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyField::KeyField1 => "KEY_FIELD_1",
            KeyField::KeyField2 => "KEY_FIELD_2",
        })
    }
}

/// Why a KeyID is invalid for MKTME_KEY_PROGRAM.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum KeyIdProblem {
    /// KeyID 0 is the platform TME key; PCONFIG cannot program it.
    Zero,
    /// Above `2^MK_TME_KEYID_BITS - 1`: the KeyID bits cannot name it.
    AboveKeyIdBits {
        /// MK_TME_KEYID_BITS.
        keyid_bits: u32,
    },
    /// Above MK_TME_MAX_KEYS.
    AboveMaxKeys {
        /// MK_TME_MAX_KEYS.
        max_keys: u16,
    },
}

/// Why an ENC_ALG value is invalid.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum EncAlgProblem {
    /// ENC_ALG has zero bits or more than one bit set.
    NotOneHot,
    /// The one bit names an algorithm not activated in TME_ACTIVATE.MK_TME_CRYPTO_ALGS.
    NotActivated,
}

/// Why PCONFIG faulted; each names the register or struct field at fault.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum FaultReason {
    /// #UD: PCONFIG executed at CPL > 0.
    NotPrivileged,
    /// #GP(0): EAX names a leaf this model does not have (only 0, MKTME_KEY_PROGRAM).
    UnsupportedLeaf {
        /// EAX.
        leaf: u32,
    },
    /// #GP(0): TME is not enabled or MK_TME_KEYID_BITS is 0.
    MktmeNotActivated,
    /// #GP(0): RBX is not 256-byte aligned.
    MisalignedStruct {
        /// RBX.
        addr: u64,
    },
    /// #GP(0): `KEYID_CTRL[31:24]` is not zero.
    ReservedCtrlBits {
        /// `KEYID_CTRL[31:24]`.
        value: u8,
    },
    /// #GP(0), ISE revision: a reserved byte (offsets 6-63) is not zero.
    ReservedByte {
        /// Offset in the struct.
        offset: usize,
        /// Its value.
        value: u8,
    },
    /// #GP(0), ISE revision: a key-field byte above the algorithm's key width is not zero.
    UpperKeyByte {
        /// The key field.
        field: KeyField,
        /// Offset within the key field.
        offset: usize,
        /// Its value.
        value: u8,
    },
    /// #GP(0), SDM revision: COMMAND is not 0-3.
    InvalidCommand {
        /// KEYID_CTRL.COMMAND.
        command: u8,
    },
    /// #GP(0), SDM revision: the KeyID cannot be programmed.
    InvalidKeyId {
        /// KEYID.
        keyid: u16,
        /// Why.
        problem: KeyIdProblem,
    },
    /// #GP(0), SDM revision: ENC_ALG is not one activated algorithm.
    InvalidEncAlg {
        /// KEYID_CTRL.ENC_ALG.
        enc_alg: u16,
        /// Why.
        problem: EncAlgProblem,
    },
}

impl FaultReason {
    /// The exception this reason raises.
    pub const fn vector(&self) -> FaultVector {
        match self {
            FaultReason::NotPrivileged => FaultVector::InvalidOpcode,
            _ => FaultVector::GeneralProtection,
        }
    }
}

impl fmt::Display for FaultReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultReason::NotPrivileged => write!(f, "PCONFIG at CPL > 0"),
            FaultReason::UnsupportedLeaf { leaf } => {
                write!(
                    f,
                    "EAX = {leaf:#x} is not a supported leaf (only 0, MKTME_KEY_PROGRAM)"
                )
            }
            FaultReason::MktmeNotActivated => {
                write!(f, "TME is not activated or MK_TME_KEYID_BITS is 0")
            }
            FaultReason::MisalignedStruct { addr } => {
                write!(f, "RBX = {addr:#x} is not 256-byte aligned")
            }
            FaultReason::ReservedCtrlBits { value } => {
                write!(
                    f,
                    "KEYID_CTRL[31:24] = {value:#04x} is reserved and must be 0"
                )
            }
            FaultReason::ReservedByte { offset, value } => write!(
                f,
                "RESERVED byte at offset {offset} = {value:#04x}; bytes 6-63 must be 0"
            ),
            FaultReason::UpperKeyByte {
                field,
                offset,
                value,
            } => write!(
                f,
                "{field} byte {offset} = {value:#04x} is above the key width and must be 0"
            ),
            FaultReason::InvalidCommand { command } => write!(
                f,
                "KEYID_CTRL.COMMAND = {command} is not a valid command (0-3)"
            ),
            FaultReason::InvalidKeyId { keyid, problem } => match problem {
                KeyIdProblem::Zero => {
                    write!(f, "KEYID = 0 is the TME key and cannot be programmed")
                }
                KeyIdProblem::AboveKeyIdBits { keyid_bits } => write!(
                    f,
                    "KEYID = {keyid} does not fit in MK_TME_KEYID_BITS = {keyid_bits}"
                ),
                KeyIdProblem::AboveMaxKeys { max_keys } => {
                    write!(f, "KEYID = {keyid} is above MK_TME_MAX_KEYS = {max_keys}")
                }
            },
            FaultReason::InvalidEncAlg { enc_alg, problem } => match problem {
                EncAlgProblem::NotOneHot => write!(
                    f,
                    "KEYID_CTRL.ENC_ALG = {enc_alg:#06x} must have exactly one bit set"
                ),
                EncAlgProblem::NotActivated => write!(
                    f,
                    "KEYID_CTRL.ENC_ALG = {enc_alg:#06x} is not an activated algorithm"
                ),
            },
        }
    }
}

/// A fault raised by PCONFIG.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct PconfigFault {
    /// Why, naming the field.
    pub reason: FaultReason,
}

impl PconfigFault {
    /// #UD or #GP(0).
    pub const fn vector(&self) -> FaultVector {
        self.reason.vector()
    }
}

impl fmt::Display for PconfigFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.vector(), self.reason)
    }
}

/// What an execution of PCONFIG did, as software sees it.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum PconfigOutcome {
    /// The instruction completed and left a status in RAX (ZF set unless success).
    Status(PconfigStatus),
    /// The instruction faulted; nothing changed.
    Fault(PconfigFault),
}

impl PconfigOutcome {
    /// True for PROG_SUCCESS.
    pub fn is_success(&self) -> bool {
        matches!(self, PconfigOutcome::Status(PconfigStatus::Success))
    }
}

impl fmt::Display for PconfigOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PconfigOutcome::Status(s) => write!(f, "RAX = {s}"),
            PconfigOutcome::Fault(e) => write!(f, "{e}"),
        }
    }
}

/// Bytes given for MKTME_KEY_PROGRAM_STRUCT that cannot be one (only their length can be wrong;
/// wrong contents are PCONFIG faults or statuses, decided by [`check`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "MKTME_KEY_PROGRAM_STRUCT must be exactly {expected} bytes (KEYID, KEYID_CTRL, RESERVED, \
     KEY_FIELD_1, KEY_FIELD_2); got {got}"
)]
pub struct StructBytesError {
    /// Bytes given.
    pub got: usize,
    /// Bytes needed (192).
    pub expected: usize,
}

/// MKTME_KEY_PROGRAM_STRUCT, field by field, exactly as it sits in memory.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyProgramStruct {
    /// KEYID (offset 0).
    pub keyid: u16,
    /// KEYID_CTRL (offset 2): COMMAND, ENC_ALG and reserved bits.
    pub keyid_ctrl: u32,
    /// Bytes 6-63.
    pub reserved: [u8; KEY_FIELD_1_OFFSET - RESERVED_OFFSET],
    /// KEY_FIELD_1 (offset 64).
    pub key_field_1: [u8; KEY_FIELD_BYTES],
    /// KEY_FIELD_2 (offset 128).
    pub key_field_2: [u8; KEY_FIELD_BYTES],
}

impl fmt::Debug for KeyProgramStruct {
    // Key fields are secrets: print their lengths, never their bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyProgramStruct")
            .field("keyid", &self.keyid)
            .field("keyid_ctrl", &format_args!("{:#010x}", self.keyid_ctrl))
            .finish_non_exhaustive()
    }
}

impl KeyProgramStruct {
    /// A struct with the given KeyID, command and algorithm, and zero key fields.
    pub fn new(keyid: u16, command: KeyCommand, algorithm: XtsAlgorithm) -> KeyProgramStruct {
        KeyProgramStruct::from_fields(keyid, command.code(), enc_alg_bit(algorithm), 0)
    }

    /// A struct from raw field values (any values, valid or not: for tests and raw scenarios).
    pub fn from_fields(
        keyid: u16,
        command: u8,
        enc_alg: u16,
        ctrl_reserved: u8,
    ) -> KeyProgramStruct {
        KeyProgramStruct {
            keyid,
            keyid_ctrl: u32::from(command)
                | u32::from(enc_alg) << 8
                | u32::from(ctrl_reserved) << 24,
            reserved: [0; KEY_FIELD_1_OFFSET - RESERVED_OFFSET],
            key_field_1: [0; KEY_FIELD_BYTES],
            key_field_2: [0; KEY_FIELD_BYTES],
        }
    }

    /// Sets the low bytes of the key fields (the rest stay as they are).
    ///
    /// # Panics
    /// When a key is longer than a key field (64 bytes).
    pub fn with_keys(mut self, key_field_1: &[u8], key_field_2: &[u8]) -> KeyProgramStruct {
        self.key_field_1[..key_field_1.len()].copy_from_slice(key_field_1);
        self.key_field_2[..key_field_2.len()].copy_from_slice(key_field_2);
        self
    }

    /// Parses the 192 bytes PCONFIG reads.
    pub fn from_bytes(bytes: &[u8]) -> Result<KeyProgramStruct, StructBytesError> {
        let bytes: &[u8; KEY_PROGRAM_STRUCT_BYTES] =
            bytes.try_into().map_err(|_| StructBytesError {
                got: bytes.len(),
                expected: KEY_PROGRAM_STRUCT_BYTES,
            })?;
        let mut s =
            KeyProgramStruct::from_fields(u16::from_le_bytes([bytes[0], bytes[1]]), 0, 0, 0);
        s.keyid_ctrl = u32::from_le_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
        s.reserved
            .copy_from_slice(&bytes[RESERVED_OFFSET..KEY_FIELD_1_OFFSET]);
        s.key_field_1
            .copy_from_slice(&bytes[KEY_FIELD_1_OFFSET..KEY_FIELD_2_OFFSET]);
        s.key_field_2
            .copy_from_slice(&bytes[KEY_FIELD_2_OFFSET..KEY_PROGRAM_STRUCT_BYTES]);
        Ok(s)
    }

    /// The 192 bytes PCONFIG would read.
    pub fn to_bytes(&self) -> [u8; KEY_PROGRAM_STRUCT_BYTES] {
        let mut out = [0u8; KEY_PROGRAM_STRUCT_BYTES];
        out[0..2].copy_from_slice(&self.keyid.to_le_bytes());
        out[2..6].copy_from_slice(&self.keyid_ctrl.to_le_bytes());
        out[RESERVED_OFFSET..KEY_FIELD_1_OFFSET].copy_from_slice(&self.reserved);
        out[KEY_FIELD_1_OFFSET..KEY_FIELD_2_OFFSET].copy_from_slice(&self.key_field_1);
        out[KEY_FIELD_2_OFFSET..].copy_from_slice(&self.key_field_2);
        out
    }

    /// KEYID_CTRL.COMMAND, bits 7:0.
    pub const fn command_code(&self) -> u8 {
        self.keyid_ctrl as u8
    }

    /// KEYID_CTRL.ENC_ALG, bits 23:8.
    pub const fn enc_alg(&self) -> u16 {
        (self.keyid_ctrl >> 8) as u16
    }

    /// KEYID_CTRL bits 31:24 (reserved).
    pub const fn ctrl_reserved(&self) -> u8 {
        (self.keyid_ctrl >> 24) as u8
    }
}

/// One execution of PCONFIG, as the instruction sees its inputs.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PconfigCall {
    /// EAX: the leaf (0 = MKTME_KEY_PROGRAM).
    pub leaf: u32,
    /// RBX: the struct's linear address (only its alignment matters here).
    pub struct_addr: u64,
    /// CPL 0?
    pub privileged: bool,
    /// The struct RBX points at.
    pub program: KeyProgramStruct,
}

impl PconfigCall {
    /// The usual call: leaf 0, an aligned struct, at CPL 0.
    pub fn key_program(program: KeyProgramStruct) -> PconfigCall {
        PconfigCall {
            leaf: 0,
            struct_addr: 0x1000,
            privileged: true,
            program,
        }
    }
}

/// The MKTME activation state that PCONFIG's checks depend on.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct PconfigLimits {
    /// TME enabled and locked, with MK_TME_KEYID_BITS > 0.
    pub mktme_active: bool,
    /// MK_TME_KEYID_BITS.
    pub keyid_bits: u32,
    /// MK_TME_MAX_KEYS.
    pub max_keys: u16,
    /// TME_ACTIVATE.MK_TME_CRYPTO_ALGS as ENC_ALG bits.
    pub activated_enc_algs: u16,
    /// Which generation of the spec.
    pub spec_revision: SpecRevision,
}

/// What the key-table entry will become.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ProgramAction {
    /// Use these keys.
    SetDirect {
        /// The algorithm.
        algorithm: XtsAlgorithm,
        /// Data key (low bytes of KEY_FIELD_1).
        data_key: Vec<u8>,
        /// Tweak key (low bytes of KEY_FIELD_2).
        tweak_key: Vec<u8>,
    },
    /// Generate keys and XOR these entropy bytes into them.
    SetRandom {
        /// The algorithm.
        algorithm: XtsAlgorithm,
        /// Entropy for the data key (low bytes of KEY_FIELD_1).
        data_entropy: Vec<u8>,
        /// Entropy for the tweak key (low bytes of KEY_FIELD_2).
        tweak_entropy: Vec<u8>,
    },
    /// Back to TME behaviour.
    Clear,
    /// Plaintext in DRAM.
    NoEncrypt,
}

/// A call that passed every architectural check: it will program `keyid` unless the key-table
/// lock is busy or (for random keys) the RNG runs out of entropy.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ValidProgram {
    /// The KeyID to program.
    pub keyid: KeyId,
    /// What its entry becomes.
    pub action: ProgramAction,
}

/// Applies PCONFIG's architectural checks in the spec's order.
///
/// Returns the program to run, or the outcome that ends the instruction early (a fault, or an
/// INVALID_* status under [`SpecRevision::Ise`]).
pub fn check(call: &PconfigCall, limits: &PconfigLimits) -> Result<ValidProgram, PconfigOutcome> {
    let fault = |reason| Err(PconfigOutcome::Fault(PconfigFault { reason }));
    let p = &call.program;
    let ise = limits.spec_revision == SpecRevision::Ise;

    // #UD and #GP(0) conditions, checked before the struct's contents are acted on.
    if !call.privileged {
        return fault(FaultReason::NotPrivileged);
    }
    if call.leaf != 0 {
        return fault(FaultReason::UnsupportedLeaf { leaf: call.leaf });
    }
    if !limits.mktme_active || limits.keyid_bits == 0 {
        return fault(FaultReason::MktmeNotActivated);
    }
    if !call.struct_addr.is_multiple_of(STRUCT_ALIGN_BYTES) {
        return fault(FaultReason::MisalignedStruct {
            addr: call.struct_addr,
        });
    }
    if p.ctrl_reserved() != 0 {
        return fault(FaultReason::ReservedCtrlBits {
            value: p.ctrl_reserved(),
        });
    }
    if ise {
        if let Some((i, v)) = p.reserved.iter().enumerate().find(|(_, v)| **v != 0) {
            return fault(FaultReason::ReservedByte {
                offset: RESERVED_OFFSET + i,
                value: *v,
            });
        }
        // The key width is the selected algorithm's; an unknown algorithm checks the 128-bit
        // width (rev 1.3 knew only AES-XTS-128).
        let width = if p.enc_alg() == ENC_ALG_AES_XTS_256 {
            XtsAlgorithm::Aes256.key_bytes()
        } else {
            XtsAlgorithm::Aes128.key_bytes()
        };
        for (field, bytes) in [
            (KeyField::KeyField1, &p.key_field_1),
            (KeyField::KeyField2, &p.key_field_2),
        ] {
            if let Some((i, v)) = bytes.iter().enumerate().skip(width).find(|(_, v)| **v != 0) {
                return fault(FaultReason::UpperKeyByte {
                    field,
                    offset: i,
                    value: *v,
                });
            }
        }
    }

    // Content checks: #GP(0) in the current SDM, RAX codes 1, 3, 4 in the ISE, in this order.
    let status_or_fault = |status, reason| {
        if ise {
            Err(PconfigOutcome::Status(status))
        } else {
            Err(PconfigOutcome::Fault(PconfigFault { reason }))
        }
    };
    let Some(command) = KeyCommand::from_code(p.command_code()) else {
        return status_or_fault(
            PconfigStatus::InvalidProgCmd,
            FaultReason::InvalidCommand {
                command: p.command_code(),
            },
        );
    };
    let keyid_problem = if p.keyid == 0 {
        Some(KeyIdProblem::Zero)
    } else if u32::from(p.keyid) > (1u32 << limits.keyid_bits) - 1 {
        Some(KeyIdProblem::AboveKeyIdBits {
            keyid_bits: limits.keyid_bits,
        })
    } else if p.keyid > limits.max_keys {
        Some(KeyIdProblem::AboveMaxKeys {
            max_keys: limits.max_keys,
        })
    } else {
        None
    };
    if let Some(problem) = keyid_problem {
        return status_or_fault(
            PconfigStatus::InvalidKeyId,
            FaultReason::InvalidKeyId {
                keyid: p.keyid,
                problem,
            },
        );
    }
    // A valid, activated algorithm is required for every command, CLEAR_KEY and NO_ENCRYPT
    // included (Linux RFC 22/62).
    let enc_alg = p.enc_alg();
    let alg_problem = if enc_alg.count_ones() != 1 {
        Some(EncAlgProblem::NotOneHot)
    } else if enc_alg & limits.activated_enc_algs == 0 {
        Some(EncAlgProblem::NotActivated)
    } else {
        None
    };
    if let Some(problem) = alg_problem {
        return status_or_fault(
            PconfigStatus::InvalidEncAlg,
            FaultReason::InvalidEncAlg { enc_alg, problem },
        );
    }
    let algorithm = match enc_alg {
        ENC_ALG_AES_XTS_128 => XtsAlgorithm::Aes128,
        ENC_ALG_AES_XTS_256 => XtsAlgorithm::Aes256,
        // Integrity algorithms are never in `activated_enc_algs` (the config cannot name them),
        // so an activated one-hot value is one of the two above.
        other => unreachable!("activated ENC_ALG {other:#x} has no algorithm"),
    };
    let width = algorithm.key_bytes();
    let action = match command {
        KeyCommand::SetKeyDirect => ProgramAction::SetDirect {
            algorithm,
            data_key: p.key_field_1[..width].to_vec(),
            tweak_key: p.key_field_2[..width].to_vec(),
        },
        KeyCommand::SetKeyRandom => ProgramAction::SetRandom {
            algorithm,
            data_entropy: p.key_field_1[..width].to_vec(),
            tweak_entropy: p.key_field_2[..width].to_vec(),
        },
        KeyCommand::ClearKey => ProgramAction::Clear,
        KeyCommand::NoEncrypt => ProgramAction::NoEncrypt,
    };
    Ok(ValidProgram {
        keyid: KeyId::new(p.keyid),
        action,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_layout_matches_linux() {
        // Linux: struct mktme_key_program { u16 keyid; u32 keyid_ctrl; u8 __rsvd[58];
        // u8 key_field_1[64]; u8 key_field_2[64]; } __packed.
        let s = KeyProgramStruct::new(0x1234, KeyCommand::SetKeyRandom, XtsAlgorithm::Aes256)
            .with_keys(&[0xaa; 32], &[0xbb; 32]);
        let b = s.to_bytes();
        assert_eq!(b.len(), 192);
        assert_eq!(&b[0..2], &[0x34, 0x12]);
        assert_eq!(&b[2..6], &[0x01, 0x04, 0x00, 0x00]); // command 1, ENC_ALG 0x400
        assert!(b[6..64].iter().all(|x| *x == 0));
        assert_eq!(b[64], 0xaa);
        assert_eq!(b[95], 0xaa);
        assert_eq!(b[96], 0);
        assert_eq!(b[128], 0xbb);
        assert_eq!(KeyProgramStruct::from_bytes(&b).unwrap(), s);
    }

    #[test]
    fn wrong_length_bytes_are_a_typed_error() {
        let e = KeyProgramStruct::from_bytes(&[0; 191]).unwrap_err();
        assert_eq!(
            e,
            StructBytesError {
                got: 191,
                expected: 192
            }
        );
        assert!(e.to_string().contains("192"));
        assert!(KeyProgramStruct::from_bytes(&[0; 256]).is_err());
    }

    #[test]
    fn status_codes_and_names() {
        let names: Vec<(u64, &str)> = PconfigStatus::ALL
            .iter()
            .map(|s| (s.code(), s.spec_name()))
            .collect();
        assert_eq!(
            names,
            [
                (0, "PROG_SUCCESS"),
                (1, "INVALID_PROG_CMD"),
                (2, "ENTROPY_ERROR"),
                (3, "INVALID_KEYID"),
                (4, "INVALID_ENC_ALG"),
                (5, "DEVICE_BUSY"),
            ]
        );
        assert_eq!(PconfigStatus::from_code(5), Some(PconfigStatus::DeviceBusy));
        assert_eq!(PconfigStatus::from_code(6), None);
        assert!(!PconfigStatus::Success.zf());
        assert!(PconfigStatus::DeviceBusy.zf());
    }
}
