//! The DRAM store: the bytes the DIMMs hold.
//!
//! It holds exactly what crosses the DIMM bus: ciphertext, or plaintext for NO_ENCRYPT, TME
//! bypass and the exclusion range. It never holds a key or a KeyID. It is sparse: memory grows
//! with the number of lines ever written, not with the size of the address space, and a line
//! that was never written reads as 64 zero bytes (which, through a key, decrypts to garbage).

use sim_core::{DetHashMap, DramAddr, LINE_BYTES, LineBytes};

/// Sparse line-granular DRAM contents.
#[derive(Clone, Default, Debug)]
pub struct DramStore {
    // Keyed by DRAM line index. The hasher is deterministic (no per-process seed); iteration
    // order is still never exposed: dumps sort by address.
    lines: DetHashMap<u64, LineBytes>,
}

impl DramStore {
    /// An empty store: every line reads as zeros.
    pub fn new() -> DramStore {
        DramStore::default()
    }

    /// The bytes of the line at `addr` (line-aligned); zeros if never written.
    pub fn read(&self, addr: DramAddr) -> LineBytes {
        debug_assert!(addr.is_line_aligned(), "DRAM read at unaligned {addr}");
        self.lines
            .get(&addr.line_index())
            .copied()
            .unwrap_or([0; LINE_BYTES])
    }

    /// Stores the bytes of the line at `addr` (line-aligned).
    pub fn write(&mut self, addr: DramAddr, bytes: &LineBytes) {
        debug_assert!(addr.is_line_aligned(), "DRAM write at unaligned {addr}");
        self.lines.insert(addr.line_index(), *bytes);
    }

    /// True when the line at `addr` was ever written.
    pub fn is_touched(&self, addr: DramAddr) -> bool {
        self.lines.contains_key(&addr.line_index())
    }

    /// Number of lines ever written.
    pub fn touched_lines(&self) -> usize {
        self.lines.len()
    }

    /// Lines the store has room for without growing (its memory is about 72 bytes per slot).
    pub fn capacity_lines(&self) -> usize {
        self.lines.capacity()
    }

    /// Every written line in `[start, end)`, in address order.
    pub fn dump(&self, start: DramAddr, end: DramAddr) -> Vec<(DramAddr, LineBytes)> {
        let (lo, hi) = (start.line_index(), end.raw().div_ceil(LINE_BYTES as u64));
        let mut out: Vec<(DramAddr, LineBytes)> = self
            .lines
            .iter()
            .filter(|(idx, _)| (lo..hi).contains(*idx))
            .map(|(idx, bytes)| (DramAddr::from_line_index(*idx), *bytes))
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
        // Hash-table growth at most doubles plus load-factor slack.
        assert!(
            s.capacity_lines() < 4 * 1000,
            "capacity {}",
            s.capacity_lines()
        );
    }
}
