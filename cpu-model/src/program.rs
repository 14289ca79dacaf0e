//! What cores run: programs of operations, and what running them produced.
//!
//! A [`Program`] is a tree of [`Op`]s (repeat blocks nest and are never unrolled, so a program
//! of 10^12 iterations costs no memory). Each op carries an [`OpTag`] chosen by whoever built the
//! program (the scenario runner uses it to find the op's place in the scenario file); every
//! result the machine produces for an op names its core and tag. Expectations are not part of
//! this crate: cores record [`OpResult`]s, and the scenario layer judges them.

use mem_ctrl::pconfig::{PconfigCall, PconfigOutcome};
use sim_core::{CoreId, Cycle, PhysAddr, VirtAddr};
use std::fmt;

/// The caller's name for one op of a program (not necessarily unique: ops inside a repeat
/// block produce one result per iteration, all with the op's tag).
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct OpTag(pub u32);

/// Where an access goes.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Addr {
    /// A virtual address, translated through the core's TLB and the kernel's page tables. The
    /// kernel's direct map is the range [`DIRECT_MAP_BASE`] + DRAM address (KeyID 0).
    Virt(VirtAddr),
    /// A physical address, KeyID bits included: no translation (a modelling convenience, as
    /// if the program ran with paging off). Ring 0 and the attacker only: other programs fault
    /// with [`FaultKind::Privilege`].
    Phys(PhysAddr),
    /// The kernel's direct-map alias of the frame behind a user virtual address, resolved when
    /// the op executes: what the kernel touches when it follows a pointer into user memory.
    DirectMapOf(VirtAddr),
}

/// Where the kernel's direct map of all DRAM starts (Linux x86-64's default `page_offset_base`
/// without KASLR).
pub const DIRECT_MAP_BASE: VirtAddr = VirtAddr::new(0xffff_8880_0000_0000);

/// A cache-line flush instruction that names one line.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum LineFlush {
    /// CLFLUSH: ordered with stores and other CLFLUSHes.
    Clflush,
    /// CLFLUSHOPT: ordered only with older stores to the same line, and by fences.
    Clflushopt,
    /// CLWB: as CLFLUSHOPT, but the line may stay cached (clean).
    Clwb,
}

/// Page protection, as `mmap`/`mprotect` take it.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub struct Prot {
    /// PROT_READ.
    pub read: bool,
    /// PROT_WRITE.
    pub write: bool,
}

impl Prot {
    /// PROT_NONE.
    pub const NONE: Prot = Prot {
        read: false,
        write: false,
    };
    /// PROT_READ.
    pub const READ: Prot = Prot {
        read: true,
        write: false,
    };
    /// PROT_READ | PROT_WRITE.
    pub const READ_WRITE: Prot = Prot {
        read: true,
        write: true,
    };
}

impl fmt::Display for Prot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.read, self.write) {
            (false, false) => f.write_str("none"),
            (true, false) => f.write_str("r"),
            (false, true) => f.write_str("w"),
            (true, true) => f.write_str("rw"),
        }
    }
}

/// What backs a mapping.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Backing {
    /// Anonymous memory, zeroed by the kernel.
    Anonymous,
    /// A file's pages from the page cache, shared by every mapping of the same file and offset.
    File {
        /// The file's name (files start empty: zeros).
        name: String,
        /// Byte offset of the mapping in the file (page-aligned).
        offset: u64,
    },
}

/// A system call into the kernel layer (see the `kernel` module).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum KernelCall {
    /// `add_key("mktme", name, payload)`: returns the key's serial.
    AddKey {
        /// The key's description; later calls name the key by it.
        name: String,
        /// The payload, options separated by spaces: `type=... algorithm=... key=... tweak=...`.
        payload: String,
    },
    /// `keyctl(KEYCTL_INVALIDATE, serial)` of the key added under `name`.
    InvalidateKey {
        /// The key's name.
        name: String,
    },
    /// `keyctl(KEYCTL_SETPERM, serial, ...)` granting `process` the view permission on the
    /// key added under `name`: that process may then use it (`encrypt_mprotect`).
    ShareKey {
        /// The key's name.
        name: String,
        /// The process that may view it from now on.
        process: ProcessId,
    },
    /// `mmap(addr, len, prot, MAP_FIXED | MAP_POPULATE | ...)`: every page is populated at once.
    Mmap {
        /// Fixed virtual address (page-aligned).
        addr: VirtAddr,
        /// Length in bytes.
        len: u64,
        /// Protection.
        prot: Prot,
        /// Anonymous or a file.
        backing: Backing,
    },
    /// `munmap(addr, len)`.
    Munmap {
        /// Virtual address.
        addr: VirtAddr,
        /// Length in bytes.
        len: u64,
    },
    /// `mprotect(addr, len, prot)`.
    Mprotect {
        /// Virtual address.
        addr: VirtAddr,
        /// Length in bytes.
        len: u64,
        /// New protection.
        prot: Prot,
    },
    /// `encrypt_mprotect(addr, len, prot, serial)` with the key added under `key`.
    EncryptMprotect {
        /// Virtual address.
        addr: VirtAddr,
        /// Length in bytes.
        len: u64,
        /// New protection.
        prot: Prot,
        /// The key's name.
        key: String,
    },
}

