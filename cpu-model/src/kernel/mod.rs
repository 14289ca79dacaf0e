//! The kernel layer: the MKTME key service, the KeyID pool, page tables, `mmap`,
//! `encrypt_mprotect` and the direct map (mktme-facts.md sections 4 and 5; the seeds' proposals).
//!
//! The kernel is a pure state machine. A system call runs in two halves:
//! [`Kernel::begin`] validates the call and returns the work the calling core must do on the
//! machine ([`KernelStep`]s: line flushes, line zeroing, PCONFIG), in order; the core performs
//! them through the real cache hierarchy and memory controllers; [`Kernel::finish`] takes the
//! PCONFIG outcomes, commits the state change (page-table entries, KeyID pool, reference
//! counts) and returns the call's result and the pages whose translations changed (TLB
//! shootdown).
//!
//! # What is modelled
//!
//! **Processes.** Every core runs a thread of one process ([`ProcessId`], in the program's
//! [`Credentials`]); each process has its own user address space (below [`USER_SPACE_END`])
//! and page tables, 4 KiB pages only, populated at `mmap` (MAP_FIXED | MAP_POPULATE), so there
//! are no page faults to service and no swapping, migration, THP or KSM. Memory calls act on
//! the caller's process; frames, the page cache (file pages are shared across processes), the
//! direct map and the key service are the kernel's, shared by all. A shootdown's user pages
//! concern the caller's process only ([`SyscallEnd::shootdown`]).
//!
//! **The direct map.** All DRAM is mapped at [`DIRECT_MAP_BASE`] + DRAM address through KeyID
//! 0, supervisor-only, read-write: Linux's direct map, which kernel data structures use
//! (mktme-facts.md 4.2, "kernel data structures use only the KeyID-0 map"). The RFC's
//! per-KeyID direct-map copies are not modelled: the kernel reaches a page through another
//! KeyID only by physical address, in the [`KernelStep`]s. With
//! [`KernelConfig::unmap_encrypted_from_direct_map`], a page that takes a non-zero KeyID leaves
//! the direct map and returns when it is freed: what the KVM protected-memory RFC (May 2020)
//! and MAP_EXCLUSIVE (Oct 2019) proposed for secret memory ("one advantage compared to
//! allowing access to ciphertext is that it allows bad accesses to be caught instead of simply
//! reading garbage"). A kernel access to such a frame faults with
//! [`FaultKind::DirectMapUnmapped`].
//!
//! **Page frames** come from `[frames_base, frames_base + frames_bytes)`: a LIFO free list
//! (a freed frame is the next one reused; the frames one `munmap` frees come back in the same
//! order to the next `mmap`), then a bump pointer. Anonymous pages get their own frame, zeroed
//! through KeyID 0. File pages come from a page cache with one frame per (file, page index),
//! shared by every mapping of it, zeroed on first use and kept after `munmap`; files are never
//! written back and never shrink.
//!
//! **The key service** (mktme-facts.md 5.2, 5.3): `add_key("mktme", name, payload)` needs
//! CAP_SYS_RESOURCE (EACCES), a payload following [`payload`]'s rules (EINVAL), then takes the
//! first AVAILABLE KeyID of 1..=N (`mktme_reserve_keyid()`; ENOKEY when none) and programs it
//! with one PCONFIG, retried by the core on DEVICE_BUSY and ENTROPY_ERROR (the RFC's error
//! table). A failed programming returns the KeyID to the pool and the call fails with ENOKEY.
//! Keys get serials [`FIRST_SERIAL`], [`FIRST_SERIAL`] + 1, ... in the order their programming
//! succeeds. `keyctl(KEYCTL_INVALIDATE)` marks a key invalidated; its KeyID is released (the
//! v2 release callback) when the last page referencing it goes, by whichever call drops that
//! reference, and is then cleared in hardware with PCONFIG KEYID_CLEAR_KEY as the later
//! out-of-tree variant did (5.3) before it becomes AVAILABLE again. Every page holds one
//! reference on its KeyID (`percpu_ref_get_many(..., 1 << order)` per 4 K, 4.2); VMA references
//! are not modelled (a page reference is all a VMA ever protects here).
//!
//! **Key permissions** (5.4, KEY_NEED_VIEW): a key belongs to the process that added it, which
//! may let other processes view it (`keyctl(KEYCTL_SETPERM)`, [`KernelCall::ShareKey`]); a
//! process may use (`encrypt_mprotect`) or invalidate only a key it may view (EACCES
//! otherwise). Names stay scenario-wide: a key is named the same way in every process.
//!
//! **encrypt_mprotect** (5.4): `mprotect` plus a KeyID for every page of the range. Anonymous
//! memory only: if ANY page of the range is file-backed, the call fails with EINVAL and nothing
//! changes (`mem_supports_encryption()`). As on the RFC, it is "functionally MADV_DONTNEED plus
//! a new KeyID" (the seeds' Dec-2018 thread): a page whose KeyID changes loses its contents and
//! is zeroed through the new KeyID. Pages that already have the key's KeyID keep their
//! contents ("additional mprotect() calls to memory already protected with MKTME will not alter
//! the MKTME status").
//!
//! **Flushes** (4.1, 4.2): hardware keeps no coherency between KeyID aliases, so with
//! [`KernelConfig::flush_on_keyid_change`] the kernel flushes, as the RFC's
//! `__prep_encrypted_page` does, the 64 lines of the old alias before a page takes a new KeyID
//! (the KeyID-0 alias for a fresh page), and, as `free_encrypted_page` does, the 64 lines of
//! the encrypted alias when an encrypted page is freed ("on alloc we should flush the
//! unencrypted (key=0) range, while on free ... the encrypted (key!=0) range"). Turning the
//! flag off shows why they exist: stale dirty lines of the old alias get written back over the
//! new contents.
//!
//! **TLB shootdown**: [`SyscallEnd::shootdown`] lists every page whose translation changed —
//! user pages in address order, then the direct-map pages (as direct-map virtual addresses)
//! whose entry was removed or restored — and only those: an `mprotect` or `encrypt_mprotect`
//! that changes neither the protection nor the KeyID of a page does not list it; a new `mmap`
//! lists nothing (x86 does not cache not-present entries).
//!
//! # Errors
//!
//! | call | EACCES | EINVAL | ENOKEY | ENOMEM |
//! |---|---|---|---|---|
//! | `add_key` | no CAP_SYS_RESOURCE | bad payload; empty name; name of a live (assigned) key | no KeyID free; programming failed | |
//! | `invalidate_key` | the caller's process may not view the key | | no such key, or already invalidated | |
//! | `share_key` | the caller's process does not own the key | | no such key, or invalidated | |
//! | `mmap` | | misaligned addr, len or file offset; len 0; overflow; not a user range; overlaps a mapping | | out of frames |
//! | `munmap` | | misaligned addr or len; len 0; overflow; not a user range | | |
//! | `mprotect` | | misaligned addr or len; overflow; not a user range | | a page of the range unmapped |
//! | `encrypt_mprotect` | the caller's process may not view the key | misaligned addr or len; len 0; overflow; not a user range; a file-backed page | no such key, or invalidated | a page of the range unmapped |
//!
//! Checks run in the order of each row (left to right within EINVAL); for `encrypt_mprotect`:
//! range arguments (EINVAL), the range mapped (ENOMEM), every page anonymous (EINVAL), then the
//! key (ENOKEY), then the permission to view it (EACCES). A failing call changes nothing and has
//! no steps.
//!
//! # Simplified, and why
//!
//! - `mmap` never replaces an existing mapping: an overlap is EINVAL (Linux's MAP_FIXED would
//!   unmap the old pages; MAP_FIXED_NOREPLACE would say EEXIST, which this model does not
//!   have). Scenarios `munmap` first, which keeps every page's history explicit.
//! - `munmap` and `mprotect` want a page-aligned `len` (Linux rounds it up): scenarios say
//!   exactly what they mean. `munmap` ignores unmapped pages in the range (Linux);
//!   `mprotect` with `len` 0 succeeds and does nothing (Linux).
//! - Permissions are the view permission only, per process (no users, groups or keyrings):
//!   the owner may view, use and share its key; others only once shared with.
//! - A key name is in use while its key is assigned (or being programmed). After
//!   KEYCTL_INVALIDATE the name may be reused for a new key (the old key is gone from the
//!   keyring even while its KeyID is still referenced); later calls naming it find the new key.
//!   Adding a key under a live name is EINVAL. (In Linux, add_key updates a key of the same
//!   description only if the key type can be updated, which MKTME keys cannot (5.1); otherwise
//!   the new key takes the old one's place in the keyring. Scenarios name keys by their
//!   description, so a second live key of one name would make later calls ambiguous.)
//! - A KEYID_CLEAR_KEY that fails still releases the KeyID (counted in
//!   `kernel.clear_key_failures`): the next key on that KeyID is programmed with its own
//!   SET_KEY/NO_ENCRYPT/CLEAR_KEY anyway, and the RFC v2 released KeyIDs without clearing them.
//! - Every PCONFIG names AES-XTS-128, the only algorithm the key service accepts (CLEAR_KEY and
//!   NO_ENCRYPT need a valid ENC_ALG too, mktme-facts.md 2).
//! - Calls are linearized in [`Kernel::begin`] order: each call's checks and decisions see the
//!   effects of every call begun before it, and other calls' resources are reserved at begin
//!   (frames, the KeyID being programmed, the key name); what the machine sees
//!   ([`Kernel::walk`], frames returned to the free list, KeyIDs returned to the pool) changes
//!   only at [`Kernel::finish`], after the steps ran. The kernel holds no lock across the
//!   steps: if the system overlaps two calls on the same pages, their steps interleave on the
//!   machine as they would without Linux's mmap_lock.

