//! Each core's op list: nesting and count limits, labels (unique within a core, and what kind
//! of op each names, for expectations), and every op kind turned into the core's [`Op`] with a
//! one-line summary for reports.

use super::cross_refs::BarrierInfo;
use super::helpers::{field, hex, index, redact_payload};
use super::operands::parse_hex;
use super::{ACCESS_BYTES_MAX, NESTING_MAX, OPS_MAX, ScenarioError, Validator};
use crate::locate::PathSeg;
use crate::machine_file::AlgorithmFile;
use crate::scenario::{ExpectKind, Expectation, Location, OpInfo};
use crate::scenario_file::{AddrFile, CommandFile, OpFile, ProtFile};
use cpu_model::program::{Backing, Credentials, KernelCall, LineFlush, Op, OpKind, OpTag, Prot};
use mem_ctrl::pconfig::{KEY_PROGRAM_STRUCT_BYTES, KeyCommand, KeyProgramStruct, PconfigCall};
use sim_core::CoreId;
use std::collections::BTreeSet;

/// What kind of op a label names, for expectations.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum OpClass {
    Load { len: u64 },
    Store,
    Flush,
    Pconfig,
    Kernel,
    Other,
}

impl OpClass {
    /// Loads, stores and line flushes touch memory through the page tables, so they can fault.
    pub(super) fn can_fault(self) -> bool {
        matches!(self, OpClass::Load { .. } | OpClass::Store | OpClass::Flush)
    }
}

/// The op a label names, for the expectations that name it.
#[derive(Clone, Debug)]
pub(super) struct LabelInfo {
    /// The op's tag.
    pub(super) tag: OpTag,
    /// Where the op is written.
    pub(super) place: Location,
    /// What kind of op it is.
    pub(super) class: OpClass,
    /// `load`, `pconfig`, ...: how the op is written.
    pub(super) op_name: &'static str,
    /// Inside a mispredict block: squashed, so it produces no results to expect.
    pub(super) in_shadow: bool,
}