/// A kernel error number, as the call returns it.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum Errno {
    /// Invalid argument (a malformed payload, a misaligned range, a non-anonymous mapping).
    Einval,
    /// No hardware KeyID free, programming failed, or no such key.
    Enokey,
    /// The caller lacks CAP_SYS_RESOURCE.
    Eacces,
    /// The range is not (wholly) mapped, or memory ran out.
    Enomem,
}

impl Errno {
    /// The C name: `EINVAL`, ...
    pub const fn name(self) -> &'static str {
        match self {
            Errno::Einval => "EINVAL",
            Errno::Enokey => "ENOKEY",
            Errno::Eacces => "EACCES",
            Errno::Enomem => "ENOMEM",
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One operation of a program.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Op {
    /// The caller's name for it.
    pub tag: OpTag,
    /// What it does.
    pub kind: OpKind,
}

/// What an operation does.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum OpKind {
    /// Load `len` bytes (1 to 64; may cross a line or page, and is then split).
    Load {
        /// Where.
        at: Addr,
        /// Bytes.
        len: u8,
    },
    /// Store `bytes` (1 to 64 of them) through the store buffer.
    Store {
        /// Where.
        at: Addr,
        /// What.
        bytes: Vec<u8>,
    },
    /// CLFLUSH, CLFLUSHOPT or CLWB of one line.
    Flush {
        /// Which instruction.
        kind: LineFlush,
        /// The line (any byte of it).
        at: Addr,
    },
    /// WBINVD: write back and invalidate every cache of the socket. Serializing.
    Wbinvd,
    /// MFENCE: every older load, store and flush completes before any younger op issues.
    Mfence,
    /// SFENCE: older stores, CLFLUSHOPTs and CLWBs complete before younger ones.
    Sfence,
    /// A software prefetch (PREFETCHT0): fills the line clean; never faults.
    Prefetch {
        /// The line.
        at: Addr,
    },
    /// A load issued on a mispredicted path: the line is filled (clean), the value discarded,
    /// and a fault is suppressed.
    SpeculativeLoad {
        /// Where.
        at: Addr,
        /// Bytes.
        len: u8,
    },
    /// A mispredicted branch: the core runs `shadow` speculatively until the branch resolves
    /// (the core's `branch_resolve_cycles`) or the shadow ends, then squashes it. In the shadow,
    /// loads become speculative loads, stores never leave the core, prefetches run, and
    /// anything serializing (fences, flushes, PCONFIG, kernel calls, barriers) ends it.
    Mispredict {
        /// The ops on the wrong path.
        shadow: Vec<Op>,
    },
    /// Busy for this many cycles (no op issues meanwhile; memory keeps working).
    Compute {
        /// Cycles.
        cycles: u64,
    },
    /// Wait until every core that takes part in barrier `id` has reached it (its n-th
    /// occurrence meets the others' n-th). Implies MFENCE.
    Barrier {
        /// The barrier's number.
        id: u32,
    },
    /// PCONFIG. Serializing; the core waits for the instruction to complete.
    Pconfig {
        /// Its inputs.
        call: PconfigCall,
    },
    /// A system call. Serializing.
    Kernel(KernelCall),
    /// `body`, `times` times over.
    Repeat {
        /// Iterations.
        times: u64,
        /// The ops.
        body: Vec<Op>,
    },
    /// An access whose address or data steps with the iterations of enclosing repeat blocks
    /// (a repeat is never unrolled: the core computes each iteration's value).
    Indexed(Box<Indexed>),
}

/// One term of a stepped value: `step` times the iteration number (0 in the first) of the
/// enclosing [`OpKind::Repeat`] whose op has tag `repeat`.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct IndexTerm {
    /// The repeat op's tag.
    pub repeat: OpTag,
    /// What one iteration adds (wrapping arithmetic: the builder of the program checks that
    /// every iteration's value is in range).
    pub step: i64,
}