mod describe;
mod frames;
mod keys;
mod mm;
pub mod payload;

pub use payload::{KeyPayload, KeyType, PayloadError, parse_payload};

use crate::program::{
    Credentials, DIRECT_MAP_BASE, Errno, Fault, FaultKind, KernelCall, ProcessId, Prot,
};
use frames::Frames;
use mem_ctrl::pconfig::{PconfigCall, PconfigOutcome};
use sim_core::{
    AddressLayout, CoreId, Cycle, DramAddr, KeyId, LINE_BYTES, LINES_PER_PAGE, PAGE_BYTES,
    PhysAddr, VirtAddr,
};
use std::collections::BTreeMap;

/// The first address above the user address space (x86-64 with 4-level paging).
pub const USER_SPACE_END: VirtAddr = VirtAddr::new(0x0000_8000_0000_0000);

/// The most one `mmap` may map: 1 GiB (a scenario asking for more is refused when validated).
/// MAP_POPULATE zeroes every line of it, and the call's zeroing steps take about 0.36 bytes of
/// the simulator's memory per byte mapped until the call ends (about 380 MB at this limit).
pub const MMAP_BYTES_MAX: u64 = 1 << 30;

/// The most user pages the kernel keeps mapped at once, over every process: 2^20 (4 GiB).
/// An `mmap` that would map more fails with ENOMEM, as under an address-space limit
/// (RLIMIT_AS): a page costs about 100 bytes of the simulator's memory, and a file's cached
/// pages can be mapped again and again without taking frames.
pub const MAPPED_PAGES_MAX: u64 = 1 << 20;

