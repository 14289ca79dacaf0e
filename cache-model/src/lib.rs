//! KeyID-tagged caches for mktme-sim: the set-associative [`Cache`] container, the coherent
//! MESI [`hierarchy`] built on it (cache-control instructions, prefetchers, the alias knobs),
//! the [`events`] it reports to whoever watches it (the coherency checker, in its own crate
//! beside the model), the memory [`Access`] a trace is made of, and a single-level trace
//! simulator with DineroIV's counting rules. Trace files themselves are read by
//! `scenarios::formats::trace`.
//!
//! ```text
//!                     physical address (KeyID bits included)
//!   +------------------------------------------------+-----------+-------------+
//!   |  KeyID  |              ...                     | set index |  line offset |
//!   +------------------------------------------------+-----------+-------------+
//!   |<------------ tag = whole block address (KeyID included) -->|
//!
//!   (trace reader) --> Access* --> SingleLevelSim --> Cache<()> --> LevelStats
//!   cores --> Hierarchy (Cache<MESI + line data> per level) --> MemRequest --> memory
//!                 |  CacheEvent
//!                 v
//!          observers (the `checker` crate, fed by cpu-model's System; tests' EventLog)
//! ```
//!
//! The cache tags each line with its whole block address, KeyID bits included: the same DRAM
//! line reached through two KeyIDs is two unrelated cache lines, and nothing here keeps them
//! coherent, as on MKTME hardware. Set index and block address are sliced with
//! [`sim_core::BitRange`] fields computed once by [`CacheConfig::validate`]. The only
//! randomness (random replacement) comes from the [`sim_core::SimRng`] given to
//! [`Cache::new`].
//!
//! This crate depends only on `sim-core`, never on `mem-ctrl`: caches see plaintext and
//! physical addresses, and `cpu-model` wires them to the memory controllers.
//!
//! ```
//! use cache_model::{Cache, CacheConfig, ReplacementPolicy};
//! use cache_model::AccessKind;
//! use sim_core::{AddressLayout, DramAddr, KeyId, RngFactory};
//!
//! let config = CacheConfig { replacement: ReplacementPolicy::TreePlru, ..CacheConfig::default() };
//! let mut l1d: Cache = Cache::from_config(&config, RngFactory::new(1).fork("l1d")).unwrap();
//!
//! // One DRAM line written through KeyID 1, then read through KeyID 2.
//! let layout = AddressLayout::default();
//! let through_1 = layout.compose(KeyId::new(1), DramAddr::new(0x4000)).unwrap();
//! let through_2 = layout.with_keyid(through_1, KeyId::new(2)).unwrap();
//! assert!(l1d.access(through_1, AccessKind::Write).filled);
//! // KeyID 2 misses: a second, unrelated line, while KeyID 1's dirty copy stays cached.
//! assert!(!l1d.access(through_2, AccessKind::Read).hit);
//! assert_eq!((l1d.len(), l1d.dirty_len()), (2, 1));
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
pub mod access;
pub mod cache;
pub mod config;
pub mod events;
pub mod hierarchy;
pub mod replacement;
pub mod single_level;

pub use access::{Access, AccessKind};
pub use cache::{AccessOutcome, Cache, Evicted, Inserted, LineRef, Slot};
pub use config::{
    CacheConfig, CacheConfigError, CacheParams, WriteHitPolicy, WriteMissPolicy, WritePolicy,
};
pub use events::{
    CacheEvent, CacheId, CacheObserver, EventLog, FillCause, FlushKind, Level, RemoveCause,
    StoreStamp, WritebackCause,
};
pub use hierarchy::{
    AliasPolicy, CoreOp, CoreRequest, CoreResponse, Hierarchy, HierarchyConfig,
    HierarchyConfigError, HierarchyParams, LevelConfig, LineView, MesiState, ObserverId,
    PrefetchConfig, PrefetchLevel,
};
pub use replacement::ReplacementPolicy;
pub use single_level::{LevelStats, SingleLevelSim, TraceCounts};
