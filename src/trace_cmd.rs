//! `mktme-sim trace`: drive the caches from a memory trace and report what they counted.
//!
//! Two modes. With `--cache SIZE:WAYS:LINE`, one cache level with DineroIV's counting rules
//! ([`cache_model::single_level`]) and no memory model: a quick study. Otherwise a whole
//! machine (`--machine`, a preset or a machine file): the MESI hierarchy, the memory
//! controllers with AES-XTS and DRAM timing, driven by one trace core
//! ([`cpu_model::trace_run`]). The runs and their reports are [`scenarios::trace_report`];
//! the JSON report is documented field by field in `docs/trace-format.md`.

use crate::stdout::Stdout;
use anyhow::{Context, bail};
use cache_model::{CacheParams, ReplacementPolicy};
use cpu_model::Machine;
use cpu_model::trace_run::TraceRunError;
use scenarios::formats::trace::{self, TraceError, TraceFormat};
use scenarios::measure::{Measured, TrafficWatch};
use scenarios::plots;
use scenarios::trace_report::{self, FullSystemOptions};
use scenarios::workload::TraceSettings;
use sim_core::KeyId;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Arguments of `mktme-sim trace`.
#[derive(clap::Args)]
#[command(after_help = "\
Without --cache, the trace runs on a whole machine (--machine): MESI caches, the memory \
controller with AES-XTS, DRAM timing, one trace core. With --cache (or --no-memory), one cache \
level and no memory, counted as DineroIV counts: an access touching k lines counts as k \
accesses, each with its own hit or miss (\"multi-line\" sums the k - 1 extra pieces); dirty \
victims are written back, and so is every line still dirty when the trace ends (counted \
apart). See docs/trace-format.md.")]
pub struct Args {
    /// The trace: mtrace text ("R|W 0xADDR SIZE" lines), valgrind Lackey output, or a ChampSim
    /// binary trace. gzip and xz compression are detected and undone.
    trace: PathBuf,

    #[command(flatten)]
    run: TraceArgs,

    /// Quick study: one cache level, SIZE:WAYS:LINE (SIZE in bytes with an optional k or m
    /// suffix), with no memory model, counted as DineroIV does. Without it the trace runs on
    /// the whole machine.
    #[arg(long, value_name = "SIZE:WAYS:LINE")]
    cache: Option<String>,

    /// Cache-only mode: replacement policy (default LRU).
    #[arg(long, value_enum)]
    repl: Option<ReplArg>,

    /// Cache-only mode: write hits go through to memory at once and leave lines clean
    /// (default: write-back).
    #[arg(long)]
    write_through: bool,

    /// Cache-only mode: write misses go to memory without allocating a line (default:
    /// write-allocate).
    #[arg(long)]
    no_write_allocate: bool,

    /// No memory timing at all: the single cache level alone (implies `--cache 32k:8:64`
    /// unless `--cache` says otherwise).
    #[arg(long)]
    no_memory: bool,

    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,

    /// Full-system mode: write SVG pictures (read latency, traffic per KeyID, bandwidth over
    /// time) into this folder.
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,

    /// Also print, to stderr, the wall-clock time of reading and simulating the trace and the
    /// accesses per second (not part of the report, which stays deterministic).
    #[arg(long)]
    stats_time: bool,

    /// Full-system mode: no shortcuts. The trace core steps the machine every cycle it acts and
    /// every L1D hit goes through the caches' queue (slower; the report is the same, which is
    /// what this checks).
    #[arg(long)]
    no_shortcuts: bool,
}

/// How a trace is read and run: shared with `mktme-sim overhead`.
#[derive(clap::Args)]
pub struct TraceArgs {
    /// Trace format. Without it, guessed from the file name, then from the contents.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,

    /// The whole machine to run the trace on (full-system mode): a preset (`default`,
    /// `server`) or a RON machine file (docs/machine-format.md). Ignored with `--cache`.
    #[arg(long, value_name = "PRESET|FILE.ron", default_value = "default")]
    pub machine: String,

    /// Seed of the run; only random replacement draws from it.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed: u64,

    /// Full-system mode: the KeyID every access goes through (0, the TME key, by default).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keyid: u16,

    /// Full-system mode: line pieces the trace core keeps in flight (1 = a blocking core).
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub outstanding: usize,

    /// Full-system mode: take trace addresses as DRAM addresses instead of giving each 4 KiB
    /// page a frame on first touch.
    #[arg(long)]
    pub physical: bool,

    /// Stop after the first N accesses of the trace (a Lackey "M" line is two accesses).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,

    /// Full-system mode: stop, with the machine's state, past this core cycle [default: 10^12].
    #[arg(long, value_name = "N")]
    pub cycles_max: Option<u64>,
}

impl TraceArgs {
    /// The settings `scenarios` takes.
    pub fn settings(&self) -> TraceSettings {
        TraceSettings {
            machine: self.machine.clone(),
            format: self.format.map(Into::into),
            seed: self.seed,
            limit: self.limit,
            keyid: self.keyid,
            outstanding: self.outstanding,
            physical: self.physical,
            cycles_max: self.cycles_max,
        }
    }
}

/// `--format` values.
#[derive(Copy, Clone, clap::ValueEnum)]
pub enum FormatArg {
    Mtrace,
    Lackey,
    Champsim,
}