/// The serial of the first key added; each later key gets the next one.
pub const FIRST_SERIAL: u64 = 0x1000_0000;

/// The names of the system calls, as statistics and dumps spell them.
pub const CALL_NAMES: [&str; 7] = [
    "add_key",
    "invalidate_key",
    "share_key",
    "mmap",
    "munmap",
    "mprotect",
    "encrypt_mprotect",
];

const PAGE: u64 = PAGE_BYTES as u64;
const LINE: u64 = LINE_BYTES as u64;
const LINES: u64 = LINES_PER_PAGE as u64;
/// Bytes from [`DIRECT_MAP_BASE`] to the top of the address space.
const DIRECT_MAP_SPAN: u64 = 0u64.wrapping_sub(DIRECT_MAP_BASE.raw());

/// The kernel's knobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelConfig {
    /// Hardware KeyIDs the key service may hand out: 1..=keyids (the RFC's 3 to 63). `None`:
    /// every KeyID the machine has (MK_TME_MAX_KEYS).
    pub keyids: Option<u16>,
    /// Times a key programming is retried after DEVICE_BUSY or ENTROPY_ERROR before the call
    /// fails with ENOKEY.
    pub program_retries: u32,
    /// The kernel's flushes when a page changes KeyID (flush the old alias when a page takes a
    /// KeyID, the encrypted alias when it is freed). Off: show why they exist.
    pub flush_on_keyid_change: bool,
    /// Unmap encrypted pages from the kernel's direct map (KVM protected memory,
    /// MAP_EXCLUSIVE): a kernel access then faults instead of reading garbage.
    pub unmap_encrypted_from_direct_map: bool,
    /// First byte of DRAM the kernel allocates page frames from (page-aligned).
    pub frames_base: u64,
    /// Bytes of page frames (a multiple of 4 KiB).
    pub frames_bytes: u64,
}

impl Default for KernelConfig {
    fn default() -> KernelConfig {
        KernelConfig {
            keyids: None,
            program_retries: 3,
            flush_on_keyid_change: true,
            unmap_encrypted_from_direct_map: false,
            frames_base: 0x4000_0000,
            frames_bytes: 0x4000_0000,
        }
    }
}

/// A kernel configuration that cannot work; names the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("kernel.{field}: {problem}")]
pub struct KernelConfigError {
    /// The field.
    pub field: &'static str,
    /// What is wrong.
    pub problem: String,
}

/// A read or a write.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Access {
    /// A load.
    Read,
    /// A store.
    Write,
}

/// A page-table entry as the TLB caches it.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Pte {
    /// The frame's physical address, page-aligned, KeyID bits included.
    pub frame: PhysAddr,
    /// What the mapping allows.
    pub prot: Prot,
    /// A supervisor page (the direct map): user-mode accesses fault.
    pub kernel_only: bool,
}

