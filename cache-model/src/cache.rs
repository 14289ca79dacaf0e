//! The set-associative cache container.
//!
//! [`Cache`] stores, per line, the block address (the tag), a dirty bit and a payload `P`
//! chosen by the user: `()` for a cache-only trace simulation, MESI state and the line's bytes
//! for the coherent hierarchy. It knows nothing of coherence or timing beyond its hit latency;
//! it finds lines, fills them, evicts them through its replacement policy, and reports what it
//! evicted so that the caller can write it back.
//!
//! Storage is one flat array per field (structure of arrays), indexed `slot * ways + way`, so
//! a lookup scans only the set's tags, contiguous in memory, whatever the payload's size.
//!
//! A cache of at most [`DENSE_LINES_MAX`] lines (every real cache) is allocated whole when
//! built, set `s` stored at `s`. A larger one stores a set when a line is first filled into
//! it, at the end of the arrays, and keeps an ordered map from set to where it is stored: it
//! costs memory in proportion to the sets a run fills, not to its size, so a 4 GiB cache that
//! a run touches in a few places costs a few sets. Where a set is stored never shows:
//! lookups, victims and the order of [`Cache::lines`] are the same either way.

use crate::access::AccessKind;
use crate::config::{CacheConfig, CacheConfigError, CacheParams, WriteHitPolicy, WriteMissPolicy};
use crate::replacement::ReplacementState;
use sim_core::{PhysAddr, SimRng};
use std::cell::Cell;
use std::collections::BTreeMap;

/// Caches of at most this many lines (8 MiB of 64-byte lines) are allocated whole when built;
/// larger ones store each set when it is first filled.
pub const DENSE_LINES_MAX: u64 = 1 << 17;

/// The tag of an invalid way. Never a block address: a block address is an address shifted
/// right by at least 2 bits ([`LINE_BYTES_MIN`](crate::config::LINE_BYTES_MIN) is 4), so its
/// top bits are zero.
const INVALID: u64 = u64::MAX;

/// Where a line sits: its set and way.
///
/// A slot names a location, not a line: it stays meaningful only until the line there is
/// evicted or invalidated. Methods taking a slot assert that it holds a valid line (the hit
/// path's accessors, `touch`, `payload`, `payload_mut` and `set_dirty`, in debug builds only).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct Slot {
    set: u32,
    way: u32,
    /// Where the set is stored (a set's place never changes once stored), so that a slot's
    /// line is found without looking its set up again.
    stored: u32,
}

impl Slot {
    /// Way `way` of `set`, stored in place `stored`.
    const fn at(set: usize, way: usize, stored: usize) -> Slot {
        Slot {
            set: set as u32,
            way: way as u32,
            stored: stored as u32,
        }
    }

    /// The set index.
    pub const fn set(self) -> usize {
        self.set as usize
    }

    /// The way within the set.
    pub const fn way(self) -> usize {
        self.way as usize
    }
}

/// A line that left the cache, by eviction or invalidation.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Evicted<P> {
    /// The first byte of the line (KeyID bits included).
    pub addr: PhysAddr,
    /// Whether the line was dirty: the caller owes the next level a write-back.
    pub dirty: bool,
    /// The line's payload.
    pub payload: P,
}

/// A valid line, as seen by [`Cache::lines`] and [`Cache::line`].
#[derive(Debug)]
pub struct LineRef<'a, P> {
    /// Where the line is.
    pub slot: Slot,
    /// The first byte of the line (KeyID bits included).
    pub addr: PhysAddr,
    /// Whether the line is dirty.
    pub dirty: bool,
    /// The line's payload.
    pub payload: &'a P,
}

/// The result of [`Cache::insert`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Inserted<P> {
    /// Where the new line was placed.
    pub slot: Slot,
    /// The line it replaced, if the set was full.
    pub victim: Option<Evicted<P>>,
}

/// What one [`Cache::access`] did.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AccessOutcome<P> {
    /// The line was present.
    pub hit: bool,
    /// Where the line is now; `None` only for a write miss under no-write-allocate.
    pub slot: Option<Slot>,
    /// The access missed and allocated the line: the whole line is fetched from the next level.
    pub filled: bool,
    /// The line the fill evicted, if the set was full. A dirty victim is owed a write-back.
    pub victim: Option<Evicted<P>>,
    /// The write was passed on to the next level (write-through, or a write miss under
    /// no-write-allocate).
    pub write_forwarded: bool,
}

