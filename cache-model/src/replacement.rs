//! Replacement policies: which line of a full set makes room for a new one.
//!
//! Each policy is a small state machine per set, written as pure functions over that set's
//! state (a slice or a word) so that it can be tested on its own, and driven by the cache
//! through one closed enum (`ReplacementState`, private to the crate) with exhaustive matches.
//!
//! A set with an invalid way never asks its policy: the cache fills the lowest-numbered invalid
//! way first, as DineroIV and most simulators do, so policies only ever choose among valid
//! lines.
//!
//! | policy | state per set | on hit | on fill | victim |
//! | --- | --- | --- | --- | --- |
//! | [`Lru`](ReplacementPolicy::Lru) | a stamp per way | stamp = now | stamp = now | oldest stamp |
//! | [`TreePlru`](ReplacementPolicy::TreePlru) | ways - 1 tree bits | point the path away | same | follow the bits |
//! | [`Srrip`](ReplacementPolicy::Srrip) | a 2-bit RRPV per way | RRPV = 0 | RRPV = 2 | first RRPV 3, after ageing |
//! | [`Random`](ReplacementPolicy::Random) | none (one stream per cache) | - | - | uniform way |

use sim_core::SimRng;
use std::fmt;
use std::str::FromStr;

/// Which line a full set evicts.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Default)]
pub enum ReplacementPolicy {
    /// True least-recently-used.
    #[default]
    Lru,
    /// Tree pseudo-LRU: a binary tree of bits per set, each pointing towards the half that
    /// was used less recently (needs a power-of-two associativity).
    TreePlru,
    /// Static re-reference interval prediction with 2-bit RRPVs, hit priority (SRRIP-HP,
    /// Jaleel et al., ISCA 2010): fills predict a long re-reference interval (RRPV 2), hits
    /// predict a near one (RRPV 0), the victim is a line predicted distant (RRPV 3).
    Srrip,
    /// A uniformly random way, from the cache's own seeded stream.
    Random,
}

impl ReplacementPolicy {
    /// Every policy, in the order documentation lists them.
    pub const ALL: [ReplacementPolicy; 4] = [
        ReplacementPolicy::Lru,
        ReplacementPolicy::TreePlru,
        ReplacementPolicy::Srrip,
        ReplacementPolicy::Random,
    ];

    /// The policy's name in reports and on the command line: `lru`, `tree-plru`, `srrip`,
    /// `random`.
    pub const fn name(self) -> &'static str {
        match self {
            ReplacementPolicy::Lru => "lru",
            ReplacementPolicy::TreePlru => "tree-plru",
            ReplacementPolicy::Srrip => "srrip",
            ReplacementPolicy::Random => "random",
        }
    }
}

impl fmt::Display for ReplacementPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A replacement-policy name that is none of the known ones.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("unknown replacement policy \"{0}\": expected lru, plru (tree-plru), srrip or random")]
pub struct UnknownPolicy(pub String);

impl FromStr for ReplacementPolicy {
    type Err = UnknownPolicy;

    /// Accepts the names of [`ReplacementPolicy::name`], and `plru` for tree pseudo-LRU.
    fn from_str(s: &str) -> Result<ReplacementPolicy, UnknownPolicy> {
        match s {
            "lru" => Ok(ReplacementPolicy::Lru),
            "plru" | "tree-plru" => Ok(ReplacementPolicy::TreePlru),
            "srrip" => Ok(ReplacementPolicy::Srrip),
            "random" => Ok(ReplacementPolicy::Random),
            _ => Err(UnknownPolicy(s.to_owned())),
        }
    }
}

/// True LRU over per-way stamps: each use writes the cache's running use counter into the way,
/// so the least recently used way holds the smallest stamp. A use costs O(1), a victim choice
/// O(ways), which suits caches where hits far outnumber misses.
pub mod lru {
    /// The way with the smallest stamp (the lowest-numbered such way on a tie, which only
    /// happens among ways never used).
    pub fn victim(stamps: &[u64]) -> usize {
        let mut best = 0;
        for (way, &stamp) in stamps.iter().enumerate() {
            if stamp < stamps[best] {
                best = way;
            }
        }
        best
    }

