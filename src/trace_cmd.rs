//! `mktme-sim trace`: drive the caches from a memory trace and report what they counted.
//!
//! Two modes. With `--cache SIZE:WAYS:LINE`, one cache level with DineroIV's counting rules
//! ([`cache_model::single_level`]) and no memory model: a quick study. Otherwise a whole
//! machine (`--machine`, a preset): the MESI hierarchy, the memory controllers with AES-XTS and
//! DRAM timing, driven by one trace core ([`cpu_model::trace_run`]). The JSON report is
//! documented field by field in `docs/trace-format.md`.

use anyhow::{Context, bail};
use cache_model::{
    CacheConfig, CacheParams, LevelStats, ReplacementPolicy, SingleLevelSim, TraceCounts,
    WriteHitPolicy, WriteMissPolicy, WritePolicy,
};
use cpu_model::trace_run::{TraceRunConfig, TraceRunError, Translation, run_trace};
use cpu_model::{Machine, MachineConfig};
use scenarios::formats::trace::{self, TraceError, TraceFormat};
use serde::Serialize;
use serde::ser::SerializeMap;
use sim_core::{KeyId, RngFactory, StatValue, StatsReport};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Name of the one level of the single-level configuration, in reports and as its RNG label.
const LEVEL: &str = "l1d";

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
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cache_only_flags = args.repl.is_some() || args.write_through || args.no_write_allocate;
    if cache_only_flags && args.cache.is_none() && !args.no_memory {
        bail!(
            "--repl, --write-through and --no-write-allocate describe the single cache of \
             cache-only mode; add --cache SIZE:WAYS:LINE (or --no-memory), or describe the \
             machine's caches in a --machine file"
        );
    }
    match (&args.cache, args.no_memory) {
        (Some(spec), _) => run_cache_only(&args, spec),
        (None, true) => run_cache_only(&args, "32k:8:64"),
        (None, false) => run_full_system(&args),
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
fn run_cache_only(args: &Args, spec: &str) -> anyhow::Result<ExitCode> {
    let params = cache_config(args, spec)?;
    let mut reader = open_trace(args)?;
    let format = reader.format();
    let mut sim = SingleLevelSim::new(params.clone(), RngFactory::new(args.seed).fork(LEVEL));

    let limit = args.limit.unwrap_or(u64::MAX);
    let started = Instant::now();
    let mut taken = 0u64;
    while taken < limit {
        match reader.next_access()? {
            Some(access) => sim.access(access),
            None => break,
        }
        taken += 1;
    }
    let input = *sim.trace_counts();
    let stats = sim.finish();
    let elapsed = started.elapsed();

    let report = Report {
        trace: args.trace.display().to_string(),
        format: format.name(),
        config: ConfigReport {
            mode: "cache-only",
            memory: "none",
            seed: args.seed,
            limit: args.limit,
            levels: Levels(vec![(LEVEL, LevelConfigReport::new(&params))]),
        },
        input: InputReport::new(&input, reader.instructions()),
        levels: Levels(vec![(LEVEL, LevelReport::new(&stats))]),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", table(&report, &params));
    }
    if args.stats_time {
        eprintln!("{}", speed_line(input.accesses, stats.accesses, elapsed));
    }
    Ok(ExitCode::SUCCESS)
}

/// The whole machine: hierarchy, memory controllers, AES-XTS, DRAM timing.
fn run_full_system(args: &Args) -> anyhow::Result<ExitCode> {
    let config = machine_config(&args.machine)?;
    let keyid = KeyId::new(args.keyid);
    config.memory.layout.check_keyid(keyid).context("--keyid")?;
    if args.outstanding == 0 {
        bail!("--outstanding 0: the trace core needs at least one access in flight");
    }
    let mut machine = Machine::new(&config, args.seed)?;
    let mut reader = open_trace(args)?;
    let format = reader.format();
    let limit = args.limit.unwrap_or(u64::MAX);
    let mut taken = 0u64;
    let accesses = std::iter::from_fn(|| {
        if taken >= limit {
            return None;
        }
        taken += 1;
        reader.next_access().transpose()
    });
    let run_config = TraceRunConfig {
        max_outstanding: args.outstanding,
        keyid,
        translation: if args.physical {
            Translation::Identity
        } else {
            Translation::FirstTouch
        },
        ..TraceRunConfig::default()
    };
    let started = Instant::now();
    let run = run_trace(&mut machine, accesses, &run_config).map_err(|e| match e {
        TraceRunError::Trace(e) => anyhow::Error::from(e),
        e => anyhow::anyhow!("{e}"),
    })?;
    let elapsed = started.elapsed();
    let mut stats = StatsReport::new();
    machine.report_stats(&mut stats);

    let report = FullReport {
        trace: args.trace.display().to_string(),
        format: format.name(),
        config: FullConfigReport {
            mode: "full-system",
            machine: args.machine.clone(),
            seed: args.seed,
            limit: args.limit,
            keyid: args.keyid,
            outstanding: args.outstanding,
            translation: if args.physical {
                "identity"
            } else {
                "first-touch"
            },
            cores_used: 1,
            core_clock_mhz: config.memory.core_clock_mhz,
            dram: config.memory.dram.name().to_owned(),
            controllers: config.memory.controllers,
        },
        input: FullInputReport {
            accesses: run.accesses,
            reads: run.reads,
            writes: run.writes,
            pieces: run.pieces,
            pages_touched: run.pages_touched,
            instructions: reader.instructions(),
        },
        cycles: run.cycles,
        drained_cycles: run.drained_cycles,
        levels: Levels(
            ["l1d", "l2", "llc"]
                .into_iter()
                .map(|level| {
                    let multi_line = if level == "l1d" { run.multi_line } else { 0 };
                    (level, HierarchyLevelReport::new(&stats, level, multi_line))
                })
                .collect(),
        ),
        hierarchy: stats_section(&stats, "hierarchy."),
        memory: stats_section(&stats, "mc"),
        pconfig: stats_section(&stats, "pconfig."),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", full_table(&report));
    }
    if args.stats_time {
        eprintln!("{}", speed_line(run.accesses, run.pieces, elapsed));
    }
    Ok(ExitCode::SUCCESS)
}

/// The `--stats-time` line.
fn speed_line(trace_accesses: u64, pieces: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        trace_accesses as f64 / secs / 1e6
    } else {
        f64::INFINITY
    };
    format!(
        "time: {trace_accesses} trace accesses ({pieces} line accesses) read and simulated in \
         {secs:.3} s: {rate:.2} M trace accesses/s"
    )
}

