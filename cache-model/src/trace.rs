//! Where the memory-trace readers used to live. File formats are read outside the model
//! crates now: the mtrace, valgrind Lackey and ChampSim readers (gzip and xz detection, errors
//! that name the line) are in `scenarios::formats::trace`. What the model takes from a trace,
//! the [`Access`], is defined in [`crate::access`] and re-exported here so that the old paths
//! keep working.

pub use crate::access::{Access, AccessKind};
