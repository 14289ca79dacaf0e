//! One event's work on one DRAM line: the per-event rules (fills, removals, loads, stores,
//! memory reads, write-backs) that date data by versions and report violations. `lib.rs` owns
//! the tables and hands each event a [`Step`] over the line it concerns.

use crate::report::{cache_name, fill_cause_name, writeback_cause_name};
use crate::state::{
    AliasState, CopySet, Dirtiness, KeyIdTable, LineState, MemWrite, PendingRead, StaleMark,
    needs_room,
};
use crate::{
    ChainEntry, ChainEvent, LostData, ModelError, ModelErrorKind, Reports, Version, Violation,
    ViolationKind,
};
use cache_model::events::{CacheId, FillCause, StoreStamp, WritebackCause};
use sim_core::{CoreId, Cycle, DramAddr, KeyId, LINE_BYTES, LineAddr, LineBytes};

/// One event's work on one DRAM line: the line's state and the checker's shared tables,
/// borrowed separately.
pub(crate) struct Step<'a> {
    pub(crate) state: &'a mut LineState,
    pub(crate) copies: &'a mut CopySet,
    pub(crate) keyids: &'a mut KeyIdTable,
    pub(crate) reports: &'a mut Reports,
    pub(crate) last_version: &'a mut u64,
    pub(crate) chain_cap: usize,
    pub(crate) line: LineAddr,
    pub(crate) dram: DramAddr,
    pub(crate) keyid: KeyId,
}

