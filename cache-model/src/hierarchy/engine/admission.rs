//! A request entering the hierarchy: where its line is at submission decides its latency and
//! the MSHR entries it takes (or shares, merging into a miss already outstanding), and what it
//! schedules. An L1D hit takes the fast path: no MSHR and no event, just a queue of hits that
//! all take the L1D's latency.
//!
//! Hardware prefetches are planned here the same way, as if their core had loaded the line;
//! replays (requests whose plan no longer held at completion) come back here too, and wait in
//! order for an MSHR when none is free.

use super::{Ev, Hit, NO_DATA, sufficient};
use crate::cache::Slot;
use crate::events::{FillCause, Level};
use crate::hierarchy::mshr::{Access, Kind, L1Entry, L2Entry, LlcEntry};
use crate::hierarchy::request::{CoreOp, CoreRequest};
use crate::hierarchy::{Hierarchy, PrefetchLevel};
use sim_core::{CoreId, Cycle, LineAddr, LineBytes, RequestId};

/// What an access (not a flush) asks of the caches: its kind, its length and, for a store,
/// its bytes. `None` for a flush.
#[inline]
pub(super) fn access_parts(op: &CoreOp) -> Option<(Kind, u8, &LineBytes)> {
    match op {
        CoreOp::Load { len } => Some((Kind::Load, *len, &NO_DATA)),
        CoreOp::Store { len, data } => Some((Kind::Store, *len, data)),
        CoreOp::SpeculativeLoad { len } => Some((Kind::Speculative, *len, &NO_DATA)),
        CoreOp::Prefetch => Some((Kind::SwPrefetch, 0, &NO_DATA)),
        CoreOp::Clflush | CoreOp::Clflushopt | CoreOp::Clwb | CoreOp::Wbinvd => None,
    }
}

impl Hierarchy {
    /// Admits `request` (already checked with [`Hierarchy::check_request`]) at `now`.
    pub(in crate::hierarchy) fn submit_now(
        &mut self,
        now: Cycle,
        request: CoreRequest,
    ) -> Result<(), CoreRequest> {
        let c = request.core.index();
        if let Some(kind) = request.op.flush_kind() {
            return self.submit_flush(now, request, kind);
        }
        if self.stalled_per_core[c] > 0 {
            // A replayed request of this core waits for an MSHR: nothing overtakes it.
            self.stats.at(Some(c), Level::L1d).mshr_full.inc();
            return Err(request);
        }
        let Some((kind, len, data)) = access_parts(&request.op) else {
            unreachable!("flushes were handled above")
        };
        let seq = self.next_seq;
        let hit = Hit {
            id: request.id,
            addr: request.addr,
            done: now.plus(self.lat_l1),
            seq,
            core: request.core,
            kind,
            len,
        };
        if self.try_hit(hit, data, true, false) {
            self.next_seq += 1;
            return Ok(());
        }
        let data = *data;
        let access = Access {
            id: request.id,
            core: request.core,
            addr: request.addr,
            kind,
            len,
            data,
            seq: self.next_seq,
        };
        match self.start(now, access, true, false) {
            Ok(()) => {
                self.next_seq += 1;
                Ok(())
            }
            Err(_) => Err(request),
        }
    }

    /// Panics on a caller's bug: a core that does not exist, an address that does not fit the
    /// layout, an access that is empty or crosses its line.
    #[inline]
    pub(in crate::hierarchy) fn check_request(&self, request: &CoreRequest) {
        let c = request.core.index();
        assert!(
            c < self.cores,
            "request {} from core {c}: the hierarchy has {} cores",
            request.id,
            self.cores
        );
        if let Err(e) = self.layout.check_phys_addr(request.addr.raw()) {
            panic!("request {} from core {c}: {e}", request.id);
        }
        if let Some(len) = request.op.access_len() {
            let offset = request.addr.line_offset();
            assert!(
                len >= 1 && offset + usize::from(len) <= sim_core::LINE_BYTES,
                "request {} from core {c}: {len} bytes at {} cross its line (the core splits \
                 accesses at line boundaries)",
                request.id,
                request.addr
            );
        }
    }

