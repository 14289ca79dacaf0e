//! The DRAM store: the bytes the DIMMs hold.
//!
//! It holds exactly what crosses the DIMM bus: ciphertext, or plaintext for NO_ENCRYPT, TME
//! bypass and the exclusion range. It never holds a key or a KeyID. It is sparse: memory grows
//! with the number of lines ever written, not with the size of the address space, and a line
//! that was never written reads as 64 zero bytes (which, through a key, decrypts to garbage).
//!
//! Memory stays close to the bytes written, whatever the pattern: lines are grouped by 4 KiB
//! page, and a page keeps only its written lines, packed in line order behind a 64-bit map of
//! which lines it holds. A page's array grows through a few fixed sizes up to the whole page
//! (64 lines), so a fully written page costs its 4 KiB plus about 40 bytes of bookkeeping, and a
//! page with one line costs that line plus the same bookkeeping; a line-per-entry hash table,
//! by contrast, cost 3.4 times the bytes written at its peak (docs/benchmarks.md, "Memory").

use sim_core::addr::LINES_PER_PAGE;
use sim_core::{DetHashMap, DramAddr, LINE_BYTES, LineBytes};

/// The sizes a page's line array takes as it fills (in lines): growing to the next wastes at
/// most half of the new array, and copying a page's lines as it fills costs about 2.5 times
/// the page.
const PAGE_CAPACITIES: [usize; 12] = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64];

/// The written lines of one page.
#[derive(Clone, Debug)]
struct Page {
    /// Bit `i`: line `i` of the page is held.
    present: u64,
    /// The held lines in line order (`present.count_ones()` of them), then spare room.
    lines: Box<[LineBytes]>,
}

impl Page {
    /// Where line `i`'s bytes are (or would go) in `lines`: the held lines before it.
    fn rank(&self, i: u32) -> usize {
        (self.present & ((1u64 << i) - 1)).count_ones() as usize
    }

    fn get(&self, i: u32) -> Option<&LineBytes> {
        (self.present & (1 << i) != 0).then(|| &self.lines[self.rank(i)])
    }

    fn put(&mut self, i: u32, bytes: &LineBytes) {
        let rank = self.rank(i);
        if self.present & (1 << i) != 0 {
            self.lines[rank] = *bytes;
            return;
        }
        let held = self.present.count_ones() as usize;
        if held == self.lines.len() {
            let capacity = PAGE_CAPACITIES
                .into_iter()
                .find(|&c| c > held)
                .expect("a page holds at most 64 lines");
            let mut grown = vec![[0; LINE_BYTES]; capacity].into_boxed_slice();
            grown[..rank].copy_from_slice(&self.lines[..rank]);
            grown[rank + 1..=held].copy_from_slice(&self.lines[rank..held]);
            self.lines = grown;
        } else {
            self.lines.copy_within(rank..held, rank + 1);
        }
        self.lines[rank] = *bytes;
        self.present |= 1 << i;
    }
}

/// Sparse line-granular DRAM contents.
#[derive(Clone, Default, Debug)]
pub struct DramStore {
    // Keyed by DRAM page index. The hasher is deterministic (no per-process seed); iteration order
    // is still never exposed: dumps sort by address.
    pages: DetHashMap<u64, Page>,
    /// Lines held (written at least once).
    lines: usize,
}

/// The page index of a line and the line's place in its page.
fn split(addr: DramAddr) -> (u64, u32) {
    let line = addr.line_index();
    (
        line / LINES_PER_PAGE as u64,
        (line % LINES_PER_PAGE as u64) as u32,
    )
}

impl DramStore {
    /// An empty store: every line reads as zeros.
    pub fn new() -> DramStore {
        DramStore::default()
    }

    /// The bytes of the line at `addr` (line-aligned); zeros if never written.
    #[inline]
    pub fn read(&self, addr: DramAddr) -> LineBytes {
        debug_assert!(addr.is_line_aligned(), "DRAM read at unaligned {addr}");
        let (page, i) = split(addr);
        self.pages
            .get(&page)
            .and_then(|p| p.get(i))
            .copied()
            .unwrap_or([0; LINE_BYTES])
    }

    /// Stores the bytes of the line at `addr` (line-aligned).
    #[inline]
    pub fn write(&mut self, addr: DramAddr, bytes: &LineBytes) {
        debug_assert!(addr.is_line_aligned(), "DRAM write at unaligned {addr}");
        let (page, i) = split(addr);
        let page = self.pages.entry(page).or_insert_with(|| Page {
            present: 0,
            lines: Box::new([]),
        });
        if page.present & (1 << i) == 0 {
            self.lines += 1;
        }
        page.put(i, bytes);
    }

    /// True when the line at `addr` was ever written.
    pub fn is_touched(&self, addr: DramAddr) -> bool {
        let (page, i) = split(addr);
        self.pages.get(&page).is_some_and(|p| p.get(i).is_some())
    }

