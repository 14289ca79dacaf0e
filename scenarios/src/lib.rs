//! RON files of mktme-sim: today the machine description ([`machine_file`]); the scenario
//! format, its runner, expectations and the JSON report arrive with issue 5.
//!
//! It sits at the top of the dependency chain:
//! `scenarios -> cpu-model -> {cache-model, mem-ctrl} -> sim-core`. Model crates have no
//! serde: files are read here into plain structs close to the file (`deny_unknown_fields`),
//! then turned into the validated configs the model crates take.

pub mod batch;
pub mod bench_crypto;
pub mod dram_trace_run;
pub mod formats;
pub mod locate;
pub mod machine_file;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod scenario_file;
pub mod trace_report;
pub mod validate;
