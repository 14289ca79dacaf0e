//! Everything of mktme-sim above the model: the file formats, the scenario runner and its
//! report, and the work behind each `mktme-sim` command (the binary only parses arguments,
//! calls this crate and prints).
//!
//! ```text
//!   files    formats::{trace, dram_file, dram_trace}, machine_file, scenario_file + validate
//!              |  (plain structs close to the file, then the model's typed configs)
//!              v
//!   runs     runner + batch (scenarios), trace_report (memory traces),
//!              |  dram_trace_run (one DRAM controller), bench_crypto (the AES-XTS engine)
//!              v
//!   reports  report (JSON), summaries, tables
//! ```
//!
//! It sits at the top of the dependency chain:
//! `scenarios -> cpu-model -> {cache-model, mem-ctrl} -> sim-core`. Model crates have no
//! serde and no wall clock: files are read here into plain structs close to the file
//! (`deny_unknown_fields`), then turned into the validated configs the model crates take, and
//! the only time measurements (`bench_crypto`, `trace --stats-time`) are made here or in the
//! binary.
//!
//! ```
//! // A machine file: a preset plus overrides, here a DRAM preset.
//! let machine = scenarios::machine_file::parse(
//!     "(caches: (cores: 1), memory: (dram: \"ddr5-4800\"))",
//!     "m.ron",
//! )
//! .unwrap();
//! assert_eq!((machine.caches.cores, machine.memory.dram.name()), (1, "ddr5-4800"));
//! ```

#![warn(missing_docs, unreachable_pub)]
pub mod batch;
pub mod bench_crypto;
pub mod dram_trace_run;
pub mod formats;
pub mod limits;
pub mod locate;
pub mod machine_file;
pub mod measure;
pub mod output;
pub mod overhead;
pub mod plots;
pub mod read_ahead;
pub mod read_budget;
pub mod report;
pub mod report_file;
pub mod runner;
pub mod scenario;
pub mod scenario_file;
pub mod sweep;
pub mod trace_report;
pub mod validate;
pub mod workload;
