//! `mktme-sim trace`'s work and its reports: a memory trace run through one cache level with
//! DineroIV's counting rules ([`run_cache_only`]), or through a whole machine with one trace
//! core ([`run_full_system`]), and each run's JSON report and human-readable table.
//! `docs/trace-format.md` documents the reports field by field.
//!
//! The reports are deterministic: the same trace, configuration and seed give the same bytes.
//! Wall-clock speed is not part of them ([`speed_line`] formats it apart, for `--stats-time`).

use crate::formats::trace::{TraceError, TraceReader};
use crate::read_ahead::with_read_ahead;
use cache_model::{
    CacheConfig, CacheParams, LevelStats, ReplacementPolicy, SingleLevelSim, TraceCounts,
    WriteHitPolicy, WriteMissPolicy, WritePolicy,
};
use cpu_model::trace_run::{TraceFeed, TraceRunConfig, TraceRunError, Translation, run_pieces};
use cpu_model::{Machine, MachineConfig};
use serde::Serialize;
use serde::ser::SerializeMap;
use sim_core::{KeyId, RngFactory, StatValue, StatsReport};
use std::fmt::Write;
use std::time::Duration;

/// Name of the one level of the single-level configuration, in reports and as its RNG label.
pub const LEVEL: &str = "l1d";

/// Runs the first `limit` accesses of `reader` (all of them for `None`) through one cache
/// level of `params`, counted as DineroIV counts, then ends the trace with the final
/// write-back. `trace` names the trace in the report; `seed` feeds random replacement only.
pub fn run_cache_only(
    trace: &str,
    mut reader: TraceReader,
    params: &CacheParams,
    seed: u64,
    limit: Option<u64>,
) -> Result<CacheOnlyReport, TraceError> {
    let format = reader.format();
    let mut sim = SingleLevelSim::new(params.clone(), RngFactory::new(seed).fork(LEVEL));
    let taken = usize::try_from(limit.unwrap_or(u64::MAX)).unwrap_or(usize::MAX);
    sim.run((&mut reader).take(taken))?;
    let input = *sim.trace_counts();
    let stats = sim.finish();
    Ok(CacheOnlyReport {
        trace: trace.to_owned(),
        format: format.name(),
        config: ConfigReport {
            mode: "cache-only",
            memory: "none",
            seed,
            limit,
            levels: Levels(vec![(LEVEL, LevelConfigReport::new(params))]),
        },
        input: InputReport::new(&input, reader.instructions()),
        levels: Levels(vec![(LEVEL, LevelReport::new(&stats))]),
        params: params.clone(),
    })
}

/// How [`run_full_system`] runs a trace, as the report's `config` shows it.
#[derive(Clone, Debug)]
pub struct FullSystemOptions {
    /// The machine's name as given (a preset or a machine file's path).
    pub machine: String,
    /// The run's seed (the machine was booted with it).
    pub seed: u64,
    /// Accesses of the trace to run, `None` for all.
    pub limit: Option<u64>,
    /// The KeyID every access goes through; it must fit the machine's layout.
    pub keyid: u16,
    /// Line pieces the trace core keeps in flight (at least 1).
    pub outstanding: usize,
    /// Trace addresses are DRAM addresses (no first-touch translation).
    pub physical: bool,
    /// Stop with the machine's state past this core cycle (`None`: the trace core's default,
    /// 10^12). Not part of the report: a run that reaches it has none.
    pub cycles_max: Option<u64>,
    /// The trace core's shortcuts ([`TraceRunConfig::shortcuts`]); the report is the same
    /// without them. Not part of the report.
    pub shortcuts: bool,
}

