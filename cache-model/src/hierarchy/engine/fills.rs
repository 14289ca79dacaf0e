//! Lines moving between caches: a line from memory installed in the LLC, a line brought into
//! a core's L2 and L1D through the directory (snooping and invalidating other cores' copies),
//! and what every fill displaces: victims, back-invalidations, dirty data written outward.
//!
//! Everything here runs inside one atomic step and emits its events in the order it changes
//! things: a victim's `Remove` before the `Fill` that replaced it, inner copies' `Remove`
//! before the outer copy's. The alias policy's eviction happens here too, as a line from
//! memory comes on chip.

use super::flushes::FlushMode;
use super::{LLC, private};
use crate::cache::Evicted;
use crate::events::{FillCause, Level, RemoveCause, WritebackCause};
use crate::hierarchy::index::cores_in;
use crate::hierarchy::mesi::{MesiEvent, MesiState, transition};
use crate::hierarchy::mshr::AcquireKind;
use crate::hierarchy::{Hierarchy, LineData, LlcLine, PrivateLine};
use sim_core::{Cycle, LineAddr, LineBytes};

/// What a fill brings, where, and why.
#[derive(Copy, Clone, Debug)]
pub(super) struct Acquire {
    pub(super) kind: AcquireKind,
    /// Fill the L1D too (otherwise only the L2: a hardware prefetch into the L2).
    pub(super) to_l1: bool,
    pub(super) l2_cause: FillCause,
    pub(super) l1_cause: FillCause,
    /// Mark the new L2 / L1D copy as brought in by a hardware prefetch.
    pub(super) l2_prefetched: bool,
    pub(super) l1_prefetched: bool,
}

impl Acquire {
    fn l2_copy(&self, data: LineData, state: MesiState) -> NewCopy {
        NewCopy {
            data,
            state,
            cause: self.l2_cause,
            prefetched: self.l2_prefetched,
        }
    }

    fn l1_copy(&self, data: LineData, state: MesiState) -> NewCopy {
        NewCopy {
            data,
            state,
            cause: self.l1_cause,
            prefetched: self.l1_prefetched,
        }
    }
}

/// A copy about to be filled into a private cache.
#[derive(Copy, Clone, Debug)]
struct NewCopy {
    data: LineData,
    state: MesiState,
    cause: FillCause,
    /// Brought in by a hardware prefetch (for the usefulness count).
    prefetched: bool,
}

/// A core's copies of a line, dropped.
pub(super) struct Dropped {
    /// Some copy was dirty.
    dirty: bool,
    /// A committed store contributed to the dirty data.
    stored: bool,
    /// The core's newest data (its L1D copy if it had one).
    data: LineData,
}

/// Fills a prefetch or a speculative load made: dirty on arrival under the counterfactual knob.
#[inline]
fn speculative_cause(cause: FillCause) -> bool {
    matches!(cause, FillCause::Prefetch | FillCause::Speculative)
}

impl Hierarchy {
    /// Puts a line read from memory into the LLC (first evicting other-KeyID copies under
    /// `evict_other_keyids`).
    pub(super) fn install(
        &mut self,
        t: Cycle,
        line: LineAddr,
        data: LineBytes,
        cause: FillCause,
        charge: usize,
    ) {
        if let Some(alias) = self.alias_on_chip(line) {
            // mktme-facts.md 4.1: some processors force evictions of older aliased data.
            self.flush_line(
                t,
                alias,
                FlushMode::Invalidate {
                    remove: RemoveCause::AliasEviction,
                    writeback: WritebackCause::AliasEviction,
                },
                Some(charge),
            );
            self.stats.global.alias_evictions.inc();
        }
        assert!(
            !self.on_chip(line),
            "memory fill of {line:?} at {t}, which is already on chip"
        );
        let dirty = self.knob && speculative_cause(cause);
        let ins = self.llc.insert(
            line.base(),
            LlcLine {
                data: LineData::from_memory(data),
                stored: false,
            },
            dirty,
        );
        if let Some(v) = ins.victim {
            self.evict_llc_victim(t, v, Some(charge));
        }
        self.fill_event(t, LLC, line, cause, dirty);
        self.stats.at(Some(charge), Level::Llc).lines_fetched.inc();
    }

