//! What the coherent hierarchy tells its observers, and the observer interface.
//!
//! The coherency checker (and any other watcher: a tracer, a statistics collector) sits beside
//! the model and learns what happens only through these events; it never reads or changes the
//! model's state. The hierarchy emits an event at the cycle the thing happens, in the order it
//! happens (same-cycle events in the order the model applied them).
//!
//! Addresses are physical line addresses with their KeyID bits ([`LineAddr`]): the same DRAM
//! line under two KeyIDs is two lines here too. Observers that need the DRAM line slice it with
//! [`sim_core::AddressLayout`].
//!
//! ```text
//!   core ── Load/Store/Flush ──► L1D ─► L2 ─► LLC (+ directory) ─► memory
//!             │                    │      │      │                  │
//!             ▼                    ▼      ▼      ▼                  ▼
//!        Load / Store         Fill / Remove at every level      MemRead / MemWriteback
//!        (committed)          (which copy, which cause)         (what crossed to memory)
//! ```

use sim_core::{CoreId, Cycle, LineAddr, LineBytes};
use std::fmt;

/// Which committed store a copy's bytes carry: the identity of data, independent of its value.
///
/// The hierarchy numbers committed stores 1, 2, 3... in the order it applies them (every
/// [`CacheEvent::Store`] carries its number), and every copy of a line carries the number of
/// the newest store merged into its bytes, or [`StoreStamp::MEMORY`] when no store touched it
/// since it came from memory. Copies move between caches and to memory with their stamp, so
/// two stores of equal bytes are told apart: an observer knows which store a write-back
/// carries without comparing bytes.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct StoreStamp(u64);

impl StoreStamp {
    /// Data as read from memory: no store since.
    pub const MEMORY: StoreStamp = StoreStamp(0);

    /// The stamp of the `n`-th committed store (1-based).
    pub const fn new(n: u64) -> StoreStamp {
        StoreStamp(n)
    }

    /// The store's number (0 for [`StoreStamp::MEMORY`]).
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The stamp after this one.
    pub const fn next(self) -> StoreStamp {
        StoreStamp(self.0 + 1)
    }
}

impl fmt::Display for StoreStamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == StoreStamp::MEMORY {
            f.write_str("memory")
        } else {
            write!(f, "store #{}", self.0)
        }
    }
}

/// A cache level.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Level {
    /// A core's private first-level data cache.
    L1d,
    /// A core's private second-level cache.
    L2,
    /// The shared last-level cache.
    Llc,
}

impl Level {
    /// `l1d`, `l2`, `llc`.
    pub const fn name(self) -> &'static str {
        match self {
            Level::L1d => "l1d",
            Level::L2 => "l2",
            Level::Llc => "llc",
        }
    }
}

/// One cache in the machine: a private level of one core, or the shared LLC.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct CacheId {
    /// The owning core; `None` for the shared LLC.
    pub core: Option<CoreId>,
    /// The level.
    pub level: Level,
}

/// Why a line was filled into a cache.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum FillCause {
    /// A committed load missed.
    Load,
    /// A store missed (read for ownership) or upgraded.
    Store,
    /// A hardware prefetcher brought it in.
    Prefetch,
    /// A load on a mispredicted path brought it in (its value was discarded).
    Speculative,
    /// A dirty line evicted from an inner level was written into this (outer) level.
    InnerWriteback,
}

/// Why a line left a cache.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum RemoveCause {
    /// Chosen as a replacement victim.
    Evicted,
    /// Invalidated by another core's write (MESI).
    CoherenceInvalidation,
    /// Invalidated because an outer inclusive level evicted it.
    BackInvalidation,
    /// CLFLUSH or CLFLUSHOPT.
    Flush,
    /// WBINVD.
    Wbinvd,
    /// The `evict_other_keyids` alias policy removed it because another KeyID's copy of the same
    /// DRAM line was filled.
    AliasEviction,
}

/// Why a line was written to memory.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum WritebackCause {
    /// A dirty victim left the last cache that held it.
    Eviction,
    /// CLFLUSH or CLFLUSHOPT of a dirty line.
    Flush,
    /// CLWB of a dirty line.
    Clwb,
    /// WBINVD.
    Wbinvd,
    /// The `evict_other_keyids` alias policy.
    AliasEviction,
    /// End of the run: the hierarchy was drained.
    Drain,
}

/// A cache-control instruction.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum FlushKind {
    /// CLFLUSH: write back if dirty, invalidate everywhere.
    Clflush,
    /// CLFLUSHOPT: the same, with weaker ordering.
    Clflushopt,
    /// CLWB: write back if dirty, may keep a clean copy.
    Clwb,
    /// WBINVD: every line of the socket.
    Wbinvd,
}

