//! Miss status holding registers: fixed-size tables of outstanding lines, searched by line.
//!
//! One table per private level per core and one for the LLC. An entry stays allocated from the
//! miss that opened it to the fill that closes it; later misses to the same line merge into it
//! instead of opening another. A full table refuses new lines (back-pressure).
//!
//! Entries are addressed by slot, with a generation number so that an event naming a slot can
//! assert that it still names the entry it was scheduled for.

use crate::events::FillCause;
use sim_core::{CoreId, LineAddr, LineBytes, PhysAddr, RequestId};

/// What a core request (or a hardware prefetch) is, inside the hierarchy.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Load,
    Store,
    Speculative,
    SwPrefetch,
    HwPrefetch,
}

impl Kind {
    /// Why a fill made for this kind of request happened.
    pub(crate) const fn fill_cause(self) -> FillCause {
        match self {
            Kind::Load => FillCause::Load,
            Kind::Store => FillCause::Store,
            Kind::Speculative => FillCause::Speculative,
            Kind::SwPrefetch | Kind::HwPrefetch => FillCause::Prefetch,
        }
    }

    /// Loads, stores and speculative loads: what trains prefetchers and makes a prefetch
    /// useful.
    pub(crate) const fn is_demand(self) -> bool {
        match self {
            Kind::Load | Kind::Store | Kind::Speculative => true,
            Kind::SwPrefetch | Kind::HwPrefetch => false,
        }
    }
}

/// One request in flight: a core's load, store, speculative load or software prefetch, or a
/// hardware prefetch filling into the L1D.
#[derive(Clone, Debug)]
pub(crate) struct Access {
    /// The core's tag (0 for hardware prefetches).
    pub id: u64,
    pub core: CoreId,
    pub addr: PhysAddr,
    pub kind: Kind,
    pub len: u8,
    /// Store bytes, packed at the start.
    pub data: LineBytes,
    /// Submission order, hierarchy-wide: requests waiting on one line complete in this order.
    pub seq: u64,
}

impl Access {
    pub(crate) fn line(&self) -> LineAddr {
        self.addr.line()
    }
}

/// A line outstanding at a core's L1D: the requests waiting for it, in submission order.
#[derive(Debug)]
pub(crate) struct L1Entry {
    pub line: LineAddr,
    pub reqs: Vec<Access>,
    /// A store is among the requests: the fill must bring the line in M.
    pub need_write: bool,
    /// The fill comes through an L2 MSHR entry of the same core and line (otherwise it comes
    /// from the L2, at an `L1Complete` event).
    pub attached: bool,
    /// A demand request already used the hardware prefetch that opened this entry.
    pub prefetch_used: bool,
}

impl L1Entry {
    /// Why the fill that closes the entry happens.
    pub(crate) fn cause(&self) -> FillCause {
        if self.need_write {
            FillCause::Store
        } else {
            self.reqs[0].kind.fill_cause()
        }
    }

    /// The MESI event of the fill: a store, a committed load, or a clean fill.
    pub(crate) fn acquire_kind(&self) -> AcquireKind {
        if self.need_write {
            AcquireKind::Store
        } else if self.reqs.iter().any(|a| a.kind == Kind::Load) {
            AcquireKind::Load
        } else {
            AcquireKind::Speculative
        }
    }

    /// Only a hardware prefetch wants the line: the filled copy is marked prefetched.
    pub(crate) fn hw_prefetch_only(&self) -> bool {
        self.reqs.iter().all(|a| a.kind == Kind::HwPrefetch)
    }

    /// Inserts `a` in submission order (a replayed request may be older than waiting ones).
    pub(crate) fn insert(&mut self, a: Access) {
        self.need_write |= a.kind == Kind::Store;
        let at = self.reqs.partition_point(|r| r.seq < a.seq);
        self.reqs.insert(at, a);
    }
}

/// What a fill does to the requester's MESI state.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(crate) enum AcquireKind {
    Load,
    Store,
    /// Prefetches and speculative loads: never M.
    Speculative,
}

/// A line outstanding at a core's L2: an L1D miss (or upgrade) that went beyond it, or a
/// hardware prefetch filling into the L2.
#[derive(Debug)]
pub(crate) struct L2Entry {
    pub line: LineAddr,
    /// An L1D entry of the same line waits for this one.
    pub has_l1: bool,
    /// Opened by a hardware prefetch into the L2.
    pub hw_prefetch: bool,
    /// A demand request already used that prefetch.
    pub prefetch_used: bool,
    /// The entry waits for an LLC MSHR entry (a fill from memory).
    pub waits_on_llc: bool,
}

/// A line being fetched from memory.
#[derive(Debug)]
pub(crate) struct LlcEntry {
    pub line: LineAddr,
    pub id: RequestId,
    /// Cores whose L2 entries wait for this fill, in arrival order.
    pub cores: Vec<usize>,
    pub cause: FillCause,
    /// The core charged for the fill (the one that opened the entry).
    pub charge: usize,
    /// The read has entered the outbox.
    pub issued: bool,
    /// The data, once memory answered.
    pub data: Option<LineBytes>,
}

/// Entries that name their line.
pub(crate) trait HasLine {
    fn line(&self) -> LineAddr;
}

impl HasLine for L1Entry {
    fn line(&self) -> LineAddr {
        self.line
    }
}
impl HasLine for L2Entry {
    fn line(&self) -> LineAddr {
        self.line
    }
}
impl HasLine for LlcEntry {
    fn line(&self) -> LineAddr {
        self.line
    }
}