    /// The ways from most to least recently used (for tests and debugging dumps).
    pub fn order(stamps: &[u64]) -> Vec<usize> {
        let mut ways: Vec<usize> = (0..stamps.len()).collect();
        ways.sort_by_key(|&w| std::cmp::Reverse(stamps[w]));
        ways
    }
}

/// Tree pseudo-LRU over `ways - 1` bits stored heap-style in a `u64`: node 0 is the root, the
/// children of node `n` are `2n + 1` (lower half of the ways) and `2n + 2` (upper half). A bit
/// of 0 says "the victim is in the lower half", 1 "in the upper half". The way number's bits,
/// most significant first, are the left/right turns from the root to that way's leaf.
pub mod tree_plru {
    /// The state after using `way`: every node on its path points to the other half.
    pub const fn touch(bits: u64, way: usize, ways: usize) -> u64 {
        let levels = ways.trailing_zeros();
        let mut bits = bits;
        let mut node = 0u32;
        let mut level = levels;
        while level > 0 {
            level -= 1;
            let upper = ((way >> level) & 1) as u32;
            // Used the upper half: the victim is now in the lower half (bit 0), and vice versa.
            if upper == 1 {
                bits &= !(1u64 << node);
            } else {
                bits |= 1u64 << node;
            }
            node = 2 * node + 1 + upper;
        }
        bits
    }

    /// The way the bits point to.
    pub const fn victim(bits: u64, ways: usize) -> usize {
        let levels = ways.trailing_zeros();
        let mut node = 0u32;
        let mut way = 0usize;
        let mut i = 0;
        while i < levels {
            let upper = ((bits >> node) & 1) as u32;
            way = (way << 1) | upper as usize;
            node = 2 * node + 1 + upper;
            i += 1;
        }
        way
    }
}

/// SRRIP with 2-bit re-reference prediction values (Jaleel et al., "High Performance Cache
/// Replacement Using Re-Reference Interval Prediction (RRIP)", ISCA 2010, section 3), hit
/// priority variant: a hit sets the RRPV to 0.
pub mod srrip {
    /// Largest RRPV ("distant re-reference"): with M = 2 bits, 2^M - 1.
    pub const RRPV_MAX: u8 = 3;
    /// RRPV of a newly filled line ("long re-reference", 2^M - 2).
    pub const RRPV_INSERT: u8 = 2;
    /// RRPV after a hit ("near-immediate re-reference").
    pub const RRPV_HIT: u8 = 0;

    /// The victim and how far the set must age first.
    ///
    /// The paper's loop, "find the first way at RRPV_MAX, else increment every RRPV and
    /// search again", stops after exactly `RRPV_MAX - max(rrpv)` rounds at the first way that
    /// held the largest RRPV. This returns that way and that number of rounds, without
    /// changing anything; [`age`] applies the rounds.
    pub fn victim(rrpv: &[u8]) -> (usize, u8) {
        let mut best = 0;
        for (way, &v) in rrpv.iter().enumerate() {
            if v > rrpv[best] {
                best = way;
            }
        }
        (best, RRPV_MAX - rrpv[best])
    }

    /// Adds `rounds` to every RRPV of the set (no RRPV passes [`RRPV_MAX`] when `rounds`
    /// comes from [`victim`]).
    pub fn age(rrpv: &mut [u8], rounds: u8) {
        for v in rrpv {
            *v += rounds;
        }
    }
}

/// The replacement state of a whole cache: one closed enum, one arm per policy.
#[derive(Clone, Debug)]
pub(crate) enum ReplacementState {
    /// Stamps per line, and the cache's use counter.
    Lru { stamps: Vec<u64>, clock: u64 },
    /// Tree bits per set.
    TreePlru { trees: Vec<u64> },
    /// RRPV per line.
    Srrip { rrpv: Vec<u8> },
    /// The cache's random stream (boxed: it is far larger than the other arms).
    Random { rng: Box<SimRng> },
}

