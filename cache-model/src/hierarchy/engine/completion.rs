//! Requests reaching their completion cycle, each in one atomic step: an L1D hit performed (a
//! load's value read, a store applied), an L1D or L2 MSHR entry closed once its line is in (or
//! replayed when its plan no longer holds), and the memory side: a read leaving for memory,
//! memory's answer, and the fill it brings to every core waiting for the line.
//!
//! A request's latency was decided when it was admitted; here only its effects happen, so a
//! load returns the bytes of the latest store to complete before it.

use super::admission::access_parts;
use super::fills::Acquire;
use super::{Ev, Hit, NO_DATA, Step, sufficient};
use crate::cache::Slot;
use crate::events::{CacheEvent, FillCause, Level};
use crate::hierarchy::Hierarchy;
use crate::hierarchy::mesi::{MesiEvent, MesiState, transition};
use crate::hierarchy::mshr::{Access, AcquireKind, Kind};
use crate::hierarchy::request::{Completion, CoreRequest, CoreResponse};
use sim_core::{CoreId, Cycle, LineBytes, MemOp, MemRequest, MemResponse, PhysAddr, RequestId};

/// A request being performed, however it was stored.
struct Perform<'a> {
    id: u64,
    core: CoreId,
    addr: PhysAddr,
    kind: Kind,
    len: u8,
    /// Store bytes, packed at the start.
    data: &'a LineBytes,
}

impl<'a> Perform<'a> {
    fn of(a: &'a Access) -> Perform<'a> {
        Perform {
            id: a.id,
            core: a.core,
            addr: a.addr,
            kind: a.kind,
            len: a.len,
            data: &a.data,
        }
    }
}

impl Hierarchy {
    pub(in crate::hierarchy) fn complete_hit(&mut self, hit: Hit) {
        let c = hit.core.index();
        let write = hit.kind == Kind::Store;
        let stored = if write {
            Some(
                self.hit_data
                    .pop_front()
                    .expect("a store hit has its bytes queued"),
            )
        } else {
            None
        };
        let data = stored.as_ref().unwrap_or(&NO_DATA);
        if let Some((s1, st)) = self.l1_hit(c, hit.addr, write) {
            let r = Perform {
                id: hit.id,
                core: hit.core,
                addr: hit.addr,
                kind: hit.kind,
                len: hit.len,
                data,
            };
            if let Some(response) = self.perform_l1_hit(hit.done, s1, st, &r) {
                self.ready.push(response);
            }
            return;
        }
        // The line left (or lost its permission) since the request was planned.
        let a = Access {
            id: hit.id,
            core: hit.core,
            addr: hit.addr,
            kind: hit.kind,
            len: hit.len,
            data: *data,
            seq: hit.seq,
        };
        self.restart(hit.done, a, false);
    }

    /// `Hierarchy::complete_at_once`'s shortcut for `request`, a fresh load or store of core `c`
    /// at `now`: when it hits in the L1D and nothing can happen before it completes (no event
    /// before then, nothing from memory before `quiet_until`; the caller checked the rest),
    /// the hits in flight complete, oldest first, then this one is admitted and completes,
    /// each as it would at its own cycle, their completions going to `completed`. Returns false,
    /// having changed nothing, when the shortcut does not apply.
    pub(in crate::hierarchy) fn hit_at_once(
        &mut self,
        now: Cycle,
        request: &CoreRequest,
        quiet_until: Cycle,
        completed: &mut impl Extend<Completion>,
    ) -> bool {
        let c = request.core.index();
        let Some((kind @ (Kind::Load | Kind::Store), len, data)) = access_parts(&request.op) else {
            return false;
        };
        debug_assert_eq!(
            self.stalled_per_core[c], 0,
            "the caller checked: nothing stalled"
        );
        let Some((s1, mut st)) = self.l1_hit(c, request.addr, kind == Kind::Store) else {
            return false;
        };
        let done = now.plus(self.lat_l1);
        if done >= quiet_until
            || self.queue.peek_cycle().is_some_and(|at| at < done)
            || self.walks.iter().any(Option::is_some)
        {
            return false;
        }
        // A hit in flight whose line has gone since it was planned (evicted by a fill) starts
        // over at its cycle, after this request's admission: not a hit to take ahead.
        if !self.hits.is_empty() && !self.hits.iter().all(|h| self.hit_holds(h)) {
            return false;
        }
        if !self.hits.is_empty() {
            let answered = self.ready.len();
            while let Some(hit) = self.hits.pop_front() {
                self.complete_hit(hit);
            }
            completed.extend(self.ready.drain(answered..).map(|r| Completion {
                id: r.id,
                done: r.done,
            }));
            // An earlier store may have made the line M.
            st = self.l1[c].payload(s1).state;
        }
        // Admitted as `submit` would (no training: the caller checked), then completed.
        self.admit_l1_hit(c, s1, kind, true);
        self.next_seq += 1;
        let a = Perform {
            id: request.id,
            core: request.core,
            addr: request.addr,
            kind,
            len,
            data,
        };
        self.apply_l1_hit(done, s1, st, &a);
        completed.extend([Completion {
            id: request.id,
            done,
        }]);
        true
    }

