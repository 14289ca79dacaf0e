//! The replay of a run: the stream the checker was fed, read again into the [`Reference`]
//! (every committed store, under its KeyID's key generation of the moment) and into a plain
//! account of each alias of each line, in the terms of docs/coherency-checker.md ("How
//! versions work"): its copies (from fills and removals), the stamp and version of its data,
//! whether its newest store reached memory; and of what memory holds. From these it derives
//! what the checker owes:
//!
//! - **divergences** from the reference: a load that returned other bytes than the reference
//!   says (D1), older bytes of its own KeyID that a later store replaced (D2), or bytes from
//!   before its KeyID's key changed (D5); a line that ends other than its last store (D3, owed
//!   by the checks, which read DRAM). Each must be reported no later than it became visible;
//! - **hazards**: the situations each kind of report names. Every report must be one of them
//!   (no false alarm), and every hazard must be reported.

use crate::case::{KERNEL_KEYIDS, Shape};
use crate::compile::Compiled;
use crate::reference::Reference;
use crate::run::Outcome;
use cache_model::{CacheEvent, CacheId, FillCause, StoreStamp};
use checker::ViolationKind;
use cpu_model::SystemEvent;
use cpu_model::program::{OpKind, OpOutcome, OpTag};
use mem_ctrl::pconfig::{KeyCommand, PconfigOutcome, PconfigStatus};
use sim_core::{AddressLayout, LineBytes, MemEvent};
use std::collections::{BTreeMap, BTreeSet};

/// How long before a key change a write-back may still be waiting to enter its memory
/// controller (and be encrypted with the new key): generated cases never fill a controller's
/// queue for longer.
const WRITEBACK_IN_FLIGHT_CYCLES: u64 = 500;

/// Bytes a load must share with an older write to be recognised as returning it (a chance
/// match of garbage is then 2^-64 unlikely).
const RECOGNISED_BYTES: usize = 8;

/// What a KeyID encrypts with, as far as the properties care: two KeyIDs with equal identities
/// turn equal plaintext into equal ciphertext, two with different ones into different.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum KeyIdentity {
    /// The TME platform key (KeyID 0, and KeyIDs in TME behaviour).
    Platform,
    /// Plaintext in DRAM (NO_ENCRYPT, or TME behaviour under bypass).
    Plain,
    /// SET_KEY_DIRECT: the algorithm bits and both key fields.
    Direct(u16, Vec<u8>),
    /// SET_KEY_RANDOM: a fresh key each time.
    Random(usize),
}

/// Whether an alias holds data memory does not have.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
enum Dirty {
    #[default]
    Clean,
    /// A committed store not yet written back.
    Stored,
    /// A dirty fill with no store waiting (the knob).
    Phantom,
}

/// One DRAM line under one KeyID, as the events tell it, in the terms of
/// docs/coherency-checker.md ("How versions work").
#[derive(Clone, Debug, Default)]
struct Alias {
    copies: BTreeSet<CacheId>,
    /// The stamp its current data carries (0: read from memory, no store since).
    stamp: u64,
    /// The version of its current data: its newest store, or memory's version when it was
    /// read with no copy cached.
    version: u64,
    /// The version it last read from memory (that of a write-back stamped `MEMORY`).
    read_version: u64,
    /// A store changed the data since it last matched memory.
    modified: bool,
    /// Memory's content generation when its data last matched memory.
    mem_generation: u64,
    /// Its key changed while its unmodified copies were cached.
    garbled: bool,
    newest_store: u64,
    dirty: Dirty,
    /// A memory read in flight with no copy cached: memory's version and generation then.
    pending_read: Option<(u64, u64)>,
    last_emptied: Option<u64>,
    /// A memory read through it was issued and no fill from memory has answered it yet.
    read_in_flight: bool,
    /// The last write-back through it.
    last_writeback: Option<u64>,
    /// Its copies may hold plaintext decrypted under a key that changed while the read was in
    /// flight: the checker does not see that (docs/coherency-checker.md, "What is not
    /// checked", memory-controller ordering). Cleared when the last copy goes.
    read_across_key_change: bool,
}

impl Alias {
    fn resident(&self) -> bool {
        !self.copies.is_empty() || self.dirty != Dirty::Clean
    }
}