    /// Brings `line` into core `c`'s L2 (and L1D when asked) with the permission `req` needs,
    /// atomically at `t`: from its own caches if they have it, otherwise through the directory,
    /// snooping other cores. Returns the level that supplied the data. The line must be on
    /// chip.
    pub(super) fn acquire(&mut self, t: Cycle, c: usize, line: LineAddr, req: Acquire) -> Level {
        let pa = line.base();
        let write = req.kind == AcquireKind::Store;
        let local = |others_hold| match req.kind {
            AcquireKind::Load => MesiEvent::LocalLoad { others_hold },
            AcquireKind::Store => MesiEvent::LocalStore,
            AcquireKind::Speculative => MesiEvent::SpeculativeFill { others_hold },
        };
        if req.to_l1
            && let Some(s1) = self.l1[c].probe(pa)
        {
            let st = self.l1[c].payload(s1).state;
            let tr = transition(st, local(false));
            if !tr.actions.fetch && !tr.actions.invalidate_others {
                if tr.next != st {
                    self.set_core_state(c, line, tr.next);
                }
                return Level::L1d;
            }
        }
        if let Some(s2) = self.l2[c].probe(pa) {
            let st = self.l2[c].payload(s2).state;
            let tr = transition(st, local(false));
            if !tr.actions.fetch && !tr.actions.invalidate_others {
                if tr.next != st {
                    self.set_core_state(c, line, tr.next);
                }
                self.l2[c].touch(s2);
                if req.to_l1 && !self.l1[c].contains(pa) {
                    let data = self.l2[c].payload(s2).data;
                    self.fill_l1(t, c, line, req.l1_copy(data, tr.next));
                }
                return Level::L2;
            }
        }

        // The directory.
        let data = self.newest_data(line).unwrap_or_else(|| {
            panic!("core {c} acquires {line:?} at {t} through the directory, but it is off chip")
        });
        if let Some(s) = self.llc.probe(pa) {
            self.llc.touch(s);
        }
        let others = self.dir.sharers(line) & !(1u64 << c);
        let mut snooped = false;
        if write {
            for o in cores_in(others) {
                snooped = true;
                let d = self.drop_core_copies(
                    t,
                    o,
                    line,
                    RemoveCause::CoherenceInvalidation,
                    MesiEvent::RemoteReadForOwnership,
                );
                if d.dirty {
                    self.write_to_llc(t, line, d.data, d.stored, Some(c));
                }
            }
        } else {
            let llc_has = self.llc.contains(pa);
            for o in cores_in(others) {
                if self.core_state(o, line).is_exclusive() {
                    snooped = true;
                    self.snoop_read(t, o, line, data, c);
                } else if !llc_has {
                    // The data comes from a sharer's copy.
                    snooped = true;
                    self.count_snoop(o, line);
                }
            }
        }
        if snooped {
            self.stats.at(Some(c), Level::Llc).snoops.inc();
        }
        let others_hold = self.dir.sharers(line) & !(1u64 << c) != 0;
        let mine = self.core_state(c, line);
        let tr = transition(mine, local(others_hold));
        debug_assert_eq!(tr.actions.fetch, mine == MesiState::Invalid);
        if mine.is_valid() {
            // An upgrade: the data is here already.
            self.set_core_state(c, line, tr.next);
        } else {
            self.fill_l2(t, c, line, req.l2_copy(data, tr.next));
        }
        if req.to_l1 && !self.l1[c].contains(pa) {
            self.fill_l1(t, c, line, req.l1_copy(data, tr.next));
        }
        Level::Llc
    }

    /// Counts a snoop at core `o`'s caches.
    fn count_snoop(&mut self, o: usize, line: LineAddr) {
        if self.l1[o].contains(line.base()) {
            self.stats.at(Some(o), Level::L1d).snoops.inc();
        }
        self.stats.at(Some(o), Level::L2).snoops.inc();
    }