/// A set-associative cache tagged by the whole block address, KeyID bits included, generic over
/// a per-line payload.
///
/// The payload is `Default` so that a line leaving the cache can hand its payload back by value
/// ([`Evicted::payload`]) and leave an empty one behind.
///
/// ```
/// use cache_model::{Cache, CacheConfig, ReplacementPolicy};
/// use sim_core::{PhysAddr, RngFactory};
///
/// // Two sets of two ways, 64-byte lines.
/// let config = CacheConfig { size_bytes: 256, sets: 2, ways: 2, line_bytes: 64,
///                            replacement: ReplacementPolicy::Lru, ..CacheConfig::default() };
/// let mut cache: Cache<u32> = Cache::from_config(&config, RngFactory::new(0).fork("c")).unwrap();
/// // Lines 0x000, 0x080 and 0x100 all map to set 0.
/// assert!(cache.insert(PhysAddr::new(0x000), 10, false).victim.is_none());
/// assert!(cache.insert(PhysAddr::new(0x080), 20, true).victim.is_none());
/// assert!(cache.lookup(PhysAddr::new(0x010)).is_some()); // 0x000 becomes most recent
/// let victim = cache.insert(PhysAddr::new(0x100), 30, false).victim.unwrap();
/// assert_eq!((victim.addr, victim.dirty, victim.payload), (PhysAddr::new(0x080), true, 20));
/// ```
#[derive(Clone, Debug)]
pub struct Cache<P: Default = ()> {
    params: CacheParams,
    ways: usize,
    /// For a cache above [`DENSE_LINES_MAX`] lines: where each filled set is stored (sets
    /// absent are empty). `None`: every set is stored, set `s` at `s`.
    sparse: Option<BTreeMap<u32, u32>>,
    /// Block address per stored line, [`INVALID`] for an empty way.
    tags: Vec<u64>,
    dirty: Vec<bool>,
    payloads: Vec<P>,
    /// Per stored set (the replacement state is kept by stored set too).
    replacement: ReplacementState,
    valid_lines: usize,
    dirty_lines: usize,
    /// The block and slot of the line the last successful [`Cache::find`] found: a program's
    /// consecutive accesses often fall in one line, and those skip the scan of the set. It is
    /// a hint, checked against the tags before use, so it is never stale.
    last_found: Cell<(u64, Slot)>,
}

impl<P: Default> Cache<P> {
    /// An empty cache. `rng` is the cache's own stream (fork it by the cache's name); only the
    /// random replacement policy draws from it.
    pub fn new(params: CacheParams, rng: SimRng) -> Cache<P> {
        let sets = params.sets();
        let ways = params.ways() as usize;
        let dense = sets * u64::from(params.ways()) <= DENSE_LINES_MAX;
        let stored_sets = if dense { sets as usize } else { 0 };
        let lines = stored_sets * ways;
        Cache {
            replacement: ReplacementState::new(params.replacement(), stored_sets, ways, rng),
            params,
            ways,
            sparse: (!dense).then(BTreeMap::new),
            tags: vec![INVALID; lines],
            dirty: vec![false; lines],
            payloads: (0..lines).map(|_| P::default()).collect(),
            valid_lines: 0,
            dirty_lines: 0,
            last_found: Cell::new((INVALID, Slot::at(0, 0, 0))),
        }
    }

    /// Where `set` is stored, if it is.
    #[inline]
    fn stored(&self, set: usize) -> Option<usize> {
        match &self.sparse {
            None => Some(set),
            Some(sparse) => sparse.get(&(set as u32)).map(|&stored| stored as usize),
        }
    }

    /// Where `set` is stored, storing it (empty) if it is not yet: a fill.
    #[inline]
    fn stored_or_allocate(&mut self, set: usize) -> usize {
        match self.stored(set) {
            Some(stored) => stored,
            None => self.allocate(set),
        }
    }

    /// Stores `set` of a sparse cache, empty, at the end of the arrays.
    #[cold]
    fn allocate(&mut self, set: usize) -> usize {
        let stored = self.tags.len() / self.ways;
        let sparse = self
            .sparse
            .as_mut()
            .expect("only a sparse cache lacks sets");
        sparse.insert(set as u32, stored as u32);
        let lines = self.tags.len() + self.ways;
        self.tags.resize(lines, INVALID);
        self.dirty.resize(lines, false);
        self.payloads.resize_with(lines, P::default);
        self.replacement.grow(1, self.ways);
        stored
    }