    /// Whether hit `h` still finds its line in its L1D with the permission it needs: its
    /// completion will perform it rather than start it over.
    fn hit_holds(&self, h: &Hit) -> bool {
        self.l1_hit(h.core.index(), h.addr, h.kind == Kind::Store)
            .is_some()
    }

    /// Performs `a`, an L1D hit on slot `s1` whose line is in state `st` (enough for it), at
    /// `t`: a store makes an E line M first (silently).
    #[inline(always)]
    fn perform_l1_hit(
        &mut self,
        t: Cycle,
        s1: Slot,
        st: MesiState,
        a: &Perform<'_>,
    ) -> Option<CoreResponse> {
        self.own_for_store(st, a);
        self.perform(t, s1, a, Some(Level::L1d))
    }

    /// [`Self::perform_l1_hit`] without the answer (for a hit completed at once).
    #[inline(always)]
    fn apply_l1_hit(&mut self, t: Cycle, s1: Slot, st: MesiState, a: &Perform<'_>) {
        self.own_for_store(st, a);
        self.apply(t, s1, a, Some(Level::L1d));
    }

    /// A store hitting an E line makes it M (silently) before it is applied.
    #[inline(always)]
    fn own_for_store(&mut self, st: MesiState, a: &Perform<'_>) {
        if a.kind == Kind::Store && st != MesiState::Modified {
            let next = transition(st, MesiEvent::LocalStore).next;
            self.set_core_state(a.core.index(), a.addr.line(), next);
        }
    }

    /// Applies request `a` to its L1D copy (slot `s1`) at `t`: a load's value, or a store
    /// applied; returns the core's answer (none for a hardware prefetch).
    #[inline]
    fn perform(
        &mut self,
        t: Cycle,
        s1: Slot,
        a: &Perform<'_>,
        from: Option<Level>,
    ) -> Option<CoreResponse> {
        self.apply(t, s1, a, from);
        let data = match a.kind {
            Kind::Load | Kind::Speculative => Some(self.l1[a.core.index()].payload(s1).data.bytes),
            Kind::SwPrefetch | Kind::Store => None,
            Kind::HwPrefetch => return None,
        };
        Some(CoreResponse {
            id: a.id,
            core: a.core,
            done: t,
            data,
            from,
        })
    }