impl ReplacementState {
    /// Fresh state for `sets x ways` lines.
    pub(crate) fn new(policy: ReplacementPolicy, sets: usize, ways: usize, rng: SimRng) -> Self {
        let lines = sets * ways;
        match policy {
            ReplacementPolicy::Lru => ReplacementState::Lru {
                stamps: vec![0; lines],
                clock: 0,
            },
            ReplacementPolicy::TreePlru => ReplacementState::TreePlru {
                trees: vec![0; sets],
            },
            ReplacementPolicy::Srrip => ReplacementState::Srrip {
                rrpv: vec![srrip::RRPV_MAX; lines],
            },
            ReplacementPolicy::Random => ReplacementState::Random { rng: Box::new(rng) },
        }
    }

    /// Room for `sets` more sets of `ways` ways, in the "never used" state (the cache stores
    /// the sets of a huge cache as they are first filled).
    pub(crate) fn grow(&mut self, sets: usize, ways: usize) {
        match self {
            ReplacementState::Lru { stamps, .. } => stamps.resize(stamps.len() + sets * ways, 0),
            ReplacementState::TreePlru { trees } => trees.resize(trees.len() + sets, 0),
            ReplacementState::Srrip { rrpv } => {
                rrpv.resize(rrpv.len() + sets * ways, srrip::RRPV_MAX);
            }
            ReplacementState::Random { .. } => {}
        }
    }