impl Pte {
    /// Whether `access` at privilege `ring0` may use this entry.
    pub fn permits(&self, access: Access, ring0: bool) -> Result<(), FaultKind> {
        if self.kernel_only && !ring0 {
            return Err(FaultKind::Privilege);
        }
        let ok = match access {
            Access::Read => self.prot.read,
            Access::Write => self.prot.write,
        };
        if ok {
            Ok(())
        } else {
            Err(FaultKind::Protection)
        }
    }
}

/// Work the calling core does for a system call, in order.
// The PCONFIG call is boxed: an `mmap` of n pages has 64 n steps, and each stays 16 bytes
// instead of carrying the 192-byte MKTME_KEY_PROGRAM_STRUCT inline.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum KernelStep {
    /// CLFLUSH of this line (KeyID bits included: the alias to flush).
    Flush(PhysAddr),
    /// Store 64 zero bytes to this line (KeyID included).
    ZeroLine(PhysAddr),
    /// PCONFIG, retried up to `retries` times on DEVICE_BUSY or ENTROPY_ERROR.
    Pconfig {
        /// The call.
        call: Box<PconfigCall>,
        /// Retries allowed.
        retries: u32,
    },
}

/// A system call between [`Kernel::begin`] and [`Kernel::finish`].
#[derive(Debug)]
pub struct Syscall {
    /// The work to do, in order.
    pub steps: Vec<KernelStep>,
    // The kernel's private continuation.
    pending: Pending,
}

#[derive(Debug)]
struct Pending {
    /// The call's place in begin order.
    seq: u64,
    /// Its name, for statistics.
    call: &'static str,
    outcome: Outcome,
}

#[derive(Debug)]
enum Outcome {
    /// Failed at begin (or nothing to commit beyond the value).
    Done(Result<u64, Errno>),
    /// State to commit at finish.
    Work(Box<Work>),
}

/// What a call commits at finish. Its PCONFIG steps are, in order: the programming of `add`
/// (if any), then one CLEAR_KEY per `releases` entry.
#[derive(Debug, Default)]
struct Work {
    /// The value returned on success (`add` overrides it with the serial).
    ret: u64,
    /// Pages whose visible entry becomes this (`None`: unmapped).
    pages: Vec<(PageKey, Option<PageState>)>,
    /// Frames whose direct-map entry is removed (`true`) or restored (`false`).
    direct: Vec<(u64, bool)>,
    /// Frames to return to the free list, in the order they should come back.
    free_frames: Vec<u64>,
    /// A key being added.
    add: Option<PendingAdd>,
    /// KeyIDs released (each with a CLEAR_KEY step), in step order.
    releases: Vec<KeyId>,
    /// Pages to shoot down.
    shootdown: Vec<VirtAddr>,
}

#[derive(Debug)]
struct PendingAdd {
    keyid: KeyId,
    name: String,
    key_type: KeyType,
    owner: ProcessId,
}

/// What a finished system call returned, and the virtual pages (4 KiB-aligned addresses) whose
/// translation changed: every core's TLB must drop them.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SyscallEnd {
    /// The return value or error.
    pub result: Result<u64, Errno>,
    /// Pages to shoot down.
    pub shootdown: Vec<VirtAddr>,
}

/// One key of the key service, for reports.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct KeyInfo {
    /// Its name.
    pub name: String,
    /// Its serial.
    pub serial: u64,
    /// Its hardware KeyID (while it holds one).
    pub keyid: Option<KeyId>,
    /// `cpu`, `user`, `no-encrypt` or `clear`.
    pub key_type: &'static str,
    /// `assigned`, `invalidated` (KeyID still referenced) or `released`.
    pub state: &'static str,
    /// Pages that reference its KeyID.
    pub pages: u64,
    /// The process that added it.
    pub owner: ProcessId,
    /// The other processes that may view (use) it, in the order they were granted it.
    pub viewers: Vec<ProcessId>,
}

/// A user page: its process and its address.
type PageKey = (ProcessId, VirtAddr);

/// One user page: what the latest begun call made of it, and what the page walk shows.
#[derive(Clone, Debug, Default)]
struct Page {
    /// After every begun call (what later calls check against).
    logical: Option<PageState>,
    /// After every finished call (what [`Kernel::walk`] shows).
    visible: Option<PageState>,
    /// The begin order of the call that set `visible`.
    seq: u64,
    /// Begun, unfinished calls that will set `visible`.
    pending: u32,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
struct PageState {
    /// DRAM address of the frame.
    frame: u64,
    keyid: KeyId,
    prot: Prot,
    /// (file id, page index) for page-cache pages; `None`: anonymous.
    file: Option<(u32, u64)>,
}

/// A frame whose direct-map entry was changed by a finished call.
#[derive(Copy, Clone, Debug)]
struct DirectEntry {
    unmapped: bool,
    seq: u64,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum KeyState {
    Assigned,
    Invalidated,
    Released,
}

impl KeyState {
    const fn name(self) -> &'static str {
        match self {
            KeyState::Assigned => "assigned",
            KeyState::Invalidated => "invalidated",
            KeyState::Released => "released",
        }
    }
}

#[derive(Clone, Debug)]
struct KeyRecord {
    name: String,
    serial: u64,
    key_type: KeyType,
    keyid: Option<KeyId>,
    state: KeyState,
    /// Pages referencing the KeyID (as of every begun call).
    pages: u64,
    /// The process that added it.
    owner: ProcessId,
    /// Other processes it lets view it (`keyctl(KEYCTL_SETPERM)`), in the order granted.
    viewers: Vec<ProcessId>,
}

/// A hardware KeyID of the pool (mktme-facts.md 5.3's `mktme_keyid_state`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Slot {
    /// KEYID_AVAILABLE.
    Available,
    /// Reserved for a key being programmed (its name).
    Programming(String),
    /// KEYID_ASSIGNED to key `keys[i]` (assigned, or invalidated with references left).
    Assigned(usize),
    /// Its last reference is gone; a CLEAR_KEY is in flight (KEYID_REF_RELEASED).
    Releasing(usize),
}

