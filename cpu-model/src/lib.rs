//! Cores, programs, the kernel layer, and the assembly of a whole machine from `cache-model`
//! and `mem-ctrl`.
//!
//! ```text
//!   scenarios -> cpu-model -> { cache-model, mem-ctrl } -> sim-core
//! ```
//!
//! This is the only crate that depends on both `cache-model` and `mem-ctrl`: [`Machine`] wires
//! the cache hierarchy's memory requests to the memory controllers. Cores, the store buffer,
//! address translation and the kernel layer arrive with issue 5; today the crate holds the
//! machine and the trace-driven core of `mktme-sim trace`.
//!
//! ```
//! use cpu_model::{Machine, MachineConfig};
//! use cpu_model::trace_run::{run_trace, TraceRunConfig};
//! use cache_model::trace::{Access, AccessKind};
//!
//! let mut machine = Machine::new(&MachineConfig::preset("default").unwrap(), 1).unwrap();
//! let trace = (0..64u64).map(|i| Ok::<_, std::io::Error>(Access {
//!     kind: if i % 4 == 0 { AccessKind::Write } else { AccessKind::Read },
//!     addr: 0x10_0000 + 64 * i,
//!     size: 8,
//! }));
//! let report = run_trace(&mut machine, trace, &TraceRunConfig::default()).unwrap();
//! assert_eq!((report.accesses, report.writes), (64, 16));
//! assert!(report.cycles > 0 && report.drained_cycles >= report.cycles);
//! ```

pub mod machine;
pub mod trace_run;

pub use machine::{Machine, MachineConfig, MachineConfigError};
