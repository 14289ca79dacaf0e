//! The completions of a channel on their way: delivered in the order of their data cycle, ties
//! in the order they were scheduled (the order of `sim_core::EventQueue`).
//!
//! They are scheduled almost in cycle order (a burst ends a fixed latency after its command,
//! and commands issue in time order), so a deque kept sorted by inserting from the back does
//! little more than append, where a binary heap of these 100-byte entries sifted on every push
//! and pop.

use sim_core::Cycle;
use std::collections::VecDeque;

/// Events sorted by cycle, ties first in first out.
#[derive(Clone, Debug)]
pub(super) struct CompletionQueue<E> {
    items: VecDeque<(Cycle, E)>,
}

impl<E> CompletionQueue<E> {
    pub(super) fn new() -> Self {
        CompletionQueue {
            items: VecDeque::new(),
        }
    }

    /// Schedules `event` at `at`, after every event scheduled at or before `at`.
    #[inline]
    pub(super) fn push(&mut self, at: Cycle, event: E) {
        // Nearly always the latest: append without the general insertion.
        if self.items.back().is_none_or(|&(last, _)| last <= at) {
            self.items.push_back((at, event));
            return;
        }
        let mut index = self.items.len();
        while index > 0 && self.items[index - 1].0 > at {
            index -= 1;
        }
        self.items.insert(index, (at, event));
    }

    /// The cycle of the first event, if any.
    #[inline]
    pub(super) fn peek_cycle(&self) -> Option<Cycle> {
        self.items.front().map(|(at, _)| *at)
    }

    /// Removes and returns the first event if it is due at or before `now`.
    #[inline]
    pub(super) fn pop_due(&mut self, now: Cycle) -> Option<(Cycle, E)> {
        if self.peek_cycle()? <= now {
            self.items.pop_front()
        } else {
            None
        }
    }

    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_core::EventQueue;

    /// The same order as `sim_core::EventQueue` on random schedules (cycle, then insertion),
    /// with pops interleaved.
    #[test]
    fn delivers_in_event_queue_order() {
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut ours, mut reference) = (CompletionQueue::new(), EventQueue::new());
        let mut now = 0u64;
        for i in 0..20_000u64 {
            let at = Cycle::new(now + next() % 40);
            ours.push(at, i);
            reference.push(at, i);
            if next() % 3 == 0 {
                now += next() % 8;
                let now = Cycle::new(now);
                loop {
                    let (a, b) = (ours.pop_due(now), reference.pop_due(now));
                    assert_eq!(a, b);
                    if a.is_none() {
                        break;
                    }
                }
            }
            assert_eq!(ours.peek_cycle(), reference.peek_cycle());
            assert_eq!(ours.len(), reference.len());
        }
    }
}
