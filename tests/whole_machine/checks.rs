//! The properties, judged on what a run produced ([`Outcome`]). docs/testing.md states each.
//!
//! The recorded stream the checker was fed is replayed into the [`Reference`] (every committed
//! store, under the KeyID's key generation of the moment) and into a plain account of each
//! alias of each line: its copies (from fills and removals), its newest store, whether that
//! store reached memory, and the version of its data. From these the replay derives:
//!
//! - **divergences**: a load that returned other bytes than the reference says (D1), older
//!   bytes of its own KeyID that a later store replaced (D2), or bytes from before its
//!   KeyID's key changed (D5); a line that ends other than its last store (D3). Each must have
//!   been reported by the checker no later than the cycle it became visible;
//! - **hazards**: the situations each kind of report names, in the reference's terms. Every
//!   report must be one of them (no false alarm), and every hazard must be reported.

use crate::case::{Compiled, KERNEL_KEYIDS, Mode, Shape};
use crate::reference::Reference;
use crate::run::Outcome;
use cache_model::{CacheEvent, CacheId, FillCause, StoreStamp};
use checker::{Violation, ViolationKind};
use cpu_model::program::{OpKind, OpOutcome, OpTag};
use cpu_model::{RunEnd, SystemEvent};
use mem_ctrl::pconfig::{KeyCommand, PconfigOutcome, PconfigStatus};
use sim_core::{AddressLayout, LineBytes, MemEvent, MemOp};
use std::collections::{BTreeMap, BTreeSet};

/// How long before a key change a write-back may still be waiting to enter its memory
/// controller (and be encrypted with the new key): generated cases never fill a controller's
/// queue for longer.
const WRITEBACK_IN_FLIGHT_CYCLES: u64 = 500;

/// Bytes a load must share with an older write to be recognised as returning it (a chance
/// match of garbage is then 2^-64 unlikely).
const RECOGNISED_BYTES: usize = 8;

/// A property that does not hold: what, and expectations a replay file can state it with.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub expect: Vec<String>,
}

impl Failure {
    fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            expect: Vec::new(),
        }
    }
}

/// What a run that holds every property exercised: reports owed (and paid), by class.
#[derive(Debug, Default)]
pub struct Coverage {
    /// `D1`, `D2`, `D3`, `D5` (divergences) or a violation kind's name (hazards).
    pub owed: BTreeMap<String, usize>,
    /// Other things checked, by name.
    pub checked: BTreeMap<&'static str, usize>,
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::new(message)
    }
}