/// An access (load, store, flush, prefetch, speculative load) whose values step with the
/// iterations of enclosing repeats: the op as in every repeat's first iteration, plus terms.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Indexed {
    /// The op at iteration 0 of every enclosing repeat; never a container.
    pub op: OpKind,
    /// Added to the op's address: its raw value (a virtual address, a physical address with
    /// its KeyID bits, or the user address of `DirectMapOf`).
    pub addr: Vec<IndexTerm>,
    /// Added to a store's data, read as a little-endian integer of its length (at most 8
    /// bytes) and written back at that width.
    pub data: Vec<IndexTerm>,
}

/// A process of the kernel layer: its own user address space and page tables; every core
/// runs a thread of one process. Numbered from 0 (the process of every program that names
/// none).
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct ProcessId(pub u32);

/// Who a core's program runs as.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Credentials {
    /// CPL 0: PCONFIG, the kernel's direct map and physical addresses are allowed.
    pub ring0: bool,
    /// CAP_SYS_RESOURCE: may add MKTME keys.
    pub cap_sys_resource: bool,
    /// The process the program runs in: its page tables, and the keys it may view.
    pub process: ProcessId,
    /// The attacker's program: it may name physical addresses ([`Addr::Phys`]) at CPL 3 too,
    /// as a malicious device or someone with physical access to the machine would. Ring-3
    /// code without it faults (`privilege`) on a physical address.
    pub attacker: bool,
}

impl Credentials {
    /// Ring 0 with CAP_SYS_RESOURCE, in process 0: what a program runs as by default.
    pub const ROOT: Credentials = Credentials {
        ring0: true,
        cap_sys_resource: true,
        process: ProcessId(0),
        attacker: false,
    };

    /// Whether the program may name physical addresses: ring 0, or the attacker.
    pub const fn physical_addresses(&self) -> bool {
        self.ring0 || self.attacker
    }
}

impl Default for Credentials {
    fn default() -> Credentials {
        Credentials::ROOT
    }
}

/// One core's program.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Program {
    /// The ops, in program order.
    pub ops: Vec<Op>,
    /// Who it runs as.
    pub credentials: Credentials,
}

/// Why an access faulted.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum FaultKind {
    /// No mapping at this virtual address.
    NotMapped,
    /// The mapping does not allow this access (a store to a read-only page, any access to a
    /// PROT_NONE page).
    Protection,
    /// A user-mode access to a kernel address (the direct map).
    Privilege,
    /// The frame was unmapped from the kernel's direct map (encrypted or protected memory).
    DirectMapUnmapped,
}

impl FaultKind {
    /// A short name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            FaultKind::NotMapped => "not_mapped",
            FaultKind::Protection => "protection",
            FaultKind::Privilege => "privilege",
            FaultKind::DirectMapUnmapped => "direct_map_unmapped",
        }
    }
}

/// A page fault, as the program sees it.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Fault {
    /// The faulting virtual address (for an [`Addr::Phys`] access, which runs as if paging
    /// were off, the physical address taken as a linear one).
    pub addr: VirtAddr,
    /// Why.
    pub kind: FaultKind,
}

/// What an op produced.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum OpOutcome {
    /// A committed load's bytes.
    Load {
        /// The bytes, in address order.
        bytes: Vec<u8>,
        /// The physical address of the first byte (KeyID included).
        pa: PhysAddr,
    },
    /// The op faulted; the program went on with the next op.
    Fault(Fault),
    /// PCONFIG's outcome.
    Pconfig(PconfigOutcome),
    /// A system call's return value or error.
    Kernel(Result<u64, Errno>),
}

/// One result: which op, when, and what.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct OpResult {
    /// The core that ran it.
    pub core: CoreId,
    /// The op.
    pub tag: OpTag,
    /// The cycle the op completed (a load's value was bound, a call returned).
    pub cycle: Cycle,
    /// What it produced.
    pub outcome: OpOutcome,
}
