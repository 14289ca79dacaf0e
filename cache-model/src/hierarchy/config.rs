//! The hierarchy's configuration: [`HierarchyConfig`], plain data a user or a scenario writes,
//! validated by [`HierarchyConfig::validate`] into [`HierarchyParams`], what
//! [`Hierarchy::new`](super::Hierarchy::new) builds from. Every refusal is a
//! [`HierarchyConfigError`] naming the field at fault (`l2.mshr_entries`,
//! `prefetch.degree`, ...).

use crate::config::{CacheConfig, CacheConfigError, CacheParams, WritePolicy};
use crate::events::Level;
use crate::replacement::ReplacementPolicy;

/// Largest accepted number of cores: the directory keeps one presence bit per core in a `u64`.
pub const CORES_MAX: u32 = 64;
/// Largest accepted `mshr_entries` at any level. MSHRs are searched linearly (real ones are
/// CAMs of 10 to 100 entries); this only keeps a typo from building a huge table.
pub const MSHR_ENTRIES_MAX: u32 = 1024;
/// Largest accepted `writeback_buffer_entries`.
pub const WRITEBACK_BUFFER_ENTRIES_MAX: u32 = 4096;
/// Largest accepted prefetch degree (lines requested per trigger, per prefetcher).
pub const PREFETCH_DEGREE_MAX: u32 = 16;
/// Largest accepted stride-table size.
pub const STRIDE_TABLE_ENTRIES_MAX: u32 = 256;
/// The only line size the hierarchy supports: the unit of coherence, of DRAM transfer and of
/// XTS encryption (mktme-facts.md 3; [`sim_core::LINE_BYTES`]).
pub const HIERARCHY_LINE_BYTES: u64 = sim_core::LINE_BYTES as u64;

/// One cache level: its geometry and policies, and how many misses it can have outstanding.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LevelConfig {
    /// Geometry, hit latency and replacement. Lines must be 64 bytes and the write policy
    /// write-back with write-allocate (the only policy MESI is defined for here).
    pub cache: CacheConfig,
    /// Miss status holding registers: distinct lines this level can have outstanding (per core
    /// for the private levels, shared for the LLC). A request that needs one when all are busy
    /// is refused (back-pressure) or, for a hardware prefetch, dropped.
    pub mshr_entries: u32,
}

/// What happens to other-KeyID copies of a DRAM line when one KeyID's copy is filled
/// (mktme-facts.md 4.1, "SURPRISE").
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Default)]
pub enum AliasPolicy {
    /// The architectural rule: nothing. Aliases are unrelated lines and may all be cached,
    /// and dirty, at once.
    #[default]
    None,
    /// What Intel's TDX guidance says some processors do: a line coming on chip evicts every
    /// copy of the same DRAM line under another KeyID from every cache, writing it back first
    /// when dirty.
    EvictOtherKeyIds,
}

impl AliasPolicy {
    /// `none` or `evict_other_keyids`, as scenarios spell it.
    pub const fn name(self) -> &'static str {
        match self {
            AliasPolicy::None => "none",
            AliasPolicy::EvictOtherKeyIds => "evict_other_keyids",
        }
    }
}

/// A private level a prefetcher can sit at.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum PrefetchLevel {
    /// The core's L1D.
    L1d,
    /// The core's L2.
    L2,
}

impl PrefetchLevel {
    /// The matching cache level.
    pub const fn level(self) -> Level {
        match self {
            PrefetchLevel::L1d => Level::L1d,
            PrefetchLevel::L2 => Level::L2,
        }
    }
}