#[derive(Clone, Debug)]
struct InFlight {
    core: CoreId,
    since: Cycle,
    call: &'static str,
}

#[derive(Clone, Debug, Default)]
struct Counters {
    syscalls: BTreeMap<&'static str, u64>,
    errors: BTreeMap<&'static str, u64>,
    flush_lines: u64,
    zeroed_lines: u64,
    pconfig_steps: u64,
    program_failures: u64,
    clear_key_failures: u64,
    shootdown_pages: u64,
}

/// The kernel.
#[derive(Debug)]
pub struct Kernel {
    config: KernelConfig,
    layout: AddressLayout,
    /// Bytes of DRAM the direct map covers.
    direct_map_bytes: u64,
    frames: Frames,
    /// User pages by process and page address.
    pages: BTreeMap<PageKey, Page>,
    /// File names by file id.
    files: Vec<String>,
    file_ids: BTreeMap<String, u32>,
    /// (file id, page index) -> frame.
    page_cache: BTreeMap<(u32, u64), u64>,
    /// Frames whose direct-map entry was ever changed.
    direct_map: BTreeMap<u64, DirectEntry>,
    /// Every key added, in order.
    keys: Vec<KeyRecord>,
    /// The latest key of each name.
    key_by_name: BTreeMap<String, usize>,
    /// KeyIDs 1..=N: `slots[keyid - 1]`.
    slots: Vec<Slot>,
    next_serial: u64,
    /// Calls begun so far.
    seq: u64,
    in_flight: BTreeMap<u64, InFlight>,
    counters: Counters,
}

/// The direct-map address of DRAM address `dram`, which the caller has checked is below the
/// direct map's size (so below [`DIRECT_MAP_SPAN`]: no wrap past the top of the address space).
fn direct_map_addr(dram: u64) -> VirtAddr {
    DIRECT_MAP_BASE.wrapping_add(dram)
}

fn config_error(field: &'static str, problem: String) -> KernelConfigError {
    KernelConfigError { field, problem }
}

const fn call_name(call: &KernelCall) -> &'static str {
    match call {
        KernelCall::AddKey { .. } => CALL_NAMES[0],
        KernelCall::InvalidateKey { .. } => CALL_NAMES[1],
        KernelCall::ShareKey { .. } => CALL_NAMES[2],
        KernelCall::Mmap { .. } => CALL_NAMES[3],
        KernelCall::Munmap { .. } => CALL_NAMES[4],
        KernelCall::Mprotect { .. } => CALL_NAMES[5],
        KernelCall::EncryptMprotect { .. } => CALL_NAMES[6],
    }
}

