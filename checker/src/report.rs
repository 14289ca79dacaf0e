//! What the checker reports: rule violations, model errors, and the chain of events behind each.

use cache_model::events::{CacheId, FillCause, FlushKind, Level, RemoveCause, WritebackCause};
use sim_core::{CoreId, Cycle, DimmWrite, DramAddr, KeyId, LineBytes, MemOp};
use std::fmt;

/// The version of a DRAM line's data: which committed store produced it.
///
/// Every committed [`Store`](cache_model::CacheEvent::Store) the checker sees gets the next number
/// from one global counter, so versions order stores across all lines and aliases.
/// [`Version::INITIAL`] stands for what DRAM held before any store the checker saw (or before
/// the checker forgot the line; see [`CheckerConfig::idle_lines_max`](super::CheckerConfig)).
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Version(u64);

impl Version {
    /// The data DRAM held before any store the checker saw.
    pub const INITIAL: Version = Version(0);

    /// Wraps a raw version number (0 is [`Version::INITIAL`], stores count from 1).
    pub const fn new(raw: u64) -> Version {
        Version(raw)
    }

    /// The raw version number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// What went wrong, one kind per aliasing rule (mktme-facts.md 4.1).
///
/// Every kind is a fact about the run, decided from events alone; see `docs/coherency-checker.md`
/// for the rule each guards and its source.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum ViolationKind {
    /// Two aliases of one DRAM line hold unwritten (dirty) data at once. Reported when the
    /// second alias becomes dirty: a store, or a dirty fill.
    DualDirty,
    /// A write-back to memory replaced newer data that another alias had written back: the
    /// written data's version is older than the version memory held.
    DataLoss,
    /// A load through one alias returned data older than a committed store through another.
    StaleRead,
    /// PCONFIG reprogrammed a KeyID that still had lines cached (or dirty data on its way to
    /// memory).
    ReprogramWhileCached,
    /// A line became dirty, or was written back, without a committed store having dirtied it.
    PhantomDirty,
}

impl ViolationKind {
    /// Every kind, in declaration order (the order of [`ViolationKind::index`]).
    pub const ALL: [ViolationKind; 5] = [
        ViolationKind::DualDirty,
        ViolationKind::DataLoss,
        ViolationKind::StaleRead,
        ViolationKind::ReprogramWhileCached,
        ViolationKind::PhantomDirty,
    ];

