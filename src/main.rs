//! `mktme-sim`: the command-line front end of the simulator.
//!
//! Exit codes are part of the interface: 0 when everything held, 1 when an expectation failed,
//! 2 for bad input or usage (clap's own usage errors also exit 2) or when standard output
//! cannot be written. A reader that closes standard output early (`| head`) ends the program
//! quietly with 0.
//!
//! Each command's module only parses its arguments, calls the library (`scenarios` does the
//! work) and prints, through [`stdout::Stdout`] only.

mod bench_crypto;
mod dram_trace;
mod run_cmd;
mod stdout;
mod study;
mod trace_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use stdout::{Stdout, StdoutError};

#[derive(Parser)]
#[command(
    name = "mktme-sim",
    version,
    about = "Cycle-level simulator of multi-key total memory encryption (Intel TME-MK)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenario files (or folders of them) and judge their expectations.
    Run(run_cmd::RunArgs),
    /// Validate scenario files without running them.
    Check(run_cmd::CheckArgs),
    /// Measure the AES-XTS engine's throughput on this machine (and OpenSSL's, when present).
    BenchCrypto(bench_crypto::Args),
    /// Drive one memory controller alone from a DRAMsim3/Ramulator-style request trace.
    DramTrace(dram_trace::Args),
    /// Drive the cache hierarchy from a memory trace (mtrace, valgrind Lackey, ChampSim).
    Trace(trace_cmd::Args),
    /// What the memory-encryption engine costs a scenario or a trace.
    Overhead(study::OverheadArgs),
    /// Run a scenario or a trace at every point of a parameter sweep.
    Sweep(study::SweepArgs),
    /// Combine the outputs of a sweep's shards.
    Merge(study::MergeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = Stdout::new();
    let result = match cli.command {
        Command::Run(args) => run_cmd::run(args, &mut out),
        Command::Check(args) => run_cmd::check(args, &mut out),
        Command::BenchCrypto(args) => bench_crypto::run(args, &mut out),
        Command::DramTrace(args) => dram_trace::run(args, &mut out),
        Command::Trace(args) => trace_cmd::run(args, &mut out),
        Command::Overhead(args) => study::overhead(args, &mut out),
        Command::Sweep(args) => study::sweep(args, &mut out),
        Command::Merge(args) => study::merge(args, &mut out),
    }
    .and_then(|code| {
        out.flush()?;
        Ok(code)
    });
    match result {
        Ok(code) => code,
        Err(err) => match err.downcast_ref::<StdoutError>() {
            // The reader has what it wanted: stop quietly.
            Some(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
            _ => {
                stdout::error(format_args!("{err:#}"));
                ExitCode::from(2)
            }
        },
    }
}
