//! [`QueueSet`]: a set of command queue indexes, one bit each. The tick's walks visit the
//! queues that hold entries, in round-robin order, instead of every (mostly empty) queue, and
//! find the queues whose bound has passed without a branch per queue; step 5 tells a full
//! queue from it without reading the queue. [`QueueWalk`] is what step 4's search saw of the
//! queues, kept so that the end of the tick does not walk them again.

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

    /// True when every member is also a member of `other` (a set over as many queues).
    pub(super) fn within(&self, other: &QueueSet) -> bool {
        self.words
            .iter()
            .zip(&other.words)
            .all(|(mine, theirs)| mine & !theirs == 0)
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
    #[inline]
    pub(super) fn word(&self, w: usize, within: &Range<usize>, except: &Range<usize>) -> u64 {
        let bits = self.words[w] & range_mask(w, within);
        // Nothing is excepted but during a refresh.
        if except.is_empty() {
            bits
        } else {
            bits & !range_mask(w, except)
        }
    }

    /// Of `bits` (members of word `w`), those whose queue's bound in `bounds` has come (is at or
    /// before `now`), and the earliest bound of the others (`Cycle::NEVER` if none), found
    /// without a branch per queue: which bounds have passed is unpredictable, and a
    /// mispredicted branch per queue costs more than looking at them all. `bounds` holds a
    /// whole number of words ([`QueueSet::bounds`]), so a word's bounds are one array.
    #[inline]
    pub(super) fn split(mut bits: u64, w: usize, bounds: &[Cycle], now: Cycle) -> (u64, Cycle) {
        let word: &[Cycle; 64] = bounds[w * 64..w * 64 + 64]
            .try_into()
            .expect("bounds come in whole words");
        let mut passed = 0;
        let mut earliest = Cycle::NEVER;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let bound = word[i & 63];
            let is_passed = bound <= now;
            passed |= u64::from(is_passed) << i;
            earliest = earliest.min(if is_passed { Cycle::NEVER } else { bound });
        }
        (passed, earliest)
    }

    /// A bound per queue for `queues` queues, as [`QueueSet::split`] takes them: padded to a
    /// whole number of words (the padding belongs to no queue and is never read).
    pub(super) fn bounds(queues: usize) -> Vec<Cycle> {
        vec![Cycle::ZERO; queues.div_ceil(64) * 64]
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

/// What step 4's search saw of the command queues, kept for the end of the same tick
/// ([`super::Channel::plan`]), so that a tick walks the queues once, not twice. Per word of
/// queues: the members whose bound had passed and that the search did not scan, and the
/// earliest bound still to come among the others, the search's new bounds included. The
/// tick's own command and step 5 only delay the entries of other queues, which keeps those
/// bounds lower bounds; the two queues whose bound they reset (the one that issued, the one
/// step 5 fills) join the passed members, and a reset of a bound the earliest may rest on
/// drops the record (`plan` then walks the queues itself).
#[derive(Clone, Debug)]
pub(super) struct QueueWalk {
    /// Per word: the passed members not scanned, and the earliest bound to come.
    words: Vec<(u64, Cycle)>,
    /// The queues the search skipped for a refresh (none of them is a member).
    held: Range<usize>,
    /// Recorded this tick and still exact.
    valid: bool,
}

impl QueueWalk {
    pub(super) fn new(queues: usize) -> QueueWalk {
        QueueWalk {
            words: vec![(0, Cycle::NEVER); queues.div_ceil(64)],
            held: 0..0,
            valid: false,
        }
    }

    /// Records word `w`'s passed members and earliest bound to come ([`QueueSet::split`]).
    pub(super) fn record(&mut self, w: usize, split: (u64, Cycle)) {
        self.words[w] = split;
    }

    /// The record is complete: every word was recorded, with the queues of `held` skipped.
    pub(super) fn recorded(&mut self, held: Range<usize>) {
        self.held = held;
        self.valid = true;
    }

    /// The passed members of word `w` in `range` not scanned yet.
    pub(super) fn passed_in(&self, w: usize, range: &Range<usize>) -> u64 {
        self.words[w].0 & range_mask(w, range)
    }

    /// The search scanned queue `q`: nothing ready, and its new bound is `ready`.
    pub(super) fn scanned(&mut self, q: usize, ready: Cycle) {
        let word = &mut self.words[q / 64];
        word.0 &= !(1u64 << (q % 64));
        word.1 = word.1.min(ready);
    }

    /// Queue `q`'s bound, `old` until now, is reset: it is passed from now on.
    pub(super) fn reset(&mut self, q: usize, old: Cycle, now: Cycle) {
        let word = &mut self.words[q / 64];
        if old > now && old <= word.1 {
            self.valid = false;
        }
        word.0 |= 1u64 << (q % 64);
    }

    /// Whether the record is exact and was made with the queues of `held` skipped; either way
    /// it is used up (the next search records anew).
    pub(super) fn take(&mut self, held: &Range<usize>) -> bool {
        std::mem::replace(&mut self.valid, false) && self.held == *held
    }

    /// Word `w`'s record: the passed members not scanned (queues that left the members since
    /// included) and the earliest bound to come.
    pub(super) fn word(&self, w: usize) -> (u64, Cycle) {
        self.words[w]
    }
}

/// The bits of word `w` (queues `64 w ..= 64 w + 63`) that lie in `range`.
#[inline]
fn range_mask(w: usize, range: &Range<usize>) -> u64 {
    let (lo, hi) = (w * 64, w * 64 + 64);
    let (from, end) = (range.start.max(lo), range.end.min(hi));
    if from >= end {
        return 0;
    }
    // `end - from` is 1 to 64: no branch for the full word.
    (u64::MAX >> (64 - (end - from))) << (from - lo)
}