impl Kernel {
    /// A booted kernel: an empty address space, all DRAM in the direct map, every KeyID free.
    ///
    /// `dram_bytes` is the DRAM installed and `max_keys` the machine's MK_TME_MAX_KEYS. The
    /// frames must be page-aligned, non-empty and inside DRAM (and inside what the layout and
    /// the direct map can address); `keyids`, when given, must be in 1..=`max_keys`.
    pub fn new(
        config: &KernelConfig,
        layout: AddressLayout,
        dram_bytes: u64,
        max_keys: u16,
    ) -> Result<Kernel, KernelConfigError> {
        let direct_map_bytes = dram_bytes.min(layout.dram_bytes()).min(DIRECT_MAP_SPAN);
        let (base, bytes) = (config.frames_base, config.frames_bytes);
        if !base.is_multiple_of(PAGE) {
            return Err(config_error(
                "frames_base",
                format!("{base:#x} is not page-aligned (4096)"),
            ));
        }
        if bytes == 0 || !bytes.is_multiple_of(PAGE) {
            return Err(config_error(
                "frames_bytes",
                format!("{bytes:#x} is not a non-zero multiple of 4096"),
            ));
        }
        if base >= direct_map_bytes {
            return Err(config_error(
                "frames_base",
                format!("{base:#x} is beyond the {direct_map_bytes:#x} bytes of DRAM"),
            ));
        }
        if base
            .checked_add(bytes)
            .is_none_or(|end| end > direct_map_bytes)
        {
            return Err(config_error(
                "frames_bytes",
                format!(
                    "frames {base:#x} + {bytes:#x} end beyond the {direct_map_bytes:#x} bytes of \
                     DRAM"
                ),
            ));
        }
        if max_keys > layout.max_keyid() {
            return Err(config_error(
                "keyids",
                format!(
                    "the machine's max_keys = {max_keys} does not fit its {} KeyID bits",
                    layout.keyid_bits()
                ),
            ));
        }
        let keyids = match config.keyids {
            None => max_keys,
            Some(0) => return Err(config_error("keyids", "must be at least 1".to_owned())),
            Some(k) if k > max_keys => {
                return Err(config_error(
                    "keyids",
                    format!("{k} is more than the machine's max_keys = {max_keys}"),
                ));
            }
            Some(k) => k,
        };
        Ok(Kernel {
            config: config.clone(),
            layout,
            direct_map_bytes,
            frames: Frames::new(base, bytes),
            pages: BTreeMap::new(),
            files: Vec::new(),
            file_ids: BTreeMap::new(),
            page_cache: BTreeMap::new(),
            direct_map: BTreeMap::new(),
            keys: Vec::new(),
            key_by_name: BTreeMap::new(),
            slots: vec![Slot::Available; usize::from(keyids)],
            next_serial: FIRST_SERIAL,
            seq: 0,
            in_flight: BTreeMap::new(),
            counters: Counters::default(),
        })
    }

    /// The configuration it booted with.
    pub fn config(&self) -> &KernelConfig {
        &self.config
    }

    /// N: the key service hands out KeyIDs 1..=N.
    pub fn keyid_pool(&self) -> u16 {
        self.slots.len() as u16
    }

    /// Calls begun and not yet finished.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The page walk of process 0 (see [`Kernel::walk_in`]).
    pub fn walk(&self, va: VirtAddr) -> Result<Pte, FaultKind> {
        self.walk_in(ProcessId(0), va)
    }

    /// The page walk: the entry for `va` in `process`'s page tables (user addresses, and the
    /// direct map at [`crate::program::DIRECT_MAP_BASE`], which every process shares).
    pub fn walk_in(&self, process: ProcessId, va: VirtAddr) -> Result<Pte, FaultKind> {
        if va < USER_SPACE_END {
            let state = self
                .pages
                .get(&(process, va.page_base()))
                .and_then(|p| p.visible)
                .ok_or(FaultKind::NotMapped)?;
            return Ok(Pte {
                frame: self.pa(state.keyid, state.frame),
                prot: state.prot,
                kernel_only: false,
            });
        }
        let Some(offset) = va.checked_offset_from(DIRECT_MAP_BASE) else {
            return Err(FaultKind::NotMapped);
        };
        if offset >= self.direct_map_bytes {
            return Err(FaultKind::NotMapped);
        }
        let frame = DramAddr::new(offset).page_base().raw();
        if self.direct_unmapped(frame) {
            return Err(FaultKind::DirectMapUnmapped);
        }
        Ok(Pte {
            frame: self.pa(KeyId::TME, frame),
            prot: Prot::READ_WRITE,
            kernel_only: true,
        })
    }

    /// The direct-map address of the frame behind user address `user_va` of process 0 (see
    /// [`Kernel::direct_map_of_in`]).
    pub fn direct_map_of(&self, user_va: VirtAddr) -> Result<VirtAddr, Fault> {
        self.direct_map_of_in(ProcessId(0), user_va)
    }

    /// The direct-map address of the frame behind user address `user_va` of `process`.
    pub fn direct_map_of_in(
        &self,
        process: ProcessId,
        user_va: VirtAddr,
    ) -> Result<VirtAddr, Fault> {
        let not_mapped = Fault {
            addr: user_va,
            kind: FaultKind::NotMapped,
        };
        if user_va >= USER_SPACE_END {
            return Err(not_mapped);
        }
        let state = self
            .pages
            .get(&(process, user_va.page_base()))
            .and_then(|p| p.visible)
            .ok_or(not_mapped)?;
        // frame + offset < direct_map_bytes: inside the direct map.
        Ok(direct_map_addr(state.frame + user_va.page_offset()))
    }

