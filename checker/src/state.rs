//! The checker's private bookkeeping: per DRAM line, what memory holds and what each alias
//! (KeyID) of the line holds, plus the bounded event history that violations quote.

use crate::report::{ChainEntry, Version};
use cache_model::events::{CacheId, StoreStamp};
use sim_core::{Cycle, DetHashMap, DetHashSet, DramAddr, KeyId, LineAddr, LineBytes};
use std::collections::VecDeque;

/// The cached copies the checker knows of: one entry per (alias line, cache).
pub(super) type CopySet = DetHashSet<(LineAddr, CacheId)>;

/// True when inserting one more entry would make a hash table more than half full; the caller
/// then reserves room for twice its length.
///
/// Churn (insert, remove, insert...) leaves tombstones that exhaust a hash table's free slots;
/// hashbrown then rehashes in place, without allocating, only if the table is at most half
/// full, and otherwise reallocates. Keeping the load at one half means the checker allocates
/// only when the number of tracked lines or copies reaches a new high, never from churn.
pub(super) fn needs_room(len: usize, capacity: usize) -> bool {
    len + 1 > capacity / 2
}

/// The last write-back that reached memory for a DRAM line.
#[derive(Clone, Debug)]
pub(super) struct MemWrite {
    /// The version of the data written (see `AliasState::version`).
    pub version: Version,
    /// `LineState::mem_generation` once this write landed.
    pub generation: u64,
    /// The alias that wrote it (its key encrypted it).
    pub keyid: KeyId,
    /// The key generation of `keyid` at the time (see `KeyIdTable::epochs`): reading the line
    /// back through `keyid` returns these bytes only while the key is unchanged.
    pub key_epoch: u32,
    /// The plaintext written.
    pub bytes: LineBytes,
}

/// Whether an alias holds data that memory does not have yet.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(super) enum Dirtiness {
    /// Memory has the alias's newest data (or the alias never held anything newer).
    Clean,
    /// Committed stores through the alias are not yet written back; `since` is the first of
    /// them.
    Stored { since: Version },
    /// A copy became dirty without a committed store (the `writeback_speculative_lines` knob);
    /// no store has gone through the alias since.
    Phantom,
}

/// What memory held when a memory read for an uncached alias left the hierarchy; the fill that
/// answers it takes its version from here.
#[derive(Clone, Debug)]
pub(super) struct PendingRead {
    pub version: Version,
    /// Memory's generation at the read (see `LineState::mem_generation`).
    pub generation: u64,
    /// The plaintext the alias will see, when known: memory's bytes if the alias itself wrote
    /// them back under its current key, otherwise unknown (a read through another key gives
    /// garbage the checker cannot predict).
    pub bytes: Option<LineBytes>,
}

/// The last stale read reported for an alias, so that loads of the same stale data count as
/// repeats of one violation instead of flooding the report.
#[derive(Copy, Clone, Debug)]
pub(super) struct StaleMark {
    /// Index into the kept violations (`None` when the report was not kept).
    pub violation: Option<usize>,
    /// The version the loads returned.
    pub read: Version,
    /// The newer store they missed.
    pub newer: Version,
}

