//! The store buffer: committed stores, CLFLUSHes and SFENCE markers waiting to reach the L1D
//! in program order, a discarded speculative part for stores on a mispredicted path, and
//! store-to-load forwarding.
//!
//! Every entry carries the program-order sequence number of its op, so that a load (or a
//! replayed load) forwards only from stores older than itself. Entries are line pieces: a
//! store that crosses a line is two entries.

use sim_core::{LINE_BYTES, LineAddr, LineBytes, PhysAddr};
use std::collections::VecDeque;
use std::fmt::Write as _;

/// What an entry does when it reaches the head.
#[derive(Clone, Debug)]
pub(crate) enum SbKind {
    /// A store of `len` bytes (`data[..len]`) at `pa`, within one line.
    Store {
        pa: PhysAddr,
        len: u8,
        data: LineBytes,
    },
    /// A CLFLUSH of `pa`'s line (ordered with stores and other CLFLUSHes).
    Clflush { pa: PhysAddr },
    /// An SFENCE: leaves the buffer once every older CLFLUSHOPT/CLWB has completed; the
    /// entries behind it wait.
    Sfence,
}

/// One entry.
#[derive(Clone, Debug)]
pub(crate) struct SbEntry {
    /// Program order.
    pub seq: u64,
    pub kind: SbKind,
}

impl SbEntry {
    /// The line a store or CLFLUSH targets.
    pub(super) fn line(&self) -> Option<LineAddr> {
        match self.kind {
            SbKind::Store { pa, .. } | SbKind::Clflush { pa } => Some(pa.line()),
            SbKind::Sfence => None,
        }
    }
}

/// A store on a mispredicted path: visible to the shadow's own loads only.
#[derive(Clone, Debug)]
struct ShadowStore {
    pa: PhysAddr,
    len: u8,
    data: LineBytes,
}

/// See the [module documentation](self).
#[derive(Debug, Default)]
pub(crate) struct StoreBuffer {
    entries: VecDeque<SbEntry>,
    /// The request id of the head entry while the hierarchy works on it (one at a time).
    pub in_flight: Option<u64>,
    shadow: Vec<ShadowStore>,
}

/// The bits `[off, off + len)` of a line (`off + len <= 64`).
pub(crate) fn range_mask(off: usize, len: usize) -> u64 {
    match len {
        0 => 0,
        LINE_BYTES.. => u64::MAX,
        _ => ((1u64 << len) - 1) << off,
    }
}

/// Copies the bytes of one store that `new` selects into `out` (relative to `off`).
fn copy_bits(mut new: u64, off: usize, store_off: usize, data: &LineBytes, out: &mut [u8]) {
    while new != 0 {
        let b = new.trailing_zeros() as usize;
        out[b - off] = data[b - store_off];
        new &= new - 1;
    }
}

impl StoreBuffer {
    /// Committed entries (the speculative part excluded).
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// No committed entry.
    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries of the speculative part.
    pub(super) fn shadow_len(&self) -> usize {
        self.shadow.len()
    }

    /// The oldest committed entry.
    pub(super) fn front(&self) -> Option<&SbEntry> {
        self.entries.front()
    }

    /// Removes the oldest entry.
    pub(super) fn pop_front(&mut self) -> Option<SbEntry> {
        self.entries.pop_front()
    }

    /// Appends a committed entry (youngest).
    pub(super) fn push(&mut self, seq: u64, kind: SbKind) {
        self.entries.push_back(SbEntry { seq, kind });
    }

