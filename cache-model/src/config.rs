//! Cache configuration in two stages: [`CacheConfig`], the plain description a user or a
//! scenario writes, and [`CacheParams`], the validated form a [`Cache`](crate::Cache) is built
//! from. Validation is the only way from one to the other, so a cache never sees an impossible
//! geometry, and every refusal names the field at fault.

use crate::replacement::ReplacementPolicy;
use sim_core::{BitRange, PhysAddr};
use std::fmt;

/// Smallest accepted line size in bytes.
///
/// No real cache has smaller lines, and the cache's invalid-tag sentinel relies on the block
/// address (the address shifted right by log2 of the line size) never being all ones, which
/// holds for any line of at least two bytes.
pub const LINE_BYTES_MIN: u64 = 4;

/// Largest accepted number of lines (sets x ways) in one cache: 2^26, a 4 GiB cache of 64-byte
/// lines. A bound on the memory the model allocates for one cache, far above any real cache.
pub const LINES_MAX: u64 = 1 << 26;

/// Largest associativity tree pseudo-LRU supports: one bit per internal node of the tree must
/// fit in a `u64` (ways - 1 <= 63).
pub const TREE_PLRU_WAYS_MAX: u32 = 64;

/// What a write that hits does.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Default)]
pub enum WriteHitPolicy {
    /// The line is marked dirty and reaches memory only when evicted or flushed.
    #[default]
    WriteBack,
    /// The write is also sent to the next level at once; the line stays clean.
    WriteThrough,
}

/// What a write that misses does.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Default)]
pub enum WriteMissPolicy {
    /// The line is fetched and allocated, then written as on a hit.
    #[default]
    WriteAllocate,
    /// The write goes to the next level; nothing is allocated.
    NoWriteAllocate,
}

/// A cache's write policy. The default, write-back with write-allocate, is what every level of
/// a modern x86 hierarchy does for ordinary write-back memory.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct WritePolicy {
    /// Behaviour of a write hit.
    pub on_hit: WriteHitPolicy,
    /// Behaviour of a write miss.
    pub on_miss: WriteMissPolicy,
}

impl WriteHitPolicy {
    /// The policy's name in reports: `write-back` or `write-through`.
    pub const fn name(self) -> &'static str {
        match self {
            WriteHitPolicy::WriteBack => "write-back",
            WriteHitPolicy::WriteThrough => "write-through",
        }
    }
}

impl WriteMissPolicy {
    /// The policy's name in reports: `write-allocate` or `no-write-allocate`.
    pub const fn name(self) -> &'static str {
        match self {
            WriteMissPolicy::WriteAllocate => "write-allocate",
            WriteMissPolicy::NoWriteAllocate => "no-write-allocate",
        }
    }
}

/// A cache as a user describes it. Plain data: nothing is checked until [`CacheConfig::validate`].
///
/// `size_bytes` is redundant with `sets x ways x line_bytes` on purpose: a configuration file
/// states the size people quote ("32 KiB, 8-way") and the geometry, and validation catches the
/// two disagreeing instead of silently trusting one.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CacheConfig {
    /// Total data capacity in bytes.
    pub size_bytes: u64,
    /// Number of sets (a power of two).
    pub sets: u64,
    /// Associativity: lines per set (at least 1).
    pub ways: u32,
    /// Line (block) size in bytes (a power of two, at least [`LINE_BYTES_MIN`]).
    pub line_bytes: u64,
    /// Cycles from a request reaching the cache to a hit's data leaving it.
    pub hit_latency_cycles: u64,
    /// Which line a full set evicts.
    pub replacement: ReplacementPolicy,
    /// What writes do.
    pub write_policy: WritePolicy,
}

impl Default for CacheConfig {
    /// A typical L1 data cache: 32 KiB, 8-way, 64-byte lines (64 sets), 4-cycle hits, LRU,
    /// write-back, write-allocate.
    fn default() -> CacheConfig {
        CacheConfig {
            size_bytes: 32 * 1024,
            sets: 64,
            ways: 8,
            line_bytes: 64,
            hit_latency_cycles: 4,
            replacement: ReplacementPolicy::Lru,
            write_policy: WritePolicy::default(),
        }
    }
}

