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
use cache_model::{
    CacheConfig, CacheParams, ReplacementPolicy, WriteHitPolicy, WriteMissPolicy, WritePolicy,
};
use cpu_model::trace_run::TraceRunError;
use cpu_model::{Machine, MachineConfig};
use scenarios::formats::trace::{self, TraceError, TraceFormat};
use scenarios::measure::{Measured, TrafficWatch};
use scenarios::plots;
use scenarios::trace_report::{self, FullSystemOptions};
use sim_core::KeyId;
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

    /// Trace format. Without it, guessed from the file name, then from the contents.
    #[arg(long, value_enum)]
    format: Option<FormatArg>,

    /// The whole machine to run the trace on (full-system mode): a preset (`default`,
    /// `server`) or a RON machine file (docs/machine-format.md). Ignored with `--cache`.
    #[arg(long, value_name = "PRESET|FILE.ron", default_value = "default")]
    machine: String,

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

    /// Seed of the run; only random replacement draws from it.
    #[arg(long, default_value_t = 0, value_name = "N")]
    seed: u64,

    /// No memory timing at all: the single cache level alone (implies `--cache 32k:8:64`
    /// unless `--cache` says otherwise).
    #[arg(long)]
    no_memory: bool,

    /// Full-system mode: the KeyID every access goes through (0, the TME key, by default).
    #[arg(long, value_name = "N", default_value_t = 0)]
    keyid: u16,

    /// Full-system mode: line pieces the trace core keeps in flight (1 = a blocking core).
    #[arg(long, value_name = "N", default_value_t = 8)]
    outstanding: usize,

    /// Full-system mode: take trace addresses as DRAM addresses instead of giving each 4 KiB
    /// page a frame on first touch.
    #[arg(long)]
    physical: bool,

    /// Stop after the first N accesses of the trace (a Lackey "M" line is two accesses).
    #[arg(long, value_name = "N")]
    limit: Option<u64>,

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
}

/// `--format` values.
#[derive(Copy, Clone, clap::ValueEnum)]
enum FormatArg {
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

/// Parses a byte count with an optional binary suffix: `32768`, `32k`, `8M`.
fn parse_bytes(text: &str) -> Option<u64> {
    let (digits, shift) = match text.as_bytes().last()? {
        b'k' | b'K' => (&text[..text.len() - 1], 10),
        b'm' | b'M' => (&text[..text.len() - 1], 20),
        _ => (text, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// Turns `--cache SIZE:WAYS:LINE` and the policy flags into a cache configuration.
fn cache_config(args: &Args, spec: &str) -> anyhow::Result<CacheParams> {
    let parts: Vec<&str> = spec.split(':').collect();
    let [size, ways, line] = parts.as_slice() else {
        bail!("--cache {spec:?}: expected SIZE:WAYS:LINE, such as 32k:8:64");
    };
    let size = parse_bytes(size).with_context(|| {
        format!("--cache {spec:?}: SIZE {size:?} is not a byte count such as 32768, 32k or 8m")
    })?;
    let ways: u32 = ways
        .parse()
        .ok()
        .with_context(|| format!("--cache {spec:?}: WAYS {ways:?} is not a whole number"))?;
    let line = parse_bytes(line).with_context(|| {
        format!("--cache {spec:?}: LINE {line:?} is not a byte count such as 64")
    })?;
    let config = CacheConfig {
        replacement: args.repl.unwrap_or(ReplArg::Lru).into(),
        write_policy: WritePolicy {
            on_hit: if args.write_through {
                WriteHitPolicy::WriteThrough
            } else {
                WriteHitPolicy::WriteBack
            },
            on_miss: if args.no_write_allocate {
                WriteMissPolicy::NoWriteAllocate
            } else {
                WriteMissPolicy::WriteAllocate
            },
        },
        ..CacheConfig::with_size(size, ways, line).with_context(|| format!("--cache {spec:?}"))?
    };
    config
        .validate()
        .with_context(|| format!("--cache {spec:?}"))
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
    trace::open(&args.trace, args.format.map(Into::into)).map_err(|e| match e {
        TraceError::UnknownFormat { .. } => {
            anyhow::anyhow!("{e}; pass --format mtrace|lackey|champsim")
        }
        e => e.into(),
    })
}

/// `--machine`: a RON file when it names one (a `.ron` path, or an existing file), else a
/// preset.
fn machine_config(spec: &str) -> anyhow::Result<MachineConfig> {
    let path = std::path::Path::new(spec);
    if spec.ends_with(".ron") || path.is_file() {
        Ok(scenarios::machine_file::load(path)?)
    } else {
        Ok(MachineConfig::preset(spec).context("--machine")?)
    }
}

/// One cache level, no memory: DineroIV's counts.
fn run_cache_only(args: &Args, spec: &str, out: &mut Stdout) -> anyhow::Result<ExitCode> {
    let params = cache_config(args, spec)?;
    let reader = open_trace(args)?;
    let name = args.trace.display().to_string();
    let started = Instant::now();
    let report = trace_report::run_cache_only(&name, reader, &params, args.seed, args.limit)?;
    let elapsed = started.elapsed();
    if args.json {
        out.write_str(&report.json()?)?;
    } else {
        out.write_str(&report.table())?;
    }
    if args.stats_time {
        eprintln!("{}", report.speed_line(elapsed));
    }
    Ok(ExitCode::SUCCESS)
}

/// The whole machine: hierarchy, memory controllers, AES-XTS, DRAM timing.
fn run_full_system(args: &Args, out: &mut Stdout) -> anyhow::Result<ExitCode> {
    let config = machine_config(&args.machine)?;
    let keyid = KeyId::new(args.keyid);
    config.memory.layout.check_keyid(keyid).context("--keyid")?;
    if args.outstanding == 0 {
        bail!("--outstanding 0: the trace core needs at least one access in flight");
    }
    let mut machine = Machine::new(&config, args.seed)?;
    let watch = args
        .plot
        .as_ref()
        .map(|_| TrafficWatch::new(config.memory.layout));
    if let Some(w) = &watch {
        machine.caches_mut().attach_observer(w.clone());
    }
    let reader = open_trace(args)?;
    let options = FullSystemOptions {
        machine: args.machine.clone(),
        seed: args.seed,
        limit: args.limit,
        keyid: args.keyid,
        outstanding: args.outstanding,
        physical: args.physical,
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
        eprintln!("{}", report.speed_line(elapsed));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_with_suffixes() {
        assert_eq!(parse_bytes("32768"), Some(32768));
        assert_eq!(parse_bytes("32k"), Some(32 << 10));
        assert_eq!(parse_bytes("8M"), Some(8 << 20));
        assert_eq!(parse_bytes("k"), None);
        assert_eq!(parse_bytes(""), None);
        assert_eq!(parse_bytes("1.5k"), None);
        assert_eq!(parse_bytes("-1"), None);
        assert_eq!(parse_bytes("99999999999999999999"), None);
        assert_eq!(parse_bytes("18014398509481984k"), None);
    }
}