/// Something that happened in the hierarchy.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum CacheEvent {
    /// A copy of `line` now sits in `cache`. Emitted for every level a fill reaches.
    Fill {
        /// When.
        cycle: Cycle,
        /// Where.
        cache: CacheId,
        /// The line (KeyID included).
        line: LineAddr,
        /// Why.
        cause: FillCause,
        /// True when the copy is dirty on arrival (an inner level's dirty victim, or the
        /// `writeback_speculative_lines` knob marking a speculative or prefetched fill dirty).
        dirty: bool,
    },
    /// The copy of `line` in `cache` is gone.
    Remove {
        /// When.
        cycle: Cycle,
        /// Where.
        cache: CacheId,
        /// The line.
        line: LineAddr,
        /// Why.
        cause: RemoveCause,
        /// Whether the copy was dirty (its data then went outward or to memory).
        dirty: bool,
    },
    /// A core's load completed and returned `data[offset..offset + len]` (the whole line is
    /// given so observers need not keep copies).
    Load {
        /// When the value was returned.
        cycle: Cycle,
        /// Which core.
        core: CoreId,
        /// The line.
        line: LineAddr,
        /// First byte within the line.
        offset: u8,
        /// Bytes loaded (1..=64, within the line).
        len: u8,
        /// The line as the load saw it.
        data: LineBytes,
        /// The level that supplied the data (`None`: memory).
        from: Option<Level>,
    },
    /// A core's store was committed into its L1D copy: the line now holds `data`.
    Store {
        /// When the store was applied.
        cycle: Cycle,
        /// Which core.
        core: CoreId,
        /// The line.
        line: LineAddr,
        /// First byte written.
        offset: u8,
        /// Bytes written (1..=64, within the line).
        len: u8,
        /// The whole line after the store.
        data: LineBytes,
        /// The store's number (the copy now carries it).
        stamp: StoreStamp,
    },
    /// A line was requested from memory (an LLC miss, a prefetch or a speculative fill).
    MemRead {
        /// When the request left the hierarchy.
        cycle: Cycle,
        /// The line.
        line: LineAddr,
        /// Why it was needed.
        cause: FillCause,
    },
    /// A line's data (plaintext, as cached) was sent to memory.
    MemWriteback {
        /// When it left the hierarchy.
        cycle: Cycle,
        /// The line (the KeyID picks the key the controller will use).
        line: LineAddr,
        /// The bytes written.
        data: LineBytes,
        /// The newest committed store the bytes carry ([`StoreStamp::MEMORY`]: none since the
        /// data came from memory). With a non-inclusive LLC an older copy of a line can be
        /// written back while a newer one stays cached; the stamp says which.
        stamp: StoreStamp,
        /// Why.
        cause: WritebackCause,
        /// False when no committed store made this line dirty (possible only under the
        /// `writeback_speculative_lines` counterfactual knob).
        dirtied_by_store: bool,
    },
    /// A cache-control instruction started (`line` is `None` for WBINVD).
    FlushStart {
        /// When.
        cycle: Cycle,
        /// Which core.
        core: CoreId,
        /// Which instruction.
        kind: FlushKind,
        /// The line, for the per-line instructions.
        line: Option<LineAddr>,
    },
    /// A cache-control instruction completed.
    FlushDone {
        /// When.
        cycle: Cycle,
        /// Which core.
        core: CoreId,
        /// Which instruction.
        kind: FlushKind,
        /// The line, for the per-line instructions.
        line: Option<LineAddr>,
    },
}

impl CacheEvent {
    /// The cycle the event happened.
    pub fn cycle(&self) -> Cycle {
        match self {
            CacheEvent::Fill { cycle, .. }
            | CacheEvent::Remove { cycle, .. }
            | CacheEvent::Load { cycle, .. }
            | CacheEvent::Store { cycle, .. }
            | CacheEvent::MemRead { cycle, .. }
            | CacheEvent::MemWriteback { cycle, .. }
            | CacheEvent::FlushStart { cycle, .. }
            | CacheEvent::FlushDone { cycle, .. } => *cycle,
        }
    }

    /// The line the event concerns (`None` for WBINVD's start and end).
    pub fn line(&self) -> Option<LineAddr> {
        match self {
            CacheEvent::Fill { line, .. }
            | CacheEvent::Remove { line, .. }
            | CacheEvent::Load { line, .. }
            | CacheEvent::Store { line, .. }
            | CacheEvent::MemRead { line, .. }
            | CacheEvent::MemWriteback { line, .. } => Some(*line),
            CacheEvent::FlushStart { line, .. } | CacheEvent::FlushDone { line, .. } => *line,
        }
    }
}

/// Watches the hierarchy. Observers see events in the order they happen and must not assume
/// anything else about the model.
pub trait CacheObserver {
    /// Called once per event.
    fn on_event(&mut self, event: &CacheEvent);
}

/// An observer that keeps every event (for tests and traces).
#[derive(Clone, Default, Debug)]
pub struct EventLog {
    /// The events, in order.
    pub events: Vec<CacheEvent>,
}

impl CacheObserver for EventLog {
    fn on_event(&mut self, event: &CacheEvent) {
        self.events.push(event.clone());
    }
}
