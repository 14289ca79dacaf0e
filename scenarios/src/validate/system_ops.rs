//! The ops that program keys and mappings: PCONFIG (from fields, or the raw
//! MKTME_KEY_PROGRAM_STRUCT) and the system calls (`add_key`, `invalidate_key`, `mmap`,
//! `munmap`, `mprotect`, `encrypt_mprotect`). Each returns [`OpParts`] for `ops` to label;
//! key names are recorded here and checked in `cross_refs` once every op is read.

use super::helpers::{field, hex, redact_payload};
use super::operands::parse_hex;
use super::ops::{OpClass, OpParts, OpSite};
use super::{ScenarioError, Validator};
use crate::locate::PathSeg;
use crate::machine_file::AlgorithmFile;
use crate::scenario_file::{CommandFile, OutcomeFile, ProtFile, ResultFile};
use cpu_model::program::{Backing, KernelCall, OpKind, Prot};
use mem_ctrl::pconfig::{KEY_PROGRAM_STRUCT_BYTES, KeyCommand, KeyProgramStruct, PconfigCall};
use sim_core::VirtAddr;

/// A key program checked, with how the summary describes it.
type KeyProgram = (KeyProgramStruct, String);

impl Validator<'_> {
    // ---- PCONFIG -------------------------------------------------------------------------

    /// `pconfig(..)`: the key program from its fields.
    pub(super) fn key_program(
        &self,
        site: &OpSite<'_>,
        keyid: u16,
        command: CommandFile,
        algorithm: Option<AlgorithmFile>,
        key: Option<&str>,
        tweak: Option<&str>,
    ) -> Result<KeyProgram, ScenarioError> {
        let path = site.path;
        let algorithm = algorithm.unwrap_or(AlgorithmFile::AesXts128);
        let key_bytes = self.key_field(key, &field(path, "key"), "key")?;
        let tweak_bytes = self.key_field(tweak, &field(path, "tweak"), "tweak")?;
        let program = KeyProgramStruct::new(keyid, key_command(command), algorithm.into())
            .with_keys(&key_bytes, &tweak_bytes);
        let summary = format!(
            "pconfig {} keyid {keyid} {}",
            command_name(command),
            algorithm_name(algorithm)
        );
        Ok((program, summary))
    }

    /// `pconfig_raw(..)`: the whole key program as hex bytes.
    pub(super) fn raw_key_program(
        &self,
        site: &OpSite<'_>,
        bytes: &str,
    ) -> Result<KeyProgram, ScenarioError> {
        let at = field(site.path, "bytes");
        let raw = parse_hex(bytes, 4 * KEY_PROGRAM_STRUCT_BYTES)
            .map_err(|m| self.err(&at, format!("pconfig_raw bytes: {m}")))?;
        let program = KeyProgramStruct::from_bytes(&raw).map_err(|e| {
            self.err(
                &at,
                format!(
                    "pconfig_raw bytes are {} bytes: expected exactly {} bytes ({} hex \
                     digits), the whole MKTME_KEY_PROGRAM_STRUCT ({e})",
                    raw.len(),
                    KEY_PROGRAM_STRUCT_BYTES,
                    2 * KEY_PROGRAM_STRUCT_BYTES
                ),
            )
        })?;
        let summary = format!(
            "pconfig_raw keyid {} command {} enc_alg {:#x}",
            program.keyid,
            program.command_code(),
            program.enc_alg()
        );
        Ok((program, summary))
    }

    /// The PCONFIG call both forms make, run with the program's privilege.
    pub(super) fn pconfig(
        &mut self,
        site: &OpSite<'_>,
        (program, summary): KeyProgram,
        leaf: Option<u32>,
        struct_addr: Option<u64>,
        expect: Option<OutcomeFile>,
        op_name: &'static str,
    ) -> OpParts<'static> {
        self.expect_pconfig(site.tag, site.place, expect);
        OpParts::new(
            OpKind::Pconfig {
                call: PconfigCall {
                    leaf: leaf.unwrap_or(0),
                    struct_addr: struct_addr.unwrap_or(0x1000),
                    privileged: site.block.credentials.ring0,
                    program,
                },
            },
            summary,
            OpClass::Pconfig,
            op_name,
        )
    }

    /// A PCONFIG key field: zeros when absent, else 16 or 32 bytes of hex.
    fn key_field(
        &self,
        text: Option<&str>,
        path: &[PathSeg<'static>],
        what: &str,
    ) -> Result<Vec<u8>, ScenarioError> {
        let Some(text) = text else {
            return Ok(Vec::new());
        };
        let bytes =
            parse_hex(text, 64).map_err(|m| self.err(path, format!("pconfig {what}: {m}")))?;
        if bytes.len() != 16 && bytes.len() != 32 {
            return Err(self.err(
                path,
                format!(
                    "pconfig {what} is {} bytes ({} hex digits): expected 16 bytes (32 hex \
                     digits, AES-XTS-128) or 32 bytes (64 hex digits, AES-XTS-256)",
                    bytes.len(),
                    2 * bytes.len()
                ),
            ));
        }
        Ok(bytes)
    }

    // ---- system calls --------------------------------------------------------------------

    /// A system call, with its inline expectation.
    fn kernel_call(
        &mut self,
        site: &OpSite<'_>,
        call: KernelCall,
        summary: String,
        expect: Option<ResultFile>,
        op_name: &'static str,
    ) -> OpParts<'static> {
        self.expect_kernel(site.tag, site.place, expect);
        OpParts::new(OpKind::Kernel(call), summary, OpClass::Kernel, op_name)
    }

    pub(super) fn add_key(
        &mut self,
        site: &OpSite<'_>,
        key: &str,
        payload: &str,
        expect: Option<ResultFile>,
    ) -> OpParts<'static> {
        self.added_keys.push(key.to_owned());
        self.kernel_call(
            site,
            KernelCall::AddKey {
                name: key.to_owned(),
                payload: payload.to_owned(),
            },
            format!("add_key `{key}` ({})", redact_payload(payload)),
            expect,
            "add_key",
        )
    }

    pub(super) fn invalidate_key(
        &mut self,
        site: &OpSite<'_>,
        key: &str,
        expect: Option<ResultFile>,
    ) -> OpParts<'static> {
        self.used_keys
            .push((key.to_owned(), field(site.path, "key")));
        self.kernel_call(
            site,
            KernelCall::InvalidateKey {
                name: key.to_owned(),
            },
            format!("invalidate_key `{key}`"),
            expect,
            "invalidate_key",
        )
    }

    /// `keyctl(KEYCTL_SETPERM)` letting process `with` view the key.
    pub(super) fn share_key(
        &mut self,
        site: &OpSite<'_>,
        key: &str,
        with: &str,
        expect: Option<ResultFile>,
    ) -> Result<OpParts<'static>, ScenarioError> {
        self.used_keys
            .push((key.to_owned(), field(site.path, "key")));
        let process = self.process_named(with, &field(site.path, "with"))?;
        Ok(self.kernel_call(
            site,
            KernelCall::ShareKey {
                name: key.to_owned(),
                process,
            },
            format!("share_key `{key}` with process `{with}`"),
            expect,
            "share_key",
        ))
    }

    /// What an `mmap` maps: anonymous memory, or a file from an offset.
    pub(super) fn backing(
        &self,
        site: &OpSite<'_>,
        file: Option<&String>,
        offset: Option<u64>,
    ) -> Result<Backing, ScenarioError> {
        match (file, offset) {
            (Some(name), offset) => Ok(Backing::File {
                name: name.clone(),
                offset: offset.unwrap_or(0),
            }),
            (None, Some(_)) => Err(self.err(
                &field(site.path, "offset"),
                "mmap offset without a file: anonymous memory has no offset; \
                 expected `file: \"name\"` with it, or no offset",
            )),
            (None, None) => Ok(Backing::Anonymous),
        }
    }

    pub(super) fn mmap(
        &mut self,
        site: &OpSite<'_>,
        addr: u64,
        len: u64,
        prot: ProtFile,
        backing: Backing,
        expect: Option<ResultFile>,
    ) -> OpParts<'static> {
        let backing_text = match &backing {
            Backing::Anonymous => "anonymous".to_owned(),
            Backing::File { name, offset } => {
                format!("file `{name}` offset {}", hex(*offset))
            }
        };
        let prot = prot_of(prot);
        self.kernel_call(
            site,
            KernelCall::Mmap {
                addr: VirtAddr::new(addr),
                len,
                prot,
                backing,
            },
            format!("mmap {} len {} {prot} {backing_text}", hex(addr), hex(len)),
            expect,
            "mmap",
        )
    }

    pub(super) fn munmap(
        &mut self,
        site: &OpSite<'_>,
        addr: u64,
        len: u64,
        expect: Option<ResultFile>,
    ) -> OpParts<'static> {
        self.kernel_call(
            site,
            KernelCall::Munmap {
                addr: VirtAddr::new(addr),
                len,
            },
            format!("munmap {} len {}", hex(addr), hex(len)),
            expect,
            "munmap",
        )
    }

    pub(super) fn mprotect(
        &mut self,
        site: &OpSite<'_>,
        addr: u64,
        len: u64,
        prot: ProtFile,
        expect: Option<ResultFile>,
    ) -> OpParts<'static> {
        let prot = prot_of(prot);
        self.kernel_call(
            site,
            KernelCall::Mprotect {
                addr: VirtAddr::new(addr),
                len,
                prot,
            },
            format!("mprotect {} len {} {prot}", hex(addr), hex(len)),
            expect,
            "mprotect",
        )
    }

    pub(super) fn encrypt_mprotect(
        &mut self,
        site: &OpSite<'_>,
        addr: u64,
        len: u64,
        prot: ProtFile,
        key: &str,
        expect: Option<ResultFile>,
    ) -> OpParts<'static> {
        self.used_keys
            .push((key.to_owned(), field(site.path, "key")));
        let prot = prot_of(prot);
        self.kernel_call(
            site,
            KernelCall::EncryptMprotect {
                addr: VirtAddr::new(addr),
                len,
                prot,
                key: key.to_owned(),
            },
            format!(
                "encrypt_mprotect {} len {} {prot} key `{key}`",
                hex(addr),
                hex(len)
            ),
            expect,
            "encrypt_mprotect",
        )
    }
}

fn prot_of(p: ProtFile) -> Prot {
    match p {
        ProtFile::None => Prot::NONE,
        ProtFile::R => Prot::READ,
        ProtFile::Rw => Prot::READ_WRITE,
    }
}

fn key_command(c: CommandFile) -> KeyCommand {
    match c {
        CommandFile::SetKeyDirect => KeyCommand::SetKeyDirect,
        CommandFile::SetKeyRandom => KeyCommand::SetKeyRandom,
        CommandFile::ClearKey => KeyCommand::ClearKey,
        CommandFile::NoEncrypt => KeyCommand::NoEncrypt,
    }
}

fn command_name(c: CommandFile) -> &'static str {
    match c {
        CommandFile::SetKeyDirect => "set_key_direct",
        CommandFile::SetKeyRandom => "set_key_random",
        CommandFile::ClearKey => "clear_key",
        CommandFile::NoEncrypt => "no_encrypt",
    }
}

fn algorithm_name(a: AlgorithmFile) -> &'static str {
    match a {
        AlgorithmFile::AesXts128 => "aes_xts_128",
        AlgorithmFile::AesXts256 => "aes_xts_256",
    }
}