    /// The effects of request `a` on its L1D copy (slot `s1`) at `t`, without the answer: a
    /// store's bytes written, the events of a load or store emitted. Always inlined: it is
    /// most of the work of an L1D hit, the commonest request by far.
    #[inline(always)]
    fn apply(&mut self, t: Cycle, s1: Slot, a: &Perform<'_>, from: Option<Level>) {
        let c = a.core.index();
        let line = a.addr.line();
        let offset = a.addr.line_offset();
        let len = usize::from(a.len);
        let core = a.core;
        match a.kind {
            Kind::Load => {
                if self.observers.any() {
                    let data = self.l1[c].payload(s1).data.bytes;
                    self.emit(|| CacheEvent::Load {
                        cycle: t,
                        core,
                        line,
                        offset: offset as u8,
                        len: a.len,
                        data,
                        from,
                    });
                }
            }
            Kind::Speculative | Kind::SwPrefetch | Kind::HwPrefetch => {}
            Kind::Store => {
                self.last_stamp = self.last_stamp.next();
                let stamp = self.last_stamp;
                let p = self.l1[c].payload_mut(s1);
                assert_eq!(
                    p.state,
                    MesiState::Modified,
                    "store {} of core {c} to {line:?} performed at {t} without ownership",
                    a.id
                );
                p.data.bytes[offset..offset + len].copy_from_slice(&a.data[..len]);
                p.data.stamp = stamp;
                p.stored = true;
                self.l1[c].set_dirty(s1, true);
                if self.observers.any() {
                    let data = self.l1[c].payload(s1).data.bytes;
                    self.emit(|| CacheEvent::Store {
                        cycle: t,
                        core,
                        line,
                        offset: offset as u8,
                        len: a.len,
                        data,
                        stamp,
                    });
                }
            }
        }
    }

    /// The fill an L1D MSHR entry asks for.
    fn l1_acquire(&self, c: usize, slot: usize) -> Acquire {
        let e = self.l1_mshr[c].get(slot);
        Acquire {
            kind: e.acquire_kind(),
            to_l1: true,
            l2_cause: e.cause(),
            l1_cause: e.cause(),
            l2_prefetched: false,
            l1_prefetched: e.hw_prefetch_only(),
        }
    }

    /// An L1D miss planned as an L2 hit reaches its cycle.
    pub(super) fn complete_l1(&mut self, t: Cycle, c: usize, slot: usize) {
        let (line, write) = {
            let e = self.l1_mshr[c].get(slot);
            debug_assert!(!e.attached);
            (e.line, e.need_write)
        };
        let still_there = self.l2[c]
            .probe(line.base())
            .is_some_and(|s| sufficient(write, self.l2[c].payload(s).state));
        if still_there {
            let req = self.l1_acquire(c, slot);
            let from = self.acquire(t, c, line, req);
            self.finish_l1(t, c, slot, Some(from));
        } else {
            self.replay_l1(t, c, slot);
        }
    }

    /// Closes an L1D entry whose line is now in the L1D with the permission it needs, and
    /// performs its requests in order.
    fn finish_l1(&mut self, t: Cycle, c: usize, slot: usize, from: Option<Level>) {
        let e = self.l1_mshr[c].free(slot);
        self.mshr_freed = true;
        for a in &e.reqs {
            let s1 = self.l1[c].probe(a.addr).unwrap_or_else(|| {
                panic!(
                    "request {} of core {c} performed at {t} without {:?} in its L1D",
                    a.id,
                    a.addr.line()
                )
            });
            if let Some(response) = self.perform(t, s1, &Perform::of(a), from) {
                self.ready.push(response);
            }
        }
    }

    /// Closes an L1D entry whose plan failed and starts its requests over.
    fn replay_l1(&mut self, t: Cycle, c: usize, slot: usize) {
        let e = self.l1_mshr[c].free(slot);
        self.mshr_freed = true;
        let write_hint = e.need_write;
        for a in e.reqs {
            self.restart(t, a, write_hint);
        }
    }