/// An impossible cache configuration. Every variant names the field at fault and carries the
/// offending values.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum CacheConfigError {
    /// `line_bytes` is not a power of two.
    #[error("line_bytes = {line_bytes} is not a power of two")]
    LineBytesNotPowerOfTwo {
        /// The configured line size.
        line_bytes: u64,
    },
    /// `line_bytes` is below [`LINE_BYTES_MIN`].
    #[error("line_bytes = {line_bytes} is too small: lines are at least {min} bytes")]
    LineBytesTooSmall {
        /// The configured line size.
        line_bytes: u64,
        /// The smallest accepted line size.
        min: u64,
    },
    /// `ways` is zero.
    #[error("ways = 0: a cache needs at least one way")]
    ZeroWays,
    /// `sets` is zero or not a power of two (the set index is a bit field of the address).
    #[error("sets = {sets} is not a power of two (the set index is a field of address bits)")]
    SetsNotPowerOfTwo {
        /// The configured number of sets.
        sets: u64,
    },
    /// `size_bytes` disagrees with `sets x ways x line_bytes`.
    #[error(
        "size_bytes = {size_bytes} does not equal sets x ways x line_bytes = \
         {sets} x {ways} x {line_bytes}{}",
        match product { Some(p) => format!(" = {p}"), None => " (overflows 64 bits)".to_owned() }
    )]
    SizeMismatch {
        /// The configured size.
        size_bytes: u64,
        /// The configured number of sets.
        sets: u64,
        /// The configured associativity.
        ways: u32,
        /// The configured line size.
        line_bytes: u64,
        /// `sets x ways x line_bytes`, or `None` when it overflows.
        product: Option<u64>,
    },
    /// `size_bytes` is not a whole number of sets of `ways` lines (from [`CacheConfig::with_size`]).
    #[error(
        "size_bytes = {size_bytes} is not a positive multiple of ways x line_bytes = \
         {ways} x {line_bytes}"
    )]
    SizeNotWholeSets {
        /// The configured size.
        size_bytes: u64,
        /// The configured associativity.
        ways: u32,
        /// The configured line size.
        line_bytes: u64,
    },
    /// More lines than the model allocates for one cache.
    #[error("sets x ways = {lines} lines is more than the model supports ({max})")]
    TooManyLines {
        /// `sets x ways` (saturated).
        lines: u64,
        /// [`LINES_MAX`].
        max: u64,
    },
    /// Tree pseudo-LRU needs a power-of-two associativity that its bit tree can hold.
    #[error(
        "ways = {ways} does not suit replacement = tree-plru: it needs a power of two no larger \
         than {max}"
    )]
    TreePlruWays {
        /// The configured associativity.
        ways: u32,
        /// [`TREE_PLRU_WAYS_MAX`].
        max: u32,
    },
}

impl CacheConfig {
    /// The default configuration resized to `size_bytes`, `ways` and `line_bytes`, with the
    /// number of sets derived from them (the `SIZE:WAYS:LINE` form of the command line).
    ///
    /// Fails when the line size is not a power of two, when there are no ways, or when the size
    /// is not a whole number of sets; the result still goes through [`CacheConfig::validate`]
    /// for everything else.
    pub fn with_size(
        size_bytes: u64,
        ways: u32,
        line_bytes: u64,
    ) -> Result<CacheConfig, CacheConfigError> {
        // The line size and the ways are checked first: they are what the size is divided by,
        // and a wrong one is a more useful message than "not a whole number of sets".
        if !line_bytes.is_power_of_two() {
            return Err(CacheConfigError::LineBytesNotPowerOfTwo { line_bytes });
        }
        if ways == 0 {
            return Err(CacheConfigError::ZeroWays);
        }
        let set_bytes = u64::from(ways).checked_mul(line_bytes);
        let sets = match set_bytes {
            Some(b) if b > 0 && size_bytes.is_multiple_of(b) && size_bytes >= b => size_bytes / b,
            _ => {
                return Err(CacheConfigError::SizeNotWholeSets {
                    size_bytes,
                    ways,
                    line_bytes,
                });
            }
        };
        Ok(CacheConfig {
            size_bytes,
            sets,
            ways,
            line_bytes,
            ..CacheConfig::default()
        })
    }