/// A fixed-size MSHR table.
#[derive(Debug)]
pub(crate) struct Table<E> {
    slots: Vec<Option<E>>,
    gens: Vec<u32>,
    used: usize,
}

impl<E: HasLine> Table<E> {
    pub(crate) fn new(entries: usize) -> Table<E> {
        Table {
            slots: (0..entries).map(|_| None).collect(),
            gens: vec![0; entries],
            used: 0,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn used(&self) -> usize {
        self.used
    }

    /// The entries in use, by slot (a fixed order: dumps list them so).
    pub(crate) fn entries(&self) -> impl Iterator<Item = &E> {
        self.slots.iter().flatten()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.used == self.slots.len()
    }

    /// The slot of the entry for `line`.
    pub(crate) fn find(&self, line: LineAddr) -> Option<usize> {
        if self.used == 0 {
            return None;
        }
        self.slots
            .iter()
            .position(|e| e.as_ref().is_some_and(|e| e.line() == line))
    }

    /// Opens an entry; returns its slot and generation.
    ///
    /// # Panics
    /// When the table is full or the line already has an entry (caller bugs).
    pub(crate) fn alloc(&mut self, entry: E) -> (usize, u32) {
        debug_assert!(
            self.find(entry.line()).is_none(),
            "second MSHR entry for line {:?}",
            entry.line()
        );
        let slot = self
            .slots
            .iter()
            .position(Option::is_none)
            .expect("MSHR allocation in a full table");
        self.slots[slot] = Some(entry);
        self.gens[slot] = self.gens[slot].wrapping_add(1);
        self.used += 1;
        (slot, self.gens[slot])
    }

    /// Closes the entry at `slot` and returns it.
    pub(crate) fn free(&mut self, slot: usize) -> E {
        let e = self.slots[slot].take().expect("freeing an empty MSHR slot");
        self.used -= 1;
        e
    }

    pub(crate) fn get(&self, slot: usize) -> &E {
        self.slots[slot].as_ref().expect("empty MSHR slot")
    }

    pub(crate) fn get_mut(&mut self, slot: usize) -> &mut E {
        self.slots[slot].as_mut().expect("empty MSHR slot")
    }

    /// Asserts that `slot` still holds the entry of generation `gen` (an event's target).
    pub(crate) fn check(&self, slot: usize, gen_: u32, what: &str) {
        assert!(
            self.slots[slot].is_some() && self.gens[slot] == gen_,
            "{what}: MSHR slot {slot} no longer holds generation {gen_} (now {}, {})",
            self.gens[slot],
            if self.slots[slot].is_some() {
                "in use"
            } else {
                "free"
            }
        );
    }

    /// The generation of the entry at `slot`.
    pub(crate) fn gen_of(&self, slot: usize) -> u32 {
        self.gens[slot]
    }

    /// The slot of the first entry that satisfies `pred`.
    pub(crate) fn position(&self, pred: impl Fn(&E) -> bool) -> Option<usize> {
        self.slots
            .iter()
            .position(|e| e.as_ref().is_some_and(&pred))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(line: u64) -> L2Entry {
        L2Entry {
            line: LineAddr::new(line),
            has_l1: false,
            hw_prefetch: false,
            prefetch_used: false,
            waits_on_llc: false,
        }
    }

    #[test]
    fn alloc_find_free() {
        let mut t = Table::new(2);
        let (a, ga) = t.alloc(entry(1));
        let (b, _) = t.alloc(entry(2));
        assert!(t.is_full());
        assert_eq!(t.find(LineAddr::new(2)), Some(b));
        assert_eq!(t.free(a).line, LineAddr::new(1));
        assert_eq!(t.find(LineAddr::new(1)), None);
        let (a2, ga2) = t.alloc(entry(3));
        assert_eq!(a2, a);
        assert_ne!(ga2, ga, "a reused slot gets a new generation");
        t.check(a2, ga2, "test");
        assert_eq!(t.used(), 2);
        assert_eq!(t.position(|e| e.line == LineAddr::new(3)), Some(a2));
    }

    #[test]
    #[should_panic(expected = "no longer holds generation")]
    fn stale_slots_are_caught() {
        let mut t = Table::new(1);
        let (s, g) = t.alloc(entry(1));
        t.free(s);
        t.alloc(entry(2));
        t.check(s, g, "test");
    }

    #[test]
    fn l1_entries_keep_submission_order() {
        let access = |seq, kind| Access {
            id: seq,
            core: CoreId::new(0),
            addr: PhysAddr::new(0x40),
            kind,
            len: 1,
            data: [0; 64],
            seq,
        };
        let mut e = L1Entry {
            line: LineAddr::new(1),
            reqs: vec![access(5, Kind::HwPrefetch)],
            need_write: false,
            attached: false,
            prefetch_used: false,
        };
        assert!(e.hw_prefetch_only());
        assert_eq!(e.acquire_kind(), AcquireKind::Speculative);
        e.insert(access(9, Kind::Load));
        e.insert(access(2, Kind::Store));
        let seqs: Vec<u64> = e.reqs.iter().map(|a| a.seq).collect();
        assert_eq!(seqs, [2, 5, 9]);
        assert_eq!(e.cause(), FillCause::Store);
        assert_eq!(e.acquire_kind(), AcquireKind::Store);
        assert!(!e.hw_prefetch_only());
    }
}
