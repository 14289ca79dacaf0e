//! [`QueueSet`]: a set of command queue indexes, one bit each. The tick's walks visit the
//! queues that hold entries, in round-robin order, instead of every (mostly empty) queue, and
//! find the queues whose bound has passed without a branch per queue; step 5 tells a full
//! queue from it without reading the queue.

use sim_core::Cycle;
use std::ops::Range;

/// A set of command queue indexes, one bit each: which queues hold entries. A tick walks it in
/// round-robin order instead of looking at every (mostly empty) queue.
#[derive(Clone, Debug)]
pub(super) struct QueueSet {
    words: Vec<u64>,
    members: usize,
}

impl QueueSet {
    pub(super) fn new(queues: usize) -> QueueSet {
        QueueSet {
            words: vec![0; queues.div_ceil(64)],
            members: 0,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.members == 0
    }

    #[inline]
    pub(super) fn contains(&self, q: usize) -> bool {
        self.words[q / 64] & (1u64 << (q % 64)) != 0
    }

    pub(super) fn insert(&mut self, q: usize) {
        let (w, bit) = (q / 64, 1u64 << (q % 64));
        if self.words[w] & bit == 0 {
            self.words[w] |= bit;
            self.members += 1;
        }
    }

    pub(super) fn remove(&mut self, q: usize) {
        let (w, bit) = (q / 64, 1u64 << (q % 64));
        if self.words[w] & bit != 0 {
            self.words[w] &= !bit;
            self.members -= 1;
        }
    }

    /// The members in `within` but not in `except` that word `w` holds, as a mask of the word
    /// (member `q` is bit `q % 64` of word `q / 64`). Visit them lowest first with
    /// `trailing_zeros` and `bits &= bits - 1`.
    pub(super) fn word(&self, w: usize, within: &Range<usize>, except: &Range<usize>) -> u64 {
        self.words[w] & range_mask(w, within) & !range_mask(w, except)
    }

    /// Of `bits` (members of word `w`), those whose queue's bound in `bounds` has come (is at or
    /// before `now`), found without a branch per queue: which bounds have passed is
    /// unpredictable, and a mispredicted branch per queue costs more than looking at them all.
    #[inline]
    pub(super) fn passed(mut bits: u64, w: usize, bounds: &[Cycle], now: Cycle) -> u64 {
        let mut passed = 0;
        while bits != 0 {
            let i = bits.trailing_zeros();
            bits &= bits - 1;
            passed |= u64::from(bounds[w * 64 + i as usize] <= now) << i;
        }
        passed
    }

    /// The words that hold members of `range` (empty for an empty range).
    pub(super) fn words_of(range: &Range<usize>) -> Range<usize> {
        if range.is_empty() {
            0..0
        } else {
            range.start / 64..(range.end - 1) / 64 + 1
        }
    }
}

/// The bits of word `w` (queues `64 w ..= 64 w + 63`) that lie in `range`.
fn range_mask(w: usize, range: &Range<usize>) -> u64 {
    let (lo, hi) = (w * 64, w * 64 + 64);
    let (from, end) = (range.start.max(lo), range.end.min(hi));
    if from >= end {
        return 0;
    }
    let width = end - from;
    let ones = if width == 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    ones << (from - lo)
}