    /// Plans request `a` at cycle `t` and takes the MSHR entries it needs, or gives it back
    /// when one is busy. `fresh`: the request comes from the core now (it is counted and trains
    /// the prefetchers); otherwise it is a replay. `write_hint`: plan as if it were a store
    /// (a replayed batch that contains one, so that its fill brings M at once).
    fn start(&mut self, t: Cycle, a: Access, fresh: bool, write_hint: bool) -> Result<(), Access> {
        debug_assert!(a.kind != Kind::HwPrefetch);
        let c = a.core.index();
        let line = a.line();
        let pa = a.addr;
        let write = a.kind == Kind::Store || write_hint;
        let is_store = a.kind == Kind::Store;
        let demand = a.kind.is_demand();

        // 1. An L1D hit: the fast path, no MSHR, no event.
        let hit = Hit {
            id: a.id,
            addr: a.addr,
            done: t.plus(self.lat_l1),
            seq: a.seq,
            core: a.core,
            kind: a.kind,
            len: a.len,
        };
        if self.try_hit(hit, &a.data, fresh, write_hint) {
            return Ok(());
        }

        // 2. A miss already outstanding at the L1D: wait for its fill.
        if let Some(s1) = self.l1_mshr[c].find(line) {
            let e = self.l1_mshr[c].get_mut(s1);
            let late_prefetch = demand && e.hw_prefetch_only() && !e.prefetch_used;
            e.prefetch_used |= late_prefetch;
            e.insert(a);
            if fresh {
                let s = self.stats.at(Some(c), Level::L1d);
                s.access(is_store, false);
                s.mshr_merges.inc();
                if late_prefetch {
                    s.prefetches_useful.inc();
                }
                if demand {
                    self.train(t, c, line, PrefetchLevel::L1d, true);
                }
            }
            return Ok(());
        }
        if self.l1_occupied(c) >= self.l1_mshr[c].capacity() {
            if fresh {
                self.stats.at(Some(c), Level::L1d).mshr_full.inc();
            }
            return Err(a);
        }
        let entry = |a: Access, attached: bool| L1Entry {
            line,
            need_write: write,
            reqs: vec![a],
            attached,
            prefetch_used: false,
        };

        // 3. An L2 hit.
        let l2_hit = self.l2[c]
            .probe(pa)
            .filter(|&s| sufficient(write, self.l2[c].payload(s).state));
        if let Some(s2) = l2_hit {
            self.l2[c].touch(s2);
            let first_use = demand && std::mem::take(&mut self.l2[c].payload_mut(s2).prefetched);
            let (slot, gen_) = self.l1_mshr[c].alloc(entry(a, false));
            let at = t.plus(self.lat_l1 + self.lat_l2);
            self.push_event(
                at,
                Ev::L1Complete {
                    core: c,
                    slot,
                    gen_,
                },
            );
            if fresh {
                self.stats.at(Some(c), Level::L1d).access(is_store, false);
                let s = self.stats.at(Some(c), Level::L2);
                s.access(is_store, true);
                if first_use {
                    s.prefetches_useful.inc();
                }
                if demand {
                    self.train(t, c, line, PrefetchLevel::L1d, true);
                    self.train(t, c, line, PrefetchLevel::L2, first_use);
                }
            }
            return Ok(());
        }

        // 4. A fill into the L2 already outstanding (a hardware prefetch): wait for it.
        if let Some(s2) = self.l2_mshr[c].find(line) {
            let e2 = self.l2_mshr[c].get_mut(s2);
            assert!(
                !e2.has_l1,
                "core {c}: L2 MSHR for {line:?} already serves an L1D entry"
            );
            e2.has_l1 = true;
            let late_prefetch = demand && e2.hw_prefetch && !e2.prefetch_used;
            e2.prefetch_used |= late_prefetch;
            self.l1_mshr[c].alloc(entry(a, true));
            if fresh {
                self.stats.at(Some(c), Level::L1d).access(is_store, false);
                let s = self.stats.at(Some(c), Level::L2);
                s.access(is_store, false);
                s.mshr_merges.inc();
                if late_prefetch {
                    s.prefetches_useful.inc();
                }
                if demand {
                    self.train(t, c, line, PrefetchLevel::L1d, true);
                    self.train(t, c, line, PrefetchLevel::L2, true);
                }
            }
            return Ok(());
        }
        if self.l2_mshr[c].is_full() {
            if fresh {
                self.stats.at(Some(c), Level::L2).mshr_full.inc();
            }
            return Err(a);
        }
        let l2_entry = |waits_on_llc| L2Entry {
            line,
            has_l1: true,
            hw_prefetch: false,
            prefetch_used: false,
            waits_on_llc,
        };

        // 5. On chip: through the directory.
        let to_llc = t.plus(self.lat_l1 + self.lat_l2 + self.lat_llc);
        if self.on_chip(line) {
            let snoop = self.snoop_needed(c, line, write);
            let at = if snoop {
                to_llc.plus(self.lat_snoop)
            } else {
                to_llc
            };
            self.l1_mshr[c].alloc(entry(a, true));
            let (slot, gen_) = self.l2_mshr[c].alloc(l2_entry(false));
            self.push_event(
                at,
                Ev::L2Complete {
                    core: c,
                    slot,
                    gen_,
                },
            );
            if fresh {
                self.stats.at(Some(c), Level::L1d).access(is_store, false);
                self.stats.at(Some(c), Level::L2).access(is_store, false);
                self.stats.at(Some(c), Level::Llc).access(is_store, true);
                if demand {
                    self.train(t, c, line, PrefetchLevel::L1d, true);
                    self.train(t, c, line, PrefetchLevel::L2, true);
                }
            }
            return Ok(());
        }

        // 6. Off chip, already being fetched: wait for that fill.
        if let Some(s3) = self.llc_mshr.find(line) {
            self.l1_mshr[c].alloc(entry(a, true));
            self.l2_mshr[c].alloc(l2_entry(true));
            self.llc_mshr.get_mut(s3).cores.push(c);
            if fresh {
                self.stats.at(Some(c), Level::L1d).access(is_store, false);
                self.stats.at(Some(c), Level::L2).access(is_store, false);
                let s = self.stats.at(Some(c), Level::Llc);
                s.access(is_store, false);
                s.mshr_merges.inc();
                if demand {
                    self.train(t, c, line, PrefetchLevel::L1d, true);
                    self.train(t, c, line, PrefetchLevel::L2, true);
                }
            }
            return Ok(());
        }
        if self.llc_mshr.is_full() {
            if fresh {
                self.stats.at(Some(c), Level::Llc).mshr_full.inc();
            }
            return Err(a);
        }

        // 7. Off chip: a read to memory.
        let cause = if write {
            FillCause::Store
        } else {
            a.kind.fill_cause()
        };
        self.l1_mshr[c].alloc(entry(a, true));
        self.l2_mshr[c].alloc(l2_entry(true));
        self.open_llc_miss(to_llc, c, line, cause);
        if fresh {
            self.stats.at(Some(c), Level::L1d).access(is_store, false);
            self.stats.at(Some(c), Level::L2).access(is_store, false);
            self.stats.at(Some(c), Level::Llc).access(is_store, false);
            if demand {
                self.train(t, c, line, PrefetchLevel::L1d, true);
                self.train(t, c, line, PrefetchLevel::L2, true);
            }
        }
        Ok(())
    }