    /// An L2 MSHR entry's line is available on chip (an on-chip plan reached its cycle, or
    /// memory answered): bring it in through the directory and complete what waits.
    pub(super) fn complete_l2(&mut self, t: Cycle, c: usize, slot: usize, via_memory: bool) {
        let (line, has_l1, hw_prefetch, prefetch_used) = {
            let e = self.l2_mshr[c].get(slot);
            debug_assert!(!e.waits_on_llc);
            (e.line, e.has_l1, e.hw_prefetch, e.prefetch_used)
        };
        if !self.on_chip(line) {
            // It left the chip since the request was planned: start over.
            let e = self.l2_mshr[c].free(slot);
            self.mshr_freed = true;
            if e.has_l1 {
                let s1 = self.l1_mshr[c].find(line).expect("an attached L1D entry");
                self.replay_l1(t, c, s1);
            }
            return;
        }
        let l1_slot = has_l1.then(|| self.l1_mshr[c].find(line).expect("an attached L1D entry"));
        let req = match l1_slot {
            Some(s1) => Acquire {
                l2_cause: if hw_prefetch {
                    FillCause::Prefetch
                } else {
                    self.l1_mshr[c].get(s1).cause()
                },
                l2_prefetched: hw_prefetch && !prefetch_used,
                ..self.l1_acquire(c, s1)
            },
            None => Acquire {
                kind: AcquireKind::Speculative,
                to_l1: false,
                l2_cause: FillCause::Prefetch,
                l1_cause: FillCause::Prefetch,
                l2_prefetched: true,
                l1_prefetched: false,
            },
        };
        let from = self.acquire(t, c, line, req);
        self.l2_mshr[c].free(slot);
        self.mshr_freed = true;
        let from = if via_memory { None } else { Some(from) };
        if let Some(s1) = l1_slot {
            self.finish_l1(t, c, s1, from);
        }
    }

    pub(super) fn issue_read(&mut self, t: Cycle, slot: usize) {
        let e = self.llc_mshr.get_mut(slot);
        e.issued = true;
        let (id, line, cause) = (e.id, e.line, e.cause);
        self.outbox.push_back(MemRequest {
            id,
            op: MemOp::Read,
            addr: line.base(),
            data: None,
            issued: t,
        });
        self.stats.global.mem_reads.inc();
        self.emit(|| CacheEvent::MemRead {
            cycle: t,
            line,
            cause,
        });
    }

    pub(in crate::hierarchy) fn accept_mem_response(&mut self, now: Cycle, response: MemResponse) {
        let Some(data) = response.data else {
            self.stats.global.mem_write_acks.inc();
            return;
        };
        let slot = self.llc_mshr_slot_of(response.id).unwrap_or_else(|| {
            panic!(
                "memory answered {:?}, which is no outstanding read",
                response.id
            )
        });
        let e = self.llc_mshr.get_mut(slot);
        assert!(
            e.issued && e.data.is_none(),
            "memory answered {:?} twice or before it was sent",
            response.id
        );
        e.data = Some(data);
        let gen_ = self.llc_mshr_gen(slot);
        self.stats.global.mem_read_responses.inc();
        self.push_event(response.done.max(now), Ev::MemFill { slot, gen_ });
    }

    fn llc_mshr_slot_of(&self, id: RequestId) -> Option<usize> {
        self.llc_mshr.position(|e| e.id == id)
    }

    fn llc_mshr_gen(&self, slot: usize) -> u32 {
        self.llc_mshr.gen_of(slot)
    }

    /// Memory's data for an LLC miss: install it, complete the first waiting core with it (in
    /// the same step, so that it always makes progress), then the others in arrival order.
    pub(super) fn fill_from_memory(&mut self, t: Cycle, slot: usize) {
        let e = self.llc_mshr.free(slot);
        self.mshr_freed = true;
        let data = e.data.expect("a memory fill carries data");
        self.install(t, e.line, data, e.cause, e.charge);
        for (i, &c) in e.cores.iter().enumerate() {
            let s2 = self.l2_mshr[c]
                .find(e.line)
                .expect("a core waiting on a memory fill has an L2 MSHR entry");
            self.l2_mshr[c].get_mut(s2).waits_on_llc = false;
            if i == 0 {
                self.complete_l2(t, c, s2, true);
            } else {
                let gen_ = self.l2_mshr[c].gen_of(s2);
                self.run_step(
                    t,
                    Step::L2Complete {
                        core: c,
                        slot: s2,
                        gen_,
                        via_memory: true,
                    },
                );
            }
        }
    }
}