/// What a KeyID encrypts with, as far as the properties care: two KeyIDs with equal identities
/// turn equal plaintext into equal ciphertext, two with different ones into different.
#[derive(Clone, PartialEq, Eq, Debug)]
enum KeyIdentity {
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
struct Owed {
    kinds: Vec<(ViolationKind, Option<u16>)>,
    dram: u64,
    by: u64,
    /// Exactly at `by`, not earlier.
    exact: bool,
    why: String,
}

/// The replay of a run's events.
struct Replay<'a> {
    shape: &'a Shape,
    layout: AddressLayout,
    generation: BTreeMap<u16, u32>,
    /// Each KeyID's key, by generation.
    identities: BTreeMap<u16, Vec<KeyIdentity>>,
    /// Successful PCONFIGs by (cycle, KeyID): the identity they install.
    installs: BTreeMap<(u64, u16), KeyIdentity>,
    reference: Reference,
    aliases: BTreeMap<(u64, u16), Alias>,
    memory: BTreeMap<u64, MemLine>,
    last_writeback: BTreeMap<u64, u64>,
    /// Plaintext written back: surely encrypted, or possibly not.
    /// Lines of plaintext made by a store and written back through a KeyID that encrypts
    /// from then on, with the cycle; and every line written back through a KeyID that may
    /// not encrypt.
    written_encrypted: Vec<(u64, LineBytes)>,
    written_maybe_plain: BTreeSet<LineBytes>,
    owed: Vec<Owed>,
    /// Hazards: (kind, cycle, dram, acting KeyID, other KeyIDs).
    hazards: Vec<(ViolationKind, u64, u64, u16, Vec<u16>)>,
    failures: Vec<String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl<'a> Replay<'a> {
    fn new(shape: &'a Shape, compiled: &Compiled, outcome: &Outcome) -> Replay<'a> {
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
            identities: shape
                .keyids
                .iter()
                .map(|&k| (k, vec![tme.clone()]))
                .collect(),
            installs,
            reference: Reference::default(),
            aliases: BTreeMap::new(),
            memory: BTreeMap::new(),
            last_writeback: BTreeMap::new(),
            written_encrypted: Vec::new(),
            written_maybe_plain: BTreeSet::new(),
            owed: Vec::new(),
            hazards: Vec::new(),
            failures: Vec::new(),
        }
    }

    fn generation(&self, keyid: u16) -> u32 {
        self.generation.get(&keyid).copied().unwrap_or(0)
    }

    fn identity(&self, keyid: u16, generation: u32) -> KeyIdentity {
        self.identities
            .get(&keyid)
            .and_then(|v| v.get(generation as usize))
            .cloned()
            .unwrap_or(KeyIdentity::Platform)
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

    fn owe(&mut self, kinds: &[(ViolationKind, Option<u16>)], dram: u64, by: u64, why: String) {
        self.owed.push(Owed {
            kinds: kinds.to_vec(),
            dram,
            by,
            exact: false,
            why,
        });
    }

    fn replay(&mut self, events: &[SystemEvent]) {
        for e in events {
            match e {
                SystemEvent::Memory(MemEvent::KeyChanged { cycle, keyid }) => {
                    self.key_changed(cycle.get(), keyid.get());
                }
                SystemEvent::Cache(c) => self.cache_event(c),
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
            None if (1..=KERNEL_KEYIDS).contains(&keyid) => KeyIdentity::Random(usize::MAX - 1),
            None => {
                self.failures.push(format!(
                    "KeyID {keyid}'s key changed at cycle {cycle}, when no PCONFIG of it \
                     completed successfully"
                ));
                KeyIdentity::Random(usize::MAX)
            }
        };
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
                let matched = (lo..hi)
                    .filter(|&i| {
                        h.known[i] == Some(data[i])
                            && (is_current || current.known[i] != Some(data[i]))
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
        // What the bus will carry: the plaintext through a KeyID that encrypts from now on,
        // or may not.
        let encrypts = self.identities.get(&keyid).is_some_and(|v| {
            v[generation as usize..]
                .iter()
                .all(|i| *i != KeyIdentity::Plain)
        });
        if !encrypts {
            self.written_maybe_plain.insert(*data);
        } else if stamp != StoreStamp::MEMORY {
            self.written_encrypted.push((cycle, *data));
        }

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

/// Whether `v` pays what `o` owes.
fn pays(v: &Violation, o: &Owed) -> bool {
    v.line.raw() == o.dram
        && if o.exact {
            v.cycle.get() == o.by
        } else {
            v.cycle.get() <= o.by
        }
        && o.kinds.iter().any(|&(k, keyid)| {
            v.kind == k && keyid.is_none_or(|k| v.keyids.iter().any(|x| x.get() == k))
        })
}

/// Whether report `v` names a hazard the replay saw.
fn real(v: &Violation, hazards: &[(ViolationKind, u64, u64, u16, Vec<u16>)]) -> bool {
    let keyids: Vec<u16> = v.keyids.iter().map(|k| k.get()).collect();
    hazards.iter().any(|(kind, cycle, dram, actor, others)| {
        *kind == v.kind
            && *cycle == v.cycle.get()
            && *dram == v.line.raw()
            && keyids.first() == Some(actor)
            && match v.kind {
                // Every other listed KeyID held unwritten data.
                ViolationKind::DualDirty => keyids[1..].iter().all(|k| others.contains(k)),
                // The lost KeyID is the one whose write-back was overwritten.
                ViolationKind::DataLoss => keyids.get(1) == others.first(),
                _ => true,
            }
    })
}

fn violation_line(v: &Violation) -> String {
    let keyids: Vec<u16> = v.keyids.iter().map(|k| k.get()).collect();
    format!(
        "{} at cycle {} on line {:#x}, KeyIDs {keyids:?}",
        v.kind,
        v.cycle,
        v.line.raw()
    )
}

/// Every property of a run: see the module docs and docs/testing.md.
pub fn check(shape: &Shape, compiled: &Compiled, outcome: &Outcome) -> Result<Coverage, Failure> {
    check_reports(shape, compiled, outcome, &outcome.violations)
}

/// [`check`], judging `violations` as the checker's report (the demonstrations feed the
/// recorded stream to other checkers).
pub fn check_reports(
    shape: &Shape,
    compiled: &Compiled,
    outcome: &Outcome,
    violations: &[Violation],
) -> Result<Coverage, Failure> {
    if !matches!(outcome.end, RunEnd::Finished { .. }) {
        return Err(Failure::new(format!(
            "the run did not finish: {:?}",
            outcome.end
        )));
    }
    if let Some(e) = outcome.model_errors.first() {
        return Err(Failure::new(format!(
            "the checker found {} model error(s), the first: {e}",
            outcome.model_errors.len()
        )));
    }
    let mut replay = Replay::new(shape, compiled, outcome);
    replay.replay(&outcome.events);
    if let Some(f) = replay.failures.first() {
        return Err(Failure::new(f.clone()));
    }
    check_pconfig(shape, compiled, outcome)?;

    // D3: DRAM ends as the last store left each line.
    let end = match outcome.end {
        RunEnd::Finished { cycle, .. } => cycle.get(),
        _ => unreachable!("checked above"),
    };
    let lines: Vec<u64> = replay.reference.lines().collect();
    for dram in lines {
        let Some(r) = replay.reference.current(dram).cloned() else {
            continue;
        };
        if replay.generation(r.keyid) != r.generation {
            continue;
        }
        let Some(got) = outcome.plaintext.get(&(r.keyid, dram)) else {
            continue;
        };
        if let Some(i) = (0..64).find(|&i| r.known[i].is_some_and(|b| b != got[i])) {
            let by = replay.last_writeback.get(&dram).copied().unwrap_or(end);
            replay.owe(
                &[(ViolationKind::DataLoss, None)],
                dram,
                by,
                format!(
                    "line {dram:#x} ends with {:02x} at byte {i} through KeyID {}; its last store \
                     (cycle {}) left {:02x}: a lost write (D3)",
                    got[i],
                    r.keyid,
                    r.cycle,
                    r.known[i].unwrap_or(0)
                ),
            );
        }
    }

    // Every divergence and hazard reported in time.
    let unpaid: Vec<&Owed> = replay
        .owed
        .iter()
        .filter(|o| !violations.iter().any(|v| pays(v, o)))
        .collect();
    if let Some(first) = unpaid.first() {
        let mut message = String::from("not reported:");
        for o in &unpaid {
            let kinds: Vec<String> = o.kinds.iter().map(|(k, _)| k.to_string()).collect();
            message.push_str(&format!(
                "\n- {}\n  expected {} on line {:#x} {} cycle {}",
                o.why,
                kinds.join(" or "),
                o.dram,
                if o.exact { "at" } else { "by" },
                o.by,
            ));
        }
        message.push_str(&format!(
            "\nreports: {}",
            violations
                .iter()
                .map(violation_line)
                .collect::<Vec<_>>()
                .join("; ")
        ));
        return Err(Failure {
            message,
            expect: vec![format!(
                "violation(kind: {}, line: {:#x})",
                first.kinds[0].0, first.dram
            )],
        });
    }
    // Every report names a hazard.
    for v in violations {
        if !real(v, &replay.hazards) {
            return Err(Failure::new(format!(
                "a report that names no real hazard: {}\n{v}",
                violation_line(v)
            )));
        }
    }

    let mut coverage = Coverage::default();
    check_dram(shape, outcome, &replay, &mut coverage)?;
    if shape.mode == Mode::RuleAbiding {
        check_rule_abiding(compiled, outcome, violations, &mut coverage)?;
    }
    *coverage.checked.entry("key changes").or_default() += replay
        .generation
        .values()
        .map(|&g| g as usize)
        .sum::<usize>();
    for o in &replay.owed {
        let class = match o.why.rfind("(D") {
            Some(i) => o.why[i + 1..i + 3].to_owned(),
            None => o.kinds[0].0.name().to_owned(),
        };
        *coverage.owed.entry(class).or_default() += 1;
    }
    Ok(coverage)
}

/// A key changes exactly when a successful PCONFIG of it completes (its result's cycle).
fn check_pconfig(shape: &Shape, compiled: &Compiled, outcome: &Outcome) -> Result<(), Failure> {
    let keyid_of: BTreeMap<OpTag, u16> = compiled
        .programs
        .iter()
        .flat_map(|p| p.ops.iter())
        .filter_map(|op| match &op.kind {
            OpKind::Pconfig { call } => Some((op.tag, call.program.keyid)),
            _ => None,
        })
        .collect();
    let mut succeeded: Vec<(u64, u16)> = Vec::new();
    for r in &outcome.results {
        if let OpOutcome::Pconfig(o) = &r.outcome {
            if *o == PconfigOutcome::Status(PconfigStatus::Success) {
                succeeded.push((r.cycle.get(), keyid_of[&r.tag]));
            } else if shape.mode == Mode::RuleAbiding {
                return Err(Failure::new(format!(
                    "a rule-abiding PCONFIG (op {}) failed: {o}",
                    r.tag.0
                )));
            }
        }
    }
    let mut changed: Vec<(u64, u16)> = outcome
        .events
        .iter()
        .filter_map(|e| match e {
            // The key service's own PCONFIGs are no op of a program.
            SystemEvent::Memory(MemEvent::KeyChanged { keyid, .. })
                if (1..=KERNEL_KEYIDS).contains(&keyid.get()) =>
            {
                None
            }
            SystemEvent::Memory(MemEvent::KeyChanged { cycle, keyid }) => {
                Some((cycle.get(), keyid.get()))
            }
            SystemEvent::Cache(_) => None,
        })
        .collect();
    succeeded.sort_unstable();
    changed.sort_unstable();
    if succeeded != changed {
        return Err(Failure::new(format!(
            "keys changed at (cycle, KeyID) {changed:?}, successful PCONFIGs completed at \
             {succeeded:?}"
        )));
    }
    Ok(())
}

/// DRAM never holds the plaintext of a line written back through an encrypting KeyID; at the
/// end, one ciphertext read through KeyIDs of different keys gives different plaintext (equal
/// plaintext under two keys is different ciphertext), through KeyIDs of one key the same, and
/// equal plaintext at two lines under one key is different ciphertext.
fn check_dram(
    shape: &Shape,
    outcome: &Outcome,
    replay: &Replay<'_>,
    coverage: &mut Coverage,
) -> Result<(), Failure> {
    // When each line of bytes first crossed a DIMM bus (DRAM starts as zeros).
    let mut first_seen: BTreeMap<LineBytes, (u64, MemOp, u64)> = BTreeMap::new();
    first_seen.insert([0; 64], (0, MemOp::Read, 0));
    for &(cycle, op, dram, data) in &outcome.bus {
        first_seen.entry(data).or_insert((cycle, op, dram));
    }
    for (cycle, data) in &replay.written_encrypted {
        *coverage.checked.entry("encrypted write-backs").or_default() += 1;
        if replay.written_maybe_plain.contains(data) {
            continue;
        }
        // Bytes that were DRAM contents before (ciphertext, as it happens) are no secret.
        if let Some(&(seen, op, dram)) = first_seen.get(data)
            && seen >= *cycle
        {
            return Err(Failure::new(format!(
                "the DIMM bus carried plaintext: a {op:?} of line {dram:#x} at cycle {seen} \
                 moved {}, the plaintext of a line written back at cycle {cycle} through a \
                 KeyID that encrypts",
                hex(data)
            )));
        }
    }
    let keyids = &shape.keyids;
    let mut known_lines: Vec<(u64, KeyIdentity, LineBytes)> = Vec::new();
    for &dram in &shape.lines {
        for (i, &a) in keyids.iter().enumerate() {
            for &b in &keyids[i + 1..] {
                let (ia, ib) = (
                    replay.identity(a, replay.generation(a)),
                    replay.identity(b, replay.generation(b)),
                );
                let (pa, pb) = (outcome.plaintext[&(a, dram)], outcome.plaintext[&(b, dram)]);
                if (ia == ib) != (pa == pb) {
                    return Err(Failure::new(format!(
                        "line {dram:#x} reads {} through KeyID {a} ({ia:?}) and {} through \
                         KeyID {b} ({ib:?})",
                        hex(&pa),
                        hex(&pb)
                    )));
                }
            }
        }
        if let Some(r) = replay.reference.current(dram)
            && r.all_known()
            && replay.generation(r.keyid) == r.generation
        {
            let identity = replay.identity(r.keyid, r.generation);
            let plain = outcome.plaintext[&(r.keyid, dram)];
            if identity != KeyIdentity::Plain && r.bytes(0, 64).as_deref() == Some(&plain[..]) {
                known_lines.push((dram, identity, plain));
            }
        }
    }
    for (i, (d1, k1, p1)) in known_lines.iter().enumerate() {
        for (d2, k2, p2) in &known_lines[i + 1..] {
            if k1 == k2 && p1 == p2 {
                *coverage
                    .checked
                    .entry("equal plaintext at two lines")
                    .or_default() += 1;
            }
            if k1 == k2 && p1 == p2 && outcome.dimm[d1] == outcome.dimm[d2] {
                return Err(Failure::new(format!(
                    "lines {d1:#x} and {d2:#x} hold equal plaintext under one key and equal \
                     ciphertext {}",
                    hex(&outcome.dimm[d1])
                )));
            }
        }
    }
    Ok(())
}

/// A rule-abiding program: no report, no fault, every load as the program-order reference
/// says, and DRAM as it says at the end.
fn check_rule_abiding(
    compiled: &Compiled,
    outcome: &Outcome,
    violations: &[Violation],
    coverage: &mut Coverage,
) -> Result<(), Failure> {
    if let Some(v) = violations.first() {
        return Err(Failure::new(format!(
            "a rule-abiding program was reported ({} report(s)), the first:\n{v}",
            violations.len()
        )));
    }
    let mut seen = BTreeSet::new();
    for r in &outcome.results {
        match &r.outcome {
            OpOutcome::Fault(f) => {
                return Err(Failure::new(format!(
                    "a rule-abiding op faulted: op {} at cycle {}: {f:?}",
                    r.tag.0, r.cycle
                )));
            }
            OpOutcome::Kernel(Err(e)) => {
                return Err(Failure::new(format!(
                    "a rule-abiding system call failed: op {} at cycle {}: {e}",
                    r.tag.0, r.cycle
                )));
            }
            OpOutcome::Kernel(Ok(_)) => {
                *coverage
                    .checked
                    .entry("rule-abiding system calls")
                    .or_default() += 1;
            }
            OpOutcome::Load { bytes, .. } => {
                if let Some(want) = compiled.load_values.get(&r.tag) {
                    seen.insert(r.tag);
                    *coverage.checked.entry("rule-abiding loads").or_default() += 1;
                    if bytes != want {
                        return Err(Failure::new(format!(
                            "load op {} (core {}) returned {} at cycle {}; the reference says {}",
                            r.tag.0,
                            r.core.get(),
                            hex(bytes),
                            r.cycle,
                            hex(want)
                        )));
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(tag) = compiled.load_values.keys().find(|t| !seen.contains(t)) {
        return Err(Failure::new(format!("load op {} never completed", tag.0)));
    }
    for (keyid, dram, bytes) in &compiled.final_lines {
        *coverage
            .checked
            .entry("rule-abiding final lines")
            .or_default() += 1;
        let got = outcome.plaintext[&(*keyid, *dram)];
        if got != *bytes {
            return Err(Failure::new(format!(
                "line {dram:#x} ends as {} through KeyID {keyid}; the reference says {}",
                hex(&got),
                hex(bytes)
            )));
        }
    }
    Ok(())
}