    /// Number of lines ever written.
    pub fn touched_lines(&self) -> usize {
        self.lines
    }

    /// Lines the store has room for without allocating line storage (every page's array, held
    /// lines and spare room).
    pub fn capacity_lines(&self) -> usize {
        self.pages.values().map(|p| p.lines.len()).sum()
    }

    /// Bytes the store has allocated: line arrays, and its page table (slots, whether used or
    /// not, plus one control byte each). The allocator's own per-allocation overhead is not
    /// counted.
    pub fn allocated_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(u64, Page)>() + 1;
        self.capacity_lines() * LINE_BYTES + self.pages.capacity() * slot
    }

    /// Every written line in `[start, end)`, in address order.
    pub fn dump(&self, start: DramAddr, end: DramAddr) -> Vec<(DramAddr, LineBytes)> {
        let (lo, hi) = (start.line_index(), end.raw().div_ceil(LINE_BYTES as u64));
        let per_page = LINES_PER_PAGE as u64;
        let mut out: Vec<(DramAddr, LineBytes)> = self
            .pages
            .iter()
            .filter(|(page, _)| **page * per_page < hi && (**page + 1) * per_page > lo)
            .flat_map(|(page, p)| {
                (0..LINES_PER_PAGE as u32).filter_map(move |i| {
                    let line = page * per_page + u64::from(i);
                    let bytes = p.get(i)?;
                    (lo..hi)
                        .contains(&line)
                        .then(|| (DramAddr::from_line_index(line), *bytes))
                })
            })
            .collect();
        out.sort_unstable_by_key(|(addr, _)| *addr);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untouched_lines_read_as_zero() {
        let s = DramStore::new();
        assert_eq!(s.read(DramAddr::new(0x4000)), [0; 64]);
        assert!(!s.is_touched(DramAddr::new(0x4000)));
    }

    #[test]
    fn writes_are_read_back_and_dumped_in_address_order() {
        let mut s = DramStore::new();
        for (i, addr) in [0x3000u64, 0x1000, 0x2040, 0x9_0000]
            .into_iter()
            .enumerate()
        {
            s.write(DramAddr::new(addr), &[i as u8 + 1; 64]);
        }
        assert_eq!(s.read(DramAddr::new(0x2040)), [3; 64]);
        let dumped: Vec<u64> = s
            .dump(DramAddr::new(0x1000), DramAddr::new(0x3040))
            .iter()
            .map(|(a, _)| a.raw())
            .collect();
        assert_eq!(dumped, [0x1000, 0x2040, 0x3000]);
    }

    #[test]
    fn memory_grows_with_touched_lines_not_address_span() {
        let mut s = DramStore::new();
        // 1000 lines spread over 2^45 bytes of address space.
        for i in 0..1000u64 {
            s.write(DramAddr::new(i << 35), &[1; 64]);
        }
        assert_eq!(s.touched_lines(), 1000);
        // One line per page: each page holds exactly its line.
        assert_eq!(s.capacity_lines(), 1000);
    }

    #[test]
    fn a_page_keeps_its_lines_in_order_whatever_the_write_order() {
        // Every line of two pages, in a scrambled order, each written twice; plus reads of
        // the lines not yet written at every step.
        let mut s = DramStore::new();
        let mut order: Vec<u64> = (0..128).map(|k| (k * 37) % 128).collect();
        order.extend((0..128).rev());
        for (step, &k) in order.iter().enumerate() {
            let addr = DramAddr::new(0x10_0000 + 64 * k);
            s.write(addr, &[step as u8; 64]);
            assert_eq!(s.read(addr), [step as u8; 64]);
        }
        assert_eq!(s.touched_lines(), 128);
        // Full pages hold exactly 64 lines each.
        assert_eq!(s.capacity_lines(), 128);
        for k in 0..128u64 {
            let last = order.iter().rposition(|&o| o == k).unwrap();
            assert_eq!(s.read(DramAddr::new(0x10_0000 + 64 * k)), [last as u8; 64]);
        }
        let dumped = s.dump(DramAddr::new(0x10_0fc0), DramAddr::new(0x10_1080));
        let addrs: Vec<u64> = dumped.iter().map(|(a, _)| a.raw()).collect();
        assert_eq!(addrs, [0x10_0fc0, 0x10_1000, 0x10_1040]);
    }

    #[test]
    fn a_partly_written_page_wastes_at_most_half_its_array() {
        for held in 1..=64u64 {
            let mut s = DramStore::new();
            for k in 0..held {
                s.write(DramAddr::new(64 * k), &[1; 64]);
            }
            let capacity = s.capacity_lines() as u64;
            assert!(
                capacity >= held && capacity * 2 <= held * 3 + 1,
                "{held} lines in an array of {capacity}"
            );
        }
    }
}