impl Step<'_> {
    /// Appends the event to the line's history. Every handler records its event before
    /// reporting, so a violation's chain ends with the event that caused it.
    pub(crate) fn record(&mut self, cycle: Cycle, event: ChainEvent, version: Option<Version>) {
        self.state.push_history(
            ChainEntry {
                cycle,
                keyid: self.keyid,
                event,
                version,
            },
            self.chain_cap,
        );
    }

    /// This event's alias, and whether it was resident before the event.
    fn alias(&mut self) -> (usize, bool) {
        let i = self.state.alias_index(self.keyid);
        (i, self.state.aliases[i].resident())
    }

    /// Keeps the per-KeyID count of lines with something in the hierarchy in step.
    fn update_residency(&mut self, i: usize, was_resident: bool) {
        let now = self.state.aliases[i].resident();
        let count = &mut self.keyids.resident_lines[self.keyid.index()];
        match (was_resident, now) {
            (false, true) => *count += 1,
            (true, false) => *count -= 1,
            (false, false) | (true, true) => {}
        }
    }

    /// What a memory read through this event's alias finds: memory's version, and the
    /// plaintext only if the alias itself wrote memory back under its current key (any other
    /// key decrypts to garbage the checker cannot predict).
    fn read_memory(&self) -> PendingRead {
        let epochs = &self.keyids.epochs;
        let generation = self.state.mem_generation;
        match &self.state.mem {
            Some(m) => PendingRead {
                version: m.version,
                generation,
                bytes: (m.keyid == self.keyid
                    && m.key_epoch == epochs[self.keyid.index()]
                    && !self.state.mem_altered)
                    .then_some(m.bytes),
            },
            None => PendingRead {
                version: Version::INITIAL,
                generation,
                bytes: None,
            },
        }
    }

    fn model_error(&mut self, cycle: Cycle, kind: ModelErrorKind, detail: impl FnOnce() -> String) {
        let (line, keyid) = (self.dram, self.keyid);
        self.reports.model_error(|| ModelError {
            cycle,
            line: Some(line),
            keyid,
            kind,
            detail: detail(),
        });
    }

    /// Builds a violation on this line; the chain is the line's history, which already ends
    /// with the current event.
    fn violation(
        &mut self,
        kind: ViolationKind,
        cycle: Cycle,
        keyids: Vec<KeyId>,
        lost: Option<Box<LostData>>,
        explanation: String,
    ) -> Option<usize> {
        let (state, dram) = (&*self.state, self.dram);
        self.reports.violation(kind, || Violation {
            kind,
            cycle,
            line: dram,
            keyids,
            lost,
            chain: state.history.iter().cloned().collect(),
            repeats: 0,
            explanation,
        })
    }

    pub(crate) fn fill(&mut self, cycle: Cycle, cache: CacheId, cause: FillCause, dirty: bool) {
        let (i, was_resident) = self.alias();
        if needs_room(self.copies.len(), self.copies.capacity()) {
            self.copies.reserve(self.copies.len() + 1);
        }
        // A second Fill of a copy already present is an upgrade or an inner write-back into an
        // outer level that still held the line: no new copy, and no new data source.
        if self.copies.insert((self.line, cache)) {
            if self.state.aliases[i].copies == 0 {
                self.refill(i, cycle, cache, cause);
            }
            self.state.aliases[i].copies += 1;
        }
        let a = &mut self.state.aliases[i];
        let phantom = dirty && a.dirty == Dirtiness::Clean;
        if phantom {
            a.dirty = Dirtiness::Phantom;
        }
        let version = a.version;
        self.record(
            cycle,
            ChainEvent::Fill {
                cache,
                cause,
                dirty,
            },
            Some(version),
        );
        if phantom {
            let keyid = self.keyid;
            self.violation(
                ViolationKind::PhantomDirty,
                cycle,
                vec![keyid],
                None,
                format!(
                    "a copy through KeyID {keyid} arrived dirty in {} ({} fill) though no \
                     committed store through KeyID {keyid} awaits write-back: only a committed \
                     store may make a line dirty",
                    cache_name(cache),
                    fill_cause_name(cause)
                ),
            );
            self.dual_dirty(i, cycle, || {
                format!(
                    "a dirty {} fill into {}",
                    fill_cause_name(cause),
                    cache_name(cache)
                )
            });
        }
        self.update_residency(i, was_resident);
    }

    /// The first copy of an uncached alias arrived: date its data by where it came from.
    fn refill(&mut self, i: usize, cycle: Cycle, cache: CacheId, cause: FillCause) {
        let a = &mut self.state.aliases[i];
        if a.dirty != Dirtiness::Clean {
            // The alias's dirty data is still on its way to memory (a write-back buffer); a
            // correct hierarchy refills from it, so the alias keeps its data and version.
            a.pending_read = None;
            return;
        }
        if let Some(read) = a.pending_read.take() {
            a.version = read.version;
            a.read_version = read.version;
            a.stamp = StoreStamp::MEMORY;
            a.bytes = read.bytes;
            a.modified = false;
            a.generation = read.generation;
            a.garbled = false;
            return;
        }
        if a.last_emptied == Some(cycle) {
            // A copy left another cache this cycle: a transfer, same data.
            return;
        }
        let read = self.read_memory();
        let version = read.version;
        let a = &mut self.state.aliases[i];
        a.version = read.version;
        a.read_version = read.version;
        a.stamp = StoreStamp::MEMORY;
        a.bytes = read.bytes;
        a.modified = false;
        a.generation = read.generation;
        a.garbled = false;
        let keyid = self.keyid;
        self.model_error(cycle, ModelErrorKind::FillWithoutSource, || {
            format!(
                "{} fill of KeyID {keyid} into {} while no copy of that alias was cached, \
                 without a MemRead before it or a copy leaving another cache in the same cycle; \
                 dating it with memory's {version}",
                fill_cause_name(cause),
                cache_name(cache)
            )
        });
    }

    pub(crate) fn remove(&mut self, cycle: Cycle, cache: CacheId, event: ChainEvent) {
        let (i, was_resident) = self.alias();
        if self.copies.remove(&(self.line, cache)) {
            let a = &mut self.state.aliases[i];
            a.copies -= 1;
            if a.copies == 0 {
                a.last_emptied = Some(cycle);
            }
        } else {
            let keyid = self.keyid;
            self.model_error(cycle, ModelErrorKind::RemoveWithoutFill, || {
                format!(
                    "{} removed a copy of KeyID {keyid}'s alias that no Fill put there",
                    cache_name(cache)
                )
            });
        }
        let version = self.state.aliases[i].version;
        self.record(cycle, event, Some(version));
        self.update_residency(i, was_resident);
    }

    pub(crate) fn store(
        &mut self,
        cycle: Cycle,
        core: CoreId,
        offset: u8,
        len: u8,
        data: &LineBytes,
        stamp: StoreStamp,
    ) {
        let (i, was_resident) = self.alias();
        // A store's version is the hierarchy's number for it: the stamp its data carries from
        // now on, in the caches and to memory (how a write-back is dated, whatever its bytes).
        let last = *self.last_version;
        if stamp.get() <= last {
            let keyid = self.keyid;
            self.model_error(cycle, ModelErrorKind::StoreStampOutOfOrder, || {
                format!(
                    "store by core {} through KeyID {keyid} carries {stamp}, not after the \
                     previous store's #{last}: the hierarchy must number committed stores in \
                     the order it applies them",
                    core.get()
                )
            });
        }
        *self.last_version = last.max(stamp.get());
        let version = Version::new(stamp.get());
        let a = &mut self.state.aliases[i];
        // A store merges into the alias's current line; the bytes it did not write must be
        // the ones the alias held. Checked only while the alias has data in the hierarchy (a
        // no-write-allocate store to an uncached line merges into nothing the checker saw).
        let start = usize::from(offset).min(LINE_BYTES);
        let end = (start + usize::from(len)).min(LINE_BYTES);
        let merge_mismatch = a.resident()
            && a.bytes
                .as_ref()
                .is_some_and(|old| old[..start] != data[..start] || old[end..] != data[end..]);
        let was_clean = a.dirty == Dirtiness::Clean;
        a.version = version;
        a.stamp = stamp;
        a.modified = true;
        a.garbled = false;
        a.newest_store = a.newest_store.max(version);
        a.bytes = Some(*data);
        a.dirty = match a.dirty {
            Dirtiness::Stored { since } => Dirtiness::Stored { since },
            Dirtiness::Clean | Dirtiness::Phantom => Dirtiness::Stored { since: version },
        };
        if merge_mismatch {
            let keyid = self.keyid;
            self.model_error(cycle, ModelErrorKind::StoreMergeMismatch, || {
                format!(
                    "store {version} by core {} through KeyID {keyid} to bytes {start}..{end} \
                     changed bytes outside that range, or merged into data other than the \
                     alias's current line",
                    core.get()
                )
            });
        }
        self.record(
            cycle,
            ChainEvent::Store { core, offset, len },
            Some(version),
        );
        // A Phantom alias was already dirty; its dual-dirty report, if any, was made then.
        if was_clean {
            self.dual_dirty(i, cycle, || {
                format!("store {version} by core {}", core.get())
            });
        }
        self.update_residency(i, was_resident);
    }

    /// Alias `i` just became dirty: report if another alias of the line is dirty too.
    fn dual_dirty(&mut self, i: usize, cycle: Cycle, how: impl FnOnce() -> String) {
        let others = || {
            self.state
                .aliases
                .iter()
                .enumerate()
                .filter(move |&(j, a)| j != i && a.dirty != Dirtiness::Clean)
                .map(|(_, a)| a)
        };
        if others().next().is_none() {
            return;
        }
        let mut dirty: Vec<&AliasState> = others().collect();
        dirty.sort_unstable_by_key(|a| a.keyid);
        let mut keyids = vec![self.keyid];
        keyids.extend(dirty.iter().map(|a| a.keyid));
        let described: Vec<String> = dirty
            .iter()
            .map(|a| match a.dirty {
                Dirtiness::Stored { since } => {
                    format!("KeyID {} (stores since {since} not written back)", a.keyid)
                }
                Dirtiness::Phantom => format!("KeyID {} (a phantom-dirty copy)", a.keyid),
                Dirtiness::Clean => unreachable!("filtered out"),
            })
            .collect();
        let explanation = format!(
            "KeyID {} became dirty ({}) while {} still held unwritten data: two aliases of DRAM \
             line {:#x} are dirty at once, and whichever is written back last overwrites the \
             other",
            self.keyid,
            how(),
            described.join(" and "),
            self.dram.raw()
        );
        self.violation(ViolationKind::DualDirty, cycle, keyids, None, explanation);
    }

    pub(crate) fn load(&mut self, cycle: Cycle, core: CoreId, data: &LineBytes, event: ChainEvent) {
        let (i, _) = self.alias();
        let mem_version = self.state.mem_version();
        let a = &mut self.state.aliases[i];
        let cached = a.resident();
        // Which data did the load see? A resident alias's own; otherwise memory's, as of the
        // read request if one is pending (a load may be reported before the fill that answers
        // it).
        let read = if cached {
            a.version
        } else {
            a.pending_read.as_ref().map_or(mem_version, |r| r.version)
        };
        let mismatch = cached && a.bytes.as_ref().is_some_and(|known| known != data);
        if cached {
            // Learn the alias's bytes (after a fill through another key they are garbage the
            // checker cannot predict; from here on they must stay put).
            a.bytes = Some(*data);
        }
        if mismatch {
            let keyid = self.keyid;
            self.model_error(cycle, ModelErrorKind::LoadDataMismatch, || {
                format!(
                    "load by core {} through KeyID {keyid} returned bytes other than the alias's \
                     current data ({read}) while the alias stayed cached",
                    core.get()
                )
            });
        }
        self.record(cycle, event, Some(read));

        // The newest store through any other alias.
        let newer = self
            .state
            .aliases
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, a)| (a.newest_store, a.keyid))
            .max();
        let Some((newer, by)) = newer else {
            return;
        };
        if read >= newer {
            return;
        }
        if let Some(mark) = self.state.aliases[i].stale
            && mark.read == read
            && mark.newer == newer
        {
            if let Some(v) = mark.violation {
                self.reports.violations[v].repeats += 1;
            }
            return;
        }
        let keyid = self.keyid;
        let store_unwritten = self
            .state
            .alias(by)
            .is_some_and(|a| a.dirty != Dirtiness::Clean);
        let why = if store_unwritten {
            format!("the store is still in KeyID {by}'s dirty copy, which no flush wrote back")
        } else if mem_version >= newer {
            format!(
                "KeyID {keyid}'s cached copy predates that store and no flush of KeyID {keyid} \
                 invalidated it"
            )
        } else {
            "memory no longer holds that store: an older write-back replaced it".to_string()
        };
        let explanation = format!(
            "load by core {} through KeyID {keyid} returned data {read}, older than store \
             {newer} through KeyID {by}: {why}",
            core.get()
        );
        let v = self.violation(
            ViolationKind::StaleRead,
            cycle,
            vec![keyid, by],
            None,
            explanation,
        );
        self.state.aliases[i].stale = Some(StaleMark {
            violation: v,
            read,
            newer,
        });
    }

    pub(crate) fn mem_read(&mut self, cycle: Cycle, cause: FillCause) {
        let (i, _) = self.alias();
        let read = self.read_memory();
        let version = read.version;
        let a = &mut self.state.aliases[i];
        // Only a read for an uncached, clean alias dates the alias: a resident alias's copies
        // (or its pending write-back) stay the authority on its data.
        if !a.resident() {
            a.pending_read = Some(read);
        }
        self.record(cycle, ChainEvent::MemRead { cause }, Some(version));
    }

    pub(crate) fn writeback(
        &mut self,
        cycle: Cycle,
        data: &LineBytes,
        stamp: StoreStamp,
        cause: WritebackCause,
        dirtied_by_store: bool,
    ) {
        let (i, was_resident) = self.alias();
        let keyid = self.keyid;
        let epoch = self.keyids.epochs[keyid.index()];
        let a = &mut self.state.aliases[i];
        // Date the data written by the store it carries, never by its bytes (two stores of
        // equal bytes are different data). Normally it is the alias's current data. Another
        // stamp means an older copy (a non-inclusive hierarchy can write one back while a
        // newer copy stays cached): its version is its stamp's store, or what the alias last
        // read from memory if no store touched it.
        let current = stamp == a.stamp;
        let written = if current {
            a.version
        } else if stamp == StoreStamp::MEMORY {
            a.read_version
        } else {
            Version::new(stamp.get())
        };
        let bytes_differ = current && a.bytes.as_ref().is_some_and(|b| b != data);
        let garbled = current && a.garbled;
        // Data read from memory and written back unmodified, under the key it was read with,
        // while memory is still as it was read, re-encrypts to the very ciphertext memory
        // holds: nothing changes, and memory's data stays whoever wrote it (a phantom copy of
        // another alias's line does not make that line its own).
        let unchanged =
            current && !a.modified && !garbled && a.generation == self.state.mem_generation;
        let never_stored = a.newest_store == Version::INITIAL;
        let was_phantom = a.dirty == Dirtiness::Phantom;
        if current {
            // Memory now holds the alias's data under its current key.
            a.garbled = false;
            a.modified = false;
            a.generation = self.state.mem_generation + u64::from(!unchanged);
            if written == a.version {
                // Memory has the alias's newest data: nothing of it is left unwritten.
                a.dirty = Dirtiness::Clean;
            }
        }

        if dirtied_by_store && never_stored {
            self.model_error(cycle, ModelErrorKind::WritebackWithoutStore, || {
                format!(
                    "write-back ({}) through KeyID {keyid} claims a committed store dirtied the \
                     line, but no store through KeyID {keyid} was seen",
                    writeback_cause_name(cause)
                )
            });
        }
        let previous = if unchanged {
            None
        } else {
            self.state.mem_generation += 1;
            self.state.mem_altered = false;
            self.state.mem.replace(MemWrite {
                version: written,
                generation: self.state.mem_generation,
                keyid,
                key_epoch: epoch,
                bytes: *data,
            })
        };
        // Data under a key that PCONFIG has since replaced is unreadable by anyone: it is no
        // longer there to lose.
        let live = |p: &MemWrite, epochs: &[u32]| p.key_epoch == epochs[p.keyid.index()];
        if bytes_differ {
            self.model_error(cycle, ModelErrorKind::WritebackDataMismatch, || {
                format!(
                    "write-back ({}) through KeyID {keyid} carries the alias's current data \
                     ({stamp}, {written}) but other bytes than that data",
                    writeback_cause_name(cause)
                )
            });
        }
        if let Some(p) = &previous
            && p.keyid == keyid
            && current
            && written < p.version
        {
            let before = p.version;
            self.model_error(cycle, ModelErrorKind::WritebackRegression, || {
                format!(
                    "KeyID {keyid} wrote back data {written} over its own newer write-back \
                     {before}: the hierarchy held two versions of one alias"
                )
            });
        }
        self.record(
            cycle,
            ChainEvent::MemWriteback {
                cause,
                dirtied_by_store,
            },
            Some(written),
        );

        // The loss: memory held another alias's readable data, and this write-back, which
        // re-encrypts the whole line under this alias's key, is older; or as old, but
        // garbled by a key change, so that it no longer re-encrypts to what memory held.
        if let Some(p) = previous
            && p.keyid != keyid
            && live(&p, &self.keyids.epochs)
            && (written < p.version || (garbled && written == p.version))
        {
            let what = if garbled {
                format!(
                    "data {written} read under its previous key (PCONFIG since), which \
                     re-encrypts to other ciphertext,"
                )
            } else if current {
                format!("data {written}")
            } else {
                format!("an older copy, data {written},")
            };
            // Dirty data still in the caches that would put the lost data back, or newer data,
            // makes the loss transient (see `LostData::recoverable_by`).
            let recoverable_by = self
                .state
                .aliases
                .iter()
                .filter(|a| match a.dirty {
                    Dirtiness::Clean => false,
                    Dirtiness::Stored { .. } => a.newest_store > p.version,
                    Dirtiness::Phantom => !a.modified && !a.garbled && a.generation == p.generation,
                })
                .map(|a| (a.version, a.keyid))
                .max()
                .map(|(version, k)| (k, version));
            let finality = match recoverable_by {
                None => format!("KeyID {}'s line is lost", p.keyid),
                Some((k, v)) => format!(
                    "KeyID {}'s line is lost, though KeyID {k} still holds dirty data {v}, which \
                     would put it back or supersede it",
                    p.keyid
                ),
            };
            let explanation = format!(
                "write-back ({}) through KeyID {keyid} of {what} overwrote data {} that KeyID \
                 {} had written back: {finality}",
                writeback_cause_name(cause),
                p.version,
                p.keyid,
            );
            let lost = LostData {
                lost_keyid: p.keyid,
                lost_version: p.version,
                lost_bytes: p.bytes,
                writer_keyid: keyid,
                writer_version: written,
                writer_current: current,
                writer_garbled: garbled,
                written_bytes: *data,
                recoverable_by,
            };
            self.violation(
                ViolationKind::DataLoss,
                cycle,
                vec![keyid, p.keyid],
                Some(Box::new(lost)),
                explanation,
            );
        }
        // A phantom episode is reported once, when it starts: at the dirty fill if there was
        // one, otherwise here.
        if !dirtied_by_store && !was_phantom {
            self.violation(
                ViolationKind::PhantomDirty,
                cycle,
                vec![keyid],
                None,
                format!(
                    "write-back ({}) through KeyID {keyid} of a line no committed store made \
                     dirty: only a committed store may make a line dirty",
                    writeback_cause_name(cause)
                ),
            );
        }
        self.update_residency(i, was_resident);
    }
}