/// One alias (KeyID) of a DRAM line.
#[derive(Clone, Debug)]
pub(super) struct AliasState {
    pub keyid: KeyId,
    /// Caches holding a copy of this alias (entries in the checker's `CopySet`).
    pub copies: u32,
    /// The version of the alias's current data: the newest store through the alias or, if it
    /// was read from memory since, memory's version then. A read through another key than the
    /// writer's returns garbage plaintext but the same version: written back unmodified under
    /// the same key, it re-encrypts to exactly the ciphertext it was read from. The hierarchy
    /// keeps the copies of one alias coherent, so one version describes them all. Meaningful
    /// while the alias is resident.
    pub version: Version,
    /// A store went through the alias since its data last matched memory (read from it, or
    /// written back to it).
    pub modified: bool,
    /// Memory's generation when the alias's data last matched memory.
    pub generation: u64,
    /// PCONFIG replaced the alias's key after it read its (unmodified) data from memory:
    /// written back now, that data re-encrypts to other ciphertext than memory held, so it no
    /// longer stands for its version.
    pub garbled: bool,
    /// The newest committed store through this alias, ever ([`Version::INITIAL`]: none).
    pub newest_store: Version,
    /// The store stamp the alias's current data carries (the hierarchy's
    /// [`StoreStamp`]: which store, not which bytes); [`StoreStamp::MEMORY`] when it was
    /// read from memory and not stored to since. A write-back carrying another stamp is an
    /// older copy of the alias.
    pub stamp: StoreStamp,
    /// The version of the data the alias last read from memory (a refill): the version of a
    /// write-back that carries [`StoreStamp::MEMORY`].
    pub read_version: Version,
    /// The alias's current plaintext when known (from its stores and loads, or from memory it
    /// wrote itself); used only for model consistency checks and for dating write-backs.
    pub bytes: Option<LineBytes>,
    pub dirty: Dirtiness,
    pub pending_read: Option<PendingRead>,
    /// When the last copy left, so that a fill in the same cycle counts as a transfer.
    pub last_emptied: Option<Cycle>,
    pub stale: Option<StaleMark>,
}

impl AliasState {
    pub(super) fn new(keyid: KeyId) -> AliasState {
        AliasState {
            keyid,
            copies: 0,
            version: Version::INITIAL,
            modified: false,
            generation: 0,
            garbled: false,
            newest_store: Version::INITIAL,
            stamp: StoreStamp::MEMORY,
            read_version: Version::INITIAL,
            bytes: None,
            dirty: Dirtiness::Clean,
            pending_read: None,
            last_emptied: None,
            stale: None,
        }
    }

    /// The alias still has data in the hierarchy: a cached copy, or dirty data on its way to
    /// memory (a write-back buffer entry). Resident aliases are never forgotten, and count for
    /// [`ViolationKind::ReprogramWhileCached`](super::ViolationKind).
    pub(super) fn resident(&self) -> bool {
        self.copies > 0 || self.dirty != Dirtiness::Clean
    }
}

/// Above this many aliases on one line, aliases that are not resident are pruned, except the
/// two with the newest stores (all a stale-read check needs from absent aliases).
const ALIASES_BEFORE_PRUNE: usize = 8;

/// Everything the checker knows about one DRAM line.
#[derive(Debug)]
pub(super) struct LineState {
    /// The last write-back to reach memory; `None` when memory holds data from before the
    /// checker started watching (or forgot the line): [`Version::INITIAL`].
    pub mem: Option<MemWrite>,
    /// Counts changes of memory's content. A copy read from memory and written back
    /// unmodified, under the same key, while memory is still at the generation it read,
    /// re-encrypts to the same ciphertext: memory does not change. Versions cannot tell this:
    /// a write-back through a re-keyed alias changes the content but not the version.
    pub mem_generation: u64,
    /// Memory's content changed outside the hierarchy since the last write-back that reached
    /// it (an attack on the DIMMs or the bus): what any alias reads from it is unknown until
    /// the next such write-back.
    pub mem_altered: bool,
    pub aliases: Vec<AliasState>,
    /// Recent events on the line, oldest first, at most `chain_events_max`.
    pub history: VecDeque<ChainEntry>,
    /// The checker's event counter at the last event on the line (idle lines are forgotten
    /// least recently touched first).
    pub last_touch: u64,
}

impl LineState {
    pub(super) fn mem_version(&self) -> Version {
        self.mem.as_ref().map_or(Version::INITIAL, |m| m.version)
    }

    /// Index of `keyid`'s alias state, created if absent.
    pub(super) fn alias_index(&mut self, keyid: KeyId) -> usize {
        if let Some(i) = self.aliases.iter().position(|a| a.keyid == keyid) {
            return i;
        }
        if self.aliases.len() >= ALIASES_BEFORE_PRUNE {
            self.prune_aliases();
        }
        self.aliases.push(AliasState::new(keyid));
        self.aliases.len() - 1
    }