    /// The fast path: when the L1D holds the line with the permission needed, the request
    /// completes `l1` cycles after `hit.done - l1`, with no MSHR and no event. Returns false
    /// (changing nothing) otherwise.
    #[inline]
    fn try_hit(&mut self, hit: Hit, data: &LineBytes, fresh: bool, write_hint: bool) -> bool {
        let c = hit.core.index();
        let is_store = hit.kind == Kind::Store;
        let Some((s1, _)) = self.l1_hit(c, hit.addr, is_store || write_hint) else {
            return false;
        };
        let first_use = self.admit_l1_hit(c, s1, hit.kind, fresh);
        let demand = hit.kind.is_demand();
        if is_store {
            self.hit_data.push_back(*data);
        }
        self.hits.push_back(hit);
        if fresh && demand && self.pf_train == Some(PrefetchLevel::L1d) {
            let t = Cycle::new(hit.done.get() - self.lat_l1);
            self.train(t, c, hit.addr.line(), PrefetchLevel::L1d, first_use);
        }
        true
    }

    /// What admitting an L1D hit on slot `s1` of core `c` does at once: the line is touched,
    /// and a fresh request is counted (with a prefetched line's first use). Returns whether
    /// this is that first use.
    #[inline(always)]
    pub(super) fn admit_l1_hit(&mut self, c: usize, s1: Slot, kind: Kind, fresh: bool) -> bool {
        let is_store = kind == Kind::Store;
        self.l1[c].touch(s1);
        let first_use =
            kind.is_demand() && std::mem::take(&mut self.l1[c].payload_mut(s1).prefetched);
        if fresh {
            let s = self.stats.at(Some(c), Level::L1d);
            s.access(is_store, true);
            if first_use {
                s.prefetches_useful.inc();
            }
        }
        first_use
    }

    /// Opens an LLC MSHR entry for `line`, whose read leaves at `at`.
    fn open_llc_miss(&mut self, at: Cycle, c: usize, line: LineAddr, cause: FillCause) {
        let id = RequestId(self.next_mem_id);
        self.next_mem_id += 1;
        let (slot, gen_) = self.llc_mshr.alloc(LlcEntry {
            line,
            id,
            cores: vec![c],
            cause,
            charge: c,
            issued: false,
            data: None,
        });
        self.push_event(at, Ev::MemIssue { slot, gen_ });
    }

