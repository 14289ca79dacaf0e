//! Event skipping (`docs/dram-model.md` section 10): the bounds that let a tick return at once
//! when nothing can happen. `plan` computes `wake` (steps 4 and 5) at the end of a tick that did
//! work, `update_next_event` folds in completions, the encrypt stage and refresh; debug builds
//! check that a skipped tick would indeed have done nothing.

use super::{Channel, QueueSet};
use crate::dram::bank::{BankState, CommandKind};
use sim_core::Cycle;
use std::cmp;

impl Channel {
    /// The first cycle at which the due refresh of `rank` can issue a command if nothing else
    /// issues before ([`Channel::refresh_command`]): the earliest PRE of an open bank, or once
    /// every bank is closed, the cycle all of them allow REF.
    fn refresh_ready_at(&self, rank: u32) -> Cycle {
        let mut pre = Cycle::NEVER;
        let mut refresh = Cycle::ZERO;
        for b in self.rank_banks(rank) {
            let i = self.bank_index(b);
            match self.banks[i] {
                BankState::Open { .. } => {
                    pre = pre.min(self.timing.ready_at(b, i, CommandKind::Precharge));
                }
                BankState::Closed => {
                    let at = self.timing.ready_at(b, i, CommandKind::Refresh);
                    refresh = cmp::max(refresh, at);
                }
            }
        }
        if pre < Cycle::NEVER { pre } else { refresh }
    }

    /// End of a tick that did work: the first cycle at which steps 4 and 5 can change anything
    /// if no request arrives (`wake`). `moved`: step 5 changed something this tick.
    pub(super) fn plan(&mut self, now: Cycle, moved: bool) {
        let next = now.plus(1);
        // Step 5 is a function of the queues alone. If it changed nothing this tick (after
        // this tick's command), it changes nothing until a command issues or a request
        // arrives, both of which re-plan; if it did, ask it again.
        if moved {
            self.step5_settled = self.step_five_idle(now);
        }
        let mut wake = if self.step5_settled {
            // Settled step 5 still starts an idle drain once the timeout passes.
            self.idle_drain_deadline().unwrap_or(Cycle::NEVER)
        } else {
            next
        };
        if let Some(rank) = self.refresh.due() {
            wake = wake.min(self.refresh_ready_at(rank));
        }
        // A held rank's queues wait for its REF, whose issue re-plans.
        let held = self
            .refresh
            .next_held_rank()
            .map_or(0..0, |rank| self.rank_queues(rank));
        let all = 0..self.command_queues.len();
        // The search's walk, when it stands for this one (the same queues held, no reset of a
        // bound the earliest may rest on).
        let walked = self.walk.take(&held);
        // Once `wake` is the next cycle nothing can lower it and no bound need be refreshed:
        // the walk over the queues stops there (or never starts). Otherwise, first the bounds
        // still to come, then the passed ones (the queue's entries or bank changed, another
        // command delayed it, or round-robin passed it over) are scanned for their real bound
        // until one says the next cycle. A passed bound left alone is still a valid lower bound
        // for the next tick's search, which refreshes it.
        if wake > next {
            for w in QueueSet::words_of(&all) {
                let members = self.nonempty.word(w, &all, &held);
                let (mut passed, earliest) = if walked {
                    let (passed, earliest) = self.walk.word(w);
                    (passed & members, earliest)
                } else {
                    QueueSet::split(members, w, &self.queue_ready, now)
                };
                #[cfg(debug_assertions)]
                if walked {
                    assert_eq!(
                        (passed, earliest),
                        QueueSet::split(members, w, &self.queue_ready, now),
                        "cycle {now}: channel {}: word {w} of the search's walk is stale",
                        self.index
                    );
                }
                wake = wake.min(earliest);
                while passed != 0 && wake > next {
                    let q = w * 64 + passed.trailing_zeros() as usize;
                    passed &= passed - 1;
                    let ready = match self.scan_queue(q, now) {
                        Ok(_) => next,
                        Err(ready) => ready,
                    };
                    self.queue_ready[q] = ready;
                    wake = wake.min(ready);
                }
            }
        }
        self.wake = cmp::max(wake, next);
        self.update_next_event();
    }

    /// Queue `q`'s entries or the state of one of its banks changed: its bound is unknown.
    pub(super) fn reset_bound(&mut self, q: usize, now: Cycle) {
        self.walk.reset(q, self.queue_ready[q], now);
        self.queue_ready[q] = Cycle::ZERO;
    }

    /// Recomputes `next_event` after a change to any of its parts.
    pub(super) fn update_next_event(&mut self) {
        let mut next = self.wake.min(self.refresh.next_trigger());
        if let Some(c) = self.completions.peek_cycle() {
            next = next.min(c);
        }
        if let Some(&(ready, _)) = self.encrypting.front() {
            next = next.min(ready);
        }
        self.next_event = next;
    }

    /// True when `tick(now)` would change nothing: no write leaves the encrypt stage, no
    /// completion is due, no refresh triggers, and steps 4 and 5 have nothing before `wake`.
    pub(super) fn quiet_at(&self, now: Cycle) -> bool {
        let quiet = now < self.next_event;
        #[cfg(debug_assertions)]
        if quiet {
            assert!(
                now < self.wake
                    && self.completions.peek_cycle().is_none_or(|c| c > now)
                    && self
                        .encrypting
                        .front()
                        .is_none_or(|&(ready, _)| ready > now)
                    && !self.refresh.triggers_at(now),
                "cycle {now}: channel {}: next_event {} is stale",
                self.index,
                self.next_event
            );
        }
        quiet
    }

    /// Debug builds: a tick skipped as quiet would indeed have done nothing.
    #[cfg(debug_assertions)]
    pub(super) fn assert_quiet(&self, now: Cycle) {
        let index = self.index;
        if let Some(rank) = self.refresh.due() {
            assert!(
                self.refresh_command(rank, now).is_none(),
                "cycle {now}: channel {index}: a quiet tick skipped a refresh command"
            );
        }
        assert!(
            self.reference_selection(now, self.refresh.next_held_rank())
                .is_none(),
            "cycle {now}: channel {index}: a quiet tick skipped a ready command"
        );
        assert!(
            self.step_five_idle(now),
            "cycle {now}: channel {index}: a quiet tick skipped a transaction move"
        );
    }

    /// True when a tick could do something other than deliver a completion or start a refresh
    /// that is not yet due.
    pub(super) fn has_work(&self) -> bool {
        self.refresh.due().is_some()
            || !self.read_queue.is_empty()
            || self.write_draining > 0
            || self.drain_may_start()
            || !self.nonempty.is_empty()
    }

    pub(super) fn next_event_cycle(&self, now: Cycle) -> Cycle {
        if !self.exhaustive {
            return cmp::max(self.next_event, now.plus(1));
        }
        // DRAMsim3's view: any queued work may do something next cycle.
        let mut next = self.refresh.next_trigger_after(now);
        if let Some(c) = self.completions.peek_cycle() {
            next = next.min(c);
        }
        if let Some(&(ready, _)) = self.encrypting.front() {
            next = next.min(ready);
        }
        if self.has_work() {
            next = next.min(now.plus(1));
        }
        next.max(now.plus(1))
    }
}
