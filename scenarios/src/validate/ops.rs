//! Each core's op list: nesting and count limits, labels (unique within a core, and what kind
//! of op each names, for expectations), and every op kind turned into the core's [`Op`] with a
//! one-line summary for reports. [`Validator::op_parts`] sends each op to the function for its
//! family; the memory and control ops are here, PCONFIG and the system calls in
//! `system_ops`.

use super::cross_refs::BarrierInfo;
use super::expr::IndexVar;
use super::helpers::{field, hex, index};
use super::operands::AddrValue;
use super::{ACCESS_BYTES_MAX, NESTING_MAX, OPS_MAX, ScenarioError, Validator};
use crate::locate::PathSeg;
use crate::scenario::{ExpectKind, Expectation, Location, OpInfo};
use crate::scenario_file::{AddrFile, DataFile, FaultFile, NumFile, OpFile};
use cpu_model::kernel::MMAP_BYTES_MAX;
use cpu_model::program::{Credentials, IndexTerm, Indexed, LineFlush, Op, OpKind, OpTag};
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

/// The block of a core's program an op list sits in: what checking its ops depends on
/// besides the ops themselves.
#[derive(Copy, Clone, Debug)]
pub(super) struct Block {
    /// The core whose program it is (program i runs on core i).
    pub(super) core: usize,
    /// Who the program runs as (PCONFIG records whether it runs in ring 0).
    pub(super) credentials: Credentials,
    /// How many repeat and mispredict blocks enclose it: 0 for the program itself.
    pub(super) depth: usize,
    /// Inside a mispredict block: its ops are squashed and produce no results.
    pub(super) shadow: bool,
}

impl Block {
    /// A core's program: its top-level ops.
    pub(super) fn program(core: usize, credentials: Credentials) -> Block {
        Block {
            core,
            credentials,
            depth: 0,
            shadow: false,
        }
    }

    /// A block inside this one: a mispredict block is a shadow, a repeat body is one when
    /// its repeat is.
    fn nested(self, shadow: bool) -> Block {
        Block {
            depth: self.depth + 1,
            shadow,
            ..self
        }
    }
}

/// One op being checked: where it sits, and the tag and place it gets.
#[derive(Copy, Clone, Debug)]
pub(super) struct OpSite<'p> {
    /// The block of the program it sits in.
    pub(super) block: Block,
    /// Its path in the file, from the top level.
    pub(super) path: &'p [PathSeg<'static>],
    /// Its tag: its index in `Scenario::ops`.
    pub(super) tag: OpTag,
    /// Where it is written; its inline expectations are placed here.
    pub(super) place: Location,
}

/// What checking one op gives: the core's op, how reports describe it, and what its label
/// names.
pub(super) struct OpParts<'o> {
    /// The op the core runs.
    pub(super) kind: OpKind,
    /// One line for reports, such as `load 8 bytes at virt 0x7000_0000`.
    pub(super) summary: String,
    /// The op's `label`, if it has one (ops without a `label` field never do).
    pub(super) label: Option<&'o String>,
    /// What kind of op the label names, for the expectations that name it.
    pub(super) class: OpClass,
    /// How the op is written in the file (`load`, `pconfig_raw`, ...), for error messages.
    pub(super) op_name: &'static str,
}