    /// Trains core `c`'s prefetchers on a demand access at `level`, if they train there, and
    /// issues what they ask for.
    fn train(&mut self, t: Cycle, c: usize, line: LineAddr, level: PrefetchLevel, trigger: bool) {
        if self.pf_train != Some(level) {
            return;
        }
        let mut wanted = std::mem::take(&mut self.pf_buf);
        wanted.clear();
        self.prefetchers[c].train(line, trigger, &mut wanted);
        for &target in &wanted {
            self.start_prefetch(t, c, target);
        }
        self.pf_buf = wanted;
    }

    /// Issues a hardware prefetch of `line` into core `c`'s fill level, as if the core had
    /// loaded it at `t`; dropped when the line is there or on its way, or an MSHR is busy.
    fn start_prefetch(&mut self, t: Cycle, c: usize, line: LineAddr) {
        let pa = line.base();
        let fill_l1 = self.pf_fill == PrefetchLevel::L1d;
        let level = self.pf_fill.level();
        if self.l1_mshr[c].find(line).is_some() || self.l2_mshr[c].find(line).is_some() {
            return;
        }
        let present = if fill_l1 {
            self.l1[c].contains(pa)
        } else {
            self.l2[c].contains(pa)
        };
        if present {
            return;
        }
        if fill_l1 && self.l1_occupied(c) >= self.l1_mshr[c].capacity() {
            self.stats.at(Some(c), level).mshr_full.inc();
            return;
        }
        let access = Access {
            id: 0,
            core: CoreId::new(c as u32),
            addr: pa,
            kind: Kind::HwPrefetch,
            len: 0,
            data: [0; sim_core::LINE_BYTES],
            seq: self.next_seq,
        };
        self.next_seq += 1;
        let l1_entry = |access| L1Entry {
            line,
            reqs: vec![access],
            need_write: false,
            attached: true,
            prefetch_used: false,
        };
        if fill_l1 && self.l2[c].contains(pa) {
            let (slot, gen_) = self.l1_mshr[c].alloc(L1Entry {
                attached: false,
                ..l1_entry(access)
            });
            self.push_event(
                t.plus(self.lat_l1 + self.lat_l2),
                Ev::L1Complete {
                    core: c,
                    slot,
                    gen_,
                },
            );
            self.stats.at(Some(c), level).prefetches_issued.inc();
            return;
        }
        let on_chip = self.on_chip(line);
        let llc_pending = self.llc_mshr.find(line);
        if self.l2_mshr[c].is_full()
            || (!on_chip && llc_pending.is_none() && self.llc_mshr.is_full())
        {
            let full = if self.l2_mshr[c].is_full() {
                Level::L2
            } else {
                Level::Llc
            };
            self.stats.at(Some(c), full).mshr_full.inc();
            return;
        }
        if fill_l1 {
            self.l1_mshr[c].alloc(l1_entry(access));
        }
        let (slot, gen_) = self.l2_mshr[c].alloc(L2Entry {
            line,
            has_l1: fill_l1,
            hw_prefetch: !fill_l1,
            prefetch_used: false,
            waits_on_llc: !on_chip,
        });
        let to_llc = t.plus(self.lat_l1 + self.lat_l2 + self.lat_llc);
        if on_chip {
            let at = if self.snoop_needed(c, line, false) {
                to_llc.plus(self.lat_snoop)
            } else {
                to_llc
            };
            self.push_event(
                at,
                Ev::L2Complete {
                    core: c,
                    slot,
                    gen_,
                },
            );
        } else if let Some(s3) = llc_pending {
            self.llc_mshr.get_mut(s3).cores.push(c);
        } else {
            self.open_llc_miss(to_llc, c, line, FillCause::Prefetch);
        }
        self.stats.at(Some(c), level).prefetches_issued.inc();
    }

    /// A request whose plan no longer holds starts over at `t`, or waits for an MSHR.
    #[cold]
    pub(super) fn restart(&mut self, t: Cycle, a: Access, write_hint: bool) {
        if a.kind == Kind::HwPrefetch {
            return; // a prefetch that lost its race is not worth another try
        }
        self.stats.global.replays.inc();
        let c = a.core.index();
        if self.stalled_per_core[c] > 0 {
            self.stalled.push_back(a);
            self.stalled_per_core[c] += 1;
            return;
        }
        if let Err(a) = self.start(t, a, false, write_hint) {
            self.stalled.push_back(a);
            self.stalled_per_core[c] += 1;
        }
    }

    /// Retries replayed requests waiting for MSHRs, oldest first, until one is refused.
    pub(super) fn retry_stalled(&mut self, t: Cycle) {
        while let Some(a) = self.stalled.pop_front() {
            let c = a.core.index();
            match self.start(t, a, false, false) {
                Ok(()) => self.stalled_per_core[c] -= 1,
                Err(a) => {
                    self.stalled.push_front(a);
                    break;
                }
            }
        }
    }
}