    /// A stable snake_case name for reports: `dual_dirty`, `data_loss`, `stale_read`,
    /// `reprogram_while_cached`, `phantom_dirty`.
    pub const fn name(self) -> &'static str {
        match self {
            ViolationKind::DualDirty => "dual_dirty",
            ViolationKind::DataLoss => "data_loss",
            ViolationKind::StaleRead => "stale_read",
            ViolationKind::ReprogramWhileCached => "reprogram_while_cached",
            ViolationKind::PhantomDirty => "phantom_dirty",
        }
    }

    /// Position in [`ViolationKind::ALL`], for per-kind tables.
    pub const fn index(self) -> usize {
        match self {
            ViolationKind::DualDirty => 0,
            ViolationKind::DataLoss => 1,
            ViolationKind::StaleRead => 2,
            ViolationKind::ReprogramWhileCached => 3,
            ViolationKind::PhantomDirty => 4,
        }
    }

    /// The rule this kind guards, with its source.
    pub const fn rule(self) -> &'static str {
        match self {
            ViolationKind::DualDirty => {
                "if several KeyIDs of a page must be writable, do all writes through one KeyID \
                 (TME-MK spec rev 1.3 sec. 7, aliasing guideline 3; mktme-facts.md 4.1)"
            }
            ViolationKind::DataLoss => {
                "flush the old KeyID's dirty lines (CLFLUSH, CLWB/CLFLUSHOPT + fence, or WBINVD) \
                 before a page takes another KeyID, to prevent alias overwriting and data \
                 corruption (TME-MK spec rev 1.3 sec. 7, EvictPage step 4; mktme-facts.md 4.1)"
            }
            ViolationKind::StaleRead => {
                "every KeyID switch needs an invalidating flush: stale clean alias lines keep \
                 satisfying reads until invalidated (mktme-facts.md 4.1; Linux \
                 __prep_encrypted_page and free_encrypted_page flush on both allocation and free)"
            }
            ViolationKind::ReprogramWhileCached => {
                "PCONFIG does not touch caches: flush all lines of a KeyID before reprogramming \
                 its key (mktme-facts.md 4.1; ISE PCONFIG)"
            }
            ViolationKind::PhantomDirty => {
                "speculative loads and prefetches fill lines clean; only a committed store makes \
                 a line dirty, so CPUs with MKTME never write back speculatively established \
                 lines (mktme-facts.md 4.1; Dave Hansen on the MKTME RFC v2, seed 000)"
            }
        }
    }
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The two lines of a [`ViolationKind::DataLoss`]: what memory held and what replaced it.
///
/// The whole lost line is gone, not only the bytes that differ: memory now holds the writer's
/// plaintext encrypted under the writer's key, so reading it back through the lost alias's key
/// yields garbage everywhere.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LostData {
    /// The alias whose write-back was overwritten.
    pub lost_keyid: KeyId,
    /// The version of the lost data.
    pub lost_version: Version,
    /// The plaintext `lost_keyid` had written back: the bytes lost.
    pub lost_bytes: LineBytes,
    /// The alias whose older data overwrote it.
    pub writer_keyid: KeyId,
    /// The version of the data written: older than `lost_version`, which is what makes this a
    /// loss (or equal, when `writer_garbled`).
    pub writer_version: Version,
    /// False when the written data was not the writer's newest (a non-inclusive hierarchy can
    /// write back an older copy of a line while a newer one stays cached); `writer_version` is
    /// the older copy's own version all the same, known from the store stamp it carries.
    pub writer_current: bool,
    /// The writer's copy was read from memory, unmodified since, under the writer's previous
    /// key: PCONFIG changed the key while it was cached. Written back, it re-encrypts to other
    /// ciphertext than memory held, so even data as recent as memory's destroys it.
    pub writer_garbled: bool,
    /// The plaintext written back: the bytes that overwrote `lost_bytes`.
    pub written_bytes: LineBytes,
    /// Dirty data still in the caches at the time of the loss that, written back, would put
    /// the lost data back or supersede it: the alias and version (the newest such). Either a
    /// store newer than the lost data, not yet written back, or an unmodified dirty copy (under
    /// the `writeback_speculative_lines` knob) read from memory while it held the lost data,
    /// which re-encrypts to the same ciphertext. If that write-back comes last, memory ends up
    /// right and the loss shows only to reads in between.
    ///
    /// `None`: the checker knows of no such data, so the loss stands unless a later store
    /// replaces the data. This is a hint, not a proof. The checker tracks one state per alias.
    /// A hierarchy with non-inclusive levels can hold a second dirty copy of an alias after
    /// its newest data has reached memory. A later, redundant write-back of that copy can also
    /// put the lost data back, and that is not foreseen.
    pub recoverable_by: Option<(KeyId, Version)>,
}

/// One step of the history behind a violation: an event on the violation's DRAM line.
///
/// Every alias of the line shares one history; `keyid` says which alias the event concerned.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ChainEntry {
    /// When it happened.
    pub cycle: Cycle,
    /// The alias (KeyID) the event went through; for PCONFIG, the KeyID programmed; for an
    /// attack on the bus or the DIMMs, which sees no KeyID, KeyID 0 (not shown).
    pub keyid: KeyId,
    /// What happened.
    pub event: ChainEvent,
    /// The data version the event involved, as the checker understood it: the version a
    /// store created, a load returned, a write-back wrote or a memory read found; for fills and
    /// removals, the alias's version. `None` for flush instructions and PCONFIG.
    pub version: Option<Version>,
}