/// The per-core hardware prefetchers.
///
/// Both prefetchers stay inside the 4 KiB page of the access that trained them, request lines
/// as if the core had loaded them at the training cycle, fill them clean (E or S, never M), and
/// are dropped rather than wait when an MSHR they need is busy.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PrefetchConfig {
    /// Next-line: a demand miss at `train_on` (or the first demand use of a prefetched line)
    /// requests the next `degree` lines.
    pub next_line: bool,
    /// Stride: a table of the last line and stride per 4 KiB page (no PC: most traces have
    /// none); two equal strides in a row request `degree` lines further along that stride.
    pub stride: bool,
    /// Lines requested per trigger and prefetcher.
    pub degree: u32,
    /// Which accesses train the prefetchers: every demand access at the L1D, or the L1D misses
    /// that reach the L2.
    pub train_on: PrefetchLevel,
    /// Where prefetched lines go (and every level beyond it: the L2 and LLC are inclusive of
    /// what they pass on).
    pub fill_into: PrefetchLevel,
    /// Pages the stride prefetcher tracks (least recently used replaced).
    pub stride_table_entries: u32,
}

impl PrefetchConfig {
    /// Both prefetchers off.
    pub const OFF: PrefetchConfig = PrefetchConfig {
        next_line: false,
        stride: false,
        degree: 1,
        train_on: PrefetchLevel::L2,
        fill_into: PrefetchLevel::L2,
        stride_table_entries: 16,
    };

    /// True when at least one prefetcher is on.
    pub const fn enabled(&self) -> bool {
        self.next_line || self.stride
    }
}

impl Default for PrefetchConfig {
    /// Next-line and stride, degree 2, trained on and filling into the L2 (where Intel's L2
    /// streamer sits), 16 stride-table entries.
    fn default() -> PrefetchConfig {
        PrefetchConfig {
            next_line: true,
            stride: true,
            degree: 2,
            train_on: PrefetchLevel::L2,
            fill_into: PrefetchLevel::L2,
            stride_table_entries: 16,
        }
    }
}

/// A coherent cache hierarchy as a user describes it. Plain data: checked by
/// [`HierarchyConfig::validate`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HierarchyConfig {
    /// Number of cores, each with a private L1D and L2 (1..=64).
    pub cores: u32,
    /// Each core's L1 data cache.
    pub l1d: LevelConfig,
    /// Each core's L2, always inclusive of its L1D.
    pub l2: LevelConfig,
    /// The shared last-level cache.
    pub llc: LevelConfig,
    /// Inclusive LLC (its evictions back-invalidate the private caches) or non-inclusive (the
    /// private caches keep their copies; an exact snoop filter tracks them).
    pub llc_inclusive: bool,
    /// Cycles added to an LLC hit when the directory must snoop another core (an E/M owner
    /// downgraded or asked for data, or sharers invalidated for a store or a flush).
    pub snoop_latency_cycles: u64,
    /// Write-backs to memory that can wait for the memory controller. A step that could need
    /// more room than is free waits for it.
    pub writeback_buffer_entries: u32,
    /// Hardware prefetchers.
    pub prefetch: PrefetchConfig,
    /// Counterfactual knob: lines brought in by a prefetch or a speculative load are marked
    /// dirty on fill, and so written back on eviction although no store touched them. Off on
    /// every real processor (mktme-facts.md 4.1).
    pub writeback_speculative_lines: bool,
    /// What a fill does to other-KeyID copies of its DRAM line.
    pub alias_policy: AliasPolicy,
}

impl Default for HierarchyConfig {
    /// Two cores; per core a 32 KiB 8-way L1D (4 cycles, 16 MSHRs) and a 1 MiB 16-way L2
    /// (14 cycles, 32 MSHRs); a shared inclusive 8 MiB 16-way LLC (40 cycles, 64 MSHRs);
    /// 20-cycle snoops; 16 write-back buffer entries; the default prefetchers; no alias
    /// eviction; the counterfactual knob off. LRU everywhere. Roughly a client Skylake core,
    /// rounded.
    fn default() -> HierarchyConfig {
        HierarchyConfig {
            cores: 2,
            l1d: LevelConfig {
                cache: level_cache(32 * 1024, 8, 4),
                mshr_entries: 16,
            },
            l2: LevelConfig {
                cache: level_cache(1024 * 1024, 16, 14),
                mshr_entries: 32,
            },
            llc: LevelConfig {
                cache: level_cache(8 * 1024 * 1024, 16, 40),
                mshr_entries: 64,
            },
            llc_inclusive: true,
            snoop_latency_cycles: 20,
            writeback_buffer_entries: 16,
            prefetch: PrefetchConfig::default(),
            writeback_speculative_lines: false,
            alias_policy: AliasPolicy::None,
        }
    }
}