    /// The first set at or after `set` that may hold lines (a stored one), if any: a walk over
    /// every line (a WBINVD) skips at once the sets a run never filled.
    pub fn next_stored_set(&self, set: usize) -> Option<usize> {
        match &self.sparse {
            None => (set < self.sets()).then_some(set),
            Some(sparse) => {
                let from = u32::try_from(set).ok()?;
                sparse.range(from..).next().map(|(&set, _)| set as usize)
            }
        }
    }

    /// Number of sets.
    fn sets(&self) -> usize {
        self.params.sets() as usize
    }

    /// Bytes the cache's storage takes now (its arrays, stored sets only): what a run's memory
    /// grows by as it fills the cache.
    pub fn stored_bytes(&self) -> usize {
        // A B-tree entry is two u32s; its nodes take about as much again.
        self.sparse.as_ref().map_or(0, |m| m.len() * 16)
            + self.tags.len() * (size_of::<u64>() + size_of::<bool>() + size_of::<P>())
            + self.replacement.bytes()
    }

    /// Validates `config` and builds an empty cache from it.
    pub fn from_config(config: &CacheConfig, rng: SimRng) -> Result<Cache<P>, CacheConfigError> {
        Ok(Cache::new(config.validate()?, rng))
    }

    /// The cache's parameters.
    pub fn params(&self) -> &CacheParams {
        &self.params
    }

    /// Number of valid lines.
    pub fn len(&self) -> usize {
        self.valid_lines
    }

    /// True when no line is valid.
    pub fn is_empty(&self) -> bool {
        self.valid_lines == 0
    }

    /// Number of dirty lines.
    pub fn dirty_len(&self) -> usize {
        self.dirty_lines
    }

    /// Number of lines the cache can hold.
    pub fn capacity(&self) -> usize {
        (self.params.sets() * u64::from(self.params.ways())) as usize
    }

    /// The line index of a slot; its set must be stored (a slot holding a line always is).
    #[inline]
    fn index(&self, slot: Slot) -> usize {
        slot.stored as usize * self.ways + slot.way()
    }

    /// The line index of a slot that must hold a valid line (a stale slot is a caller bug).
    #[inline]
    fn valid_index(&self, slot: Slot) -> usize {
        let i = self.index(slot);
        assert!(
            self.tags[i] != INVALID,
            "cache slot {slot:?} holds no valid line (stale slot)"
        );
        i
    }

    /// [`Cache::valid_index`] for the accessors of the hit path ([`Cache::touch`],
    /// [`Cache::payload`], [`Cache::payload_mut`], [`Cache::set_dirty`]), which an L1D hit calls
    /// several times on the slot it has just probed: the check runs in debug builds (every
    /// test), not in release ones. A stale slot is still no memory error there: the index is
    /// within the arrays.
    #[inline(always)]
    fn hot_index(&self, slot: Slot) -> usize {
        let i = self.index(slot);
        debug_assert!(
            self.tags[i] != INVALID,
            "cache slot {slot:?} holds no valid line (stale slot)"
        );
        i
    }

    /// Finds the way of `set` holding `block`.
    ///
    /// Looks at every way rather than stopping at the match: which way hits is data-dependent
    /// and mispredicts an early exit, while a fixed-length scan of a few contiguous tags with
    /// a conditional move does not. A block is in at most one way, so the last match is the
    /// only one.
    #[inline]
    fn find(&self, set: usize, block: u64) -> Option<Slot> {
        let (last_block, last) = self.last_found.get();
        // A valid tag equal to `block` is its line, wherever it is (a block has one set).
        if last_block == block && self.tags.get(self.index(last)) == Some(&block) {
            return Some(last);
        }
        let stored = self.stored(set)?;
        let base = stored * self.ways;
        let mut found = usize::MAX;
        for (way, &tag) in self.tags[base..base + self.ways].iter().enumerate() {
            found = if tag == block { way } else { found };
        }
        if found == usize::MAX {
            return None;
        }
        let slot = Slot::at(set, found, stored);
        self.last_found.set((block, slot));
        Some(slot)
    }

    /// Where the line holding `addr` is, without touching the replacement state (a snoop or a
    /// checker's look).
    #[inline]
    pub fn probe(&self, addr: PhysAddr) -> Option<Slot> {
        let set = self.params.set_of(addr);
        self.find(set, self.params.block_of(addr))
    }

    /// True when the line holding `addr` is present.
    pub fn contains(&self, addr: PhysAddr) -> bool {
        self.probe(addr).is_some()
    }