/// The part of a [`CacheEvent`](cache_model::CacheEvent) a chain keeps (the line is the violation's,
/// the KeyID is in the entry; data bytes are left out to keep histories small).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum ChainEvent {
    /// A copy arrived in a cache.
    Fill {
        /// Which cache.
        cache: CacheId,
        /// Why.
        cause: FillCause,
        /// Dirty on arrival.
        dirty: bool,
    },
    /// A copy left a cache.
    Remove {
        /// Which cache.
        cache: CacheId,
        /// Why.
        cause: RemoveCause,
        /// Whether it was dirty.
        dirty: bool,
    },
    /// A committed load.
    Load {
        /// Which core.
        core: CoreId,
        /// First byte.
        offset: u8,
        /// Bytes loaded.
        len: u8,
        /// The level that supplied it (`None`: memory).
        from: Option<Level>,
    },
    /// A committed store.
    Store {
        /// Which core.
        core: CoreId,
        /// First byte.
        offset: u8,
        /// Bytes written.
        len: u8,
    },
    /// A read request to memory.
    MemRead {
        /// Why.
        cause: FillCause,
    },
    /// A write-back to memory.
    MemWriteback {
        /// Why.
        cause: WritebackCause,
        /// Whether a committed store had dirtied the line (the model's claim).
        dirtied_by_store: bool,
    },
    /// A cache-control instruction on this line started.
    FlushStart {
        /// Which core.
        core: CoreId,
        /// Which instruction.
        kind: FlushKind,
    },
    /// A cache-control instruction on this line completed.
    FlushDone {
        /// Which core.
        core: CoreId,
        /// Which instruction.
        kind: FlushKind,
    },
    /// PCONFIG programmed a new key for the entry's KeyID (recorded only on lines that had
    /// copies under that KeyID).
    Pconfig,
    /// An attacker wrote the line's DIMM cells ([`sim_core::MemEvent::DimmWritten`]).
    DimmWritten {
        /// What was written.
        by: DimmWrite,
    },
    /// A probe on the DIMM bus changed the bytes of a transfer of the line
    /// ([`sim_core::MemEvent::BusRewritten`]).
    BusRewritten {
        /// Read or write.
        op: MemOp,
    },
    /// A faulty DIMM took an access to `addr` to the cells of `cells`
    /// ([`sim_core::MemEvent::DimmAlias`]); recorded on both lines.
    DimmAlias {
        /// The line addressed.
        addr: DramAddr,
        /// The line whose cells were used.
        cells: DramAddr,
        /// Read or write.
        op: MemOp,
    },
}

impl ChainEvent {
    /// Whether the event is an attack on the bus or the DIMMs (no alias went through it).
    pub const fn is_attack(&self) -> bool {
        matches!(
            self,
            ChainEvent::DimmWritten { .. }
                | ChainEvent::BusRewritten { .. }
                | ChainEvent::DimmAlias { .. }
        )
    }
}

/// A broken aliasing rule, with what the checker knows about how it came about.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Violation {
    /// Which rule.
    pub kind: ViolationKind,
    /// The cycle of the event that broke it.
    pub cycle: Cycle,
    /// The DRAM line (KeyID bits stripped): the first byte of the line.
    pub line: DramAddr,
    /// The KeyIDs involved, the acting alias first: the alias that became dirty, wrote back,
    /// loaded, or was reprogrammed, then the other aliases involved in ascending order.
    pub keyids: Vec<KeyId>,
    /// For [`ViolationKind::DataLoss`]: the bytes lost and the bytes that replaced them.
    pub lost: Option<Box<LostData>>,
    /// The most recent events on this DRAM line through any alias, oldest first, ending with
    /// the event that broke the rule; at most
    /// [`CheckerConfig::chain_events_max`](super::CheckerConfig) entries.
    pub chain: Vec<ChainEntry>,
    /// For [`ViolationKind::StaleRead`]: how many later loads through the same alias returned
    /// the same stale data again (they are counted here instead of reported one by one).
    pub repeats: u64,
    /// One line for humans: what happened and why it breaks the rule.
    pub explanation: String,
}

/// A consistency check that failed because the *model* misbehaved, not the simulated program.
///
/// These never mix with [`Violation`]s: a model error means the events contradict each other
/// (or the event contract of [`cache_model::events`]), so the checker's conclusions about the line
/// may be off too.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ModelError {
    /// The cycle of the contradicting event.
    pub cycle: Cycle,
    /// The DRAM line concerned (KeyID bits stripped, as in every other report entry); `None`
    /// for a key change of a KeyID the layout cannot name.
    pub line: Option<DramAddr>,
    /// The KeyID (alias) whose event contradicted the others.
    pub keyid: KeyId,
    /// Which check failed.
    pub kind: ModelErrorKind,
    /// What was seen and what was expected.
    pub detail: String,
}

