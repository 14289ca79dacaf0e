//! Rank-level refresh, staggered across ranks as DRAMsim3 does (`RANK_LEVEL_STAGGERED`,
//! `src/refresh.cc`).
//!
//! ```text
//!   cycle:  0 ...... I ...... 2I ...... 3I ......      I = tREFI / ranks
//!                    REF r0   REF r1    REF r0  ...    (2 ranks)
//! ```
//!
//! At every cycle `c > 0` with `c % I == 0` the next rank in round-robin order becomes due. A
//! due refresh preempts that rank: its command queues stop issuing, every open bank of the rank
//! is precharged as soon as timing allows, and REF issues when all banks are precharged and
//! ready (DRAMsim3 `CommandQueue::FinishRefresh`, "ASAP"). Other ranks keep working.

use sim_core::Cycle;
use std::collections::VecDeque;

/// JEDEC lets a controller postpone at most 8 REF commands per rank; more pending than that
/// means the model stopped refreshing, which is a bug.
pub const POSTPONED_REFRESHES_MAX: usize = 8;

/// Which ranks are due for refresh.
#[derive(Clone, Debug)]
pub struct RefreshScheduler {
    interval_cycles: u64,
    ranks: u32,
    next_rank: u32,
    /// Ranks due, in the order they became due.
    pending: VecDeque<u32>,
    /// The rank whose queues are held back while its refresh is being prepared (DRAMsim3
    /// `is_in_ref_` / `ref_q_indices_`).
    preparing: Option<u32>,
    /// The next trigger not yet passed to [`RefreshScheduler::on_cycle`] (kept so the hot
    /// "is anything due?" checks compare instead of dividing).
    next_trigger: Cycle,
}

impl RefreshScheduler {
    /// Refresh every `t_refi_cycles` per rank, staggered over `ranks`.
    pub fn new(t_refi_cycles: u32, ranks: u32) -> RefreshScheduler {
        let interval_cycles = u64::from(t_refi_cycles / ranks);
        assert!(interval_cycles > 0, "validated by DramConfig");
        RefreshScheduler {
            interval_cycles,
            ranks,
            next_rank: 0,
            pending: VecDeque::with_capacity(ranks as usize * POSTPONED_REFRESHES_MAX),
            preparing: None,
            next_trigger: Cycle::new(interval_cycles),
        }
    }

    /// Cycles between two refresh triggers (tREFI / ranks).
    pub fn interval_cycles(&self) -> u64 {
        self.interval_cycles
    }

    /// Called on every simulated cycle before any command is chosen, or at least on every cycle
    /// where [`RefreshScheduler::triggers_at`] holds.
    ///
    /// # Panics
    /// If a trigger cycle was skipped.
    pub fn on_cycle(&mut self, now: Cycle) {
        assert!(
            now <= self.next_trigger,
            "cycle {now}: the refresh trigger at cycle {} was skipped",
            self.next_trigger
        );
        // Every trigger before `next_trigger` was passed, and `now` is not past it: `now`
        // triggers exactly when it is `next_trigger` (no division needed).
        debug_assert_eq!(now == self.next_trigger, self.triggers_at(now));
        if now == self.next_trigger {
            self.next_trigger = now.plus(self.interval_cycles);
            assert!(
                self.pending.len() < self.ranks as usize * POSTPONED_REFRESHES_MAX,
                "cycle {now}: {} refreshes pending, more than JEDEC's {} per rank: the model \
                 stopped refreshing (pending ranks {:?})",
                self.pending.len(),
                POSTPONED_REFRESHES_MAX,
                self.pending
            );
            self.pending.push_back(self.next_rank);
            self.next_rank = (self.next_rank + 1) % self.ranks;
        }
    }

    /// True when a refresh becomes due at `now` (a tick that skips this cycle would lose it).
    pub fn triggers_at(&self, now: Cycle) -> bool {
        now.get() > 0 && now.get().is_multiple_of(self.interval_cycles)
    }

    /// The first trigger cycle not yet passed to [`RefreshScheduler::on_cycle`].
    pub fn next_trigger(&self) -> Cycle {
        self.next_trigger
    }

    /// The first cycle after `now` at which a refresh becomes due.
    pub fn next_trigger_after(&self, now: Cycle) -> Cycle {
        if self.next_trigger > now && self.next_trigger.get() - now.get() <= self.interval_cycles {
            // Every multiple of the interval up to `now` was passed to `on_cycle`.
            return self.next_trigger;
        }
        Cycle::new((now.get() / self.interval_cycles + 1) * self.interval_cycles)
    }

    /// The rank whose refresh is due first, if any.
    pub fn due(&self) -> Option<u32> {
        self.pending.front().copied()
    }

    /// Marks `rank` as being prepared: its command queues are held until its REF issues.
    pub fn begin(&mut self, rank: u32) {
        if self.preparing.is_none() {
            self.preparing = Some(rank);
        }
    }

    /// The rank whose queues are held, if any.
    pub fn held_rank(&self) -> Option<u32> {
        self.preparing
    }

    /// The rank whose queues the next command selection will hold: the one held now or, if
    /// none, the first due (which the next tick [`RefreshScheduler::begin`]s before selecting).
    pub fn next_held_rank(&self) -> Option<u32> {
        self.preparing.or_else(|| self.due())
    }

    /// REF issued to `rank`.
    pub fn done(&mut self, rank: u32) {
        let front = self.pending.pop_front();
        assert_eq!(
            front,
            Some(rank),
            "REF issued to rank {rank} while the first due refresh is {front:?}"
        );
        self.preparing = None;
    }

    /// Number of refreshes due.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staggered_round_robin() {
        let mut r = RefreshScheduler::new(9360, 2);
        assert_eq!(r.interval_cycles(), 4680);
        r.on_cycle(Cycle::ZERO);
        assert_eq!(r.due(), None);
        assert_eq!(r.next_trigger_after(Cycle::ZERO), Cycle::new(4680));
        r.on_cycle(Cycle::new(4680));
        assert_eq!(r.due(), Some(0));
        r.begin(0);
        assert_eq!(r.held_rank(), Some(0));
        r.done(0);
        assert_eq!(r.held_rank(), None);
        r.on_cycle(Cycle::new(9360));
        assert_eq!(r.due(), Some(1));
        assert_eq!(r.next_trigger_after(Cycle::new(9360)), Cycle::new(14040));
    }
}
