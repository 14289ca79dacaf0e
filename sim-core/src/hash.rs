//! The one hash map type of model code: [`DetHashMap`] and [`DetHashSet`].
//!
//! Model code must not depend on a hash map's iteration order: a run is one seed and one
//! configuration, and everything it reports follows from them. So the model's maps are looked
//! up and never iterated, or iterated only where the order cannot matter (a sum, a sort after).
//! The hasher is deterministic too, as a second line of defence: std's default, SipHash with a
//! random seed per process, would make an accidental iteration differ from run to run; this
//! one has no seed, so even an accidental iteration repeats exactly, and a bug of that kind
//! shows up in every run instead of one run in a thousand.
//!
//! The hasher is rustc-hash's `FxHasher` (2.x): one add and one multiply per word, then a
//! rotation. It is several times faster than SipHash on the model's integer keys, and the
//! model's hottest maps (the hierarchy's directory in trace mode, the coherency checker's line
//! and copy tables on every cache event) are looked up on every access. Keys are never
//! attacker-chosen (a scenario cannot flood a table), so a keyed hash buys nothing.
//!
//! Line and page addresses have their low 6 or 12 bits zero, which a bare multiplicative hash
//! would leave zero in the bits that pick the bucket. FxHasher 2.x's `finish` rotates the
//! product left by 26, moving its best-mixed high bits down to where hashbrown takes the bucket
//! index, so such keys spread like consecutive integers (the tests below check it on the key
//! shapes the model uses). Hash values are stable across runs and machines of one pointer width;
//! nothing in the model stores or prints them.

use rustc_hash::FxHasher;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;

/// Builds the deterministic hasher (no seed: every map hashes alike, in every run).
pub type DetBuildHasher = BuildHasherDefault<FxHasher>;

/// A hash map with a deterministic, fast hasher; see the [module documentation](self). Build
/// one with `DetHashMap::default()` (or `with_capacity_and_hasher(n, Default::default())`).
pub type DetHashMap<K, V> = HashMap<K, V, DetBuildHasher>;

/// A hash set with a deterministic, fast hasher; see the [module documentation](self).
pub type DetHashSet<K> = HashSet<K, DetBuildHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CoreId, DramAddr, LineAddr};
    use std::hash::{BuildHasher, Hash};

    /// How keys fall into a table of twice as many buckets as keys, taking the bucket from the
    /// hash's low bits as hashbrown does: (buckets used, most keys in one bucket).
    fn spread<K: Hash>(keys: &[K]) -> (usize, u32) {
        let buckets = (keys.len() * 2).next_power_of_two();
        let mut count = vec![0u32; buckets];
        for k in keys {
            let h = DetBuildHasher::default().hash_one(k);
            count[(h & (buckets as u64 - 1)) as usize] += 1;
        }
        let used = count.iter().filter(|&&c| c > 0).count();
        (used, count.iter().copied().max().unwrap_or(0))
    }

    /// Asserts that `keys` spread at least as well as random hashing would on average (which
    /// fills `m (1 - e^(-n/m))` of `m` buckets with `n` keys), with no long chain.
    fn assert_spreads<K: Hash>(what: &str, keys: &[K]) {
        let (used, max) = spread(keys);
        let n = keys.len() as f64;
        let m = (keys.len() * 2).next_power_of_two() as f64;
        let random = m * (1.0 - (-n / m).exp());
        assert!(
            used as f64 >= 0.75 * random && max <= 4,
            "{what}: {} keys use {used} buckets (random hashing: {random:.0}), up to {max} in one",
            keys.len()
        );
    }

    #[test]
    fn hashing_is_deterministic() {
        // No seed: the same key hashes alike in every map and every run.
        let a = DetBuildHasher::default().hash_one(DramAddr::new(0x4000_0040));
        let b = DetBuildHasher::default().hash_one(DramAddr::new(0x4000_0040));
        assert_eq!(a, b);
        let mut m = DetHashMap::default();
        m.insert(LineAddr::new(1), 'a');
        assert_eq!(m.get(&LineAddr::new(1)), Some(&'a'));
        let s: DetHashSet<u64> = (0..10).collect();
        assert_eq!(s.len(), 10);
    }

    #[test]
    fn line_and_page_aligned_keys_spread() {
        for n in [1_000u64, 4_096, 100_000] {
            let lines: Vec<DramAddr> = (0..n)
                .map(|i| DramAddr::new(0x4000_0000 + i * 64))
                .collect();
            assert_spreads("line-aligned DRAM addresses", &lines);
            let pages: Vec<DramAddr> = (0..n)
                .map(|i| DramAddr::new(0x4000_0000 + i * 4096))
                .collect();
            assert_spreads("page-aligned DRAM addresses", &pages);
            let numbers: Vec<LineAddr> = (0..n).map(|i| LineAddr::new(0x100_0000 + i)).collect();
            assert_spreads("line numbers", &numbers);
            // Physical lines under 16 KeyIDs (bits 40 and up of a line number, default layout).
            let aliases: Vec<LineAddr> = (0..n)
                .map(|i| LineAddr::new((i % 16) << 40 | (0x100_0000 + i / 16)))
                .collect();
            assert_spreads("KeyID aliases", &aliases);
            // The checker's copies: (line, cache) with 4 cores' private caches.
            let copies: Vec<(LineAddr, Option<CoreId>, u8)> = (0..n)
                .map(|i| {
                    let core = CoreId::new((i % 4) as u32);
                    (
                        LineAddr::new(0x100_0000 + i / 8),
                        Some(core),
                        (i % 8 / 4) as u8,
                    )
                })
                .collect();
            assert_spreads("(line, cache) pairs", &copies);
        }
    }
}