fn level_cache(size_bytes: u64, ways: u32, hit_latency_cycles: u64) -> CacheConfig {
    CacheConfig {
        size_bytes,
        sets: size_bytes / (u64::from(ways) * HIERARCHY_LINE_BYTES),
        ways,
        line_bytes: HIERARCHY_LINE_BYTES,
        hit_latency_cycles,
        replacement: ReplacementPolicy::Lru,
        write_policy: WritePolicy::default(),
    }
}

/// An impossible hierarchy configuration. Every variant names the field at fault.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum HierarchyConfigError {
    /// `cores` is 0 or above [`CORES_MAX`].
    #[error("cores = {cores} is out of range: between 1 and {max}")]
    CoresOutOfRange {
        /// The configured value.
        cores: u32,
        /// [`CORES_MAX`].
        max: u32,
    },
    /// A level's cache configuration is impossible in itself.
    #[error("{}.cache: {source}", level.name())]
    Cache {
        /// The level.
        level: Level,
        /// What the cache's own validation said.
        source: CacheConfigError,
    },
    /// A level's lines are not 64 bytes.
    #[error(
        "{}.cache.line_bytes = {line_bytes}: the hierarchy keeps coherence, and memory \
         encrypts, in 64-byte lines",
        level.name()
    )]
    LineBytes {
        /// The level.
        level: Level,
        /// The configured line size.
        line_bytes: u64,
    },
    /// A level is not write-back with write-allocate.
    #[error(
        "{}.cache.write_policy = {} + {}: the coherent hierarchy supports write-back with \
         write-allocate only",
        level.name(),
        policy.on_hit.name(),
        policy.on_miss.name()
    )]
    WritePolicy {
        /// The level.
        level: Level,
        /// The configured policy.
        policy: WritePolicy,
    },
    /// A level's hit latency is 0: a request could complete in the cycle it was submitted,
    /// after the caller collected that cycle's responses.
    #[error("{}.cache.hit_latency_cycles = 0: every level takes at least one cycle", level.name())]
    ZeroHitLatency {
        /// The level.
        level: Level,
    },
    /// The L2 is smaller than the L1D it includes: it could never hold the L1D's lines.
    #[error(
        "{}.cache.size_bytes = {outer_bytes} is smaller than {}.cache.size_bytes = {inner_bytes}: \
         the {} is inclusive of the {}{}",
        outer.name(),
        inner.name(),
        outer.name(),
        inner.name(),
        ""
    )]
    InclusionGeometry {
        /// The inclusive (outer) level.
        outer: Level,
        /// Its size.
        outer_bytes: u64,
        /// The level it includes.
        inner: Level,
        /// Its size.
        inner_bytes: u64,
    },
    /// A level's `mshr_entries` is 0 or above [`MSHR_ENTRIES_MAX`].
    #[error("{}.mshr_entries = {entries} is out of range: between 1 and {max}", level.name())]
    MshrEntries {
        /// The level.
        level: Level,
        /// The configured value.
        entries: u32,
        /// [`MSHR_ENTRIES_MAX`].
        max: u32,
    },
    /// `writeback_buffer_entries` cannot hold what one step may write back, or is absurdly
    /// large.
    #[error(
        "writeback_buffer_entries = {entries} is out of range for this configuration: between \
         {min} and {max} (one fill from memory can write back {min} lines with llc_inclusive = \
         {llc_inclusive} and alias_policy = {})",
        alias_policy.name()
    )]
    WritebackBufferEntries {
        /// The configured value.
        entries: u32,
        /// The most one step can write back in this configuration.
        min: u32,
        /// [`WRITEBACK_BUFFER_ENTRIES_MAX`].
        max: u32,
        /// The configured inclusion.
        llc_inclusive: bool,
        /// The configured alias policy.
        alias_policy: AliasPolicy,
    },
    /// `prefetch.degree` is 0 or above [`PREFETCH_DEGREE_MAX`].
    #[error("prefetch.degree = {degree} is out of range: between 1 and {max}")]
    PrefetchDegree {
        /// The configured value.
        degree: u32,
        /// [`PREFETCH_DEGREE_MAX`].
        max: u32,
    },
    /// The stride prefetcher is on with `prefetch.stride_table_entries` 0 or above
    /// [`STRIDE_TABLE_ENTRIES_MAX`].
    #[error("prefetch.stride_table_entries = {entries} is out of range: between 1 and {max}")]
    StrideTableEntries {
        /// The configured value.
        entries: u32,
        /// [`STRIDE_TABLE_ENTRIES_MAX`].
        max: u32,
    },
}

