//! Line-keyed indexes: the directory (an exact snoop filter) and the alias index of the
//! `evict_other_keyids` policy.
//!
//! Both are [`DetHashMap`]s looked up by key and never iterated, so no hash order can leak into
//! the model.

use sim_core::{DetHashMap, KeyId, LineAddr};

/// Which cores' private caches (L2, and so L1D) hold each line: one presence bit per core.
///
/// An entry exists exactly while some core holds the line, so the directory never holds more
/// entries than the L2s have lines together, and it never has to evict an entry: it causes no
/// back-invalidations. With an inclusive LLC it is the LLC's presence vector; with a
/// non-inclusive one, an exact snoop filter.
#[derive(Default, Debug)]
pub(crate) struct Directory {
    map: DetHashMap<LineAddr, u64>,
}

impl Directory {
    /// The presence bits of `line` (bit `c` for core `c`).
    #[inline]
    pub(crate) fn sharers(&self, line: LineAddr) -> u64 {
        self.map.get(&line).copied().unwrap_or(0)
    }

    pub(crate) fn add(&mut self, line: LineAddr, core: usize) {
        *self.map.entry(line).or_insert(0) |= 1 << core;
    }

    pub(crate) fn remove(&mut self, line: LineAddr, core: usize) {
        let bits = self.map.get_mut(&line).unwrap_or_else(|| {
            panic!("directory: core {core} drops {line:?}, which no core holds")
        });
        assert!(
            *bits & (1 << core) != 0,
            "directory: core {core} drops {line:?}, which it does not hold (sharers {bits:#x})"
        );
        *bits &= !(1 << core);
        if *bits == 0 {
            self.map.remove(&line);
        }
    }

    /// Lines tracked.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

/// The cores whose bits are set in `mask`, lowest first.
pub(crate) fn cores_in(mut mask: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let c = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            c
        })
    })
}

/// For each DRAM line with a copy on chip, the KeyID of those copies and how many caches hold
/// one. Kept only under `evict_other_keyids`, where a line coming on chip first evicts every
/// other KeyID's copies, so that one KeyID at most is ever on chip per DRAM line; a second is
/// a model bug, caught here.
#[derive(Default, Debug)]
pub(crate) struct AliasIndex {
    map: DetHashMap<u64, (KeyId, u32)>,
}

impl AliasIndex {
    /// The KeyID on chip for DRAM line `dram_line`, if any.
    pub(crate) fn keyid_on_chip(&self, dram_line: u64) -> Option<KeyId> {
        self.map.get(&dram_line).map(|&(k, _)| k)
    }

    /// A cache took a copy of `dram_line` through `keyid`.
    pub(crate) fn add(&mut self, dram_line: u64, keyid: KeyId) {
        let e = self.map.entry(dram_line).or_insert((keyid, 0));
        assert_eq!(
            e.0, keyid,
            "alias policy evict_other_keyids: DRAM line {dram_line:#x} cached through KeyIDs {} \
             and {keyid} at once",
            e.0
        );
        e.1 += 1;
    }

    /// A cache dropped its copy of `dram_line`.
    pub(crate) fn remove(&mut self, dram_line: u64, keyid: KeyId) {
        let e = self
            .map
            .get_mut(&dram_line)
            .unwrap_or_else(|| panic!("alias index: no copy of DRAM line {dram_line:#x} to drop"));
        assert_eq!(e.0, keyid, "alias index: dropping a KeyID {keyid} copy");
        e.1 -= 1;
        if e.1 == 0 {
            self.map.remove(&dram_line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_tracks_exactly() {
        let mut d = Directory::default();
        let l = LineAddr::new(7);
        assert_eq!(d.sharers(l), 0);
        d.add(l, 0);
        d.add(l, 63);
        assert_eq!(d.sharers(l), 1 | 1 << 63);
        assert_eq!(cores_in(d.sharers(l)).collect::<Vec<_>>(), [0, 63]);
        d.remove(l, 0);
        d.remove(l, 63);
        assert_eq!(d.len(), 0);
    }

    #[test]
    #[should_panic(expected = "which it does not hold")]
    fn directory_catches_a_phantom_drop() {
        let mut d = Directory::default();
        d.add(LineAddr::new(1), 1);
        d.remove(LineAddr::new(1), 2);
    }

    #[test]
    #[should_panic(expected = "at once")]
    fn alias_index_catches_two_keyids() {
        let mut a = AliasIndex::default();
        a.add(5, KeyId::new(1));
        a.add(5, KeyId::new(1));
        a.remove(5, KeyId::new(1));
        assert_eq!(a.keyid_on_chip(5), Some(KeyId::new(1)));
        a.add(5, KeyId::new(2));
    }
}