    /// Checks the configuration and turns it into the typed parameters a cache is built from.
    ///
    /// Checks, in order: line size (power of two, at least [`LINE_BYTES_MIN`]), ways (non-zero),
    /// sets (power of two), size (equal to the product), total lines (at most [`LINES_MAX`]),
    /// and what the replacement policy needs of the associativity.
    pub fn validate(&self) -> Result<CacheParams, CacheConfigError> {
        let CacheConfig {
            size_bytes,
            sets,
            ways,
            line_bytes,
            hit_latency_cycles,
            replacement,
            write_policy,
        } = *self;
        if !line_bytes.is_power_of_two() {
            return Err(CacheConfigError::LineBytesNotPowerOfTwo { line_bytes });
        }
        if line_bytes < LINE_BYTES_MIN {
            return Err(CacheConfigError::LineBytesTooSmall {
                line_bytes,
                min: LINE_BYTES_MIN,
            });
        }
        if ways == 0 {
            return Err(CacheConfigError::ZeroWays);
        }
        if !sets.is_power_of_two() {
            return Err(CacheConfigError::SetsNotPowerOfTwo { sets });
        }
        let product = sets
            .checked_mul(u64::from(ways))
            .and_then(|lines| lines.checked_mul(line_bytes));
        if product != Some(size_bytes) {
            return Err(CacheConfigError::SizeMismatch {
                size_bytes,
                sets,
                ways,
                line_bytes,
                product,
            });
        }
        let lines = sets.saturating_mul(u64::from(ways));
        if lines > LINES_MAX {
            return Err(CacheConfigError::TooManyLines {
                lines,
                max: LINES_MAX,
            });
        }
        if replacement == ReplacementPolicy::TreePlru
            && (!ways.is_power_of_two() || ways > TREE_PLRU_WAYS_MAX)
        {
            return Err(CacheConfigError::TreePlruWays {
                ways,
                max: TREE_PLRU_WAYS_MAX,
            });
        }
        let offset_bits = line_bytes.trailing_zeros();
        let index_bits = sets.trailing_zeros();
        // Both fit: line_bytes * sets <= size_bytes < 2^64, so offset + index bits < 64.
        let index = BitRange::new(offset_bits, index_bits)
            .expect("offset and index bits of a validated cache fit in 64 bits");
        let block = BitRange::new(offset_bits, 64 - offset_bits)
            .expect("the block field of a validated cache fits in 64 bits");
        Ok(CacheParams {
            size_bytes,
            sets,
            ways,
            line_bytes,
            hit_latency_cycles,
            replacement,
            write_policy,
            index,
            block,
        })
    }
}

/// A validated cache configuration: the geometry, the policies, and the address fields the
/// geometry implies. Built only by [`CacheConfig::validate`].
///
/// The cache tags lines with the whole block address (the physical address without its line
/// offset), KeyID bits included, so the same DRAM line reached through two KeyIDs occupies two
/// unrelated cache lines, as on MKTME hardware.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CacheParams {
    size_bytes: u64,
    sets: u64,
    ways: u32,
    line_bytes: u64,
    hit_latency_cycles: u64,
    replacement: ReplacementPolicy,
    write_policy: WritePolicy,
    /// Set-index field: the address bits just above the line offset.
    index: BitRange,
    /// Block-address field: every bit above the line offset, KeyID bits included.
    block: BitRange,
}

impl CacheParams {
    /// Total data capacity in bytes.
    pub const fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Number of sets.
    pub const fn sets(&self) -> u64 {
        self.sets
    }

    /// Associativity.
    pub const fn ways(&self) -> u32 {
        self.ways
    }

    /// Line size in bytes.
    pub const fn line_bytes(&self) -> u64 {
        self.line_bytes
    }

