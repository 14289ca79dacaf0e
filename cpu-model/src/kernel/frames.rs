//! The page-frame allocator: a LIFO free list in front of a bump pointer.
//!
//! Deterministic by construction, and chosen so that page reuse is easy to provoke: a freed
//! frame is the next one handed out (Linux's per-CPU free lists behave much the same for a
//! single CPU: hot pages are reused first).

use sim_core::PAGE_BYTES;

const PAGE: u64 = PAGE_BYTES as u64;

/// Frames of `[base, end)`, as DRAM addresses.
#[derive(Clone, Debug)]
pub(super) struct Frames {
    base: u64,
    end: u64,
    /// Next never-used frame.
    bump: u64,
    /// Freed frames; the last pushed is the next handed out.
    free: Vec<u64>,
}

impl Frames {
    /// `bytes` of frames from `base` (both page-aligned, validated by the caller).
    pub(super) fn new(base: u64, bytes: u64) -> Frames {
        Frames {
            base,
            end: base + bytes,
            bump: base,
            free: Vec::new(),
        }
    }

    /// Frames that can still be allocated.
    pub(super) fn available(&self) -> u64 {
        self.free.len() as u64 + (self.end - self.bump) / PAGE
    }

    /// Frames handed out and not freed.
    pub(super) fn in_use(&self) -> u64 {
        (self.bump - self.base) / PAGE - self.free.len() as u64
    }

    /// A frame: the last freed, else the next never-used one.
    pub(super) fn alloc(&mut self) -> Option<u64> {
        if let Some(frame) = self.free.pop() {
            return Some(frame);
        }
        if self.bump < self.end {
            let frame = self.bump;
            self.bump += PAGE;
            Some(frame)
        } else {
            None
        }
    }

    /// Returns frames to the free list so that the next allocations hand them out in the order
    /// given (`frames[0]` first).
    pub(super) fn free_in_order(&mut self, frames: &[u64]) {
        self.free.extend(frames.iter().rev());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifo_then_bump() {
        let mut f = Frames::new(0x1000, 3 * PAGE);
        assert_eq!(f.available(), 3);
        assert_eq!(f.alloc(), Some(0x1000));
        assert_eq!(f.alloc(), Some(0x2000));
        f.free_in_order(&[0x2000, 0x1000]);
        assert_eq!((f.in_use(), f.available()), (0, 3));
        assert_eq!(f.alloc(), Some(0x2000));
        assert_eq!(f.alloc(), Some(0x1000));
        assert_eq!(f.alloc(), Some(0x3000));
        assert_eq!(f.alloc(), None);
        assert_eq!((f.in_use(), f.available()), (3, 0));
    }
}
