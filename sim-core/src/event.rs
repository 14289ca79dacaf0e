//! Deterministic event ordering.
//!
//! Events are keyed by `(Cycle, seq)`: earlier cycles first, and events scheduled for the same
//! cycle leave in the order they were inserted. No event payload takes part in the ordering, so
//! the order never depends on addresses, hash values or thread scheduling.

use crate::time::Cycle;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

struct Entry<E> {
    at: Cycle,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<E> Eq for Entry<E> {}

impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Entry<E> {
    // Reversed so that the max-heap pops the earliest (cycle, seq) first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// A priority queue of events ordered by `(cycle, insertion order)`.
///
/// ```
/// use sim_core::{Cycle, EventQueue};
/// let mut q = EventQueue::new();
/// q.push(Cycle::new(5), "b");
/// q.push(Cycle::new(3), "a");
/// q.push(Cycle::new(5), "c");
/// assert_eq!(q.pop(), Some((Cycle::new(3), "a")));
/// assert_eq!(q.pop(), Some((Cycle::new(5), "b"))); // same cycle: insertion order
/// assert_eq!(q.pop(), Some((Cycle::new(5), "c")));
/// ```
pub struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    next_seq: u64,
}

impl<E> std::fmt::Debug for EventQueue<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventQueue")
            .field("pending", &self.heap.len())
            .field("next", &self.peek_cycle())
            .finish()
    }
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    /// An empty queue.
    pub fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            next_seq: 0,
        }
    }

    /// Schedules `event` at cycle `at`.
    pub fn push(&mut self, at: Cycle, event: E) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry { at, seq, event });
    }

    /// The cycle of the earliest event, if any.
    pub fn peek_cycle(&self) -> Option<Cycle> {
        self.heap.peek().map(|e| e.at)
    }

    /// Removes and returns the earliest event.
    pub fn pop(&mut self) -> Option<(Cycle, E)> {
        self.heap.pop().map(|e| (e.at, e.event))
    }

    /// Removes and returns the earliest event if it is due at or before `now`.
    pub fn pop_due(&mut self, now: Cycle) -> Option<(Cycle, E)> {
        if self.peek_cycle()? <= now {
            self.pop()
        } else {
            None
        }
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when no event is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn pops_in_cycle_then_insertion_order(cycles in prop::collection::vec(0u64..8, 0..200)) {
            let mut q = EventQueue::new();
            for (i, c) in cycles.iter().enumerate() {
                q.push(Cycle::new(*c), i);
            }
            let mut expected: Vec<(u64, usize)> = cycles.iter().copied().zip(0..).collect();
            expected.sort(); // stable by (cycle, index)
            let got: Vec<(u64, usize)> = std::iter::from_fn(|| q.pop()).map(|(c, i)| (c.get(), i)).collect();
            prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn pop_due_respects_now() {
        let mut q = EventQueue::new();
        q.push(Cycle::new(10), 1);
        assert_eq!(q.pop_due(Cycle::new(9)), None);
        assert_eq!(q.pop_due(Cycle::new(10)), Some((Cycle::new(10), 1)));
        assert!(q.is_empty());
    }
}