impl From<FormatArg> for TraceFormat {
    fn from(f: FormatArg) -> TraceFormat {
        match f {
            FormatArg::Mtrace => TraceFormat::Mtrace,
            FormatArg::Lackey => TraceFormat::Lackey,
            FormatArg::Champsim => TraceFormat::Champsim,
        }
    }
}

/// `--repl` values.
#[derive(Copy, Clone, clap::ValueEnum)]
enum ReplArg {
    /// True LRU.
    Lru,
    /// Tree pseudo-LRU (power-of-two ways).
    Plru,
    /// SRRIP with 2-bit RRPVs, hit priority (Jaleel et al., ISCA 2010).
    Srrip,
    /// Uniformly random way, from the seeded stream.
    Random,
}

impl From<ReplArg> for ReplacementPolicy {
    fn from(r: ReplArg) -> ReplacementPolicy {
        match r {
            ReplArg::Lru => ReplacementPolicy::Lru,
            ReplArg::Plru => ReplacementPolicy::TreePlru,
            ReplArg::Srrip => ReplacementPolicy::Srrip,
            ReplArg::Random => ReplacementPolicy::Random,
        }
    }
}

/// Turns `--cache SIZE:WAYS:LINE` and the policy flags into a cache configuration.
fn cache_config(args: &Args, spec: &str) -> anyhow::Result<CacheParams> {
    let repl = args.repl.unwrap_or(ReplArg::Lru).into();
    trace_report::cache_params(spec, repl, args.write_through, args.no_write_allocate)
        .map_err(anyhow::Error::msg)
}

/// Runs `mktme-sim trace`.
pub fn run(args: Args, out: &mut Stdout) -> anyhow::Result<ExitCode> {
    let cache_only_flags = args.repl.is_some() || args.write_through || args.no_write_allocate;
    if cache_only_flags && args.cache.is_none() && !args.no_memory {
        bail!(
            "--repl, --write-through and --no-write-allocate describe the single cache of \
             cache-only mode; add --cache SIZE:WAYS:LINE (or --no-memory), or describe the \
             machine's caches in a --machine file"
        );
    }
    match (&args.cache, args.no_memory) {
        (Some(spec), _) => run_cache_only(&args, spec, out),
        (None, true) => run_cache_only(&args, "32k:8:64", out),
        (None, false) => run_full_system(&args, out),
    }
}

fn open_trace(args: &Args) -> anyhow::Result<trace::TraceReader> {
    trace::open(&args.trace, args.run.format.map(Into::into)).map_err(|e| match e {
        TraceError::UnknownFormat { .. } => {
            anyhow::anyhow!("{e}; pass --format mtrace|lackey|champsim")
        }
        e => e.into(),
    })
}

/// One cache level, no memory: DineroIV's counts.
fn run_cache_only(args: &Args, spec: &str, out: &mut Stdout) -> anyhow::Result<ExitCode> {
    let params = cache_config(args, spec)?;
    let reader = open_trace(args)?;
    let name = args.trace.display().to_string();
    let started = Instant::now();
    let report =
        trace_report::run_cache_only(&name, reader, &params, args.run.seed, args.run.limit)?;
    let elapsed = started.elapsed();
    if args.json {
        out.write_str(&report.json()?)?;
    } else {
        out.write_str(&report.table())?;
    }
    if args.stats_time {
        let _ = writeln!(std::io::stderr(), "{}", report.speed_line(elapsed));
    }
    Ok(ExitCode::SUCCESS)
}

/// The whole machine: hierarchy, memory controllers, AES-XTS, DRAM timing.
fn run_full_system(args: &Args, out: &mut Stdout) -> anyhow::Result<ExitCode> {
    let config = scenarios::workload::machine_from_spec(&args.run.machine)?;
    let keyid = KeyId::new(args.run.keyid);
    config.memory.layout.check_keyid(keyid).context("--keyid")?;
    if args.run.outstanding == 0 {
        bail!("--outstanding 0: the trace core needs at least one access in flight");
    }
    let mut machine = Machine::new(&config, args.run.seed)?;
    let watch = args
        .plot
        .as_ref()
        .map(|_| TrafficWatch::new(config.memory.layout));
    if let Some(w) = &watch {
        machine.caches_mut().attach_observer(w.clone());
    }
    let reader = open_trace(args)?;
    let options = FullSystemOptions {
        machine: args.run.machine.clone(),
        seed: args.run.seed,
        limit: args.run.limit,
        keyid: args.run.keyid,
        outstanding: args.run.outstanding,
        physical: args.run.physical,
        cycles_max: args.run.cycles_max,
        shortcuts: !args.no_shortcuts,
    };
    let name = args.trace.display().to_string();
    let started = Instant::now();
    let report = trace_report::run_full_system(&name, &mut machine, &config, reader, &options)
        .map_err(|e| match e {
            TraceRunError::Trace(e) => anyhow::Error::from(e),
            e => anyhow::anyhow!("{e}"),
        })?;
    let elapsed = started.elapsed();
    if let (Some(dir), Some(w)) = (&args.plot, watch) {
        let m = Measured::of_machine(&machine, &config, report.end_cycle(), w.traffic());
        plots::write_all(dir, &plots::measured(&m)?)?;
    }
    if args.json {
        out.write_str(&report.json()?)?;
    } else {
        out.write_str(&report.table())?;
    }
    if args.stats_time {
        let _ = writeln!(std::io::stderr(), "{}", report.speed_line(elapsed));
    }
    Ok(ExitCode::SUCCESS)
}