/// A validated [`HierarchyConfig`]. Built only by [`HierarchyConfig::validate`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HierarchyParams {
    config: HierarchyConfig,
    l1d: CacheParams,
    l2: CacheParams,
    llc: CacheParams,
}

impl HierarchyParams {
    /// The configuration this was validated from.
    pub fn config(&self) -> &HierarchyConfig {
        &self.config
    }

    /// The validated cache parameters of a level.
    pub fn cache(&self, level: Level) -> &CacheParams {
        match level {
            Level::L1d => &self.l1d,
            Level::L2 => &self.l2,
            Level::Llc => &self.llc,
        }
    }

    /// The most lines one step of the hierarchy can write back to memory (see
    /// [`HierarchyConfig::writeback_lines_per_step_max`]).
    pub fn writeback_lines_per_step_max(&self) -> u32 {
        self.config.writeback_lines_per_step_max()
    }
}

impl HierarchyConfig {
    /// The most lines one atomic step can write back to memory, which is the least
    /// `writeback_buffer_entries` can be.
    ///
    /// The largest step is a fill from memory together with the first request waiting for it:
    /// the LLC victim (1), the other-KeyID copy under [`AliasPolicy::EvictOtherKeyIds`] (1),
    /// and, with a non-inclusive LLC, up to two more LLC victims made by dirty data moving
    /// into the LLC as the line reaches the requester's L2 (its L2 victim, and a remote dirty
    /// copy). Flushes, WBINVD and drain write back one line per step.
    pub fn writeback_lines_per_step_max(&self) -> u32 {
        let alias = u32::from(self.alias_policy == AliasPolicy::EvictOtherKeyIds);
        let acquire = if self.llc_inclusive { 0 } else { 2 };
        1 + alias + acquire
    }