    /// Total number of lines (sets x ways).
    pub const fn lines(&self) -> u64 {
        self.sets * self.ways as u64
    }

    /// Hit latency in cycles.
    pub const fn hit_latency_cycles(&self) -> u64 {
        self.hit_latency_cycles
    }

    /// Replacement policy.
    pub const fn replacement(&self) -> ReplacementPolicy {
        self.replacement
    }

    /// Write policy.
    pub const fn write_policy(&self) -> WritePolicy {
        self.write_policy
    }

    /// The set-index field of a physical address.
    pub const fn index_field(&self) -> BitRange {
        self.index
    }

    /// The block-address field (everything above the line offset, KeyID bits included).
    pub const fn block_field(&self) -> BitRange {
        self.block
    }

    /// The set that `addr` maps to.
    #[inline]
    pub const fn set_of(&self, addr: PhysAddr) -> usize {
        // The index field is narrower than LINES_MAX's 26 bits, so it fits any usize.
        self.index.extract(addr.raw()) as usize
    }

    /// The block address of `addr`: the tag this cache stores for its line.
    #[inline]
    pub const fn block_of(&self, addr: PhysAddr) -> u64 {
        self.block.extract(addr.raw())
    }

    /// The first byte of the line whose block address is `block`.
    #[inline]
    pub const fn block_base(&self, block: u64) -> PhysAddr {
        PhysAddr::new(self.block.insert(0, block))
    }

    /// The first byte of the line holding `addr`.
    #[inline]
    pub const fn line_base(&self, addr: PhysAddr) -> PhysAddr {
        self.block_base(self.block_of(addr))
    }
}

impl fmt::Display for CacheParams {
    /// `32 KiB, 8-way, 64 B lines, 64 sets, lru, write-back, write-allocate`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, {}-way, {} B lines, {} sets, {}, {}, {}",
            HumanBytes(self.size_bytes),
            self.ways,
            self.line_bytes,
            self.sets,
            self.replacement.name(),
            self.write_policy.on_hit.name(),
            self.write_policy.on_miss.name()
        )
    }
}

/// A byte count in the largest binary unit that divides it exactly (`32 KiB`, `1 MiB`, `96 B`).
struct HumanBytes(u64);

