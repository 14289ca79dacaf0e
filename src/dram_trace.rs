//! `mktme-sim dram-trace TRACE`: drives one memory controller's DRAM timing model alone from a
//! DRAMsim3/Ramulator-style request trace and reports what the validation data measures.
//!
//! The trace has one request per line, `0xADDR READ|WRITE CYCLE`, CYCLE in DRAM clock cycles
//! ([`scenarios::formats::dram_trace`]); the run and its report are
//! [`scenarios::dram_trace_run`]. `--dram` takes a preset name or a RON DRAM file
//! ([`scenarios::formats::dram_file`]; `--print-dram` writes a preset in that format, a good
//! starting point).

use crate::stdout::Stdout;
use anyhow::anyhow;
use mem_ctrl::dram::Encryption;
use scenarios::dram_trace_run::{self, Table};
use scenarios::formats::dram_file;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Whether the encryption stage's timing applies.
#[derive(Copy, Clone, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum OnOff {
    /// Plain DRAM timing.
    Off,
    /// Add the AES-XTS stage: decrypt after each read burst, encrypt before each write enters
    /// the write buffer.
    On,
}

/// Arguments of `mktme-sim dram-trace`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Request trace: one `0xADDR READ|WRITE CYCLE` per line, CYCLE in DRAM clock cycles.
    #[arg(required_unless_present = "print_dram")]
    pub trace: Option<PathBuf>,
    /// DRAM configuration: a preset (ddr4-2400, ddr4-3200, ddr5-4800) or a RON DRAM file.
    #[arg(long, default_value = "ddr4-2400")]
    pub dram: String,
    /// Timing of the memory-encryption stage.
    #[arg(long, value_enum, default_value_t = OnOff::Off)]
    pub encryption: OnOff,
    /// Print the report as a JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Fail when simulated time passes this DRAM cycle [default: 10^10].
    #[arg(long)]
    pub max_cycles: Option<u64>,
    /// Print the DRAM configuration as a RON DRAM file and exit.
    #[arg(long)]
    pub print_dram: bool,
}

/// Runs the subcommand.
pub fn run(args: Args, out: &mut Stdout) -> anyhow::Result<ExitCode> {
    let config = dram_file::load(&args.dram, Path::new(""))?;
    if args.print_dram {
        out.write_str(&dram_file::to_ron(config.params())?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let path = args
        .trace
        .as_deref()
        .ok_or_else(|| anyhow!("a TRACE file is required"))?;
    let encryption = match args.encryption {
        OnOff::Off => Encryption::Off,
        OnOff::On => Encryption::On,
    };
    let report = dram_trace_run::run(path, &config, encryption, args.max_cycles)?;
    if args.json {
        out.write_str(&dram_trace_run::json(&report)?)?;
    } else {
        write!(out, "{}", Table(&report, path))?;
    }
    Ok(ExitCode::SUCCESS)
}
