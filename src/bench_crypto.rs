//! `mktme-sim bench-crypto`: the AES-XTS-128 engine's throughput on this machine, next to
//! OpenSSL's when an `openssl` binary is on the `PATH`. What is measured, and on which clock,
//! is described in [`scenarios::bench_crypto`], which does the work.

use crate::stdout::Stdout;
use anyhow::bail;
use mem_ctrl::xts::Backend;
use scenarios::bench_crypto::{Bench, BenchOptions, Clock};
use std::process::ExitCode;

/// `--clock` values.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ClockArg {
    /// CPU time of the measuring thread; OpenSSL's default user CPU time.
    Cpu,
    /// Wall-clock time; OpenSSL with `-elapsed`.
    Wall,
}

/// Options of `mktme-sim bench-crypto`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Interleaved measurement rounds (ours, OpenSSL, ours, ...); every figure reported is the
    /// median over the rounds.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    rounds: u32,
    /// Seconds per sample; OpenSSL gets the same time rounded up to whole seconds.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Engine backend: portable, aes-ni, vaes-256 or vaes-512 [default: the fastest this CPU
    /// has].
    #[arg(long, value_parser = parse_backend)]
    backend: Option<Backend>,
    /// Lines per `encrypt_lines` call for the lines figures.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    batch: u32,
    /// Working set per thread, in KiB (a whole number of 4 KiB pages).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(4..=1_048_576))]
    buffer_kib: u32,
    /// Threads for the all-cores figures [default: every logical CPU].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    threads: Option<u32>,
    /// Clock of the single-thread figures [default: cpu where the OS has thread CPU time,
    /// else wall].
    #[arg(long, value_enum)]
    clock: Option<ClockArg>,
    /// Do not run OpenSSL even when it is on the PATH.
    #[arg(long)]
    no_openssl: bool,
    /// Skip the grid of batch sizes and thread counts.
    #[arg(long)]
    no_grid: bool,
    /// Print one JSON object instead of the table.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV (one line per figure) instead of the table.
    #[arg(long)]
    csv: bool,
    /// Write an SVG picture of the throughput into this folder.
    #[arg(long, value_name = "DIR")]
    plot: Option<std::path::PathBuf>,
}

fn parse_backend(s: &str) -> Result<Backend, String> {
    s.parse::<Backend>().map_err(|e| e.to_string())
}

/// Runs the benchmark; returns an error (exit code 2) for unusable options.
pub fn run(args: Args, out: &mut Stdout) -> anyhow::Result<ExitCode> {
    if !(args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 3600.0) {
        bail!(
            "--seconds must be a number of seconds above 0 and at most 3600, got {}",
            args.seconds
        );
    }
    if !args.buffer_kib.is_multiple_of(4) {
        bail!(
            "--buffer-kib must be a whole number of 4 KiB pages, got {}",
            args.buffer_kib
        );
    }
    let clock = match args.clock {
        Some(ClockArg::Cpu) => Clock::Cpu,
        Some(ClockArg::Wall) => Clock::Wall,
        None if Clock::Cpu.available() => Clock::Cpu,
        None => Clock::Wall,
    };
    if !clock.available() {
        bail!("--clock cpu needs thread CPU time, which this OS does not offer; use --clock wall");
    }
    let bench = Bench::new(BenchOptions {
        rounds: args.rounds,
        seconds: args.seconds,
        backend: args.backend.unwrap_or_else(Backend::detect),
        batch: args.batch as usize,
        buffer_bytes: args.buffer_kib as usize * 1024,
        threads: match args.threads {
            Some(t) => t as usize,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        },
        clock,
        openssl: !args.no_openssl,
        grid: !args.no_grid,
    })?;
    if cfg!(debug_assertions) {
        // Figures from an unoptimised build are 50-100x too slow and mean nothing.
        eprintln!(
            "warning: this is a debug build; measure with `cargo run --release -- bench-crypto`"
        );
    }
    if !args.json && !args.csv {
        eprintln!(
            "measuring: {} rounds of ~{:.1} s ...",
            args.rounds,
            bench.seconds_per_round()
        );
    }
    let results = bench.measure();
    if let Some(dir) = &args.plot {
        scenarios::plots::write_all(dir, &scenarios::plots::bench_crypto(&results)?)?;
    }
    if args.json {
        out.write_str(&results.json()?)?;
    } else if args.csv {
        out.write_str(&results.csv())?;
    } else {
        out.write_str(&results.table())?;
    }
    Ok(ExitCode::SUCCESS)
}