/// The full-system JSON report (docs/trace-format.md, "Full-system report").
#[derive(Serialize)]
struct FullReport {
    trace: String,
    format: &'static str,
    config: FullConfigReport,
    input: FullInputReport,
    cycles: u64,
    drained_cycles: u64,
    levels: Levels<HierarchyLevelReport>,
    hierarchy: serde_json::Map<String, serde_json::Value>,
    memory: serde_json::Map<String, serde_json::Value>,
    pconfig: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct FullConfigReport {
    mode: &'static str,
    machine: String,
    seed: u64,
    limit: Option<u64>,
    keyid: u16,
    outstanding: usize,
    translation: &'static str,
    cores_used: u32,
    core_clock_mhz: u64,
    dram: String,
    controllers: u32,
}

#[derive(Serialize)]
struct FullInputReport {
    accesses: u64,
    reads: u64,
    writes: u64,
    pieces: u64,
    pages_touched: u64,
    instructions: Option<u64>,
}

/// One level of the hierarchy, summed over cores.
#[derive(Serialize)]
struct HierarchyLevelReport {
    accesses: u64,
    reads: u64,
    writes: u64,
    hits: u64,
    misses: u64,
    read_misses: u64,
    write_misses: u64,
    hit_rate: Option<f64>,
    multi_line: u64,
    lines_fetched: u64,
    writebacks_evicted: u64,
    writebacks_at_end: u64,
    mshr_merges: u64,
    mshr_full: u64,
    prefetches_issued: u64,
    prefetches_useful: u64,
}

impl HierarchyLevelReport {
    fn new(stats: &StatsReport, level: &str, multi_line: u64) -> HierarchyLevelReport {
        let get = |name: &str| stats.get_count(&format!("{level}.{name}")).unwrap_or(0);
        let (accesses, hits) = (get("accesses"), get("hits"));
        HierarchyLevelReport {
            accesses,
            reads: get("reads"),
            writes: get("writes"),
            hits,
            misses: get("misses"),
            read_misses: get("read_misses"),
            write_misses: get("write_misses"),
            hit_rate: (accesses > 0).then(|| hits as f64 / accesses as f64),
            multi_line,
            lines_fetched: get("lines_fetched"),
            writebacks_evicted: get("writebacks_evicted"),
            writebacks_at_end: get("writebacks_at_end"),
            mshr_merges: get("mshr_merges"),
            mshr_full: get("mshr_full"),
            prefetches_issued: get("prefetches_issued"),
            prefetches_useful: get("prefetches_useful"),
        }
    }
}

/// Every statistic whose name starts with `prefix`, in name order: counts as numbers,
/// histograms as `[[value, count], ...]`.
fn stats_section(stats: &StatsReport, prefix: &str) -> serde_json::Map<String, serde_json::Value> {
    stats
        .iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .map(|(name, value)| {
            let name = name
                .strip_prefix(prefix)
                .filter(|_| prefix.ends_with('.'))
                .unwrap_or(name);
            let value = match value {
                StatValue::Count(n) => serde_json::Value::from(*n),
                StatValue::Histogram(h) => {
                    serde_json::Value::from(h.iter().map(|(v, n)| vec![v, n]).collect::<Vec<_>>())
                }
            };
            (name.to_owned(), value)
        })
        .collect()
}

/// The human-readable full-system report.
fn full_table(r: &FullReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let c = &r.config;
    let _ = writeln!(out, "trace    {} ({})", r.trace, r.format);
    let i = &r.input;
    let _ = write!(
        out,
        "input    {} accesses ({} reads, {} writes), {} line pieces, {} pages",
        i.accesses, i.reads, i.writes, i.pieces, i.pages_touched
    );
    if let Some(n) = i.instructions {
        let _ = write!(out, ", {n} instructions");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "machine  {} ({} MHz core, {} controller(s) of {}), KeyID {}, {} in flight, {} translation",
        c.machine, c.core_clock_mhz, c.controllers, c.dram, c.keyid, c.outstanding, c.translation
    );
    let _ = writeln!(
        out,
        "cycles   {} (last access done), {} (dirty lines drained to DRAM)\n",
        r.cycles, r.drained_cycles
    );
    let rows: [TableRow<HierarchyLevelReport>; 13] = [
        ("accesses", |l| l.accesses.to_string()),
        ("  reads", |l| l.reads.to_string()),
        ("  writes", |l| l.writes.to_string()),
        ("hits", |l| l.hits.to_string()),
        ("misses", |l| l.misses.to_string()),
        ("  read misses", |l| l.read_misses.to_string()),
        ("  write misses", |l| l.write_misses.to_string()),
        ("hit rate", |l| percent(l.hit_rate)),
        ("multi-line pieces", |l| l.multi_line.to_string()),
        ("lines fetched", |l| l.lines_fetched.to_string()),
        ("write-backs evicted", |l| l.writebacks_evicted.to_string()),
        ("write-backs at end", |l| l.writebacks_at_end.to_string()),
        ("prefetches issued", |l| l.prefetches_issued.to_string()),
    ];
    r.levels.write_table(&mut out, &rows);
    let _ = writeln!(out, "\nmemory");
    for (name, value) in &r.memory {
        if value.is_number() {
            let _ = writeln!(out, "  {name:<36} {value}");
        }
    }
    out
}

/// The JSON report (docs/trace-format.md, "The report").
#[derive(Serialize)]
struct Report {
    trace: String,
    format: &'static str,
    config: ConfigReport,
    input: InputReport,
    levels: Levels<LevelReport>,
}

#[derive(Serialize)]
struct ConfigReport {
    mode: &'static str,
    memory: &'static str,
    seed: u64,
    limit: Option<u64>,
    levels: Levels<LevelConfigReport>,
}

#[derive(Serialize)]
struct LevelConfigReport {
    size_bytes: u64,
    sets: u64,
    ways: u32,
    line_bytes: u64,
    replacement: &'static str,
    write_hit: &'static str,
    write_miss: &'static str,
}

impl LevelConfigReport {
    fn new(p: &CacheParams) -> LevelConfigReport {
        LevelConfigReport {
            size_bytes: p.size_bytes(),
            sets: p.sets(),
            ways: p.ways(),
            line_bytes: p.line_bytes(),
            replacement: p.replacement().name(),
            write_hit: p.write_policy().on_hit.name(),
            write_miss: p.write_policy().on_miss.name(),
        }
    }
}

#[derive(Serialize)]
struct InputReport {
    accesses: u64,
    reads: u64,
    writes: u64,
    bytes: u64,
    instructions: Option<u64>,
}

impl InputReport {
    fn new(c: &TraceCounts, instructions: Option<u64>) -> InputReport {
        InputReport {
            accesses: c.accesses,
            reads: c.reads,
            writes: c.writes,
            bytes: c.bytes,
            instructions,
        }
    }
}

#[derive(Serialize)]
struct LevelReport {
    accesses: u64,
    reads: u64,
    writes: u64,
    hits: u64,
    read_hits: u64,
    write_hits: u64,
    misses: u64,
    read_misses: u64,
    write_misses: u64,
    hit_rate: Option<f64>,
    miss_rate: Option<f64>,
    multi_line: u64,
    lines_fetched: u64,
    writebacks: u64,
    writebacks_evicted: u64,
    writebacks_at_end: u64,
    writes_forwarded: u64,
    bytes_fetched_from_memory: u64,
    bytes_written_to_memory: u64,
}

impl LevelReport {
    fn new(s: &LevelStats) -> LevelReport {
        LevelReport {
            accesses: s.accesses,
            reads: s.reads,
            writes: s.writes,
            hits: s.hits,
            read_hits: s.read_hits,
            write_hits: s.write_hits,
            misses: s.misses,
            read_misses: s.read_misses,
            write_misses: s.write_misses,
            hit_rate: s.hit_rate(),
            miss_rate: s.miss_rate(),
            multi_line: s.multi_line,
            lines_fetched: s.lines_fetched,
            writebacks: s.writebacks(),
            writebacks_evicted: s.writebacks_evicted,
            writebacks_at_end: s.writebacks_at_end,
            writes_forwarded: s.writes_forwarded,
            bytes_fetched_from_memory: s.bytes_fetched(),
            bytes_written_to_memory: s.bytes_written(),
        }
    }
}

/// Levels keyed by name, serialised as a JSON object in hierarchy order (closest to the core
/// first) rather than alphabetical order.
struct Levels<T>(Vec<(&'static str, T)>);

/// One row of a human table: its label and how to print a level's cell.
type TableRow<T> = (&'static str, fn(&T) -> String);

impl<T> Levels<T> {
    /// The table of the human report: a header with the level names, then one line per row,
    /// one column per level.
    fn write_table(&self, out: &mut String, rows: &[TableRow<T>]) {
        use std::fmt::Write;
        let _ = write!(out, "{:<24}", "");
        for (name, _) in &self.0 {
            let _ = write!(out, "{name:>14}");
        }
        let _ = writeln!(out);
        for (label, cell) in rows {
            let _ = write!(out, "{label:<24}");
            for (_, level) in &self.0 {
                let _ = write!(out, "{:>14}", cell(level));
            }
            let _ = writeln!(out);
        }
    }
}

impl<T: Serialize> Serialize for Levels<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// The human-readable report: a header, then one row per statistic and one column per level.
fn table(r: &Report, params: &CacheParams) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "trace    {} ({})", r.trace, r.format);
    let i = &r.input;
    let _ = write!(
        out,
        "input    {} accesses ({} reads, {} writes), {} bytes",
        i.accesses, i.reads, i.writes, i.bytes
    );
    if let Some(n) = i.instructions {
        let _ = write!(out, ", {n} instructions");
    }
    let _ = writeln!(out);
    if let Some(limit) = r.config.limit {
        let _ = writeln!(out, "limit    first {limit} accesses");
    }
    let _ = writeln!(out, "{LEVEL}      {params}");
    let _ = writeln!(out, "memory   none (cache-only)\n");

    let rows: [TableRow<LevelReport>; 17] = [
        ("accesses", |l| l.accesses.to_string()),
        ("  reads", |l| l.reads.to_string()),
        ("  writes", |l| l.writes.to_string()),
        ("hits", |l| l.hits.to_string()),
        ("misses", |l| l.misses.to_string()),
        ("  read misses", |l| l.read_misses.to_string()),
        ("  write misses", |l| l.write_misses.to_string()),
        ("hit rate", |l| percent(l.hit_rate)),
        ("miss rate", |l| percent(l.miss_rate)),
        ("multi-line pieces", |l| l.multi_line.to_string()),
        ("lines fetched", |l| l.lines_fetched.to_string()),
        ("write-backs", |l| l.writebacks.to_string()),
        ("  evicted", |l| l.writebacks_evicted.to_string()),
        ("  at end", |l| l.writebacks_at_end.to_string()),
        ("writes forwarded", |l| l.writes_forwarded.to_string()),
        ("bytes fetched", |l| l.bytes_fetched_from_memory.to_string()),
        ("bytes written", |l| l.bytes_written_to_memory.to_string()),
    ];
    r.levels.write_table(&mut out, &rows);
    out
}

/// A rate as a percentage with three decimals, `-` when undefined (no accesses).
fn percent(rate: Option<f64>) -> String {
    rate.map_or("-".to_owned(), |v| format!("{:.3}%", 100.0 * v))
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