/// What memory holds for one DRAM line, by the events.
#[derive(Clone, Debug, Default)]
struct MemLine {
    version: u64,
    writer: Option<u16>,
    writer_generation: u32,
    /// Changes of content.
    generation: u64,
    /// A write-back through this KeyID left the hierarchy shortly before the KeyID's key
    /// changed: the controller may have encrypted it with the new key. Cleared by the next
    /// write-back.
    written_across_key_change: BTreeSet<u16>,
}

/// A report the checker owes: one of `kinds` (with the KeyID among its KeyIDs, when given) on
/// `dram`, at a cycle no later than `by`.
#[derive(Debug)]
pub struct Owed {
    pub kinds: Vec<(ViolationKind, Option<u16>)>,
    pub dram: u64,
    pub by: u64,
    /// Exactly at `by`, not earlier.
    pub exact: bool,
    pub why: String,
}

/// The replay of a run's events.
pub struct Replay<'a> {
    shape: &'a Shape,
    layout: AddressLayout,
    pub generation: BTreeMap<u16, u32>,
    /// Each KeyID's key, by generation.
    identities: BTreeMap<u16, Vec<KeyIdentity>>,
    /// What every KeyID starts with: TME behaviour.
    tme: KeyIdentity,
    /// Key changes the key service made (each a fresh random key).
    kernel_keys: usize,
    /// Successful PCONFIGs by (cycle, KeyID): the identity they install.
    installs: BTreeMap<(u64, u16), KeyIdentity>,
    pub reference: Reference,
    aliases: BTreeMap<(u64, u16), Alias>,
    memory: BTreeMap<u64, MemLine>,
    pub last_writeback: BTreeMap<u64, u64>,
    /// Every write-back: (cycle, KeyID, its key generation, the plaintext, whether a store
    /// made it).
    pub writebacks: Vec<(u64, u16, u32, LineBytes, bool)>,
    pub owed: Vec<Owed>,
    /// Hazards: (kind, cycle, dram, acting KeyID, other KeyIDs).
    pub hazards: Vec<(ViolationKind, u64, u64, u16, Vec<u16>)>,
    pub failures: Vec<String>,
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl<'a> Replay<'a> {
    pub fn new(shape: &'a Shape, compiled: &Compiled, outcome: &Outcome) -> Replay<'a> {
        let tme = if shape.tme_bypass {
            KeyIdentity::Plain
        } else {
            KeyIdentity::Platform
        };
        let ops: BTreeMap<OpTag, &OpKind> = compiled
            .programs
            .iter()
            .flat_map(|p| p.ops.iter())
            .map(|op| (op.tag, &op.kind))
            .collect();
        let mut installs = BTreeMap::new();
        for (n, r) in outcome.results.iter().enumerate() {
            if r.outcome != OpOutcome::Pconfig(PconfigOutcome::Status(PconfigStatus::Success)) {
                continue;
            }
            let Some(OpKind::Pconfig { call }) = ops.get(&r.tag) else {
                continue;
            };
            let p = &call.program;
            let command = KeyCommand::ALL
                .into_iter()
                .find(|c| c.code() == p.command_code());
            let identity = match command {
                Some(KeyCommand::SetKeyDirect) => {
                    let mut k = p.key_field_1.to_vec();
                    k.extend_from_slice(&p.key_field_2);
                    KeyIdentity::Direct(p.enc_alg(), k)
                }
                Some(KeyCommand::SetKeyRandom) => KeyIdentity::Random(n),
                Some(KeyCommand::ClearKey) => tme.clone(),
                Some(KeyCommand::NoEncrypt) | None => KeyIdentity::Plain,
            };
            installs.insert((r.cycle.get(), p.keyid), identity);
        }
        Replay {
            shape,
            layout: crate::case::layout(),
            generation: BTreeMap::new(),
            identities: BTreeMap::new(),
            tme,
            kernel_keys: 0,
            installs,
            reference: Reference::default(),
            aliases: BTreeMap::new(),
            memory: BTreeMap::new(),
            last_writeback: BTreeMap::new(),
            writebacks: Vec::new(),
            owed: Vec::new(),
            hazards: Vec::new(),
            failures: Vec::new(),
        }
    }

    pub fn generation(&self, keyid: u16) -> u32 {
        self.generation.get(&keyid).copied().unwrap_or(0)
    }

    pub fn identity(&self, keyid: u16, generation: u32) -> KeyIdentity {
        match (generation, self.identities.get(&keyid)) {
            (0, _) => self.tme.clone(),
            (g, Some(v)) => v[g as usize - 1].clone(),
            (_, None) => unreachable!("a key generation without a key change"),
        }
    }

    /// Whether `keyid` encrypts at key generation `generation` and every later one (of the
    /// whole run, once replayed).
    pub fn encrypts_from(&self, keyid: u16, generation: u32) -> bool {
        let changes = self.identities.get(&keyid).map_or(0, Vec::len) as u32;
        (generation..=changes).all(|g| self.identity(keyid, g) != KeyIdentity::Plain)
    }

    fn alias(&mut self, dram: u64, keyid: u16) -> &mut Alias {
        self.aliases.entry((dram, keyid)).or_default()
    }

    fn others_dirty(&self, dram: u64, keyid: u16) -> Vec<u16> {
        self.aliases
            .iter()
            .filter(|&(&(d, k), a)| d == dram && k != keyid && a.dirty != Dirty::Clean)
            .map(|(&(_, k), _)| k)
            .collect()
    }

    fn hazard(&mut self, kind: ViolationKind, cycle: u64, dram: u64, keyid: u16, others: Vec<u16>) {
        self.hazards.push((kind, cycle, dram, keyid, others));
    }

    pub fn owe(&mut self, kinds: &[(ViolationKind, Option<u16>)], dram: u64, by: u64, why: String) {
        self.owed.push(Owed {
            kinds: kinds.to_vec(),
            dram,
            by,
            exact: false,
            why,
        });
    }

    pub fn replay(&mut self, events: &[SystemEvent]) {
        for e in events {
            match e {
                SystemEvent::Memory(MemEvent::KeyChanged { cycle, keyid }) => {
                    self.key_changed(cycle.get(), keyid.get());
                }
                SystemEvent::Cache(c) => self.cache_event(c),
                SystemEvent::Memory(
                    a @ (MemEvent::DimmWritten { .. }
                    | MemEvent::BusRewritten { .. }
                    | MemEvent::DimmAlias { .. }),
                ) => panic!("generated cases run no attacker, yet the memory side reported {a:?}"),
            }
        }
    }

    fn key_changed(&mut self, cycle: u64, keyid: u16) {
        // Every line of the KeyID still cached, or dirty on its way, is reprogrammed while
        // cached.
        let resident: Vec<u64> = self
            .aliases
            .iter()
            .filter(|&(&(_, k), a)| k == keyid && a.resident())
            .map(|(&(d, _), _)| d)
            .collect();
        for dram in resident {
            self.hazard(
                ViolationKind::ReprogramWhileCached,
                cycle,
                dram,
                keyid,
                Vec::new(),
            );
            self.owed.push(Owed {
                kinds: vec![(ViolationKind::ReprogramWhileCached, Some(keyid))],
                dram,
                by: cycle,
                exact: true,
                why: format!("KeyID {keyid}'s key changed at cycle {cycle} with the line cached"),
            });
        }
        // Reads and write-backs that may have straddled the change: a read in flight is
        // decrypted with whichever key is in force when its data moves; a write-back made
        // shortly before may enter the controller (and be encrypted) after.
        let recent = |c: Option<u64>| c.is_some_and(|c| c + WRITEBACK_IN_FLIGHT_CYCLES >= cycle);
        let mut written = Vec::new();
        for (&(dram, k), a) in self.aliases.iter_mut() {
            if k != keyid {
                continue;
            }
            if a.resident() && !a.modified {
                // Its copies hold plaintext decrypted under the old key.
                a.garbled = true;
            }
            if a.read_in_flight {
                a.read_across_key_change = true;
            }
            if recent(a.last_writeback) {
                written.push(dram);
            }
        }
        for dram in written {
            self.memory
                .entry(dram)
                .or_default()
                .written_across_key_change
                .insert(keyid);
        }
        let generation = self.generation.entry(keyid).or_insert(0);
        *generation += 1;
        let identity = match self.installs.get(&(cycle, keyid)) {
            Some(i) => i.clone(),
            // The key service's PCONFIG (`add_key` with `type=cpu`): a random key.
            None if (1..=KERNEL_KEYIDS).contains(&keyid) => {
                self.kernel_keys += 1;
                KeyIdentity::Random(usize::MAX - self.kernel_keys)
            }
            None => {
                self.failures.push(format!(
                    "KeyID {keyid}'s key changed at cycle {cycle}, when no PCONFIG of it \
                     completed successfully"
                ));
                KeyIdentity::Random(usize::MAX)
            }
        };
        // Generation g (g >= 1) is the key the g-th change installed.
        self.identities.entry(keyid).or_default().push(identity);
    }

    fn cache_event(&mut self, event: &CacheEvent) {
        let knob = self.shape.knob;
        let Some(line) = event.line() else {
            return;
        };
        let cycle = event.cycle().get();
        let keyid = self.layout.line_keyid(line).get();
        let dram = self.layout.line_dram_addr(line).raw();
        match *event {
            CacheEvent::Fill {
                cache,
                cause,
                dirty,
                ..
            } => {
                if dirty && matches!(cause, FillCause::Prefetch | FillCause::Speculative) && !knob {
                    self.failures.push(format!(
                        "cycle {cycle}: a {cause:?} fill of {line:?} into {cache:?} arrived \
                         dirty without the counterfactual knob"
                    ));
                }
                let a = self.alias(dram, keyid);
                let first = a.copies.is_empty();
                if cause != FillCause::InnerWriteback {
                    a.read_in_flight = false;
                }
                if !a.copies.insert(cache) {
                    let m = format!("cycle {cycle}: {line:?} filled into {cache:?} twice");
                    self.failures.push(m);
                }
                let a = self.alias(dram, keyid);
                let mut nowhere = false;
                if first && a.dirty == Dirty::Clean {
                    // The first copy: its data is what the read found, or a copy that left
                    // another cache this cycle.
                    if let Some((version, generation)) = a.pending_read.take() {
                        a.version = version;
                        a.read_version = version;
                        a.stamp = 0;
                        a.modified = false;
                        a.mem_generation = generation;
                        a.garbled = false;
                    } else {
                        nowhere = a.last_emptied != Some(cycle);
                    }
                } else if first {
                    a.pending_read = None;
                }
                let phantom = dirty && a.dirty == Dirty::Clean;
                if nowhere {
                    let m = format!("cycle {cycle}: {line:?} filled into {cache:?} from nowhere");
                    self.failures.push(m);
                }
                if phantom {
                    let a = self.alias(dram, keyid);
                    a.dirty = Dirty::Phantom;
                    self.hazard(ViolationKind::PhantomDirty, cycle, dram, keyid, Vec::new());
                    self.owe(
                        &[(ViolationKind::PhantomDirty, Some(keyid))],
                        dram,
                        cycle,
                        format!("cycle {cycle}: KeyID {keyid}'s copy arrived dirty with no store"),
                    );
                    let others = self.others_dirty(dram, keyid);
                    if !others.is_empty() {
                        self.hazard(ViolationKind::DualDirty, cycle, dram, keyid, others);
                    }
                }
            }
            CacheEvent::Remove { cache, .. } => {
                let a = self.alias(dram, keyid);
                if !a.copies.remove(&cache) {
                    let m = format!("cycle {cycle}: {line:?} removed from {cache:?}, not there");
                    self.failures.push(m);
                }
                let a = self.alias(dram, keyid);
                if a.copies.is_empty() {
                    a.last_emptied = Some(cycle);
                    a.read_across_key_change = false;
                }
            }
            CacheEvent::MemRead { .. } => {
                let mem = self.memory.get(&dram).cloned().unwrap_or_default();
                let a = self.alias(dram, keyid);
                a.read_in_flight = true;
                if !a.resident() {
                    a.pending_read = Some((mem.version, mem.generation));
                }
            }
            CacheEvent::Store {
                offset,
                len,
                ref data,
                stamp,
                ..
            } => {
                let generation = self.generation(keyid);
                let (lo, hi) = (usize::from(offset), usize::from(offset + len));
                self.reference.store_stamped(
                    dram,
                    keyid,
                    generation,
                    offset,
                    &data[lo..hi],
                    stamp.get(),
                    cycle,
                );
                let a = self.alias(dram, keyid);
                let was_clean = a.dirty == Dirty::Clean;
                a.stamp = stamp.get();
                a.version = stamp.get();
                a.modified = true;
                a.garbled = false;
                a.newest_store = a.newest_store.max(stamp.get());
                a.dirty = Dirty::Stored;
                let others = self.others_dirty(dram, keyid);
                if !others.is_empty() {
                    self.owe(
                        &[(ViolationKind::DualDirty, None)],
                        dram,
                        cycle,
                        format!(
                            "cycle {cycle}: KeyID {keyid} stored while KeyIDs {others:?} held \
                             data not written back"
                        ),
                    );
                    if was_clean {
                        self.hazard(ViolationKind::DualDirty, cycle, dram, keyid, others);
                    }
                }
            }
            CacheEvent::Load {
                offset,
                len,
                ref data,
                from,
                ..
            } => self.load(cycle, dram, keyid, offset, len, data, from.is_none()),
            CacheEvent::MemWriteback {
                ref data,
                stamp,
                dirtied_by_store,
                ..
            } => self.writeback(cycle, dram, keyid, data, stamp, dirtied_by_store),
            CacheEvent::FlushStart { .. } | CacheEvent::FlushDone { .. } => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn load(
        &mut self,
        cycle: u64,
        dram: u64,
        keyid: u16,
        offset: u8,
        len: u8,
        data: &LineBytes,
        from_memory: bool,
    ) {
        let generation = self.generation(keyid);
        // Stale by versions: older than another alias's newest store.
        let own = self
            .aliases
            .get(&(dram, keyid))
            .cloned()
            .unwrap_or_default();
        let mem_version = self.memory.get(&dram).map_or(0, |m| m.version);
        let read = if own.resident() {
            own.version
        } else {
            own.pending_read.map_or(mem_version, |(v, _)| v)
        };
        let newest_other = self
            .aliases
            .iter()
            .filter(|&(&(d, k), _)| d == dram && k != keyid)
            .map(|(&(_, k), a)| (a.newest_store, k))
            .max();
        if let Some((newer, by)) = newest_other
            && read < newer
        {
            self.hazard(ViolationKind::StaleRead, cycle, dram, keyid, vec![by]);
            self.owe(
                &[(ViolationKind::StaleRead, Some(keyid))],
                dram,
                cycle,
                format!(
                    "cycle {cycle}: a load through KeyID {keyid} returned data of version {} \
                     older than store {newer} through KeyID {by}",
                    read
                ),
            );
        }
        // Divergences from the reference.
        let history = self.reference.history(dram).to_vec();
        let Some(current) = history.last() else {
            return;
        };
        let (lo, hi) = (usize::from(offset), usize::from(offset) + usize::from(len));
        if current.keyid == keyid && current.generation == generation {
            // D1: the bytes of the last store.
            if let Some(i) = (lo..hi).find(|&i| current.known[i].is_some_and(|b| b != data[i])) {
                self.owe(
                    &[
                        (ViolationKind::DataLoss, None),
                        (ViolationKind::StaleRead, None),
                    ],
                    dram,
                    cycle,
                    format!(
                        "cycle {cycle}: a load through KeyID {keyid} of line {dram:#x} returned \
                         {:02x} at byte {i}; the last store (through KeyID {keyid}, same key, at \
                         cycle {}) left {:02x}: a lost write or a stale read (D1)",
                        data[i],
                        current.cycle,
                        current.known[i].unwrap_or(0)
                    ),
                );
            }
            return;
        }
        let now = self.identity(keyid, generation);
        let explained_by_current =
            |i: usize| current.known[i] == Some(data[i]) || current.known[i].is_none();
        for (n, h) in history.iter().enumerate() {
            if h.keyid != keyid {
                continue;
            }
            let is_current = n + 1 == history.len();
            if h.generation < generation && self.identity(keyid, h.generation) != now {
                // D5: bytes from before the KeyID's key changed.
                let a = self.aliases.get(&(dram, keyid));
                let excused = a.is_some_and(|a| a.read_across_key_change)
                    || (from_memory
                        && self
                            .memory
                            .get(&dram)
                            .is_some_and(|m| m.written_across_key_change.contains(&keyid)));
                // Bytes a write under the KeyID's current key also holds may be that write's
                // (equal bytes recur; and AES-XTS encrypts each 16-byte block alone, so blocks
                // another alias's partial write-back left untouched still decrypt to them).
                let current_key = |i: usize| {
                    history.iter().any(|w| {
                        w.keyid == keyid
                            && w.generation == generation
                            && w.known[i] == Some(data[i])
                    })
                };
                let matched = (lo..hi)
                    .filter(|&i| {
                        h.known[i] == Some(data[i])
                            && (is_current || current.known[i] != Some(data[i]))
                            && !current_key(i)
                    })
                    .count();
                if matched >= RECOGNISED_BYTES && !excused {
                    let mut kinds = vec![(ViolationKind::ReprogramWhileCached, Some(keyid))];
                    if !is_current {
                        kinds.push((ViolationKind::StaleRead, None));
                        kinds.push((ViolationKind::DataLoss, None));
                    }
                    self.owe(
                        &kinds,
                        dram,
                        cycle,
                        format!(
                            "cycle {cycle}: a load through KeyID {keyid} of line {dram:#x} \
                             returned {} bytes of the store at cycle {}, made under the key \
                             KeyID {keyid} had before a PCONFIG: data from before a key change (D5)",
                            matched, h.cycle
                        ),
                    );
                    return;
                }
            } else if h.generation == generation && !is_current {
                // D2: older bytes of its own that a later store replaced.
                let matched = (lo..hi)
                    .filter(|&i| h.known[i] == Some(data[i]) && !explained_by_current(i))
                    .count();
                if matched >= RECOGNISED_BYTES {
                    self.owe(
                        &[
                            (ViolationKind::StaleRead, None),
                            (ViolationKind::DataLoss, None),
                            (ViolationKind::ReprogramWhileCached, Some(keyid)),
                        ],
                        dram,
                        cycle,
                        format!(
                            "cycle {cycle}: a load through KeyID {keyid} of line {dram:#x} \
                             returned {matched} bytes of its store at cycle {}, which the store \
                             through KeyID {} at cycle {} replaced: a stale read (D2)",
                            h.cycle, current.keyid, current.cycle
                        ),
                    );
                    return;
                }
            }
        }
    }

    fn writeback(
        &mut self,
        cycle: u64,
        dram: u64,
        keyid: u16,
        data: &LineBytes,
        stamp: StoreStamp,
        dirtied_by_store: bool,
    ) {
        let knob = self.shape.knob;
        if !knob && (!dirtied_by_store || stamp == StoreStamp::MEMORY) {
            self.failures.push(format!(
                "cycle {cycle}: KeyID {keyid} wrote line {dram:#x} back with {stamp} \
                 (dirtied by a store: {dirtied_by_store}) without the counterfactual knob"
            ));
        }
        self.last_writeback.insert(dram, cycle);
        let generation = self.generation(keyid);
        self.writebacks
            .push((cycle, keyid, generation, *data, stamp != StoreStamp::MEMORY));

        let a = self
            .aliases
            .get(&(dram, keyid))
            .cloned()
            .unwrap_or_default();
        let mem = self.memory.get(&dram).cloned().unwrap_or_default();
        // Its current data, or an older copy (dated by its stamp, or by what the alias last
        // read when no store touched it).
        let current = stamp.get() == a.stamp;
        let written_version = if current {
            a.version
        } else if stamp == StoreStamp::MEMORY {
            a.read_version
        } else {
            stamp.get()
        };
        let garbled = current && a.garbled;
        // Unmodified, under the key it was read with, over what it read: the same ciphertext.
        let round_trip = current && !a.modified && !garbled && a.mem_generation == mem.generation;
        if !dirtied_by_store {
            self.hazard(ViolationKind::PhantomDirty, cycle, dram, keyid, Vec::new());
            self.owe(
                &[(ViolationKind::PhantomDirty, Some(keyid))],
                dram,
                cycle,
                format!("cycle {cycle}: KeyID {keyid} wrote back a line no store dirtied"),
            );
        }
        if let Some(b) = mem.writer
            && b != keyid
            && self.generation(b) == mem.writer_generation
            && !round_trip
            && (written_version < mem.version || (written_version == mem.version && garbled))
        {
            self.hazard(ViolationKind::DataLoss, cycle, dram, keyid, vec![b]);
            self.owed.push(Owed {
                kinds: vec![(ViolationKind::DataLoss, Some(keyid))],
                dram,
                by: cycle,
                exact: true,
                why: format!(
                    "cycle {cycle}: KeyID {keyid} wrote back data of version {written_version} \
                     over KeyID {b}'s version {}, still readable",
                    mem.version
                ),
            });
        }
        if !round_trip {
            let m = self.memory.entry(dram).or_default();
            m.version = written_version;
            m.writer = Some(keyid);
            m.writer_generation = generation;
            m.generation += 1;
            m.written_across_key_change.clear();
        }
        let new_generation = self.memory.get(&dram).map_or(0, |m| m.generation);
        let a = self.alias(dram, keyid);
        a.last_writeback = Some(cycle);
        if current {
            // Memory now holds the alias's data under its current key.
            a.garbled = false;
            a.modified = false;
            a.mem_generation = new_generation;
            if written_version == a.version {
                a.dirty = Dirty::Clean;
            }
        }
    }
}
