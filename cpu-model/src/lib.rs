//! Cores, programs, the kernel layer, and the assembly of a whole machine from `cache-model`
//! and `mem-ctrl`.
//!
//! ```text
//!   scenarios -> cpu-model -> { cache-model, mem-ctrl } -> sim-core
//! ```
//!
//! This is the only crate that depends on both `cache-model` and `mem-ctrl`: [`Machine`] wires
//! the cache hierarchy's memory requests to the memory controllers. On top of it: the
//! [`cores`] (in-order, x86-TSO, store buffer, speculation, TLB) that run [`program`]s, the
//! [`kernel`] layer (MKTME key service, page tables, `encrypt_mprotect`, the direct map), and
//! [`System`], which runs them all with the coherency checker watching. The trace-driven core
//! of `mktme-sim trace` is [`trace_run`].
//!
//! ```
//! use cpu_model::{Machine, MachineConfig};
//! use cpu_model::trace_run::{run_trace, TraceRunConfig};
//! use cache_model::{Access, AccessKind};
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

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
pub mod cores;
pub mod kernel;
pub mod machine;
pub mod program;
pub mod system;
pub mod trace_run;

pub use machine::{CoreConfig, Machine, MachineConfig, MachineConfigError};
pub use system::{ResultSink, RunEnd, System, SystemConfig, SystemError, SystemEvent};