    /// Checks the configuration. In order: `cores`; then per level (l1d, l2, llc) the cache
    /// itself, its line size, write policy and hit latency, and `mshr_entries`;
    /// `writeback_buffer_entries`; the prefetch degree and stride table.
    pub fn validate(&self) -> Result<HierarchyParams, HierarchyConfigError> {
        if self.cores == 0 || self.cores > CORES_MAX {
            return Err(HierarchyConfigError::CoresOutOfRange {
                cores: self.cores,
                max: CORES_MAX,
            });
        }
        let l1d = validate_level(Level::L1d, &self.l1d)?;
        let l2 = validate_level(Level::L2, &self.l2)?;
        let llc = validate_level(Level::Llc, &self.llc)?;
        // The L2 is documented as inclusive of the L1D. (An inclusive LLC smaller than the L2s
        // is allowed: back-invalidation keeps it inclusive, so the private caches then hold
        // no more lines than the LLC; docs/cache-hierarchy.md says so.)
        if self.l2.cache.size_bytes < self.l1d.cache.size_bytes {
            return Err(HierarchyConfigError::InclusionGeometry {
                outer: Level::L2,
                outer_bytes: self.l2.cache.size_bytes,
                inner: Level::L1d,
                inner_bytes: self.l1d.cache.size_bytes,
            });
        }
        let min = self.writeback_lines_per_step_max();
        if self.writeback_buffer_entries < min
            || self.writeback_buffer_entries > WRITEBACK_BUFFER_ENTRIES_MAX
        {
            return Err(HierarchyConfigError::WritebackBufferEntries {
                entries: self.writeback_buffer_entries,
                min,
                max: WRITEBACK_BUFFER_ENTRIES_MAX,
                llc_inclusive: self.llc_inclusive,
                alias_policy: self.alias_policy,
            });
        }
        let p = &self.prefetch;
        if p.degree == 0 || p.degree > PREFETCH_DEGREE_MAX {
            return Err(HierarchyConfigError::PrefetchDegree {
                degree: p.degree,
                max: PREFETCH_DEGREE_MAX,
            });
        }
        if p.stride
            && (p.stride_table_entries == 0 || p.stride_table_entries > STRIDE_TABLE_ENTRIES_MAX)
        {
            return Err(HierarchyConfigError::StrideTableEntries {
                entries: p.stride_table_entries,
                max: STRIDE_TABLE_ENTRIES_MAX,
            });
        }
        Ok(HierarchyParams {
            config: self.clone(),
            l1d,
            l2,
            llc,
        })
    }
}