    /// First half of a system call made by `core` at `now`.
    pub fn begin(
        &mut self,
        now: Cycle,
        core: CoreId,
        credentials: Credentials,
        call: &KernelCall,
    ) -> Syscall {
        self.seq += 1;
        let seq = self.seq;
        let name = call_name(call);
        self.in_flight.insert(
            seq,
            InFlight {
                core,
                since: now,
                call: name,
            },
        );
        let process = credentials.process;
        let begun = match call {
            KernelCall::AddKey { name, payload } => self.begin_add_key(credentials, name, payload),
            KernelCall::InvalidateKey { name } => self.begin_invalidate(process, name),
            KernelCall::ShareKey {
                name,
                process: with,
            } => self.begin_share(process, name, *with),
            KernelCall::Mmap {
                addr,
                len,
                prot,
                backing,
            } => self.begin_mmap(process, *addr, *len, *prot, backing),
            KernelCall::Munmap { addr, len } => self.begin_munmap(process, *addr, *len),
            KernelCall::Mprotect { addr, len, prot } => {
                self.begin_mprotect(process, *addr, *len, *prot)
            }
            KernelCall::EncryptMprotect {
                addr,
                len,
                prot,
                key,
            } => self.begin_encrypt_mprotect(process, *addr, *len, *prot, key),
        };
        let (steps, outcome) = match begun {
            Ok((steps, work)) => (steps, Outcome::Work(Box::new(work))),
            Err(e) => (Vec::new(), Outcome::Done(Err(e))),
        };
        for step in &steps {
            match step {
                KernelStep::Flush(_) => self.counters.flush_lines += 1,
                KernelStep::ZeroLine(_) => self.counters.zeroed_lines += 1,
                KernelStep::Pconfig { .. } => self.counters.pconfig_steps += 1,
            }
        }
        Syscall {
            steps,
            pending: Pending {
                seq,
                call: name,
                outcome,
            },
        }
    }

    /// Second half: `outcomes` holds the final outcome of each [`KernelStep::Pconfig`] of the
    /// call, in order (a missing outcome counts as a failure).
    pub fn finish(&mut self, syscall: Syscall, outcomes: &[PconfigOutcome]) -> SyscallEnd {
        let Pending { seq, call, outcome } = syscall.pending;
        self.in_flight.remove(&seq);
        let (result, shootdown) = match outcome {
            Outcome::Done(result) => (result, Vec::new()),
            Outcome::Work(work) => self.commit(seq, *work, outcomes),
        };
        *self.counters.syscalls.entry(call).or_default() += 1;
        if let Err(e) = result {
            *self.counters.errors.entry(e.name()).or_default() += 1;
        }
        self.counters.shootdown_pages += shootdown.len() as u64;
        SyscallEnd { result, shootdown }
    }

    fn commit(
        &mut self,
        seq: u64,
        work: Work,
        outcomes: &[PconfigOutcome],
    ) -> (Result<u64, Errno>, Vec<VirtAddr>) {
        let mut outcomes = outcomes.iter();
        let mut result = Ok(work.ret);
        if let Some(add) = work.add {
            let ok = outcomes.next().is_some_and(PconfigOutcome::is_success);
            result = self.commit_add(add, ok);
        }
        for (key, target) in work.pages {
            let Some(page) = self.pages.get_mut(&key) else {
                continue;
            };
            page.pending = page.pending.saturating_sub(1);
            // A later-begun call that finished first has the last word.
            if seq >= page.seq {
                page.visible = target;
                page.seq = seq;
            }
            if page.logical.is_none() && page.visible.is_none() && page.pending == 0 {
                self.pages.remove(&key);
            }
        }
        for (frame, unmapped) in work.direct {
            let entry = self.direct_map.entry(frame).or_insert(DirectEntry {
                unmapped: false,
                seq: 0,
            });
            if seq >= entry.seq {
                *entry = DirectEntry { unmapped, seq };
            }
        }
        self.frames.free_in_order(&work.free_frames);
        for keyid in work.releases {
            if !outcomes.next().is_some_and(PconfigOutcome::is_success) {
                self.counters.clear_key_failures += 1;
            }
            self.release_keyid(keyid);
        }
        (result, work.shootdown)
    }

    /// The physical address of DRAM address `dram` through `keyid`.
    fn pa(&self, keyid: KeyId, dram: u64) -> PhysAddr {
        // Frames are inside the layout's DRAM and KeyIDs at most max_keys <= max_keyid: both
        // checked at boot.
        self.layout
            .compose(keyid, DramAddr::new(dram))
            .expect("frames and KeyIDs are validated at boot")
    }

    /// Whether a frame is (as of the finished calls) unmapped from the direct map.
    fn direct_unmapped(&self, frame: u64) -> bool {
        self.direct_map.get(&frame).is_some_and(|e| e.unmapped)
    }

