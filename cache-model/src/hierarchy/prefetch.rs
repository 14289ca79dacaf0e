//! Per-core hardware prefetchers: next-line and stride, never crossing a 4 KiB page.
//!
//! The prefetchers only choose lines; the hierarchy issues them (as clean fills, dropped when
//! an MSHR is busy). Lines are physical lines with their KeyID bits: a prefetcher trained
//! through one KeyID prefetches through that KeyID, as hardware that sees only physical
//! addresses does.
//!
//! - Next-line: a trigger (a demand miss at the training level, or the first demand use of a
//!   line a prefetch brought in, so that a stream keeps running ahead) asks for the next
//!   `degree` lines of the page.
//! - Stride: traces rarely carry a PC, so strides are tracked per 4 KiB page in a small table
//!   (last line, last stride, confidence), least recently used entry replaced. Two equal
//!   non-zero strides in a row make the stride confident; every access at a confident stride
//!   asks for the next `degree` lines along it, within the page.

use crate::hierarchy::config::PrefetchConfig;
use sim_core::addr::{LINE_SHIFT, PAGE_SHIFT};
use sim_core::{BitRange, LineAddr};

/// The line's index within its 4 KiB page, in a line address (64 lines: 6 bits).
const LINE_IN_PAGE: BitRange = match BitRange::new(0, PAGE_SHIFT - LINE_SHIFT) {
    Some(r) => r,
    None => panic!("the line-in-page field fits 64 bits"),
};
/// The page number (KeyID bits included) in a line address.
const PAGE_OF_LINE: BitRange =
    match BitRange::new(PAGE_SHIFT - LINE_SHIFT, 64 - (PAGE_SHIFT - LINE_SHIFT)) {
        Some(r) => r,
        None => panic!("the page field fits 64 bits"),
    };
const LINES_PER_PAGE: i64 = 1 << (PAGE_SHIFT - LINE_SHIFT);

/// Two equal strides in a row (the second confirms the first).
const STRIDE_CONFIDENT: u8 = 1;
/// Confidence saturates here.
const STRIDE_CONFIDENCE_MAX: u8 = 3;

#[derive(Copy, Clone, Debug)]
struct StrideEntry {
    page: u64,
    last: u8,
    stride: i8,
    confidence: u8,
    /// Last use, for LRU replacement; 0 = empty.
    stamp: u64,
}

/// One core's prefetchers.
#[derive(Clone, Debug)]
pub(crate) struct Prefetcher {
    next_line: bool,
    stride: bool,
    degree: u32,
    table: Vec<StrideEntry>,
    clock: u64,
}

impl Prefetcher {
    pub(crate) fn new(config: &PrefetchConfig) -> Prefetcher {
        let entries = if config.stride {
            config.stride_table_entries as usize
        } else {
            0
        };
        Prefetcher {
            next_line: config.next_line,
            stride: config.stride,
            degree: config.degree,
            table: vec![
                StrideEntry {
                    page: 0,
                    last: 0,
                    stride: 0,
                    confidence: 0,
                    stamp: 0,
                };
                entries
            ],
            clock: 0,
        }
    }

    /// Trains on a demand access to `line` at the training level and appends the lines to
    /// prefetch to `out` (without duplicates, never `line` itself, never outside its page).
    /// `trigger` is true for a demand miss or the first demand use of a prefetched line.
    pub(crate) fn train(&mut self, line: LineAddr, trigger: bool, out: &mut Vec<LineAddr>) {
        let start = out.len();
        let index = LINE_IN_PAGE.extract(line.raw()) as i64;
        if self.next_line && trigger {
            for k in 1..=i64::from(self.degree) {
                push_in_page(line, index + k, start, out);
            }
        }
        if self.stride
            && let Some(stride) = self.train_stride(line, index)
        {
            for k in 1..=i64::from(self.degree) {
                push_in_page(line, index + k * i64::from(stride), start, out);
            }
        }
    }

    /// Updates the page's entry; returns the stride to prefetch along when confident.
    fn train_stride(&mut self, line: LineAddr, index: i64) -> Option<i8> {
        self.clock += 1;
        let page = PAGE_OF_LINE.extract(line.raw());
        let clock = self.clock;
        if let Some(e) = self
            .table
            .iter_mut()
            .find(|e| e.stamp != 0 && e.page == page)
        {
            e.stamp = clock;
            let stride = index - i64::from(e.last);
            e.last = index as u8;
            if stride == 0 {
                return None;
            }
            // |stride| < 64 within a page, so it fits an i8.
            let stride = stride as i8;
            if stride == e.stride {
                e.confidence = (e.confidence + 1).min(STRIDE_CONFIDENCE_MAX);
            } else {
                e.stride = stride;
                e.confidence = 0;
            }
            return (e.confidence >= STRIDE_CONFIDENT).then_some(e.stride);
        }
        // A new page: replace the least recently used entry (empty ones have stamp 0). Ties
        // go to the lowest index, so the choice is deterministic.
        let victim = self
            .table
            .iter_mut()
            .min_by_key(|e| e.stamp)
            .expect("the stride table has at least one entry when the stride prefetcher is on");
        *victim = StrideEntry {
            page,
            last: index as u8,
            stride: 0,
            confidence: 0,
            stamp: clock,
        };
        None
    }
}