    /// Another core reads: core `o`, an E or M owner, keeps a shared copy; M data goes to the
    /// LLC first, so that every copy and the LLC agree.
    fn snoop_read(&mut self, t: Cycle, o: usize, line: LineAddr, data: LineData, requester: usize) {
        let st = self.core_state(o, line);
        let tr = transition(st, MesiEvent::RemoteRead);
        self.count_snoop(o, line);
        if tr.actions.write_back {
            let pa = line.base();
            let mut dirty = false;
            let mut stored = false;
            if let Some(s1) = self.l1[o].probe(pa) {
                dirty |= self.l1[o].is_dirty(s1);
                stored |= self.l1[o].is_dirty(s1) && self.l1[o].payload(s1).stored;
                let p = self.l1[o].payload_mut(s1);
                p.data = data;
                p.stored = false;
                self.l1[o].set_dirty(s1, false);
            }
            let s2 = self.l2[o]
                .probe(pa)
                .expect("an owner holds its line in its L2");
            dirty |= self.l2[o].is_dirty(s2);
            stored |= self.l2[o].is_dirty(s2) && self.l2[o].payload(s2).stored;
            let p = self.l2[o].payload_mut(s2);
            p.data = data;
            p.stored = false;
            self.l2[o].set_dirty(s2, false);
            debug_assert!(dirty, "core {o} holds {line:?} in M with no dirty copy");
            self.write_to_llc(t, line, data, stored, Some(requester));
        }
        self.set_core_state(o, line, tr.next);
    }

    /// Removes core `o`'s copies of `line` (L1D then L2), updating the directory; returns what
    /// they held. `event` is the MESI event behind it.
    pub(super) fn drop_core_copies(
        &mut self,
        t: Cycle,
        o: usize,
        line: LineAddr,
        cause: RemoveCause,
        event: MesiEvent,
    ) -> Dropped {
        let pa = line.base();
        let tr = transition(self.core_state(o, line), event);
        debug_assert_eq!(tr.next, MesiState::Invalid);
        let mut dirty = false;
        let mut stored = false;
        let mut data = None;
        if let Some(e1) = self.l1[o].invalidate(pa) {
            dirty |= e1.dirty;
            stored |= e1.dirty && e1.payload.stored;
            data = Some(e1.payload.data);
            self.remove_event(t, private(o, Level::L1d), line, cause, e1.dirty);
            self.count_removal(o, Level::L1d, cause, e1.dirty);
        }
        let e2 = self.l2[o]
            .invalidate(pa)
            .unwrap_or_else(|| panic!("directory lists core {o} for {line:?}, not in its L2"));
        dirty |= e2.dirty;
        stored |= e2.dirty && e2.payload.stored;
        let data = data.unwrap_or(e2.payload.data);
        // The L2 copy carries out whatever the L1D copy wrote back into it.
        self.remove_event(t, private(o, Level::L2), line, cause, dirty);
        self.count_removal(o, Level::L2, cause, dirty);
        self.dir.remove(line, o);
        debug_assert!(
            !tr.actions.write_back || dirty,
            "core {o} held {line:?} in M with no dirty copy"
        );
        Dropped {
            dirty,
            stored,
            data,
        }
    }

    fn count_removal(&mut self, c: usize, level: Level, cause: RemoveCause, dirty: bool) {
        let s = self.stats.at(Some(c), level);
        match cause {
            RemoveCause::CoherenceInvalidation => {
                s.coherence_invalidations.inc();
                s.snoops.inc();
            }
            RemoveCause::BackInvalidation => {
                s.back_invalidations.inc();
                if dirty {
                    s.writebacks_evicted.inc();
                }
            }
            RemoveCause::Evicted => {
                if dirty {
                    s.writebacks_evicted.inc();
                }
            }
            RemoveCause::Flush | RemoveCause::Wbinvd | RemoveCause::AliasEviction => {}
        }
    }

    /// Dirty data of `line` moving out of a private cache into the LLC: onto its LLC copy, or
    /// (non-inclusive LLC without one) into a new LLC line.
    fn write_to_llc(
        &mut self,
        t: Cycle,
        line: LineAddr,
        data: LineData,
        stored: bool,
        charge: Option<usize>,
    ) {
        let pa = line.base();
        if let Some(s) = self.llc.probe(pa) {
            let p = self.llc.payload_mut(s);
            p.data = data;
            p.stored |= stored;
            self.llc.set_dirty(s, true);
            return;
        }
        assert!(
            !self.inclusive,
            "inclusive LLC lacks {line:?}, written back from a private cache at {t}"
        );
        let ins = self.llc.insert(pa, LlcLine { data, stored }, true);
        if let Some(v) = ins.victim {
            self.evict_llc_victim(t, v, charge);
        }
        self.fill_event(t, LLC, line, FillCause::InnerWriteback, true);
    }