    /// The 64 steps that flush (or zero) a page's lines through `keyid`.
    fn line_steps(&self, steps: &mut Vec<KernelStep>, keyid: KeyId, frame: u64, zero: bool) {
        steps.extend((0..LINES).map(|i| {
            let pa = self.pa(keyid, frame + i * LINE);
            if zero {
                KernelStep::ZeroLine(pa)
            } else {
                KernelStep::Flush(pa)
            }
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::Backing;

    fn kernel() -> Kernel {
        Kernel::new(
            &KernelConfig::default(),
            AddressLayout::default(),
            16 << 30,
            63,
        )
        .unwrap()
    }

    fn run(k: &mut Kernel, call: KernelCall) -> SyscallEnd {
        let syscall = k.begin(Cycle::ZERO, CoreId::new(0), Credentials::default(), &call);
        let n = syscall
            .steps
            .iter()
            .filter(|s| matches!(s, KernelStep::Pconfig { .. }))
            .count();
        let ok = PconfigOutcome::Status(mem_ctrl::pconfig::PconfigStatus::Success);
        k.finish(syscall, &vec![ok; n])
    }

    /// Issue 15, finding 2: an mmap of 15 GiB (with frames enough for it) or 64 GiB queued
    /// one zeroing step per line up front (4.9 GB; 64 GiB failed to allocate). Above
    /// [`MMAP_BYTES_MAX`], or past [`MAPPED_PAGES_MAX`] pages mapped, it now fails with ENOMEM
    /// before anything is queued or mapped.
    #[test]
    fn a_huge_mmap_fails_with_enomem_before_queueing_anything() {
        let config = KernelConfig {
            frames_base: 1 << 30,
            frames_bytes: 62 << 30,
            ..KernelConfig::default()
        };
        let mut k = Kernel::new(&config, AddressLayout::default(), 64 << 30, 63).unwrap();
        for len in [15 << 30, 64 << 30, MMAP_BYTES_MAX + PAGE] {
            let call = KernelCall::Mmap {
                addr: VirtAddr::new(1 << 32),
                len,
                prot: Prot::READ_WRITE,
                backing: Backing::Anonymous,
            };
            let syscall = k.begin(Cycle::ZERO, CoreId::new(0), Credentials::default(), &call);
            assert!(syscall.steps.is_empty(), "len {len:#x}");
            assert_eq!(k.finish(syscall, &[]).result, Err(Errno::Enomem));
            assert!(k.pages.is_empty());
            assert_eq!(k.frames.in_use(), 0);
        }
        // The limit on pages mapped at once counts every process's pages.
        let mapped = |k: &mut Kernel, at: u64, len: u64| {
            let call = KernelCall::Mmap {
                addr: VirtAddr::new(at),
                len,
                prot: Prot::READ_WRITE,
                backing: Backing::File {
                    name: "f".into(),
                    offset: 0,
                },
            };
            run(k, call).result
        };
        assert_eq!(mapped(&mut k, 1 << 32, 16 * PAGE), Ok(1 << 32));
        let k_pages = k.pages.len() as u64;
        k.pages.extend((0..MAPPED_PAGES_MAX - k_pages - 8).map(|i| {
            let key = (ProcessId(1), VirtAddr::new((1 << 40) + i * PAGE));
            (key, Page::default())
        }));
        assert_eq!(mapped(&mut k, 2 << 32, 16 * PAGE), Err(Errno::Enomem));
        assert_eq!(mapped(&mut k, 2 << 32, 8 * PAGE), Ok(2 << 32));
    }

    #[test]
    fn unmapped_pages_leave_no_entries_behind() {
        let mut k = kernel();
        for round in 0..3u64 {
            let addr = VirtAddr::new(0x10000 + round * 0x10_0000);
            let mmap = KernelCall::Mmap {
                addr,
                len: 8 * PAGE,
                prot: Prot::READ_WRITE,
                backing: Backing::Anonymous,
            };
            assert_eq!(run(&mut k, mmap).result, Ok(addr.raw()));
            assert_eq!(k.pages.len(), 8);
            let munmap = KernelCall::Munmap {
                addr,
                len: 8 * PAGE,
            };
            assert_eq!(run(&mut k, munmap).result, Ok(0));
            assert!(k.pages.is_empty());
            assert_eq!(k.frames.in_use(), 0);
        }
        assert!(k.in_flight.is_empty());
    }

    #[test]
    fn every_keyid_of_the_pool_is_a_slot() {
        let mut k = kernel();
        assert_eq!(k.keyid_pool(), 63);
        for i in 0..63u64 {
            let call = KernelCall::AddKey {
                name: format!("k{i}"),
                payload: "type=no-encrypt".into(),
            };
            assert_eq!(run(&mut k, call).result, Ok(FIRST_SERIAL + i));
        }
        assert!(k.slots.iter().all(|s| matches!(s, Slot::Assigned(_))));
        let call = KernelCall::AddKey {
            name: "one too many".into(),
            payload: "type=no-encrypt".into(),
        };
        assert_eq!(run(&mut k, call).result, Err(Errno::Enokey));
        assert_eq!(k.keys().last().unwrap().keyid, Some(KeyId::new(63)));
    }
}