    /// Bytes of state kept per set and line.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            ReplacementState::Lru { stamps, .. } => stamps.len() * size_of::<u64>(),
            ReplacementState::TreePlru { trees } => trees.len() * size_of::<u64>(),
            ReplacementState::Srrip { rrpv } => rrpv.len(),
            ReplacementState::Random { .. } => 0,
        }
    }

    /// A hit on way `way` of `set` (line index `set * ways + way`).
    #[inline(always)]
    pub(crate) fn on_hit(&mut self, set: usize, way: usize, ways: usize) {
        match self {
            ReplacementState::Lru { stamps, clock } => {
                *clock += 1;
                stamps[set * ways + way] = *clock;
            }
            ReplacementState::TreePlru { trees } => {
                trees[set] = tree_plru::touch(trees[set], way, ways);
            }
            ReplacementState::Srrip { rrpv } => rrpv[set * ways + way] = srrip::RRPV_HIT,
            ReplacementState::Random { .. } => {}
        }
    }

    /// A new line was placed in way `way` of `set`.
    #[inline]
    pub(crate) fn on_fill(&mut self, set: usize, way: usize, ways: usize) {
        match self {
            ReplacementState::Lru { stamps, clock } => {
                *clock += 1;
                stamps[set * ways + way] = *clock;
            }
            ReplacementState::TreePlru { trees } => {
                trees[set] = tree_plru::touch(trees[set], way, ways);
            }
            ReplacementState::Srrip { rrpv } => rrpv[set * ways + way] = srrip::RRPV_INSERT,
            ReplacementState::Random { .. } => {}
        }
    }

    /// Way `way` of `set` was invalidated. Its state no longer matters (invalid ways are
    /// filled before any policy is asked), so it is reset to the "never used" value to keep
    /// dumps readable.
    pub(crate) fn on_invalidate(&mut self, set: usize, way: usize, ways: usize) {
        match self {
            ReplacementState::Lru { stamps, .. } => stamps[set * ways + way] = 0,
            ReplacementState::TreePlru { .. } => {}
            ReplacementState::Srrip { rrpv } => rrpv[set * ways + way] = srrip::RRPV_MAX,
            ReplacementState::Random { .. } => {}
        }
    }

    /// The way of a full `set` to evict. SRRIP ages the set as a side effect, as the paper's
    /// hardware does.
    pub(crate) fn victim(&mut self, set: usize, ways: usize) -> usize {
        let lines = set * ways..(set + 1) * ways;
        match self {
            ReplacementState::Lru { stamps, .. } => lru::victim(&stamps[lines]),
            ReplacementState::TreePlru { trees } => tree_plru::victim(trees[set], ways),
            ReplacementState::Srrip { rrpv } => {
                let set_rrpv = &mut rrpv[lines];
                let (way, rounds) = srrip::victim(set_rrpv);
                srrip::age(set_rrpv, rounds);
                way
            }
            ReplacementState::Random { rng } => rng.below(ways as u64) as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_core::RngFactory;

    fn rng() -> SimRng {
        RngFactory::new(1).fork("test.repl")
    }

    /// Fills a full set by repeatedly asking for a victim and filling it, as a cache does on
    /// a stream of misses; returns the victims.
    fn miss_stream(state: &mut ReplacementState, ways: usize, n: usize) -> Vec<usize> {
        (0..n)
            .map(|_| {
                let v = state.victim(0, ways);
                state.on_fill(0, v, ways);
                v
            })
            .collect()
    }

    #[test]
    fn policy_names_round_trip() {
        for p in ReplacementPolicy::ALL {
            assert_eq!(p.name().parse::<ReplacementPolicy>().unwrap(), p);
        }
        assert_eq!(
            "plru".parse::<ReplacementPolicy>().unwrap(),
            ReplacementPolicy::TreePlru
        );
        let e = "fifo".parse::<ReplacementPolicy>().unwrap_err();
        assert!(e.to_string().contains("\"fifo\""));
    }

    #[test]
    fn lru_orders_by_recency() {
        let mut s = ReplacementState::new(ReplacementPolicy::Lru, 1, 4, rng());
        for w in [0, 1, 2, 3] {
            s.on_fill(0, w, 4);
        }
        s.on_hit(0, 1, 4);
        s.on_hit(0, 0, 4);
        let ReplacementState::Lru { stamps, .. } = &s else {
            unreachable!()
        };
        assert_eq!(lru::order(stamps), [0, 1, 3, 2]);
        assert_eq!(s.victim(0, 4), 2);
        s.on_fill(0, 2, 4);
        assert_eq!(s.victim(0, 4), 3);
        s.on_hit(0, 3, 4);
        assert_eq!(s.victim(0, 4), 1);
    }

    #[test]
    fn lru_sets_are_independent() {
        let mut s = ReplacementState::new(ReplacementPolicy::Lru, 2, 2, rng());
        s.on_fill(0, 0, 2);
        s.on_fill(1, 1, 2);
        s.on_fill(1, 0, 2);
        s.on_fill(0, 1, 2);
        assert_eq!(s.victim(0, 2), 0);
        assert_eq!(s.victim(1, 2), 1);
    }

    #[test]
    fn tree_plru_victim_sequence_4_and_8_ways() {
        // From the all-zero state, a stream of misses visits the leaves in bit-reversed order:
        // each fill turns the root around, so consecutive victims alternate halves.
        let mut s = ReplacementState::new(ReplacementPolicy::TreePlru, 1, 4, rng());
        assert_eq!(miss_stream(&mut s, 4, 8), [0, 2, 1, 3, 0, 2, 1, 3]);
        let mut s = ReplacementState::new(ReplacementPolicy::TreePlru, 1, 8, rng());
        assert_eq!(
            miss_stream(&mut s, 8, 16),
            [0, 4, 2, 6, 1, 5, 3, 7, 0, 4, 2, 6, 1, 5, 3, 7]
        );
    }

    #[test]
    fn tree_plru_touch_and_victim_by_hand() {
        // 4 ways: bit 0 = root, bit 1 = node over ways 0-1, bit 2 = node over ways 2-3.
        assert_eq!(tree_plru::touch(0, 0, 4), 0b011);
        assert_eq!(tree_plru::touch(0, 1, 4), 0b001);
        assert_eq!(tree_plru::touch(0, 2, 4), 0b100);
        assert_eq!(tree_plru::touch(0b111, 3, 4), 0b010);
        assert_eq!(tree_plru::victim(0b000, 4), 0);
        assert_eq!(tree_plru::victim(0b010, 4), 1);
        assert_eq!(tree_plru::victim(0b001, 4), 2);
        assert_eq!(tree_plru::victim(0b101, 4), 3);
        // Touching a way never leaves the tree pointing at it.
        for ways in [2usize, 4, 8, 16, 64] {
            for bits in [0u64, u64::MAX >> 1, 0x5555_5555_5555_5555] {
                for w in 0..ways {
                    assert_ne!(tree_plru::victim(tree_plru::touch(bits, w, ways), ways), w);
                }
            }
        }
        // One way: nothing to choose, no bits used.
        assert_eq!(tree_plru::touch(0, 0, 1), 0);
        assert_eq!(tree_plru::victim(0, 1), 0);
    }

    #[test]
    fn tree_plru_protects_the_recent_way() {
        // After hits on 0 and 2, the victim is in the half not used last (ways 0-1), on the
        // side not used last (way 1).
        let mut s = ReplacementState::new(ReplacementPolicy::TreePlru, 1, 4, rng());
        s.on_hit(0, 0, 4);
        s.on_hit(0, 2, 4);
        assert_eq!(s.victim(0, 4), 1);
    }

    #[test]
    fn srrip_inserts_long_promotes_on_hit_and_ages() {
        let mut s = ReplacementState::new(ReplacementPolicy::Srrip, 1, 4, rng());
        for w in 0..4 {
            s.on_fill(0, w, 4);
        }
        s.on_hit(0, 2, 4);
        let rrpv = |s: &ReplacementState| match s {
            ReplacementState::Srrip { rrpv } => rrpv.clone(),
            _ => unreachable!(),
        };
        assert_eq!(rrpv(&s), [2, 2, 0, 2]);
        // No line at 3: age everyone once, then way 0 is the first at 3.
        assert_eq!(s.victim(0, 4), 0);
        assert_eq!(rrpv(&s), [3, 3, 1, 3]);
        s.on_fill(0, 0, 4);
        assert_eq!(rrpv(&s), [2, 3, 1, 3]);
        // Way 1 is already distant: no ageing.
        assert_eq!(s.victim(0, 4), 1);
        assert_eq!(rrpv(&s), [2, 3, 1, 3]);
        s.on_fill(0, 1, 4);
        assert_eq!(s.victim(0, 4), 3);
        s.on_fill(0, 3, 4);
        assert_eq!(rrpv(&s), [2, 2, 1, 2]);
        // Hit lines survive a scan of new lines longer than filled ones.
        s.on_hit(0, 2, 4);
        assert_eq!(s.victim(0, 4), 0);
        assert_eq!(rrpv(&s), [3, 3, 1, 3]);
    }

    #[test]
    fn srrip_victim_matches_the_papers_loop() {
        // The closed form against the literal loop of the paper, for every 3-way state.
        for code in 0..64u32 {
            let state: Vec<u8> = (0..3).map(|i| ((code >> (2 * i)) & 3) as u8).collect();
            let mut looped = state.clone();
            let way = loop {
                if let Some(w) = looped.iter().position(|&v| v == srrip::RRPV_MAX) {
                    break w;
                }
                looped.iter_mut().for_each(|v| *v += 1);
            };
            let (w, rounds) = srrip::victim(&state);
            let mut aged = state.clone();
            srrip::age(&mut aged, rounds);
            assert_eq!((w, &aged), (way, &looped), "state {state:?}");
        }
    }

    #[test]
    fn random_is_deterministic_per_seed_and_covers_the_set() {
        let draw = |seed: u64| {
            let rng = RngFactory::new(seed).fork("l1d.replacement");
            let mut s = ReplacementState::new(ReplacementPolicy::Random, 1, 8, rng);
            miss_stream(&mut s, 8, 64)
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        assert!(a.iter().all(|&w| w < 8));
        for w in 0..8 {
            assert!(a.contains(&w), "way {w} never chosen in {a:?}");
        }
    }
}
