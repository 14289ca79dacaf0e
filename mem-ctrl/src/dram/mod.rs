//! The DRAM timing model of the memory controller: a cycle-level, deterministic model of
//! DDR4/DDR5 channels that follows DRAMsim3's controller closely enough to reproduce its
//! numbers (validation-data.md section 2), plus the timing of the controller's AES-XTS stage.
//!
//! Queue sizes in the diagram are those of the `ddr4-2400` reference.
//!
//! ```text
//!                 try_submit(now, req)           tick(now) ──► DramCompletion
//!                        │                                          ▲
//!        write ──► [encrypt stage] ──┐                               │ reads: [decrypt stage]
//!                                    ▼                               │
//!   read ──► read queue (32)   write buffer (32)                  data bus
//!                 │  one transaction per cycle   │                   ▲
//!                 ▼                              ▼                   │
//!       command queues, one per bank (8 entries each) ──► FR-FCFS ──► ACT/READ/WRITE/PRE/REF
//!                                                       ▲             │ (one per cycle)
//!                             refresh (tREFI/ranks) ────┘             ▼
//!                                              bank state machines + JEDEC timing tables
//! ```
//!
//! * [`config`]: [`DramParams`] (plain, from a preset or a file) and [`DramConfig`] (validated,
//!   typed; impossible configurations are [`DramConfigError`]s naming the field).
//! * [`presets`]: `ddr4-2400` (the validation reference), `ddr4-3200`, `ddr5-4800`.
//! * [`mapping`]: address to channel/rank/bank group/bank/row/column, through `BitRange`.
//! * [`bank`]: the bank state machine, one exhaustive `match (state, command)`.
//! * `timing`: the command-to-command constraints (tRCD, tRP, tRAS, tRC, tCCD_S/L,
//!   tRRD_S/L, tFAW, tRTP, tWR, tWTR_S/L, tRTRS, tRFC, ...).
//! * [`refresh`]: rank-level refresh staggered over ranks.
//! * [`crypto_stage`]: the encrypt/decrypt pipelines (timing only; the bytes are encrypted by
//!   the functional layer).
//! * [`controller`]: [`DramController`], the cycle-by-cycle model and its API.
//! * [`driver`]: [`run_trace`], which feeds a controller from a request trace (used by
//!   `mktme-sim dram-trace` and the validation tests).
//!
//! Every cycle in this module is a DRAM clock cycle (tCK of the configuration, which is also
//! the controller's clock). Convert to and from a core clock with
//! [`DramConfig::core_clock_ratio`] and [`sim_core::ClockRatio`]. `docs/dram-model.md`
//! explains the model, what follows DRAMsim3 and what differs.
//!
//! ```
//! use mem_ctrl::dram::{run_trace, DramConfig, DriverLimits, Encryption, TraceRecord};
//! use sim_core::{Cycle, DramAddr, MemOp};
//!
//! let config = DramConfig::preset("ddr4-2400").unwrap();
//! // Two reads of one row, far apart: a closed-bank access, then a row hit.
//! let trace = [0u64, 1].map(|i| Ok::<_, std::convert::Infallible>(TraceRecord {
//!     addr: DramAddr::new(64 * i),
//!     op: MemOp::Read,
//!     cycle: Cycle::new(200 * i),
//! }));
//! let report = run_trace(&config, Encryption::Off, trace, DriverLimits::for_config(&config))
//!     .unwrap();
//! let latencies: Vec<(u64, u64)> = report.stats.read_latency.iter().collect();
//! assert_eq!(latencies, [(22, 1), (39, 1)]);
//! assert_eq!(report.row_hit_rate(), Some(0.5));
//! ```

pub mod bank;
pub mod config;
pub mod controller;
pub mod crypto_stage;
pub mod driver;
pub mod mapping;
pub mod presets;
pub mod refresh;
pub mod stats;
mod timing;

pub use bank::{BankCommand, BankState, CommandKind};
pub use config::{
    ControllerParams, CryptoTiming, DramConfig, DramConfigError, DramParams, Geometry, PagePolicy,
    QueueStructure, Throughput, Timing, WriteDrain,
};
pub use controller::{
    CompletionSource, DramCompletion, DramController, DramRequest, Encryption, IssuedCommand,
    QueueFull,
};
pub use crypto_stage::EngineStats;
pub use driver::{
    DriverError, DriverLimits, Recorder, TraceObserver, TraceRecord, TraceReport, run_trace,
    run_trace_observed,
};
pub use mapping::{AddressMapping, DramAddrOutOfRange, DramLocation, MappingParams};
pub use presets::{MACHINE_IDLE_WRITE_DRAIN_CYCLES, MACHINE_WRITE_DRAIN, PRESET_NAMES};
pub use stats::DramStats;