    /// Where the line holding `addr` is, counting the lookup as a use of the line (a demand
    /// hit) in the replacement state.
    #[inline]
    pub fn lookup(&mut self, addr: PhysAddr) -> Option<Slot> {
        let slot = self.probe(addr)?;
        self.touch_stored(slot);
        Some(slot)
    }

    /// Counts a use of the line at `slot` in the replacement state, as [`Cache::lookup`] does.
    #[inline]
    pub fn touch(&mut self, slot: Slot) {
        self.hot_index(slot);
        self.touch_stored(slot);
    }

    /// The replacement state's hit on a slot whose set is stored.
    #[inline]
    fn touch_stored(&mut self, slot: Slot) {
        self.replacement
            .on_hit(slot.stored as usize, slot.way(), self.ways);
    }

    /// The valid line at `slot`.
    pub fn line(&self, slot: Slot) -> LineRef<'_, P> {
        let i = self.valid_index(slot);
        LineRef {
            slot,
            addr: self.params.block_base(self.tags[i]),
            dirty: self.dirty[i],
            payload: &self.payloads[i],
        }
    }

    /// The payload of the line at `slot`.
    #[inline]
    pub fn payload(&self, slot: Slot) -> &P {
        &self.payloads[self.hot_index(slot)]
    }

    /// The payload of the line at `slot`, for changing it.
    #[inline]
    pub fn payload_mut(&mut self, slot: Slot) -> &mut P {
        let i = self.hot_index(slot);
        &mut self.payloads[i]
    }

    /// Whether the line at `slot` is dirty.
    pub fn is_dirty(&self, slot: Slot) -> bool {
        self.dirty[self.valid_index(slot)]
    }

    /// Marks the line at `slot` dirty or clean.
    #[inline]
    pub fn set_dirty(&mut self, slot: Slot, dirty: bool) {
        let i = self.hot_index(slot);
        if self.dirty[i] != dirty {
            self.dirty[i] = dirty;
            if dirty {
                self.dirty_lines += 1;
            } else {
                self.dirty_lines -= 1;
            }
        }
    }

    /// Marks the line holding `addr` dirty. Returns false, changing nothing, when it is absent.
    pub fn mark_dirty(&mut self, addr: PhysAddr) -> bool {
        self.probe(addr).map(|s| self.set_dirty(s, true)).is_some()
    }

    /// Marks the line holding `addr` clean (after a write-back that keeps the line, such as
    /// CLWB). Returns false, changing nothing, when it is absent.
    pub fn mark_clean(&mut self, addr: PhysAddr) -> bool {
        self.probe(addr).map(|s| self.set_dirty(s, false)).is_some()
    }

    /// Places the line holding `addr` in its set, with `payload` and dirty bit `dirty`, and
    /// counts the fill in the replacement state. The lowest-numbered invalid way is used
    /// first; in a full set the replacement policy chooses the victim, which is returned whole
    /// for the caller to write back when dirty.
    ///
    /// # Panics
    /// When the line is already present: filling a line twice is a bug in the caller.
    pub fn insert(&mut self, addr: PhysAddr, payload: P, dirty: bool) -> Inserted<P> {
        let set = self.params.set_of(addr);
        let block = self.params.block_of(addr);
        assert!(
            self.find(set, block).is_none(),
            "cache insert of line {} which is already present in set {set}",
            self.params.block_base(block)
        );
        self.fill(set, block, payload, dirty)
    }

    /// [`Cache::insert`] of a block known to be absent from `set`.
    #[inline]
    fn fill(&mut self, set: usize, block: u64, payload: P, dirty: bool) -> Inserted<P> {
        let stored = self.stored_or_allocate(set);
        let base = stored * self.ways;
        let (way, victim) = match self.tags[base..base + self.ways]
            .iter()
            .position(|&t| t == INVALID)
        {
            Some(way) => (way, None),
            None => {
                let way = self.replacement.victim(stored, self.ways);
                let victim = self.take(base + way);
                (way, Some(victim))
            }
        };
        let i = base + way;
        self.tags[i] = block;
        self.dirty[i] = dirty;
        self.payloads[i] = payload;
        self.valid_lines += 1;
        self.dirty_lines += usize::from(dirty);
        self.replacement.on_fill(stored, way, self.ways);
        Inserted {
            slot: Slot::at(set, way, stored),
            victim,
        }
    }

    /// Empties line `i` and returns what it held.
    fn take(&mut self, i: usize) -> Evicted<P> {
        debug_assert!(self.tags[i] != INVALID);
        let evicted = Evicted {
            addr: self.params.block_base(self.tags[i]),
            dirty: self.dirty[i],
            payload: std::mem::take(&mut self.payloads[i]),
        };
        self.tags[i] = INVALID;
        self.dirty[i] = false;
        self.valid_lines -= 1;
        self.dirty_lines -= usize::from(evicted.dirty);
        evicted
    }

    /// Removes the line holding `addr`, returning it (with its dirty bit, so that the caller
    /// can write it back) or `None` when it was absent.
    pub fn invalidate(&mut self, addr: PhysAddr) -> Option<Evicted<P>> {
        let slot = self.probe(addr)?;
        Some(self.invalidate_slot(slot))
    }

    /// Removes the line at `slot` and returns it.
    pub fn invalidate_slot(&mut self, slot: Slot) -> Evicted<P> {
        let i = self.valid_index(slot);
        self.replacement
            .on_invalidate(i / self.ways, slot.way(), self.ways);
        self.take(i)
    }

    /// One demand access to the line holding `addr`, with the cache's write policy:
    ///
    /// - hit: the line is used; a write makes it dirty (write-back) or is forwarded
    ///   (write-through);
    /// - read miss, or write miss under write-allocate: the line is fetched and filled (clean
    ///   for a read or under write-through, dirty for a write-back write), evicting a victim
    ///   if the set is full;
    /// - write miss under no-write-allocate: the write is forwarded; nothing is filled.
    ///
    /// A fill gets a default payload; callers that carry data fill it through
    /// [`Cache::payload_mut`].
    #[inline]
    pub fn access(&mut self, addr: PhysAddr, kind: AccessKind) -> AccessOutcome<P> {
        let policy = self.params.write_policy();
        let is_write = kind == AccessKind::Write;
        let write_back = policy.on_hit == WriteHitPolicy::WriteBack;
        let set = self.params.set_of(addr);
        let block = self.params.block_of(addr);
        if let Some(slot) = self.find(set, block) {
            self.touch_stored(slot);
            if is_write && write_back {
                self.set_dirty(slot, true);
            }
            return AccessOutcome {
                hit: true,
                slot: Some(slot),
                filled: false,
                victim: None,
                write_forwarded: is_write && !write_back,
            };
        }
        if is_write && policy.on_miss == WriteMissPolicy::NoWriteAllocate {
            return AccessOutcome {
                hit: false,
                slot: None,
                filled: false,
                victim: None,
                write_forwarded: true,
            };
        }
        let inserted = self.fill(set, block, P::default(), is_write && write_back);
        AccessOutcome {
            hit: false,
            slot: Some(inserted.slot),
            filled: true,
            victim: inserted.victim,
            write_forwarded: is_write && !write_back,
        }
    }

    /// Every valid line, in set order then way order (deterministic, whatever was filled when).
    pub fn lines(&self) -> impl Iterator<Item = LineRef<'_, P>> + '_ {
        let sets: Box<dyn Iterator<Item = (usize, usize)> + '_> = match &self.sparse {
            None => Box::new((0..self.sets()).map(|set| (set, set))),
            Some(sparse) => Box::new(sparse.iter().map(|(&s, &at)| (s as usize, at as usize))),
        };
        sets.flat_map(move |(set, stored)| {
            let base = stored * self.ways;
            (0..self.ways)
                .filter(move |way| self.tags[base + way] != INVALID)
                .map(move |way| LineRef {
                    slot: Slot::at(set, way, stored),
                    addr: self.params.block_base(self.tags[base + way]),
                    dirty: self.dirty[base + way],
                    payload: &self.payloads[base + way],
                })
        })
    }

    /// Every dirty line, in set order then way order.
    pub fn dirty_lines(&self) -> impl Iterator<Item = LineRef<'_, P>> + '_ {
        self.lines().filter(|l| l.dirty)
    }

    /// The valid lines of one set, in way order.
    pub fn set_lines(&self, set: usize) -> impl Iterator<Item = LineRef<'_, P>> + '_ {
        let stored = self.stored(set);
        let base = stored.unwrap_or(0) * self.ways;
        let ways = if stored.is_some() { self.ways } else { 0 };
        (0..ways)
            .filter(move |w| self.tags[base + w] != INVALID)
            .map(move |way| self.line(Slot::at(set, way, stored.unwrap_or(0))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WritePolicy;
    use crate::replacement::ReplacementPolicy;
    use sim_core::{AddressLayout, DramAddr, KeyId, RngFactory};

    fn cache<P: Default>(sets: u64, ways: u32, policy: ReplacementPolicy) -> Cache<P> {
        let config = CacheConfig {
            size_bytes: sets * u64::from(ways) * 64,
            sets,
            ways,
            line_bytes: 64,
            replacement: policy,
            ..CacheConfig::default()
        };
        Cache::from_config(&config, RngFactory::new(3).fork("test.cache")).unwrap()
    }

    /// The address of line `n` of set `set` in a cache with `sets` sets of 64-byte lines.
    fn addr(sets: u64, set: u64, n: u64) -> PhysAddr {
        PhysAddr::new((n * sets + set) * 64)
    }

    #[test]
    fn probe_does_not_touch_lookup_does() {
        let mut c: Cache = cache(1, 2, ReplacementPolicy::Lru);
        c.insert(addr(1, 0, 0), (), false);
        c.insert(addr(1, 0, 1), (), false);
        // A probe of line 0 leaves it least recently used...
        assert!(c.probe(addr(1, 0, 0)).is_some());
        let v = c.insert(addr(1, 0, 2), (), false).victim.unwrap();
        assert_eq!(v.addr, addr(1, 0, 0));
        // ...a lookup of line 1 protects it.
        assert!(c.lookup(addr(1, 0, 1)).is_some());
        let v = c.insert(addr(1, 0, 3), (), false).victim.unwrap();
        assert_eq!(v.addr, addr(1, 0, 2));
        assert!(c.contains(addr(1, 0, 1)) && c.contains(addr(1, 0, 3)));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn any_byte_of_a_line_finds_it() {
        let mut c: Cache = cache(4, 2, ReplacementPolicy::Lru);
        let s = c.insert(PhysAddr::new(0x1040), (), false).slot;
        assert_eq!(c.probe(PhysAddr::new(0x107f)), Some(s));
        assert_eq!(c.probe(PhysAddr::new(0x1080)), None);
        assert_eq!(s.set(), 1);
        assert_eq!(c.line(s).addr, PhysAddr::new(0x1040));
    }

    #[test]
    fn keyid_aliases_are_different_lines() {
        let layout = AddressLayout::default();
        let mut c: Cache<u8> = cache(64, 8, ReplacementPolicy::Lru);
        let k1 = layout
            .compose(KeyId::new(1), DramAddr::new(0x4000))
            .unwrap();
        let k2 = layout.with_keyid(k1, KeyId::new(2)).unwrap();
        c.insert(k1, 1, true);
        assert!(c.probe(k2).is_none(), "KeyID 2 must not hit KeyID 1's line");
        let s2 = c.insert(k2, 2, false).slot;
        // Same set (the set index comes from the DRAM bits), two lines.
        assert_eq!(s2.set(), c.probe(k1).unwrap().set());
        assert_eq!(c.len(), 2);
        let e = c.invalidate(k1).unwrap();
        assert_eq!((e.addr, e.dirty, e.payload), (k1, true, 1));
        assert_eq!(*c.payload(c.probe(k2).unwrap()), 2);
    }

    #[test]
    fn victims_carry_address_dirty_bit_and_payload() {
        let mut c: Cache<[u8; 4]> = cache(2, 1, ReplacementPolicy::Lru);
        let s = c.insert(addr(2, 1, 0), [1, 2, 3, 4], false).slot;
        c.payload_mut(s)[0] = 9;
        c.set_dirty(s, true);
        assert_eq!(c.dirty_len(), 1);
        let ins = c.insert(addr(2, 1, 5), [5; 4], false);
        assert_eq!(
            ins.victim,
            Some(Evicted {
                addr: addr(2, 1, 0),
                dirty: true,
                payload: [9, 2, 3, 4]
            })
        );
        assert_eq!(ins.slot, s);
        assert_eq!(c.dirty_len(), 0);
        assert_eq!(*c.payload(ins.slot), [5; 4]);
    }

    #[test]
    fn invalidate_reports_dirty_and_frees_the_way() {
        let mut c: Cache<u16> = cache(1, 2, ReplacementPolicy::Lru);
        c.insert(addr(1, 0, 0), 7, true);
        c.insert(addr(1, 0, 1), 8, false);
        assert_eq!(c.invalidate(addr(1, 0, 2)), None);
        let e = c.invalidate(addr(1, 0, 0)).unwrap();
        assert_eq!((e.dirty, e.payload), (true, 7));
        assert_eq!((c.len(), c.dirty_len()), (1, 0));
        // The freed way is refilled before anything is evicted.
        assert!(c.insert(addr(1, 0, 3), 9, false).victim.is_none());
        let e = c.invalidate(addr(1, 0, 1)).unwrap();
        assert_eq!((e.dirty, e.payload), (false, 8));
    }

    #[test]
    fn mark_dirty_and_clean() {
        let mut c: Cache = cache(2, 2, ReplacementPolicy::Lru);
        assert!(!c.mark_dirty(addr(2, 0, 0)));
        c.insert(addr(2, 0, 0), (), false);
        assert!(c.mark_dirty(addr(2, 0, 0)));
        assert!(c.mark_dirty(addr(2, 0, 0)));
        assert_eq!(c.dirty_len(), 1);
        assert!(c.is_dirty(c.probe(addr(2, 0, 0)).unwrap()));
        assert!(c.mark_clean(addr(2, 0, 0)));
        assert_eq!(c.dirty_len(), 0);
        assert!(!c.mark_clean(addr(2, 0, 9)));
    }

    #[test]
    fn iteration_is_by_set_then_way() {
        let mut c: Cache<u64> = cache(4, 2, ReplacementPolicy::Lru);
        // Fill in a scrambled order.
        for (set, n) in [(3, 0), (0, 1), (2, 0), (0, 0), (3, 1)] {
            c.insert(addr(4, set, n), set * 10 + n, n == 1);
        }
        let seen: Vec<(usize, usize, u64)> = c
            .lines()
            .map(|l| (l.slot.set(), l.slot.way(), *l.payload))
            .collect();
        assert_eq!(
            seen,
            [(0, 0, 1), (0, 1, 0), (2, 0, 20), (3, 0, 30), (3, 1, 31)]
        );
        let dirty: Vec<PhysAddr> = c.dirty_lines().map(|l| l.addr).collect();
        assert_eq!(dirty, [addr(4, 0, 1), addr(4, 3, 1)]);
        assert_eq!(c.set_lines(3).count(), 2);
        assert_eq!(c.set_lines(1).count(), 0);
    }

    #[test]
    #[should_panic(expected = "already present")]
    fn double_insert_is_a_bug() {
        let mut c: Cache = cache(1, 2, ReplacementPolicy::Lru);
        c.insert(PhysAddr::new(0), (), false);
        c.insert(PhysAddr::new(8), (), false);
    }

    #[test]
    #[should_panic(expected = "stale slot")]
    fn stale_slots_are_caught() {
        let mut c: Cache = cache(1, 1, ReplacementPolicy::Lru);
        let s = c.insert(PhysAddr::new(0), (), false).slot;
        c.invalidate(PhysAddr::new(0));
        c.is_dirty(s);
    }

    fn with_policy(write_policy: WritePolicy) -> Cache {
        let config = CacheConfig {
            size_bytes: 128,
            sets: 1,
            ways: 2,
            line_bytes: 64,
            write_policy,
            ..CacheConfig::default()
        };
        Cache::from_config(&config, RngFactory::new(0).fork("c")).unwrap()
    }

    #[test]
    fn write_back_write_allocate() {
        let mut c = with_policy(WritePolicy::default());
        let o = c.access(PhysAddr::new(0), AccessKind::Write);
        assert!(!o.hit && o.filled && !o.write_forwarded && o.victim.is_none());
        assert!(c.is_dirty(o.slot.unwrap()));
        let o = c.access(PhysAddr::new(64), AccessKind::Read);
        assert!(o.filled && !c.is_dirty(o.slot.unwrap()));
        let o = c.access(PhysAddr::new(64), AccessKind::Write);
        assert!(o.hit && !o.filled && c.is_dirty(o.slot.unwrap()));
        // Line 0 is the LRU one and dirty.
        let o = c.access(PhysAddr::new(128), AccessKind::Read);
        let v = o.victim.unwrap();
        assert_eq!((v.addr, v.dirty), (PhysAddr::new(0), true));
    }

    #[test]
    fn write_through_keeps_lines_clean() {
        let mut c = with_policy(WritePolicy {
            on_hit: WriteHitPolicy::WriteThrough,
            on_miss: WriteMissPolicy::WriteAllocate,
        });
        let o = c.access(PhysAddr::new(0), AccessKind::Write);
        assert!(o.filled && o.write_forwarded);
        let o = c.access(PhysAddr::new(0), AccessKind::Write);
        assert!(o.hit && o.write_forwarded);
        assert_eq!(c.dirty_len(), 0);
        let o = c.access(PhysAddr::new(0), AccessKind::Read);
        assert!(o.hit && !o.write_forwarded);
    }

    #[test]
    fn no_write_allocate_bypasses_on_write_misses() {
        let mut c = with_policy(WritePolicy {
            on_hit: WriteHitPolicy::WriteBack,
            on_miss: WriteMissPolicy::NoWriteAllocate,
        });
        let o = c.access(PhysAddr::new(0), AccessKind::Write);
        assert!(!o.hit && !o.filled && o.write_forwarded && o.slot.is_none());
        assert!(c.is_empty());
        c.access(PhysAddr::new(0), AccessKind::Read);
        let o = c.access(PhysAddr::new(0), AccessKind::Write);
        assert!(o.hit && !o.write_forwarded);
        assert_eq!(c.dirty_len(), 1);
    }

    #[test]
    fn random_replacement_is_reproducible() {
        let run = |seed: u64| {
            let config = CacheConfig {
                size_bytes: 4 * 64,
                sets: 1,
                ways: 4,
                line_bytes: 64,
                replacement: ReplacementPolicy::Random,
                ..CacheConfig::default()
            };
            let mut c: Cache =
                Cache::from_config(&config, RngFactory::new(seed).fork("l1d")).unwrap();
            (0..40u64)
                .filter_map(|n| c.insert(PhysAddr::new(n * 64), (), false).victim)
                .map(|v| v.addr.raw() / 64)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
        assert_eq!(run(5).len(), 36);
    }

    #[test]
    fn every_policy_keeps_the_counts_right() {
        for policy in ReplacementPolicy::ALL {
            let mut c: Cache = cache(4, 4, policy);
            let mut evictions = 0;
            for n in 0..200u64 {
                let a = PhysAddr::new((n * 7919 % 97) * 64);
                let o = c.access(a, AccessKind::from_is_write(n % 3 == 0));
                evictions += usize::from(o.victim.is_some());
                assert!(c.contains(a), "{policy}: just-accessed line missing");
            }
            assert_eq!(c.len(), 16, "{policy}");
            assert_eq!(c.lines().count(), c.len());
            assert_eq!(c.dirty_lines().count(), c.dirty_len());
            assert!(evictions > 0);
        }
    }

    /// Issue 15, finding 1: a 4 GiB cache (the largest a configuration may ask for) costs
    /// memory in proportion to the sets a run fills, not to its size, and behaves as a dense
    /// one: lines in set order, victims by the policy, every policy.
    #[test]
    fn a_huge_cache_stores_only_the_sets_it_fills() {
        let sets = crate::config::LINES_MAX / 16;
        for policy in ReplacementPolicy::ALL {
            let mut c: Cache<u64> = cache(sets, 16, policy);
            assert_eq!(c.capacity(), 1 << 26);
            let empty = c.stored_bytes();
            assert_eq!(empty, 0, "{policy}: {empty} bytes when empty");
            // 17 blocks in each of three sets far apart: one eviction each.
            for set in [sets - 1, 0, sets / 2] {
                for n in 0..17u64 {
                    let o = c.access(addr(sets, set, n), AccessKind::Write);
                    assert!(o.filled && (o.victim.is_some() == (n == 16)), "{policy}");
                }
                assert!(c.probe(addr(sets, set, 16)).is_some());
            }
            assert!(c.set_lines(5).next().is_none());
            assert_eq!(c.next_stored_set(0), Some(0));
            let half = sets as usize / 2;
            assert_eq!(c.next_stored_set(1 << 20), Some(half));
            assert_eq!(c.next_stored_set(half + 1), Some(2 * half - 1));
            assert_eq!(c.next_stored_set(2 * half), None);
            assert!(c.probe(addr(sets, 5, 0)).is_none());
            let stored = c.stored_bytes() - empty;
            // Three sets of 16 lines, about 30 bytes a line with the replacement state.
            assert!(
                stored <= 3 * 16 * 32,
                "{policy}: {stored} bytes for three sets"
            );
            let order: Vec<usize> = c.lines().map(|l| l.slot.set()).collect();
            assert_eq!(order.len(), 48);
            assert!(order.is_sorted(), "{policy}: lines out of set order");
            assert_eq!(c.dirty_len(), 48);
        }
    }

    #[test]
    fn a_real_cache_is_stored_whole_when_built() {
        let mut c: Cache = cache(2048, 16, ReplacementPolicy::TreePlru);
        let full = c.stored_bytes();
        assert!(full >= 2048 * 16 * 9);
        c.insert(addr(2048, 7, 0), (), false);
        assert_eq!(c.stored_bytes(), full);
    }
}
