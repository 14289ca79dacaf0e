//! The file formats that feed the model, read in one place outside the model crates: memory
//! traces ([`trace`]), DRAM configuration files ([`dram_file`]) and DRAM request traces
//! ([`dram_trace`]).
//!
//! The project's own RON formats, the scenario and the machine description, sit at the crate's
//! top level ([`crate::scenario_file`], [`crate::machine_file`]) next to their validation. Each
//! reader here turns a file into the model's own types (`Access`, `DramConfig`, `TraceRecord`),
//! and every mistake in a file is an error that names the file and the line or field.

pub mod dram_file;
pub mod dram_trace;
pub mod trace;