/// The model consistency checks.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum ModelErrorKind {
    /// A `Remove` of a copy that no `Fill` put in that cache (or that was already removed).
    RemoveWithoutFill,
    /// A load returned bytes other than the alias's current data (its newest store, or what it
    /// last wrote back and read again under the same key) while the alias stayed cached.
    LoadDataMismatch,
    /// A store changed bytes outside the range it wrote, or merged into bytes other than the
    /// alias's current data.
    StoreMergeMismatch,
    /// A store's stamp is not after the previous store's: the hierarchy must number committed
    /// stores in the order it applies them.
    StoreStampOutOfOrder,
    /// A write-back carried the alias's current store stamp but other bytes than the alias's
    /// current data.
    WritebackDataMismatch,
    /// An alias with no cached copy and no pending write-back was filled without a `MemRead`
    /// before it and without a copy leaving another cache in the same cycle: the data came
    /// from nowhere the events show.
    FillWithoutSource,
    /// A `MemWriteback` claimed `dirtied_by_store` for an alias no committed store went
    /// through.
    WritebackWithoutStore,
    /// An alias wrote back data older than what it had itself written back before: the
    /// hierarchy held two different versions of one alias.
    WritebackRegression,
    /// A key change for a KeyID the address layout cannot name.
    KeyChangeKeyIdOutOfRange,
}

impl ModelErrorKind {
    /// A stable snake_case name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            ModelErrorKind::RemoveWithoutFill => "remove_without_fill",
            ModelErrorKind::LoadDataMismatch => "load_data_mismatch",
            ModelErrorKind::StoreMergeMismatch => "store_merge_mismatch",
            ModelErrorKind::StoreStampOutOfOrder => "store_stamp_out_of_order",
            ModelErrorKind::WritebackDataMismatch => "writeback_data_mismatch",
            ModelErrorKind::FillWithoutSource => "fill_without_source",
            ModelErrorKind::WritebackWithoutStore => "writeback_without_store",
            ModelErrorKind::WritebackRegression => "writeback_regression",
            ModelErrorKind::KeyChangeKeyIdOutOfRange => "key_change_keyid_out_of_range",
        }
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "model error {} at cycle {}",
            self.kind.name(),
            self.cycle.get()
        )?;
        if let Some(line) = self.line {
            write!(f, ", DRAM line {:#x}", line.raw())?;
        }
        write!(f, ", KeyID {}: {}", self.keyid, self.detail)
    }
}

/// `core 0 l1d`, `core 3 l2`, `llc`.
pub(crate) fn cache_name(cache: CacheId) -> String {
    match cache.core {
        Some(core) => format!("core {} {}", core.get(), cache.level.name()),
        None => cache.level.name().to_string(),
    }
}

pub(crate) const fn fill_cause_name(cause: FillCause) -> &'static str {
    match cause {
        FillCause::Load => "load",
        FillCause::Store => "store",
        FillCause::Prefetch => "prefetch",
        FillCause::Speculative => "speculative",
        FillCause::InnerWriteback => "inner write-back",
    }
}

const fn remove_cause_name(cause: RemoveCause) -> &'static str {
    match cause {
        RemoveCause::Evicted => "evicted",
        RemoveCause::CoherenceInvalidation => "coherence invalidation",
        RemoveCause::BackInvalidation => "back-invalidation",
        RemoveCause::Flush => "flush",
        RemoveCause::Wbinvd => "wbinvd",
        RemoveCause::AliasEviction => "alias eviction",
    }
}

pub(crate) const fn writeback_cause_name(cause: WritebackCause) -> &'static str {
    match cause {
        WritebackCause::Eviction => "eviction",
        WritebackCause::Flush => "flush",
        WritebackCause::Clwb => "clwb",
        WritebackCause::Wbinvd => "wbinvd",
        WritebackCause::AliasEviction => "alias eviction",
        WritebackCause::Drain => "drain",
    }
}

const fn flush_kind_name(kind: FlushKind) -> &'static str {
    match kind {
        FlushKind::Clflush => "CLFLUSH",
        FlushKind::Clflushopt => "CLFLUSHOPT",
        FlushKind::Clwb => "CLWB",
        FlushKind::Wbinvd => "WBINVD",
    }
}

const fn op_name(op: MemOp) -> &'static str {
    match op {
        MemOp::Read => "read",
        MemOp::Write => "write",
    }
}

const fn clean_or_dirty(dirty: bool) -> &'static str {
    if dirty { "dirty" } else { "clean" }
}