    fn fill_l2(&mut self, t: Cycle, c: usize, line: LineAddr, new: NewCopy) {
        let NewCopy {
            cause, prefetched, ..
        } = new;
        let dirty = self.knob && speculative_cause(cause);
        let copy = PrivateLine {
            state: new.state,
            data: new.data,
            stored: false,
            prefetched,
        };
        let ins = self.l2[c].insert(line.base(), copy, dirty);
        self.dir.add(line, c);
        if let Some(v) = ins.victim {
            self.evict_l2_victim(t, c, v);
        }
        self.fill_event(t, private(c, Level::L2), line, cause, dirty);
        self.stats.at(Some(c), Level::L2).lines_fetched.inc();
    }

    fn fill_l1(&mut self, t: Cycle, c: usize, line: LineAddr, new: NewCopy) {
        let NewCopy {
            cause, prefetched, ..
        } = new;
        let dirty = self.knob && speculative_cause(cause);
        let copy = PrivateLine {
            state: new.state,
            data: new.data,
            stored: false,
            prefetched,
        };
        let ins = self.l1[c].insert(line.base(), copy, dirty);
        if let Some(v) = ins.victim {
            self.evict_l1_victim(t, c, v);
        }
        self.fill_event(t, private(c, Level::L1d), line, cause, dirty);
        self.stats.at(Some(c), Level::L1d).lines_fetched.inc();
    }

    /// An L1D victim: its dirty data goes into the L2 copy (posted: no latency).
    fn evict_l1_victim(&mut self, t: Cycle, c: usize, v: Evicted<PrivateLine>) {
        let line = v.addr.line();
        self.remove_event(
            t,
            private(c, Level::L1d),
            line,
            RemoveCause::Evicted,
            v.dirty,
        );
        self.count_removal(c, Level::L1d, RemoveCause::Evicted, v.dirty);
        if v.dirty {
            let s2 = self.l2[c]
                .probe(v.addr)
                .unwrap_or_else(|| panic!("core {c}: L1D victim {line:?} is not in the L2"));
            let p = self.l2[c].payload_mut(s2);
            p.data = v.payload.data;
            p.stored |= v.payload.stored;
            self.l2[c].set_dirty(s2, true);
        }
    }

    /// An L2 victim: back-invalidate the L1D copy, leave the directory, and send dirty data to
    /// the LLC (posted).
    fn evict_l2_victim(&mut self, t: Cycle, c: usize, v: Evicted<PrivateLine>) {
        let line = v.addr.line();
        let mut dirty = v.dirty;
        let mut stored = v.dirty && v.payload.stored;
        let mut data = v.payload.data;
        if let Some(e1) = self.l1[c].invalidate(v.addr) {
            self.remove_event(
                t,
                private(c, Level::L1d),
                line,
                RemoveCause::BackInvalidation,
                e1.dirty,
            );
            self.count_removal(c, Level::L1d, RemoveCause::BackInvalidation, e1.dirty);
            dirty |= e1.dirty;
            stored |= e1.dirty && e1.payload.stored;
            data = e1.payload.data;
        }
        let tr = transition(v.payload.state, MesiEvent::LocalEviction);
        debug_assert!(
            !tr.actions.write_back || dirty,
            "core {c} evicts {line:?} in M with no dirty copy"
        );
        self.remove_event(t, private(c, Level::L2), line, RemoveCause::Evicted, dirty);
        self.count_removal(c, Level::L2, RemoveCause::Evicted, dirty);
        self.dir.remove(line, c);
        if dirty {
            self.write_to_llc(t, line, data, stored, Some(c));
        }
    }

    /// An LLC victim. Inclusive: back-invalidate every private copy first (their newest dirty
    /// data goes with it). Then a dirty line goes to memory.
    fn evict_llc_victim(&mut self, t: Cycle, v: Evicted<LlcLine>, charge: Option<usize>) {
        let line = v.addr.line();
        let mut dirty = v.dirty;
        let mut stored = v.dirty && v.payload.stored;
        let mut data = v.payload.data;
        if self.inclusive {
            for o in cores_in(self.dir.sharers(line)) {
                let d = self.drop_core_copies(
                    t,
                    o,
                    line,
                    RemoveCause::BackInvalidation,
                    MesiEvent::LocalEviction,
                );
                dirty |= d.dirty;
                stored |= d.stored;
                // Private copies are never older than the LLC's.
                data = d.data;
            }
        }
        self.remove_event(t, LLC, line, RemoveCause::Evicted, dirty);
        if dirty {
            self.stats.at(charge, Level::Llc).writebacks_evicted.inc();
            self.mem_write(t, line, data, WritebackCause::Eviction, stored);
        }
    }
}