    pub(super) fn alias(&self, keyid: KeyId) -> Option<&AliasState> {
        self.aliases.iter().find(|a| a.keyid == keyid)
    }

    /// Drops non-resident aliases except the two with the newest stores. A non-resident alias
    /// matters to the checker only through its newest store (for stale reads through other
    /// aliases), and that check needs the newest store of every alias but the reader: the top
    /// two suffice.
    fn prune_aliases(&mut self) {
        let mut top: [Option<(Version, KeyId)>; 2] = [None, None];
        for a in &self.aliases {
            let key = Some((a.newest_store, a.keyid));
            if key > top[0] {
                top[1] = top[0];
                top[0] = key;
            } else if key > top[1] {
                top[1] = key;
            }
        }
        let keep = |k: KeyId| top.iter().flatten().any(|&(_, t)| t == k);
        self.aliases.retain(|a| a.resident() || keep(a.keyid));
    }

    /// No alias of the line has anything in the hierarchy: forgetting the line loses only
    /// history, never a pending write-back or a cached copy the checker must date.
    pub(super) fn is_idle(&self) -> bool {
        !self.aliases.iter().any(AliasState::resident)
    }

    /// Memory's content changed outside the hierarchy (an attack): a new generation, and no
    /// alias's read from it, in flight or to come, returns bytes the checker can predict.
    pub(super) fn alter_memory(&mut self) {
        self.mem_generation += 1;
        self.mem_altered = true;
        for a in &mut self.aliases {
            if let Some(read) = &mut a.pending_read {
                read.bytes = None;
            }
        }
    }

    pub(super) fn push_history(&mut self, entry: ChainEntry, cap: usize) {
        if cap == 0 {
            return;
        }
        if self.history.len() == cap {
            self.history.pop_front();
        }
        self.history.push_back(entry);
    }
}

/// The per-line table, with the bound on lines that have nothing in the hierarchy.
#[derive(Debug)]
pub(super) struct LineTable {
    map: DetHashMap<DramAddr, LineState>,
    /// Sweep when the table reaches this many lines.
    next_sweep_len: usize,
    idle_lines_max: usize,
    history_cap: usize,
    /// Buffers of forgotten lines kept for reuse, so that a streaming workload (a new DRAM
    /// line every few events) does not allocate in steady state. At most as many as the
    /// insertions between two sweeps: the buffers a sweep frees are exactly those the next
    /// lines need, and memory stays what the forgotten lines used.
    history_pool: Vec<VecDeque<ChainEntry>>,
    alias_pool: Vec<Vec<AliasState>>,
    pool_max: usize,
    scratch: Vec<(u64, DramAddr)>,
    forgotten: u64,
}