impl fmt::Display for ChainEntry {
    /// One line: `cycle 120: KeyID 1 store by core 0 to bytes 0..8 [v3]`; an attack names no
    /// KeyID: `cycle 900: attacker wrote the DIMM cells: a replay of the ciphertext recorded at
    /// cycle 400`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cycle {}: ", self.cycle.get())?;
        if !self.event.is_attack() {
            write!(f, "KeyID {} ", self.keyid)?;
        }
        match self.event {
            ChainEvent::Fill {
                cache,
                cause,
                dirty,
            } => write!(
                f,
                "fill into {} ({}), {}",
                cache_name(cache),
                fill_cause_name(cause),
                clean_or_dirty(dirty)
            )?,
            ChainEvent::Remove {
                cache,
                cause,
                dirty,
            } => write!(
                f,
                "removed from {} ({}), {}",
                cache_name(cache),
                remove_cause_name(cause),
                clean_or_dirty(dirty)
            )?,
            ChainEvent::Load {
                core,
                offset,
                len,
                from,
            } => write!(
                f,
                "load by core {} of bytes {}..{} from {}",
                core.get(),
                offset,
                u16::from(offset) + u16::from(len),
                from.map_or("memory", Level::name)
            )?,
            ChainEvent::Store { core, offset, len } => write!(
                f,
                "store by core {} to bytes {}..{}",
                core.get(),
                offset,
                u16::from(offset) + u16::from(len)
            )?,
            ChainEvent::MemRead { cause } => {
                write!(f, "memory read ({})", fill_cause_name(cause))?;
            }
            ChainEvent::MemWriteback {
                cause,
                dirtied_by_store,
            } => {
                write!(f, "write-back to memory ({})", writeback_cause_name(cause))?;
                if !dirtied_by_store {
                    f.write_str(", not dirtied by a store")?;
                }
            }
            ChainEvent::FlushStart { core, kind } => {
                write!(f, "{} by core {} starts", flush_kind_name(kind), core.get())?;
            }
            ChainEvent::FlushDone { core, kind } => {
                write!(
                    f,
                    "{} by core {} completes",
                    flush_kind_name(kind),
                    core.get()
                )?;
            }
            ChainEvent::Pconfig => f.write_str("PCONFIG programs a new key")?,
            ChainEvent::DimmWritten { by } => write!(f, "attacker wrote the DIMM cells: {by}")?,
            ChainEvent::BusRewritten { op } => write!(
                f,
                "a probe on the DIMM bus rewrote a {} of the line",
                op_name(op)
            )?,
            ChainEvent::DimmAlias { addr, cells, op } => write!(
                f,
                "the faulty DIMM took a {} of {:#x} to the cells of {:#x}",
                op_name(op),
                addr.raw(),
                cells.raw()
            )?,
        }
        if let Some(version) = self.version {
            write!(f, " [{version}]")?;
        }
        Ok(())
    }
}

struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Violation {
    /// A multi-line report: the kind, cycle, line and KeyIDs, the explanation, the bytes for a
    /// data loss, and the chain, oldest first.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at cycle {}, DRAM line {:#x}, KeyIDs ",
            self.kind,
            self.cycle.get(),
            self.line.raw()
        )?;
        for (i, keyid) in self.keyids.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{keyid}")?;
        }
        writeln!(f)?;
        writeln!(f, "  {}", self.explanation)?;
        if self.repeats > 0 {
            writeln!(
                f,
                "  {} more load(s) returned the same stale data",
                self.repeats
            )?;
        }
        if let Some(lost) = &self.lost {
            if let Some((keyid, version)) = lost.recoverable_by {
                writeln!(
                    f,
                    "  recoverable: KeyID {keyid} still holds dirty data {version}, which would put \
                     it back or supersede it"
                )?;
            }
            writeln!(
                f,
                "  lost    (KeyID {}, {}): {}",
                lost.lost_keyid,
                lost.lost_version,
                Hex(&lost.lost_bytes)
            )?;
            writeln!(
                f,
                "  written (KeyID {}, {}{}{}): {}",
                lost.writer_keyid,
                if lost.writer_current {
                    ""
                } else {
                    "older copy "
                },
                lost.writer_version,
                if lost.writer_garbled { ", garbled" } else { "" },
                Hex(&lost.written_bytes)
            )?;
        }
        writeln!(f, "  chain, oldest first:")?;
        for entry in &self.chain {
            writeln!(f, "    {entry}")?;
        }
        Ok(())
    }
}