/// Appends the line at `index` of `line`'s page to `out[start..]` unless it is outside the
/// page, `line` itself, or already there.
fn push_in_page(line: LineAddr, index: i64, start: usize, out: &mut Vec<LineAddr>) {
    if !(0..LINES_PER_PAGE).contains(&index) {
        return;
    }
    let target = LineAddr::new(LINE_IN_PAGE.insert(line.raw(), index as u64));
    if target != line && !out[start..].contains(&target) {
        out.push(target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hierarchy::config::PrefetchLevel;

    fn config(next_line: bool, stride: bool, degree: u32) -> PrefetchConfig {
        PrefetchConfig {
            next_line,
            stride,
            degree,
            train_on: PrefetchLevel::L1d,
            fill_into: PrefetchLevel::L1d,
            stride_table_entries: 2,
        }
    }

    fn line(page: u64, index: u64) -> LineAddr {
        LineAddr::new(page * 64 + index)
    }

    fn train(p: &mut Prefetcher, l: LineAddr, trigger: bool) -> Vec<LineAddr> {
        let mut out = Vec::new();
        p.train(l, trigger, &mut out);
        out
    }

    #[test]
    fn next_line_stays_in_the_page() {
        let mut p = Prefetcher::new(&config(true, false, 3));
        assert_eq!(
            train(&mut p, line(5, 10), true),
            [line(5, 11), line(5, 12), line(5, 13)]
        );
        assert_eq!(train(&mut p, line(5, 62), true), [line(5, 63)]);
        assert!(train(&mut p, line(5, 63), true).is_empty());
        // No trigger (a plain hit): nothing.
        assert!(train(&mut p, line(5, 10), false).is_empty());
    }

    #[test]
    fn stride_needs_two_equal_strides_and_stays_in_the_page() {
        let mut p = Prefetcher::new(&config(false, true, 2));
        assert!(train(&mut p, line(7, 0), false).is_empty()); // new entry
        assert!(train(&mut p, line(7, 5), false).is_empty()); // stride 5, unconfirmed
        assert_eq!(
            train(&mut p, line(7, 10), false),
            [line(7, 15), line(7, 20)]
        );
        assert_eq!(
            train(&mut p, line(7, 15), false),
            [line(7, 20), line(7, 25)]
        );
        assert_eq!(train(&mut p, line(7, 55), false), Vec::<LineAddr>::new()); // broken
        // Negative strides work too, and stop at the page's start.
        let mut p = Prefetcher::new(&config(false, true, 4));
        for i in [20, 17, 14] {
            train(&mut p, line(9, i), false);
        }
        assert_eq!(
            train(&mut p, line(9, 11), false),
            [line(9, 8), line(9, 5), line(9, 2)]
        );
        // Repeating a line is not a stride.
        assert!(train(&mut p, line(9, 11), false).is_empty());
    }

    #[test]
    fn stride_table_is_lru_per_page() {
        let mut p = Prefetcher::new(&config(false, true, 1));
        // Two entries: pages 1 and 2 learn stride 1.
        for i in 0..2 {
            train(&mut p, line(1, i), false);
            train(&mut p, line(2, i), false);
        }
        // Page 3 replaces the least recently used (page 1).
        train(&mut p, line(3, 0), false);
        assert_eq!(train(&mut p, line(2, 2), false), [line(2, 3)]);
        // Page 1 lost its history: it starts over.
        assert!(train(&mut p, line(1, 2), false).is_empty());
    }

    #[test]
    fn both_prefetchers_deduplicate() {
        let mut p = Prefetcher::new(&config(true, true, 2));
        train(&mut p, line(4, 0), true);
        train(&mut p, line(4, 1), true);
        // Stride 1 is confident: both ask for 3 and 4.
        assert_eq!(train(&mut p, line(4, 2), true), [line(4, 3), line(4, 4)]);
    }

    #[test]
    fn keyid_bits_stay_with_the_page() {
        // A line address with high (KeyID) bits set: prefetches keep them.
        let keyed = LineAddr::new((5u64 << 40) | (64 * 3 + 7));
        let mut p = Prefetcher::new(&config(true, false, 1));
        assert_eq!(train(&mut p, keyed, true), [LineAddr::new(keyed.raw() + 1)]);
    }
}