impl LineTable {
    pub(super) fn new(idle_lines_max: usize, history_cap: usize) -> LineTable {
        LineTable {
            map: DetHashMap::default(),
            next_sweep_len: idle_lines_max.max(1),
            idle_lines_max,
            history_cap,
            history_pool: Vec::new(),
            alias_pool: Vec::new(),
            pool_max: (idle_lines_max - idle_lines_max / 2).max(1),
            scratch: Vec::new(),
            forgotten: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    pub(super) fn forgotten(&self) -> u64 {
        self.forgotten
    }

    pub(super) fn get(&self, dram: DramAddr) -> Option<&LineState> {
        self.map.get(&dram)
    }

    pub(super) fn get_mut(&mut self, dram: DramAddr) -> Option<&mut LineState> {
        self.map.get_mut(&dram)
    }

    /// The DRAM lines (ascending) where `keyid`'s alias is resident. Walks the whole table: used
    /// only when a PCONFIG finds the KeyID resident, i.e. when there is a violation to report.
    pub(super) fn resident_lines(&self, keyid: KeyId) -> Vec<DramAddr> {
        let mut lines: Vec<DramAddr> = self
            .map
            .iter()
            .filter(|(_, s)| s.alias(keyid).is_some_and(AliasState::resident))
            .map(|(&d, _)| d)
            .collect();
        lines.sort_unstable();
        lines
    }

    /// Marks the bytes of every read through `keyid` still in flight as unknown. Walks the
    /// whole table: used only when a key changes (PCONFIG's latency is some thousand cycles).
    pub(super) fn forget_pending_bytes(&mut self, keyid: KeyId) {
        for state in self.map.values_mut() {
            for a in &mut state.aliases {
                if a.keyid == keyid
                    && let Some(read) = &mut a.pending_read
                {
                    read.bytes = None;
                }
            }
        }
    }

    /// The state of `dram`, created (from pooled buffers) if absent, stamped with `touch`.
    pub(super) fn touch(&mut self, dram: DramAddr, touch: u64) -> &mut LineState {
        // Length first: the extra lookup happens only when a sweep or room is due.
        let len = self.map.len();
        if (len >= self.next_sweep_len || needs_room(len, self.map.capacity()))
            && !self.map.contains_key(&dram)
        {
            if len >= self.next_sweep_len {
                self.sweep();
            }
            let len = self.map.len();
            if needs_room(len, self.map.capacity()) {
                self.map.reserve(len + 1);
            }
        }
        let history_cap = self.history_cap;
        let history_pool = &mut self.history_pool;
        let alias_pool = &mut self.alias_pool;
        let state = self.map.entry(dram).or_insert_with(|| LineState {
            mem: None,
            mem_generation: 0,
            mem_altered: false,
            aliases: alias_pool.pop().unwrap_or_default(),
            history: history_pool
                .pop()
                .unwrap_or_else(|| VecDeque::with_capacity(history_cap)),
            last_touch: touch,
        });
        state.last_touch = touch;
        state
    }

    /// Forgets the least recently touched idle lines, keeping `idle_lines_max / 2` of them, and
    /// schedules the next sweep `idle_lines_max - idle_lines_max / 2` insertions later (at
    /// least one). The table so never holds more than the lines resident at the last sweep plus
    /// `idle_lines_max` (plus one when it is 0 or 1), and the sweep's cost, linear in the
    /// table, is spread over that many insertions. Resident lines are never forgotten; their
    /// number is bounded by the caches' capacity.
    fn sweep(&mut self) {
        self.scratch.clear();
        for (&dram, state) in &self.map {
            if state.is_idle() {
                self.scratch.push((state.last_touch, dram));
            }
        }
        let keep = self.idle_lines_max / 2;
        if self.scratch.len() > keep {
            let drop = self.scratch.len() - keep;
            // Touch stamps are unique, so the `drop` oldest are one definite set whatever
            // order the map iterated in: the result is deterministic.
            if drop < self.scratch.len() {
                self.scratch.select_nth_unstable(drop);
            }
            let scratch = std::mem::take(&mut self.scratch);
            for &(_, dram) in &scratch[..drop] {
                if let Some(state) = self.map.remove(&dram) {
                    self.recycle(state);
                    self.forgotten += 1;
                }
            }
            self.scratch = scratch;
        }
        let slack = (self.idle_lines_max - keep).max(1);
        self.next_sweep_len = self.map.len() + slack;
    }

    fn recycle(&mut self, state: LineState) {
        let LineState {
            mut aliases,
            mut history,
            ..
        } = state;
        if self.alias_pool.len() < self.pool_max {
            aliases.clear();
            self.alias_pool.push(aliases);
        }
        if self.history_pool.len() < self.pool_max {
            history.clear();
            self.history_pool.push(history);
        }
    }
}

/// Per-KeyID counters, indexed by the raw KeyID (at most 2^15 entries).
#[derive(Debug)]
pub(super) struct KeyIdTable {
    /// DRAM lines on which the KeyID's alias is resident.
    pub resident_lines: Vec<u64>,
    /// How many times PCONFIG reprogrammed the KeyID: memory written under an older epoch
    /// reads back as garbage.
    pub epochs: Vec<u32>,
}

impl KeyIdTable {
    pub(super) fn new(keyids: usize) -> KeyIdTable {
        KeyIdTable {
            resident_lines: vec![0; keyids],
            epochs: vec![0; keyids],
        }
    }
}
