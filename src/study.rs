//! `mktme-sim overhead`, `sweep` and `merge`: studies of many runs. The work is in
//! [`scenarios::overhead`] and [`scenarios::sweep`]; this module parses options, shows a
//! progress bar on a terminal and prints.

use crate::stdout::Stdout;
use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use scenarios::overhead::{self, OffMode, OverheadOptions};
use scenarios::sweep::{Shard, Sweep, Table};
use scenarios::validate::Override;
use scenarios::workload::Workload;
use std::path::PathBuf;
use std::process::ExitCode;

/// `mktme-sim overhead`.
#[derive(clap::Args)]
#[command(
    after_help = "Runs the workload with the AES engine as configured, without it, and \
    with its throughput cut by each --slowdown, and reports cycles, DRAM read latency (mean, \
    p50, p95, p99), sustained DRAM bandwidth, the engine's utilisation and queueing, the \
    overhead in percent and the throughput at which the engine becomes the bottleneck. \
    By default only the engine's timing is removed; --bypass turns TME bypass on instead \
    (KeyIDs programmed by PCONFIG stay encrypted); --plaintext adds every KeyID as \
    KEYID_NO_ENCRYPT (nothing encrypted). See docs/sweeps.md."
)]
pub struct OverheadArgs {
    /// A scenario file (.ron) or a memory trace.
    path: PathBuf,
    /// Take the engine away with TME bypass instead of removing only its timing.
    #[arg(long, conflicts_with = "plaintext")]
    bypass: bool,
    /// Take the engine away entirely: TME bypass, and every key programmed as
    /// KEYID_NO_ENCRYPT.
    #[arg(long)]
    plaintext: bool,
    /// Throughput cuts of the sweep, each dividing the engine's throughput (at least 2).
    #[arg(long, value_delimiter = ',', default_values_t = [2, 4, 8, 16, 32, 64],
          value_parser = clap::value_parser!(u32).range(2..))]
    slowdown: Vec<u32>,
    /// No throughput sweep.
    #[arg(long)]
    no_sweep: bool,
    /// Set a scenario field, as `run --set` does (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
    /// Runs at once (0: one per available core).
    #[arg(long, default_value_t = 0)]
    jobs: usize,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Write SVG pictures into this folder.
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
    #[command(flatten)]
    trace: crate::trace_cmd::TraceArgs,
}

/// `mktme-sim overhead`.
pub fn overhead(args: OverheadArgs, out: &mut Stdout) -> Result<ExitCode> {
    let set: Vec<Override> = args
        .set
        .iter()
        .map(|a| Override::parse(a))
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    let workload = Workload::open(&args.path, &set, &args.trace.settings())?;
    let options = OverheadOptions {
        off: match (args.bypass, args.plaintext) {
            (true, _) => OffMode::Bypass,
            (_, true) => OffMode::Plaintext,
            _ => OffMode::Ideal,
        },
        slowdowns: args
            .slowdown
            .into_iter()
            .filter(|_| !args.no_sweep)
            .collect(),
        jobs: args.jobs,
        ..OverheadOptions::default()
    };
    let report = overhead::run(&workload, &options)?;
    if let Some(dir) = &args.plot {
        scenarios::plots::write_all(dir, &scenarios::plots::overhead(&report)?)?;
    }
    out.write_str(&if args.json {
        report.json()
    } else {
        report.table()
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `mktme-sim sweep`.
#[derive(clap::Args)]
#[command(
    after_help = "Writes results.jsonl, results.csv and sweep.json into --out: one row \
    per point (its index, the axis values, then the metrics), in point order whatever --jobs \
    and however the sweep is sharded. --shard I/N runs every N-th point from the I-th; \
    `mktme-sim merge` puts shards back together. See docs/sweeps.md."
)]
pub struct SweepArgs {
    /// The sweep file (.ron).
    file: PathBuf,
    /// The folder to write the results into.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Points run at once (0: one per available core).
    #[arg(long, default_value_t = 0)]
    jobs: usize,
    /// Run only shard I of N (1-based), as a cluster job array does.
    #[arg(long, value_name = "I/N", value_parser = Shard::parse)]
    shard: Option<Shard>,
    /// Write SVG pictures (each metric against each axis) into this folder.
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
}

/// `mktme-sim sweep`.
pub fn sweep(args: SweepArgs, out: &mut Stdout) -> Result<ExitCode> {
    let sweep = Sweep::load(&args.file)?;
    let shard = args.shard.unwrap_or(Shard::ALL);
    // On a terminal only: indicatif draws nothing when stderr is not one.
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} points, ETA {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message(sweep.name.clone());
    let table = sweep.run(shard, args.jobs, &|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    table.write_dir(&args.out)?;
    if let Some(dir) = &args.plot {
        scenarios::plots::write_all(dir, &scenarios::plots::sweep(&table)?)?;
    }
    let (n, all) = (table.rows.len(), sweep.points.len());
    writeln!(
        out,
        "sweep {}: {n} of {all} points run; results in {}",
        sweep.name,
        args.out.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `mktme-sim merge`.
#[derive(clap::Args)]
#[command(
    after_help = "The shards must come from the same sweep file and hold every point \
    exactly once; the files written are those a single run of the whole sweep writes."
)]
pub struct MergeArgs {
    /// The shards' output folders.
    #[arg(required = true, value_name = "SHARD_DIR")]
    dirs: Vec<PathBuf>,
    /// The folder to write the merged results into.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// `mktme-sim merge`.
pub fn merge(args: MergeArgs, out: &mut Stdout) -> Result<ExitCode> {
    let read = |d: &PathBuf| Ok((d.display().to_string(), Table::read_dir(d)?));
    let table = Table::merge(args.dirs.iter().map(read).collect::<Result<_>>()?)?;
    table.write_dir(&args.out)?;
    let (n, dir) = (table.rows.len(), args.out.display());
    writeln!(out, "merged {n} points into {dir}")?;
    Ok(ExitCode::SUCCESS)
}
