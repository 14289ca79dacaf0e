//! The LRU cache against a trivially correct reference: per set, a vector of lines kept in
//! recency order (most recent first), moved to the front on use, evicted from the back. The
//! seed chooses the geometry and the write policy as well as the access stream.

use cache_model::AccessKind;
use cache_model::{
    Cache, CacheConfig, ReplacementPolicy, WriteHitPolicy, WriteMissPolicy, WritePolicy,
};
use proptest::prelude::*;
use sim_core::{PhysAddr, RngFactory};

/// The reference: `sets[s]` holds (block address, dirty), most recently used first.
struct Reference {
    sets: Vec<Vec<(u64, bool)>>,
    ways: usize,
    line_bytes: u64,
    policy: WritePolicy,
}

/// What an access did, in terms both models can state.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    hit: bool,
    filled: bool,
    /// (first byte of the victim line, dirty)
    victim: Option<(u64, bool)>,
    forwarded: bool,
}

impl Reference {
    fn set_of(&self, block: u64) -> usize {
        (block % self.sets.len() as u64) as usize
    }

    fn access(&mut self, addr: u64, kind: AccessKind) -> Outcome {
        let block = addr / self.line_bytes;
        let write = kind == AccessKind::Write;
        let write_back = self.policy.on_hit == WriteHitPolicy::WriteBack;
        let ways = self.ways;
        let line_bytes = self.line_bytes;
        let s = self.set_of(block);
        let set = &mut self.sets[s];
        if let Some(pos) = set.iter().position(|&(b, _)| b == block) {
            let (b, dirty) = set.remove(pos);
            set.insert(0, (b, dirty || (write && write_back)));
            return Outcome {
                hit: true,
                filled: false,
                victim: None,
                forwarded: write && !write_back,
            };
        }
        if write && self.policy.on_miss == WriteMissPolicy::NoWriteAllocate {
            return Outcome {
                hit: false,
                filled: false,
                victim: None,
                forwarded: true,
            };
        }
        let victim = (set.len() == ways).then(|| {
            let (b, dirty) = set.pop().unwrap();
            (b * line_bytes, dirty)
        });
        set.insert(0, (block, write && write_back));
        Outcome {
            hit: false,
            filled: true,
            victim,
            forwarded: write && !write_back,
        }
    }

    fn invalidate(&mut self, addr: u64) -> Option<(u64, bool)> {
        let block = addr / self.line_bytes;
        let s = self.set_of(block);
        let set = &mut self.sets[s];
        let pos = set.iter().position(|&(b, _)| b == block)?;
        let (b, dirty) = set.remove(pos);
        Some((b * self.line_bytes, dirty))
    }

    /// Every line as (first byte, dirty), sorted.
    fn lines(&self) -> Vec<(u64, bool)> {
        let mut all: Vec<(u64, bool)> = self
            .sets
            .iter()
            .flatten()
            .map(|&(b, d)| (b * self.line_bytes, d))
            .collect();
        all.sort();
        all
    }
}

#[derive(Clone, Debug)]
enum Op {
    Access(u64, AccessKind),
    Invalidate(u64),
    Probe(u64),
}

/// A geometry, a write policy, and a stream of operations on a small address range (so that
/// sets fill and conflict), with addresses under a few KeyIDs.
///
/// Half the geometries are small (a few sets, every block in play); the other half are large
/// enough (2^17 to 2^19 sets) that the cache stores its sets lazily, with the blocks of a few
/// sets far apart (both ends, both sides of a chunk boundary) in play.
fn scenario() -> impl Strategy<Value = (u64, u32, u64, WritePolicy, Vec<Op>)> {
    (
        prop_oneof![0u32..4, 17u32..20],
        1u32..=8,
        prop::sample::select(vec![4u64, 8, 16, 64]),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_flat_map(|(set_bits, ways, line, through, no_alloc)| {
            let sets = 1u64 << set_bits;
            // About three lines' worth of competitors per way.
            let tags = u64::from(ways) * 3;
            let in_play: Vec<u64> = if sets <= 16 {
                (0..sets).collect()
            } else {
                vec![0, 1, 255, 256, 4097, sets / 2, sets - 1]
            };
            let addr = (
                0..tags,
                prop::sample::select(in_play),
                0..line,
                prop::sample::select(vec![0u64, 1 << 46, 5 << 46]),
            )
                .prop_map(move |(tag, set, off, keyid)| keyid | ((tag * sets + set) * line + off));
            let op = prop_oneof![
                6 => (addr.clone(), any::<bool>())
                    .prop_map(|(a, w)| Op::Access(a, AccessKind::from_is_write(w))),
                1 => addr.clone().prop_map(Op::Invalidate),
                1 => addr.prop_map(Op::Probe),
            ];
            let policy = WritePolicy {
                on_hit: if through {
                    WriteHitPolicy::WriteThrough
                } else {
                    WriteHitPolicy::WriteBack
                },
                on_miss: if no_alloc {
                    WriteMissPolicy::NoWriteAllocate
                } else {
                    WriteMissPolicy::WriteAllocate
                },
            };
            (
                Just(sets),
                Just(ways),
                Just(line),
                Just(policy),
                prop::collection::vec(op, 1..300),
            )
        })
}

proptest! {
    #[test]
    fn lru_cache_agrees_with_the_reference((sets, ways, line, policy, ops) in scenario()) {
        let config = CacheConfig {
            size_bytes: sets * u64::from(ways) * line,
            sets,
            ways,
            line_bytes: line,
            replacement: ReplacementPolicy::Lru,
            write_policy: policy,
            ..CacheConfig::default()
        };
        let mut cache: Cache = Cache::from_config(&config, RngFactory::new(0).fork("c")).unwrap();
        let mut reference = Reference {
            sets: vec![Vec::new(); sets as usize],
            ways: ways as usize,
            line_bytes: line,
            policy,
        };
        for (step, op) in ops.iter().enumerate() {
            match *op {
                Op::Access(addr, kind) => {
                    let got = cache.access(PhysAddr::new(addr), kind);
                    let got = Outcome {
                        hit: got.hit,
                        filled: got.filled,
                        victim: got.victim.map(|v| (v.addr.raw(), v.dirty)),
                        forwarded: got.write_forwarded,
                    };
                    prop_assert_eq!(got, reference.access(addr, kind), "step {}: {:?}", step, op);
                }
                Op::Invalidate(addr) => {
                    let got = cache.invalidate(PhysAddr::new(addr)).map(|v| (v.addr.raw(), v.dirty));
                    prop_assert_eq!(got, reference.invalidate(addr), "step {}: {:?}", step, op);
                }
                Op::Probe(addr) => {
                    let block = addr / line;
                    let want = reference.sets[reference.set_of(block)].iter().any(|&(b, _)| b == block);
                    prop_assert_eq!(cache.probe(PhysAddr::new(addr)).is_some(), want, "step {}", step);
                }
            }
        }
        let mut got: Vec<(u64, bool)> = cache.lines().map(|l| (l.addr.raw(), l.dirty)).collect();
        got.sort();
        prop_assert_eq!(&got, &reference.lines());
        prop_assert_eq!(cache.len(), got.len());
        prop_assert_eq!(cache.dirty_len(), got.iter().filter(|l| l.1).count());
    }
}
