//! The reference model: what "correct" means for the whole machine.
//!
//! A plain map from DRAM line to the history of what was written to it: the bytes of the last
//! store (those the store wrote, and those before it that the same KeyID under the same key
//! wrote), the KeyID it went through and that KeyID's key generation. No timing, no caches, no
//! cryptography. What it says (docs/testing.md):
//!
//! - a load through KeyID K, under K's current key, of a line whose last write went through K
//!   under that key returns the bytes the reference knows;
//! - a load through any other KeyID or key returns garbage (a key other than the writer's
//!   decrypts the writer's ciphertext), which the reference does not predict; in particular it
//!   never returns older bytes that a later write replaced;
//! - after the run, DRAM read through the last writer's KeyID, if its key is unchanged,
//!   returns the bytes the reference knows.
//!
//! Bytes the last writer did not write are unknown unless the same KeyID under the same key
//! wrote them before: through another KeyID the rest of the line was garbage to the writer.

use std::collections::BTreeMap;

/// One write to a DRAM line: a store, as the reference sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineRecord {
    /// The KeyID it went through.
    pub keyid: u16,
    /// That KeyID's key generation (successful PCONFIGs of it before the store).
    pub generation: u32,
    /// The line's bytes as the writer knows them after the store.
    pub known: [Option<u8>; 64],
    /// The hierarchy's store stamp (0 in program-order references).
    pub stamp: u64,
    /// The cycle of the store (0 in program-order references).
    pub cycle: u64,
}

impl LineRecord {
    /// Every byte is known.
    pub fn all_known(&self) -> bool {
        self.known.iter().all(Option::is_some)
    }

    /// Bytes `offset..offset + len`, if every one is known.
    pub fn bytes(&self, offset: u8, len: u8) -> Option<Vec<u8>> {
        let (lo, hi) = (usize::from(offset), usize::from(offset) + usize::from(len));
        self.known[lo..hi].iter().copied().collect()
    }
}

/// DRAM line -> every write to it, oldest first.
#[derive(Clone, Debug, Default)]
pub struct Reference {
    lines: BTreeMap<u64, Vec<LineRecord>>,
}

impl Reference {
    /// A store of `bytes` at `offset` of DRAM line `dram` through `keyid` under key
    /// `generation`. The bytes the same KeyID and key knew before stay known.
    pub fn store(&mut self, dram: u64, keyid: u16, generation: u32, offset: u8, bytes: &[u8]) {
        self.store_stamped(dram, keyid, generation, offset, bytes, 0, 0);
    }

    /// [`Reference::store`], with the hierarchy's stamp and the cycle.
    #[allow(clippy::too_many_arguments)]
    pub fn store_stamped(
        &mut self,
        dram: u64,
        keyid: u16,
        generation: u32,
        offset: u8,
        bytes: &[u8],
        stamp: u64,
        cycle: u64,
    ) {
        let history = self.lines.entry(dram).or_default();
        let mut known = match history.last() {
            Some(r) if r.keyid == keyid && r.generation == generation => r.known,
            _ => [None; 64],
        };
        for (i, b) in bytes.iter().enumerate() {
            known[usize::from(offset) + i] = Some(*b);
        }
        history.push(LineRecord {
            keyid,
            generation,
            known,
            stamp,
            cycle,
        });
    }

    /// The last write to `dram`.
    pub fn current(&self, dram: u64) -> Option<&LineRecord> {
        self.lines.get(&dram).and_then(|h| h.last())
    }

    /// Every write to `dram`, oldest first.
    pub fn history(&self, dram: u64) -> &[LineRecord] {
        self.lines.get(&dram).map_or(&[], Vec::as_slice)
    }

    /// The lines written to, ascending.
    pub fn lines(&self) -> impl Iterator<Item = u64> + '_ {
        self.lines.keys().copied()
    }
}