    /// Committed entries, oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = &SbEntry> {
        self.entries.iter()
    }

    /// Appends a store to the speculative part.
    pub(super) fn push_shadow(&mut self, pa: PhysAddr, len: u8, data: LineBytes) {
        self.shadow.push(ShadowStore { pa, len, data });
    }

    /// Discards the speculative part; returns how many stores it held.
    pub(super) fn squash_shadow(&mut self) -> usize {
        let n = self.shadow.len();
        self.shadow.clear();
        n
    }

    /// Store-to-load forwarding for one line piece: the bytes `[off, off + len)` of `line`
    /// that committed stores older than `before` supply (the youngest store wins for each
    /// byte), plus, with `shadow`, the speculative part's stores (younger than every committed
    /// entry). Writes them into `out[..len]` and returns the mask of bytes supplied (bit `b` =
    /// byte `b` of the line).
    pub(super) fn forward(
        &self,
        line: LineAddr,
        off: usize,
        len: usize,
        before: u64,
        shadow: bool,
        out: &mut [u8],
    ) -> u64 {
        let want = range_mask(off, len);
        let mut covered = 0u64;
        if want == 0 {
            return 0;
        }
        if shadow {
            for s in self.shadow.iter().rev() {
                if s.pa.line() == line {
                    let so = s.pa.line_offset();
                    let new = range_mask(so, usize::from(s.len)) & want & !covered;
                    copy_bits(new, off, so, &s.data, out);
                    covered |= new;
                    if covered == want {
                        return covered;
                    }
                }
            }
        }
        for e in self.entries.iter().rev() {
            if e.seq >= before {
                continue;
            }
            if let SbKind::Store {
                pa,
                len: slen,
                data,
            } = &e.kind
                && pa.line() == line
            {
                let so = pa.line_offset();
                let new = range_mask(so, usize::from(*slen)) & want & !covered;
                copy_bits(new, off, so, data, out);
                covered |= new;
                if covered == want {
                    break;
                }
            }
        }
        covered
    }

    /// A one-line description of every entry, for dumps.
    pub(super) fn describe(&self, out: &mut String) {
        if self.entries.is_empty() {
            out.push_str("empty");
        }
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            match &e.kind {
                SbKind::Store { pa, len, .. } => {
                    let _ = write!(out, "[#{} store {len} B at {pa}", e.seq);
                }
                SbKind::Clflush { pa } => {
                    let _ = write!(out, "[#{} clflush {pa}", e.seq);
                }
                SbKind::Sfence => {
                    let _ = write!(out, "[#{} sfence", e.seq);
                }
            }
            if i == 0 && self.in_flight.is_some() {
                out.push_str(", in flight");
            }
            out.push(']');
        }
        if !self.shadow.is_empty() {
            let _ = write!(out, "; {} speculative store(s)", self.shadow.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(sb: &mut StoreBuffer, seq: u64, pa: u64, bytes: &[u8]) {
        let mut data = [0; LINE_BYTES];
        data[..bytes.len()].copy_from_slice(bytes);
        sb.push(
            seq,
            SbKind::Store {
                pa: PhysAddr::new(pa),
                len: bytes.len() as u8,
                data,
            },
        );
    }

    #[test]
    fn masks() {
        assert_eq!(range_mask(0, 0), 0);
        assert_eq!(range_mask(0, 64), u64::MAX);
        assert_eq!(range_mask(4, 2), 0b11_0000);
        assert_eq!(range_mask(63, 1), 1 << 63);
    }

    #[test]
    fn youngest_older_store_wins_byte_by_byte() {
        let mut sb = StoreBuffer::default();
        store(&mut sb, 1, 0x1000, &[1, 1, 1, 1]);
        store(&mut sb, 2, 0x1002, &[2, 2]);
        store(&mut sb, 5, 0x1000, &[9; 8]); // younger than the load below
        sb.push(
            3,
            SbKind::Clflush {
                pa: PhysAddr::new(0x1000),
            },
        );
        let mut out = [0u8; 8];
        let line = PhysAddr::new(0x1000).line();
        let m = sb.forward(line, 0, 4, 4, false, &mut out);
        assert_eq!(m, 0b1111);
        assert_eq!(&out[..4], &[1, 1, 2, 2]);
        // Partial: 8 bytes wanted, 4 supplied.
        let m = sb.forward(line, 0, 8, 4, false, &mut out);
        assert_eq!(m, 0b1111);
        // Another line, or another KeyID alias (other address bits): nothing.
        assert_eq!(
            sb.forward(PhysAddr::new(0x1040).line(), 0, 8, 9, false, &mut out),
            0
        );
    }

    #[test]
    fn shadow_stores_forward_only_when_asked_and_are_discarded() {
        let mut sb = StoreBuffer::default();
        store(&mut sb, 1, 0x2000, &[1; 4]);
        let mut data = [0; LINE_BYTES];
        data[0] = 7;
        sb.push_shadow(PhysAddr::new(0x2001), 1, data);
        let line = PhysAddr::new(0x2000).line();
        let mut out = [0u8; 4];
        assert_eq!(sb.forward(line, 0, 4, u64::MAX, true, &mut out), 0b1111);
        assert_eq!(out, [1, 7, 1, 1]);
        sb.forward(line, 0, 4, u64::MAX, false, &mut out);
        assert_eq!(out, [1, 1, 1, 1]);
        assert_eq!(sb.squash_shadow(), 1);
        assert_eq!(sb.shadow_len(), 0);
    }
}