impl fmt::Display for HumanBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u32); 4] = [("GiB", 30), ("MiB", 20), ("KiB", 10), ("B", 0)];
        for (unit, shift) in UNITS {
            if self.0 != 0 && self.0.trailing_zeros() >= shift {
                return write!(f, "{} {unit}", self.0 >> shift);
            }
        }
        write!(f, "{} B", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(size: u64, sets: u64, ways: u32, line: u64) -> CacheConfig {
        CacheConfig {
            size_bytes: size,
            sets,
            ways,
            line_bytes: line,
            ..CacheConfig::default()
        }
    }

    #[test]
    fn default_is_the_validation_cache() {
        let p = CacheConfig::default().validate().unwrap();
        assert_eq!((p.sets(), p.ways(), p.line_bytes()), (64, 8, 64));
        assert_eq!(p.index_field(), BitRange::new(6, 6).unwrap());
        assert_eq!(p.block_field(), BitRange::new(6, 58).unwrap());
        assert_eq!(
            p.to_string(),
            "32 KiB, 8-way, 64 B lines, 64 sets, lru, write-back, write-allocate"
        );
    }

    #[test]
    fn with_size_derives_sets() {
        let c = CacheConfig::with_size(32 * 1024, 8, 64).unwrap();
        assert_eq!(c.sets, 64);
        assert_eq!(
            CacheConfig::with_size(1000, 8, 64).unwrap_err(),
            CacheConfigError::SizeNotWholeSets {
                size_bytes: 1000,
                ways: 8,
                line_bytes: 64
            }
        );
        assert_eq!(
            CacheConfig::with_size(0, 8, 64).unwrap_err().to_string(),
            "size_bytes = 0 is not a positive multiple of ways x line_bytes = 8 x 64"
        );
        assert_eq!(
            CacheConfig::with_size(4096, 0, 64).unwrap_err(),
            CacheConfigError::ZeroWays
        );
        assert_eq!(
            CacheConfig::with_size(32 * 1024, 8, 48).unwrap_err(),
            CacheConfigError::LineBytesNotPowerOfTwo { line_bytes: 48 }
        );
    }

    #[test]
    fn every_impossible_field_is_named() {
        let e = cfg(3 * 8 * 64, 3, 8, 64).validate().unwrap_err();
        assert_eq!(e, CacheConfigError::SetsNotPowerOfTwo { sets: 3 });
        assert!(e.to_string().starts_with("sets = 3 "));

        let e = cfg(64 * 8 * 48, 64, 8, 48).validate().unwrap_err();
        assert_eq!(
            e,
            CacheConfigError::LineBytesNotPowerOfTwo { line_bytes: 48 }
        );
        assert!(e.to_string().starts_with("line_bytes = 48 "));

        let e = cfg(64 * 8 * 2, 64, 8, 2).validate().unwrap_err();
        assert_eq!(
            e,
            CacheConfigError::LineBytesTooSmall {
                line_bytes: 2,
                min: 4
            }
        );

        let e = cfg(0, 64, 0, 64).validate().unwrap_err();
        assert_eq!(e, CacheConfigError::ZeroWays);
        assert!(e.to_string().starts_with("ways = 0"));

        let e = cfg(16 * 1024, 64, 8, 64).validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "size_bytes = 16384 does not equal sets x ways x line_bytes = 64 x 8 x 64 = 32768"
        );

        let e = cfg(1, 1 << 62, 8, 64).validate().unwrap_err();
        assert!(matches!(
            e,
            CacheConfigError::SizeMismatch { product: None, .. }
        ));
        assert!(e.to_string().ends_with("(overflows 64 bits)"));

        let e = cfg(1 << 33, 1 << 24, 8, 64).validate().unwrap_err();
        assert_eq!(
            e,
            CacheConfigError::TooManyLines {
                lines: 1 << 27,
                max: LINES_MAX
            }
        );
    }

    #[test]
    fn tree_plru_needs_a_power_of_two_of_ways() {
        let mut c = cfg(64 * 6 * 64, 64, 6, 64);
        assert!(c.validate().is_ok());
        c.replacement = ReplacementPolicy::TreePlru;
        let e = c.validate().unwrap_err();
        assert_eq!(e, CacheConfigError::TreePlruWays { ways: 6, max: 64 });
        assert!(e.to_string().contains("replacement = tree-plru"));
        let mut c = cfg(128 * 64, 1, 128, 64);
        c.replacement = ReplacementPolicy::TreePlru;
        assert!(matches!(
            c.validate(),
            Err(CacheConfigError::TreePlruWays { ways: 128, .. })
        ));
    }

    #[test]
    fn slicing_goes_through_the_fields() {
        let p = cfg(4 * 2 * 16, 4, 2, 16).validate().unwrap();
        // 16-byte lines: offset bits 3:0, set index bits 5:4, block = addr >> 4.
        let a = PhysAddr::new(0xabc7);
        assert_eq!(p.set_of(a), 0);
        assert_eq!(p.set_of(PhysAddr::new(0x30)), 3);
        assert_eq!(p.block_of(a), 0xabc);
        assert_eq!(p.line_base(a), PhysAddr::new(0xabc0));
        assert_eq!(p.block_base(0xabc), PhysAddr::new(0xabc0));
        // The KeyID bits stay part of the block address.
        let keyed = PhysAddr::new((5 << 46) | 0xabc7);
        assert_eq!(p.block_of(keyed), ((5u64 << 46) | 0xabc0) >> 4);
        assert_eq!(p.set_of(keyed), p.set_of(a));
    }

    #[test]
    fn human_bytes() {
        assert_eq!(HumanBytes(96).to_string(), "96 B");
        assert_eq!(HumanBytes(1 << 20).to_string(), "1 MiB");
        assert_eq!(HumanBytes(3 << 30).to_string(), "3 GiB");
        assert_eq!(HumanBytes(0).to_string(), "0 B");
    }
}
