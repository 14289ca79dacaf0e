//! The simulator's only source of randomness: one seed, forked per component.
//!
//! A run has one seed. Each component that needs randomness (the TME key generator at boot, the
//! PCONFIG random-key generator, a random replacement policy, an attacker) asks the
//! [`RngFactory`] for its own stream by a stable label. A component's stream depends only on the
//! seed and its label, never on how many other components exist or in which order they were
//! built, so adding a component does not change what the others draw.
//!
//! Streams are ChaCha12 keyed by the seed with the ChaCha stream number set to a 64-bit FNV-1a
//! hash of the label. rand_chacha's output is value-stable across versions (crates-and-xts.md).

use rand_chacha::ChaCha12Rng;
use rand_core::{Rng, SeedableRng};

/// Hands out independent, reproducible random streams derived from one seed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RngFactory {
    seed: u64,
}

impl RngFactory {
    /// A factory for the run with this seed.
    pub const fn new(seed: u64) -> RngFactory {
        RngFactory { seed }
    }

    /// The run's seed (printed with every failure so the run can be repeated).
    pub const fn seed(self) -> u64 {
        self.seed
    }

    /// The stream for the component called `label` (for example `"mc.pconfig"`).
    pub fn fork(self, label: &str) -> SimRng {
        let mut inner = ChaCha12Rng::seed_from_u64(self.seed);
        inner.set_stream(fnv1a64(label.as_bytes()));
        SimRng { inner }
    }
}

/// A deterministic random stream owned by one component.
#[derive(Clone, Debug)]
pub struct SimRng {
    inner: ChaCha12Rng,
}

impl SimRng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        self.inner.next_u32()
    }

    /// Fills `dst` with random bytes.
    pub fn fill_bytes(&mut self, dst: &mut [u8]) {
        self.inner.fill_bytes(dst)
    }

    /// A uniform value in `0..bound` (Lemire's method with rejection, so unbiased).
    ///
    /// # Panics
    /// When `bound` is 0: a model bug, since there is nothing to choose from.
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "SimRng::below(0): empty range");
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let wide = u128::from(self.next_u64()) * u128::from(bound);
            if (wide as u64) >= threshold {
                return (wide >> 64) as u64;
            }
        }
    }

    /// True with probability `numerator / denominator` (exact, no floating point).
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        numerator >= denominator || (denominator > 0 && self.below(denominator) < numerator)
    }
}

/// 64-bit FNV-1a: a stable, dependency-free hash for stream labels.
const fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_and_label_give_the_same_stream() {
        let a: Vec<u64> = {
            let mut r = RngFactory::new(42).fork("mc.pconfig");
            (0..4).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = RngFactory::new(42).fork("mc.pconfig");
            (0..4).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
    }

    #[test]
    fn labels_and_seeds_separate_streams() {
        let x = RngFactory::new(42).fork("a").next_u64();
        let y = RngFactory::new(42).fork("b").next_u64();
        let z = RngFactory::new(43).fork("a").next_u64();
        assert_ne!(x, y);
        assert_ne!(x, z);
    }

    #[test]
    fn stream_values_are_pinned() {
        // Pins the derivation (seed_from_u64 + FNV-1a stream): if this changes, every seeded
        // report changes, which must be a deliberate, documented decision.
        let mut r = RngFactory::new(0).fork("");
        let first = r.next_u64();
        let mut again = RngFactory::new(0).fork("");
        assert_eq!(first, again.next_u64());
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut r = RngFactory::new(7).fork("t");
        let mut seen = [false; 5];
        for _ in 0..1000 {
            let v = r.below(5);
            assert!(v < 5);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert!(r.chance(1, 1));
        assert!(!r.chance(0, 1));
    }
}
