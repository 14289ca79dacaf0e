//! A core's TLB: fully associative, least recently used, one entry per 4 KiB virtual page,
//! named by the page's first byte ([`VirtAddr::page_base`]).
//!
//! A hash map finds a page's slot; the slots form a doubly linked list in recency order, so
//! lookup, insertion, eviction and invalidation are O(1) and allocate nothing once the TLB has
//! filled. The map is only looked up, never iterated (determinism).

use crate::kernel::Pte;
use sim_core::{DetHashMap, VirtAddr};

const NIL: usize = usize::MAX;

#[derive(Clone, Debug)]
struct Slot {
    page: VirtAddr,
    pte: Pte,
    /// Towards the most recently used end.
    prev: usize,
    /// Towards the least recently used end.
    next: usize,
}

/// See the [module documentation](self).
#[derive(Debug)]
pub(crate) struct Tlb {
    capacity: usize,
    map: DetHashMap<VirtAddr, usize>,
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// Most recently used.
    head: usize,
    /// Least recently used.
    tail: usize,
}

impl Tlb {
    /// An empty TLB of `capacity` entries (at least 1).
    pub(super) fn new(capacity: usize) -> Tlb {
        Tlb {
            capacity: capacity.max(1),
            map: DetHashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
        }
    }

    /// Entries held.
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// Entries it can hold.
    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The entry for the page at `page` (page-aligned), made most recently used.
    pub(super) fn lookup(&mut self, page: VirtAddr) -> Option<Pte> {
        debug_assert!(page.is_page_aligned(), "TLB lookup of {page:?}");
        let s = *self.map.get(&page)?;
        self.unlink(s);
        self.push_front(s);
        Some(self.slots[s].pte)
    }

    /// Caches `pte` for the page at `page` (page-aligned), evicting the least recently used
    /// entry when full.
    pub(super) fn insert(&mut self, page: VirtAddr, pte: Pte) {
        debug_assert!(page.is_page_aligned(), "TLB insert of {page:?}");
        if let Some(&s) = self.map.get(&page) {
            self.slots[s].pte = pte;
            self.unlink(s);
            self.push_front(s);
            return;
        }
        if self.map.len() >= self.capacity {
            let victim = self.tail;
            self.unlink(victim);
            self.map.remove(&self.slots[victim].page);
            self.free.push(victim);
        }
        let slot = Slot {
            page,
            pte,
            prev: NIL,
            next: NIL,
        };
        let s = match self.free.pop() {
            Some(s) => {
                self.slots[s] = slot;
                s
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        self.map.insert(page, s);
        self.push_front(s);
    }

    /// Drops the entry for the page at `page` (page-aligned), if any (a TLB shootdown).
    pub(super) fn invalidate(&mut self, page: VirtAddr) {
        debug_assert!(page.is_page_aligned(), "TLB invalidation of {page:?}");
        if let Some(s) = self.map.remove(&page) {
            self.unlink(s);
            self.free.push(s);
        }
    }

    fn unlink(&mut self, s: usize) {
        let (prev, next) = (self.slots[s].prev, self.slots[s].next);
        if prev == NIL {
            self.head = next;
        } else {
            self.slots[prev].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.slots[next].prev = prev;
        }
        self.slots[s].prev = NIL;
        self.slots[s].next = NIL;
    }

    fn push_front(&mut self, s: usize) {
        self.slots[s].prev = NIL;
        self.slots[s].next = self.head;
        if self.head != NIL {
            self.slots[self.head].prev = s;
        }
        self.head = s;
        if self.tail == NIL {
            self.tail = s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::Prot;
    use sim_core::PhysAddr;

    /// Virtual page number `n`.
    fn page(n: u64) -> VirtAddr {
        VirtAddr::new(n << 12)
    }

    fn pte(frame: u64) -> Pte {
        Pte {
            frame: PhysAddr::new(frame << 12),
            prot: Prot::READ_WRITE,
            kernel_only: false,
        }
    }

    #[test]
    fn least_recently_used_is_evicted() {
        let mut t = Tlb::new(2);
        t.insert(page(1), pte(10));
        t.insert(page(2), pte(20));
        assert_eq!(t.lookup(page(1)), Some(pte(10))); // 2 is now the LRU
        t.insert(page(3), pte(30));
        assert_eq!(t.lookup(page(2)), None);
        assert_eq!(t.lookup(page(1)), Some(pte(10)));
        assert_eq!(t.lookup(page(3)), Some(pte(30)));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn invalidation_frees_the_slot_and_reinsertion_updates() {
        let mut t = Tlb::new(3);
        for v in 0..3 {
            t.insert(page(v), pte(v));
        }
        t.invalidate(page(1));
        t.invalidate(page(42));
        assert_eq!((t.len(), t.lookup(page(1))), (2, None));
        t.insert(page(0), pte(99));
        t.insert(page(5), pte(5));
        assert_eq!(t.len(), 3);
        assert_eq!(t.lookup(page(0)), Some(pte(99)));
        assert_eq!(t.lookup(page(2)), Some(pte(2)));
        assert_eq!(t.lookup(page(5)), Some(pte(5)));
        // The LRU is now 0: a fourth page evicts it.
        t.insert(page(6), pte(6));
        assert_eq!(t.lookup(page(0)), None);
    }

    #[test]
    fn a_single_entry_tlb_works() {
        let mut t = Tlb::new(1);
        t.insert(page(1), pte(1));
        t.insert(page(2), pte(2));
        assert_eq!((t.lookup(page(1)), t.lookup(page(2))), (None, Some(pte(2))));
        t.invalidate(page(2));
        assert_eq!(t.len(), 0);
        t.insert(page(3), pte(3));
        assert_eq!(t.lookup(page(3)), Some(pte(3)));
    }
}