fn validate_level(level: Level, c: &LevelConfig) -> Result<CacheParams, HierarchyConfigError> {
    let params = c
        .cache
        .validate()
        .map_err(|source| HierarchyConfigError::Cache { level, source })?;
    if params.line_bytes() != HIERARCHY_LINE_BYTES {
        return Err(HierarchyConfigError::LineBytes {
            level,
            line_bytes: params.line_bytes(),
        });
    }
    if params.write_policy() != WritePolicy::default() {
        return Err(HierarchyConfigError::WritePolicy {
            level,
            policy: params.write_policy(),
        });
    }
    if params.hit_latency_cycles() == 0 {
        return Err(HierarchyConfigError::ZeroHitLatency { level });
    }
    if c.mshr_entries == 0 || c.mshr_entries > MSHR_ENTRIES_MAX {
        return Err(HierarchyConfigError::MshrEntries {
            level,
            entries: c.mshr_entries,
            max: MSHR_ENTRIES_MAX,
        });
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{WriteHitPolicy, WriteMissPolicy};

    #[test]
    fn default_is_valid_and_documented() {
        let c = HierarchyConfig::default();
        let p = c.validate().unwrap();
        assert_eq!(p.cache(Level::L1d).size_bytes(), 32 * 1024);
        assert_eq!(p.cache(Level::L1d).ways(), 8);
        assert_eq!(p.cache(Level::L1d).hit_latency_cycles(), 4);
        assert_eq!(p.cache(Level::L2).size_bytes(), 1024 * 1024);
        assert_eq!(p.cache(Level::L2).ways(), 16);
        assert_eq!(p.cache(Level::L2).hit_latency_cycles(), 14);
        assert_eq!(p.cache(Level::Llc).size_bytes(), 8 * 1024 * 1024);
        assert_eq!(p.cache(Level::Llc).hit_latency_cycles(), 40);
        assert_eq!(c.cores, 2);
        assert!(c.llc_inclusive);
        assert_eq!(c.alias_policy, AliasPolicy::None);
        assert!(!c.writeback_speculative_lines);
    }

    #[test]
    fn every_field_is_named() {
        let mut c = HierarchyConfig {
            cores: 65,
            ..HierarchyConfig::default()
        };
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "cores = 65 is out of range: between 1 and 64"
        );
        c.cores = 0;
        assert!(matches!(
            c.validate(),
            Err(HierarchyConfigError::CoresOutOfRange { cores: 0, .. })
        ));

        let mut c = HierarchyConfig::default();
        c.l2.cache.ways = 0;
        let e = c.validate().unwrap_err();
        assert_eq!(
            e,
            HierarchyConfigError::Cache {
                level: Level::L2,
                source: CacheConfigError::ZeroWays
            }
        );
        assert!(e.to_string().starts_with("l2.cache: ways = 0"));

        let mut c = HierarchyConfig::default();
        c.llc.cache = CacheConfig::with_size(8 * 1024 * 1024, 16, 128).unwrap();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("llc.cache.line_bytes = 128")
        );

        let mut c = HierarchyConfig::default();
        c.l1d.cache.write_policy = WritePolicy {
            on_hit: WriteHitPolicy::WriteThrough,
            on_miss: WriteMissPolicy::WriteAllocate,
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("l1d.cache.write_policy = write-through + write-allocate")
        );

        let mut c = HierarchyConfig::default();
        c.l1d.cache.hit_latency_cycles = 0;
        assert_eq!(
            c.validate().unwrap_err(),
            HierarchyConfigError::ZeroHitLatency { level: Level::L1d }
        );

        // Issue 16: an inclusive level smaller than the one it includes.
        let mut c = HierarchyConfig::default();
        c.l1d.cache = CacheConfig::with_size(256, 2, 64).unwrap();
        c.l2.cache = CacheConfig::with_size(128, 2, 64).unwrap();
        let e = c.validate().unwrap_err();
        assert_eq!(
            e,
            HierarchyConfigError::InclusionGeometry {
                outer: Level::L2,
                outer_bytes: 128,
                inner: Level::L1d,
                inner_bytes: 256
            }
        );
        assert_eq!(
            e.to_string(),
            "l2.cache.size_bytes = 128 is smaller than l1d.cache.size_bytes = 256: the l2 is \
             inclusive of the l1d"
        );
        // An LLC smaller than the L2s is allowed, inclusive or not (back-invalidation keeps an
        // inclusive one inclusive).
        let mut c = HierarchyConfig::default();
        c.llc.cache = CacheConfig::with_size(512 * 1024, 16, 64).unwrap();
        c.validate().unwrap();
        c.llc_inclusive = false;
        c.validate().unwrap();
        // Equal sizes are fine.
        let mut c = HierarchyConfig::default();
        c.l2.cache = c.l1d.cache.clone();
        c.validate().unwrap();

        let mut c = HierarchyConfig::default();
        c.llc.mshr_entries = 0;
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "llc.mshr_entries = 0 is out of range: between 1 and 1024"
        );

        let mut c = HierarchyConfig::default();
        c.prefetch.degree = 17;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("prefetch.degree = 17")
        );

        let mut c = HierarchyConfig::default();
        c.prefetch.stride_table_entries = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("prefetch.stride_table_entries = 0")
        );
        // Without the stride prefetcher its table size does not matter.
        c.prefetch.stride = false;
        assert!(c.validate().is_ok());
    }

    #[test]
    fn writeback_buffer_must_hold_one_step() {
        let mut c = HierarchyConfig {
            writeback_buffer_entries: 1,
            ..HierarchyConfig::default()
        };
        assert!(c.validate().is_ok());
        c.alias_policy = AliasPolicy::EvictOtherKeyIds;
        let e = c.validate().unwrap_err();
        assert!(matches!(
            e,
            HierarchyConfigError::WritebackBufferEntries {
                entries: 1,
                min: 2,
                ..
            }
        ));
        assert!(
            e.to_string()
                .starts_with("writeback_buffer_entries = 1 is out of range")
        );
        c.llc_inclusive = false;
        assert_eq!(c.writeback_lines_per_step_max(), 4);
        c.writeback_buffer_entries = 4;
        assert!(c.validate().is_ok());
        c.writeback_buffer_entries = 0;
        c.alias_policy = AliasPolicy::None;
        c.llc_inclusive = true;
        assert!(c.validate().is_err());
    }
}
