//! `mktme-sim overhead`, `sweep` and `merge`: studies of many runs. The work is in
//! [`scenarios::overhead`] and [`scenarios::sweep`]; this module parses options, shows a
//! progress bar on a terminal and prints.

use crate::stdout::Stdout;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use scenarios::formats::trace::TraceFormat;
use scenarios::overhead::{self, OffMode, OverheadOptions};
use scenarios::sweep::{Shard, Sweep, Table};
use scenarios::validate::Override;
use scenarios::workload::{TraceSettings, Workload};
use std::path::PathBuf;
use std::process::ExitCode;

/// How a trace runs (as `mktme-sim trace` takes it).
#[derive(clap::Args)]
pub struct TraceArgs {
    /// For a trace: the machine, a preset or a RON machine file.
    #[arg(long, value_name = "PRESET|FILE.ron", default_value = "default")]
    machine: String,
    /// For a trace: its format (mtrace, lackey, champsim) [default: guessed].
    #[arg(long, value_parser = parse_format)]
    format: Option<TraceFormat>,
    /// For a trace: the seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// For a trace: stop after N accesses.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    /// For a trace: the KeyID of every access.
    #[arg(long, default_value_t = 0)]
    keyid: u16,
    /// For a trace: line pieces in flight.
    #[arg(long, default_value_t = 8)]
    outstanding: usize,
    /// For a trace: addresses are DRAM addresses.
    #[arg(long)]
    physical: bool,
}

fn parse_format(s: &str) -> Result<TraceFormat, String> {
    match s {
        "mtrace" => Ok(TraceFormat::Mtrace),
        "lackey" => Ok(TraceFormat::Lackey),
        "champsim" => Ok(TraceFormat::Champsim),
        _ => Err(format!("`{s}`: expected mtrace, lackey or champsim")),
    }
}

impl TraceArgs {
    fn settings(&self) -> TraceSettings {
        TraceSettings {
            machine: self.machine.clone(),
            format: self.format,
            seed: self.seed,
            limit: self.limit,
            keyid: self.keyid,
            outstanding: self.outstanding,
            physical: self.physical,
        }
    }
}

/// `mktme-sim overhead`.
#[derive(clap::Args)]
#[command(
    after_help = "Runs the workload with the AES engine as configured, without it, and \
    with its throughput cut by each --slowdown, and reports cycles, DRAM read latency (mean, \
    p50, p95, p99), sustained DRAM bandwidth, the engine's utilisation and queueing, the \
    overhead in percent and the throughput at which the engine becomes the bottleneck. \
    --off ideal (default) removes only the engine's timing; --off bypass turns TME bypass on \
    (KeyIDs programmed by PCONFIG stay encrypted). See docs/sweeps.md."
)]
pub struct OverheadArgs {
    /// A scenario file (.ron) or a memory trace.
    path: PathBuf,
    /// How the engine is taken away: ideal or bypass.
    #[arg(long, default_value = "ideal", value_parser = ["ideal", "bypass"])]
    off: String,
    /// Throughput cuts of the sweep (each divides the engine's throughput), comma-separated;
    /// `none` for no sweep.
    #[arg(long, default_value = "2,4,8,16,32,64")]
    slowdown: String,
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
    trace: TraceArgs,
}

/// The `--set` arguments, read.
pub fn overrides(args: &[String]) -> Result<Vec<Override>> {
    args.iter()
        .map(|a| Override::parse(a).map_err(anyhow::Error::msg))
        .collect()
}

/// `mktme-sim overhead`.
pub fn overhead(args: OverheadArgs, out: &mut Stdout) -> Result<ExitCode> {
    let slowdowns = match args.slowdown.as_str() {
        "none" => Vec::new(),
        s => s
            .split(',')
            .map(|k| k.trim().parse::<u32>().ok().filter(|&k| k >= 2))
            .collect::<Option<Vec<_>>>()
            .with_context(|| format!("--slowdown {s}: expected whole numbers of at least 2"))?,
    };
    let workload = Workload::open(&args.path, &overrides(&args.set)?, &args.trace.settings())?;
    let options = OverheadOptions {
        off: if args.off == "bypass" {
            OffMode::Bypass
        } else {
            OffMode::Ideal
        },
        slowdowns,
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
    let written = table.write_dir(&args.out)?;
    if let Some(dir) = &args.plot {
        scenarios::plots::write_all(dir, &scenarios::plots::sweep(&table)?)?;
    }
    writeln!(
        out,
        "sweep {}: {} of {} points run; wrote {}",
        sweep.name,
        table.rows.len(),
        sweep.points.len(),
        written
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
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
    let shards = args
        .dirs
        .iter()
        .map(|d| Ok((d.display().to_string(), Table::read_dir(d)?)))
        .collect::<Result<Vec<_>>>()?;
    let table = Table::merge(shards)?;
    table.write_dir(&args.out)?;
    writeln!(
        out,
        "merged {} points into {}",
        table.rows.len(),
        args.out.display()
    )?;
    Ok(ExitCode::SUCCESS)
}