impl Validator<'_> {
    pub(super) fn op_list(
        &mut self,
        core: usize,
        credentials: Credentials,
        ops: &[OpFile],
        path: &[PathSeg<'static>],
        depth: usize,
        shadow: bool,
    ) -> Result<Vec<Op>, ScenarioError> {
        let mut out = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            out.push(self.op(core, credentials, op, &index(path, i), depth, shadow)?);
        }
        Ok(out)
    }

    pub(super) fn op(
        &mut self,
        core: usize,
        credentials: Credentials,
        op: &OpFile,
        path: &[PathSeg<'static>],
        depth: usize,
        shadow: bool,
    ) -> Result<Op, ScenarioError> {
        if depth > NESTING_MAX {
            return Err(self.err(
                path,
                format!(
                    "ops nested {depth} levels deep in repeat and mispredict blocks: expected \
                     at most {NESTING_MAX} levels"
                ),
            ));
        }
        if self.ops.len() >= OPS_MAX {
            return Err(self.err(
                path,
                format!(
                    "more than {OPS_MAX} ops in the scenario: expected at most {OPS_MAX} \
                     (use repeat(times: ..) for long programs)"
                ),
            ));
        }
        let tag = OpTag(u32::try_from(self.ops.len()).unwrap_or(u32::MAX));
        let place = self.place(path);
        let core_id = CoreId::new(u32::try_from(core).unwrap_or(u32::MAX));
        self.ops.push(OpInfo {
            core: core_id,
            place,
            name: None,
            summary: String::new(),
        });
        let (kind, summary, label, class, op_name) =
            self.op_kind(core, credentials, op, path, depth, shadow, tag, place)?;
        if let Some(label) = label {
            let (map, order) = &mut self.labels[core];
            if let Some(previous) = map.get(label) {
                let previous = previous.place;
                return Err(self.err(
                    &field(path, "label"),
                    format!(
                        "label `{label}` is already used on core {core} (by the op at \
                         {previous}): expected labels unique within a core"
                    ),
                ));
            }
            map.insert(
                label.clone(),
                LabelInfo {
                    tag,
                    place,
                    class,
                    op_name,
                    in_shadow: shadow,
                },
            );
            order.push(label.clone());
        }
        if let Some(info) = usize::try_from(tag.0)
            .ok()
            .and_then(|i| self.ops.get_mut(i))
        {
            info.name = label.cloned();
            info.summary = summary;
        }
        Ok(Op { tag, kind })
    }

    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    pub(super) fn op_kind<'o>(
        &mut self,
        core: usize,
        credentials: Credentials,
        op: &'o OpFile,
        path: &[PathSeg<'static>],
        depth: usize,
        shadow: bool,
        tag: OpTag,
        place: Location,
    ) -> Result<(OpKind, String, Option<&'o String>, OpClass, &'static str), ScenarioError> {
        Ok(match op {
            OpFile::Load {
                at,
                len: len_field,
                label,
                expect,
                expect_fault,
            } => {
                self.no_expect_in_shadow(shadow, path, "expect", expect.is_some())?;
                self.no_expect_in_shadow(shadow, path, "expect_fault", expect_fault.is_some())?;
                if expect.is_some() && expect_fault.is_some() {
                    return Err(self.err(
                        &field(path, "expect_fault"),
                        "a load cannot both return `expect` and fault: expected one of \
                         `expect` and `expect_fault`",
                    ));
                }
                let addr = self.addr(at, &field(path, "at"))?;
                let bytes = match expect {
                    Some(d) => Some(self.data(d, &field(path, "expect"))?),
                    None => None,
                };
                let len = match (*len_field, &bytes) {
                    (Some(l), Some(b)) if usize::try_from(l).ok() != Some(b.len()) => {
                        return Err(self.err(
                            &field(path, "expect"),
                            format!(
                                "load expect is {} bytes but the load reads len {l}: expected \
                                 {l} bytes (or leave len out: it defaults to expect's length)",
                                b.len()
                            ),
                        ));
                    }
                    (Some(l), _) => l,
                    (None, Some(b)) => b.len() as u64,
                    (None, None) => 8,
                };
                if !(1..=ACCESS_BYTES_MAX).contains(&len) {
                    let at = if len_field.is_some() { "len" } else { "expect" };
                    return Err(self.err(
                        &field(path, at),
                        format!("load len {len} is outside 1..={ACCESS_BYTES_MAX}"),
                    ));
                }
                self.access_in_dram(at, len, &field(path, "at"))?;
                if let Some(bytes) = bytes {
                    self.expectations.push(Expectation {
                        place,
                        kind: ExpectKind::LoadValue { op: tag, bytes },
                    });
                }
                self.expect_fault(tag, place, *expect_fault);
                (
                    OpKind::Load {
                        at: addr,
                        len: len as u8,
                    },
                    format!("load {len} bytes at {}", addr_text(at)),
                    label.as_ref(),
                    OpClass::Load { len },
                    "load",
                )
            }
            OpFile::Store {
                at,
                data,
                label,
                expect_fault,
            } => {
                self.no_expect_in_shadow(shadow, path, "expect_fault", expect_fault.is_some())?;
                let addr = self.addr(at, &field(path, "at"))?;
                let bytes = self.data(data, &field(path, "data"))?;
                let len = bytes.len() as u64;
                if !(1..=ACCESS_BYTES_MAX).contains(&len) {
                    return Err(self.err(
                        &field(path, "data"),
                        format!("store data is {len} bytes: expected 1..={ACCESS_BYTES_MAX} bytes"),
                    ));
                }
                self.access_in_dram(at, len, &field(path, "at"))?;
                self.expect_fault(tag, place, *expect_fault);
                (
                    OpKind::Store { at: addr, bytes },
                    format!("store {len} bytes at {}", addr_text(at)),
                    label.as_ref(),
                    OpClass::Store,
                    "store",
                )
            }
            OpFile::Clflush {
                at,
                label,
                expect_fault,
            }
            | OpFile::Clflushopt {
                at,
                label,
                expect_fault,
            }
            | OpFile::Clwb {
                at,
                label,
                expect_fault,
            } => {
                let (kind, name) = match op {
                    OpFile::Clflush { .. } => (LineFlush::Clflush, "clflush"),
                    OpFile::Clflushopt { .. } => (LineFlush::Clflushopt, "clflushopt"),
                    _ => (LineFlush::Clwb, "clwb"),
                };
                self.no_expect_in_shadow(shadow, path, "expect_fault", expect_fault.is_some())?;
                let addr = self.addr(at, &field(path, "at"))?;
                self.expect_fault(tag, place, *expect_fault);
                (
                    OpKind::Flush { kind, at: addr },
                    format!("{name} at {}", addr_text(at)),
                    label.as_ref(),
                    OpClass::Flush,
                    name,
                )
            }
            OpFile::Prefetch { at, label } => {
                let addr = self.addr(at, &field(path, "at"))?;
                (
                    OpKind::Prefetch { at: addr },
                    format!("prefetch at {}", addr_text(at)),
                    label.as_ref(),
                    OpClass::Other,
                    "prefetch",
                )
            }
            OpFile::SpeculativeLoad { at, len, label } => {
                let addr = self.addr(at, &field(path, "at"))?;
                let n = len.unwrap_or(8);
                if !(1..=ACCESS_BYTES_MAX).contains(&n) {
                    return Err(self.err(
                        &field(path, "len"),
                        format!("speculative_load len {n} is outside 1..={ACCESS_BYTES_MAX}"),
                    ));
                }
                self.access_in_dram(at, n, &field(path, "at"))?;
                (
                    OpKind::SpeculativeLoad {
                        at: addr,
                        len: n as u8,
                    },
                    format!("speculative load {n} bytes at {}", addr_text(at)),
                    label.as_ref(),
                    OpClass::Other,
                    "speculative_load",
                )
            }
            OpFile::Wbinvd => (
                OpKind::Wbinvd,
                "wbinvd".into(),
                None,
                OpClass::Other,
                "wbinvd",
            ),
            OpFile::Mfence => (
                OpKind::Mfence,
                "mfence".into(),
                None,
                OpClass::Other,
                "mfence",
            ),
            OpFile::Sfence => (
                OpKind::Sfence,
                "sfence".into(),
                None,
                OpClass::Other,
                "sfence",
            ),
            OpFile::Mispredict(ops) => {
                let list = index(path, 0);
                let shadow_ops = self.op_list(core, credentials, ops, &list, depth + 1, true)?;
                (
                    OpKind::Mispredict { shadow: shadow_ops },
                    format!("mispredict with {} shadow op(s)", ops.len()),
                    None,
                    OpClass::Other,
                    "mispredict",
                )
            }
            OpFile::Compute(cycles) => (
                OpKind::Compute { cycles: *cycles },
                format!("compute {cycles} cycles"),
                None,
                OpClass::Other,
                "compute",
            ),
            OpFile::Barrier(name) => {
                let id = match self.barrier_ids.get(name) {
                    Some(&id) => id,
                    None => {
                        let id = u32::try_from(self.barriers.len()).unwrap_or(u32::MAX);
                        self.barrier_ids.insert(name.clone(), id);
                        self.barriers.push(BarrierInfo {
                            name: name.clone(),
                            first: self.place(&index(path, 0)),
                            cores: BTreeSet::new(),
                        });
                        id
                    }
                };
                if !shadow && let Some(b) = self.barriers.get_mut(id as usize) {
                    b.cores.insert(core);
                }
                (
                    OpKind::Barrier { id },
                    format!("barrier `{name}`"),
                    None,
                    OpClass::Other,
                    "barrier",
                )
            }
            OpFile::Repeat { times, ops } => {
                let list = field(path, "ops");
                let body = self.op_list(core, credentials, ops, &list, depth + 1, shadow)?;
                (
                    OpKind::Repeat {
                        times: *times,
                        body,
                    },
                    format!("repeat {times} times: {} op(s)", ops.len()),
                    None,
                    OpClass::Other,
                    "repeat",
                )
            }
            OpFile::Pconfig {
                keyid,
                command,
                algorithm,
                key,
                tweak,
                leaf,
                struct_addr,
                label,
                expect,
            } => {
                self.no_expect_in_shadow(shadow, path, "expect", expect.is_some())?;
                let algorithm = algorithm.unwrap_or(AlgorithmFile::AesXts128);
                let key_bytes = self.key_field(key.as_deref(), &field(path, "key"), "key")?;
                let tweak_bytes =
                    self.key_field(tweak.as_deref(), &field(path, "tweak"), "tweak")?;
                let program =
                    KeyProgramStruct::new(*keyid, key_command(*command), algorithm.into())
                        .with_keys(&key_bytes, &tweak_bytes);
                self.expect_pconfig(tag, place, *expect);
                (
                    OpKind::Pconfig {
                        call: PconfigCall {
                            leaf: leaf.unwrap_or(0),
                            struct_addr: struct_addr.unwrap_or(0x1000),
                            privileged: credentials.ring0,
                            program,
                        },
                    },
                    format!(
                        "pconfig {} keyid {keyid} {}",
                        command_name(*command),
                        algorithm_name(algorithm)
                    ),
                    label.as_ref(),
                    OpClass::Pconfig,
                    "pconfig",
                )
            }
            OpFile::PconfigRaw {
                bytes,
                leaf,
                struct_addr,
                label,
                expect,
            } => {
                self.no_expect_in_shadow(shadow, path, "expect", expect.is_some())?;
                let at = field(path, "bytes");
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
                self.expect_pconfig(tag, place, *expect);
                (
                    OpKind::Pconfig {
                        call: PconfigCall {
                            leaf: leaf.unwrap_or(0),
                            struct_addr: struct_addr.unwrap_or(0x1000),
                            privileged: credentials.ring0,
                            program,
                        },
                    },
                    summary,
                    label.as_ref(),
                    OpClass::Pconfig,
                    "pconfig_raw",
                )
            }
            OpFile::AddKey {
                key,
                payload,
                label,
                expect,
            } => {
                self.no_expect_in_shadow(shadow, path, "expect", expect.is_some())?;
                self.added_keys.push(key.clone());
                self.expect_kernel(tag, place, *expect);
                (
                    OpKind::Kernel(KernelCall::AddKey {
                        name: key.clone(),
                        payload: payload.clone(),
                    }),
                    format!("add_key `{key}` ({})", redact_payload(payload)),
                    label.as_ref(),
                    OpClass::Kernel,
                    "add_key",
                )
            }
            OpFile::InvalidateKey { key, label, expect } => {
                self.no_expect_in_shadow(shadow, path, "expect", expect.is_some())?;
                self.used_keys.push((key.clone(), field(path, "key")));
                self.expect_kernel(tag, place, *expect);
                (
                    OpKind::Kernel(KernelCall::InvalidateKey { name: key.clone() }),
                    format!("invalidate_key `{key}`"),
                    label.as_ref(),
                    OpClass::Kernel,
                    "invalidate_key",
                )
            }
            OpFile::Mmap {
                addr,
                len,
                prot,
                file,
                offset,
                label,
                expect,
            } => {
                self.no_expect_in_shadow(shadow, path, "expect", expect.is_some())?;
                let backing = match (file, offset) {
                    (Some(name), offset) => Backing::File {
                        name: name.clone(),
                        offset: offset.unwrap_or(0),
                    },
                    (None, Some(_)) => {
                        return Err(self.err(
                            &field(path, "offset"),
                            "mmap offset without a file: anonymous memory has no offset; \
                             expected `file: \"name\"` with it, or no offset",
                        ));
                    }
                    (None, None) => Backing::Anonymous,
                };
                let backing_text = match &backing {
                    Backing::Anonymous => "anonymous".to_owned(),
                    Backing::File { name, offset } => {
                        format!("file `{name}` offset {}", hex(*offset))
                    }
                };
                self.expect_kernel(tag, place, *expect);
                (
                    OpKind::Kernel(KernelCall::Mmap {
                        addr: *addr,
                        len: len.0,
                        prot: prot_of(*prot),
                        backing,
                    }),
                    format!(
                        "mmap {} len {} {} {backing_text}",
                        hex(*addr),
                        hex(len.0),
                        prot_of(*prot)
                    ),
                    label.as_ref(),
                    OpClass::Kernel,
                    "mmap",
                )
            }
            OpFile::Munmap {
                addr,
                len,
                label,
                expect,
            } => {
                self.no_expect_in_shadow(shadow, path, "expect", expect.is_some())?;
                self.expect_kernel(tag, place, *expect);
                (
                    OpKind::Kernel(KernelCall::Munmap {
                        addr: *addr,
                        len: len.0,
                    }),
                    format!("munmap {} len {}", hex(*addr), hex(len.0)),
                    label.as_ref(),
                    OpClass::Kernel,
                    "munmap",
                )
            }
            OpFile::Mprotect {
                addr,
                len,
                prot,
                label,
                expect,
            } => {
                self.no_expect_in_shadow(shadow, path, "expect", expect.is_some())?;
                self.expect_kernel(tag, place, *expect);
                (
                    OpKind::Kernel(KernelCall::Mprotect {
                        addr: *addr,
                        len: len.0,
                        prot: prot_of(*prot),
                    }),
                    format!(
                        "mprotect {} len {} {}",
                        hex(*addr),
                        hex(len.0),
                        prot_of(*prot)
                    ),
                    label.as_ref(),
                    OpClass::Kernel,
                    "mprotect",
                )
            }
            OpFile::EncryptMprotect {
                addr,
                len,
                prot,
                key,
                label,
                expect,
            } => {
                self.no_expect_in_shadow(shadow, path, "expect", expect.is_some())?;
                self.used_keys.push((key.clone(), field(path, "key")));
                self.expect_kernel(tag, place, *expect);
                (
                    OpKind::Kernel(KernelCall::EncryptMprotect {
                        addr: *addr,
                        len: len.0,
                        prot: prot_of(*prot),
                        key: key.clone(),
                    }),
                    format!(
                        "encrypt_mprotect {} len {} {} key `{key}`",
                        hex(*addr),
                        hex(len.0),
                        prot_of(*prot)
                    ),
                    label.as_ref(),
                    OpClass::Kernel,
                    "encrypt_mprotect",
                )
            }
        })
    }

    /// A PCONFIG key field: zeros when absent, else 16 or 32 bytes of hex.
    pub(super) fn key_field(
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
}

fn addr_text(a: &AddrFile) -> String {
    match a {
        AddrFile::Virt(v) => format!("virt {}", hex(*v)),
        AddrFile::Phys { keyid, addr } => format!("phys keyid {keyid} {}", hex(*addr)),
        AddrFile::DirectMapOf(v) => format!("direct_map_of {}", hex(*v)),
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