impl<'o> OpParts<'o> {
    /// An op without a label yet.
    pub(super) fn new(
        kind: OpKind,
        summary: String,
        class: OpClass,
        op_name: &'static str,
    ) -> OpParts<'o> {
        OpParts {
            kind,
            summary,
            label: None,
            class,
            op_name,
        }
    }

    /// An op whose summary is its name, with no label.
    fn plain(kind: OpKind, op_name: &'static str) -> OpParts<'o> {
        OpParts::new(kind, op_name.to_owned(), OpClass::Other, op_name)
    }

    /// The same op with the label the file gives it.
    fn labelled(self, label: &'o Option<String>) -> OpParts<'o> {
        OpParts {
            label: label.as_ref(),
            ..self
        }
    }
}

impl Validator<'_> {
    /// A list of ops: a core's program, a repeat body or a mispredict block.
    pub(super) fn op_list(
        &mut self,
        block: Block,
        ops: &[OpFile],
        path: &[PathSeg<'static>],
    ) -> Result<Vec<Op>, ScenarioError> {
        let mut out = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            out.push(self.op(block, op, &index(path, i))?);
        }
        Ok(out)
    }

    /// One op: its tag, its summary in [`OpInfo`], and its label, unique within the core.
    fn op(
        &mut self,
        block: Block,
        op: &OpFile,
        path: &[PathSeg<'static>],
    ) -> Result<Op, ScenarioError> {
        let Block {
            core,
            depth,
            shadow,
            ..
        } = block;
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
            loads_value: false,
        });
        self.no_expect_in_shadow(shadow, op, path)?;
        let site = OpSite {
            block,
            path,
            tag,
            place,
        };
        let parts = self.op_parts(&site, op)?;
        if let Some(label) = parts.label {
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
                    class: parts.class,
                    op_name: parts.op_name,
                    in_shadow: shadow,
                },
            );
            order.push(label.clone());
        }
        if let Some(info) = usize::try_from(tag.0)
            .ok()
            .and_then(|i| self.ops.get_mut(i))
        {
            info.name = parts.label.cloned();
            info.summary = parts.summary;
            info.loads_value = matches!(parts.class, OpClass::Load { .. }) && !shadow;
        }
        Ok(Op {
            tag,
            kind: parts.kind,
        })
    }

    /// Checks one op and turns it into the core's op, with the function for its family.
    fn op_parts<'o>(
        &mut self,
        site: &OpSite<'_>,
        op: &'o OpFile,
    ) -> Result<OpParts<'o>, ScenarioError> {
        Ok(match op {
            OpFile::Load {
                at,
                len,
                label,
                expect,
                expect_not,
                expect_fault,
            } => self
                .load(
                    site,
                    at,
                    *len,
                    expect.as_ref(),
                    expect_not.as_ref(),
                    *expect_fault,
                )?
                .labelled(label),
            OpFile::Store {
                at,
                data,
                label,
                expect_fault,
            } => self.store(site, at, data, *expect_fault)?.labelled(label),
            OpFile::Clflush {
                at,
                label,
                expect_fault,
            } => self
                .flush(site, LineFlush::Clflush, "clflush", at, *expect_fault)?
                .labelled(label),
            OpFile::Clflushopt {
                at,
                label,
                expect_fault,
            } => self
                .flush(site, LineFlush::Clflushopt, "clflushopt", at, *expect_fault)?
                .labelled(label),
            OpFile::Clwb {
                at,
                label,
                expect_fault,
            } => self
                .flush(site, LineFlush::Clwb, "clwb", at, *expect_fault)?
                .labelled(label),
            OpFile::Prefetch { at, label } => self.prefetch(site, at)?.labelled(label),
            OpFile::SpeculativeLoad { at, len, label } => {
                self.speculative_load(site, at, *len)?.labelled(label)
            }
            OpFile::Wbinvd => OpParts::plain(OpKind::Wbinvd, "wbinvd"),
            OpFile::Mfence => OpParts::plain(OpKind::Mfence, "mfence"),
            OpFile::Sfence => OpParts::plain(OpKind::Sfence, "sfence"),
            OpFile::Mispredict(ops) => self.mispredict(site, ops)?,
            OpFile::Compute(cycles) => OpParts::new(
                OpKind::Compute { cycles: *cycles },
                format!("compute {cycles} cycles"),
                OpClass::Other,
                "compute",
            ),
            OpFile::Barrier(name) => self.barrier(site, name),
            OpFile::Repeat { times, index, ops } => {
                self.repeat(site, *times, index.as_ref(), ops)?
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
                let program = self.key_program(
                    site,
                    *keyid,
                    *command,
                    *algorithm,
                    key.as_deref(),
                    tweak.as_deref(),
                )?;
                self.pconfig(site, program, *leaf, *struct_addr, *expect, "pconfig")
                    .labelled(label)
            }
            OpFile::PconfigRaw {
                bytes,
                leaf,
                struct_addr,
                label,
                expect,
            } => {
                let program = self.raw_key_program(site, bytes)?;
                self.pconfig(site, program, *leaf, *struct_addr, *expect, "pconfig_raw")
                    .labelled(label)
            }
            OpFile::AddKey {
                key,
                payload,
                label,
                expect,
            } => self.add_key(site, key, payload, *expect).labelled(label),
            OpFile::InvalidateKey { key, label, expect } => {
                self.invalidate_key(site, key, *expect).labelled(label)
            }
            OpFile::ShareKey {
                key,
                with,
                label,
                expect,
            } => self.share_key(site, key, with, *expect)?.labelled(label),
            OpFile::Mmap {
                addr,
                len,
                prot,
                file,
                offset,
                label,
                expect,
            } => {
                let backing = self.backing(site, file.as_ref(), *offset)?;
                if len.0 > MMAP_BYTES_MAX {
                    return Err(self.err(
                        &field(site.path, "len"),
                        format!(
                            "mmap len {} is above the limit of {} (1 GiB): populating it would \
                             take about {} MB of the simulator's memory",
                            hex(len.0),
                            hex(MMAP_BYTES_MAX),
                            len.0 / 1000 * 36 / 100_000
                        ),
                    ));
                }
                self.mmap(site, *addr, len.0, *prot, backing, *expect)
                    .labelled(label)
            }
            OpFile::Munmap {
                addr,
                len,
                label,
                expect,
            } => self.munmap(site, *addr, len.0, *expect).labelled(label),
            OpFile::Mprotect {
                addr,
                len,
                prot,
                label,
                expect,
            } => self
                .mprotect(site, *addr, len.0, *prot, *expect)
                .labelled(label),
            OpFile::EncryptMprotect {
                addr,
                len,
                prot,
                key,
                label,
                expect,
            } => self
                .encrypt_mprotect(site, *addr, len.0, *prot, key, *expect)
                .labelled(label),
        })
    }

    // ---- memory accesses -----------------------------------------------------------------

    /// An op's `at`: the address, which a ring-3 core may make physical only as the attacker.
    fn addr_of(&self, site: &OpSite<'_>, at: &AddrFile) -> Result<AddrValue, ScenarioError> {
        let path = field(site.path, "at");
        let credentials = site.block.credentials;
        if let AddrFile::Phys { .. } = at
            && !credentials.physical_addresses()
        {
            return Err(self.err(
                &path,
                format!(
                    "a physical address on core {}, which runs in ring 3: expected `ring0: \
                     true` or `attacker: true` on the core (a user program reaches memory \
                     through virtual addresses: mmap, then virt(..))",
                    site.block.core
                ),
            ));
        }
        self.addr(at, &path)
    }

    fn load(
        &mut self,
        site: &OpSite<'_>,
        at: &AddrFile,
        len_field: Option<u64>,
        expect: Option<&DataFile>,
        expect_not: Option<&DataFile>,
        expect_fault: Option<FaultFile>,
    ) -> Result<OpParts<'static>, ScenarioError> {
        let path = site.path;
        if expect_fault.is_some() {
            for (name, given) in [
                ("expect", expect.is_some()),
                ("expect_not", expect_not.is_some()),
            ] {
                if given {
                    return Err(self.err(
                        &field(path, "expect_fault"),
                        format!(
                            "a load cannot both return `{name}` and fault: expected one of \
                             `{name}` and `expect_fault`"
                        ),
                    ));
                }
            }
        }
        if expect.is_some() && expect_not.is_some() {
            return Err(self.err(
                &field(path, "expect_not"),
                "a load that returns `expect` cannot also return `expect_not`: expected one of \
                 them",
            ));
        }
        let addr = self.addr_of(site, at)?;
        let (data_field, bytes) = match (expect, expect_not) {
            (Some(d), _) => ("expect", Some(self.data(d, &field(path, "expect"))?)),
            (None, Some(d)) => (
                "expect_not",
                Some(self.data(d, &field(path, "expect_not"))?),
            ),
            (None, None) => ("expect", None),
        };
        let len = match (len_field, &bytes) {
            (Some(l), Some(b)) if usize::try_from(l).ok() != Some(b.len()) => {
                return Err(self.err(
                    &field(path, data_field),
                    format!(
                        "load {data_field} is {} bytes but the load reads len {l}: expected \
                         {l} bytes (or leave len out: it defaults to {data_field}'s length)",
                        b.len()
                    ),
                ));
            }
            (Some(l), _) => l,
            (None, Some(b)) => b.len() as u64,
            (None, None) => 8,
        };
        if !(1..=ACCESS_BYTES_MAX).contains(&len) {
            let at = if len_field.is_some() {
                "len"
            } else {
                data_field
            };
            return Err(self.err(
                &field(path, at),
                format!("load len {len} is outside 1..={ACCESS_BYTES_MAX}"),
            ));
        }
        self.access_in_dram(&addr, len, &field(path, "at"))?;
        if let Some(bytes) = bytes {
            let kind = if expect.is_some() {
                ExpectKind::LoadValue {
                    op: site.tag,
                    bytes,
                }
            } else {
                ExpectKind::LoadNot {
                    op: site.tag,
                    bytes,
                }
            };
            self.expectations.push(Expectation {
                place: site.place,
                kind,
            });
        }
        self.expect_fault(site.tag, site.place, expect_fault);
        Ok(OpParts::new(
            indexed(
                OpKind::Load {
                    at: addr.addr,
                    len: len as u8,
                },
                addr.steps,
                Vec::new(),
            ),
            format!("load {len} bytes at {}", addr_text(at)),
            OpClass::Load { len },
            "load",
        ))
    }

    fn store(
        &mut self,
        site: &OpSite<'_>,
        at: &AddrFile,
        data: &DataFile,
        expect_fault: Option<FaultFile>,
    ) -> Result<OpParts<'static>, ScenarioError> {
        let path = site.path;
        let addr = self.addr_of(site, at)?;
        let (bytes, data_steps) = self.data_stepped(data, &field(path, "data"))?;
        let len = bytes.len() as u64;
        if !(1..=ACCESS_BYTES_MAX).contains(&len) {
            return Err(self.err(
                &field(path, "data"),
                format!("store data is {len} bytes: expected 1..={ACCESS_BYTES_MAX} bytes"),
            ));
        }
        self.access_in_dram(&addr, len, &field(path, "at"))?;
        self.expect_fault(site.tag, site.place, expect_fault);
        Ok(OpParts::new(
            indexed(
                OpKind::Store {
                    at: addr.addr,
                    bytes,
                },
                addr.steps,
                data_steps,
            ),
            format!("store {len} bytes at {}", addr_text(at)),
            OpClass::Store,
            "store",
        ))
    }

    /// CLFLUSH, CLFLUSHOPT or CLWB.
    fn flush(
        &mut self,
        site: &OpSite<'_>,
        kind: LineFlush,
        name: &'static str,
        at: &AddrFile,
        expect_fault: Option<FaultFile>,
    ) -> Result<OpParts<'static>, ScenarioError> {
        let addr = self.addr_of(site, at)?;
        self.expect_fault(site.tag, site.place, expect_fault);
        Ok(OpParts::new(
            indexed(
                OpKind::Flush {
                    kind,
                    at: addr.addr,
                },
                addr.steps,
                Vec::new(),
            ),
            format!("{name} at {}", addr_text(at)),
            OpClass::Flush,
            name,
        ))
    }

    fn prefetch(
        &self,
        site: &OpSite<'_>,
        at: &AddrFile,
    ) -> Result<OpParts<'static>, ScenarioError> {
        let addr = self.addr_of(site, at)?;
        Ok(OpParts::new(
            indexed(OpKind::Prefetch { at: addr.addr }, addr.steps, Vec::new()),
            format!("prefetch at {}", addr_text(at)),
            OpClass::Other,
            "prefetch",
        ))
    }

    fn speculative_load(
        &self,
        site: &OpSite<'_>,
        at: &AddrFile,
        len: Option<u64>,
    ) -> Result<OpParts<'static>, ScenarioError> {
        let path = site.path;
        let addr = self.addr_of(site, at)?;
        let n = len.unwrap_or(8);
        if !(1..=ACCESS_BYTES_MAX).contains(&n) {
            return Err(self.err(
                &field(path, "len"),
                format!("speculative_load len {n} is outside 1..={ACCESS_BYTES_MAX}"),
            ));
        }
        self.access_in_dram(&addr, n, &field(path, "at"))?;
        Ok(OpParts::new(
            indexed(
                OpKind::SpeculativeLoad {
                    at: addr.addr,
                    len: n as u8,
                },
                addr.steps,
                Vec::new(),
            ),
            format!("speculative load {n} bytes at {}", addr_text(at)),
            OpClass::Other,
            "speculative_load",
        ))
    }

    // ---- control -------------------------------------------------------------------------

    fn mispredict(
        &mut self,
        site: &OpSite<'_>,
        ops: &[OpFile],
    ) -> Result<OpParts<'static>, ScenarioError> {
        let list = index(site.path, 0);
        let shadow_ops = self.op_list(site.block.nested(true), ops, &list)?;
        Ok(OpParts::new(
            OpKind::Mispredict { shadow: shadow_ops },
            format!("mispredict with {} shadow op(s)", ops.len()),
            OpClass::Other,
            "mispredict",
        ))
    }

    fn barrier(&mut self, site: &OpSite<'_>, name: &str) -> OpParts<'static> {
        let id = match self.barrier_ids.get(name) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(self.barriers.len()).unwrap_or(u32::MAX);
                self.barrier_ids.insert(name.to_owned(), id);
                self.barriers.push(BarrierInfo {
                    name: name.to_owned(),
                    first: self.place(&index(site.path, 0)),
                    cores: BTreeSet::new(),
                });
                id
            }
        };
        if !site.block.shadow
            && let Some(b) = self.barriers.get_mut(id as usize)
        {
            b.cores.insert(site.block.core);
        }
        OpParts::new(
            OpKind::Barrier { id },
            format!("barrier `{name}`"),
            OpClass::Other,
            "barrier",
        )
    }

    fn repeat(
        &mut self,
        site: &OpSite<'_>,
        times: u64,
        index_name: Option<&String>,
        ops: &[OpFile],
    ) -> Result<OpParts<'static>, ScenarioError> {
        if let Some(name) = index_name {
            let ipath = field(site.path, "index");
            let mut chars = name.chars();
            let ident = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ident {
                return Err(self.err(
                    &ipath,
                    format!(
                        "index `{name}` is not a name: expected letters, digits and `_`, not \
                         starting with a digit (such as `i`)"
                    ),
                ));
            }
            if self.scope.iter().any(|v| &v.name == name) {
                return Err(self.err(
                    &ipath,
                    format!(
                        "index `{name}` is already the index of an enclosing repeat: expected \
                         another name"
                    ),
                ));
            }
            self.scope.push(IndexVar {
                name: name.clone(),
                times,
                tag: site.tag.0,
            });
        }
        let list = field(site.path, "ops");
        let body = self.op_list(site.block.nested(site.block.shadow), ops, &list);
        if index_name.is_some() {
            self.scope.pop();
        }
        let body = body?;
        let index_text = index_name.map_or(String::new(), |n| format!(" (index `{n}`)"));
        Ok(OpParts::new(
            OpKind::Repeat { times, body },
            format!("repeat {times} times{index_text}: {} op(s)", ops.len()),
            OpClass::Other,
            "repeat",
        ))
    }
}

/// `kind`, stepping by these terms (as is when there are none).
fn indexed(kind: OpKind, addr: Vec<IndexTerm>, data: Vec<IndexTerm>) -> OpKind {
    if addr.is_empty() && data.is_empty() {
        kind
    } else {
        OpKind::Indexed(Box::new(Indexed {
            op: kind,
            addr,
            data,
        }))
    }
}

/// A number as summaries write it: hex in groups, or the expression as written.
fn num_text(n: &NumFile, hex_form: bool) -> String {
    match n {
        NumFile::Int(v) if hex_form => hex(*v),
        NumFile::Int(v) => v.to_string(),
        NumFile::Expr(text) => format!("\"{}\"", text.trim()),
    }
}

/// How a summary names an address: `virt 0x7000_0000`, `phys keyid 1 0x1000`, ...
fn addr_text(a: &AddrFile) -> String {
    match a {
        AddrFile::Virt(v) => format!("virt {}", num_text(v, true)),
        AddrFile::Phys { keyid, addr } => format!(
            "phys keyid {} {}",
            num_text(keyid, false),
            num_text(addr, true)
        ),
        AddrFile::DirectMapOf(v) => format!("direct_map_of {}", num_text(v, true)),
    }
}