/// Runs the first `options.limit` accesses of `reader` on `machine` (booted from `config`)
/// with one trace core, drains the caches, and reports every level and the memory side.
pub fn run_full_system(
    trace: &str,
    machine: &mut Machine,
    config: &MachineConfig,
    mut reader: TraceReader,
    options: &FullSystemOptions,
) -> Result<FullSystemReport, TraceRunError<TraceError>> {
    let format = reader.format();
    let taken = usize::try_from(options.limit.unwrap_or(u64::MAX)).unwrap_or(usize::MAX);
    let run_config = TraceRunConfig {
        max_outstanding: options.outstanding,
        keyid: KeyId::new(options.keyid),
        translation: if options.physical {
            Translation::Identity
        } else {
            Translation::FirstTouch
        },
        cycles_max: options
            .cycles_max
            .unwrap_or(TraceRunConfig::default().cycles_max),
        shortcuts: options.shortcuts,
    };
    // The trace is parsed, split into line pieces and translated on a thread of its own, in
    // order (none of it depends on time): the same pieces, the same errors.
    let mut feed = TraceFeed::new(
        (&mut reader).take(taken),
        machine.memory().layout(),
        machine.memory().dram_bytes(),
        &run_config,
    );
    let timing = with_read_ahead(&mut feed, |pieces| run_pieces(machine, pieces, &run_config))?;
    let run = timing.report(feed.counts());
    let mut stats = StatsReport::new();
    machine.report_stats(&mut stats);
    Ok(FullSystemReport {
        trace: trace.to_owned(),
        format: format.name(),
        config: FullConfigReport {
            mode: "full-system",
            machine: options.machine.clone(),
            seed: options.seed,
            limit: options.limit,
            keyid: options.keyid,
            outstanding: options.outstanding,
            translation: if options.physical {
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
    })
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

/// `mktme-sim trace --cache SIZE:WAYS:LINE` with its policy flags, as a cache configuration;
/// the error names the flag and what is wrong.
pub fn cache_params(
    spec: &str,
    replacement: ReplacementPolicy,
    write_through: bool,
    no_write_allocate: bool,
) -> Result<CacheParams, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let [size, ways, line] = parts.as_slice() else {
        return Err(format!(
            "--cache {spec:?}: expected SIZE:WAYS:LINE, such as 32k:8:64"
        ));
    };
    let size = parse_bytes(size).ok_or_else(|| {
        format!("--cache {spec:?}: SIZE {size:?} is not a byte count such as 32768, 32k or 8m")
    })?;
    let ways: u32 = ways
        .parse()
        .map_err(|_| format!("--cache {spec:?}: WAYS {ways:?} is not a whole number"))?;
    let line = parse_bytes(line)
        .ok_or_else(|| format!("--cache {spec:?}: LINE {line:?} is not a byte count such as 64"))?;
    let config = CacheConfig {
        replacement,
        write_policy: WritePolicy {
            on_hit: if write_through {
                WriteHitPolicy::WriteThrough
            } else {
                WriteHitPolicy::WriteBack
            },
            on_miss: if no_write_allocate {
                WriteMissPolicy::NoWriteAllocate
            } else {
                WriteMissPolicy::WriteAllocate
            },
        },
        ..CacheConfig::with_size(size, ways, line).map_err(|e| format!("--cache {spec:?}: {e}"))?
    };
    config
        .validate()
        .map_err(|e| format!("--cache {spec:?}: {e}"))
}

/// The `--stats-time` line: trace accesses (and the line-sized pieces they made) read and
/// simulated in `elapsed`, and the rate. Wall-clock time, so never part of a report.
pub fn speed_line(trace_accesses: u64, pieces: u64, elapsed: Duration) -> String {
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

/// The full-system report (docs/trace-format.md, "Full-system report"): JSON with
/// [`Self::json`], a table with [`Self::table`].
#[derive(Serialize)]
pub struct FullSystemReport {
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

impl FullSystemReport {
    /// The cycle the run ended: after the final drain.
    pub fn end_cycle(&self) -> u64 {
        self.drained_cycles.max(self.cycles)
    }

    /// The report as pretty-printed JSON, with a final newline.
    pub fn json(&self) -> Result<String, serde_json::Error> {
        let mut json = serde_json::to_string_pretty(self)?;
        json.push('\n');
        Ok(json)
    }

    /// The `--stats-time` line of this run, which took `elapsed`.
    pub fn speed_line(&self, elapsed: Duration) -> String {
        speed_line(self.input.accesses, self.input.pieces, elapsed)
    }

    /// The human-readable report.
    pub fn table(&self) -> String {
        let r = self;
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
            c.machine,
            c.core_clock_mhz,
            c.controllers,
            c.dram,
            c.keyid,
            c.outstanding,
            c.translation
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
}

/// The cache-only report (docs/trace-format.md, "The report"): JSON with [`Self::json`], a
/// table with [`Self::table`].
#[derive(Serialize)]
pub struct CacheOnlyReport {
    trace: String,
    format: &'static str,
    config: ConfigReport,
    input: InputReport,
    levels: Levels<LevelReport>,
    /// The level's parameters, for the table's description of it.
    #[serde(skip)]
    params: CacheParams,
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

impl CacheOnlyReport {
    /// The report as pretty-printed JSON, with a final newline.
    pub fn json(&self) -> Result<String, serde_json::Error> {
        let mut json = serde_json::to_string_pretty(self)?;
        json.push('\n');
        Ok(json)
    }

    /// The `--stats-time` line of this run, which took `elapsed`.
    pub fn speed_line(&self, elapsed: Duration) -> String {
        let pieces = self.levels.0.iter().map(|(_, l)| l.accesses).sum();
        speed_line(self.input.accesses, pieces, elapsed)
    }

    /// The human-readable report: a header, then one row per statistic and one column per
    /// level.
    pub fn table(&self) -> String {
        let (r, params) = (self, &self.params);
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
}

/// A rate as a percentage with three decimals, `-` when undefined (no accesses).
fn percent(rate: Option<f64>) -> String {
    rate.map_or("-".to_owned(), |v| format!("{:.3}%", 100.0 * v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::trace::TraceFormat;
    use cache_model::CacheConfig;

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

    fn mtrace(text: &'static str) -> TraceReader {
        TraceReader::new(TraceFormat::Mtrace, Box::new(text.as_bytes()), "t.mtrace")
    }

    #[test]
    fn cache_only_counts_up_to_the_limit_and_reports_both_ways() {
        let params = CacheConfig::default().validate().unwrap();
        let text = "R 0x1000 8\nW 0x103c 8\nR 0x1000 8\nnot a line\n";
        let r = run_cache_only("t.mtrace", mtrace(text), &params, 0, Some(3)).unwrap();
        assert_eq!((r.input.accesses, r.input.reads, r.input.writes), (3, 2, 1));
        let json: serde_json::Value = serde_json::from_str(&r.json().unwrap()).unwrap();
        assert_eq!(
            json["levels"]["l1d"]["accesses"], 4,
            "the write crosses a line"
        );
        assert_eq!(json["config"]["limit"], 3);
        let table = r.table();
        assert!(table.starts_with("trace    t.mtrace (mtrace)\n"), "{table}");
        assert!(table.contains("limit    first 3 accesses\n"), "{table}");
        // Past the limit, the malformed line is never read; without it, it stops the run.
        let e = run_cache_only("t.mtrace", mtrace(text), &params, 0, None)
            .err()
            .unwrap();
        assert!(e.to_string().starts_with("t.mtrace: line 4: "), "{e}");
    }

    #[test]
    fn levels_serialise_in_hierarchy_order() {
        let levels = Levels(vec![("l1d", 1), ("l2", 2), ("llc", 3), ("a", 4)]);
        assert_eq!(
            serde_json::to_string(&levels).unwrap(),
            r#"{"l1d":1,"l2":2,"llc":3,"a":4}"#
        );
    }
}
