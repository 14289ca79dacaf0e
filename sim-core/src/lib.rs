//! The ground every mktme-sim crate stands on: time, addresses and ids, deterministic event
//! ordering, a seeded RNG forked per component, the messages that travel between caches and
//! memory controllers, and statistics counters.
//!
//! ```text
//!   scenarios -> cpu-model -> { cache-model, mem-ctrl } -> sim-core
//! ```
//!
//! `sim-core` knows nothing of caches, cryptography or RON. Its one job with addresses is to
//! slice them, in one place ([`AddressLayout`]), so that no other crate shifts or masks a
//! physical address by hand.
//!
//! ```
//! use sim_core::{AddressLayout, DramAddr, KeyId};
//!
//! // The default layout: 52 physical address bits, the top 6 of them carry the KeyID.
//! let layout = AddressLayout::new(52, 6).unwrap();
//! let pa = layout.compose(KeyId::new(5), DramAddr::new(0x12340)).unwrap();
//! assert_eq!(pa.raw(), (5u64 << 46) | 0x12340);
//! assert_eq!(layout.keyid(pa), KeyId::new(5));
//! assert_eq!(layout.dram_addr(pa), DramAddr::new(0x12340));
//! ```
//!
//! Every part of the model that lives in simulated time (a core, the cache hierarchy, the
//! memory system, a memory controller and its DRAM model, a machine) implements
//! [`TimedComponent`]: when it next needs a step, whether it holds work, a description of its
//! state, and its timed parts. [`dump_component`] walks a component and its parts, depth first,
//! into the `(component, state)` entries of a stopped run's dump. Stepping is not in the trait:
//! each component steps with its own inputs and outputs (see the trait's documentation).

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
pub mod addr;
pub mod event;
pub mod hash;
pub mod msg;
pub mod rng;
pub mod stats;
pub mod text;
pub mod time;
pub mod timed;

pub use addr::{
    AddressLayout, BitRange, DramAddr, KeyId, LINE_BYTES, LINE_SHIFT, LINES_PER_PAGE, LayoutError,
    LineAddr, LineBytes, PAGE_BYTES, PAGE_SHIFT, PhysAddr, VirtAddr,
};
pub use event::EventQueue;
pub use hash::{DetHashMap, DetHashSet};
pub use msg::{CoreId, DimmWrite, MemEvent, MemOp, MemRequest, MemResponse, RequestId};
pub use rng::{RngFactory, SimRng};
pub use stats::{Counter, Histogram, StatValue, StatsReport};
pub use time::{ClockRatio, Cycle};
pub use timed::{OrNever, TimedComponent, dump_component};
